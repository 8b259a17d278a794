"""An independent NumPy implementation of Caffe's TEST-phase forward pass.

Written from Caffe's C++ (src/caffe/layers/*_layer.cpp), not from netdef's ONNX lowering, so
that the two can check each other: `netdef verify` runs both and reports the first layer whose
outputs disagree. Values are computed in float64 and stored as float32 after every layer, as
Caffe stores its blobs.

    blobs = forward(net_param, weights, {"data": x})        # blob name -> array (final values)
    for step in trace(net_param, weights, inputs): ...      # one Step per layer, in order

The loops run over kernel offsets, never over output pixels, which keeps the zoo nets' forward
passes to seconds.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from . import forks
from .proto import pb

FLT_MAX = float(np.finfo(np.float32).max)

_OPS: dict[str, object] = {}

# Layers that compute nothing at inference time; a deploy graph drops them.
TRAINING_ONLY = frozenset({
    "Accuracy", "ContrastiveLoss", "EuclideanLoss", "HingeLoss", "InfogainLoss",
    "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss", "SoftmaxWithLoss", "Silence",
    "HDF5Output",
    # Training-only layers of forks: SphereFace's MarginInnerProduct (its output depends on the
    # labels and the iteration), center loss, DeepLab's SegAccuracy and MatWrite.
    "MarginInnerProduct", "CenterLoss", "SegAccuracy", "MatWrite",
})
DATA_LAYERS = frozenset({
    "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData", "AnnotatedData",
    "VideoData", "DenseImageData", "Python", "ImageLabelmapData", "ImageSegData",
})


class ReferenceError(Exception):
    """A layer the reference cannot compute (unknown type, or parameters Caffe would reject)."""

    def __init__(self, layer: str, type_: str, why: str):
        super().__init__(f"layer '{layer}' ({type_}): {why}")
        self.layer, self.type, self.why = layer, type_, why


def op(*types):
    def register(fn):
        for t in types:
            if t in _OPS:
                raise ValueError(f"reference op {t} registered twice")
            _OPS[t] = fn
        return fn
    return register


def supported_types() -> frozenset[str]:
    return frozenset(_OPS)


@dataclass
class Step:
    """One layer's forward: its name, type, top names and the values it wrote."""
    layer: str
    type: str
    bottoms: list[str]
    tops: list[str]
    values: list[np.ndarray]


class _Ctx:
    def __init__(self, layer: pb.LayerParameter, phase: int, extra: dict | None = None, loc=None):
        self.layer = layer
        self.phase = phase
        self.extra = extra or {}      # fields the schema lacks (fork layers' parameters)
        self.loc = loc                # the layer's Loc: fork fields inside known messages

    def fork_param(self, message: str, name: str, default):
        """The last value given for `message { name: ... }`, a fork field, else `default`."""
        blocks = self.extra.get(message) or []
        for block in reversed(blocks):
            if isinstance(block, dict) and name in block:
                v = block[name]
                return v[-1] if isinstance(v, list) and v and not isinstance(default, list) else v
        return default

    def fail(self, why: str):
        raise ReferenceError(self.layer.name, self.layer.type, why)

    def sub_field(self, message: str, name: str, default):
        """A fork field inside a BVLC parameter block (C3D's kernel_depth in convolution_param)."""
        sub = self.loc.msg(message) if getattr(self, "loc", None) is not None else None
        vals = sub.extra.get(name) if sub is not None else None
        return vals[-1] if vals else default


# --- which layers run (Net::FilterNet / StateMeetsRule) ---------------------------------------

def _meets(rule: pb.NetStateRule, phase: int, level: int, stages) -> bool:
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def included(layer: pb.LayerParameter, phase: int, level: int = 0, stages=()) -> bool:
    keep = len(layer.include) == 0
    for rule in layer.exclude:
        if keep and _meets(rule, phase, level, stages):
            keep = False
    for rule in layer.include:
        if not keep and _meets(rule, phase, level, stages):
            keep = True
    return keep


# --- the net ---------------------------------------------------------------------------------

def _phase_value(phase) -> int:
    if isinstance(phase, str):
        return pb.Phase.Value(phase.upper())
    return int(phase)


def trace(net: pb.NetParameter, weights: dict[str, list[np.ndarray]], inputs: dict[str, np.ndarray],
          phase="TEST", level: int = 0, stages=(), loc=None):
    """Yields a Step per layer that runs, in order. `weights` maps layer names to their blobs;
    `inputs` must hold every Input/`input:` blob and the tops of any data layer; `loc` (the
    parse's Loc tree) supplies fork layers' parameters, which the schema does not hold."""
    ph = _phase_value(phase)
    blobs: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    for name in net.input:
        if name not in blobs:
            raise ReferenceError(name, "input", f"no value given for net input '{name}'")
    layer_locs = (loc.fields.get("layer") or []) if loc is not None else []
    for index, layer in enumerate(net.layer):
        if not included(layer, ph, level, stages):
            continue
        t = layer.type
        if t in TRAINING_ONLY:
            continue
        if t == "Input" or t in DATA_LAYERS:
            missing = [top for top in layer.top if top not in blobs]
            if missing:
                raise ReferenceError(layer.name, t, f"no value given for its top '{missing[0]}'")
            yield Step(layer.name, t, [], list(layer.top), [blobs[top] for top in layer.top])
            continue
        fn = _OPS.get(t)
        if fn is None:
            raise ReferenceError(layer.name, t, "the reference has no implementation of this layer type")
        bottoms = []
        for b in layer.bottom:
            if b not in blobs:
                raise ReferenceError(layer.name, t, f"bottom '{b}' is not produced by any earlier layer")
            bottoms.append(blobs[b].astype(np.float64))
        params = [np.asarray(w, dtype=np.float64) for w in weights.get(layer.name, [])]
        layer_loc = layer_locs[index] if index < len(layer_locs) else None
        ctx = _Ctx(layer, ph, getattr(layer_loc, "extra", None), layer_loc)
        ctx.loc = layer_loc
        ctx.net, ctx.index, ctx.phase_value = net, index, (ph, level, tuple(stages))
        with np.errstate(all="ignore"):
            try:
                outs = fn(ctx, layer, bottoms, params)
            except MemoryError as e:
                # numpy says what it could not allocate ("Unable to allocate 3.1 GiB for an array
                # with shape ..."): the layer and that size, instead of a bare "out of memory".
                ctx.fail(f"out of memory in the NumPy reference: {e or 'the size needed is not known'}"
                         f" (its bottoms hold {sum(b.nbytes for b in bottoms) / 2**20:.1f} MiB as float64)")
            if len(outs) != len(layer.top):
                ctx.fail(f"computes {len(outs)} output(s) but has {len(layer.top)} top(s)")
            # Past float32's range is Inf, as in Caffe's float blobs: not worth a RuntimeWarning.
            outs = [np.asarray(o, dtype=np.float32) for o in outs]
        for top, value in zip(layer.top, outs):
            blobs[top] = value
        yield Step(layer.name, t, list(layer.bottom), list(layer.top), outs)


