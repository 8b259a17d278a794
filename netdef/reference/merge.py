"""Layers that combine or split blobs: Eltwise, Concat, Slice, Split, Crop, and the forks' Mul
and Axpy (netdef/layers/merge.py)."""
from __future__ import annotations

import numpy as np

from .. import forks
from ..proto import pb
from .base import canonical_axis, op


@op("Eltwise")
def _eltwise(ctx, layer, bottoms, params):
    p = layer.eltwise_param
    shape = bottoms[0].shape
    if any(b.shape != shape for b in bottoms):
        ctx.fail(f"bottom shapes differ: {[b.shape for b in bottoms]}")
    if p.operation == pb.EltwiseParameter.PROD:
        y = bottoms[0].copy()
        for b in bottoms[1:]:
            y = y * b
        return [y]
    if p.operation == pb.EltwiseParameter.MAX:
        return [np.maximum.reduce(bottoms)]
    coeff = list(p.coeff) or [1.0] * len(bottoms)
    if len(coeff) != len(bottoms):
        ctx.fail(f"{len(coeff)} coefficients for {len(bottoms)} bottoms")
    return [sum(c * b for c, b in zip(coeff, bottoms))]


@op("Concat")
def _concat(ctx, layer, bottoms, params):
    p = layer.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    ax = canonical_axis(ctx, axis, bottoms[0].ndim)
    return [np.concatenate(bottoms, axis=ax)]


@op("Slice")
def _slice(ctx, layer, bottoms, params):
    p = layer.slice_param
    x = bottoms[0]
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    ax = canonical_axis(ctx, axis, x.ndim)
    n = len(layer.top)
    if p.slice_point:
        if len(p.slice_point) != n - 1:
            ctx.fail(f"{len(p.slice_point)} slice points for {n} tops")
        cuts = list(p.slice_point)
    else:
        if x.shape[ax] % n:
            ctx.fail(f"axis {ax} of size {x.shape[ax]} does not split evenly into {n}")
        cuts = [x.shape[ax] // n * (i + 1) for i in range(n - 1)]
    return np.split(x, cuts, axis=ax)


@op("Split")
def _split(ctx, layer, bottoms, params):
    return [bottoms[0]] * len(layer.top)


@op("Crop")
def _crop(ctx, layer, bottoms, params):
    if forks.v1_written(ctx.loc):   # V1 CROP: the FCN-era forks' coordinate-map crop (coordmap.py)
        from .coordmap import coord_crop
        return coord_crop(ctx, layer, bottoms)
    p = layer.crop_param
    x, ref = bottoms
    start = canonical_axis(ctx, p.axis, x.ndim)
    sl = []
    for i in range(x.ndim):
        if i < start:
            sl.append(slice(None))
            continue
        off = 0 if not p.offset else p.offset[0] if len(p.offset) == 1 else p.offset[i - start]
        if x.shape[i] - off < ref.shape[i]:
            ctx.fail(f"cropping axis {i} at offset {off} to size {ref.shape[i]} runs past its size {x.shape[i]}")
        sl.append(slice(off, off + ref.shape[i]))
    return [x[tuple(sl)]]


@op("Mul")
def _mul(ctx, layer, bottoms, params):
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe mul_layer.cpp: the product, broadcast
    # with the axes aligned at the end (each pair equal or 1).
    if len(bottoms) != 2:
        ctx.fail("Mul with one bottom (a learned mul_shape multiplier) is not supported")
    a, b = bottoms
    try:
        return [a * b]
    except ValueError:
        ctx.fail(f"shapes {a.shape} and {b.shape} do not broadcast")


@op("Axpy")
def _axpy(ctx, layer, bottoms, params):
    # hujie-frank/SENet AxpyLayer::Forward_cpu: top = y, then top[n, c] += a[n, c] * x[n, c].
    a, x, y = bottoms
    return [y + a.reshape(x.shape[0], x.shape[1], *([1] * (x.ndim - 2))) * x]


@op("Add")
def _add(ctx, layer, bottoms, params):
    # add_layer.cpp Forward_cpu: bottom0 + bottom1 at each top index, an axis of size 1 read at 0
    # (end-aligned axes); a 0-axis bottom adds its one value everywhere.
    a, b = bottoms
    try:
        return [a + b]
    except ValueError:
        ctx.fail(f"shapes {a.shape} and {b.shape} do not broadcast")
