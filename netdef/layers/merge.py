"""Layers that join or split blobs: Concat, Slice, Split, Eltwise, Crop."""
from __future__ import annotations

from .. import codes, forks
from ..ir import RF
from ..proto import pb
from .base import (Layer, LayerError, bad, canonical_axis, fmt_shape, need_rank, prod, register, same_rf)


def _made_by(value) -> str:
    p = value.producer
    return f"made by layer '{p.name}'" if p is not None else "a net input"


def _related(node, *indices):
    """Point at the layers that produced the disagreeing bottoms."""
    rel = []
    for i in indices:
        v = node.inputs[i]
        if v.producer is not None and v.producer.span is not None:
            rel.append((v.producer.span, f"'{v.label}' {fmt_shape(v.meta.get('shape', ()))} is made here "
                                         f"by layer '{v.producer.name}'"))
    return rel


def mismatch(node, i: int, message: str, notes=()):
    raise LayerError(codes.SHAPE_MISMATCH.at(node.bottom_span(i), notes=list(notes), related=_related(node, 0, i),
                                             message=f"layer '{node.name}': {message}"))


def legacy_axis(node, field: str, legacy: str, shape) -> int:
    """Concat's concat_dim / Slice's slice_dim: the old, unsigned spelling of `axis`."""
    msg = getattr(node.param, field)
    if msg.HasField(legacy):
        v = getattr(msg, legacy)
        if v >= len(shape):
            bad(node, f"{legacy} {v} is out of range for the {len(shape)}-D bottom {fmt_shape(shape)}",
                node.field_span(field, legacy), code=codes.BAD_AXIS, notes=[f"allowed: 0 to {len(shape) - 1}"])
        return v
    return canonical_axis(node, msg.axis, shape, (field, "axis"))


def _check_axis_conflict(node, field, legacy, diags):
    msg = getattr(node.param, field)
    if msg.HasField("axis") and msg.HasField(legacy):
        diags.add(codes.BAD_PARAM.at(node.field_span(field, legacy), notes=[f"'{legacy}' is the legacy name of 'axis'"],
                                     message=f"layer '{node.name}': give axis or {legacy}, not both"))


@register("Concat")
class Concat(Layer):
    family = "merge"
    param = "concat_param"
    bottoms = (1, None)

    def check(self, node, diags):
        _check_axis_conflict(node, "concat_param", "concat_dim", diags)

    def infer_shapes(self, node, in_shapes):
        first = in_shapes[0]
        axis = legacy_axis(node, "concat_param", "concat_dim", first)
        out = list(first)
        for i, s in enumerate(in_shapes[1:], 1):
            if len(s) != len(first):
                mismatch(node, i, f"bottoms must have the same number of axes: '{node.inputs[0].label}' is "
                                  f"{fmt_shape(first)} ({_made_by(node.inputs[0])}) but '{node.inputs[i].label}' is "
                                  f"{fmt_shape(s)} ({_made_by(node.inputs[i])})")
            for j in range(len(first)):
                if j != axis and s[j] != first[j]:
                    mismatch(node, i, f"bottoms must agree on every axis but the concatenation axis {axis}: "
                                      f"'{node.inputs[0].label}' is {fmt_shape(first)} ({_made_by(node.inputs[0])}) "
                                      f"but '{node.inputs[i].label}' is {fmt_shape(s)} ({_made_by(node.inputs[i])})",
                             notes=[f"they differ on axis {j}: {first[j]} vs {s[j]}"])
            out[axis] += s[axis]
        return [tuple(out)]

    def receptive_field(self, node, in_rfs):
        rf, disagree = same_rf(in_rfs, node)
        if disagree:
            node.meta["rf_disagree"] = disagree
        return [rf]

    def to_onnx(self, node, g):
        """ONNX Concat."""
        axis = legacy_axis(node, "concat_param", "concat_dim", g.in_shape(0))
        g.op("Concat", [g.x(i) for i in range(g.n_in)], g.y(0), axis=axis)


