"""NumPy reference of video-caffe's NdConvolution and NdPooling (netdef/layers/video.py), written
from chuckcho/video-caffe cudnn_ndconv_layer.cpp, cudnn_ndpooling_layer.cpp and
include/caffe/util/cudnn.hpp (createNdPoolingDesc); and of C3D-v1.1's Convolution3D / Pooling3D
variants, written from facebook/C3D C3D-v1.1/src/caffe/layers/convolution3d_layer.cpp and
pool3d_layer.cpp."""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..layers.video import C3D11_CONV_DEFAULTS, C3D11_POOL_DEFAULTS, is_c3d11_conv, is_c3d11_pool
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


# --- C3D-v1.1's Convolution3D / Pooling3D (convolution3d_param / pooling3d_param) ---------------

def _c3d11(ctx, message, defaults):
    """(kernel, stride, pad) as (length, height, width) and a getter of the message's fields,
    as facebook/C3D C3D-v1.1's convolution3d_layer.cpp / pool3d_layer.cpp Reshape read them."""
    def get(name):
        v = ctx.fork_given(message, name)
        return defaults.get(name) if v is None else v
    if get("kernel_size") is None or get("kernel_depth") is None:
        ctx.fail(f"{message} needs kernel_size and kernel_depth")
    k, kd = int(get("kernel_size")), int(get("kernel_depth"))
    s, ts, pd = int(get("stride")), int(get("temporal_stride")), int(get("pad"))
    tp = int(get("temporal_pad")) if message == "convolution3d_param" else 0
    return (kd, k, k), (ts, s, s), (tp, pd, pd), get


@op("Convolution3D", when=is_c3d11_conv)
def _convolution3d_v11(ctx, layer, bottoms, params):
    # convolution3d_layer.cpp Forward_cpu: vol2col of the zero-padded clip, then per filter group
    # a gemm over all C channels: top[o, l, h, w] = sum_c,a,b,d W[o, c, a, b, d] *
    # x[c, l*ts + a - tp, h*s + b - p, w*s + d - p] (+ bias[o]), written here as that sum.
    x = bottoms[0]
    kernel, stride, pad, get = _c3d11(ctx, "convolution3d_param", C3D11_CONV_DEFAULTS)
    w = params[0]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in pad])
    out = [(xp.shape[2 + i] - kernel[i]) // stride[i] + 1 for i in range(3)]
    y = np.zeros((x.shape[0], w.shape[0], *out))
    for a, b, d in itertools.product(*(range(k) for k in kernel)):
        win = xp[:, :, a::stride[0], b::stride[1], d::stride[2]][:, :, :out[0], :out[1], :out[2]]
        y += np.einsum("nclhw,oc->nolhw", win, w[:, :, a, b, d])
    if str(get("bias_term")).lower() not in ("false", "0", "f"):
        y += params[1].reshape(1, -1, 1, 1, 1)
    return [y]


@op("Pooling3D", when=is_c3d11_pool)
def _pooling3d_v11(ctx, layer, bottoms, params):
    # pool3d_layer.cpp Forward_cpu, its loops over output cells: windows start at o * stride - pad,
    # end at min(start + kernel, size + pad); MAX over the part inside the input, AVE the sum over
    # that part divided by the window clipped to the padded frame (the length is never padded).
    x = bottoms[0]
    kernel, stride, pad, get = _c3d11(ctx, "pooling3d_param", C3D11_POOL_DEFAULTS)
    is_max = str(get("pool")) in ("MAX", "0")
    n, c = x.shape[:2]
    size = x.shape[2:]
    out = [-(-(size[i] + 2 * pad[i] - kernel[i]) // stride[i]) + 1 for i in range(3)]
    y = np.zeros((n, c, *out))
    for cell in itertools.product(*(range(o) for o in out)):
        lo = [cell[i] * stride[i] - pad[i] for i in range(3)]
        hi = [min(lo[i] + kernel[i], size[i] + pad[i]) for i in range(3)]
        win = x[(slice(None), slice(None)) + tuple(slice(max(lo[i], 0), min(hi[i], size[i])) for i in range(3))]
        if is_max:
            y[(slice(None), slice(None)) + cell] = win.max(axis=(2, 3, 4)) if win.size else -3.402823466e38
        else:
            y[(slice(None), slice(None)) + cell] = win.sum(axis=(2, 3, 4)) / math.prod(h - l for l, h in zip(lo, hi))
    return [y]
