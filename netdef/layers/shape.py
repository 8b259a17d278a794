"""Layers that only move or reduce axes: Reshape, Flatten, ArgMax, Reduction, Tile, BatchReindex."""
from __future__ import annotations

from .. import codes
from .base import Layer, bad, canonical_axis, count, fmt_shape, need_rank, prod, register


class NotInPlace(Layer):
    """Reshape and Flatten share the bottom's data; Caffe refuses to run them in place."""

    family = "shape"
    def check(self, node, diags):
        p = node.param
        if p.top and p.bottom and p.top[0] == p.bottom[0]:
            diags.add(codes.BAD_PARAM.at(node.top_span(0), notes=["give the top its own name"],
                                         message=f"layer '{node.name}': a {node.type} layer cannot run in place"))

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Reshape to the inferred shape (Flatten when it is one)."""
        out = g.out_shape(0)
        if node.type == "Flatten" and len(out) == 2 and not any(g.out_dyn(0)[1:]):
            fp = node.param.flatten_param
            if canonical_axis(node, fp.axis, g.in_shape(0)) == 1 and fp.end_axis in (-1, len(g.in_shape(0)) - 1):
                g.op("Flatten", [g.x(0)], g.y(0), axis=1)
                return
        g.reshape(g.x(0), out, g.out_dyn(0), g.y(0))


@register("Reshape")
class Reshape(NotInPlace):
    param = "reshape_param"

    def check(self, node, diags):
        super().check(node, diags)
        dims = list(node.param.reshape_param.shape.dim)
        if dims.count(-1) > 1:
            diags.add(codes.BAD_PARAM.at(node.field_span("reshape_param", "shape"),
                                         notes=["at most one dimension may be -1 (inferred)"],
                                         message=f"layer '{node.name}': the new shape {fmt_shape(dims)} has "
                                                 f"{dims.count(-1)} dimensions of -1"))
        for d in dims:
            if d < -1:
                diags.add(codes.BAD_PARAM.at(node.field_span("reshape_param", "shape"),
                                             notes=["dimensions are positive, 0 (copy the bottom's) or -1 (infer)"],
                                             message=f"layer '{node.name}': dimension {d} in the new shape"))
                break

    def infer_shapes(self, node, in_shapes):
        rp = node.param.reshape_param
        shape = in_shapes[0]
        n = len(shape)
        dims = list(rp.shape.dim)
        span = ("reshape_param", "shape")
        start = rp.axis if rp.axis >= 0 else n + rp.axis + 1
        if not 0 <= start <= n:
            bad(node, f"axis {rp.axis} is out of range for the {n}-D bottom {fmt_shape(shape)}",
                node.field_span("reshape_param", "axis"), code=codes.BAD_AXIS,
                notes=[f"allowed: {-(n + 1)} to {n}"])
        if rp.num_axes < -1:
            bad(node, f"num_axes must be -1 or at least 0, got {rp.num_axes}",
                node.field_span("reshape_param", "num_axes"), code=codes.BAD_AXIS)
        end = n if rp.num_axes == -1 else start + rp.num_axes
        if end > n:
            bad(node, f"axis {start} + num_axes {rp.num_axes} runs past the {n}-D bottom {fmt_shape(shape)}",
                node.field_span("reshape_param", "num_axes"), code=codes.BAD_AXIS)
        out = list(shape[:start]) + dims + list(shape[end:])
        inferred = None
        for i, d in enumerate(dims):
            if d == 0:
                # 0 copies the bottom dimension at the same position.
                if start + i >= n:
                    bad(node, f"dimension {i} of the new shape is 0 (copy), but the bottom {fmt_shape(shape)} "
                              f"has no axis {start + i} to copy", span, code=codes.COUNT_MISMATCH)
                out[start + i] = shape[start + i]
            elif d == -1:
                inferred = start + i
        if inferred is not None:
            known = prod(d for j, d in enumerate(out) if j != inferred)
            total = prod(shape)
            if known == 0 or total % known:
                bad(node, f"cannot infer the -1 dimension: the bottom {fmt_shape(shape)} has {total} elements, "
                          f"which is not a multiple of {known} (the product of the other dimensions)", span,
                    code=codes.COUNT_MISMATCH)
            out[inferred] = total // known
        if prod(out) != prod(shape):
            bad(node, f"the new shape {fmt_shape(out)} has {prod(out)} elements but the bottom "
                      f"'{node.inputs[0].label}' {fmt_shape(shape)} has {prod(shape)}", span,
                code=codes.COUNT_MISMATCH, notes=["use 0 to copy a dimension and -1 to infer one"])
        return [tuple(out)]


@register("Flatten")
class Flatten(NotInPlace):
    param = "flatten_param"

    def infer_shapes(self, node, in_shapes):
        fp = node.param.flatten_param
        shape = in_shapes[0]
        start = canonical_axis(node, fp.axis, shape, ("flatten_param", "axis"))
        end = canonical_axis(node, fp.end_axis, shape, ("flatten_param", "end_axis"), "end_axis")
        if end + 1 < start:  # end == start - 1 flattens nothing and inserts an axis of 1, as Caffe does
            bad(node, f"end_axis {fp.end_axis} comes before axis {fp.axis} for the bottom {fmt_shape(shape)}",
                node.field_span("flatten_param", "end_axis"), code=codes.BAD_AXIS)
        return [tuple(shape[:start]) + (count(shape, start, end + 1),) + tuple(shape[end + 1:])]


@register("ArgMax")
class ArgMax(Layer):
    family = "shape"
    param = "argmax_param"

    def infer_shapes(self, node, in_shapes):
        ap = node.param.argmax_param
        shape = in_shapes[0]
        if ap.top_k < 1:
            bad(node, "top_k must be at least 1", node.field_span("argmax_param", "top_k"))
        if ap.HasField("axis"):
            axis = canonical_axis(node, ap.axis, shape, ("argmax_param", "axis"))
            if ap.top_k > shape[axis]:
                bad(node, f"top_k {ap.top_k} exceeds axis {axis} of {fmt_shape(shape)}",
                    node.field_span("argmax_param", "top_k"))
            out = list(shape)
            out[axis] = ap.top_k
            return [tuple(out)]
        if ap.top_k > count(shape, 1):
            bad(node, f"top_k {ap.top_k} exceeds the {count(shape, 1)} values per item of {fmt_shape(shape)}",
                node.field_span("argmax_param", "top_k"))
        # Without an axis Caffe writes (N, 1 or 2, top_k) padded to at least 3 axes.
        out = [1] * max(len(shape), 3)
        out[0] = shape[0]
        out[2] = ap.top_k
        if ap.out_max_val:
            out[1] = 2
        return [tuple(out)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def to_onnx(self, node, g):
        """ArgMax / TopK with Caffe's tie order and output layout."""
        import numpy as np
        p = node.param.argmax_param
        shape = g.in_shape(0)
        k = p.top_k
        if p.HasField("axis"):
            axis = canonical_axis(node, p.axis, shape)
            x = g.x(0)
        else:
            # Without an axis Caffe ranks each sample's values, flattened.
            axis = 1
            x = g.op("Flatten", [g.x(0)], g.tmp("flat"), axis=1)
        if k == 1 and not (p.out_max_val and not p.HasField("axis")):
            if p.out_max_val:
                g.reduce("ReduceMax", x, [axis], 1, g.y(0))
                return
            # Caffe's std::greater on (value, index) pairs prefers the larger index on ties.
            idx = g.op("ArgMax", [x], g.tmp("argmax"), axis=axis, keepdims=1, select_last_index=1)
            if p.HasField("axis"):
                g.cast_float(idx, g.y(0))
            else:
                g.reshape(g.cast_float(idx, g.tmp("index")), g.out_shape(0), g.out_dyn(0), g.y(0))
            return
        # TopK keeps the lower index first on ties; Caffe the higher. Ranking the axis reversed and
        # mapping indices back (dim - 1 - i) gives Caffe's order.
        dim = shape[axis] if p.HasField("axis") else int(np.prod(shape[1:]))
        rev = g.op("Slice", [x, g.ints([-1], "rev_start"), g.ints([-(2 ** 62)], "rev_end"), g.ints([axis], "rev_axis"),
                             g.ints([-1], "rev_step")], g.tmp("reversed"))
        vals, ridx = g.op("TopK", [rev, g.ints([k], "k")], [g.tmp("values"), g.tmp("rindex")], axis=axis, largest=1, sorted=1)
        idx = g.op("Sub", [g.ints([dim - 1], "last"), ridx], g.tmp("index_i64"))
        fidx = g.cast_float(idx, g.tmp("index"))
        if p.HasField("axis"):
            g.op("Identity", [vals if p.out_max_val else fidx], g.y(0))
            return
        if p.out_max_val:
            both = g.op("Concat", [fidx, vals], g.tmp("index_value"), axis=1)
            g.reshape(both, g.out_shape(0), g.out_dyn(0), g.y(0))
        else:
            g.reshape(fidx, g.out_shape(0), g.out_dyn(0), g.y(0))