def forward(net, weights, inputs, phase="TEST", level: int = 0, stages=(), loc=None) -> dict[str, np.ndarray]:
    """Every blob's final value after one forward pass (in-place chains overwrite)."""
    blobs = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    for step in trace(net, weights, inputs, phase, level, stages, loc):
        for top, value in zip(step.tops, step.values):
            blobs[top] = value
    return blobs


# --- helpers ---------------------------------------------------------------------------------

def _axis(ctx, axis: int, ndim: int, allow_end: bool = False) -> int:
    """Blob::CanonicalAxisIndex."""
    hi = ndim + 1 if allow_end else ndim
    if not -ndim <= axis < hi:
        ctx.fail(f"axis {axis} is out of range for a blob with {ndim} axes")
    return axis + ndim if axis < 0 else axis


def _count(shape, start=0, end=None) -> int:
    return int(math.prod(shape[start:end]))


def _bcast(blob: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """Shape a per-axis parameter (Scale, Bias, PReLU) to broadcast from `axis`."""
    return blob.reshape((1,) * axis + blob.shape + (1,) * (ndim - axis - blob.ndim))


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


def _pads_tlbr(ctx, message: str):
    """Synopsys' pad_t/pad_l/pad_b/pad_r (foss-for-synopsys-dwc-arc-processors/synopsys-caffe
    caffe.proto; used by base_conv_layer.cpp, util/im2col.cpp and pooling_layer.cpp when any is
    non-zero): ([top, left], [bottom, right]), or None."""
    vals = [ctx.sub_field(message, name, 0) for name in ("pad_t", "pad_l", "pad_b", "pad_r")]
    if not any(vals):
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in vals):
        ctx.fail(f"pad_t/pad_l/pad_b/pad_r must be non-negative integers, got {vals}")
    return [vals[0], vals[1]], [vals[2], vals[3]]


# --- vision layers ---------------------------------------------------------------------------

@op("Convolution")
def _convolution(ctx, layer, bottoms, params):
    p = layer.convolution_param
    outs = []
    for x in bottoms:
        ax = _axis(ctx, p.axis, x.ndim)
        nsp = x.ndim - ax - 1
        kernel, stride, pad, dil = _spatial(ctx, p, nsp)
        pad_end = list(pad)
        asym = _pads_tlbr(ctx, "convolution_param")
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
        outsz = [(xs.shape[2 + i] + pad[i] + pad_end[i] - (dil[i] * (kernel[i] - 1) + 1)) // stride[i] + 1
                 for i in range(nsp)]
        if min(outsz) <= 0:
            ctx.fail(f"the output would be empty ({outsz})")
        xp = np.pad(xs, [(0, 0), (0, 0)] + [(q, e) for q, e in zip(pad, pad_end)]) if any(pad + pad_end) else xs
        n, cg, og = xs.shape[0], cin // g, cout // g
        # im2col as a strided view, copied once into (N * out, C/group * kernel) rows.
        win = np.lib.stride_tricks.sliding_window_view(
            xp, [d * (k - 1) + 1 for d, k in zip(dil, kernel)], axis=tuple(range(2, 2 + nsp)))
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
        ax = _axis(ctx, p.axis, x.ndim)
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


def pool2d(x: np.ndarray, method: int, kernel, stride, pad, round_mode: int = pb.PoolingParameter.CEIL,
           pad_end=None):
    """PoolingLayer on (N, C, H, W): Caffe's output size (rounded up, then clipped so the last
    window starts inside the image or its leading padding), MAX ignoring padding, AVE dividing
    by the window clipped to the padded image (padding counts, the round-up overhang does not)."""
    # Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe pooling_layer.cpp):
    # pad_end gives pad_b/pad_r apart from pad_t/pad_l; with any of them, both axes are clipped;
    # method 3 is AVE_EXC_PAD, whose divisor counts the window's input cells only.
    asym = pad_end is not None
    pad_end = list(pad) if pad_end is None else pad_end
    n, c, h, w = x.shape
    size = []
    for i, dim in enumerate((h, w)):
        span = dim + pad[i] + pad_end[i] - kernel[i]
        o = (math.ceil(span / stride[i]) if round_mode == pb.PoolingParameter.CEIL else math.floor(span / stride[i])) + 1
        if (any(pad + pad_end) if asym else pad[i]) and (o - 1) * stride[i] >= dim + pad[i]:
            o -= 1
        size.append(o)
    oh, ow = size
    # Window starts in input coordinates; the padded frame is shifted by `pad`.
    need_h = max((oh - 1) * stride[0] + kernel[0], pad[0] + h)
    need_w = max((ow - 1) * stride[1] + kernel[1], pad[1] + w)
    is_max = method == pb.PoolingParameter.MAX
    fill = -FLT_MAX if is_max else 0.0
    frame = np.full((n, c, need_h, need_w), fill)
    frame[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    out = np.full((n, c, oh, ow), -FLT_MAX) if is_max else np.zeros((n, c, oh, ow))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            win = frame[:, :, i:i + (oh - 1) * stride[0] + 1:stride[0], j:j + (ow - 1) * stride[1] + 1:stride[1]]
            if is_max:
                np.maximum(out, win, out=out)
            else:
                out += win
    if not is_max:
        def extent(o, k, s, p, e, dim):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, dim + e)
            if method == 3:
                return np.minimum(end, dim) - np.maximum(start, 0)
            return end - start
        area = np.outer(extent(oh, kernel[0], stride[0], pad[0], pad_end[0], h),
                        extent(ow, kernel[1], stride[1], pad[1], pad_end[1], w))
        out = out / area
    return out


