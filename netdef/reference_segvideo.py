"""NumPy reference ops for the segmentation and video layers of Caffe forks (imported by
netdef.reference). Written from the forks' C++ sources, not from netdef's ONNX lowering:
  NdConvolution, NdPooling   chuckcho/video-caffe: cudnn_ndconv_layer.cpp, cudnn_ndpooling_layer.cpp,
                             include/caffe/util/cudnn.hpp (createNdPoolingDesc)
  Add, ResizeNearestNeighbor foss-for-synopsys-dwc-arc-processors/synopsys-caffe: add_layer.cpp,
                             resize_nearest_neighbor_layer.cpp
  V1 CROP (coord_crop)       torrvision/caffe (master, the crfasrnn submodule): crop_layer.cpp,
                             include/caffe/util/coords.hpp and each layer's coord_map()
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

from .proto import pb
from .reference import included, op


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


@op("Add")
def _add(ctx, layer, bottoms, params):
    # add_layer.cpp Forward_cpu: bottom0 + bottom1 at each top index, an axis of size 1 read at 0
    # (end-aligned axes); a 0-axis bottom adds its one value everywhere.
    a, b = bottoms
    try:
        return [a + b]
    except ValueError:
        ctx.fail(f"shapes {a.shape} and {b.shape} do not broadcast")


@op("ResizeNearestNeighbor")
def _resize_nearest(ctx, layer, bottoms, params):
    # resize_nearest_neighbor_layer.cpp (NCHW): CalculateResizeScale in float32, then per output
    # row/column the source index of the flag in force, as its loops compute it.
    x = bottoms[0]
    f = lambda name, default: ctx.fork_param("resize_nearest_neighbor_param", name, default)  # noqa: E731
    if str(f("data_format", "NHWC")) != "NCHW":
        ctx.fail("only data_format NCHW is implemented")
    align, half, onnx_half = (str(f(k, False)).lower() in ("true", "1") for k in
                              ("align_corners", "half_pixel_centers", "half_pixel_onnx"))
    if align + half + onnx_half > 1:
        ctx.fail("at most one of align_corners, half_pixel_centers, half_pixel_onnx may be set")
    out = []
    for i, (size_f, scale_f) in enumerate((("output_height", "scale_height"), ("output_width", "scale_width"))):
        v = f(size_f, None)
        out.append(int(v) if v is not None else int(math.floor(x.shape[2 + i] * np.float32(f(scale_f, 1.0)))))
    f32 = np.float32

    def index(n_out, n_in):
        scale = f32(n_in - 1) / f32(n_out - 1) if align and n_out > 1 else f32(n_in) / f32(n_out)
        o = np.arange(n_out, dtype=f32)
        if onnx_half:
            src = np.floor((o + f32(0.5)) * scale - 0.5)   # the fork's `- 0.5` is a double
            return np.clip(src, 0, n_in - 1).astype(np.int64)
        if half:
            return np.clip(np.floor((o + f32(0.5)) * scale), 0, n_in - 1).astype(np.int64)
        if align:
            prod = (o * scale).astype(f32)
            return np.minimum(np.where(prod >= 0, np.floor(prod + f32(0.5)), np.ceil(prod - f32(0.5))),
                              n_in - 1).astype(np.int64)
        return np.minimum(np.floor((o * scale).astype(f32)), n_in - 1).astype(np.int64)

    rows, cols = index(out[0], x.shape[2]), index(out[1], x.shape[3])
    return [x[:, :, rows][:, :, :, cols]]


# --- the FCN-era forks' coordinate-map crop ---------------------------------------------------

_IDENTITY = frozenset({"ReLU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Dropout", "Exp", "Power", "Threshold",
                       "PReLU", "Log", "Concat", "Eltwise", "MVN", "Softmax", "Split", "Slice", "LRN"})


def _pair(rep, h, w, has_hw, default):
    if has_hw:
        return [h, w]
    vals = list(rep) if not isinstance(rep, int) else [rep]
    if not vals:
        return [default, default]
    return [vals[0], vals[0]] if len(vals) == 1 else vals[:2]


def _filter_map(ctx, layer):
    """The layer's coord_map() as [(scale, shift)] per (H, W): FilterMap(kernel, stride, pad) =
    (stride, (kernel - 1) / 2 - pad), inverted for Convolution and Pooling (coords.hpp)."""
    t = layer.type
    if t in _IDENTITY:
        return [(Fraction(1), Fraction(0))] * 2
    if t in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        k = _pair(p.kernel_size, p.kernel_h, p.kernel_w, p.HasField("kernel_h"), None)
        s = _pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1)
        d = _pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h"), 0)
    elif t == "Pooling" and not layer.pooling_param.global_pooling:
        p = layer.pooling_param
        k = _pair(p.kernel_size if p.HasField("kernel_size") else [], p.kernel_h, p.kernel_w, p.HasField("kernel_h"),
                  None)
        s = _pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1)
        d = _pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h"), 0)
    else:
        ctx.fail(f"the coordinate-map crop walks through layer '{layer.name}' ({t}), which has no coord_map")
    if None in k:
        ctx.fail(f"layer '{layer.name}' has no kernel size")
    fm = [(Fraction(s[i]), Fraction(k[i] - 1, 2) - d[i]) for i in range(2)]
    return fm if t == "Deconvolution" else [(1 / a, -b / a) for a, b in fm]


def coord_crop_offsets(ctx, net, index):
    """CropLayer::LayerSetUp's (crop_h, crop_w) for net.layer[index]."""
    ph, level, stages = ctx.phase_value
    first = {}          # blob -> the first layer (index) that tops it: down_map
    for i in range(index):
        lay = net.layer[i]
        if included(lay, ph, level, stages):
            for top in lay.top:
                first.setdefault(top, i)
    crop = net.layer[index]

    def walk(blob):
        while blob in first and net.layer[first[blob]].bottom:
            yield first[blob]
            blob = net.layer[first[blob]].bottom[0]

    path = {crop.bottom[0]} | {net.layer[i].bottom[0] for i in walk(crop.bottom[0])}
    inter = crop.bottom[1]
    while inter not in path:
        if inter not in first or not net.layer[first[inter]].bottom:
            ctx.fail("Cannot align apparently disconnected blobs.")
        inter = net.layer[first[inter]].bottom[0]
    maps = []
    for blob in crop.bottom[:2]:
        m = [(Fraction(1), Fraction(0))] * 2
        while blob != inter:
            i = first[blob]
            lay = net.layer[i]
            if lay.type == "Crop":
                lm = [(Fraction(1), Fraction(-c)) for c in coord_crop_offsets(ctx, net, i)]
            else:
                lm = _filter_map(ctx, lay)
            m = [(a * c, a * d + b) for (a, b), (c, d) in zip(m, lm)]
            blob = lay.bottom[0]
        maps.append(m)
    inv0 = [(1 / a, -b / a) for a, b in maps[0]]
    out = []
    for (a, b), (c, d) in zip(maps[1], inv0):
        scale, shift = a * c, a * d + b
        if scale != 1 or shift > 0 or shift.denominator != 1:
            ctx.fail(f"the coordinate maps give scale {scale} and shift {shift}; CropLayer needs 1 and a whole "
                     f"number <= 0")
        out.append(int(-shift))
    return out


