"""Layers that rearrange values: Tile, Flatten, Reshape, ArgMax, Reduction, and the forks'
ShuffleChannel, Reorg and AutoCrop (netdef/layers/shape.py)."""
from __future__ import annotations

import math

import numpy as np

from ..proto import pb
from ..layers.base import count
from .base import canonical_axis, included, op


@op("Tile")
def _tile(ctx, layer, bottoms, params):
    p = layer.tile_param
    x = bottoms[0]
    ax = canonical_axis(ctx, p.axis, x.ndim)
    reps = [1] * x.ndim
    reps[ax] = p.tiles
    return [np.tile(x, reps)]


@op("Flatten")
def _flatten(ctx, layer, bottoms, params):
    p = layer.flatten_param
    x = bottoms[0]
    a = canonical_axis(ctx, p.axis, x.ndim)
    e = canonical_axis(ctx, p.end_axis, x.ndim)
    return [x.reshape(x.shape[:a] + (count(x.shape, a, e + 1),) + x.shape[e + 1:])]


@op("Reshape")
def _reshape(ctx, layer, bottoms, params):
    p = layer.reshape_param
    x = bottoms[0]
    start = p.axis if p.axis >= 0 else x.ndim + p.axis + 1
    if not 0 <= start <= x.ndim:
        ctx.fail(f"axis {p.axis} is out of range")
    end = x.ndim if p.num_axes == -1 else start + p.num_axes
    if end > x.ndim:
        ctx.fail("axis + num_axes runs past the input's axes")
    dims = list(p.shape.dim)
    new = []
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= x.ndim:
                ctx.fail(f"dim {i} is 0 (copy) but the input has no axis {start + i}")
            new.append(x.shape[start + i])
        else:
            new.append(int(d))
    shape = list(x.shape[:start]) + new + list(x.shape[end:])
    if new.count(-1) > 1:
        ctx.fail("more than one dimension is -1")
    if -1 in new:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or x.size % known:
            ctx.fail(f"cannot infer -1: {x.size} values do not divide by {known}")
        shape[shape.index(-1)] = x.size // known
    if math.prod(shape) != x.size:
        ctx.fail(f"shape {shape} does not hold the input's {x.size} values")
    return [x.reshape(shape)]


@op("ArgMax")
def _argmax(ctx, layer, bottoms, params):
    p = layer.argmax_param
    x = bottoms[0]
    k = p.top_k
    if p.HasField("axis"):
        ax = canonical_axis(ctx, p.axis, x.ndim)
        moved = np.moveaxis(x, ax, -1)
    else:
        moved = x.reshape(x.shape[0], -1)
    dim = moved.shape[-1]
    if not 1 <= k <= dim:
        ctx.fail(f"top_k {k} must be between 1 and {dim}")
    # std::partial_sort with std::greater on (value, index): ties go to the larger index.
    # Sort on the float32 values Caffe sees.
    vals = moved.astype(np.float32)
    idx = np.arange(dim)
    order = np.lexsort((-np.broadcast_to(idx, vals.shape), -vals), axis=-1)[..., :k]
    top_vals = np.take_along_axis(moved, order, axis=-1)
    if p.HasField("axis"):
        res = top_vals if p.out_max_val else order.astype(np.float64)
        return [np.moveaxis(res, -1, ax)]
    n = x.shape[0]
    shape = [n, 2 if p.out_max_val else 1, k] + [1] * max(0, x.ndim - 3)
    if p.out_max_val:
        out = np.stack([order.astype(np.float64), top_vals], axis=1)
    else:
        out = order.astype(np.float64)[:, None, :]
    return [out.reshape(shape)]


@op("Reduction")
def _reduction(ctx, layer, bottoms, params):
    p = layer.reduction_param
    x = bottoms[0]
    ax = canonical_axis(ctx, p.axis, x.ndim)
    m = x.reshape(x.shape[:ax] + (-1,))
    R = pb.ReductionParameter
    if p.operation == R.SUM:
        y = m.sum(axis=-1)
    elif p.operation == R.ASUM:
        y = np.abs(m).sum(axis=-1)
    elif p.operation == R.SUMSQ:
        y = (m * m).sum(axis=-1)
    else:
        y = m.mean(axis=-1)
    return [y * p.coeff]


