"""Per-layer ONNX lowerings with Caffe's semantics, and BatchNorm/Scale folding.

Each function takes the IR node and a `Lowering` context (see onnx.py) and adds nodes. The
places where converters usually go wrong carry a comment saying how Caffe differs from ONNX.
"""
from __future__ import annotations

import math

import numpy as np

from ..layers import conv as L_conv
from ..layers import merge as L_merge
from ..layers import pool as L_pool
from ..proto import pb

LOWERINGS: dict[str, object] = {}


def lowers(*types):
    def register(fn):
        for t in types:
            if t in LOWERINGS:
                raise ValueError(f"ONNX lowering for {t} registered twice")
            LOWERINGS[t] = fn
        return fn
    return register


def lowered_types() -> set[str]:
    return set(LOWERINGS)


def _axis(node, axis, rank):
    return axis + rank if axis < 0 else axis


# --- convolution ------------------------------------------------------------------------------

@lowers("Convolution", "Deconvolution")
def convolution(node, g):
    shape = g.in_shape(0)
    geo = L_conv.geometry(node, shape)
    cp = node.param.convolution_param
    if geo.axis != 1:
        g.fail(f"convolution over axis {geo.axis}: ONNX convolves from axis 1 only")
    w = g.param(0, "weight")
    b = g.param(1, "bias") if g.n_blobs > 1 else None
    op = "ConvTranspose" if node.type == "Deconvolution" else "Conv"
    # Deconvolution's weight is (C_in, C_out / group, k...), which is ConvTranspose's layout too.
    for i in range(g.n_in):
        ins = [g.x(i), w] + ([b] if b else [])
        g.op(op, ins, g.y(i), kernel_shape=list(geo.kernel), strides=list(geo.stride),
             pads=list(geo.pad) * 2, dilations=list(geo.dilation), group=cp.group)


@lowers("InnerProduct")
def inner_product(node, g):
    shape = g.in_shape(0)
    ip = node.param.inner_product_param
    axis = _axis(node, ip.axis, len(shape))
    x = g.x(0)
    if len(shape) != 2 or axis != 1:
        x = g.op("Flatten", [x], g.tmp("flatten"), axis=axis)
    w = g.param(0, "weight")
    ins = [x, w] + ([g.param(1, "bias")] if g.n_blobs > 1 else [])
    out = g.out_shape(0)
    direct = len(out) == 2
    y = g.op("Gemm", ins, g.y(0) if direct else g.tmp("gemm"), transB=0 if ip.transpose else 1)
    if not direct:
        g.reshape(y, out, g.out_dyn(0), g.y(0))


@lowers("Embed")
def embed(node, g):
    idx = g.op("Cast", [g.x(0)], g.tmp("index"), to=7)  # INT64; Caffe's static_cast<int> truncates too
    w = g.param(0, "weight")
    if g.n_blobs > 1:
        y = g.op("Gather", [w, idx], g.tmp("gather"), axis=0)
        g.op("Add", [y, g.param(1, "bias")], g.y(0))
    else:
        g.op("Gather", [w, idx], g.y(0), axis=0)


# --- pooling ----------------------------------------------------------------------------------

def _fit_end(size: int, begin: int, out: int, k: int, s: int) -> tuple[int, int | None]:
    """ONNX pools with floor((size + begin + end - k) / s) + 1 windows. Returns (end padding,
    cropped size or None) that give exactly Caffe's `out` windows from the same starts."""
    end = (out - 1) * s + k - size - begin
    if end >= 0:
        return end, None
    # Caffe stops before the last input rows: drop them instead of padding negatively.
    return 0, (out - 1) * s + k - begin


