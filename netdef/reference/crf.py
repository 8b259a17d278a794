"""NumPy reference of CRF-as-RNN's MultiStageMeanfield (netdef/layers/crf.py), read from
torrvision/caffe (master, the crfasrnn submodule) multi_stage_meanfield.cpp,
meanfield_iteration.cpp and src/caffe/util/modified_permutohedral.cpp."""
from __future__ import annotations

import math

import numpy as np

from .base import op

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
    f = lambda name: ctx.fork_param("multi_stage_meanfield_param", name)  # noqa: E731
    iterations = int(f("num_iterations"))
    if iterations <= 1:
        ctx.fail("Number of iterations must be greater than 1.")
    f32 = np.float32
    alpha, beta, gamma = (f32(f(name)) for name in ("theta_alpha", "theta_beta", "theta_gamma"))
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
