"""Element-wise activations, Softmax and Dropout, BVLC's and the forks' (netdef/layers/activation.py)."""
from __future__ import annotations

import math

import numpy as np

from ..proto import pb
from .base import bcast, canonical_axis, op


@op("ReLU")
def _relu(ctx, layer, bottoms, params):
    x, a = bottoms[0], layer.relu_param.negative_slope
    y = np.maximum(x, 0) + a * np.minimum(x, 0)
    # Synopsys' relu6 (foss-for-synopsys-dwc-arc-processors/synopsys-caffe relu_layer.cpp): then min(y, 6).
    if ctx.sub_field("relu_param", "relu6", ctx.fork_default("relu6")):
        y = np.minimum(y, 6.0)
    return [y]


@op("Sigmoid")
def _sigmoid(ctx, layer, bottoms, params):
    # Caffe: 0.5 * tanh(0.5 x) + 0.5, which never overflows.
    return [0.5 * np.tanh(0.5 * bottoms[0]) + 0.5]


@op("TanH")
def _tanh(ctx, layer, bottoms, params):
    return [np.tanh(bottoms[0])]


@op("AbsVal")
def _absval(ctx, layer, bottoms, params):
    return [np.abs(bottoms[0])]


@op("BNLL")
def _bnll(ctx, layer, bottoms, params):
    x = bottoms[0]
    return [np.where(x > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x)))]


@op("ELU")
def _elu(ctx, layer, bottoms, params):
    x, a = bottoms[0], layer.elu_param.alpha
    return [np.where(x > 0, x, a * (np.exp(np.minimum(x, 0)) - 1))]


@op("Clip")
def _clip(ctx, layer, bottoms, params):
    p = layer.clip_param
    return [np.maximum(p.min, np.minimum(bottoms[0], p.max))]


@op("Swish")
def _swish(ctx, layer, bottoms, params):
    x = bottoms[0]
    return [x * (0.5 * np.tanh(0.5 * layer.swish_param.beta * x) + 0.5)]


@op("Power")
def _power(ctx, layer, bottoms, params):
    p = layer.power_param
    return [(p.shift + p.scale * bottoms[0]) ** p.power]


@op("Exp")
def _exp(ctx, layer, bottoms, params):
    p = layer.exp_param
    if p.base != -1 and p.base <= 0:
        ctx.fail(f"base must be -1 (e) or positive, got {p.base:g}")
    log_base = 1.0 if p.base == -1 else math.log(p.base)
    return [np.exp(log_base * (p.shift + p.scale * bottoms[0]))]


@op("Log")
def _log(ctx, layer, bottoms, params):
    p = layer.log_param
    if p.base != -1 and p.base <= 0:
        ctx.fail(f"base must be -1 (e) or positive, got {p.base:g}")
    inv = 1.0 if p.base == -1 else 1.0 / math.log(p.base)
    return [np.log(p.shift + p.scale * bottoms[0]) * inv]


@op("Threshold")
def _threshold(ctx, layer, bottoms, params):
    return [(bottoms[0] > layer.threshold_param.threshold).astype(np.float64)]


@op("PReLU")
def _prelu(ctx, layer, bottoms, params):
    x = bottoms[0]
    if x.ndim < 2:
        ctx.fail("PReLU needs at least 2 axes")
    slope = params[0]
    if layer.prelu_param.channel_shared:
        a = slope.reshape(())
    else:
        a = bcast(slope.reshape(-1), x.ndim, 1)
    return [np.maximum(x, 0) + a * np.minimum(x, 0)]


@op("Dropout")
def _dropout(ctx, layer, bottoms, params):
    # Caffe scales at training time (inverted dropout), so TEST is the identity.
    if ctx.phase == pb.TRAIN:
        ctx.fail("dropout in the TRAIN phase is random; the reference computes TEST")
    return [bottoms[0]]


@op("Softmax")
def _softmax(ctx, layer, bottoms, params):
    x = bottoms[0]
    ax = canonical_axis(ctx, layer.softmax_param.axis, x.ndim)
    e = np.exp(x - x.max(axis=ax, keepdims=True))
    return [e / e.sum(axis=ax, keepdims=True)]


@op("ReLU6")
def _relu6(ctx, layer, bottoms, params):
    # brocolli-caffe's relu6_param (netdef/layers/activation.py ReLU6); defaults 0 and 6.
    x = bottoms[0]
    slope = np.float32(ctx.fork_param("relu6_param", "negative_slope"))
    top = np.float32(ctx.fork_param("relu6_param", "threshold"))
    return [np.minimum(np.maximum(x, 0) + slope * np.minimum(x, 0), top).astype(x.dtype)]


@op("Mish")
def _mish(ctx, layer, bottoms, params):
    # MishLayer (Caffe forks; ncnn's mish.cpp alike): softplus is x above 20, exp(x) below -20.
    x = bottoms[0]
    sp = np.where(x > 20, x, np.where(x < -20, np.exp(x), np.log1p(np.exp(np.minimum(x, 20)))))
    return [x * np.tanh(sp)]


@op("HardSwish")
def _hard_swish(ctx, layer, bottoms, params):
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe hard_swish_layer.cpp: x * min(max(x + 3, 0), 6) / 6.
    x = bottoms[0]
    return [x * np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0]
