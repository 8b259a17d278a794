"""Pooling and SPP: Caffe's PoolingLayer geometry.

Caffe rounds the output size up (a last, partial window is kept), then, when there is any
padding, drops a last window that would start in the padding:
    out = ceil((H + 2p - k) / s) + 1;  if (p_h or p_w) and (out - 1) * s >= H + p: out -= 1
BVLC master's `round_mode: FLOOR` rounds down instead. Forks (SSD, and the DenseNet/ResNeXt
ports built on it) spell the same choice `ceil_mode: false`, a field netdef's schema lacks:
it arrives in the pooling_param Loc's `extra`, and false means floor. The padding clip applies
in both modes.
"""
from __future__ import annotations

from .. import codes, forks
from ..proto import pb
from .base import Layer, bad, fmt_shape, need_rank, prod, register, whole_rf, window_rf
from .conv import C3D_DEFAULTS
from .fork import synopsys_pads

P = pb.PoolingParameter
# Synopsys' PoolMethod AVE_EXC_PAD = 3 (foss-for-synopsys-dwc-arc-processors/synopsys-caffe
# caffe.proto; pooling_layer.cpp Forward_cpu): AVE whose divisor counts only the input cells of
# the window, never the padding. The parser keeps the name in the block's extra.
AVE_EXC_PAD = 3


def method(node) -> int:
    """The pooling method: PoolingParameter.pool, or AVE_EXC_PAD where the fork's value was given."""
    sub = node.loc.msg("pooling_param") if node.loc is not None else None
    vals = sub.extra.get("pool") if sub is not None else None
    if vals and vals[-1] in ("AVE_EXC_PAD", "AVE_TF"):
        return AVE_EXC_PAD
    return node.param.pooling_param.pool


class PoolGeometry:
    """`pad` is the padding before each axis, `pad_end` after it (equal but for Synopsys'
    pad_t/pad_l/pad_b/pad_r, `asym`)."""
    __slots__ = ("kernel", "stride", "pad", "ceil", "global_", "pad_end", "asym")

    def __init__(self, kernel, stride, pad, ceil, global_, pad_end=None):
        self.kernel, self.stride, self.pad, self.ceil, self.global_ = kernel, stride, pad, ceil, global_
        self.asym = pad_end is not None
        self.pad_end = list(pad) if pad_end is None else pad_end


def rounds_up(node) -> bool:
    """CEIL or FLOOR rounding: the fork's `ceil_mode` when given (see forks.ceil_mode), else
    BVLC's round_mode. The NumPy reference reads the same two fields the same way."""
    fork = forks.ceil_mode(node.loc)
    if fork is not None:
        return fork
    return node.param.pooling_param.round_mode == P.CEIL


def static_geometry_errors(node) -> list[tuple[str, object, list]]:
    """Caffe's PoolingLayer::LayerSetUp checks that need no shapes: (message, span, notes)."""
    pp = node.param.pooling_param
    span = lambda f=None: node.field_span("pooling_param", f)  # noqa: E731
    errs = []
    has_k, has_kh, has_kw = pp.HasField("kernel_size"), pp.HasField("kernel_h"), pp.HasField("kernel_w")
    if pp.global_pooling:
        if has_k or has_kh or has_kw:
            errs.append(("global_pooling takes the kernel from the input; kernel_size/kernel_h/kernel_w "
                         "must not be given", span("kernel_size" if has_k else "kernel_h" if has_kh else "kernel_w"),
                         ["remove the kernel size, or set global_pooling: false"]))
    else:
        if has_k and (has_kh or has_kw):
            errs.append(("both kernel_size and kernel_h/kernel_w are given", span("kernel_h" if has_kh else "kernel_w"),
                         ["give kernel_size, or kernel_h and kernel_w"]))
        elif not has_k and not (has_kh and has_kw):
            what = "kernel_w" if has_kh else "kernel_h" if has_kw else "the kernel size"
            errs.append((f"{what} is not set", span(), ["give kernel_size, or kernel_h and kernel_w, "
                                                        "or global_pooling: true"]))
    if pp.HasField("pad") and (pp.HasField("pad_h") or pp.HasField("pad_w")) or \
            (pp.HasField("pad_h") != pp.HasField("pad_w")):
        errs.append(("give pad, or both pad_h and pad_w", span("pad_h" if pp.HasField("pad_h") else "pad_w"), []))
    if pp.HasField("stride") and (pp.HasField("stride_h") or pp.HasField("stride_w")) or \
            (pp.HasField("stride_h") != pp.HasField("stride_w")):
        errs.append(("give stride, or both stride_h and stride_w",
                     span("stride_h" if pp.HasField("stride_h") else "stride_w"), []))
    return errs