def pool(g, x: str, y: str, method: int, kernel, stride, pad, in_hw, out_hw, tag: str = "pool") -> str:
    """Caffe's pooling on (N, C, H, W) with output size out_hw (already Caffe's: rounded up,
    then clipped so the last window starts inside the image or its leading padding)."""
    P = pb.PoolingParameter
    if method == P.STOCHASTIC:
        g.fail("STOCHASTIC pooling is random at training time and has no CPU forward in Caffe; "
               "ONNX has no equivalent")
    ends, crops = [], []
    for i in range(2):
        e, c = _fit_end(in_hw[i], pad[i], out_hw[i], kernel[i], stride[i])
        ends.append(e)
        crops.append(c)
    if any(c is not None for c in crops):
        x = _crop_hw(g, x, crops, f"{tag}_crop")
    common = dict(kernel_shape=list(kernel), strides=list(stride))
    if method == P.MAX:
        # MaxPool ignores padding as Caffe does; the end padding only adds Caffe's overhang.
        return g.op("MaxPool", [x], y, pads=[pad[0], pad[1], ends[0], ends[1]], **common)
    # AVE: Caffe divides by the window clipped to the *padded* image: padding counts, the
    # round-up overhang past it does not. count_include_pad=1 gets the overhang wrong and 0
    # gets the padding wrong, so the padding becomes real zeros first.
    if list(ends) == list(pad):
        return g.op("AveragePool", [x], y, pads=[pad[0], pad[1], pad[0], pad[1]], count_include_pad=1, **common)
    if any(pad):
        padded = g.op("Pad", [x, g.ints([0, 0, pad[0], pad[1], 0, 0, pad[0], pad[1]], f"{tag}_pads")],
                      g.tmp(f"{tag}_pad"), mode="constant")
        hw = [in_hw[i] + 2 * pad[i] if crops[i] is None else crops[i] + pad[i] for i in range(2)]
        ends2, crops2 = [], []
        for i in range(2):
            e, c = _fit_end(hw[i], 0, out_hw[i], kernel[i], stride[i])
            ends2.append(e)
            crops2.append(c)
        if any(c is not None for c in crops2):
            padded = _crop_hw(g, padded, crops2, f"{tag}_crop2")
        return g.op("AveragePool", [padded], y, pads=[0, 0, ends2[0], ends2[1]], count_include_pad=0, **common)
    return g.op("AveragePool", [x], y, pads=[0, 0, ends[0], ends[1]], count_include_pad=0, **common)


def _crop_hw(g, x, crops, tag):
    axes = [i + 2 for i in range(2) if crops[i] is not None]
    ends = [crops[i] for i in range(2) if crops[i] is not None]
    return g.op("Slice", [x, g.ints([0] * len(axes), f"{tag}_starts"), g.ints(ends, f"{tag}_ends"),
                          g.ints(axes, f"{tag}_axes")], g.tmp(tag))


@lowers("Pooling")
def pooling(node, g):
    if g.n_out > 1:
        g.fail("the second top (the max-pooling mask) has no ONNX equivalent in Caffe's index format")
    shape = g.in_shape(0)
    geo = L_pool.geometry(node, shape)
    pp = node.param.pooling_param
    if geo.global_ and pp.pool != pb.PoolingParameter.STOCHASTIC:
        g.op("GlobalMaxPool" if pp.pool == pb.PoolingParameter.MAX else "GlobalAveragePool", [g.x(0)], g.y(0))
        return
    pool(g, g.x(0), g.y(0), pp.pool, geo.kernel, geo.stride, geo.pad, shape[2:], g.out_shape(0)[2:])


@lowers("SPP")
def spp(node, g):
    shape = g.in_shape(0)
    sp = node.param.spp_param
    method = {pb.SPPParameter.MAX: pb.PoolingParameter.MAX, pb.SPPParameter.AVE: pb.PoolingParameter.AVE}.get(
        sp.pool, pb.PoolingParameter.STOCHASTIC)
    levels = node.impl.levels(node, shape)
    if len(levels) == 1:
        # One level is SPPLayer's plain pooling layer: the 4-D result, not flattened.
        geo, out = levels[0]
        pool(g, g.x(0), g.y(0), method, geo.kernel, geo.stride, geo.pad, shape[2:], out[2:])
        return
    flat = []
    for lv, (geo, out) in enumerate(levels):
        p = pool(g, g.x(0), g.tmp(f"level{lv}"), method, geo.kernel, geo.stride, geo.pad, shape[2:], out[2:], f"level{lv}")
        flat.append(g.op("Flatten", [p], g.tmp(f"level{lv}_flat"), axis=1))
    g.op("Concat", flat, g.y(0), axis=1)


# --- normalisation ----------------------------------------------------------------------------

