"""The forks' resizes: Upsample, UpsampleDarknet, Interp, ResizeBilinear (netdef/layers/resize.py)."""
from __future__ import annotations

import math

import numpy as np

from .base import op


@op("Upsample")
def _upsample(ctx, layer, bottoms, params):
    # SegNet's UpsampleLayer::Forward_cpu: a zero top; each bottom value goes to the index its
    # mask holds within the channel's plane (in order, so a repeated index keeps the last).
    # With one bottom (YOLOv3 ports): top (h, w) = bottom (h / scale, w / scale).
    x = bottoms[0]
    n, c, h, w = x.shape
    uh = ctx.fork_given("upsample_param", "upsample_h")
    uw = ctx.fork_given("upsample_param", "upsample_w")
    scale = int(ctx.fork_param("upsample_param", "scale"))
    sh, sw = (int(v) if v is not None else scale
              for v in (ctx.fork_given("upsample_param", "scale_h"), ctx.fork_given("upsample_param", "scale_w")))
    if uh is not None and uw is not None:
        oh, ow = int(uh), int(uw)
    else:
        oh = h * sh - int(bool(ctx.fork_param("upsample_param", "pad_out_h")))
        ow = w * sw - int(bool(ctx.fork_param("upsample_param", "pad_out_w")))
    if len(bottoms) == 1:
        rows = np.arange(oh) // sh
        cols = np.arange(ow) // sw
        if rows.max() >= h or cols.max() >= w:
            ctx.fail("the output reads past the input")
        return [x[:, :, rows][:, :, :, cols]]
    mask = bottoms[1].reshape(n, c, h * w).astype(np.int64)
    if mask.min() < 0 or mask.max() >= oh * ow:
        ctx.fail(f"a mask index is outside the {oh} x {ow} output")
    out = np.zeros((n, c, oh * ow))
    vals = x.reshape(n, c, h * w)
    for i in range(n):
        for j in range(c):
            out[i, j, mask[i, j]] = vals[i, j]   # NumPy assigns in order: the last write wins
    return [out.reshape(n, c, oh, ow)]


@op("UpsampleDarknet")
def _upsample_darknet(ctx, layer, bottoms, params):
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe upsample_darknet_layer.cpp Forward_cpu:
    # top (h, w) = bottom (h / stride, w / stride), the top stride times the bottom's size.
    s = int(ctx.fork_param("upsample_darknet_param", "stride"))
    if s < 1:
        ctx.fail(f"stride must be positive, got {s}")
    x = bottoms[0]
    return [x.repeat(s, axis=-2).repeat(s, axis=-1)]