@register("Reduction")
class Reduction(Layer):
    family = "shape"
    param = "reduction_param"

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        axis = canonical_axis(node, node.param.reduction_param.axis, shape,
                              ("reduction_param", "axis"))
        # Every axis from `axis` on is reduced away (axis 0: a scalar).
        return [tuple(shape[:axis])]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(in_shapes[0]) * 2}

    def to_onnx(self, node, g):
        """ONNX Reduce{Sum,L1,SumSquare,Mean} over every axis from `axis` on, times coeff."""
        from ..proto import pb
        p = node.param.reduction_param
        shape = g.in_shape(0)
        axis = canonical_axis(node, p.axis, shape)
        R = pb.ReductionParameter
        # Caffe reduces every axis from `axis` on: flatten them into one, reduce it away.
        x = g.op("Reshape", [g.x(0), g.ints([0] * axis + [-1], "flat_shape")], g.tmp("flat"))
        op = {R.SUM: "ReduceSum", R.ASUM: "ReduceL1", R.SUMSQ: "ReduceSumSquare", R.MEAN: "ReduceMean"}[p.operation]
        if p.coeff == 1:
            g.reduce(op, x, [axis], 0, g.y(0))
        else:
            r = g.reduce(op, x, [axis], 0, g.tmp("reduced"))
            g.op("Mul", [r, g.const(p.coeff, "coeff")], g.y(0))


