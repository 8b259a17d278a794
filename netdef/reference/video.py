"""NumPy reference of video-caffe's NdConvolution and NdPooling (netdef/layers/video.py), written
from chuckcho/video-caffe cudnn_ndconv_layer.cpp, cudnn_ndpooling_layer.cpp and
include/caffe/util/cudnn.hpp (createNdPoolingDesc)."""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..proto import pb
from .base import op


def _nd_shapes(ctx, message, rank):
    """kernel_shape / stride_shape / pad_shape dims (cudnn_nd*_layer.cpp LayerSetUp)."""
    sub = ctx.loc.msg(message) if ctx.loc is not None else None
    extra = sub.extra if sub is not None else {}

    def dims(name, default):
        blocks = extra.get(name)
        return list(blocks[-1].get("dim", [])) if blocks else default

    kernel = dims("kernel_shape", None)
    if not kernel:
        ctx.fail("kernel_shape is required")
    stride = dims("stride_shape", [1] * len(kernel))
    pad = dims("pad_shape", [0] * len(kernel))
    if not len(kernel) == len(stride) == len(pad) == rank - 2:
        ctx.fail(f"kernel_shape, stride_shape and pad_shape need one dim per spatial axis ({rank - 2})")
    if min(kernel) <= 0 or min(stride) <= 0:
        ctx.fail("kernel and stride dims must be positive")
    return kernel, stride, pad


@op("NdConvolution")
def _nd_convolution(ctx, layer, bottoms, params):
    # cuDNN's N-D cross-correlation per group (cudnn_ndconv_layer.cu Forward_gpu: one
    # cudnnConvolutionForward per group, then the bias added per output channel).
    p = layer.convolution_param
    w = params[0]
    outs = []
    for x in bottoms:
        kernel, stride, pad = _nd_shapes(ctx, "convolution_param", x.ndim)
        g = p.group
        if g <= 0 or x.shape[1] % g or p.num_output % g:
            ctx.fail("group must divide the channels and num_output")
        xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in pad])
        out = [(xp.shape[2 + i] - kernel[i]) // stride[i] + 1 for i in range(len(kernel))]
        if min(out) <= 1:
            ctx.fail(f"an output axis would be {min(out)}: compute_output_shape drops it")
        cin, cout = x.shape[1] // g, p.num_output // g
        y = np.zeros((x.shape[0], p.num_output, *out))
        for offs in itertools.product(*[range(k) for k in kernel]):
            win = xp[(slice(None), slice(None)) + tuple(slice(o, o + (n - 1) * s + 1, s)
                                                        for o, n, s in zip(offs, out, stride))]
            for gi in range(g):
                wk = w[(slice(gi * cout, (gi + 1) * cout), slice(None)) + offs]
                y[:, gi * cout:(gi + 1) * cout] += np.tensordot(win[:, gi * cin:(gi + 1) * cin], wk,
                                                                 axes=([1], [1])).transpose(
                    0, x.ndim - 1, *range(1, x.ndim - 1))
        if p.bias_term:
            y += params[1].reshape((1, -1) + (1,) * len(kernel))
        outs.append(y)
    return outs


@op("NdPooling")
def _nd_pooling(ctx, layer, bottoms, params):
    # Shapes: cudnn_ndpooling_layer.cpp compute_output_shape (Caffe's round-up with the padding
    # clip). Values: cuDNN MAX over each window clipped to the input; AVE counts the padding
    # (CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING), defined here for windows inside the padded input.
    p = layer.pooling_param
    x = bottoms[0]
    kernel, stride, pad = _nd_shapes(ctx, "pooling_param", x.ndim)
    if p.global_pooling:
        kernel = list(x.shape[2:])
    if p.pool not in (pb.PoolingParameter.MAX, pb.PoolingParameter.AVE):
        ctx.fail("Unknown pooling method (NdPooling has MAX and AVE)")
    sizes = x.shape[2:]
    out = []
    for i, k in enumerate(kernel):
        o = int(math.ceil((sizes[i] + 2 * pad[i] - k) / stride[i])) + 1
        if pad[i] and (o - 1) * stride[i] >= sizes[i] + pad[i]:
            o -= 1
        out.append(o)
    is_max = p.pool == pb.PoolingParameter.MAX
    y = np.zeros(x.shape[:2] + tuple(out))
    for cell in itertools.product(*[range(o) for o in out]):
        sl, volume = [], 1
        for i, o in enumerate(cell):
            start = o * stride[i] - pad[i]
            end = start + kernel[i]
            if not is_max and end > sizes[i] + pad[i]:
                ctx.fail("an average window reaches past the padded input: cuDNN's divisor for it is not known")
            sl.append(slice(max(start, 0), min(end, sizes[i])))
            volume *= kernel[i]
        win = x[(slice(None), slice(None)) + tuple(sl)].reshape(x.shape[0], x.shape[1], -1)
        idx = (slice(None), slice(None)) + cell
        y[idx] = win.max(axis=2) if is_max else win.sum(axis=2) / volume
    return [y]