@lowers("LRN")
def lrn(node, g):
    p = node.param.lrn_param
    if p.norm_region == pb.LRNParameter.ACROSS_CHANNELS:
        # Same formula as ONNX LRN: x / (k + alpha / size * sum of squares) ^ beta.
        g.op("LRN", [g.x(0)], g.y(0), size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)
        return
    # WITHIN_CHANNEL: Caffe composes square -> AVE pool (size, pad (size-1)/2, stride 1, the
    # padding counted in the divisor) -> power(shift 1, scale alpha, power -beta) -> product.
    # `k` is not used in this mode.
    pre = (p.local_size - 1) // 2
    sq = g.op("Mul", [g.x(0), g.x(0)], g.tmp("square"))
    avg = g.op("AveragePool", [sq], g.tmp("average"), kernel_shape=[p.local_size] * 2, strides=[1, 1],
               pads=[pre] * 4, count_include_pad=1)
    t = g.op("Mul", [avg, g.const(p.alpha, "alpha")], g.tmp("scaled"))
    t = g.op("Add", [t, g.const(1.0, "one")], g.tmp("shifted"))
    t = g.op("Pow", [t, g.const(-p.beta, "neg_beta")], g.tmp("pow"))
    g.op("Mul", [g.x(0), t], g.y(0))


def _bn_stats(g):
    """Mean and variance as BatchNormLayer uses them: the stored sums scaled by 1 / blob 2,
    where a factor of 0 means 0 (not infinity)."""
    factor = float(g.blob(2).reshape(-1)[0])
    k = 0.0 if factor == 0 else 1.0 / factor
    mean = (g.blob(0).astype(np.float64) * k).astype(np.float32)
    var = (g.blob(1).astype(np.float64) * k).astype(np.float32)
    return mean, var


def _use_global_stats(node) -> bool:
    p = node.param.batch_norm_param
    return p.use_global_stats if p.HasField("use_global_stats") else True   # TEST-phase default


@lowers("BatchNorm")
def batch_norm(node, g):
    p = node.param.batch_norm_param
    shape = g.in_shape(0)
    c = shape[1] if len(shape) > 1 else 1
    if not _use_global_stats(node):
        # use_global_stats: false normalises with the batch's own statistics, even at TEST.
        axes = [i for i in range(len(shape)) if i != 1]
        mean = g.reduce("ReduceMean", g.x(0), axes, 1)
        d = g.op("Sub", [g.x(0), mean], g.tmp("centred"))
        var = g.reduce("ReduceMean", g.op("Mul", [d, d], g.tmp("sq")), axes, 1)
        den = g.op("Sqrt", [g.op("Add", [var, g.const(p.eps, "eps")], g.tmp("var_eps"))], g.tmp("std"))
        g.op("Div", [d, den], g.y(0))
        return
    mean, var = _bn_stats(g)
    if len(shape) < 2:
        g.fail("BatchNorm of a 1-D blob")
    g.op("BatchNormalization", [g.x(0), g.const(np.ones(c), "gamma"), g.const(np.zeros(c), "beta"),
                                g.const(mean, "mean"), g.const(var, "var")], g.y(0), epsilon=p.eps)


def _affine_axis(node, g, field):
    """(axis, parameter shape) of Scale/Bias with one bottom: shape[axis : axis + num_axes]."""
    p = getattr(node.param, field)
    shape = g.in_shape(0)
    pshape = g.blob_shape(0)
    if not pshape:
        return 0, ()
    axis = _axis(node, p.axis, len(shape))
    return axis, pshape


def _bcast_shape(pshape, axis, rank):
    return tuple(pshape) + (1,) * (rank - axis - len(pshape))


@lowers("Scale")
def scale(node, g):
    p = node.param.scale_param
    rank = len(g.in_shape(0))
    if g.n_in > 1:
        s_shape = g.in_shape(1)
        axis = _axis(node, p.axis, rank) if s_shape else 0
        trail = rank - axis - len(s_shape)
        s = g.x(1)
        if trail:
            # Reshape with 0 copies the second bottom's own dims (dynamic batch safe).
            s = g.op("Reshape", [s, g.ints([0] * len(s_shape) + [1] * trail, "scale_shape")], g.tmp("scale_b"))
        bias_shape = _bcast_shape(s_shape, axis, rank)
        if p.bias_term:
            y = g.op("Mul", [g.x(0), s], g.tmp("mul"))
            g.op("Add", [y, g.param(0, "bias", bias_shape)], g.y(0))
        else:
            g.op("Mul", [g.x(0), s], g.y(0))
        return
    axis, pshape = _affine_axis(node, g, "scale_param")
    b = _bcast_shape(pshape, axis, rank)
    s = g.param(0, "scale", b)
    if p.bias_term:
        y = g.op("Mul", [g.x(0), s], g.tmp("mul"))
        g.op("Add", [y, g.param(1, "bias", b)], g.y(0))
    else:
        g.op("Mul", [g.x(0), s], g.y(0))


