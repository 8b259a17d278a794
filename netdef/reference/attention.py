"""NumPy reference op for PSANet's PointwiseSpatialAttention (netdef/layers/attention.py),
written from hszhao/PSANet src/caffe/layers/pointwise_spatial_attention_layer.cpp (Forward_cpu
and PSAForward_buffer_mask_collect_cpu / _distribute_cpu), not from the ONNX lowering."""
from __future__ import annotations

import numpy as np

from .. import forks
from ..layers.attention import PSA_DEFAULTS
from .base import op


def _given(ctx, message, name, default):
    """A fork field's value, else `default` (the fork's, declared in netdef/layers/)."""
    v = ctx.fork_given(message, name)
    return default if v is None else v

_TYPES = {"COLLECT": "COLLECT", "DISTRIBUTE": "DISTRIBUTE", "0": "COLLECT", "1": "DISTRIBUTE"}


@op("PointwiseSpatialAttention")
def _psa(ctx, layer, bottoms, params):
    # The buffer (N, HW, HW) starts at 0; for every target position (h, w) the mask window
    # [hstart, hend) x [wstart, wend) that stays inside the map is copied from bottom 1's
    # channels (hidx * mask_w + widx) at (h, w): COLLECT to buffer[n, source, target], DISTRIBUTE
    # to buffer[n, target, source], source = (hidx + h - half_h, widx + w - half_w). An optional
    # softmax over axis 1; then top[n] = bottom0[n] (C x HW) @ buffer[n] / normalization_factor.
    x, att = bottoms
    n, c, h, w = x.shape
    name = "pointwise_spatial_attention_param"
    mh = _given(ctx, name, "attention_mask_height", None)
    mw = _given(ctx, name, "attention_mask_width", None)
    if (mh is None) != (mw is None):
        ctx.fail("attention_mask_height and attention_mask_width must be given together")
    mh, mw = (int(mh), int(mw)) if mh is not None else (2 * h - 1, 2 * w - 1)
    if att.shape[1] != mh * mw:
        ctx.fail(f"bottom 1 has {att.shape[1]} channels, the mask needs {mh * mw}")
    nf = _given(ctx, name, "normalization_factor", None)
    nf = float(nf) if nf is not None else float(mh * mw)
    soft = forks.as_bool(_given(ctx, name, "is_softmax", PSA_DEFAULTS["is_softmax"])) is True
    kind = _TYPES.get(str(_given(ctx, name, "psa_type", PSA_DEFAULTS["psa_type"])))
    if kind is None:
        ctx.fail("psa_type must be COLLECT or DISTRIBUTE")
    half_h, half_w = (mh - 1) // 2, (mw - 1) // 2
    mask = att.reshape(n, mh, mw, h, w)
    buf = np.zeros((n, h, w, h, w))          # [n, row (h', w'), column (h'', w'')]
    for hh in range(h):
        for ww in range(w):
            hs, he = max(0, half_h - hh), min(mh, h + half_h - hh)
            ws, we = max(0, half_w - ww), min(mw, w + half_w - ww)
            block = mask[:, hs:he, ws:we, hh, ww]
            rows = slice(hs + hh - half_h, he + hh - half_h)
            cols = slice(ws + ww - half_w, we + ww - half_w)
            if kind == "COLLECT":
                buf[:, rows, cols, hh, ww] = block
            else:
                buf[:, hh, ww, rows, cols] = block
    buf = buf.reshape(n, h * w, h * w)
    if soft:
        e = np.exp(buf - buf.max(axis=1, keepdims=True))
        buf = e / e.sum(axis=1, keepdims=True)
    top = np.matmul(x.reshape(n, c, h * w), buf) * (1.0 / nf)
    return [top.reshape(n, c, h, w)]