@register("Slice")
class Slice(Layer):
    family = "merge"
    param = "slice_param"
    tops = (1, None)

    def check(self, node, diags):
        _check_axis_conflict(node, "slice_param", "slice_dim", diags)
        points = list(node.param.slice_param.slice_point)
        if points and len(points) != len(node.param.top) - 1:
            diags.add(codes.BAD_SLICE.at(node.field_span("slice_param", "slice_point"),
                                         notes=["N slice points cut a blob into N + 1 tops"],
                                         message=f"layer '{node.name}': {len(points)} slice_point value(s) for "
                                                 f"{len(node.param.top)} tops"))

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        axis = legacy_axis(node, "slice_param", "slice_dim", shape)
        dim = shape[axis]
        n = len(node.outputs)
        points = list(node.param.slice_param.slice_point)
        sp = node.field_span("slice_param", "slice_point")
        if points:
            if len(points) != n - 1:
                bad(node, f"{len(points)} slice_point value(s) for {n} tops", sp, code=codes.BAD_SLICE)
            sizes, prev = [], 0
            for i, p in enumerate(points):
                if p <= prev:
                    bad(node, f"slice points must increase and be positive: {', '.join(map(str, points))}",
                        node.field_span("slice_param", "slice_point", i), code=codes.BAD_SLICE)
                sizes.append(p - prev)
                prev = p
            if dim - prev <= 0:
                bad(node, f"slice point {prev} is not inside axis {axis} of '{node.inputs[0].label}' "
                          f"{fmt_shape(shape)}, which has size {dim}",
                    node.field_span("slice_param", "slice_point", len(points) - 1), code=codes.BAD_SLICE,
                    notes=[f"slice points must lie strictly between 0 and {dim}"])
            sizes.append(dim - prev)
        else:
            if dim % n:
                bad(node, f"{n} tops do not evenly divide axis {axis} of '{node.inputs[0].label}' "
                          f"{fmt_shape(shape)} (size {dim})", node.field_span("slice_param"), code=codes.BAD_SLICE,
                    notes=["give slice_point values, or a number of tops that divides the axis"])
            sizes = [dim // n] * n
        out = []
        for s in sizes:
            t = list(shape)
            t[axis] = s
            out.append(tuple(t))
        return out

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Split at the slice points."""
        shape = g.in_shape(0)
        axis = legacy_axis(node, "slice_param", "slice_dim", shape)
        if g.in_dyn(0)[axis]:
            g.fail("slicing the batch axis cannot be exported with a dynamic batch")
        sizes = [g.out_shape(i)[axis] for i in range(g.n_out)]
        if g.n_out == 1:
            g.op("Identity", [g.x(0)], g.y(0))
            return
        g.op("Split", [g.x(0), g.ints(sizes, "split")], [g.y(i) for i in range(g.n_out)], axis=axis)


@register("Split")
class Split(Layer):
    family = "merge"
    tops = (1, None)
    elementwise = True

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """Nothing: every top is the bottom."""
        for i in range(g.n_out):
            g.alias(i, g.x(0))


@register("Eltwise")
class Eltwise(Layer):
    family = "merge"
    param = "eltwise_param"
    bottoms = (2, None)

    def check(self, node, diags):
        ep = node.param.eltwise_param
        n = len(node.param.bottom)
        if ep.coeff and len(ep.coeff) != n:
            diags.add(codes.BAD_PARAM.at(node.field_span("eltwise_param", "coeff"),
                                         notes=["give one coeff per bottom, or none"],
                                         message=f"layer '{node.name}': {len(ep.coeff)} coeff value(s) for {n} bottoms"))
        if ep.coeff and ep.operation == pb.EltwiseParameter.PROD:
            diags.add(codes.BAD_PARAM.at(node.field_span("eltwise_param", "coeff"),
                                         notes=["coefficients apply to operation: SUM only"],
                                         message=f"layer '{node.name}': coeff is given with operation PROD"))

    def infer_shapes(self, node, in_shapes):
        first = in_shapes[0]
        for i, s in enumerate(in_shapes[1:], 1):
            if s != first:
                mismatch(node, i, f"Eltwise bottoms must have the same shape: '{node.inputs[0].label}' is "
                                  f"{fmt_shape(first)} ({_made_by(node.inputs[0])}) but '{node.inputs[i].label}' is "
                                  f"{fmt_shape(s)} ({_made_by(node.inputs[i])})")
        return [first]

    def receptive_field(self, node, in_rfs):
        rf, disagree = same_rf(in_rfs, node)
        if disagree:
            node.meta["rf_disagree"] = disagree
        return [rf]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(out_shapes[0]) * (len(in_shapes) - 1)}

    def to_onnx(self, node, g):
        """Sum with coefficients, Mul, or Max of the bottoms."""
        from ..proto import pb
        p = node.param.eltwise_param
        E = pb.EltwiseParameter
        xs = [g.x(i) for i in range(g.n_in)]
        if p.operation == E.PROD or len(xs) == 1:
            acc = xs[0]
            if len(xs) == 1:
                g.op("Identity", xs, g.y(0))
            for i, x in enumerate(xs[1:]):
                acc = g.op("Mul", [acc, x], g.y(0) if i == len(xs) - 2 else g.tmp(f"mul{i}"))
            return
        if p.operation == E.MAX:
            g.op("Max", xs, g.y(0))
            return
        coeff = list(p.coeff) or [1.0] * len(xs)
        terms = []
        for i, (c, x) in enumerate(zip(coeff, xs)):
            terms.append(x if c == 1 else g.op("Mul", [x, g.const(c, f"coeff{i}")], g.tmp(f"scaled{i}")))
        g.op("Sum" if len(terms) > 2 else "Add", terms, g.y(0))


def crop_offsets(node, shape) -> tuple[int, list[int]]:
    if forks.v1_written(node.loc):   # V1 CROP: the forks' coordinate-map crop (layers/coordmap.py)
        from .coordmap import coord_crop_offsets
        need_rank(node, shape, 4)
        return 2, [0, 0, *coord_crop_offsets(node)]
    cp = node.param.crop_param
    axis = canonical_axis(node, cp.axis, shape, ("crop_param", "axis"))
    offs = list(cp.offset)
    if len(offs) > 1 and axis + len(offs) != len(shape):
        bad(node, f"{len(offs)} offsets for axes {axis}..{len(shape) - 1} of the {len(shape)}-D bottom "
                  f"{fmt_shape(shape)}", node.field_span("crop_param", "offset"), code=codes.BAD_PARAM,
            notes=[f"give one offset for all of them, or exactly {len(shape) - axis}"])
    per_axis = []
    for i in range(len(shape)):
        if i < axis:
            per_axis.append(0)
        else:
            per_axis.append(offs[0] if len(offs) == 1 else offs[i - axis] if offs else 0)
    return axis, per_axis


@register("Crop")
class Crop(Layer):
    family = "merge"
    param = "crop_param"
    bottoms = (2, 2)

    def infer_shapes(self, node, in_shapes):
        shape, ref = in_shapes
        axis, offs = crop_offsets(node, shape)
        if len(ref) != len(shape):
            mismatch(node, 1, f"Crop needs bottoms with the same number of axes: '{node.inputs[0].label}' is "
                              f"{fmt_shape(shape)} but the reference '{node.inputs[1].label}' is {fmt_shape(ref)}")
        out = list(shape)
        for i in range(axis, len(shape)):
            if shape[i] - offs[i] < ref[i]:
                raise LayerError(codes.CROP_OUT_OF_BOUNDS.at(
                    node.field_span("crop_param", "offset") or node.span, related=_related(node, 0, 1),
                    notes=[f"offset + size must be at most {shape[i]}; the largest offset that fits is "
                           f"{shape[i] - ref[i]}" if shape[i] >= ref[i] else
                           f"the reference is larger than the input on axis {i}"],
                    message=f"layer '{node.name}': crop of '{node.inputs[0].label}' {fmt_shape(shape)} to "
                            f"'{node.inputs[1].label}' {fmt_shape(ref)} is out of bounds on axis {i}: offset "
                            f"{offs[i]} + size {ref[i]} > {shape[i]}"))
            out[i] = ref[i]
        return [tuple(out)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape = node.inputs[0].meta["shape"]
        axis, offs = crop_offsets(node, shape)
        # The RF tracks the trailing spatial axes; an offset moves where output 0 looks.
        n = len(rf.size)
        spatial = offs[len(shape) - n:]
        center = tuple(rf.center[i] + spatial[i] * rf.stride[i] for i in range(n))
        return [RF(rf.size, rf.stride, center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Slice of the first bottom to the second bottom's shape, at the offsets."""
        shape = g.in_shape(0)
        ref = g.in_shape(1)
        axis, offsets = crop_offsets(node, shape)
        axes = list(range(axis, len(shape)))
        if any(g.in_dyn(0)[a] for a in axes):
            g.fail("cropping the batch axis cannot be exported with a dynamic batch")
        starts = [offsets[a] for a in axes]
        ends = [offsets[a] + ref[a] for a in axes]
        g.op("Slice", [g.x(0), g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes, "axes")], g.y(0))