@lowers("Bias")
def bias(node, g):
    p = node.param.bias_param
    rank = len(g.in_shape(0))
    if g.n_in > 1:
        b_shape = g.in_shape(1)
        axis = _axis(node, p.axis, rank) if b_shape else 0
        trail = rank - axis - len(b_shape)
        b = g.x(1)
        if trail:
            b = g.op("Reshape", [b, g.ints([0] * len(b_shape) + [1] * trail, "bias_shape")], g.tmp("bias_b"))
        g.op("Add", [g.x(0), b], g.y(0))
        return
    axis, pshape = _affine_axis(node, g, "bias_param")
    g.op("Add", [g.x(0), g.param(0, "bias", _bcast_shape(pshape, axis, rank))], g.y(0))


@lowers("MVN")
def mvn(node, g):
    p = node.param.mvn_param
    shape = g.in_shape(0)
    start = 1 if p.across_channels else 2
    if len(shape) <= start:
        g.fail(f"MVN of a {len(shape)}-D blob: every value is its own group")
    axes = list(range(start, len(shape)))
    mean = g.reduce("ReduceMean", g.x(0), axes, 1)
    if not p.normalize_variance:
        g.op("Sub", [g.x(0), mean], g.y(0))
        return
    d = g.op("Sub", [g.x(0), mean], g.tmp("centred"))
    var = g.reduce("ReduceMean", g.op("Mul", [d, d], g.tmp("sq")), axes, 1)
    # Caffe adds eps to the standard deviation, not to the variance.
    std = g.op("Add", [g.op("Sqrt", [var], g.tmp("std")), g.const(p.eps, "eps")], g.tmp("std_eps"))
    g.op("Div", [d, std], g.y(0))


@lowers("Normalize")
def normalize(node, g):
    from ..layers.fork import _NORMALIZE, ForkParams
    p = ForkParams(node, "norm_param", _NORMALIZE)
    shape = g.in_shape(0)
    eps = float(p.get("eps"))
    sq = g.op("Mul", [g.x(0), g.x(0)], g.tmp("sq"))
    # SSD's NormalizeLayer: sqrt(sum of squares + eps), over C*H*W or over channels per pixel.
    axes = list(range(1, len(shape))) if p.get("across_spatial") else [1]
    ssum = g.reduce("ReduceSum", sq, axes, 1)
    norm = g.op("Sqrt", [g.op("Add", [ssum, g.const(eps, "eps")], g.tmp("sum_eps"))], g.tmp("norm"))
    y = g.op("Div", [g.x(0), norm], g.tmp("normed"))
    sshape = () if p.get("channel_shared") else (shape[1],) + (1,) * (len(shape) - 2)
    g.op("Mul", [y, g.param(0, "scale", sshape if sshape else (1,))], g.y(0))


# --- activations ------------------------------------------------------------------------------

@lowers("ReLU")
def relu(node, g):
    a = node.param.relu_param.negative_slope
    if a == 0:
        g.op("Relu", [g.x(0)], g.y(0))
    else:
        g.op("LeakyRelu", [g.x(0)], g.y(0), alpha=a)


@lowers("ReLU6")
def relu6(node, g):
    g.op("Clip", [g.x(0), g.const(0.0, "min"), g.const(6.0, "max")], g.y(0))


@lowers("Sigmoid")
def sigmoid(node, g):
    g.op("Sigmoid", [g.x(0)], g.y(0))


@lowers("TanH")
def tanh(node, g):
    g.op("Tanh", [g.x(0)], g.y(0))


@lowers("AbsVal")
def absval(node, g):
    g.op("Abs", [g.x(0)], g.y(0))


@lowers("BNLL")
def bnll(node, g):
    g.op("Softplus", [g.x(0)], g.y(0))