@op("Pooling")
def _pooling(ctx, layer, bottoms, params):
    p = layer.pooling_param
    x = bottoms[0]
    if x.ndim != 4:
        ctx.fail(f"pooling needs a 4-axis input, got {x.ndim} axes")
    if p.global_pooling:
        kernel, stride, pad = [x.shape[2], x.shape[3]], [1, 1], [0, 0]
    else:
        if p.HasField("kernel_h") or p.HasField("kernel_w"):
            kernel = [p.kernel_h, p.kernel_w]
        elif p.HasField("kernel_size"):
            kernel = [p.kernel_size] * 2
        else:
            ctx.fail("kernel_size is required")
        pad = [p.pad_h, p.pad_w] if (p.HasField("pad_h") or p.HasField("pad_w")) else [p.pad] * 2
        stride = [p.stride_h, p.stride_w] if (p.HasField("stride_h") or p.HasField("stride_w")) else [p.stride] * 2
    if p.pool == pb.PoolingParameter.STOCHASTIC:
        ctx.fail("STOCHASTIC pooling has no CPU forward in Caffe (NOT_IMPLEMENTED)")
    if min(kernel) <= 0 or min(stride) <= 0:
        ctx.fail("kernel and stride must be positive")
    pad_end = None
    asym = _pads_tlbr(ctx, "pooling_param")
    if asym is not None:
        if p.global_pooling:
            ctx.fail("global pooling allows no padding")
        pad, pad_end = asym
    method = 3 if ctx.sub_field("pooling_param", "pool", None) in ("AVE_EXC_PAD", "AVE_TF") else p.pool
    # The fork's `ceil_mode` (false: round down) overrides BVLC's round_mode (netdef/forks.py).
    fork_ceil = forks.ceil_mode(ctx.loc)
    round_mode = p.round_mode if fork_ceil is None else (pb.PoolingParameter.CEIL if fork_ceil
                                                         else pb.PoolingParameter.FLOOR)
    y = pool2d(x, method, kernel, stride, pad, round_mode, pad_end)
    outs = [y]
    if len(layer.top) > 1:
        if pad_end is not None:
            ctx.fail("the mask top of a pooling with pad_t/pad_l/pad_b/pad_r is not supported")
        if p.pool != pb.PoolingParameter.MAX:
            ctx.fail("only MAX pooling has a mask top")
        outs.append(max_pool_mask(x, kernel, stride, pad, y.shape[2:]))
    return outs


@op("SPP")
def _spp(ctx, layer, bottoms, params):
    p = layer.spp_param
    x = bottoms[0]
    h, w = x.shape[2], x.shape[3]
    if p.pool == pb.SPPParameter.STOCHASTIC:
        ctx.fail("STOCHASTIC pooling has no CPU forward in Caffe")
    method = pb.PoolingParameter.MAX if p.pool == pb.SPPParameter.MAX else pb.PoolingParameter.AVE
    levels = []
    for level in range(max(p.pyramid_height, 1)):
        bins = 2 ** level
        kh, kw = math.ceil(h / bins), math.ceil(w / bins)
        ph, pw = (kh * bins - h + 1) // 2, (kw * bins - w + 1) // 2
        if ph >= kh or pw >= kw:
            ctx.fail(f"pyramid level {level} needs padding {ph}x{pw} no smaller than its {kh}x{kw} window")
        levels.append(pool2d(x, method, [kh, kw], [kh, kw], [ph, pw]))
    if p.pyramid_height == 1:
        return [levels[0]]     # a single level is the pooling layer itself: 4 axes, no flatten
    return [np.concatenate([lv.reshape(lv.shape[0], -1) for lv in levels], axis=1)]


@op("LRN")
def _lrn(ctx, layer, bottoms, params):
    p = layer.lrn_param
    x = bottoms[0]
    size = p.local_size
    if size % 2 == 0:
        ctx.fail("local_size must be odd")
    pre = (size - 1) // 2
    if p.norm_region == pb.LRNParameter.ACROSS_CHANNELS:
        sq = np.pad(x * x, [(0, 0), (pre, size - 1 - pre), (0, 0), (0, 0)])
        s = sum(sq[:, i:i + x.shape[1]] for i in range(size))
        return [x * (p.k + p.alpha / size * s) ** -p.beta]
    # WITHIN_CHANNEL: Caffe composes square -> AVE pool (pad pre, stride 1) -> Power with
    # shift 1 and scale alpha: `k` is not used here.
    avg = pool2d(x * x, pb.PoolingParameter.AVE, [size, size], [1, 1], [pre, pre])
    return [x * (1.0 + p.alpha * avg) ** -p.beta]


@op("InnerProduct")
def _inner_product(ctx, layer, bottoms, params):
    p = layer.inner_product_param
    x = bottoms[0]
    ax = _axis(ctx, p.axis, x.ndim)
    k = _count(x.shape, ax)
    m = x.reshape(_count(x.shape, 0, ax), k)
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


# --- neurons ---------------------------------------------------------------------------------

@op("ReLU")
def _relu(ctx, layer, bottoms, params):
    x, a = bottoms[0], layer.relu_param.negative_slope
    y = np.maximum(x, 0) + a * np.minimum(x, 0)
    # Synopsys' relu6 (foss-for-synopsys-dwc-arc-processors/synopsys-caffe relu_layer.cpp): then min(y, 6).
    if ctx.sub_field("relu_param", "relu6", False):
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
        a = _bcast(slope.reshape(-1), x.ndim, 1)
    return [np.maximum(x, 0) + a * np.minimum(x, 0)]


@op("Dropout")
def _dropout(ctx, layer, bottoms, params):
    # Caffe scales at training time (inverted dropout), so TEST is the identity.
    if ctx.phase == pb.TRAIN:
        ctx.fail("dropout in the TRAIN phase is random; the reference computes TEST")
    return [bottoms[0]]


# --- normalisation ---------------------------------------------------------------------------

@op("BatchNorm")
def _batchnorm(ctx, layer, bottoms, params):
    p = layer.batch_norm_param
    x = bottoms[0]
    use_global = p.use_global_stats if p.HasField("use_global_stats") else ctx.phase == pb.TEST
    c = x.shape[1] if x.ndim > 1 else 1
    if use_global:
        # Stored statistics are sums scaled by blob 2; a factor of 0 means 0, not 1/0.
        factor = params[2].reshape(-1)[0]
        k = 0.0 if factor == 0 else 1.0 / factor
        mean, var = params[0] * k, params[1] * k
    else:
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean = x.mean(axis=axes)
        var = ((x - _bcast(mean, x.ndim, 1)) ** 2).mean(axis=axes)
    mean, var = mean.reshape(c), var.reshape(c)
    # Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe batch_norm_layer.cpp):
    # add_eps_before_sqrt: false divides by sqrt(var) + eps instead of sqrt(var + eps).
    if ctx.sub_field("batch_norm_param", "add_eps_before_sqrt", True):
        den = np.sqrt(_bcast(var, x.ndim, 1) + p.eps)
    else:
        den = np.sqrt(_bcast(var, x.ndim, 1)) + p.eps
    return [(x - _bcast(mean, x.ndim, 1)) / den]


