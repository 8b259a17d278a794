"""NumPy reference ops for the detection layers of Caffe forks (netdef/layers/detection.py).

Written from the forks' C++ loops, not from netdef's ONNX lowering (netdef/layers/detection.py),
so that `netdef verify` compares two independent readings of the same source:
  Permute, Normalize,         weiliu89/caffe (ssd): permute_layer.cpp, normalize_layer.cpp,
  PriorBox, DetectionOutput   prior_box_layer.cpp, detection_output_layer.cpp,
                              src/caffe/util/bbox_util.cpp (DecodeBBox, ApplyNMSFast, JaccardOverlap)
  ROIPooling                  rbgirshick/caffe-fast-rcnn: roi_pooling_layer.cpp
  PSROIPooling                daijifeng001/caffe-rfcn: psroi_pooling_layer.cpp
  YoloDetectionOutput,        eric612/MobileNet-YOLO: yolo_detection_output_layer.cpp,
  Yolov3DetectionOutput       yolov3_detection_output_layer.cpp
  Region                      openvinotoolkit/training_toolbox_caffe: region_layer.cpp
The box arithmetic runs in float32, as the forks' does, so that decisions taken on it (NMS
overlaps against a threshold) are the ones Caffe takes.
"""
from __future__ import annotations

import math

import numpy as np

from ..layers.detection import CODE_TYPES, NMS_PARAM
from .base import FLT_MAX, bcast, op

F = np.float32


def _bool(v) -> bool:
    return bool(v) and str(v).lower() not in ("false", "0")


@op("PriorBox")
def _prior_box(ctx, layer, bottoms, params):
    feat, img = bottoms
    mp = "prior_box_param"
    min_sizes = [float(v) for v in ctx.fork_all(mp, "min_size")]
    max_sizes = [float(v) for v in ctx.fork_all(mp, "max_size")]
    if not min_sizes:
        ctx.fail("prior_box_param has no min_size")
    flip = _bool(ctx.fork_param(mp, "flip"))
    ratios = [1.0]
    for ar in ctx.fork_all(mp, "aspect_ratio"):
        ar = float(F(ar))
        if not any(abs(ar - r) < 1e-6 for r in ratios):
            ratios.append(ar)
            if flip:
                ratios.append(float(F(1.0 / ar)))
    num_priors = len(ratios) * len(min_sizes) + len(max_sizes)
    variance = [float(F(v)) for v in ctx.fork_all(mp, "variance")] or [float(F(0.1))]
    img_h = img_w = 0
    if ctx.fork_has(mp, "img_h") or ctx.fork_has(mp, "img_w"):
        img_h, img_w = int(ctx.fork_given(mp, "img_h") or 0), int(ctx.fork_given(mp, "img_w") or 0)
    elif ctx.fork_has(mp, "img_size"):
        img_h = img_w = int(ctx.fork_given(mp, "img_size"))
    step_h = step_w = 0.0
    if ctx.fork_has(mp, "step_h") or ctx.fork_has(mp, "step_w"):
        step_h, step_w = float(ctx.fork_given(mp, "step_h") or 0), float(ctx.fork_given(mp, "step_w") or 0)
    elif ctx.fork_has(mp, "step"):
        step_h = step_w = float(ctx.fork_given(mp, "step"))
    offset = F(ctx.fork_param(mp, "offset"))
    clip = _bool(ctx.fork_param(mp, "clip"))
    layer_h, layer_w = feat.shape[2], feat.shape[3]
    if img_h == 0 or img_w == 0:
        img_h, img_w = img.shape[2], img.shape[3]
    if step_w == 0 or step_h == 0:
        sw, sh = F(img_w) / F(layer_w), F(img_h) / F(layer_h)
    else:
        sw, sh = F(step_w), F(step_h)
    top = []
    for h in range(layer_h):
        for w in range(layer_w):
            cx = float(F(F(w + offset) * sw))
            cy = float(F(F(h + offset) * sh))
            for s, mn in enumerate(min_sizes):
                mn = int(mn)                        # int min_size_ = min_sizes_[s]
                boxes = [(float(mn), float(mn))]
                if max_sizes:
                    side = float(F(math.sqrt(mn * int(max_sizes[s]))))
                    boxes.append((side, side))
                for ar in ratios:
                    if abs(ar - 1.0) < 1e-6:
                        continue
                    boxes.append((float(F(mn * math.sqrt(ar))), float(F(mn / math.sqrt(ar)))))
                for bw, bh in boxes:
                    top += [(cx - bw / 2.0) / img_w, (cy - bh / 2.0) / img_h,
                            (cx + bw / 2.0) / img_w, (cy + bh / 2.0) / img_h]
    corners = np.array(top, dtype=F)
    if clip:
        corners = np.clip(corners, 0.0, 1.0)
    var = np.empty_like(corners)
    if len(variance) == 1:
        var[:] = variance[0]
    else:
        var.reshape(-1, 4)[:] = np.array(variance[:4], F)
    assert corners.size == layer_h * layer_w * num_priors * 4
    return [np.stack([corners, var])[None]]