@op("Interp")
def _interp(ctx, layer, bottoms, params):
    # PSPNet's InterpLayer: crop by pad_beg/pad_end (<= 0), then caffe_cpu_interp2, which
    # samples input (in - 1) / (out - 1) * o (corners to corners) bilinearly.
    x = bottoms[0]
    beg = int(ctx.fork_param("interp_param", "pad_beg"))
    end = int(ctx.fork_param("interp_param", "pad_end"))
    if beg > 0 or end > 0:
        ctx.fail("pad_beg/pad_end must be <= 0")
    x = x[:, :, -beg:x.shape[2] + end, -beg:x.shape[3] + end]
    eff = list(x.shape[2:])
    zoom = ctx.fork_given("interp_param", "zoom_factor")
    shrink = ctx.fork_given("interp_param", "shrink_factor")
    height = ctx.fork_given("interp_param", "height")
    width = ctx.fork_given("interp_param", "width")
    if shrink is not None and zoom is None:
        out = [(e - 1) // int(shrink) + 1 for e in eff]
    elif zoom is not None and shrink is None:
        out = [e + (e - 1) * (int(zoom) - 1) for e in eff]
    elif height is not None and width is not None:
        out = [int(height), int(width)]
    elif zoom is not None and shrink is not None:
        out = [(e - 1) // int(shrink) + 1 for e in eff]
        out = [o + (o - 1) * (int(zoom) - 1) for o in out]
    elif len(bottoms) > 1:
        out = list(bottoms[1].shape[2:4])
    else:
        ctx.fail("no output size")

    def axis(n_in, n_out):
        r = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        pos = r * np.arange(n_out)
        i0 = pos.astype(np.int64)
        step = (i0 < n_in - 1).astype(np.int64)
        lam = pos - i0
        return i0, i0 + step, lam

    h0, h1, lh = axis(eff[0], out[0])
    w0, w1, lw = axis(eff[1], out[1])
    top = x[:, :, h0][:, :, :, w0] * (1 - lw) + x[:, :, h0][:, :, :, w1] * lw
    bot = x[:, :, h1][:, :, :, w0] * (1 - lw) + x[:, :, h1][:, :, :, w1] * lw
    return [top * (1 - lh)[:, None] + bot * lh[:, None]]


@op("ResizeBilinear")
def _resize_bilinear(ctx, layer, bottoms, params):
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe resize_bilinear_layer.cpp (NCHW):
    # CalculateResizeScale, compute_interpolation_weights (lower = max(floor(in), 0), upper =
    # min(ceil(in), in_size - 1), lerp = in - floor(in)) and compute_lerp.
    x = bottoms[0]
    mp = "resize_bilinear_param"
    if str(ctx.fork_param(mp, "data_format")) != "NCHW":
        ctx.fail("only data_format NCHW is implemented")
    align, half, torch = (bool(ctx.fork_param(mp, name))
                          for name in ("align_corners", "half_pixel_centers", "pytorch_half_pixel"))
    out = []
    for i, (size_f, scale_f) in enumerate((("output_height", "scale_height"), ("output_width", "scale_width"))):
        v = ctx.fork_given(mp, size_f)
        out.append(int(v) if v is not None else int(math.floor(x.shape[2 + i] * float(ctx.fork_param(mp, scale_f)))))

    def weights(n_out, n_in):
        scale = (n_in - 1) / (n_out - 1) if align and n_out > 1 else n_in / n_out
        i = np.arange(n_out, dtype=np.float64)
        if align:
            pos = i * scale
        elif torch:
            pos = (i + 0.5) * scale - 0.5 if n_out > 1 else np.full(n_out, -0.5)
        elif half:
            pos = (i + 0.5) * scale - 0.5
        else:
            pos = i * scale
        fl = np.floor(pos)
        lower = np.maximum(fl, 0).astype(np.int64)
        upper = np.minimum(np.ceil(pos), n_in - 1).astype(np.int64)
        return lower, upper, pos - fl

    y0, y1, ly = weights(out[0], x.shape[2])
    x0, x1, lx = weights(out[1], x.shape[3])
    tl, tr = x[:, :, y0][:, :, :, x0], x[:, :, y0][:, :, :, x1]
    bl, br = x[:, :, y1][:, :, :, x0], x[:, :, y1][:, :, :, x1]
    top = tl + (tr - tl) * lx
    bot = bl + (br - bl) * lx
    return [top + (bot - top) * ly[:, None]]


@op("ResizeNearestNeighbor")
def _resize_nearest(ctx, layer, bottoms, params):
    # resize_nearest_neighbor_layer.cpp (NCHW): CalculateResizeScale in float32, then per output
    # row/column the source index of the flag in force, as its loops compute it.
    x = bottoms[0]
    f = lambda name: ctx.fork_param("resize_nearest_neighbor_param", name)  # noqa: E731
    if str(f("data_format")) != "NCHW":
        ctx.fail("only data_format NCHW is implemented")
    align, half, onnx_half = (str(f(k)).lower() in ("true", "1") for k in
                              ("align_corners", "half_pixel_centers", "half_pixel_onnx"))
    if align + half + onnx_half > 1:
        ctx.fail("at most one of align_corners, half_pixel_centers, half_pixel_onnx may be set")
    out = []
    for i, (size_f, scale_f) in enumerate((("output_height", "scale_height"), ("output_width", "scale_width"))):
        v = f(size_f)
        out.append(int(v) if v is not None else int(math.floor(x.shape[2 + i] * np.float32(f(scale_f)))))
    f32 = np.float32

    def index(n_out, n_in):
        scale = f32(n_in - 1) / f32(n_out - 1) if align and n_out > 1 else f32(n_in) / f32(n_out)
        o = np.arange(n_out, dtype=f32)
        if onnx_half:
            src = np.floor((o + f32(0.5)) * scale - 0.5)   # the fork's `- 0.5` is a double
            return np.clip(src, 0, n_in - 1).astype(np.int64)
        if half:
            return np.clip(np.floor((o + f32(0.5)) * scale), 0, n_in - 1).astype(np.int64)
        if align:
            prod = (o * scale).astype(f32)
            return np.minimum(np.where(prod >= 0, np.floor(prod + f32(0.5)), np.ceil(prod - f32(0.5))),
                              n_in - 1).astype(np.int64)
        return np.minimum(np.floor((o * scale).astype(f32)), n_in - 1).astype(np.int64)

    rows, cols = index(out[0], x.shape[2]), index(out[1], x.shape[3])
    return [x[:, :, rows][:, :, :, cols]]