@register("Tile")
class Tile(Layer):
    family = "shape"
    param = "tile_param"

    def infer_shapes(self, node, in_shapes):
        tp = node.param.tile_param
        shape = in_shapes[0]
        if tp.tiles <= 0:
            bad(node, f"tiles must be positive, got {tp.tiles}", node.field_span("tile_param", "tiles"))
        axis = canonical_axis(node, tp.axis, shape, ("tile_param", "axis"))
        out = list(shape)
        out[axis] *= tp.tiles
        return [tuple(out)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def to_onnx(self, node, g):
        """ONNX Tile along `axis`."""
        p = node.param.tile_param
        shape = g.in_shape(0)
        reps = [1] * len(shape)
        reps[canonical_axis(node, p.axis, shape)] = p.tiles
        g.op("Tile", [g.x(0), g.ints(reps, "repeats")], g.y(0))


@register("BatchReindex")
class BatchReindex(Layer):
    family = "shape"
    bottoms = (2, 2)

    def infer_shapes(self, node, in_shapes):
        need_rank(node, in_shapes[1], 1, blob_index=1)
        return [(in_shapes[1][0],) + tuple(in_shapes[0][1:])]


# --- rearrangements of Caffe forks ----------------------------------------------------------

@register("ShuffleChannel")
class ShuffleChannel(Layer):
    """ShuffleNet's channel shuffle: channels seen as a (group, C/group) matrix, transposed.
    The ShuffleNet Caffe forks' shuffle_channel_layer.cpp (read from stored copies of the
    farmingyard/ShuffleNet layer): LayerSetUp CHECKs group > 0, top shaped like the bottom;
    Resize_cpu copies plane i * C/group + j to j * group + i. ShuffleChannelParameter
    { group = 1 [default = 1] }."""

    family = "shape"
    elementwise = True
    fork_defaults = {"group": 1}
    origin = "the MobileNet/ShuffleNet Caffe forks"
    checked_against = "shuffle_channel_layer.cpp of the ShuffleNet forks (farmingyard/ShuffleNet; stored copies)"

    def groups(self, node) -> int:
        from .fork import ForkParams, _int
        return _int(node, ForkParams(node, "shuffle_channel_param"), "group")

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        if len(shape) < 2:
            need_rank(node, shape, 2, exact=False)
        g = self.groups(node)
        if g < 1 or shape[1] % g:
            bad(node, f"{shape[1]} channels of '{node.inputs[0].name}' {fmt_shape(shape)} do not split into "
                      f"{g} groups", node.span, notes=["group must be positive and divide the channel count"])
        return [shape]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """Reshape to (N, group, C/group, ...), swap the two, reshape back."""
        groups = self.groups(node)
        n, c, *rest = g.in_shape(0)
        dyn = g.in_dyn(0)
        a = g.reshape(g.x(0), [n, groups, c // groups, *rest], [dyn[0], False, False] + [False] * len(rest))
        t = g.op("Transpose", [a], g.tmp("transpose"), perm=[0, 2, 1] + list(range(3, 3 + len(rest))))
        g.reshape(t, g.out_shape(0), g.out_dyn(0), g.y(0))


@register("Reorg")
class Reorg(Layer):
    """YOLOv2's passthrough. gklz1982/caffe-yolov2 src/caffe/layers/reorg_layer.cpp: stride is
    required (CHECK has_stride), not in place; top (N, C*s*s, H/s, W/s), or with reverse
    (N, C/(s*s), H*s, W*s). Its reorg_cpu is darknet's: the input's memory read as
    (C/(s*s), H*s, W*s) planes and each s x s cell spread over s*s channel blocks, which is not a
    space-to-depth of the input as laid out. ReorgParameter { stride = 1; reverse = 2 [false] }."""

    family = "shape"
    origin = "YOLO ports of Caffe"
    fork_defaults = {"reverse": False}
    checked_against = ("gklz1982/caffe-yolov2 src/caffe/layers/reorg_layer.cpp and its reorg_cpu "
                       "(util/math_functions.cpp); the fork's caffe.proto ReorgParameter")

    def params(self, node):
        from .fork import ForkParams, _int
        p = ForkParams(node, "reorg_param")
        if not p.has("stride"):
            bad(node, "reorg_param has no stride", p.span(),
                notes=["the Reorg layer of the YOLOv2 forks requires reorg_param { stride: N }"])
        s = _int(node, p, "stride")
        if s < 1:
            bad(node, f"reorg stride must be positive, got {s}", p.span("stride"))
        return s, bool(p.get("reverse"))

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        if node.inputs[0] is node.outputs[0] or node.inputs[0].name == node.outputs[0].name:
            bad(node, "Reorg does not allow in-place computation", node.span)
        s, reverse = self.params(node)
        n, c, h, w = shape
        if reverse:
            if c % (s * s):
                bad(node, f"{c} channels are not a multiple of stride^2 = {s * s}", node.span)
            return [(n, c // (s * s), h * s, w * s)]
        # reorg_cpu reads the bottom as C/(s*s) planes of (H*s, W*s): C and the size must divide.
        if c % (s * s) or h % s or w % s:
            bad(node, f"the bottom {fmt_shape(shape)} does not divide by stride {s}: the channels must be a "
                      f"multiple of {s * s} and the height and width of {s}", node.span, code=codes.BAD_GEOMETRY)
        return [(n, c * s * s, h // s, w // s)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """Reshapes and a Transpose reproducing reorg_cpu's index map."""
        s, reverse = self.params(node)
        n, c, h, w = g.in_shape(0)
        oc = c // (s * s)
        dyn0 = g.in_dyn(0)[0]
        if reverse:
            # top[c2, j*s + dy, i*s + dx] = bottom[(dy*s + dx)*oc + c2, j, i]
            a = g.reshape(g.x(0), [n, s, s, oc, h, w], [dyn0] + [False] * 5)
            t = g.op("Transpose", [a], g.tmp("transpose"), perm=[0, 3, 4, 1, 5, 2])
        else:
            # The top, as a (C, H, W) array: top[(dy*s + dx)*oc + c2, j, i] = the bottom read as
            # (oc, H*s, W*s) at [c2, j*s + dy, i*s + dx]; then that memory is (C*s*s, H/s, W/s).
            a = g.reshape(g.x(0), [n, oc, h, s, w, s], [dyn0] + [False] * 5)
            t = g.op("Transpose", [a], g.tmp("transpose"), perm=[0, 3, 5, 1, 2, 4])
        g.reshape(t, g.out_shape(0), g.out_dyn(0), g.y(0))


@register("AutoCrop")
class AutoCrop(Layer):
    """HED-style crop whose offset the net's geometry decides. The AutoCrop layer of the HED
    forks (auto_crop_layer.hpp: two bottoms, one top, coord_map (1, -crop)) is the coordinate-map
    crop of the FCN "future" branch, as the HED Crop layer (crop_layer.cpp, "an add for HED")
    does it: walk back from both bottoms along first bottoms to a common blob, compose each
    layer's coordinate map, and require a 1:1 map whose shift is a non-positive integer; crop =
    -shift. Top (N, C, H1, W1) from bottom 1; top[h, w] = bottom0[h + crop_h, w + crop_w].
    netdef's receptive fields carry the same maps (each blob's position 0 centre and jump in
    input coordinates), so crop = (centre1 - centre0) / jump."""

    family = "shape"
    bottoms = (2, 2)
    origin = "the HED forks of Caffe (s9xie/hed and ports)"
    checked_against = ("auto_crop_layer.hpp of the HED forks and the HED crop_layer.cpp (coordinate-map "
                       "crop), both read from stored copies")

    def infer_shapes(self, node, in_shapes):
        a, b = in_shapes
        need_rank(node, a, 4)
        need_rank(node, b, 4, 1)
        if b[2] > a[2] or b[3] > a[3]:
            bad(node, f"'{node.inputs[1].name}' {fmt_shape(b)} is larger than '{node.inputs[0].name}' "
                      f"{fmt_shape(a)}: nothing to crop to", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [(a[0], a[1], b[2], b[3])]

    def offsets(self, node):
        """(crop_h, crop_w) from the bottoms' receptive fields, or a string saying why not."""
        from fractions import Fraction
        r0, r1 = (v.meta.get("rf") for v in node.inputs)
        if r0 is None or r1 is None or r0.whole or r1.whole or len(r0.size) < 2 or len(r1.size) < 2:
            return "the bottoms' coordinate maps are unknown"
        out = []
        a, b = node.inputs[0].meta["shape"], node.inputs[1].meta["shape"]
        for i in range(2):
            if Fraction(r0.stride[i]) != Fraction(r1.stride[i]):
                return f"the bottoms have different strides ({r0.stride[i]} and {r1.stride[i]}): only 1:1 crops exist"
            off = (Fraction(r1.center[i]) - Fraction(r0.center[i])) / Fraction(r0.stride[i])
            if off.denominator != 1 or off < 0:
                return f"the crop offset would be {off}, not a non-negative integer"
            if off + b[2 + i] > a[2 + i]:
                return f"the crop at offset {off} runs past '{node.inputs[0].name}'"
            out.append(int(off))
        return tuple(out)

    def lint(self, node, in_shapes, out_shapes, diags):
        pass

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        offs = self.offsets(node)
        if isinstance(offs, str):
            return [None]
        from ..ir import RF
        center = tuple(rf.center[i] + offs[i] * rf.stride[i] if i < 2 else rf.center[i] for i in range(len(rf.size)))
        return [RF(rf.size, rf.stride, center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Slice at the offsets the receptive fields give."""
        offs = self.offsets(node)
        if isinstance(offs, str):
            g.fail(offs)
        h, w = g.out_shape(0)[2:]
        g.op("Slice", [g.x(0), g.ints(list(offs), "starts"), g.ints([offs[0] + h, offs[1] + w], "ends"),
                       g.ints([2, 3], "axes")], g.y(0))


@register("Padding")
class Padding(Layer):
    """DeepLab v1's zero padding or crop of the height and width. deeplab-public's
    padding_layer.cpp (read in TheLegendAli/DeepLab-Context src/caffe/layers/padding_layer.cpp):
    LayerSetUp takes pad_beg and pad_end from padding_param and refuses one positive and one
    negative ("Padding must either be both positive or negative"); Reshape gives (N, C,
    H + pad_beg + pad_end, W + pad_beg + pad_end) and CHECKs both > 0; Forward_cpu writes
    top[n, c, h, w] = bottom[n, c, h - pad_beg, w - pad_beg], zero where that is outside.
    PaddingParameter { pad_beg = 1 [default 0]; pad_end = 2 [default 0] } (int32)."""

    family = "shape"
    fork_defaults = {"pad_beg": 0, "pad_end": 0}
    origin = "the DeepLab fork of Caffe (deeplab-public)"
    checked_against = "TheLegendAli/DeepLab-Context src/caffe/layers/padding_layer.cpp (deeplab-public)"

    def pads(self, node) -> tuple[int, int]:
        from .fork import ForkParams, _int
        p = ForkParams(node, "padding_param")
        beg, end = _int(node, p, "pad_beg"), _int(node, p, "pad_end")
        if (beg > 0 and end < 0) or (beg < 0 and end > 0):
            bad(node, f"pad_beg {beg} and pad_end {end} have different signs", p.span(),
                notes=["deeplab-public's Padding pads (both >= 0) or crops (both <= 0), not both at once"])
        return beg, end

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        beg, end = self.pads(node)
        n, c, h, w = shape
        if h + beg + end <= 0 or w + beg + end <= 0:
            bad(node, f"pad_beg {beg} and pad_end {end} leave nothing of '{node.inputs[0].name}' {fmt_shape(shape)}",
                node.span, code=codes.BAD_GEOMETRY, notes=["the padded height and width must be > 0"])
        return [(n, c, h + beg + end, w + beg + end)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        from ..ir import RF
        beg = self.pads(node)[0]
        # top position 0 is bottom position -pad_beg
        center = tuple(rf.center[i] - beg * rf.stride[i] if i < 2 else rf.center[i] for i in range(len(rf.size)))
        return [RF(rf.size, rf.stride, center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Pad (zeros) when the pads are positive, Slice when they crop."""
        beg, end = self.pads(node)
        if beg >= 0 and end >= 0:
            g.op("Pad", [g.x(0), g.ints([0, 0, beg, beg, 0, 0, end, end], "pads")], g.y(0), mode="constant")
            return
        h, w = g.in_shape(0)[2:]
        g.op("Slice", [g.x(0), g.ints([-beg, -beg], "starts"), g.ints([h + end, w + end], "ends"),
                       g.ints([2, 3], "axes")], g.y(0))