@lowers("ELU")
def elu(node, g):
    g.op("Elu", [g.x(0)], g.y(0), alpha=node.param.elu_param.alpha)


@lowers("Clip")
def clip(node, g):
    p = node.param.clip_param
    g.op("Clip", [g.x(0), g.const(p.min, "min"), g.const(p.max, "max")], g.y(0))


@lowers("Swish")
def swish(node, g):
    beta = node.param.swish_param.beta
    t = g.x(0) if beta == 1 else g.op("Mul", [g.x(0), g.const(beta, "beta")], g.tmp("beta_x"))
    s = g.op("Sigmoid", [t], g.tmp("sigmoid"))
    g.op("Mul", [g.x(0), s], g.y(0))


def _affine(g, x, scale, shift, tag):
    if scale != 1:
        x = g.op("Mul", [x, g.const(scale, f"{tag}_scale")], g.tmp(f"{tag}_scaled"))
    if shift != 0:
        x = g.op("Add", [x, g.const(shift, f"{tag}_shift")], g.tmp(f"{tag}_shifted"))
    return x


def _finish(g, x):
    """Route the last value to the layer's output (an Identity only when nothing was computed)."""
    if x == g.x(0):
        g.op("Identity", [x], g.y(0))
    else:
        g.ex.rename_output(x, g.y(0))


@lowers("Power")
def power(node, g):
    p = node.param.power_param
    t = _affine(g, g.x(0), p.scale, p.shift, "in")
    if p.power != 1:
        t = g.op("Pow", [t, g.const(p.power, "power")], g.tmp("pow"))
    _finish(g, t)


@lowers("Exp")
def exp(node, g):
    p = node.param.exp_param
    if p.base != -1 and p.base <= 0:
        g.fail(f"base {p.base:g}: Caffe needs -1 (e) or a positive base")
    ln = 1.0 if p.base == -1 else math.log(p.base)
    t = _affine(g, g.x(0), ln * p.scale, ln * p.shift, "in")
    g.op("Exp", [t], g.y(0))


@lowers("Log")
def log(node, g):
    p = node.param.log_param
    if p.base != -1 and p.base <= 0:
        g.fail(f"base {p.base:g}: Caffe needs -1 (e) or a positive base")
    t = _affine(g, g.x(0), p.scale, p.shift, "in")
    if p.base == -1:
        g.op("Log", [t], g.y(0))
    else:
        ln = g.op("Log", [t], g.tmp("ln"))
        g.op("Mul", [ln, g.const(1.0 / math.log(p.base), "inv_ln_base")], g.y(0))


@lowers("Threshold")
def threshold(node, g):
    gt = g.op("Greater", [g.x(0), g.const(node.param.threshold_param.threshold, "threshold")], g.tmp("greater"))
    g.cast_float(gt, g.y(0))


@lowers("PReLU")
def prelu(node, g):
    shape = g.in_shape(0)
    if node.param.prelu_param.channel_shared:
        slope = g.param(0, "slope", (1,))
    else:
        slope = g.param(0, "slope", (shape[1],) + (1,) * (len(shape) - 2))
    g.op("PRelu", [g.x(0), slope], g.y(0))


@lowers("Dropout")
def dropout(node, g):
    # Caffe scales at training time, so inference is the identity: the layer vanishes.
    for i in range(g.n_out):
        g.alias(i, g.x(i))


@lowers("Split")
def split(node, g):
    for i in range(g.n_out):
        g.alias(i, g.x(0))


@lowers("Softmax")
def softmax(node, g):
    axis = _axis(node, node.param.softmax_param.axis, len(g.in_shape(0)))
    g.op("Softmax", [g.x(0)], g.y(0), axis=axis)


# --- merging, splitting, shapes ---------------------------------------------------------------

@lowers("Eltwise")
def eltwise(node, g):
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


@lowers("Concat")
def concat(node, g):
    axis = L_merge.legacy_axis(node, "concat_param", "concat_dim", g.in_shape(0))
    g.op("Concat", [g.x(i) for i in range(g.n_in)], g.y(0), axis=axis)