def _decode(code, variance_encoded, prior, var, loc):
    """DecodeBBox for every prior at once, float32 (prior, var, loc: (P, 4))."""
    p0, p1, p2, p3 = (prior[:, i] for i in range(4))
    l = loc if variance_encoded else None
    if code == 1:                                   # CORNER
        off = loc if variance_encoded else var * loc
        return (prior + off).astype(F)
    pw, ph = (p2 - p0).astype(F), (p3 - p1).astype(F)
    if code == 3:                                   # CORNER_SIZE
        scale = np.stack([pw, ph, pw, ph], axis=1)
        off = (loc if variance_encoded else var * loc) * scale
        return (prior + off).astype(F)
    pcx = ((p0.astype(np.float64) + p2) / 2.0).astype(F)
    pcy = ((p1.astype(np.float64) + p3) / 2.0).astype(F)
    if variance_encoded:
        l = loc
        cx = l[:, 0] * pw + pcx
        cy = l[:, 1] * ph + pcy
        w = np.exp(l[:, 2]) * pw
        h = np.exp(l[:, 3]) * ph
    else:
        cx = var[:, 0] * loc[:, 0] * pw + pcx
        cy = var[:, 1] * loc[:, 1] * ph + pcy
        w = np.exp(var[:, 2] * loc[:, 2]) * pw
        h = np.exp(var[:, 3] * loc[:, 3]) * ph
    cx, cy, w, h = (np.asarray(a, F) for a in (cx, cy, w, h))
    return np.stack([cx - w / F(2), cy - h / F(2), cx + w / F(2), cy + h / F(2)], axis=1).astype(F)


def _size(b):
    """BBoxSize (normalized): 0 for an inverted box."""
    w, h = (b[..., 2] - b[..., 0]).astype(F), (b[..., 3] - b[..., 1]).astype(F)
    return np.where((w < 0) | (h < 0), F(0), w * h).astype(F)


def _jaccard(box, others):
    """JaccardOverlap(box, each of others), float32."""
    disjoint = (others[:, 0] > box[2]) | (others[:, 2] < box[0]) | (others[:, 1] > box[3]) | (others[:, 3] < box[1])
    iw = (np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])).astype(F)
    ih = (np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])).astype(F)
    inter = (iw * ih).astype(F)
    union = (_size(box) + _size(others) - inter).astype(F)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = (inter / union).astype(F)
    return np.where(disjoint | (iw <= 0) | (ih <= 0), F(0), iou)


def nms_fast(boxes, scores, score_threshold, nms_threshold, eta, top_k):
    """ApplyNMSFast: candidates above the threshold in stable descending score order, the first
    top_k of them, each kept unless it overlaps a kept one by more than the (adaptive) threshold."""
    cand = np.nonzero(scores > F(score_threshold))[0]
    order = cand[np.argsort(-scores[cand].astype(np.float64), kind="stable")]
    if -1 < top_k < len(order):
        order = order[:top_k]
    kept = []
    thr = F(nms_threshold)
    for idx in order:
        keep = True
        if kept:
            keep = bool(np.all(_jaccard(boxes[idx], boxes[kept]) <= thr))
        if keep:
            kept.append(int(idx))
            if eta < 1 and thr > 0.5:
                thr = F(thr * F(eta))
    return kept


