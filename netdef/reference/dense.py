"""InnerProduct and Embed (netdef/layers/dense.py)."""
from __future__ import annotations

import numpy as np

from ..layers.base import count
from .base import canonical_axis, op


@op("InnerProduct")
def _inner_product(ctx, layer, bottoms, params):
    p = layer.inner_product_param
    x = bottoms[0]
    ax = canonical_axis(ctx, p.axis, x.ndim)
    k = count(x.shape, ax)
    m = x.reshape(count(x.shape, 0, ax), k)
    w = params[0]
    y = m @ w if p.transpose else m @ w.T
    if p.bias_term:
        y = y + params[1].reshape(1, -1)
    return [y.reshape(x.shape[:ax] + (p.num_output,))]


@op("Embed")
def _embed(ctx, layer, bottoms, params):
    p = layer.embed_param
    x = bottoms[0]
    idx = x.astype(np.int64)  # static_cast<int>: truncation toward zero
    if idx.size and (idx.min() < 0 or idx.max() >= p.input_dim):
        ctx.fail(f"an index is outside [0, {p.input_dim})")
    y = params[0][idx]
    if p.bias_term:
        y = y + params[1]
    return [y]
