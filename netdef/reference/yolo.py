"""NumPy reference ops for the YOLO ports' outputs (netdef/layers/yolo.py).

Written from the forks' C++ loops, not from netdef's ONNX lowering (netdef/layers/yolo.py):
  YoloDetectionOutput,        eric612/MobileNet-YOLO: yolo_detection_output_layer.cpp,
  Yolov3DetectionOutput       yolov3_detection_output_layer.cpp
  Region                      openvinotoolkit/training_toolbox_caffe: region_layer.cpp
The box arithmetic runs in float32, as the forks' does, so that decisions taken on it (NMS
overlaps against a threshold) are the ones Caffe takes.
"""
from __future__ import annotations

import numpy as np

from .base import op

F = np.float32


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
