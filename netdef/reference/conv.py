"""Convolutions: BVLC's Convolution and Deconvolution (base_conv_layer.cpp, conv_layer.cpp,
deconv_layer.cpp), the depthwise forks and C3D's 3-D convolution (netdef/layers/conv.py)."""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..layers.convsize import conv_size, end_pad
from ..proto import pb
from .base import c3d_geometry, canonical_axis, op, pads_tlbr


def _spatial(ctx, p: pb.ConvolutionParameter, nsp: int):
    """kernel, stride, pad, dilation per spatial axis, as BaseConvolutionLayer::LayerSetUp."""
    def per_axis(rep, h, w, has_hw, default, what):
        if has_hw:
            if nsp != 2:
                ctx.fail(f"{what}_h/{what}_w need exactly 2 spatial axes, the input has {nsp}")
            if len(rep):
                ctx.fail(f"{what} and {what}_h/{what}_w are both given")
            return [h, w]
        if len(rep) == 0:
            if default is None:
                ctx.fail(f"{what} is required")
            return [default] * nsp
        if len(rep) not in (1, nsp):
            ctx.fail(f"{what} has {len(rep)} values; give 1 or {nsp}")
        return [int(rep[0 if len(rep) == 1 else i]) for i in range(nsp)]

    kernel = per_axis(p.kernel_size, p.kernel_h, p.kernel_w, p.HasField("kernel_h") or p.HasField("kernel_w"), None, "kernel_size")
    stride = per_axis(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h") or p.HasField("stride_w"), 1, "stride")
    pad = per_axis(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h") or p.HasField("pad_w"), 0, "pad")
    dilation = per_axis(p.dilation, 0, 0, False, 1, "dilation")
    if min(kernel) <= 0 or min(stride) <= 0 or min(dilation) <= 0:
        ctx.fail("kernel, stride and dilation must be positive")
    return kernel, stride, pad, dilation


@op("Convolution")
def _convolution(ctx, layer, bottoms, params):
    p = layer.convolution_param
    outs = []
    for x in bottoms:
        ax = canonical_axis(ctx, p.axis, x.ndim)
        nsp = x.ndim - ax - 1
        kernel, stride, pad, dil = _spatial(ctx, p, nsp)
        pad_end = list(pad)
        asym = pads_tlbr(ctx, "convolution_param")
        if asym is not None:
            if nsp != 2 or layer.type != "Convolution":
                ctx.fail("pad_t/pad_l/pad_b/pad_r apply to 2-D Convolution only")
            pad, pad_end = asym
        w = params[0]
        g = p.group
        cin, cout = x.shape[ax], p.num_output
        if cin % g or cout % g:
            ctx.fail(f"group {g} does not divide the channels ({cin} in, {cout} out)")
        if w.shape != (cout, cin // g, *kernel):
            ctx.fail(f"weight shape {w.shape} does not fit the layer")
        lead = x.shape[:ax]
        xs = x.reshape((-1, cin) + x.shape[ax + 1:])
        # Caffe's size (C++ division, truncating toward zero: layers/convsize.py); where the
        # kernel is larger than the padded input, im2col reads zeros past it: more end padding.
        ext = [d * (k - 1) + 1 for d, k in zip(dil, kernel)]
        outsz = [conv_size(xs.shape[2 + i] + pad[i] + pad_end[i], ext[i], stride[i]) for i in range(nsp)]
        if min(outsz) < 0:
            ctx.fail(f"the output would have a negative size ({outsz})")
        if min(outsz) == 0:
            outs.append(np.zeros(lead + (cout, *outsz)))
            continue
        pad_end = [end_pad(xs.shape[2 + i], pad[i], pad_end[i], ext[i], stride[i], outsz[i]) for i in range(nsp)]
        xp = np.pad(xs, [(0, 0), (0, 0)] + [(q, e) for q, e in zip(pad, pad_end)]) if any(pad + pad_end) else xs
        n, cg, og = xs.shape[0], cin // g, cout // g
        # im2col as a strided view, copied once into (N * out, C/group * kernel) rows.
        win = np.lib.stride_tricks.sliding_window_view(xp, ext, axis=tuple(range(2, 2 + nsp)))
        win = win[(slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(outsz, stride))
                  + tuple(slice(None, None, d) for d in dil)]
        y = np.empty((n, *outsz, cout))
        for gi in range(g):
            cols = np.moveaxis(win[:, gi * cg:(gi + 1) * cg], 1, 1 + nsp).reshape(n * math.prod(outsz), -1)
            y[..., gi * og:(gi + 1) * og] = (cols @ w[gi * og:(gi + 1) * og].reshape(og, -1).T).reshape(n, *outsz, og)
        y = np.moveaxis(y, -1, 1)
        if p.bias_term:
            y += params[1].reshape((1, cout) + (1,) * nsp)
        outs.append(y.reshape(lead + y.shape[1:]))
    return outs


@op("Deconvolution")
def _deconvolution(ctx, layer, bottoms, params):
    p = layer.convolution_param
    outs = []
    for x in bottoms:
        ax = canonical_axis(ctx, p.axis, x.ndim)
        nsp = x.ndim - ax - 1
        kernel, stride, pad, dil = _spatial(ctx, p, nsp)
        w = params[0]                                 # (C_in, C_out / group, *kernel)
        g = p.group
        cin, cout = x.shape[ax], p.num_output
        if cin % g or cout % g:
            ctx.fail(f"group {g} does not divide the channels ({cin} in, {cout} out)")
        lead = x.shape[:ax]
        xs = x.reshape((-1, cin) + x.shape[ax + 1:])
        insz = xs.shape[2:]
        full = [stride[i] * (insz[i] - 1) + dil[i] * (kernel[i] - 1) + 1 for i in range(nsp)]
        outsz = [full[i] - 2 * pad[i] for i in range(nsp)]
        if min(outsz) <= 0:
            ctx.fail(f"the output would be empty ({outsz})")
        y = np.zeros((xs.shape[0], cout, *full))
        cg, og = cin // g, cout // g
        for gi in range(g):
            xg = np.moveaxis(xs[:, gi * cg:(gi + 1) * cg], 1, -1)    # (N, *in, cg)
            wg = w[gi * cg:(gi + 1) * cg]
            for offs in itertools.product(*[range(k) for k in kernel]):
                contrib = np.tensordot(xg, wg[(slice(None), slice(None)) + offs], axes=([-1], [0]))  # (N,*in,og)
                sl = tuple(slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, n, s in zip(offs, dil, insz, stride))
                y[(slice(None), slice(gi * og, (gi + 1) * og)) + sl] += np.moveaxis(contrib, -1, 1)
        y = y[(slice(None), slice(None)) + tuple(slice(q, q + n) for q, n in zip(pad, outsz))]
        if p.bias_term:
            y = y + params[1].reshape((1, cout) + (1,) * nsp)
        outs.append(y.reshape(lead + y.shape[1:]))
    return outs


@op("DepthwiseConvolution")
def _depthwise_convolution(ctx, layer, bottoms, params):
    # yonghenglh6/DepthwiseConvolution: a ConvolutionLayer whose forward uses channel c's
    # kernel for output c: Caffe's convolution when group = channels = num_output.
    p = layer.convolution_param
    c = bottoms[0].shape[1]
    if not p.group == c == p.num_output:
        ctx.fail(f"group {p.group} and num_output {p.num_output} must equal the {c} channels")
    return _convolution(ctx, layer, bottoms, params)


@op("ConvolutionDepthwise")
def _convolution_depthwise(ctx, layer, bottoms, params):
    # conv_dw_layer.cpp (MobileNet forks): out[n, c] = sum over the window of w[c] * x[n, c],
    # for every channel of the bottom, zero outside the input; num_output and group unread.
    x = bottoms[0]
    p = layer.convolution_param

    def pair(rep, h, w, default):
        if p.HasField(h) and p.HasField(w):
            return [getattr(p, h), getattr(p, w)]
        vals = list(getattr(p, rep))
        return [default] * 2 if not vals else ([vals[0]] * 2 if len(vals) == 1 else vals[:2])

    kh, kw = pair("kernel_size", "kernel_h", "kernel_w", 0)
    sh, sw = pair("stride", "stride_h", "stride_w", 1)
    ph, pw = pair("pad", "pad_h", "pad_w", 0)
    dil = list(p.dilation) or [1]
    dh, dw = (dil[0], dil[0]) if len(dil) == 1 else dil[:2]
    n, c, h, w = x.shape
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    oh, ow = conv_size(h + 2 * ph, eh, sh), conv_size(w + 2 * pw, ew, sw)
    if min(oh, ow) <= 0:
        ctx.fail(f"the output would be {oh} x {ow}: Reshape fills a weight multiplier of that size")
    wt = params[0].reshape(c, kh, kw)
    # Windows past the padded input (a kernel larger than it) read zeros.
    xp = np.pad(x, [(0, 0), (0, 0), (ph, end_pad(h, ph, ph, eh, sh, oh)), (pw, end_pad(w, pw, pw, ew, sw, ow))])
    y = np.zeros((n, c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            y += win * wt[:, i, j].reshape(1, c, 1, 1)
    if p.bias_term:
        y += params[1].reshape(1, c, 1, 1)
    return [y]


@op("Convolution3D")
def _convolution3d(ctx, layer, bottoms, params):
    # facebook/C3D convolution3d_layer.cpp: vol2col then one gemm per filter group, each group
    # over all C channels; bias (1, 1, 1, 1, num_output).
    x = bottoms[0]
    kernel, stride, pad = c3d_geometry(ctx, "convolution_param")
    w = params[0]
    out = [conv_size(x.shape[2 + i] + 2 * pad[i], kernel[i], stride[i]) for i in range(3)]
    if min(out) < 0:
        ctx.fail(f"the output would have a negative size ({out})")
    y = np.zeros((x.shape[0], w.shape[0], *out))
    if min(out) == 0:
        return [y]
    # Windows past the padded input (a kernel larger than it) read zeros.
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, end_pad(x.shape[2 + i], q, q, kernel[i], stride[i], out[i]))
                                       for i, q in enumerate(pad)])
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            for c in range(kernel[2]):
                win = xp[:, :, a:a + (out[0] - 1) * stride[0] + 1:stride[0], b:b + (out[1] - 1) * stride[1] + 1:stride[1],
                         c:c + (out[2] - 1) * stride[2] + 1:stride[2]]
                y += np.einsum("nclhw,oc->nolhw", win, w[:, :, a, b, c])
    if layer.convolution_param.bias_term:
        y += params[1].reshape(1, -1, 1, 1, 1)
    return [y]