def coord_crop(ctx, layer, bottoms):
    """crop_layer.cpp Forward_cpu: top (N, C, H1, W1) copied from bottom 0 at (crop_h + h, crop_w + w)."""
    x, ref = bottoms
    if x.ndim != 4 or ref.ndim != 4:
        ctx.fail("the coordinate-map crop needs 4-axis bottoms")
    ch, cw = coord_crop_offsets(ctx, ctx.net, ctx.index)
    h, w = ref.shape[2:]
    if ch + h > x.shape[2] or cw + w > x.shape[3]:
        ctx.fail(f"the crop at ({ch}, {cw}) of size {h} x {w} runs past {x.shape[2]} x {x.shape[3]}")
    return [x[:, :, ch:ch + h, cw:cw + w]]


# --- CRF-as-RNN's MultiStageMeanfield ----------------------------------------------------------
# torrvision/caffe (master) src/caffe/util/modified_permutohedral.cpp: the permutohedral lattice
# of Adams et al. 2010 as the fork builds it on x86 (the SSE init: nearest multiples of d + 1
# rounded half to even, _mm_round_ps / _mm_cvtps_epi32), then filters with it (splat with the
# barycentric weights, blur along each of the d + 1 lattice axes in order with the kernel
# (1/2, 1, 1/2), absent neighbours reading 0, slice times alpha = 1 / (1 + 2^-d)). Lattice
# vertices are told apart by their keys only, so numbering them by sorted key (np.unique)
# filters exactly as the fork's hash table order does. The geometry is computed in float32, as
# the fork's; the filtered values in float64.

