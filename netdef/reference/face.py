"""NumPy reference ops for the face-recognition and large-margin fork layers (netdef/layers/face.py),
written from the forks' C++ (not from netdef/layers/face.py's lowering):

  Flip, Normalize (normalize_param), InnerProduct (normalize: true)
                      happynear/caffe-windows flip_layer.cpp, normalize_layer.cpp,
                      inner_product_layer.cpp
  CosinAddm           xialuxi/arcface-caffe cosin_add_m_layer.cpp
  LargeMarginInnerProduct, BN
                      wy1iu/LargeMargin_Softmax_Loss largemargin_inner_product_layer.cpp,
                      bn_layer.cpp
CosinAddm and LargeMarginInnerProduct read labels: the forward pass skips them as training-only,
and these ops serve tests and callers that give labels.
"""
from __future__ import annotations

import math

import numpy as np

from .. import forks
from ..layers.face import (COSIN_ADD_M_DEFAULTS, FLIP_DEFAULTS, LARGE_MARGIN_DEFAULTS, LARGE_MARGIN_TYPES, NORM_EPS,
                          LSOFTMAX_BN_DEFAULTS, NORMALIZE_DEFAULTS, ip_normalize, is_happynear_normalize, is_lsoftmax_bn)
from .base import op


def _given(ctx, message, name, default):
    """A fork field's value, else `default` (the fork's, declared in netdef/layers/)."""
    v = ctx.fork_given(message, name)
    return default if v is None else v


def _flag(ctx, message, name, defaults):
    v = forks.as_bool(_given(ctx, message, name, defaults[name]))
    if v is None:
        ctx.fail(f"{message}.{name} must be true or false")
    return v


def _legacy4(ctx, x):
    if x.ndim > 4:
        ctx.fail(f"the bottom has {x.ndim} axes; the layer reads num/channels/height/width (at most 4)")
    return x.reshape(x.shape + (1,) * (4 - x.ndim))


@op("Flip")
def _flip(ctx, layer, bottoms, params):
    # FlipLayer::Forward_cpu: top[n, c, h, w] = bottom[n, c, H-1-h if flip_height else h,
    # W-1-w if flip_width else w], over the legacy 4 axes; the top keeps the bottom's shape.
    x = bottoms[0]
    x4 = _legacy4(ctx, x)
    n, c, h, w = x4.shape
    fw = _flag(ctx, "flip_param", "flip_width", FLIP_DEFAULTS)
    fh = _flag(ctx, "flip_param", "flip_height", FLIP_DEFAULTS)
    src_h = [(h - 1 - i) if fh else i for i in range(h)]
    src_w = [(w - 1 - j) if fw else j for j in range(w)]
    out = x4[:, :, src_h, :][:, :, :, src_w]
    return [out.reshape(x.shape)]


@op("Normalize", when=is_happynear_normalize)
def _face_normalize(ctx, layer, bottoms, params):
    # NormalizeLayer::Forward_cpu (happynear): for each n and spatial position s, the norm over
    # the channels: sqrt(sum x^2 + 1e-6) (L2) or sum |x| + 1e-6 (L1); top = x / norm, shaped
    # (num, channels, height, width); the optional second top is the norm (num, 1, h, w).
    x = _legacy4(ctx, bottoms[0])
    kind = str(_given(ctx, "normalize_param", "normalize_type", NORMALIZE_DEFAULTS["normalize_type"]))
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    norm = np.empty((n, h * w))
    for s in range(h * w):
        col = flat[:, :, s]
        if kind == "L2":
            norm[:, s] = np.sqrt((col * col).sum(axis=1) + NORM_EPS)
        elif kind == "L1":
            norm[:, s] = np.abs(col).sum(axis=1) + NORM_EPS
        else:
            ctx.fail(f"normalize_type {kind!r} is not implemented by the fork (L2 or L1)")
    top = flat / norm[:, None, :]
    outs = [top.reshape(n, c, h, w), norm.reshape(n, 1, h, w)]
    return outs[:len(layer.top)]


@op("InnerProduct", when=ip_normalize)
def _normalized_inner_product(ctx, layer, bottoms, params):
    # InnerProductLayer::Forward_cpu (happynear) with normalize_: each run of K weights (row n)
    # is scaled by 1 / sqrt(dot(row, row) + 1e-6) first; then the usual product.
    w = params[0]
    n = layer.inner_product_param.num_output
    rows = w.reshape(n, -1)
    scaled = np.empty_like(rows)
    for i in range(n):
        scaled[i] = rows[i] / math.sqrt(float(rows[i] @ rows[i]) + NORM_EPS)
    return ctx.base(ctx, layer, bottoms, [scaled.reshape(w.shape)] + list(params[1:]))


