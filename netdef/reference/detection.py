"""NumPy reference ops for SSD's layers (netdef/layers/detection.py).

Written from the fork's C++ loops, not from netdef's ONNX lowering (netdef/layers/detection.py),
so that `netdef verify` compares two independent readings of the same source:
  Permute, Normalize,         weiliu89/caffe (ssd): permute_layer.cpp, normalize_layer.cpp,
  PriorBox, DetectionOutput   prior_box_layer.cpp, detection_output_layer.cpp,
                              src/caffe/util/bbox_util.cpp (DecodeBBox, ApplyNMSFast, JaccardOverlap)
  FaceBoxes' PriorBox         sfzhang15/FaceBoxes: prior_box_layer.cpp
  RefineDet's DetectionOutput sfzhang15/RefineDet: detection_output_layer.cpp, bbox_util.cpp
                              (OSGetConfidenceScores, CasRegDecodeBBoxesAll)
The box arithmetic runs in float32, as the fork's does, so that decisions taken on it (NMS
overlaps against a threshold) are the ones Caffe takes.
"""
from __future__ import annotations

import math

import numpy as np

from ..layers.detection import CODE_TYPES, NMS_PARAM, is_faceboxes_prior_box
from .base import FLT_MAX, bcast, op

F = np.float32


def _bool(v) -> bool:
    return bool(v) and str(v).lower() not in ("false", "0")


def _image_and_steps(ctx, mp: str, feat, img):
    """PriorBox's image size (img_h/img_w, else img_size, else the image bottom's) and its steps
    in float (step_h/step_w, else step, else the image size over the feature map's)."""
    img_h = img_w = 0
    if ctx.fork_has(mp, "img_h") or ctx.fork_has(mp, "img_w"):
        img_h, img_w = int(ctx.fork_given(mp, "img_h") or 0), int(ctx.fork_given(mp, "img_w") or 0)
    elif ctx.fork_has(mp, "img_size"):
        img_h = img_w = int(ctx.fork_given(mp, "img_size"))
    if img_h == 0 or img_w == 0:
        img_h, img_w = img.shape[2], img.shape[3]
    step_h = step_w = 0.0
    if ctx.fork_has(mp, "step_h") or ctx.fork_has(mp, "step_w"):
        step_h, step_w = float(ctx.fork_given(mp, "step_h") or 0), float(ctx.fork_given(mp, "step_w") or 0)
    elif ctx.fork_has(mp, "step"):
        step_h = step_w = float(ctx.fork_given(mp, "step"))
    layer_h, layer_w = feat.shape[2], feat.shape[3]
    if step_w == 0 or step_h == 0:
        return img_h, img_w, F(img_w) / F(layer_w), F(img_h) / F(layer_h)
    return img_h, img_w, F(step_w), F(step_h)


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
    img_h, img_w, sw, sh = _image_and_steps(ctx, mp, feat, img)
    offset = F(ctx.fork_param(mp, "offset"))
    clip = _bool(ctx.fork_param(mp, "clip"))
    layer_h, layer_w = feat.shape[2], feat.shape[3]
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


@op("PriorBox", when=is_faceboxes_prior_box)
def _faceboxes_prior_box(ctx, layer, bottoms, params):
    # sfzhang15/FaceBoxes prior_box_layer.cpp, Forward_cpu's loops: per position and min_size,
    # 32 -> 4 x 4 boxes 8 pixels apart, 64 -> 2 x 2 boxes 16 apart, else one box; corners at
    # centre -+ (size - 1) / 2; 21 priors per position.
    feat, img = bottoms
    mp = "prior_box_param"
    min_sizes = [int(float(v)) for v in ctx.fork_all(mp, "min_size")]
    variance = [float(F(v)) for v in ctx.fork_all(mp, "variance")] or [float(F(0.1))]
    img_h, img_w, sw, sh = _image_and_steps(ctx, mp, feat, img)
    layer_h, layer_w = feat.shape[2], feat.shape[3]
    offset = F(ctx.fork_param(mp, "offset"))
    top = []
    for h in range(layer_h):
        for w in range(layer_w):
            cx, cy = F(F(w + offset) * sw), F(F(h + offset) * sh)
            for size in min_sizes:
                n, gap = (4, 8) if size == 32 else (2, 16) if size == 64 else (1, 0)
                half = (size - 1) / 2.0
                for i in range(-(n // 2), n - n // 2):
                    for j in range(-(n // 2), n - n // 2):
                        x, y = float(F(cx + F(j * gap))), float(F(cy + F(i * gap)))
                        top += [(x - half) / img_w, (y - half) / img_h, (x + half) / img_w, (y + half) / img_h]
    corners = np.array(top, dtype=F)
    if _bool(ctx.fork_param(mp, "clip")):
        corners = np.clip(corners, 0.0, 1.0)
    var = np.empty_like(corners)
    if len(variance) == 1:
        var[:] = variance[0]
    else:
        var.reshape(-1, 4)[:] = np.array(variance[:4], F)
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
    # RefineDet's Forward reads bottom 3 as the ARM scores and bottom 4 as the ARM offsets; SSD's
    # 4th bottom is an image for `visualize`, so four bottoms are RefineDet's only with its field.
    arm_loc = len(bottoms) >= 5
    arm_conf = arm_loc or (len(bottoms) == 4 and ctx.fork_has(mp, "objectness_score"))
    if arm_conf:
        # RefineDet's OSGetConfidenceScores: a prior whose ARM object score (2nd of its pair) is
        # below objectness_score is scored 1 for class 0 and 0 for the rest.
        objectness = F(ctx.fork_param(mp, "objectness_score"))
        arm_scores = np.asarray(bottoms[3], F).reshape(num, num_priors, 2)
        conf = conf.copy()
        for i in range(num):
            for p in range(num_priors):
                if arm_scores[i, p, 1] < objectness:
                    conf[i, p, :] = 0.0
                    conf[i, p, 0] = 1.0
    rows = []
    for i in range(num):
        decoded = {}
        base = prior[0]
        if arm_loc:
            # RefineDet's CasRegDecodeBBoxesAll: the priors decoded with the ARM's (shared) offsets
            # first, the ODM's offsets then decoded against them with the priors' variances.
            arm_offsets = np.asarray(bottoms[4], F).reshape(num, num_priors, 4)
            base = _decode(code, variance_encoded, prior[0], prior[1], arm_offsets[i])
        for c in range(loc_classes):
            label = -1 if share else c
            if label == background:
                continue
            decoded[label] = _decode(code, variance_encoded, base, prior[1], loc[i, :, c])
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
