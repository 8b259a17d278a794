"""Pooling (pooling_layer.cpp, with Synopsys' asymmetric padding and the forks' ceil_mode),
SPP and C3D's 3-D pooling (netdef/layers/pool.py)."""
from __future__ import annotations

import math

import numpy as np

from .. import forks
from ..proto import pb
from .base import FLT_MAX, c3d_geometry, op, pads_tlbr


def pool2d(x: np.ndarray, method: int, kernel, stride, pad, round_mode: int = pb.PoolingParameter.CEIL,
           pad_end=None):
    """PoolingLayer on (N, C, H, W): Caffe's output size (rounded up, then clipped so the last
    window starts inside the image or its leading padding), MAX ignoring padding, AVE dividing
    by the window clipped to the padded image (padding counts, the round-up overhang does not)."""
    # Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe pooling_layer.cpp):
    # pad_end gives pad_b/pad_r apart from pad_t/pad_l; with any of them, both axes are clipped;
    # method 3 is AVE_EXC_PAD, whose divisor counts the window's input cells only.
    pad_end = list(pad) if pad_end is None else pad_end
    n, c, h, w = x.shape
    size = []
    for i, dim in enumerate((h, w)):
        span = dim + pad[i] + pad_end[i] - kernel[i]
        o = (math.ceil(span / stride[i]) if round_mode == pb.PoolingParameter.CEIL else math.floor(span / stride[i])) + 1
        # BVLC pooling_layer.cpp Reshape: `if (pad_h_ || pad_w_)` clips BOTH axes when either
        # axis is padded (a last window may not start in the padding).
        if any(list(pad) + list(pad_end)) and (o - 1) * stride[i] >= dim + pad[i]:
            o -= 1
        size.append(o)
    oh, ow = size
    # Window starts in input coordinates; the padded frame is shifted by `pad`.
    need_h = max((oh - 1) * stride[0] + kernel[0], pad[0] + h)
    need_w = max((ow - 1) * stride[1] + kernel[1], pad[1] + w)
    is_max = method == pb.PoolingParameter.MAX
    fill = -FLT_MAX if is_max else 0.0
    frame = np.full((n, c, need_h, need_w), fill)
    frame[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    out = np.full((n, c, oh, ow), -FLT_MAX) if is_max else np.zeros((n, c, oh, ow))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            win = frame[:, :, i:i + (oh - 1) * stride[0] + 1:stride[0], j:j + (ow - 1) * stride[1] + 1:stride[1]]
            if is_max:
                np.maximum(out, win, out=out)
            else:
                out += win
    if not is_max:
        def extent(o, k, s, p, e, dim):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, dim + e)
            if method == 3:
                return np.minimum(end, dim) - np.maximum(start, 0)
            return end - start
        area = np.outer(extent(oh, kernel[0], stride[0], pad[0], pad_end[0], h),
                        extent(ow, kernel[1], stride[1], pad[1], pad_end[1], w))
        out = out / area
    return out


def max_pool_mask(x: np.ndarray, kernel, stride, pad, out_hw) -> np.ndarray:
    """PoolingLayer's MAX mask top: for each window (clipped to the input) the index h * W + w
    of its first maximum in row-major order (Caffe replaces the best only on a strict `>`)."""
    n, c, h, w = x.shape
    oh, ow = out_hw
    best = np.full((n, c, oh, ow), -np.inf)
    index = np.full((n, c, oh, ow), -1.0)
    hs = np.arange(oh) * stride[0] - pad[0]
    ws = np.arange(ow) * stride[1] - pad[1]
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = hs + i, ws + j
            rv = (rows >= 0) & (rows < h) & (rows < hs + kernel[0])
            cv = (cols >= 0) & (cols < w)
            vals = x[:, :, np.clip(rows, 0, h - 1)][:, :, :, np.clip(cols, 0, w - 1)]
            ok = np.outer(rv, cv)[None, None] & (vals > best)
            best = np.where(ok, vals, best)
            index = np.where(ok, (np.clip(rows, 0, h - 1)[:, None] * w + np.clip(cols, 0, w - 1)[None, :])[None, None],
                             index)
    return index


