"""The FCN-era forks' coordinate-map crop (V1 CROP; netdef/layers/coordmap.py), read from
torrvision/caffe (master, the crfasrnn submodule) crop_layer.cpp, include/caffe/util/coords.hpp
and each layer's coord_map(): Crop's op in merge.py calls coord_crop for V1-written layers."""
from __future__ import annotations

from fractions import Fraction

from .base import included


_IDENTITY = frozenset({"ReLU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Dropout", "Exp", "Power", "Threshold",
                       "PReLU", "Log", "Concat", "Eltwise", "MVN", "Softmax", "Split", "Slice", "LRN"})


def _pair(rep, h, w, has_hw, default):
    if has_hw:
        return [h, w]
    vals = list(rep) if not isinstance(rep, int) else [rep]
    if not vals:
        return [default, default]
    return [vals[0], vals[0]] if len(vals) == 1 else vals[:2]


def _filter_map(ctx, layer):
    """The layer's coord_map() as [(scale, shift)] per (H, W): FilterMap(kernel, stride, pad) =
    (stride, (kernel - 1) / 2 - pad), inverted for Convolution and Pooling (coords.hpp)."""
    t = layer.type
    if t in _IDENTITY:
        return [(Fraction(1), Fraction(0))] * 2
    if t in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        k = _pair(p.kernel_size, p.kernel_h, p.kernel_w, p.HasField("kernel_h"), None)
        s = _pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1)
        d = _pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h"), 0)
    elif t == "Pooling" and not layer.pooling_param.global_pooling:
        p = layer.pooling_param
        k = _pair(p.kernel_size if p.HasField("kernel_size") else [], p.kernel_h, p.kernel_w, p.HasField("kernel_h"),
                  None)
        s = _pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1)
        d = _pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h"), 0)
    else:
        ctx.fail(f"the coordinate-map crop walks through layer '{layer.name}' ({t}), which has no coord_map")
    if None in k:
        ctx.fail(f"layer '{layer.name}' has no kernel size")
    fm = [(Fraction(s[i]), Fraction(k[i] - 1, 2) - d[i]) for i in range(2)]
    return fm if t == "Deconvolution" else [(1 / a, -b / a) for a, b in fm]


def coord_crop_offsets(ctx, net, index):
    """CropLayer::LayerSetUp's (crop_h, crop_w) for net.layer[index]."""
    ph, level, stages = ctx.phase_value
    first = {}          # blob -> the first layer (index) that tops it: down_map
    for i in range(index):
        lay = net.layer[i]
        if included(lay, ph, level, stages):
            for top in lay.top:
                first.setdefault(top, i)
    crop = net.layer[index]

    def walk(blob):
        while blob in first and net.layer[first[blob]].bottom:
            yield first[blob]
            blob = net.layer[first[blob]].bottom[0]

    path = {crop.bottom[0]} | {net.layer[i].bottom[0] for i in walk(crop.bottom[0])}
    inter = crop.bottom[1]
    while inter not in path:
        if inter not in first or not net.layer[first[inter]].bottom:
            ctx.fail("Cannot align apparently disconnected blobs.")
        inter = net.layer[first[inter]].bottom[0]
    maps = []
    for blob in crop.bottom[:2]:
        m = [(Fraction(1), Fraction(0))] * 2
        while blob != inter:
            i = first[blob]
            lay = net.layer[i]
            if lay.type == "Crop":
                lm = [(Fraction(1), Fraction(-c)) for c in coord_crop_offsets(ctx, net, i)]
            else:
                lm = _filter_map(ctx, lay)
            m = [(a * c, a * d + b) for (a, b), (c, d) in zip(m, lm)]
            blob = lay.bottom[0]
        maps.append(m)
    inv0 = [(1 / a, -b / a) for a, b in maps[0]]
    out = []
    for (a, b), (c, d) in zip(maps[1], inv0):
        scale, shift = a * c, a * d + b
        if scale != 1 or shift > 0 or shift.denominator != 1:
            ctx.fail(f"the coordinate maps give scale {scale} and shift {shift}; CropLayer needs 1 and a whole "
                     f"number <= 0")
        out.append(int(-shift))
    return out


def coord_crop(ctx, layer, bottoms):
    """crop_layer.cpp Forward_cpu: top (N, C, H1, W1) copied from bottom 0 at (crop_h + h, crop_w + w)."""
    x, ref = bottoms
    if x.ndim != 4 or ref.ndim != 4:
        ctx.fail("the coordinate-map crop needs 4-axis bottoms")
    ch, cw = coord_crop_offsets(ctx, ctx.net, ctx.index)
    h, w = ref.shape[2:]
    if ch + h > x.shape[2] or cw + w > x.shape[3]:
        ctx.fail(f"the crop at ({ch}, {cw}) of size {h} x {w} runs past {x.shape[2]} x {x.shape[3]}")
    return [x[:, :, ch:ch + h, cw:cw + w]]
