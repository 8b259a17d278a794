"""Normalisation: LRN, BatchNorm, Scale, Bias, MVN and the forks' BN (netdef/layers/norm.py)."""
from __future__ import annotations

import numpy as np

from ..layers.norm import PSP_BN_FIELDS, SEGNET_BN_EPS
from ..proto import pb
from .base import bcast, canonical_axis, op
from .pool import pool2d


@op("LRN")
def _lrn(ctx, layer, bottoms, params):
    p = layer.lrn_param
    x = bottoms[0]
    size = p.local_size
    if size % 2 == 0:
        ctx.fail("local_size must be odd")
    pre = (size - 1) // 2
    if p.norm_region == pb.LRNParameter.ACROSS_CHANNELS:
        sq = np.pad(x * x, [(0, 0), (pre, size - 1 - pre), (0, 0), (0, 0)])
        s = sum(sq[:, i:i + x.shape[1]] for i in range(size))
        return [x * (p.k + p.alpha / size * s) ** -p.beta]
    # WITHIN_CHANNEL: Caffe composes square -> AVE pool (pad pre, stride 1) -> Power with
    # shift 1 and scale alpha: `k` is not used here.
    avg = pool2d(x * x, pb.PoolingParameter.AVE, [size, size], [1, 1], [pre, pre])
    return [x * (1.0 + p.alpha * avg) ** -p.beta]


@op("BatchNorm")
def _batchnorm(ctx, layer, bottoms, params):
    p = layer.batch_norm_param
    x = bottoms[0]
    use_global = p.use_global_stats if p.HasField("use_global_stats") else ctx.phase == pb.TEST
    c = x.shape[1] if x.ndim > 1 else 1
    if use_global:
        # Stored statistics are sums scaled by blob 2; a factor of 0 means 0, not 1/0.
        factor = params[2].reshape(-1)[0]
        k = 0.0 if factor == 0 else 1.0 / factor
        mean, var = params[0] * k, params[1] * k
    else:
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean = x.mean(axis=axes)
        var = ((x - bcast(mean, x.ndim, 1)) ** 2).mean(axis=axes)
    mean, var = mean.reshape(c), var.reshape(c)
    # Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe batch_norm_layer.cpp):
    # add_eps_before_sqrt: false divides by sqrt(var) + eps instead of sqrt(var + eps).
    if ctx.sub_field("batch_norm_param", "add_eps_before_sqrt", ctx.fork_default("add_eps_before_sqrt")):
        den = np.sqrt(bcast(var, x.ndim, 1) + p.eps)
    else:
        den = np.sqrt(bcast(var, x.ndim, 1)) + p.eps
    return [(x - bcast(mean, x.ndim, 1)) / den]


def _scale_shape(ctx, x, axis_param, num_axes, what):
    ax = canonical_axis(ctx, axis_param, x.ndim, allow_end=True)
    if num_axes < -1:
        ctx.fail(f"num_axes must be -1 or non-negative, got {num_axes}")
    end = x.ndim if num_axes == -1 else ax + num_axes
    if end > x.ndim:
        ctx.fail(f"{what} axis {ax} with num_axes {num_axes} runs past the input's {x.ndim} axes")
    return ax, x.shape[ax:end]


@op("Scale")
def _scale(ctx, layer, bottoms, params):
    p = layer.scale_param
    x = bottoms[0]
    rest = list(params)
    if len(bottoms) > 1:
        s = bottoms[1]
        # The second bottom's own shape decides; a scalar applies everywhere.
        ax = canonical_axis(ctx, p.axis, x.ndim, allow_end=True) if s.ndim else 0
        if x.shape[ax:ax + s.ndim] != s.shape:
            ctx.fail(f"scale bottom shape {s.shape} does not match input shape {x.shape} from axis {ax}")
    else:
        ax, shape = _scale_shape(ctx, x, p.axis, p.num_axes, "scale")
        s = rest.pop(0).reshape(shape)
        ax = ax if s.ndim else 0
    y = x * bcast(s, x.ndim, ax)
    if p.bias_term:
        y = y + bcast(rest[0].reshape(s.shape), x.ndim, ax)
    return [y]


@op("Bias")
def _bias(ctx, layer, bottoms, params):
    p = layer.bias_param
    x = bottoms[0]
    if len(bottoms) > 1:
        b = bottoms[1]
        ax = canonical_axis(ctx, p.axis, x.ndim, allow_end=True) if b.ndim else 0
    else:
        ax, shape = _scale_shape(ctx, x, p.axis, p.num_axes, "bias")
        b = params[0].reshape(shape)
        ax = ax if b.ndim else 0
    return [x + bcast(b, x.ndim, ax)]


@op("MVN")
def _mvn(ctx, layer, bottoms, params):
    p = layer.mvn_param
    x = bottoms[0]
    n = x.shape[0] if p.across_channels else x.shape[0] * (x.shape[1] if x.ndim > 1 else 1)
    m = x.reshape(n, -1)
    m = m - m.mean(axis=1, keepdims=True)
    if p.normalize_variance:
        # eps is added to the standard deviation, not the variance.
        m = m / (np.sqrt((m * m).mean(axis=1, keepdims=True)) + p.eps)
    return [m.reshape(x.shape)]


@op("BN")
def _bn(ctx, layer, bottoms, params):
    # Fork BN layers. yjxiong/caffe (PSPNet; bn_param with slope_filler/bias_filler/eps):
    # slope * (x - mean) / sqrt(var + eps) + bias with the stored mean and variance at test
    # time. SegNet's bn_layer.cpp: INFERENCE: scale * x + shift; LEARN (the default): the
    # batch's mean and E[x^2] - mean^2 over (N, H, W), + var_eps_ (1e-9), then scale and shift.
    x = bottoms[0]
    block = (ctx.extra.get("bn_param") or [{}])[-1]
    psp = isinstance(block, dict) and any(k in block for k in PSP_BN_FIELDS)
    scale, shift = params[0].reshape(1, -1, 1, 1), params[1].reshape(1, -1, 1, 1)
    if psp:
        eps = float(ctx.fork_param("bn_param", "eps"))
        mean, var = params[2].reshape(1, -1, 1, 1), params[3].reshape(1, -1, 1, 1)
        return [scale * (x - mean) / np.sqrt(var + eps) + shift]
    # SegNet's optional tops 2 and 3: the batch mean and variance, (1, C, 1, 1), written in LEARN
    # mode only (Reshape shapes them; a fresh blob reads as zeros).
    n_tops = len(layer.top)
    mode = str(ctx.fork_param("bn_param", "bn_mode"))
    if mode in ("INFERENCE", "1"):
        zeros = np.zeros((1, x.shape[1], 1, 1))
        return [scale * x + shift, zeros, zeros][:n_tops]
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = (x * x).mean(axis=(0, 2, 3), keepdims=True) - mean * mean
    return [(x - mean) / np.sqrt(var + SEGNET_BN_EPS) * scale + shift, mean, var][:n_tops]