# Both sides keep a window's first maximum in row-major order: BVLC caffe src/caffe/layers/
# pooling_layer.cpp Forward_cpu (MAX) starts from -FLT_MAX and replaces it on `bottom > top`,
# mask = h * width + w; microsoft/onnxruntime onnxruntime/core/providers/cpu/nn/pool_functors.h
# MaxPool2DTask takes the first cell, then replaces it on `x > Yh`, Indices = (n * C + c) * H * W
# + h * W + w with storage_order 0 (the export takes it mod H * W: layers/resize.max_pool_mask).
def argmax_ties(x: np.ndarray, mask: np.ndarray, other: np.ndarray, kernel, stride, pad,
                tolerance: float) -> np.ndarray:
    """Where another MAX mask (`other`: onnxruntime's) differs from `mask` (max_pool_mask's) at
    a tie: both indices lie in the position's window (clipped to the input) and the input holds,
    within `tolerance` relative to max(1, max |x|) (verify's measure), the same value at both.
    Both pick the first maximum, so they differ only where the two implementations' own
    roundings order two nearly equal values differently. A boolean array shaped like the masks."""
    tie = np.zeros(mask.shape, bool)
    if mask.shape != other.shape or x.ndim != 4 or mask.ndim != 4:
        return tie
    n, c, h, w = x.shape
    at = np.nonzero(mask != other)
    if not at[0].size:
        return tie
    ours = mask[at].astype(np.int64)
    theirs = np.nan_to_num(other[at], nan=-1.0).astype(np.int64)
    inside = (ours >= 0) & (ours < h * w) & (theirs >= 0) & (theirs < h * w)
    ours, theirs = np.where(inside, ours, 0), np.where(inside, theirs, 0)
    top = at[2] * stride[0] - pad[0]
    left = at[3] * stride[1] - pad[1]
    for index in (ours, theirs):
        row, col = index // w, index % w
        inside &= (row >= np.maximum(top, 0)) & (row < np.minimum(top + kernel[0], h))
        inside &= (col >= np.maximum(left, 0)) & (col < np.minimum(left + kernel[1], w))
    plane = x.reshape(n, c, h * w)
    a = plane[at[0], at[1], ours].astype(np.float64)
    b = plane[at[0], at[1], theirs].astype(np.float64)
    finite = np.abs(x[np.isfinite(x)])
    scale = max(1.0, float(finite.max()) if finite.size else 1.0)
    with np.errstate(invalid="ignore"):
        close = (a == b) | (np.abs(a - b) <= tolerance * scale)
    tie[at] = inside & close
    return tie