def _scale_shape(ctx, x, axis_param, num_axes, what):
    ax = _axis(ctx, axis_param, x.ndim, allow_end=True)
    if num_axes < -1:
        ctx.fail(f"num_axes must be -1 or non-negative, got {num_axes}")
    end = x.ndim if num_axes == -1 else ax + num_axes
    if end > x.ndim:
        ctx.fail(f"{what} axis {ax} with num_axes {num_axes} runs past the input's {x.ndim} axes")
    return ax, x.shape[ax:end]


@op("Scale")
def _scale(ctx, layer, bottoms, params):
    p = layer.scale_param
    x = bottoms[0]
    rest = list(params)
    if len(bottoms) > 1:
        s = bottoms[1]
        # The second bottom's own shape decides; a scalar applies everywhere.
        ax = _axis(ctx, p.axis, x.ndim, allow_end=True) if s.ndim else 0
        if x.shape[ax:ax + s.ndim] != s.shape:
            ctx.fail(f"scale bottom shape {s.shape} does not match input shape {x.shape} from axis {ax}")
    else:
        ax, shape = _scale_shape(ctx, x, p.axis, p.num_axes, "scale")
        s = rest.pop(0).reshape(shape)
        ax = ax if s.ndim else 0
    y = x * _bcast(s, x.ndim, ax)
    if p.bias_term:
        y = y + _bcast(rest[0].reshape(s.shape), x.ndim, ax)
    return [y]


@op("Bias")
def _bias(ctx, layer, bottoms, params):
    p = layer.bias_param
    x = bottoms[0]
    if len(bottoms) > 1:
        b = bottoms[1]
        ax = _axis(ctx, p.axis, x.ndim, allow_end=True) if b.ndim else 0
    else:
        ax, shape = _scale_shape(ctx, x, p.axis, p.num_axes, "bias")
        b = params[0].reshape(shape)
        ax = ax if b.ndim else 0
    return [x + _bcast(b, x.ndim, ax)]


@op("MVN")
def _mvn(ctx, layer, bottoms, params):
    p = layer.mvn_param
    x = bottoms[0]
    n = x.shape[0] if p.across_channels else x.shape[0] * (x.shape[1] if x.ndim > 1 else 1)
    m = x.reshape(n, -1)
    m = m - m.mean(axis=1, keepdims=True)
    if p.normalize_variance:
        # eps is added to the standard deviation, not the variance.
        m = m / (np.sqrt((m * m).mean(axis=1, keepdims=True)) + p.eps)
    return [m.reshape(x.shape)]


@op("Softmax")
def _softmax(ctx, layer, bottoms, params):
    x = bottoms[0]
    ax = _axis(ctx, layer.softmax_param.axis, x.ndim)
    e = np.exp(x - x.max(axis=ax, keepdims=True))
    return [e / e.sum(axis=ax, keepdims=True)]


# --- merging and splitting -------------------------------------------------------------------

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
    ax = _axis(ctx, axis, bottoms[0].ndim)
    return [np.concatenate(bottoms, axis=ax)]


@op("Slice")
def _slice(ctx, layer, bottoms, params):
    p = layer.slice_param
    x = bottoms[0]
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    ax = _axis(ctx, axis, x.ndim)
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
    if forks.v1_written(ctx.loc):   # V1 CROP: the FCN-era forks' coordinate-map crop
        from .reference_segvideo import coord_crop
        return coord_crop(ctx, layer, bottoms)
    p = layer.crop_param
    x, ref = bottoms
    start = _axis(ctx, p.axis, x.ndim)
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


@op("Tile")
def _tile(ctx, layer, bottoms, params):
    p = layer.tile_param
    x = bottoms[0]
    ax = _axis(ctx, p.axis, x.ndim)
    reps = [1] * x.ndim
    reps[ax] = p.tiles
    return [np.tile(x, reps)]


# --- shapes ----------------------------------------------------------------------------------

@op("Flatten")
def _flatten(ctx, layer, bottoms, params):
    p = layer.flatten_param
    x = bottoms[0]
    a = _axis(ctx, p.axis, x.ndim)
    e = _axis(ctx, p.end_axis, x.ndim)
    return [x.reshape(x.shape[:a] + (_count(x.shape, a, e + 1),) + x.shape[e + 1:])]


@op("Reshape")
def _reshape(ctx, layer, bottoms, params):
    p = layer.reshape_param
    x = bottoms[0]
    start = p.axis if p.axis >= 0 else x.ndim + p.axis + 1
    if not 0 <= start <= x.ndim:
        ctx.fail(f"axis {p.axis} is out of range")
    end = x.ndim if p.num_axes == -1 else start + p.num_axes
    if end > x.ndim:
        ctx.fail("axis + num_axes runs past the input's axes")
    dims = list(p.shape.dim)
    new = []
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= x.ndim:
                ctx.fail(f"dim {i} is 0 (copy) but the input has no axis {start + i}")
            new.append(x.shape[start + i])
        else:
            new.append(int(d))
    shape = list(x.shape[:start]) + new + list(x.shape[end:])
    if new.count(-1) > 1:
        ctx.fail("more than one dimension is -1")
    if -1 in new:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or x.size % known:
            ctx.fail(f"cannot infer -1: {x.size} values do not divide by {known}")
        shape[shape.index(-1)] = x.size // known
    if math.prod(shape) != x.size:
        ctx.fail(f"shape {shape} does not hold the input's {x.size} values")
    return [x.reshape(shape)]


@op("ArgMax")
def _argmax(ctx, layer, bottoms, params):
    p = layer.argmax_param
    x = bottoms[0]
    k = p.top_k
    if p.HasField("axis"):
        ax = _axis(ctx, p.axis, x.ndim)
        moved = np.moveaxis(x, ax, -1)
    else:
        moved = x.reshape(x.shape[0], -1)
    dim = moved.shape[-1]
    if not 1 <= k <= dim:
        ctx.fail(f"top_k {k} must be between 1 and {dim}")
    # std::partial_sort with std::greater on (value, index): ties go to the larger index.
    # Sort on the float32 values Caffe sees.
    vals = moved.astype(np.float32)
    idx = np.arange(dim)
    order = np.lexsort((-np.broadcast_to(idx, vals.shape), -vals), axis=-1)[..., :k]
    top_vals = np.take_along_axis(moved, order, axis=-1)
    if p.HasField("axis"):
        res = top_vals if p.out_max_val else order.astype(np.float64)
        return [np.moveaxis(res, -1, ax)]
    n = x.shape[0]
    shape = [n, 2 if p.out_max_val else 1, k] + [1] * max(0, x.ndim - 3)
    if p.out_max_val:
        out = np.stack([order.astype(np.float64), top_vals], axis=1)
    else:
        out = order.astype(np.float64)[:, None, :]
    return [out.reshape(shape)]