_KEY_BASE, _KEY_OFF = 1 << 12, 1 << 11


class Lattice:
    def __init__(self, ctx, features: np.ndarray):
        f32 = np.float32
        feats = np.asarray(features, f32)
        n, d = feats.shape
        self.d = d
        inv_std = f32(math.sqrt(2.0 / 3.0) * (d + 1))
        scale = [f32(1.0 / math.sqrt((i + 2) * (i + 1)) * float(inv_std)) for i in range(d)]
        elevated = np.zeros((d + 1, n), f32)
        sm = np.zeros(n, f32)
        for j in range(d, 0, -1):
            cf = (feats[:, j - 1] * scale[j - 1]).astype(f32)
            elevated[j] = sm - f32(j) * cf
            sm = (sm + cf).astype(f32)
        elevated[0] = sm
        down, up = f32(1.0 / (d + 1)), f32(d + 1)
        v = np.rint(down * elevated).astype(f32)
        rem0 = (v * up).astype(f32)
        total = v.sum(axis=0, dtype=f32)
        rank = np.zeros((d + 1, n), np.int64)
        diff = (elevated - rem0).astype(f32)
        for i in range(d):
            for j in range(i + 1, d + 1):
                c = (diff[i] < diff[j]).astype(np.int64)
                rank[i] += c
                rank[j] += 1 - c
        rank = rank + total.astype(np.int64)
        add = (rank < 0) * (d + 1)
        sub = (rank >= d + 1) * (d + 1)
        rank += add - sub
        rem0 = (rem0 + (add - sub)).astype(f32)
        bary = np.zeros((n, d + 2), f32)
        rows = np.arange(n)
        for i in range(d + 1):
            w = ((elevated[i] - rem0[i]) * down).astype(f32)
            p = d - rank[i]
            np.add.at(bary, (rows, p), w)
            np.add.at(bary, (rows, p + 1), -w)
        bary[:, 0] += f32(1) + bary[:, d + 1]
        self.weights = bary[:, :d + 1]
        # canonical[r][c] = r for c <= d - r, else r - (d + 1)
        canonical = np.array([[r if c <= d - r else r - (d + 1) for c in range(d + 1)] for r in range(d + 1)])
        keys = np.stack([rem0[:d].T.astype(np.int64) + canonical[r][rank[:d].T] for r in range(d + 1)], axis=1)
        if keys.size and (keys.min() <= -_KEY_OFF or keys.max() >= _KEY_OFF or d * 12 > 62):
            ctx.fail("the lattice coordinates exceed what the reference encodes (|key| < 2048, d <= 5)")
        codes = self._code(keys)                      # (n, d + 1)
        self.vertices, inverse = np.unique(codes.ravel(), return_inverse=True)
        self.offsets = inverse.reshape(n, d + 1)
        m = len(self.vertices)
        vkeys = self._decode(self.vertices)
        self.neighbours = []
        for j in range(d + 1):
            n1, n2 = vkeys - 1, vkeys + 1
            if j < d:
                n1[:, j], n2[:, j] = vkeys[:, j] + d, vkeys[:, j] - d
            self.neighbours.append((self._find(n1), self._find(n2)))
        self.m = m

    def _code(self, keys):
        out = np.zeros(keys.shape[:-1], np.int64)
        for i in range(keys.shape[-1]):
            out = out * _KEY_BASE + (keys[..., i] + _KEY_OFF)
        return out

    def _decode(self, codes):
        keys = np.zeros((len(codes), self.d), np.int64)
        c = codes.copy()
        for i in range(self.d - 1, -1, -1):
            keys[:, i] = c % _KEY_BASE - _KEY_OFF
            c //= _KEY_BASE
        return keys

    def _find(self, keys):
        """Vertex index + 1 of each key, 0 where the lattice has no such vertex."""
        ok = (keys > -_KEY_OFF).all(axis=1) & (keys < _KEY_OFF).all(axis=1)
        codes = self._code(np.where(ok[:, None], keys, 0))
        pos = np.searchsorted(self.vertices, codes)
        pos = np.minimum(pos, len(self.vertices) - 1)
        hit = ok & (self.vertices[pos] == codes)
        return np.where(hit, pos + 1, 0)

    def filter(self, values: np.ndarray) -> np.ndarray:
        """values (C, N) -> (C, N): ModifiedPermutohedral::compute(out, in, C, reverse=false)."""
        c, n = values.shape
        w = self.weights.astype(np.float64)
        vals = np.zeros((self.m + 1, c))
        slots = self.offsets.ravel() + 1
        for k in range(c):            # splat: every point adds w x value to its d + 1 vertices
            vals[:, k] = np.bincount(slots, weights=(w * values[k][:, None]).ravel(), minlength=self.m + 1)
        for n1, n2 in self.neighbours:
            new = vals.copy()
            new[1:] = vals[1:] + 0.5 * (vals[n1] + vals[n2])
            vals = new
        alpha = 1.0 / (1.0 + 2.0 ** -self.d)
        out = np.zeros((n, c))
        for j in range(self.d + 1):
            out += (w[:, j:j + 1] * alpha) * vals[self.offsets[:, j] + 1]
        return out.T