@op("DetectionOutput")
def _detection_output(ctx, layer, bottoms, params):
    loc_data, conf_data, prior_data = (np.asarray(b, F) for b in bottoms[:3])
    mp = "detection_output_param"
    if not ctx.fork_has(mp, "num_classes"):
        ctx.fail("detection_output_param needs num_classes")
    num_classes = int(ctx.fork_given(mp, "num_classes"))
    share = _bool(ctx.fork_param(mp, "share_location"))
    background = int(ctx.fork_param(mp, "background_label_id"))
    code = ctx.fork_param(mp, "code_type")
    code = CODE_TYPES.get(code, code) if isinstance(code, str) else int(code)
    variance_encoded = _bool(ctx.fork_param(mp, "variance_encoded_in_target"))
    keep_top_k = int(ctx.fork_param(mp, "keep_top_k"))
    conf = ctx.fork_given(mp, "confidence_threshold")       # absent: every score passes
    conf_thr = float(F(conf)) if conf is not None else -FLT_MAX
    nms = ctx.fork_given(mp, "nms_param")
    nms = nms if isinstance(nms, dict) else {}
    nms_thr, top_k, eta = (float((nms.get("nms_threshold") or [NMS_PARAM["nms_threshold"]])[-1]),
                           int((nms.get("top_k") or [NMS_PARAM["top_k"]])[-1]),
                           float((nms.get("eta") or [NMS_PARAM["eta"]])[-1]))
    num = loc_data.shape[0]
    num_priors = (prior_data.shape[2] if prior_data.ndim > 2 else 1) // 4
    loc_classes = 1 if share else num_classes
    loc = loc_data.reshape(num, num_priors, loc_classes, 4)
    conf = conf_data.reshape(num, num_priors, num_classes)
    prior = prior_data.reshape(2, num_priors, 4)
    rows = []
    for i in range(num):
        decoded = {}
        for c in range(loc_classes):
            label = -1 if share else c
            if label == background:
                continue
            decoded[label] = _decode(code, variance_encoded, prior[0], prior[1], loc[i, :, c])
        indices = {}
        num_det = 0
        for c in range(num_classes):
            if c == background:
                continue
            boxes = decoded[-1 if share else c]
            indices[c] = nms_fast(boxes, conf[i, :, c], conf_thr, nms_thr, eta, top_k)
            num_det += len(indices[c])
        if -1 < keep_top_k < num_det:
            pairs = [(conf[i, idx, c], c, idx) for c in sorted(indices) for idx in indices[c]]
            pairs.sort(key=lambda t: -float(t[0]))      # std::sort by score, descending
            indices = {}
            for _, c, idx in pairs[:keep_top_k]:
                indices.setdefault(c, []).append(idx)
        for c in sorted(indices):                       # std::map: labels in ascending order
            boxes = decoded[-1 if share else c]
            for idx in indices[c]:
                rows.append([i, c, conf[i, idx, c], *boxes[idx]])
    if not rows:
        out = np.full((num, 7), -1.0, F)
        out[:, 0] = np.arange(num)
    else:
        out = np.array(rows, F)
    return [out.reshape(1, 1, -1, 7)]


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


def _sigmoid(v):
    return (1.0 / (1.0 + np.exp(-np.asarray(v, np.float64)))).astype(F)