@op("Pooling")
def _pooling(ctx, layer, bottoms, params):
    p = layer.pooling_param
    x = bottoms[0]
    if x.ndim != 4:
        ctx.fail(f"pooling needs a 4-axis input, got {x.ndim} axes")
    if p.global_pooling:
        kernel, stride, pad = [x.shape[2], x.shape[3]], [1, 1], [0, 0]
    else:
        if p.HasField("kernel_h") or p.HasField("kernel_w"):
            kernel = [p.kernel_h, p.kernel_w]
        elif p.HasField("kernel_size"):
            kernel = [p.kernel_size] * 2
        else:
            ctx.fail("kernel_size is required")
        pad = [p.pad_h, p.pad_w] if (p.HasField("pad_h") or p.HasField("pad_w")) else [p.pad] * 2
        stride = [p.stride_h, p.stride_w] if (p.HasField("stride_h") or p.HasField("stride_w")) else [p.stride] * 2
    if p.pool == pb.PoolingParameter.STOCHASTIC:
        ctx.fail("STOCHASTIC pooling has no CPU forward in Caffe (NOT_IMPLEMENTED)")
    if min(kernel) <= 0 or min(stride) <= 0:
        ctx.fail("kernel and stride must be positive")
    pad_end = None
    asym = pads_tlbr(ctx, "pooling_param")
    if asym is not None:
        if p.global_pooling:
            ctx.fail("global pooling allows no padding")
        pad, pad_end = asym
    method = 3 if ctx.sub_field("pooling_param", "pool", None) in ("AVE_EXC_PAD", "AVE_TF") else p.pool
    # The fork's `ceil_mode` (false: round down) overrides BVLC's round_mode (netdef/forks.py).
    fork_ceil = forks.ceil_mode(ctx.loc)
    round_mode = p.round_mode if fork_ceil is None else (pb.PoolingParameter.CEIL if fork_ceil
                                                         else pb.PoolingParameter.FLOOR)
    y = pool2d(x, method, kernel, stride, pad, round_mode, pad_end)
    outs = [y]
    if len(layer.top) > 1:
        if pad_end is not None:
            ctx.fail("the mask top of a pooling with pad_t/pad_l/pad_b/pad_r is not supported")
        if p.pool != pb.PoolingParameter.MAX:
            ctx.fail("only MAX pooling has a mask top")
        outs.append(max_pool_mask(x, kernel, stride, pad, y.shape[2:]))
    return outs


@op("SPP")
def _spp(ctx, layer, bottoms, params):
    p = layer.spp_param
    x = bottoms[0]
    h, w = x.shape[2], x.shape[3]
    if p.pool == pb.SPPParameter.STOCHASTIC:
        ctx.fail("STOCHASTIC pooling has no CPU forward in Caffe")
    method = pb.PoolingParameter.MAX if p.pool == pb.SPPParameter.MAX else pb.PoolingParameter.AVE
    levels = []
    for level in range(max(p.pyramid_height, 1)):
        bins = 2 ** level
        kh, kw = math.ceil(h / bins), math.ceil(w / bins)
        ph, pw = (kh * bins - h + 1) // 2, (kw * bins - w + 1) // 2
        if ph >= kh or pw >= kw:
            ctx.fail(f"pyramid level {level} needs padding {ph}x{pw} no smaller than its {kh}x{kw} window")
        levels.append(pool2d(x, method, [kh, kw], [kh, kw], [ph, pw]))
    if p.pyramid_height == 1:
        return [levels[0]]     # a single level is the pooling layer itself: 4 axes, no flatten
    return [np.concatenate([lv.reshape(lv.shape[0], -1) for lv in levels], axis=1)]


@op("Pooling3D")
def _pooling3d(ctx, layer, bottoms, params):
    # facebook/C3D pooling3d_layer.cpp, written as its loops over output cells.
    x = bottoms[0]
    kernel, stride, pad = c3d_geometry(ctx, "pooling_param")
    is_max = layer.pooling_param.pool == pb.PoolingParameter.MAX
    n, c, L, H, W = x.shape
    size = (L, H, W)
    out = [-(-(size[i] + 2 * pad[i] - kernel[i]) // stride[i]) + 1 for i in range(3)]
    y = np.zeros((n, c, *out))
    for pl in range(out[0]):
        for ph in range(out[1]):
            for pw in range(out[2]):
                lo, hi = [], []
                for i, o in enumerate((pl, ph, pw)):
                    start = o * stride[i] - pad[i]
                    end = min(start + kernel[i], size[i] + pad[i])
                    lo.append(start)
                    hi.append(end)
                area = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])
                sl = tuple(slice(max(lo[i], 0), min(hi[i], size[i])) for i in range(3))
                win = x[(slice(None), slice(None)) + sl]
                if is_max:
                    y[:, :, pl, ph, pw] = win.max(axis=(2, 3, 4)) if win.size else -FLT_MAX
                else:
                    y[:, :, pl, ph, pw] = win.sum(axis=(2, 3, 4)) / area
    return [y]