@op("Reduction")
def _reduction(ctx, layer, bottoms, params):
    p = layer.reduction_param
    x = bottoms[0]
    ax = _axis(ctx, p.axis, x.ndim)
    m = x.reshape(x.shape[:ax] + (-1,))
    R = pb.ReductionParameter
    if p.operation == R.SUM:
        y = m.sum(axis=-1)
    elif p.operation == R.ASUM:
        y = np.abs(m).sum(axis=-1)
    elif p.operation == R.SUMSQ:
        y = (m * m).sum(axis=-1)
    else:
        y = m.mean(axis=-1)
    return [y * p.coeff]


# --- recurrent -------------------------------------------------------------------------------

def _logistic(x):
    # LSTMUnit's sigmoid: 1 / (1 + exp(-x)).
    return 1.0 / (1.0 + np.exp(-x))


@op("LSTM", "RNN")
def _recurrent(ctx, layer, bottoms, params):
    """RecurrentLayer's unrolled net (lstm_layer.cpp / rnn_layer.cpp FillUnrolledNet) run step
    by step: x (T, N, ...), cont (T, N), [x_static (N, ...)], [h_0 (, c_0) with expose_hidden]."""
    rp = layer.recurrent_param
    lstm = layer.type == "LSTM"
    h_dim = rp.num_output
    x, cont = bottoms[0], bottoms[1]
    t_steps, n = x.shape[0], x.shape[1]
    n_states = 2 if lstm else 1
    fixed = len(bottoms) - (n_states if rp.expose_hidden else 0)
    static = bottoms[2] if fixed == 3 else None
    w_x, b_x = params[0], params[1]
    k = 2
    w_s = None
    if static is not None:
        w_s = params[2]
        k = 3
    w_h = params[k]
    x_t = x.reshape(t_steps, n, -1) @ w_x.T + b_x                      # W_xc_x = W_xc x + b_c
    s_t = static.reshape(n, -1) @ w_s.T if static is not None else 0.0
    if rp.expose_hidden:
        h = bottoms[fixed].reshape(n, h_dim)
        c = bottoms[fixed + 1].reshape(n, h_dim) if lstm else None
    else:
        h = np.zeros((n, h_dim))
        c = np.zeros((n, h_dim)) if lstm else None
    outs = []
    for t in range(t_steps):
        cont_t = cont[t].reshape(n, 1)
        gate = (h * cont_t) @ w_h.T + x_t[t] + s_t                      # h_conted, W_hc h, sums
        if lstm:
            i = _logistic(gate[:, :h_dim])
            f = np.where(cont_t == 0, 0.0, cont_t * _logistic(gate[:, h_dim:2 * h_dim]))   # LSTMUnit
            o = _logistic(gate[:, 2 * h_dim:3 * h_dim])
            g = np.tanh(gate[:, 3 * h_dim:])
            c = f * c + i * g
            h = o * np.tanh(c)
            outs.append(h)
        else:
            h = np.tanh(gate)
            outs.append(np.tanh(h @ params[k + 1].T + params[k + 2]))       # o_t = tanh(W_ho h_t + b_o)
    tops = [np.stack(outs)]
    if rp.expose_hidden:
        tops.append(h.reshape(1, n, h_dim))
        if lstm:
            tops.append(c.reshape(1, n, h_dim))
    return tops


# --- layers of Caffe forks (parameters from the definition's fork fields) --------------------

@op("ReLU6")
def _relu6(ctx, layer, bottoms, params):
    return [np.minimum(np.maximum(bottoms[0], 0.0), 6.0)]


@op("Permute")
def _permute(ctx, layer, bottoms, params):
    # SSD's PermuteLayer: the listed axes first, then the others in their order.
    x = bottoms[0]
    order = [int(o) for o in ctx.fork_param("permute_param", "order", [])]
    order += [i for i in range(x.ndim) if i not in order]
    return [np.transpose(x, order)]


@op("Normalize")
def _normalize(ctx, layer, bottoms, params):
    # SSD's NormalizeLayer: x / sqrt(sum of squares + eps), the sum over C*H*W per sample
    # (across_spatial) or over C per position, then times the learnt scale.
    x = bottoms[0]
    across = bool(ctx.fork_param("norm_param", "across_spatial", True))
    shared = bool(ctx.fork_param("norm_param", "channel_shared", True))
    eps = float(ctx.fork_param("norm_param", "eps", 1e-10))
    axes = tuple(range(1, x.ndim)) if across else (1,)
    norm = np.sqrt((x * x).sum(axis=axes, keepdims=True) + eps)
    scale = params[0].reshape(-1)
    s = scale[0] if shared else _bcast(scale, x.ndim, 1)
    return [x / norm * s]