def geometry(node, shape) -> PoolGeometry:
    pp = node.param.pooling_param
    span = lambda f=None: node.field_span("pooling_param", f)  # noqa: E731
    for msg, sp, notes in static_geometry_errors(node):
        bad(node, msg, sp, notes)
    if pp.global_pooling:
        kernel = [shape[2], shape[3]] if len(shape) == 4 else [0, 0]
    elif pp.HasField("kernel_size"):
        kernel = [pp.kernel_size, pp.kernel_size]
    else:
        kernel = [pp.kernel_h, pp.kernel_w]
    pad = [pp.pad_h, pp.pad_w] if pp.HasField("pad_h") else [pp.pad, pp.pad]
    stride = [pp.stride_h, pp.stride_w] if pp.HasField("stride_h") else [pp.stride, pp.stride]
    if not pp.global_pooling and min(kernel) <= 0:
        bad(node, f"kernel size must be positive, got {kernel[0]} x {kernel[1]}", span("kernel_size"))
    if min(stride) <= 0:
        bad(node, f"stride must be positive, got {stride[0]} x {stride[1]}", span("stride"))
    if pp.global_pooling and (any(pad) or any(s != 1 for s in stride)):
        bad(node, "global pooling allows only pad 0 and stride 1", span("pad" if any(pad) else "stride"))
    if any(pad):
        if pp.pool not in (P.MAX, P.AVE):
            bad(node, "padding is implemented only for MAX and AVE pooling", span("pad"),
                notes=["STOCHASTIC pooling takes no padding"])
        for i, axis in enumerate(("height", "width")):
            if pad[i] >= kernel[i] and not pp.global_pooling:
                bad(node, f"pad {pad[i]} must be smaller than the kernel {kernel[i]} ({axis})",
                    span("pad_h" if pp.HasField("pad_h") and i == 0 else "pad_w" if pp.HasField("pad_w") else "pad"),
                    code=codes.BAD_GEOMETRY, notes=["Caffe requires pad < kernel on every axis"])
    # Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/
    # pooling_layer.cpp LayerSetUp/Reshape/Forward_cpu): pad_t/pad_b and pad_l/pad_r pad unequally;
    # out = round((H + t + b - k) / s) + 1, then the last window must start before H + t. The
    # fork makes no pad < kernel or method check for them.
    asym = synopsys_pads(node, "pooling_param")
    if asym is not None:
        if pp.global_pooling:
            bad(node, "global pooling allows no padding", span())
        return PoolGeometry(kernel, stride, [asym[0], asym[1]], rounds_up(node), False, [asym[2], asym[3]])
    return PoolGeometry(kernel, stride, pad, rounds_up(node), pp.global_pooling)