@op("BN", when=is_lsoftmax_bn)
def _lsoftmax_bn(ctx, layer, bottoms, params):
    # BNLayer::Forward_cpu (wy1iu): TEST (or frozen): (x - blob 2) * blob 3 (the stored inverse
    # std) * slope + bias; TRAIN: the batch mean over (N, H, W) and (E[(x - mean)^2] + eps)^-1/2.
    x = _legacy4(ctx, bottoms[0])
    c = x.shape[1]
    slope, bias = params[0].reshape(1, c, 1, 1), params[1].reshape(1, c, 1, 1)
    frozen = forks.as_bool(_given(ctx, "bn_param", "frozen", LSOFTMAX_BN_DEFAULTS["frozen"])) is True
    if ctx.phase == 0 and not frozen:           # pb.TRAIN
        eps = float(_given(ctx, "bn_param", "eps", LSOFTMAX_BN_DEFAULTS["eps"]))
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        inv = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True) + eps
        inv = inv ** -0.5
    else:
        mean, inv = params[2].reshape(1, c, 1, 1), params[3].reshape(1, c, 1, 1)
    return [((x - mean) * inv * slope + bias).reshape(bottoms[0].shape)]


@op("CosinAddm")
def _cosin_add_m(ctx, layer, bottoms, params):
    # CosinAddmLayer::Forward_cpu: a copy of the cosines, except top[i, label_i], which becomes
    # cos(theta + m) = cos*cos(m) - sin*sin(m) (sin = sqrt(1 - cos^2); cos > 1 counts as 1), or
    # cos - sin(pi - m) * m when cos <= cos(pi - m).
    x, label = bottoms
    m = float(_given(ctx, "cosin_add_m_param", "m", COSIN_ADD_M_DEFAULTS["m"]))
    num = x.shape[0]
    flat = x.reshape(num, -1).copy()
    threshold = math.cos(math.pi - m)
    for i in range(num):
        gt = int(label.reshape(-1)[i])
        cos_t = float(flat[i, gt])
        sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
        if cos_t > 1.0:
            cos_t, sin_t = 1.0, 0.0
        if cos_t <= threshold:
            flat[i, gt] = cos_t - math.sin(math.pi - m) * m
        else:
            flat[i, gt] = cos_t * math.cos(m) - sin_t * math.sin(m)
    return [flat.reshape(x.shape)]


@op("LargeMarginInnerProduct")
def _large_margin_inner_product(ctx, layer, bottoms, params):
    # LargeMarginInnerProductLayer::Forward_cpu for its first forward (iter_ = iteration + 1):
    # lambda = max(base * (1 + gamma * iter)^-power, lambda_min); cos = x.w / (|x| |w| + 1e-9);
    # top = x W^T, except at each label column for m > 1: (|x||w| psi(cos) + lambda x.w) / (1 +
    # lambda), psi(cos) = (-1)^k cos(m theta) - 2k (2 sign(cos) cos^2 - 1 for m = 2, ...).
    def get(name):
        return _given(ctx, "largemargin_inner_product_param", name, LARGE_MARGIN_DEFAULTS.get(name))

    x, label = bottoms
    m = LARGE_MARGIN_TYPES.get(str(get("type")))
    if m is None:
        ctx.fail(f"unknown type {get('type')}")
    axis = int(get("axis"))
    axis = axis + x.ndim if axis < 0 else axis
    w = params[0]
    xs = x.reshape(int(np.prod(x.shape[:axis])), -1)
    it = float(get("iteration")) + 1.0
    lam = max(float(get("base")) * (1.0 + float(get("gamma")) * it) ** -float(get("power")), float(get("lambda_min")))
    top = xs @ w.T
    if m > 1:
        xn = np.sqrt((xs * xs).sum(axis=1))
        wn = np.sqrt((w * w).sum(axis=1))
        prod_norm = np.outer(xn, wn) + 1e-9
        labels = label.reshape(-1).astype(int)
        for i in range(xs.shape[0]):
            j = labels[i]
            cos = top[i, j] / prod_norm[i, j]
            s0 = np.sign(cos)
            if m == 2:
                psi = 2.0 * s0 * cos ** 2 - 1.0
            elif m == 3:
                s1 = np.sign(abs(cos) - 0.5)
                s2 = s0 * (s1 + 1.0) - 2.0
                psi = s1 * (4.0 * cos ** 3 - 3.0 * cos) + s2
            else:
                s3 = s0 * np.sign(2.0 * cos ** 2 - 1.0)
                s4 = 2.0 * s0 + s3 - 3.0
                psi = s3 * (8.0 * cos ** 4 - 8.0 * cos ** 2 + 1.0) + s4
            top[i, j] = prod_norm[i, j] * psi
        # the label columns hold |x||w| psi; every column then gains lambda * x.w, all over (1 + lambda)
        top = (top + lam * (xs @ w.T)) / (1.0 + lam)
    return [top.reshape(x.shape[:axis] + (w.shape[0],)), np.array([lam])]