@op("ShuffleChannel")
def _shuffle_channel(ctx, layer, bottoms, params):
    x = bottoms[0]
    group = int(ctx.fork_param("shuffle_channel_param", "group", 1))
    n, c = x.shape[:2]
    return [x.reshape(n, group, c // group, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)]


@op("ROIPooling")
def _roi_pooling(ctx, layer, bottoms, params):
    # Fast R-CNN's ROIPoolingLayer::Forward_cpu.
    x, rois = bottoms
    ph = int(ctx.fork_param("roi_pooling_param", "pooled_h", 0))
    pw = int(ctx.fork_param("roi_pooling_param", "pooled_w", 0))
    scale = np.float32(ctx.fork_param("roi_pooling_param", "spatial_scale", 1.0))
    n, c, h, w = x.shape
    rois = rois.reshape(rois.shape[0], -1)
    out = np.zeros((rois.shape[0], c, ph, pw))

    def c_round(v):      # C's round(): halves away from zero
        return int(np.sign(v) * np.floor(abs(v) + 0.5))

    for r, roi in enumerate(rois.astype(np.float32)):
        b = int(roi[0])
        if not 0 <= b < n:
            ctx.fail(f"region {r} names batch item {b}, outside 0..{n - 1}")
        x1, y1, x2, y2 = (c_round(float(v * scale)) for v in roi[1:5])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = np.float32(rh) / np.float32(ph), np.float32(rw) / np.float32(pw)
        for i in range(ph):
            hs = min(max(int(np.floor(np.float32(i) * bh)) + y1, 0), h)
            he = min(max(int(np.ceil(np.float32(i + 1) * bh)) + y1, 0), h)
            for j in range(pw):
                ws = min(max(int(np.floor(np.float32(j) * bw)) + x1, 0), w)
                we = min(max(int(np.ceil(np.float32(j + 1) * bw)) + x1, 0), w)
                if he > hs and we > ws:
                    out[r, :, i, j] = x[b, :, hs:he, ws:we].max(axis=(1, 2))
    return [out]


@op("Interp")
def _interp(ctx, layer, bottoms, params):
    # PSPNet's InterpLayer: crop by pad_beg/pad_end (<= 0), then caffe_cpu_interp2, which
    # samples input (in - 1) / (out - 1) * o (corners to corners) bilinearly.
    x = bottoms[0]
    beg = int(ctx.fork_param("interp_param", "pad_beg", 0))
    end = int(ctx.fork_param("interp_param", "pad_end", 0))
    if beg > 0 or end > 0:
        ctx.fail("pad_beg/pad_end must be <= 0")
    x = x[:, :, -beg:x.shape[2] + end, -beg:x.shape[3] + end]
    eff = list(x.shape[2:])
    zoom = ctx.fork_param("interp_param", "zoom_factor", None)
    shrink = ctx.fork_param("interp_param", "shrink_factor", None)
    height = ctx.fork_param("interp_param", "height", None)
    width = ctx.fork_param("interp_param", "width", None)
    if shrink is not None and zoom is None:
        out = [(e - 1) // int(shrink) + 1 for e in eff]
    elif zoom is not None and shrink is None:
        out = [e + (e - 1) * (int(zoom) - 1) for e in eff]
    elif height is not None and width is not None:
        out = [int(height), int(width)]
    elif zoom is not None and shrink is not None:
        out = [(e - 1) // int(shrink) + 1 for e in eff]
        out = [o + (o - 1) * (int(zoom) - 1) for o in out]
    elif len(bottoms) > 1:
        out = list(bottoms[1].shape[2:4])
    else:
        ctx.fail("no output size")

    def axis(n_in, n_out):
        r = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        pos = r * np.arange(n_out)
        i0 = pos.astype(np.int64)
        step = (i0 < n_in - 1).astype(np.int64)
        lam = pos - i0
        return i0, i0 + step, lam

    h0, h1, lh = axis(eff[0], out[0])
    w0, w1, lw = axis(eff[1], out[1])
    top = x[:, :, h0][:, :, :, w0] * (1 - lw) + x[:, :, h0][:, :, :, w1] * lw
    bot = x[:, :, h1][:, :, :, w0] * (1 - lw) + x[:, :, h1][:, :, :, w1] * lw
    return [top * (1 - lh)[:, None] + bot * lh[:, None]]


@op("ResizeBilinear")
def _resize_bilinear(ctx, layer, bottoms, params):
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe resize_bilinear_layer.cpp (NCHW):
    # CalculateResizeScale, compute_interpolation_weights (lower = max(floor(in), 0), upper =
    # min(ceil(in), in_size - 1), lerp = in - floor(in)) and compute_lerp.
    x = bottoms[0]
    f = lambda name, default: ctx.fork_param("resize_bilinear_param", name, default)  # noqa: E731
    if str(f("data_format", "NHWC")) != "NCHW":
        ctx.fail("only data_format NCHW is implemented")
    align, half, torch = bool(f("align_corners", False)), bool(f("half_pixel_centers", False)), \
        bool(f("pytorch_half_pixel", False))
    out = []
    for i, (size_f, scale_f) in enumerate((("output_height", "scale_height"), ("output_width", "scale_width"))):
        v = f(size_f, None)
        out.append(int(v) if v is not None else int(math.floor(x.shape[2 + i] * float(f(scale_f, 1.0)))))

    def weights(n_out, n_in):
        scale = (n_in - 1) / (n_out - 1) if align and n_out > 1 else n_in / n_out
        i = np.arange(n_out, dtype=np.float64)
        if align:
            pos = i * scale
        elif torch:
            pos = (i + 0.5) * scale - 0.5 if n_out > 1 else np.full(n_out, -0.5)
        elif half:
            pos = (i + 0.5) * scale - 0.5
        else:
            pos = i * scale
        fl = np.floor(pos)
        lower = np.maximum(fl, 0).astype(np.int64)
        upper = np.minimum(np.ceil(pos), n_in - 1).astype(np.int64)
        return lower, upper, pos - fl

    y0, y1, ly = weights(out[0], x.shape[2])
    x0, x1, lx = weights(out[1], x.shape[3])
    tl, tr = x[:, :, y0][:, :, :, x0], x[:, :, y0][:, :, :, x1]
    bl, br = x[:, :, y1][:, :, :, x0], x[:, :, y1][:, :, :, x1]
    top = tl + (tr - tl) * lx
    bot = bl + (br - bl) * lx
    return [top + (bot - top) * ly[:, None]]


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
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    wt = params[0].reshape(c, kh, kw)
    xp = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    y = np.zeros((n, c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            y += win * wt[:, i, j].reshape(1, c, 1, 1)
    if p.bias_term:
        y += params[1].reshape(1, c, 1, 1)
    return [y]


@op("UpsampleDarknet")
def _upsample_darknet(ctx, layer, bottoms, params):
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe upsample_darknet_layer.cpp Forward_cpu:
    # top (h, w) = bottom (h / stride, w / stride), the top stride times the bottom's size.
    s = int(ctx.fork_param("upsample_darknet_param", "stride", 1))
    if s < 1:
        ctx.fail(f"stride must be positive, got {s}")
    x = bottoms[0]
    return [x.repeat(s, axis=-2).repeat(s, axis=-1)]


@op("Upsample")
def _upsample(ctx, layer, bottoms, params):
    # SegNet's UpsampleLayer::Forward_cpu: a zero top; each bottom value goes to the index its
    # mask holds within the channel's plane (in order, so a repeated index keeps the last).
    # With one bottom (YOLOv3 ports): top (h, w) = bottom (h / scale, w / scale).
    x = bottoms[0]
    n, c, h, w = x.shape
    uh = ctx.fork_param("upsample_param", "upsample_h", None)
    uw = ctx.fork_param("upsample_param", "upsample_w", None)
    scale = int(ctx.fork_param("upsample_param", "scale", 2))
    sh = int(ctx.fork_param("upsample_param", "scale_h", scale))
    sw = int(ctx.fork_param("upsample_param", "scale_w", scale))
    if uh is not None and uw is not None:
        oh, ow = int(uh), int(uw)
    else:
        oh = h * sh - int(bool(ctx.fork_param("upsample_param", "pad_out_h", False)))
        ow = w * sw - int(bool(ctx.fork_param("upsample_param", "pad_out_w", False)))
    if len(bottoms) == 1:
        rows = np.arange(oh) // sh
        cols = np.arange(ow) // sw
        if rows.max() >= h or cols.max() >= w:
            ctx.fail("the output reads past the input")
        return [x[:, :, rows][:, :, :, cols]]
    mask = bottoms[1].reshape(n, c, h * w).astype(np.int64)
    if mask.min() < 0 or mask.max() >= oh * ow:
        ctx.fail(f"a mask index is outside the {oh} x {ow} output")
    out = np.zeros((n, c, oh * ow))
    vals = x.reshape(n, c, h * w)
    for i in range(n):
        for j in range(c):
            out[i, j, mask[i, j]] = vals[i, j]   # NumPy assigns in order: the last write wins
    return [out.reshape(n, c, oh, ow)]


@op("BN")
def _bn(ctx, layer, bottoms, params):
    # Fork BN layers. yjxiong/caffe (PSPNet; bn_param with slope_filler/bias_filler/eps):
    # slope * (x - mean) / sqrt(var + eps) + bias with the stored mean and variance at test
    # time. SegNet's bn_layer.cpp: INFERENCE: scale * x + shift; LEARN (the default): the
    # batch's mean and E[x^2] - mean^2 over (N, H, W), + 1e-9, then scale and shift.
    x = bottoms[0]
    block = (ctx.extra.get("bn_param") or [{}])[-1]
    psp = isinstance(block, dict) and any(k in block for k in ("slope_filler", "momentum", "frozen", "eps"))
    scale, shift = params[0].reshape(1, -1, 1, 1), params[1].reshape(1, -1, 1, 1)
    if psp:
        eps = float(ctx.fork_param("bn_param", "eps", 1e-5))
        mean, var = params[2].reshape(1, -1, 1, 1), params[3].reshape(1, -1, 1, 1)
        return [scale * (x - mean) / np.sqrt(var + eps) + shift]
    mode = str(ctx.fork_param("bn_param", "bn_mode", "LEARN"))
    if mode in ("INFERENCE", "1"):
        return [scale * x + shift]
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = (x * x).mean(axis=(0, 2, 3), keepdims=True) - mean * mean
    return [(x - mean) / np.sqrt(var + 1e-9) * scale + shift]


@op("Mish")
def _mish(ctx, layer, bottoms, params):
    # MishLayer (Caffe forks; ncnn's mish.cpp alike): softplus is x above 20, exp(x) below -20.
    x = bottoms[0]
    sp = np.where(x > 20, x, np.where(x < -20, np.exp(x), np.log1p(np.exp(np.minimum(x, 20)))))
    return [x * np.tanh(sp)]


@op("Reorg")
def _reorg(ctx, layer, bottoms, params):
    # gklz1982/caffe-yolov2 ReorgLayer with darknet's reorg_cpu, written as its index loops
    # over flat arrays (forward = reverse): independent of the reshape/transpose in the export.
    x = bottoms[0]
    s = ctx.fork_param("reorg_param", "stride", None)
    if s is None:
        ctx.fail("reorg_param has no stride")
    s = int(s)
    reverse = bool(ctx.fork_param("reorg_param", "reverse", False))
    b, c, h, w = x.shape
    out_c = c // (s * s)
    k, j, i = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    c2, offset = k % out_c, k // out_c
    w2, h2 = i * s + offset % s, j * s + offset // s
    in_index = (i + w * (j + h * k)).ravel()
    out_index = (w2 + w * s * (h2 + h * s * c2)).ravel()
    src = x.reshape(b, -1)
    out = np.empty_like(src)
    if reverse:
        out[:, out_index] = src[:, in_index]
        return [out.reshape(b, out_c, h * s, w * s)]
    out[:, in_index] = src[:, out_index]
    return [out.reshape(b, c * s * s, h // s, w // s)]


@op("HardSwish")
def _hard_swish(ctx, layer, bottoms, params):
    # foss-for-synopsys-dwc-arc-processors/synopsys-caffe hard_swish_layer.cpp: x * min(max(x + 3, 0), 6) / 6.
    x = bottoms[0]
    return [x * np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0]


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


def max_pool_mask(x: np.ndarray, kernel, stride, pad, out_hw) -> np.ndarray:
    """PoolingLayer's MAX mask top: for each window (clipped to the input) the index h * W + w
    of its first maximum in row-major order (Caffe replaces the best only on a strict `>`)."""
    n, c, h, w = x.shape
    oh, ow = out_hw
    best = np.full((n, c, oh, ow), -np.inf)
    index = np.full((n, c, oh, ow), -1.0)
    hs = np.arange(oh) * stride[0] - pad[0]
    ws = np.arange(ow) * stride[1] - pad[1]
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = hs + i, ws + j
            rv = (rows >= 0) & (rows < h) & (rows < hs + kernel[0])
            cv = (cols >= 0) & (cols < w)
            vals = x[:, :, np.clip(rows, 0, h - 1)][:, :, :, np.clip(cols, 0, w - 1)]
            ok = np.outer(rv, cv)[None, None] & (vals > best)
            best = np.where(ok, vals, best)
            index = np.where(ok, (np.clip(rows, 0, h - 1)[:, None] * w + np.clip(cols, 0, w - 1)[None, :])[None, None],
                             index)
    return index


def _c3d_geometry(ctx, message):
    # facebook/C3D: kernel_size/stride/pad for height and width, kernel_depth/temporal_stride/
    # temporal_pad (convolution only) for the length.
    p = getattr(ctx.layer, message)
    if message == "convolution_param":
        k, s, pd = (p.kernel_size[0] if len(p.kernel_size) else 0), (p.stride[0] if len(p.stride) else 1), \
            (p.pad[0] if len(p.pad) else 0)
        tp = int(ctx.sub_field(message, "temporal_pad", 0))
    else:
        k, s, pd, tp = p.kernel_size, p.stride, p.pad, 0
    kd = int(ctx.sub_field(message, "kernel_depth", 1))
    ts = int(ctx.sub_field(message, "temporal_stride", 1))
    return (kd, k, k), (ts, s, s), (tp, pd, pd)


@op("Convolution3D")
def _convolution3d(ctx, layer, bottoms, params):
    # facebook/C3D convolution3d_layer.cpp: vol2col then one gemm per filter group, each group
    # over all C channels; bias (1, 1, 1, 1, num_output).
    x = bottoms[0]
    kernel, stride, pad = _c3d_geometry(ctx, "convolution_param")
    w = params[0]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in pad])
    out = [(xp.shape[2 + i] - kernel[i]) // stride[i] + 1 for i in range(3)]
    y = np.zeros((x.shape[0], w.shape[0], *out))
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            for c in range(kernel[2]):
                win = xp[:, :, a:a + (out[0] - 1) * stride[0] + 1:stride[0], b:b + (out[1] - 1) * stride[1] + 1:stride[1],
                         c:c + (out[2] - 1) * stride[2] + 1:stride[2]]
                y += np.einsum("nclhw,oc->nolhw", win, w[:, :, a, b, c])
    if layer.convolution_param.bias_term:
        y += params[1].reshape(1, -1, 1, 1, 1)
    return [y]


@op("Pooling3D")
def _pooling3d(ctx, layer, bottoms, params):
    # facebook/C3D pooling3d_layer.cpp, written as its loops over output cells.
    x = bottoms[0]
    kernel, stride, pad = _c3d_geometry(ctx, "pooling_param")
    is_max = layer.pooling_param.pool == pb.PoolingParameter.MAX
    n, c, L, H, W = x.shape
    size = (L, H, W)
    out = [-(-(size[i] + 2 * pad[i] - kernel[i]) // stride[i]) + 1 for i in range(3)]
    y = np.zeros((n, c, *out))
    for pl in range(out[0]):
        for ph in range(out[1]):
            for pw in range(out[2]):
                lo, hi = [], []
                for i, o in enumerate((pl, ph, pw)):
                    start = o * stride[i] - pad[i]
                    end = min(start + kernel[i], size[i] + pad[i])
                    lo.append(start)
                    hi.append(end)
                area = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])
                sl = tuple(slice(max(lo[i], 0), min(hi[i], size[i])) for i in range(3))
                win = x[(slice(None), slice(None)) + sl]
                if is_max:
                    y[:, :, pl, ph, pw] = win.max(axis=(2, 3, 4)) if win.size else -FLT_MAX
                else:
                    y[:, :, pl, ph, pw] = win.sum(axis=(2, 3, 4)) / area
    return [y]


def _coord_map(layer):
    """(scale, shift) per spatial axis of a layer's map from bottom to top coordinates, as the
    FCN/HED coordinate maps define them: convolution and pooling t = (b - ((k - 1) d / 2 - p)) / s,
    deconvolution the inverse, Crop/AutoCrop t = b - offset; anything else the identity."""
    from fractions import Fraction as F
    t = layer.type
    if t in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        def pick(rep, h, w, default):
            if p.HasField(h) or p.HasField(w):
                return [getattr(p, h), getattr(p, w)]
            vals = list(rep)
            return [default] * 2 if not vals else ([vals[0]] * 2 if len(vals) == 1 else vals[:2])
        k = pick(p.kernel_size, "kernel_h", "kernel_w", 1)
        s = pick(p.stride, "stride_h", "stride_w", 1)
        pad = pick(p.pad, "pad_h", "pad_w", 0)
        d = list(p.dilation) or [1]
        d = [d[0]] * 2 if len(d) == 1 else d[:2]
        maps = [(F(1, s[i]), (F(pad[i]) - F((k[i] - 1) * d[i], 2)) / s[i]) for i in range(2)]
        if t == "Deconvolution":
            maps = [(1 / a, -b / a) for a, b in maps]
        return maps
    if t == "Pooling":
        p = layer.pooling_param
        if p.global_pooling:
            return None
        k = [p.kernel_h, p.kernel_w] if (p.HasField("kernel_h") or p.HasField("kernel_w")) else [p.kernel_size] * 2
        s = [p.stride_h, p.stride_w] if (p.HasField("stride_h") or p.HasField("stride_w")) else [p.stride] * 2
        pad = [p.pad_h, p.pad_w] if (p.HasField("pad_h") or p.HasField("pad_w")) else [p.pad] * 2
        return [(F(1, s[i]), (F(pad[i]) - F(k[i] - 1, 2)) / s[i]) for i in range(2)]
    if t == "Crop":
        p = layer.crop_param
        offs = list(p.offset)
        ax = p.axis if p.axis >= 0 else 4 + p.axis
        o = [0, 0]
        for i in range(2):
            if 2 + i >= ax:
                o[i] = offs[0] if len(offs) == 1 else (offs[2 + i - ax] if offs else 0)
        return [(F(1), F(-o[i])) for i in range(2)]
    return [(F(1), F(0)), (F(1), F(0))]


@op("AutoCrop")
def _auto_crop(ctx, layer, bottoms, params):
    # The HED coordinate-map crop (crop_layer.cpp, "an add for HED"; AutoCrop): walk back along
    # first bottoms from bottom 0, then from bottom 1 to the first blob on that path; compose
    # the layers' coordinate maps; the bottom-0-to-bottom-1 map must be 1:1 with a shift <= 0.
    from fractions import Fraction as F
    net, upto = ctx.net, ctx.index
    ph, level, stages = ctx.phase_value
    producer = {}
    layers = {}
    for i, l in enumerate(net.layer[:upto]):
        if not included(l, ph, level, stages):
            continue
        layers[i] = l
        for top in l.top:
            producer.setdefault(top, i)       # the first producer: in-place layers are skipped
    a, b = layer.bottom[0], layer.bottom[1]
    path = [a]
    while a in producer and layers[producer[a]].bottom:
        a = layers[producer[a]].bottom[0]
        path.append(a)
    inter = b
    while inter not in path:
        if inter not in producer or not layers[producer[inter]].bottom:
            ctx.fail("cannot align apparently disconnected blobs")
        inter = layers[producer[inter]].bottom[0]

    def to_inter(blob):
        # Map from `blob` coordinates to `inter` coordinates: invert each layer's bottom-to-top map.
        maps = [(F(1), F(0)), (F(1), F(0))]
        while blob != inter:
            lyr = layers[producer[blob]]
            cm = _coord_map(lyr)
            if cm is None:
                ctx.fail(f"layer '{lyr.name}' has no coordinate map")
            # x_bottom = (x_top - shift) / scale, composed after the maps so far.
            maps = [((m[0]) / c[0], (m[1] - c[1]) / c[0]) for m, c in zip(maps, cm)]
            blob = lyr.bottom[0]
        return maps

    m0, m1 = to_inter(layer.bottom[0]), to_inter(layer.bottom[1])
    offs = []
    for i in range(2):
        if m0[i][0] != m1[i][0]:
            ctx.fail("only 1:1 crops are supported (the bottoms have different scales)")
        off = (m1[i][1] - m0[i][1]) / m0[i][0]
        if off.denominator != 1 or off < 0:
            ctx.fail(f"the crop offset {off} is not a non-negative integer")
        offs.append(int(off))
    x, ref = bottoms
    h, w = ref.shape[2:4]
    return [x[:, :, offs[0]:offs[0] + h, offs[1]:offs[1] + w]]


# The detection layers of Caffe forks (SSD, R-FCN, YOLO ports) live in their own module.
from . import reference_detection  # noqa: E402,F401  (registers its ops)
from . import reference_segvideo  # noqa: E402,F401  (registers its ops)