@op("MultiStageMeanfield")
def _multi_stage_meanfield(ctx, layer, bottoms, params):
    # multi_stage_meanfield.cpp LayerSetUp / Forward_cpu and meanfield_iteration.cpp Forward_cpu.
    unary, q0, image = bottoms
    f = lambda name, default: ctx.fork_param("multi_stage_meanfield_param", name, default)  # noqa: E731
    iterations = int(f("num_iterations", 1))
    if iterations <= 1:
        ctx.fail("Number of iterations must be greater than 1.")
    f32 = np.float32
    alpha, beta, gamma = (f32(f(name, 10.0)) for name in ("theta_alpha", "theta_beta", "theta_gamma"))
    n, c, h, w = unary.shape
    px = h * w
    if len(params) != 3:
        ctx.fail("needs its three blobs (spatial weights, bilateral weights, compatibility)")
    ws, wb, compat = (np.asarray(p, np.float64).reshape(c, c) for p in params)
    p = np.arange(px)
    xs, ys = (p % w).astype(f32), (p // w).astype(f32)
    # compute_spatial_kernel: (x / theta_gamma, y / theta_gamma); the norm is 1 / (filtered 1 + 1e-20).
    spatial = Lattice(ctx, np.stack([xs / gamma, ys / gamma], axis=1))
    ones = np.ones((1, px))
    s_norm = 1.0 / (spatial.filter(ones)[0].astype(f32) + f32(1e-20))
    img = np.asarray(image, f32).reshape(n, -1)
    lattices, b_norms = [], []
    for i in range(n):
        # compute_bilateral_kernel: (x / alpha, y / alpha, the first three planes of H x W / beta).
        planes = [(img[i, k * px:(k + 1) * px] / beta).astype(f32) for k in range(3)]
        lat = Lattice(ctx, np.stack([xs / alpha, ys / alpha] + planes, axis=1))
        lattices.append(lat)
        b_norms.append(1.0 / (lat.filter(ones)[0].astype(f32) + f32(1e-20)))
    x = np.asarray(q0, np.float64)
    u = unary.reshape(n, c, px)
    for _ in range(iterations):
        z = x.reshape(n, c, px)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        prob = e / e.sum(axis=1, keepdims=True)
        out = np.empty_like(u)
        for i in range(n):
            s = spatial.filter(prob[i]) * s_norm
            b = lattices[i].filter(prob[i]) * b_norms[i]
            out[i] = u[i] - compat @ (ws @ s + wb @ b)
        x = out
    return [x.reshape(n, c, h, w)]
