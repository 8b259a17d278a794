"""Helpers the layers' `to_onnx` methods share, and BatchNorm/Scale folding.

Each layer family lowers itself beside its shape rule (netdef/layers/<family>.py, method
`to_onnx(node, g)` with g an export.onnx.Lowering). What several of them need lives here:
Caffe's pooling geometry in ONNX terms (used by Pooling, SPP), BatchNorm's statistics, the
broadcast shapes of Scale/Bias, and the fold of BatchNorm/Scale into the layer before.
"""
from __future__ import annotations

import numpy as np

from ..proto import pb

def lowered_types() -> set[str]:
    """Layer types whose class has a to_onnx method."""
    from ..layers import base
    return {t for t in base.known_types() if getattr(base.get(t), "to_onnx", None) is not None}


def axis_index(node, axis, rank):
    return axis + rank if axis < 0 else axis


# --- convolution ------------------------------------------------------------------------------


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
    if any(e >= k for e, k in zip(ends, kernel)):
        return _pool_explicit(g, x, y, method, kernel, stride, pad, ends, in_hw, out_hw, tag)
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


def _pool_explicit(g, x, y, method, kernel, stride, pad, ends, in_hw, out_hw, tag):
    """Windows that lie wholly past the input (stride larger than the kernel, with the
    round-up): ONNX pools refuse padding as large as the kernel. Caffe's MAX of an empty
    window is -FLT_MAX, its initial value: the padding is made explicit with that value. Its
    AVE divides a zero sum by min(start + k, H + pad) - start, negative or zero past the input
    (so -0, +0 or NaN): the windows that meet the input are pooled as usual, and the empty ones
    appended as zeros times 0 / that size. (A zero-filled Pad before the pool, as for MAX,
    would be fused into the pool by onnxruntime's optimizer, which then refuses the model.)"""
    P = pb.PoolingParameter
    common = dict(kernel_shape=list(kernel), strides=list(stride))
    if method == P.MAX:
        pads = g.ints([0, 0, pad[0], pad[1], 0, 0, ends[0], ends[1]], f"{tag}_pads")
        fill = float(-np.finfo(np.float32).max)
        padded = g.op("Pad", [x, pads, g.const(fill, f"{tag}_fill")], g.tmp(f"{tag}_pad"), mode="constant")
        return g.op("MaxPool", [padded], y, **common)
    valid = [sum(1 for o in range(out_hw[i]) if o * stride[i] - pad[i] < in_hw[i]) for i in range(2)]
    inner = pool(g, x, g.tmp(f"{tag}_meets_input"), method, kernel, stride, pad, in_hw, valid, f"{tag}_in")
    tail = g.ints([0, 0, 0, 0, 0, 0, out_hw[0] - valid[0], out_hw[1] - valid[1]], f"{tag}_empty_pads")
    padded = g.op("Pad", [inner, tail], g.tmp(f"{tag}_with_empty"), mode="constant")
    sizes = []
    for i in range(2):
        start = np.arange(out_hw[i]) * stride[i] - pad[i]
        sizes.append(np.minimum(start + kernel[i], in_hw[i] + pad[i]) - start)
    with np.errstate(divide="ignore", invalid="ignore"):
        empty = 0.0 / np.outer(sizes[0], sizes[1]).astype(np.float64)
    factor = np.where(np.outer(np.arange(out_hw[0]) < valid[0], np.arange(out_hw[1]) < valid[1]), 1.0, empty)
    return g.op("Mul", [padded, g.const(factor, f"{tag}_empty_values")], y)


def _crop_hw(g, x, crops, tag):
    axes = [i + 2 for i in range(2) if crops[i] is not None]
    ends = [crops[i] for i in range(2) if crops[i] is not None]
    return g.op("Slice", [x, g.ints([0] * len(axes), f"{tag}_starts"), g.ints(ends, f"{tag}_ends"),
                          g.ints(axes, f"{tag}_axes")], g.tmp(tag))


# --- normalisation ----------------------------------------------------------------------------


def bn_stats(g):
    """Mean and variance as BatchNormLayer uses them: the stored sums scaled by 1 / blob 2,
    where a factor of 0 means 0 (not infinity)."""
    factor = float(g.blob(2).reshape(-1)[0])
    k = 0.0 if factor == 0 else 1.0 / factor
    mean = (g.blob(0).astype(np.float64) * k).astype(np.float32)
    var = (g.blob(1).astype(np.float64) * k).astype(np.float32)
    return mean, var


def use_global_stats(node, phase: str = "TEST") -> bool:
    """BatchNormLayer: the stored statistics unless use_global_stats says otherwise; its
    default follows the phase (TEST: stored, TRAIN: the batch's own)."""
    p = node.param.batch_norm_param
    return p.use_global_stats if p.HasField("use_global_stats") else phase == "TEST"


def affine_axis(node, g, field):
    """(axis, parameter shape) of Scale/Bias with one bottom: shape[axis : axis + num_axes]."""
    p = getattr(node.param, field)
    shape = g.in_shape(0)
    pshape = g.blob_shape(0)
    if not pshape:
        return 0, ()
    axis = axis_index(node, p.axis, len(shape))
    return axis, pshape


def bcast_shape(pshape, axis, rank):
    return tuple(pshape) + (1,) * (rank - axis - len(pshape))


# --- activations ------------------------------------------------------------------------------


def affine(g, x, scale, shift, tag):
    if scale != 1:
        x = g.op("Mul", [x, g.const(scale, f"{tag}_scale")], g.tmp(f"{tag}_scaled"))
    if shift != 0:
        x = g.op("Add", [x, g.const(shift, f"{tag}_shift")], g.tmp(f"{tag}_shifted"))
    return x


def finish(g, x):
    """Route the last value to the layer's output (an Identity only when nothing was computed)."""
    if x == g.x(0):
        g.op("Identity", [x], g.y(0))
    else:
        g.ex.rename_output(x, g.y(0))


# --- merging, splitting, shapes ---------------------------------------------------------------


# --- folding BatchNorm / Scale into the layer before ------------------------------------------

FOLD_TARGETS = ("Convolution", "Deconvolution", "InnerProduct")


def fold_target_ok(node) -> bool:
    if getattr(node.impl, "variant", ""):
        return False        # a fork's variant (InnerProduct normalize: true rescales its weights)
    if node.type == "InnerProduct":
        shape = node.inputs[0].meta.get("shape")
        ip = node.param.inner_product_param
        return shape is not None and axis_index(node, ip.axis, len(shape)) == 1
    cp = node.param.convolution_param
    return cp.axis in (1, -len(node.inputs[0].meta.get("shape") or (0, 0)) + 1)


def foldable(node, target, phase: str = "TEST") -> bool:
    """BatchNorm with stored statistics, or a one-bottom Scale over the channel axis only."""
    if len(node.inputs) != 1 or len(node.outputs) != 1:
        return False
    shape = node.inputs[0].meta.get("shape")
    if not shape or len(shape) < 2:
        return False
    if node.type == "BatchNorm":
        return use_global_stats(node, phase)
    if node.type == "Scale":
        p = node.param.scale_param
        blobs = node.meta.get("blobs") or []
        return bool(blobs) and tuple(blobs[0]) == (shape[1],) and axis_index(node, p.axis, len(shape)) == 1
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