@op("Region")
def _region(ctx, layer, bottoms, params):
    x = np.asarray(bottoms[0], np.float64)
    coords = int(ctx.fork_param("region_param", "coords"))
    classes = int(ctx.fork_param("region_param", "classes"))
    num = int(ctx.fork_param("region_param", "num"))
    n, c, h, w = x.shape
    if c != num * (coords + classes + 1):
        ctx.fail(f"{c} channels, but num x (coords + classes + 1) is {num * (coords + classes + 1)}")
    out = x.copy().reshape(n, num, coords + classes + 1, h * w)
    src = x.reshape(out.shape)
    out[:, :, 0:2] = 1.0 / (1.0 + np.exp(-src[:, :, 0:2]))
    out[:, :, coords] = 1.0 / (1.0 + np.exp(-src[:, :, coords]))
    cls = src[:, :, coords + 1:]
    e = np.exp(cls - cls.max(axis=2, keepdims=True))
    out[:, :, coords + 1:] = e / e.sum(axis=2, keepdims=True)
    return [out.reshape(x.shape)]


def _yolo_nms(preds, threshold):
    """ApplyNms of the YOLO ports: over the list sorted by confidence (descending), each box not
    yet removed removes every later one whose box_iou with it is >= threshold."""
    if not preds:
        return []
    boxes = np.array([p[:4] for p in preds], F)            # x, y, w, h (centre and size)
    removed = np.zeros(len(preds), bool)
    thr = F(threshold)
    for i in range(len(preds) - 1):
        if removed[i]:
            continue
        rest = np.arange(i + 1, len(preds))
        rest = rest[~removed[rest]]
        if not rest.size:
            continue
        a, b = boxes[i], boxes[rest]
        ow = (np.minimum(a[0] + a[2] / F(2), b[:, 0] + b[:, 2] / F(2)) -
              np.maximum(a[0] - a[2] / F(2), b[:, 0] - b[:, 2] / F(2))).astype(F)
        oh = (np.minimum(a[1] + a[3] / F(2), b[:, 1] + b[:, 3] / F(2)) -
              np.maximum(a[1] - a[3] / F(2), b[:, 1] - b[:, 3] / F(2))).astype(F)
        inter = np.where((ow < 0) | (oh < 0), F(0), ow * oh).astype(F)
        union = (a[2] * a[3] + b[:, 2] * b[:, 3] - inter).astype(F)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = (inter / union).astype(F)
        removed[rest[iou >= thr]] = True
    return [i for i in range(len(preds)) if not removed[i]]


def _yolo_rows(preds, kept, num):
    if not kept:
        out = np.full((num, 7), -1.0, F)
        out[:, 0] = np.arange(num)
        return [out.reshape(1, 1, -1, 7)]
    rows = []
    for i in kept:
        x, y, w, h, label, score = preds[i]
        rows.append([0, label + 1, score, x - w / F(2), y - h / F(2), x + w / F(2), y + h / F(2)])
    return [np.array(rows, F).reshape(1, 1, -1, 7)]


def _biases(ctx, message):
    return [float(F(b)) for b in ctx.fork_all(message, "biases")]


@op("YoloDetectionOutput")
def _yolo_detection_output(ctx, layer, bottoms, params):
    mp = "yolo_detection_output_param"
    classes = int(ctx.fork_param(mp, "num_classes"))
    num_box = int(ctx.fork_param(mp, "num_box"))
    conf_thr = F(ctx.fork_param(mp, "confidence_threshold"))
    nms_thr = float(ctx.fork_param(mp, "nms_threshold"))
    biases = _biases(ctx, mp)
    preds = []
    for blob in bottoms[:2]:
        x = np.asarray(blob, F)
        n, c, h, w = x.shape
        side = w
        per = c // num_box
        # swap: (b, h*w, num_box, c / num_box) in (b, h, w, c) order.
        sw = x.transpose(0, 2, 3, 1).reshape(n, h * w, num_box, per)
        for b in range(n):
            for j in range(side):
                for i in range(side):
                    for k in range(num_box):
                        v = sw[b, j * side + i, k]
                        px = F((i + _sigmoid(v[0])) / F(side))
                        py = F((j + _sigmoid(v[1])) / F(side))
                        pw = F(F(np.exp(np.float64(v[2])) * F(biases[2 * k])) / F(side))
                        ph = F(F(np.exp(np.float64(v[3])) * F(biases[2 * k + 1])) / F(side))
                        obj = _sigmoid(v[4])
                        e = np.exp(v[5:5 + classes].astype(np.float64) - v[5:5 + classes].max())
                        prob = (e / e.sum()).astype(F)
                        cls = int(np.argmax(prob))          # the first of equal maxima
                        conf = F(obj * prob[cls])
                        if conf >= conf_thr:
                            preds.append((px, py, pw, ph, cls, conf))
    order = sorted(range(len(preds)), key=lambda i: -float(preds[i][5]))
    preds = [preds[i] for i in order]
    return _yolo_rows(preds, _yolo_nms(preds, nms_thr), bottoms[0].shape[0])


