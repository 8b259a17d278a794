"""NumPy reference ops for the R-CNN forks' region layers (netdef/layers/roi.py).

Written from the forks' C++ loops, not from netdef's ONNX lowering (netdef/layers/roi.py):
  ROIPooling                  rbgirshick/caffe-fast-rcnn: roi_pooling_layer.cpp
  PSROIPooling                daijifeng001/caffe-rfcn: psroi_pooling_layer.cpp
"""
from __future__ import annotations

import math

import numpy as np

from .base import op

F = np.float32


@op("ROIPooling")
def _roi_pooling(ctx, layer, bottoms, params):
    # Fast R-CNN's ROIPoolingLayer::Forward_cpu.
    x, rois = bottoms
    ph = int(ctx.fork_param("roi_pooling_param", "pooled_h"))
    pw = int(ctx.fork_param("roi_pooling_param", "pooled_w"))
    scale = np.float32(ctx.fork_param("roi_pooling_param", "spatial_scale"))
    n, c, h, w = x.shape
    rois = rois.reshape(rois.shape[0], -1)
    out = np.zeros((rois.shape[0], c, ph, pw))

    def c_round(v):      # C's round(): halves away from zero
        return int(np.sign(v) * np.floor(abs(v) + 0.5))

    for r, roi in enumerate(rois.astype(np.float32)):
        b = int(roi[0])
        if not 0 <= b < n:
            ctx.fail(f"region {r} names batch item {b}, outside 0..{n - 1}")
        x1, y1, x2, y2 = (c_round(float(v * scale)) for v in roi[1:5])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = np.float32(rh) / np.float32(ph), np.float32(rw) / np.float32(pw)
        for i in range(ph):
            hs = min(max(int(np.floor(np.float32(i) * bh)) + y1, 0), h)
            he = min(max(int(np.ceil(np.float32(i + 1) * bh)) + y1, 0), h)
            for j in range(pw):
                ws = min(max(int(np.floor(np.float32(j) * bw)) + x1, 0), w)
                we = min(max(int(np.ceil(np.float32(j + 1) * bw)) + x1, 0), w)
                if he > hs and we > ws:
                    out[r, :, i, j] = x[b, :, hs:he, ws:we].max(axis=(1, 2))
    return [out]


@op("PSROIPooling")
def _psroi_pooling(ctx, layer, bottoms, params):
    x, rois = bottoms
    mp = "psroi_pooling_param"
    # spatial_scale, output_dim and group_size are required fields of R-FCN's schema.
    for name in ("spatial_scale", "output_dim", "group_size"):
        if not ctx.fork_has(mp, name):
            ctx.fail(f"psroi_pooling_param needs {name}")
    scale = F(ctx.fork_given(mp, "spatial_scale"))
    out_dim = int(ctx.fork_given(mp, "output_dim"))
    group = int(ctx.fork_given(mp, "group_size"))
    n, channels, height, width = x.shape
    if out_dim <= 0 or group <= 0 or channels != out_dim * group * group:
        ctx.fail("output_dim and group_size must be positive and match the input channels")
    rois = np.asarray(rois, F).reshape(rois.shape[0], -1)
    out = np.zeros((rois.shape[0], out_dim, group, group))

    def c_round(v):
        return F(math.floor(abs(float(v)) + 0.5) * (1 if v >= 0 else -1))

    for r, roi in enumerate(rois):
        b = int(roi[0])
        if not 0 <= b < n:
            ctx.fail(f"region {r} names batch item {b}, outside 0..{n - 1}")
        start_w = F(c_round(roi[1]) * scale)
        start_h = F(c_round(roi[2]) * scale)
        end_w = F(F(c_round(roi[3]) + F(1)) * scale)
        end_h = F(F(c_round(roi[4]) + F(1)) * scale)
        roi_w = max(F(end_w - start_w), F(0.1))
        roi_h = max(F(end_h - start_h), F(0.1))
        bin_w, bin_h = F(roi_w / F(group)), F(roi_h / F(group))
        for ph in range(group):
            hs = min(max(math.floor(F(F(ph) * bin_h) + start_h), 0), height)
            he = min(max(math.ceil(F(F(ph + 1) * bin_h) + start_h), 0), height)
            for pw in range(group):
                ws = min(max(math.floor(F(F(pw) * bin_w) + start_w), 0), width)
                we = min(max(math.ceil(F(F(pw + 1) * bin_w) + start_w), 0), width)
                if he <= hs or we <= ws:
                    continue
                chans = (np.arange(out_dim) * group + ph) * group + pw
                out[r, :, ph, pw] = x[b, chans, hs:he, ws:we].sum(axis=(1, 2)) / ((he - hs) * (we - ws))
    return [out]