@lowers("Slice")
def slice_(node, g):
    shape = g.in_shape(0)
    axis = L_merge.legacy_axis(node, "slice_param", "slice_dim", shape)
    if g.in_dyn(0)[axis]:
        g.fail("slicing the batch axis cannot be exported with a dynamic batch")
    sizes = [g.out_shape(i)[axis] for i in range(g.n_out)]
    if g.n_out == 1:
        g.op("Identity", [g.x(0)], g.y(0))
        return
    g.op("Split", [g.x(0), g.ints(sizes, "split")], [g.y(i) for i in range(g.n_out)], axis=axis)


@lowers("Crop")
def crop(node, g):
    shape = g.in_shape(0)
    ref = g.in_shape(1)
    axis, offsets = L_merge.crop_offsets(node, shape)
    axes = list(range(axis, len(shape)))
    if any(g.in_dyn(0)[a] for a in axes):
        g.fail("cropping the batch axis cannot be exported with a dynamic batch")
    starts = [offsets[a] for a in axes]
    ends = [offsets[a] + ref[a] for a in axes]
    g.op("Slice", [g.x(0), g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes, "axes")], g.y(0))


@lowers("Tile")
def tile(node, g):
    p = node.param.tile_param
    shape = g.in_shape(0)
    reps = [1] * len(shape)
    reps[_axis(node, p.axis, len(shape))] = p.tiles
    g.op("Tile", [g.x(0), g.ints(reps, "repeats")], g.y(0))


@lowers("Reshape", "Flatten")
def reshape(node, g):
    out = g.out_shape(0)
    if node.type == "Flatten" and len(out) == 2 and not any(g.out_dyn(0)[1:]):
        fp = node.param.flatten_param
        if _axis(node, fp.axis, len(g.in_shape(0))) == 1 and fp.end_axis in (-1, len(g.in_shape(0)) - 1):
            g.op("Flatten", [g.x(0)], g.y(0), axis=1)
            return
    g.reshape(g.x(0), out, g.out_dyn(0), g.y(0))


@lowers("Permute")
def permute(node, g):
    order = node.meta.get("permute_order")
    if order is None:
        g.fail("the permute order is unknown")
    g.op("Transpose", [g.x(0)], g.y(0), perm=list(order))


