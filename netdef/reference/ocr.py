"""NumPy reference ops for the OCR and sequence layers of Caffe forks (imported by netdef.reference).

Written from the forks' C++ loops, not from netdef's ONNX lowering (netdef/layers/ocr.py), so that
`netdef verify` compares two independent readings of the same source:
  Transpose, Reverse,      senlinuc/caffe_ocr: transpose_layer.cpp, reverse_layer.cpp,
  CTCGreedyDecoder,        ctc_decoder_layer.cpp, DenseBlock_layer.cpp and DenseBlock_layer.cu
  DenseBlock
  Lstm                     junhyukoh/caffe-lstm lstm_layer.cpp; senlinuc/caffe_ocr lstm_layer_Junhyuk.cpp
The parameter defaults are the layer classes' fork_defaults (netdef/layers/ocr.py), read through
Ctx.fork_param.
"""
from __future__ import annotations

import numpy as np

from ..forks import as_bool
from ..layers.ocr import DENSEBLOCK_EPS
from .base import op


@op("Transpose")
def _transpose(ctx, layer, bottoms, params):
    # transpose_cpu: top axis i walks bottom axis dim[i].
    dims = [int(d) for d in ctx.fork_all("transpose_param", "dim")]
    x = bottoms[0]
    if sorted(dims) != list(range(x.ndim)):
        ctx.fail(f"transpose dims {dims} are not a permutation of the {x.ndim} axes")
    return [np.transpose(x, dims)]


@op("Reverse")
def _reverse(ctx, layer, bottoms, params):
    # ReverseLayer::Forward_cpu: slice i along the axis lands at (n - 1 - i).
    x = bottoms[0]
    axis = int(ctx.fork_param("reverse_param", "axis"))
    if not 0 <= axis < x.ndim:
        ctx.fail(f"reverse axis {axis} is out of range")
    return [np.flip(x, axis).copy()]


@op("CTCGreedyDecoder")
def _ctc_greedy(ctx, layer, bottoms, params):
    # CTCGreedyDecoderLayer::Decode (the one-bottom form) and CTCDecoderLayer::Forward_cpu.
    if len(bottoms) != 1:
        ctx.fail("only the one-bottom form (scores -> labels) is supported")
    x = bottoms[0]
    t_len, n, c = x.shape[0], x.shape[1], x.shape[2]
    rows = x.reshape(t_len, n, -1)
    blank = int(ctx.fork_param("ctc_decoder_param", "blank_index"))
    if blank < 0:
        blank = c - 1
    merge = as_bool(ctx.fork_param("ctc_decoder_param", "ctc_merge_repeated"))
    out = np.full((n, t_len, 1, 1), -1.0)
    for j in range(n):
        prev = -1
        seq = []
        for t in range(t_len):
            probs = rows[t, j]
            best = 0
            for k in range(1, c):           # the first maximum: a later one must be strictly larger
                if probs[k] > probs[best]:
                    best = k
            if best != blank and not (merge and best == prev):
                seq.append(best)
            prev = best
        out[j, :len(seq), 0, 0] = seq
    return [out]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@op("Lstm")
def _lstm(ctx, layer, bottoms, params):
    # LstmLayer::Forward_cpu of both forks (see netdef/layers/ocr.py for the two shape rules).
    x = bottoms[0]
    h_dim = int(ctx.fork_given("lstm_param", "num_output") or 0)
    if x.ndim == 3:                                   # caffe_ocr: (T, N, I) -> (T, N, H)
        t_len, n = x.shape[0], x.shape[1]
    else:                                             # caffe-lstm: (T*N, ...) -> (T*N, H)
        n = int(ctx.fork_param("lstm_param", "batch_size"))
        t_len = x.shape[0] // n
    w_i, w_h, b = params[0], params[1], params[2]
    pre = x.reshape(t_len * n, -1) @ w_i.T + b        # the input-to-hidden gemm, plus the bias
    pre = pre.reshape(t_len, n, 4 * h_dim)
    clip = bottoms[1].reshape(-1) if len(bottoms) > 1 else None
    h_prev = np.zeros((n, h_dim))
    c_prev = np.zeros((n, h_dim))
    out = np.zeros((t_len, n, h_dim))
    for t in range(t_len):
        h_to_gate = h_prev @ w_h.T
        for j in range(n):
            cont = (clip[t + j] != 0) if clip is not None else t > 0
            g = pre[t, j] + (h_to_gate[j] if cont else 0.0)
            i = _sigmoid(g[:h_dim])
            f = _sigmoid(g[h_dim:2 * h_dim]) if cont else np.zeros(h_dim)
            o = _sigmoid(g[2 * h_dim:3 * h_dim])
            gg = np.tanh(g[3 * h_dim:])
            c_prev[j] = f * c_prev[j] + i * gg
            out[t, j] = o * np.tanh(c_prev[j])
        h_prev = out[t].copy()
    return [out if x.ndim == 3 else out.reshape(t_len * n, h_dim)]


def _conv3x3_flipped(x, w):
    """convolution_Fwd / cuDNN's CUDNN_CONVOLUTION: y[h, w] = sum W[k, c, i, j] x[h + 1 - i, w + 1 - j],
    zero outside the input."""
    n, c, hh, ww = x.shape
    xp = np.zeros((n, c, hh + 2, ww + 2))
    xp[:, :, 1:-1, 1:-1] = x
    y = np.zeros((n, w.shape[0], hh, ww))
    kh, kw = w.shape[2], w.shape[3]
    for i in range(kh):
        for j in range(kw):
            # x[h + (kh // 2) - i] is xp[h + (kh // 2) - i + 1]
            a, b = kh // 2 - i + 1, kw // 2 - j + 1
            y += np.einsum("kc,nchw->nkhw", w[:, :, i, j], xp[:, :, a:a + hh, b:b + ww])
    return y


def _bn_relu(x, scale, bias, mean, var):
    # cudnnBatchNormalizationForwardInference with the stored statistics, then ReLU.
    shape = (1, -1, 1, 1)
    y = scale.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + DENSEBLOCK_EPS) \
        + bias.reshape(shape)
    return np.maximum(y, 0.0)


@op("DenseBlock")
def _dense_block(ctx, layer, bottoms, params):
    # DenseBlockLayer::Forward_gpu in TEST (see netdef/layers/ocr.py for the CPU path's factor).
    t = int(ctx.fork_param("denseblock_param", "numTransition"))
    bc = as_bool(ctx.fork_param("denseblock_param", "use_BC"))
    merged = bottoms[0]
    for k in range(t):
        y = _bn_relu(merged, params[t + k], params[2 * t + k], params[3 * t + k], params[4 * t + k])
        if bc:
            y = np.einsum("kc,nchw->nkhw", params[5 * t + k][:, :, 0, 0], y)
            y = _bn_relu(y, params[6 * t + k], params[7 * t + k], params[8 * t + k], params[9 * t + k])
        merged = np.concatenate([merged, _conv3x3_flipped(y, params[k])], axis=1)
    return [merged]