def pooled_sizes(hw, g: PoolGeometry) -> list[int]:
    """Caffe's PoolingLayer::Reshape output size for each spatial axis."""
    out = []
    for i in range(2):
        num = hw[i] + g.pad[i] + g.pad_end[i] - g.kernel[i]
        # Caffe computes ceil/floor of a float quotient; integers give the same result exactly.
        o = (-(-num // g.stride[i]) if g.ceil else num // g.stride[i]) + 1
        out.append(o)
    if any(g.pad) or any(g.pad_end):
        for i in range(2):
            if (out[i] - 1) * g.stride[i] >= hw[i] + g.pad[i]:
                out[i] -= 1
    return out


def pool_output(node, shape, g: PoolGeometry, field="pooling_param") -> tuple:
    need_rank(node, shape, 4)
    hw = shape[2:]
    out = pooled_sizes(hw, g)
    # Caffe's PoolingLayer checks no size against the kernel (BVLC src/caffe/layers/
    # pooling_layer.cpp, Reshape): a kernel larger than the padded input gives 1 or 0 windows,
    # and a deploy file whose input is a 1x1 placeholder, set at run time, loads. Only a
    # negative size fails, in Blob::Reshape's CHECK_GE(shape[i], 0). The rest is a warning (lint).
    for i, axis in enumerate(("height", "width")):
        if out[i] < 0:
            bad(node, f"the output {axis} would be {out[i]}: kernel {g.kernel[i]} on the padded input {axis} "
                      f"{hw[i]} + 2 x {g.pad[i]} of '{node.inputs[0].name}' {fmt_shape(shape)}",
                node.field_span(field, "kernel_size"), code=codes.BAD_GEOMETRY,
                notes=["Caffe's Blob::Reshape refuses a negative size; use a larger input or a smaller kernel"])
    return (shape[0], shape[1], out[0], out[1])


@register("Pooling")
class Pooling(Layer):
    family = "pooling"
    param = "pooling_param"
    bottoms = (1, 1)

    def count_limits(self, node):
        # A MAX pooling layer may also output its argmax mask.
        return (1, 1), (1, 2 if node.param.pooling_param.pool == P.MAX else 1)

    def check(self, node, diags):
        for msg, span, notes in static_geometry_errors(node):
            diags.add(codes.BAD_PARAM.at(span, notes=notes, message=f"layer '{node.name}': {msg}"))
        values = forks.ceil_mode_values(node.loc)
        if values and forks.as_bool(values[-1]) is None:
            # The fork's Caffe reads ceil_mode as a bool: anything else fails its text parser.
            diags.add(codes.BAD_PARAM.at(node.field_span("pooling_param"), notes=[
                "ceil_mode is a bool: true (round the output size up) or false (round it down)"],
                message=f"layer '{node.name}': ceil_mode must be true or false, got {values[-1]}"))

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        g = geometry(node, shape)
        return [pool_output(node, shape, g)] * len(node.outputs)

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf] * len(node.outputs)
        shape = node.inputs[0].meta["shape"]
        g = geometry(node, shape)
        if g.global_:
            return [whole_rf(rf, shape[2:])] * len(node.outputs)
        return [window_rf(rf, g.kernel, g.stride, g.pad)] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        g = geometry(node, in_shapes[0])
        return {"macs": 0, "flops": prod(out_shapes[0]) * prod(g.kernel)}

    def lint(self, node, in_shapes, out_shapes, diags):
        g = geometry(node, in_shapes[0])
        if g.global_:
            return
        small = [(axis, i) for i, axis in enumerate(("height", "width"))
                 if g.kernel[i] > in_shapes[0][2 + i] + 2 * g.pad[i]]
        if small:
            # Not an error: Caffe loads it (see pool_output); a placeholder input set at run time.
            detail = "; ".join(f"{axis}: kernel {g.kernel[i]} on {in_shapes[0][2 + i]} + 2 x {g.pad[i]}"
                               for axis, i in small)
            windows = " x ".join(str(o) for o in out_shapes[0][2:]) + " windows"
            notes = ["a deploy file often gives a placeholder input size; pass the real one with --input NAME=N,C,H,W"]
            if 0 in out_shapes[0][2:]:
                # Checked with the SSD-fork Caffe (`caffe time`): the net loads, and the forward
                # aborts in Blob::mutable_cpu_data's CHECK(data_) on the top of 0 elements.
                windows += ", an empty top"
                notes.insert(0, "Caffe loads the net, but its forward aborts on the empty top (Blob::mutable_cpu_data's "
                                "CHECK(data_) on a blob of 0 elements)")
            field = "kernel_size" if node.param.pooling_param.HasField("kernel_size") else "kernel_h"
            diags.add(codes.POOL_KERNEL_LARGER.at(node.field_span("pooling_param", field), layer=node.name,
                                                  detail=f"({detail})", windows=windows, notes=notes))
            return
        over = []  # (axis, where the last window lies, where the input ends)
        for i, axis in enumerate(("height", "width")):
            size, o = in_shapes[0][2 + i], out_shapes[0][2 + i]
            last_end = (o - 1) * g.stride[i] - g.pad[i] + g.kernel[i]
            if last_end > size + g.pad_end[i]:
                start = (o - 1) * g.stride[i] - g.pad[i]
                over.append((axis, f"it covers {start}..{last_end - 1} but the input"
                                   f"{' plus padding' if g.pad_end[i] else ''} ends at {size + g.pad_end[i] - 1}"))
        if not over:
            return
        # One warning per layer: a square pool on a square map overhangs on both axes alike.
        if len(over) == 1:
            where, detail = f"on the {over[0][0]} axis", over[0][1]
        elif over[0][1] == over[1][1]:
            where, detail = "on both axes", over[0][1]
        else:
            where, detail = "on both axes", "; ".join(f"{axis}: {d}" for axis, d in over)
        pp = node.param.pooling_param
        field = "kernel_size" if pp.HasField("kernel_size") else ("kernel_h" if over[0][0] == "height" else "kernel_w")
        diags.add(codes.POOL_OVERHANG.at(node.field_span("pooling_param", field), layer=node.name, where=where,
                                         detail=detail, notes=["exporters must reproduce this with ceil_mode=1"]))

    def to_onnx(self, node, g):
        """ONNX MaxPool / AveragePool with Caffe's geometry (see Lowering.pool)."""
        from ..proto import pb
        shape = g.in_shape(0)
        geo = geometry(node, shape)
        pp = node.param.pooling_param
        pool = method(node)
        if geo.asym or pool == AVE_EXC_PAD:
            if g.n_out > 1:
                g.fail("the MAX mask top of a pooling with pad_t/pad_l/pad_b/pad_r has no ONNX lowering in netdef")
            return _pool_synopsys(g, pool, geo, shape[2:], g.out_shape(0)[2:])
        if g.n_out > 1:
            # The MAX mask top, which SegNet's Upsample reads (see resize.max_pool_mask).
            from .resize import max_pool_mask
            return max_pool_mask(g, node, geo.kernel, geo.stride, geo.pad, shape[2:], g.out_shape(0)[2:])
        if geo.global_ and pp.pool != pb.PoolingParameter.STOCHASTIC:
            g.op("GlobalMaxPool" if pp.pool == pb.PoolingParameter.MAX else "GlobalAveragePool", [g.x(0)], g.y(0))
            return
        g.pool(g.x(0), g.y(0), pp.pool, geo.kernel, geo.stride, geo.pad, shape[2:], g.out_shape(0)[2:])


def _pool_synopsys(g, pool, geo, in_hw, out_hw):
    """Synopsys' pooling (pooling_layer.cpp Forward_cpu): MAX takes the window clipped to the
    input; AVE divides by the window clipped to the padded frame [-t, H + b); AVE_EXC_PAD by
    its input cells only. MAX and AVE become Caffe's unpadded pooling (g.pool) of the input
    padded with pad_t/pad_l/pad_b/pad_r (-FLT_MAX for MAX, zeros for AVE); AVE_EXC_PAD is
    AveragePool with count_include_pad=0 and the round-up overhang as end padding."""
    t, l = geo.pad
    b, r = geo.pad_end
    if pool == AVE_EXC_PAD:
        ends, crops = [], []
        for i in range(2):
            e, c = g.fit_end(in_hw[i], geo.pad[i], out_hw[i], geo.kernel[i], geo.stride[i])
            ends.append(e)
            crops.append(c)
        if t >= geo.kernel[0] or l >= geo.kernel[1] or ends[0] >= geo.kernel[0] or ends[1] >= geo.kernel[1]:
            g.fail("a pooling window lies wholly in the padding; ONNX pools refuse padding as large as the kernel")
        x = g.crop_hw(g.x(0), crops, "exc_crop") if any(c is not None for c in crops) else g.x(0)
        return g.op("AveragePool", [x], g.y(0), kernel_shape=list(geo.kernel), strides=list(geo.stride),
                    pads=[t, l, ends[0], ends[1]], count_include_pad=0)
    x = g.x(0)
    if t or l or b or r:
        fill = g.const(-3.4028234663852886e38 if pool == P.MAX else 0.0, "pad_value")
        x = g.op("Pad", [x, g.ints([0, 0, t, l, 0, 0, b, r], "pads"), fill], g.tmp("padded"), mode="constant")
    hw = [in_hw[0] + t + b, in_hw[1] + l + r]
    return g.pool(x, g.y(0), pool, geo.kernel, geo.stride, [0, 0], hw, out_hw)


def spp_level(node, shape, level: int) -> PoolGeometry:
    """SPPLayer::GetPoolingParam: a pooling whose bins cover the whole input."""
    bins = 2 ** level
    kernel, pad = [], []
    for size in shape[2:4]:
        k = -(-size // bins)
        kernel.append(k)
        pad.append((k * bins - size + 1) // 2)
    return PoolGeometry(kernel, list(kernel), pad, True, False)


@register("SPP")
class SPP(Layer):
    family = "pooling"
    param = "spp_param"

    def check(self, node, diags):
        sp = node.param.spp_param
        if not sp.pyramid_height:
            diags.add(codes.MISSING_PARAM.at(node.field_span("spp_param"), what="pyramid_height",
                                             layer=node.name, type=node.type))

    def levels(self, node, shape):
        need_rank(node, shape, 4)
        if min(shape[2:]) <= 0:
            bad(node, f"input dimensions cannot be zero: {fmt_shape(shape)}")
        out = []
        for level in range(node.param.spp_param.pyramid_height):
            g = spp_level(node, shape, level)
            for i, axis in enumerate(("height", "width")):
                if g.pad[i] >= g.kernel[i]:
                    bad(node, f"pyramid level {level} needs pad {g.pad[i]} >= kernel {g.kernel[i]} on the {axis} axis "
                              f"for an input of {fmt_shape(shape)}; Caffe's pooling rejects that",
                        node.field_span("spp_param", "pyramid_height"), code=codes.BAD_GEOMETRY,
                        notes=["use a smaller pyramid_height or a larger input"])
            out.append((g, pool_output(node, shape, g, "spp_param")))
        return out

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        levels = self.levels(node, shape)
        if len(levels) == 1:
            return [levels[0][1]]
        return [(shape[0], sum(prod(o[1:]) for _, o in levels))]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None:
            return [None]
        shape = node.inputs[0].meta["shape"]
        if node.param.spp_param.pyramid_height == 1:
            g = spp_level(node, shape, 0)
            return [window_rf(rf, g.kernel, g.stride, g.pad)]
        return [whole_rf(rf, shape[2:]) if not rf.whole else rf]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": sum(prod(o) * prod(g.kernel) for g, o in self.levels(node, in_shapes[0]))}

    def to_onnx(self, node, g):
        """One Caffe pooling per pyramid level, flattened and concatenated."""
        from ..proto import pb
        shape = g.in_shape(0)
        sp = node.param.spp_param
        method = {pb.SPPParameter.MAX: pb.PoolingParameter.MAX, pb.SPPParameter.AVE: pb.PoolingParameter.AVE}.get(
            sp.pool, pb.PoolingParameter.STOCHASTIC)
        levels = self.levels(node, shape)
        if len(levels) == 1:
            # One level is SPPLayer's plain pooling layer: the 4-D result, not flattened.
            geo, out = levels[0]
            g.pool(g.x(0), g.y(0), method, geo.kernel, geo.stride, geo.pad, shape[2:], out[2:])
            return
        flat = []
        for lv, (geo, out) in enumerate(levels):
            p = g.pool(g.x(0), g.tmp(f"level{lv}"), method, geo.kernel, geo.stride, geo.pad, shape[2:], out[2:], f"level{lv}")
            flat.append(g.op("Flatten", [p], g.tmp(f"level{lv}_flat"), axis=1))
        g.op("Concat", flat, g.y(0), axis=1)




@register("Pooling3D")
class Pooling3D(Layer):
    """C3D's 3-D pooling on (N, C, L, H, W). facebook/C3D C3D-v1.0/src/caffe/layers/
    pooling3d_layer.cpp: out = ceil((size + 2 pad - kernel) / stride) + 1 for height and width,
    ceil((L - kernel_depth) / temporal_stride) + 1 for the length (never padded), with no clip
    of the last window; pad only for AVE. MAX takes each window clipped to the input; AVE sums
    the clipped window and divides by the window clipped to the padded frame (the length to L)."""

    family = "pooling"
    param = "pooling_param"
    fork_defaults = C3D_DEFAULTS
    origin = "the C3D fork of Caffe (facebook/C3D)"
    checked_against = "facebook/C3D C3D-v1.0/src/caffe/layers/pooling3d_layer.cpp (read from a stored copy)"

    def geometry(self, node):
        from .conv import c3d_geometry
        kernel, stride, pad = c3d_geometry(node, "pooling_param")
        pp = node.param.pooling_param
        if pp.pool == P.STOCHASTIC:
            bad(node, "STOCHASTIC 3-D pooling is not implemented in C3D (NOT_IMPLEMENTED)", node.field_span("pooling_param"))
        if pad[1] and pp.pool != P.AVE:
            bad(node, "C3D pads only average pooling (\"Padding implemented only for average pooling\")",
                node.field_span("pooling_param", "pad"))
        return kernel, stride, pad

    def method(self, node) -> str:
        """MAX or AVE (geometry refuses STOCHASTIC)."""
        return "MAX" if node.param.pooling_param.pool == P.MAX else "AVE"

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 5)
        kernel, stride, pad = self.geometry(node)
        out = [shape[0], shape[1]]
        for i, name in enumerate(("length", "height", "width")):
            span = shape[2 + i] + 2 * pad[i] - kernel[i]
            if span < 0:
                bad(node, f"kernel {kernel[i]} is larger than the input {name} {shape[2 + i]}",
                    node.field_span("pooling_param"), code=codes.BAD_GEOMETRY)
            out.append(-(-span // stride[i]) + 1)
        return [tuple(out)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        kernel, stride, pad = self.geometry(node)
        n = len(rf.size)
        return [window_rf(rf, kernel[-n:], stride[-n:], pad[-n:])]

    def cost(self, node, in_shapes, out_shapes):
        kernel, _, _ = self.geometry(node)
        return {"macs": 0, "flops": prod(out_shapes[0]) * prod(kernel)}

    def to_onnx(self, node, g):
        """ONNX MaxPool / AveragePool, 3-D; the round-up overhang as end padding (ignored by
        MaxPool, not counted by AveragePool with count_include_pad=0), C3D's spatial padding of
        AVE as real zeros first so that it counts."""
        kernel, stride, pad = self.geometry(node)
        shape, out = g.in_shape(0), g.out_shape(0)
        x = g.x(0)
        size = list(shape[2:])
        if any(pad):
            x = g.op("Pad", [x, g.ints([0, 0, *pad, 0, 0, *pad], "pads")], g.tmp("padded"), mode="constant")
            size = [size[i] + 2 * pad[i] for i in range(3)]
        ends = [(out[2 + i] - 1) * stride[i] + kernel[i] - size[i] for i in range(3)]
        if any(e >= k for e, k in zip(ends, kernel)):
            g.fail("a window lies wholly past the input; ONNX pools refuse padding as large as the kernel")
        common = dict(kernel_shape=list(kernel), strides=list(stride), pads=[0, 0, 0, *ends])
        if self.method(node) == "MAX":
            g.op("MaxPool", [x], g.y(0), **common)
        else:
            g.op("AveragePool", [x], g.y(0), count_include_pad=0, **common)