@register("Axpy")
class Axpy(Layer):
    """SENet's fused channel scale and residual sum: top = a * x + y with a (N, C) or
    (N, C, 1, 1) per-channel factors. hujie-frank/SENet src/caffe/layers/axpy_layer.cpp: a's
    first two axes equal x's, a 4-D a is 1x1 spatially, y has x's shape; top is shaped like x;
    no parameters."""

    family = "merge"
    bottoms = (3, 3)
    origin = "the SENet fork of Caffe (hujie-frank/SENet)"
    checked_against = "hujie-frank/SENet src/caffe/layers/axpy_layer.cpp"

    def infer_shapes(self, node, in_shapes):
        a, x, y = in_shapes
        if len(a) < 2 or len(x) < 2 or a[:2] != x[:2]:
            bad(node, f"the scale '{node.inputs[0].name}' {fmt_shape(a)} must have the (N, C) of "
                      f"'{node.inputs[1].name}' {fmt_shape(x)}", node.bottom_span(0), code=codes.SHAPE_MISMATCH)
        if len(a) == 4 and a[2:] != (1, 1):
            bad(node, f"a 4-D scale must be (N, C, 1, 1), got {fmt_shape(a)}", node.bottom_span(0),
                code=codes.SHAPE_MISMATCH)
        if len(a) not in (2, 4) and prod(a[2:]) != 1:
            bad(node, f"the scale {fmt_shape(a)} must hold one factor per (sample, channel)", node.bottom_span(0),
                code=codes.SHAPE_MISMATCH)
        if x != y:
            bad(node, f"'{node.inputs[1].name}' {fmt_shape(x)} and '{node.inputs[2].name}' {fmt_shape(y)} "
                      f"must have one shape", node.bottom_span(2), code=codes.SHAPE_MISMATCH)
        return [x]

    def receptive_field(self, node, in_rfs):
        rf, disagree = same_rf(in_rfs[1:], node)
        return [rf]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": prod(out_shapes[0]), "flops": 2 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """Reshape a to (N, C, 1, ...), then Mul and Add."""
        x = g.in_shape(1)
        a = g.reshape(g.x(0), (x[0], x[1]) + (1,) * (len(x) - 2), (g.in_dyn(0)[0],) + (False,) * (len(x) - 1))
        g.op("Add", [g.op("Mul", [a, g.x(1)], g.tmp("ax")), g.x(2)], g.y(0))


@register("Mul")
class Mul(Layer):
    """Elementwise product of two bottoms with NumPy-style broadcasting (axes aligned at the
    end, each pair equal or 1); the top takes the larger size of each axis."""

    family = "merge"
    bottoms = (2, 2)
    origin = "Synopsys' Caffe fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe)"
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/mul_layer.cpp: Reshape
    # aligns the axes at the end, takes the larger size of each pair and refuses in-place use;
    # with one bottom the multiplier is a learned blob of mul_param.mul_shape (not supported here).
    checked_against = "foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/mul_layer.cpp"

    def infer_shapes(self, node, in_shapes):
        a, b = in_shapes
        if node.param.top and node.param.top[0] == node.param.bottom[0]:
            bad(node, f"{node.type} does not allow in-place computation (its top is its first bottom)", node.span,
                notes=[f"{node.type}Layer::Reshape checks top != bottom[0]; give the top another name"])
        n = max(len(a), len(b))
        pa, pb_ = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
        out = []
        for i, (x, y) in enumerate(zip(pa, pb_)):
            if x != y and x != 1 and y != 1:
                bad(node, f"'{node.inputs[0].name}' {fmt_shape(a)} and '{node.inputs[1].name}' {fmt_shape(b)} "
                          f"do not broadcast (axis {i} from the left of the aligned shapes: {x} vs {y})",
                    node.bottom_span(1), code=codes.SHAPE_MISMATCH, notes=["each pair of sizes must be equal or 1"])
            out.append(max(x, y))
        return [tuple(out)]

    def receptive_field(self, node, in_rfs):
        rf, disagree = same_rf(in_rfs, node)
        return [rf]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX Mul (the same broadcasting)."""
        g.op("Mul", [g.x(0), g.x(1)], g.y(0))


@register("Add")
class Add(Mul):
    """Elementwise sum of two bottoms, broadcast as Mul (axes aligned at the end, each pair
    equal or 1; the larger size of each); a 0-axis bottom is a scalar added everywhere."""

    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/add_layer.cpp: Reshape
    # refuses in-place use and takes the larger size of each end-aligned pair (leading axes from
    # the longer bottom); Forward_cpu reads index 0 along an axis of size 1.
    checked_against = "foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/add_layer.cpp"

    def to_onnx(self, node, g):
        """ONNX Add (the same broadcasting)."""
        g.op("Add", [g.x(0), g.x(1)], g.y(0))