@op("Yolov3DetectionOutput")
def _yolov3_detection_output(ctx, layer, bottoms, params):
    mp = "yolov3_detection_output_param"
    classes = int(ctx.fork_param(mp, "num_classes"))
    num_box = int(ctx.fork_param(mp, "num_box"))
    conf_thr = F(ctx.fork_param(mp, "confidence_threshold"))
    nms_thr = float(ctx.fork_param(mp, "nms_threshold"))
    group_num = int(ctx.fork_param(mp, "mask_group_num"))
    biases = _biases(ctx, mp)
    mask = [int(m) for m in ctx.fork_all(mp, "mask")]
    scales = [int(a) for a in ctx.fork_all(mp, "anchors_scale")]
    if group_num != len(bottoms):
        ctx.fail(f"mask_group_num {group_num} is not the number of bottoms ({len(bottoms)})")
    groups = len(mask) // group_num
    preds = []
    for t, blob in enumerate(bottoms):
        x = np.asarray(blob, F)
        n, c, h, w = x.shape
        length = 5 + classes
        nw, nh = w * scales[t], h * scales[t]
        v = x.reshape(n, num_box, length, h * w)
        for b in range(n):
            for s in range(h * w):
                row, col = s // w, s % w
                for k in range(num_box):
                    e = v[b, k, :, s]
                    a = mask[k + t * groups]
                    px = F((col + _sigmoid(e[0])) / F(w))
                    py = F((row + _sigmoid(e[1])) / F(h))
                    pw = F(F(np.exp(np.float64(e[2])) * F(biases[2 * a])) / F(nw))
                    ph = F(F(np.exp(np.float64(e[3])) * F(biases[2 * a + 1])) / F(nh))
                    obj = _sigmoid(e[4])
                    scores = (_sigmoid(e[5:]) * obj).astype(F)
                    for cls in np.nonzero(scores > conf_thr)[0]:
                        preds.append((px, py, pw, ph, int(cls), scores[cls]))
    order = sorted(range(len(preds)), key=lambda i: -float(preds[i][5]))
    preds = [preds[i] for i in order]
    return _yolo_rows(preds, _yolo_nms(preds, nms_thr), bottoms[0].shape[0])


@op("Permute")
def _permute(ctx, layer, bottoms, params):
    # SSD's PermuteLayer: the listed axes first, then the others in their order.
    x = bottoms[0]
    order = [int(o) for o in ctx.fork_all("permute_param", "order")]
    order += [i for i in range(x.ndim) if i not in order]
    return [np.transpose(x, order)]


@op("Normalize")
def _normalize(ctx, layer, bottoms, params):
    # SSD's NormalizeLayer: x / sqrt(sum of squares + eps), the sum over C*H*W per sample
    # (across_spatial) or over C per position, then times the learnt scale.
    x = bottoms[0]
    across = bool(ctx.fork_param("norm_param", "across_spatial"))
    shared = bool(ctx.fork_param("norm_param", "channel_shared"))
    eps = float(ctx.fork_param("norm_param", "eps"))
    axes = tuple(range(1, x.ndim)) if across else (1,)
    norm = np.sqrt((x * x).sum(axis=axes, keepdims=True) + eps)
    scale = params[0].reshape(-1)
    s = scale[0] if shared else bcast(scale, x.ndim, 1)
    return [x / norm * s]


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