@lowers("ShuffleChannel")
def shuffle_channel(node, g):
    from ..layers.fork import ForkParams
    groups = int(ForkParams(node, "shuffle_channel_param", {"group": 1}).get("group"))
    n, c, *rest = g.in_shape(0)
    if c % groups:
        g.fail(f"{c} channels do not split into {groups} groups")
    dyn = g.in_dyn(0)
    a = g.reshape(g.x(0), [n, groups, c // groups, *rest], [dyn[0], False, False] + [False] * len(rest))
    t = g.op("Transpose", [a], g.tmp("transpose"), perm=[0, 2, 1] + list(range(3, 3 + len(rest))))
    g.reshape(t, g.out_shape(0), g.out_dyn(0), g.y(0))


@lowers("ArgMax")
def argmax(node, g):
    p = node.param.argmax_param
    shape = g.in_shape(0)
    k = p.top_k
    if p.HasField("axis"):
        axis = _axis(node, p.axis, len(shape))
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


@lowers("Reduction")
def reduction(node, g):
    p = node.param.reduction_param
    shape = g.in_shape(0)
    axis = _axis(node, p.axis, len(shape))
    R = pb.ReductionParameter
    # Caffe reduces every axis from `axis` on: flatten them into one, reduce it away.
    x = g.op("Reshape", [g.x(0), g.ints([0] * axis + [-1], "flat_shape")], g.tmp("flat"))
    op = {R.SUM: "ReduceSum", R.ASUM: "ReduceL1", R.SUMSQ: "ReduceSumSquare", R.MEAN: "ReduceMean"}[p.operation]
    if p.coeff == 1:
        g.reduce(op, x, [axis], 0, g.y(0))
    else:
        r = g.reduce(op, x, [axis], 0, g.tmp("reduced"))
        g.op("Mul", [r, g.const(p.coeff, "coeff")], g.y(0))


@lowers("Interp")
def interp(node, g):
    out = g.out_shape(0)
    from ..layers.fork import ForkParams
    p = ForkParams(node, "interp_param", {"pad_beg": 0, "pad_end": 0})
    if p.get("pad_beg") or p.get("pad_end"):
        g.fail("Interp with pad_beg/pad_end is not lowered")
    # PSPNet's caffe_cpu_interp2 maps corners to corners: (in - 1) / (out - 1).
    sizes = g.ints(list(out), "sizes")
    if any(g.out_dyn(0)):
        shp = g.op("Shape", [g.x(0)], g.tmp("shape"))
        nc = g.op("Slice", [shp, g.ints([0], "s0"), g.ints([2], "s2")], g.tmp("nc"))
        sizes = g.op("Concat", [nc, g.ints(list(out[2:]), "hw")], g.tmp("sizes"), axis=0)
    g.op("Resize", [g.x(0), "", "", sizes], g.y(0), mode="linear", coordinate_transformation_mode="align_corners")


# --- folding BatchNorm / Scale into the layer before ------------------------------------------

FOLD_TARGETS = ("Convolution", "Deconvolution", "InnerProduct")


def fold_target_ok(node) -> bool:
    if node.type == "InnerProduct":
        shape = node.inputs[0].meta.get("shape")
        ip = node.param.inner_product_param
        return shape is not None and _axis(node, ip.axis, len(shape)) == 1
    cp = node.param.convolution_param
    return cp.axis in (1, -len(node.inputs[0].meta.get("shape") or (0, 0)) + 1)


def foldable(node, target) -> bool:
    """BatchNorm with stored statistics, or a one-bottom Scale over the channel axis only."""
    if len(node.inputs) != 1 or len(node.outputs) != 1:
        return False
    shape = node.inputs[0].meta.get("shape")
    if not shape or len(shape) < 2:
        return False
    if node.type == "BatchNorm":
        return _use_global_stats(node)
    if node.type == "Scale":
        p = node.param.scale_param
        blobs = node.meta.get("blobs") or []
        return bool(blobs) and tuple(blobs[0]) == (shape[1],) and _axis(node, p.axis, len(shape)) == 1
    return False


def _channel_view(target, w: np.ndarray) -> np.ndarray:
    """Broadcast shape for a per-output-channel factor on this layer's weight."""
    if target.type == "Convolution":
        return (-1,) + (1,) * (w.ndim - 1)
    if target.type == "InnerProduct":
        return (1, -1) if target.param.inner_product_param.transpose else (-1, 1)
    return None  # Deconvolution: handled by the caller (groups interleave the axes)


def apply_fold(ex, fold) -> None:
    """Replace the target's blobs with lazily folded ones: W' = W * a, b' = b * a + c, for the
    composition y = a * x + c of the absorbed layers (per output channel)."""
    target = fold.target
    thunks = ex.blobs_of(target)
    shapes = ex.blob_shapes_of(target)
    n_out = target.outputs[0].meta["shape"][1]

    def coefficients():
        a = np.ones(n_out, np.float64)
        c = np.zeros(n_out, np.float64)
        for node in fold.absorbed:
            blobs = [np.asarray(t(), np.float64) for t in ex.blobs_of(node)]
            if node.type == "BatchNorm":
                factor = blobs[2].reshape(-1)[0]
                k = 0.0 if factor == 0 else 1.0 / factor
                mean, var = blobs[0] * k, blobs[1] * k
                eps = float(np.float32(node.param.batch_norm_param.eps))
                inv = 1.0 / np.sqrt(var + eps)
                a, c = a * inv, (c - mean) * inv
            else:
                s = blobs[0].reshape(-1)
                a, c = a * s, c * s
                if node.param.scale_param.bias_term:
                    c = c + blobs[1].reshape(-1)
        return a, c

    def weight():
        a, _ = coefficients()
        w = np.asarray(thunks[0](), np.float32)
        if target.type == "Deconvolution":
            cp = target.param.convolution_param
            grp = cp.group
            cin = w.shape[0]
            wg = w.reshape(grp, cin // grp, w.shape[1], *w.shape[2:])
            f = a.reshape(grp, 1, w.shape[1], *(1,) * (w.ndim - 2))
            return (wg * f).astype(np.float32).reshape(w.shape)
        return (w * a.reshape(_channel_view(target, w))).astype(np.float32)

    def bias_():
        a, c = coefficients()
        b = np.asarray(thunks[1](), np.float64).reshape(-1) if len(thunks) > 1 else np.zeros(n_out)
        return (b * a + c).astype(np.float32)

    ex._blobs[target.name] = [weight, bias_]
    ex._blob_shapes[target.name] = [shapes[0], (n_out,)]