@op("ShuffleChannel")
def _shuffle_channel(ctx, layer, bottoms, params):
    x = bottoms[0]
    group = int(ctx.fork_param("shuffle_channel_param", "group"))
    n, c = x.shape[:2]
    return [x.reshape(n, group, c // group, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)]


@op("Reorg")
def _reorg(ctx, layer, bottoms, params):
    # gklz1982/caffe-yolov2 ReorgLayer with darknet's reorg_cpu, written as its index loops
    # over flat arrays (forward = reverse): independent of the reshape/transpose in the export.
    x = bottoms[0]
    s = ctx.fork_given("reorg_param", "stride")
    if s is None:
        ctx.fail("reorg_param has no stride")
    s = int(s)
    reverse = bool(ctx.fork_param("reorg_param", "reverse"))
    b, c, h, w = x.shape
    out_c = c // (s * s)
    k, j, i = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    c2, offset = k % out_c, k // out_c
    w2, h2 = i * s + offset % s, j * s + offset // s
    in_index = (i + w * (j + h * k)).ravel()
    out_index = (w2 + w * s * (h2 + h * s * c2)).ravel()
    src = x.reshape(b, -1)
    out = np.empty_like(src)
    if reverse:
        out[:, out_index] = src[:, in_index]
        return [out.reshape(b, out_c, h * s, w * s)]
    out[:, in_index] = src[:, out_index]
    return [out.reshape(b, c * s * s, h // s, w // s)]


def _coord_map(layer):
    """(scale, shift) per spatial axis of a layer's map from bottom to top coordinates, as the
    FCN/HED coordinate maps define them: convolution and pooling t = (b - ((k - 1) d / 2 - p)) / s,
    deconvolution the inverse, Crop/AutoCrop t = b - offset; anything else the identity."""
    from fractions import Fraction as F
    t = layer.type
    if t in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        def pick(rep, h, w, default):
            if p.HasField(h) or p.HasField(w):
                return [getattr(p, h), getattr(p, w)]
            vals = list(rep)
            return [default] * 2 if not vals else ([vals[0]] * 2 if len(vals) == 1 else vals[:2])
        k = pick(p.kernel_size, "kernel_h", "kernel_w", 1)
        s = pick(p.stride, "stride_h", "stride_w", 1)
        pad = pick(p.pad, "pad_h", "pad_w", 0)
        d = list(p.dilation) or [1]
        d = [d[0]] * 2 if len(d) == 1 else d[:2]
        maps = [(F(1, s[i]), (F(pad[i]) - F((k[i] - 1) * d[i], 2)) / s[i]) for i in range(2)]
        if t == "Deconvolution":
            maps = [(1 / a, -b / a) for a, b in maps]
        return maps
    if t == "Pooling":
        p = layer.pooling_param
        if p.global_pooling:
            return None
        k = [p.kernel_h, p.kernel_w] if (p.HasField("kernel_h") or p.HasField("kernel_w")) else [p.kernel_size] * 2
        s = [p.stride_h, p.stride_w] if (p.HasField("stride_h") or p.HasField("stride_w")) else [p.stride] * 2
        pad = [p.pad_h, p.pad_w] if (p.HasField("pad_h") or p.HasField("pad_w")) else [p.pad] * 2
        return [(F(1, s[i]), (F(pad[i]) - F(k[i] - 1, 2)) / s[i]) for i in range(2)]
    if t == "Crop":
        p = layer.crop_param
        offs = list(p.offset)
        ax = p.axis if p.axis >= 0 else 4 + p.axis
        o = [0, 0]
        for i in range(2):
            if 2 + i >= ax:
                o[i] = offs[0] if len(offs) == 1 else (offs[2 + i - ax] if offs else 0)
        return [(F(1), F(-o[i])) for i in range(2)]
    return [(F(1), F(0)), (F(1), F(0))]


@op("AutoCrop")
def _auto_crop(ctx, layer, bottoms, params):
    # The HED coordinate-map crop (crop_layer.cpp, "an add for HED"; AutoCrop): walk back along
    # first bottoms from bottom 0, then from bottom 1 to the first blob on that path; compose
    # the layers' coordinate maps; the bottom-0-to-bottom-1 map must be 1:1 with a shift <= 0.
    from fractions import Fraction as F
    net, upto = ctx.net, ctx.index
    ph, level, stages = ctx.phase_value
    producer = {}
    layers = {}
    for i, l in enumerate(net.layer[:upto]):
        if not included(l, ph, level, stages):
            continue
        layers[i] = l
        for top in l.top:
            producer.setdefault(top, i)       # the first producer: in-place layers are skipped
    a, b = layer.bottom[0], layer.bottom[1]
    path = [a]
    while a in producer and layers[producer[a]].bottom:
        a = layers[producer[a]].bottom[0]
        path.append(a)
    inter = b
    while inter not in path:
        if inter not in producer or not layers[producer[inter]].bottom:
            ctx.fail("cannot align apparently disconnected blobs")
        inter = layers[producer[inter]].bottom[0]

    def to_inter(blob):
        # Map from `blob` coordinates to `inter` coordinates: invert each layer's bottom-to-top map.
        maps = [(F(1), F(0)), (F(1), F(0))]
        while blob != inter:
            lyr = layers[producer[blob]]
            cm = _coord_map(lyr)
            if cm is None:
                ctx.fail(f"layer '{lyr.name}' has no coordinate map")
            # x_bottom = (x_top - shift) / scale, composed after the maps so far.
            maps = [((m[0]) / c[0], (m[1] - c[1]) / c[0]) for m, c in zip(maps, cm)]
            blob = lyr.bottom[0]
        return maps

    m0, m1 = to_inter(layer.bottom[0]), to_inter(layer.bottom[1])
    offs = []
    for i in range(2):
        if m0[i][0] != m1[i][0]:
            ctx.fail("only 1:1 crops are supported (the bottoms have different scales)")
        off = (m1[i][1] - m0[i][1]) / m0[i][0]
        if off.denominator != 1 or off < 0:
            ctx.fail(f"the crop offset {off} is not a non-negative integer")
        offs.append(int(off))
    x, ref = bottoms
    h, w = ref.shape[2:4]
    return [x[:, :, offs[0]:offs[0] + h, offs[1]:offs[1] + w]]


@op("Padding")
def _padding(ctx, layer, bottoms, params):
    # deeplab-public padding_layer.cpp Forward_cpu: top[n, c, h, w] = bottom[n, c, h - pad_beg,
    # w - pad_beg] where that is inside the bottom, else 0 (written as that index map).
    x = bottoms[0]
    beg = int(ctx.fork_param("padding_param", "pad_beg"))
    end = int(ctx.fork_param("padding_param", "pad_end"))
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + beg + end, w + beg + end), dtype=x.dtype)
    for top_h in range(out.shape[2]):
        src_h = top_h - beg
        if not 0 <= src_h < h:
            continue
        for top_w in range(out.shape[3]):
            src_w = top_w - beg
            if 0 <= src_w < w:
                out[:, :, top_h, top_w] = x[:, :, src_h, src_w]
    return [out]
