"""Normalisation and per-channel affine layers: LRN, BatchNorm, Scale, Bias, MVN."""
from __future__ import annotations

from .. import codes
from ..proto import pb
from .base import Layer, bad, canonical_axis, fmt_shape, need_rank, prod, register


def _constant(value: float):
    f = pb.FillerParameter()
    f.type = "constant"
    f.value = value
    return f


@register("LRN")
class LRN(Layer):
    family = "normalisation"
    param = "lrn_param"
    elementwise = True

    def check(self, node, diags):
        lp = node.param.lrn_param
        if lp.local_size % 2 == 0:
            diags.add(codes.BAD_PARAM.at(node.field_span("lrn_param", "local_size"),
                                         notes=["Caffe's LRN supports odd local_size only (1, 3, 5, ...)"],
                                         message=f"layer '{node.name}': local_size {lp.local_size} is even"))

    def infer_shapes(self, node, in_shapes):
        need_rank(node, in_shapes[0], 4)
        return [in_shapes[0]]

    def cost(self, node, in_shapes, out_shapes):
        lp = node.param.lrn_param
        window = lp.local_size if lp.norm_region == pb.LRNParameter.ACROSS_CHANNELS else lp.local_size ** 2
        # Per element: square and sum the window, then scale, power and divide.
        return {"macs": 0, "flops": prod(out_shapes[0]) * (2 * window + 3)}

    def to_onnx(self, node, g):
        """ONNX LRN across channels; square, average, power and product within a channel."""
        from ..proto import pb
        p = node.param.lrn_param
        if p.norm_region == pb.LRNParameter.ACROSS_CHANNELS:
            # Same formula as ONNX LRN: x / (k + alpha / size * sum of squares) ^ beta.
            g.op("LRN", [g.x(0)], g.y(0), size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)
            return
        # WITHIN_CHANNEL: Caffe composes square -> AVE pool (size, pad (size-1)/2, stride 1, the
        # padding counted in the divisor) -> power(shift 1, scale alpha, power -beta) -> product.
        # `k` is not used in this mode.
        pre = (p.local_size - 1) // 2
        sq = g.op("Mul", [g.x(0), g.x(0)], g.tmp("square"))
        avg = g.op("AveragePool", [sq], g.tmp("average"), kernel_shape=[p.local_size] * 2, strides=[1, 1],
                   pads=[pre] * 4, count_include_pad=1)
        t = g.op("Mul", [avg, g.const(p.alpha, "alpha")], g.tmp("scaled"))
        t = g.op("Add", [t, g.const(1.0, "one")], g.tmp("shifted"))
        t = g.op("Pow", [t, g.const(-p.beta, "neg_beta")], g.tmp("pow"))
        g.op("Mul", [g.x(0), t], g.y(0))


def eps_before_sqrt(node) -> bool:
    """Synopsys' fork (foss-for-synopsys-dwc-arc-processors/synopsys-caffe,
    src/caffe/layers/batch_norm_layer.cpp Forward_cpu) divides by sqrt(var + eps) when
    batch_norm_param's add_eps_before_sqrt is true (its default, BVLC's rule) and by
    sqrt(var) + eps when it is false."""
    sub = node.loc.msg("batch_norm_param") if node.loc is not None else None
    vals = sub.extra.get("add_eps_before_sqrt") if sub is not None else None
    return bool(vals[-1]) if vals else BatchNorm.fork_defaults["add_eps_before_sqrt"]


@register("BatchNorm")
class BatchNorm(Layer):
    family = "normalisation"
    param = "batch_norm_param"
    fork_defaults = {"add_eps_before_sqrt": True}  # Synopsys' field; true is BVLC's rule
    elementwise = True
    checked_against = ("BVLC/caffe src/caffe/layers/batch_norm_layer.cpp; add_eps_before_sqrt: "
                       "foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/batch_norm_layer.cpp")

    def param_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        c = shape[1] if len(shape) > 1 else 1
        # mean, variance, and the moving-average scale factor that both are divided by.
        return [(c,), (c,), (1,)]

    def stat_blobs(self, node):
        return {0, 1, 2}

    # Without a .caffemodel (netdef init, export, verify) the statistics start neutral: mean 0,
    # variance 1, factor 1, so an untrained BatchNorm computes x / sqrt(1 + eps). Caffe has no
    # filler for them (LayerSetUp zero-fills all three), and with factor 0 its forward pass reads
    # mean 0 and variance 0 and divides by sqrt(eps): x316 per layer at eps 1e-5, which overflows
    # float32 within a few layers of ResNet, Inception-v3, DenseNet or MobileNet.
    neutral_statistics = {0: 0.0, 1: 1.0, 2: 1.0}

    def filler_params(self, node):
        # BatchNormLayer::LayerSetUp zero-fills all three blobs.
        return [_constant(0), _constant(0), _constant(0)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 2 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX BatchNormalization with the stored statistics (or batch statistics)."""
        import numpy as np
        p = node.param.batch_norm_param
        shape = g.in_shape(0)
        c = shape[1] if len(shape) > 1 else 1
        if not self.use_global_stats(node, g.phase):
            # use_global_stats: false normalises with the batch's own statistics, even at TEST.
            axes = [i for i in range(len(shape)) if i != 1]
            mean = g.mean(g.x(0), axes)
            d = g.op("Sub", [g.x(0), mean], g.tmp("centred"))
            var = g.mean(g.op("Mul", [d, d], g.tmp("sq")), axes)
            if eps_before_sqrt(node):
                den = g.op("Sqrt", [g.op("Add", [var, g.const(p.eps, "eps")], g.tmp("var_eps"))], g.tmp("std"))
            else:
                den = g.op("Add", [g.op("Sqrt", [var], g.tmp("std")), g.const(p.eps, "eps")], g.tmp("std_eps"))
            g.op("Div", [d, den], g.y(0))
            return
        mean, var = (s.astype(np.float32) for s in self.statistics(g.blob(0), g.blob(1), g.blob(2)))
        if len(shape) < 2:
            g.fail("BatchNorm of a 1-D blob")
        eps = p.eps
        if not eps_before_sqrt(node):
            # sqrt(var) + eps as BatchNormalization's sqrt(var' + 0): var' = (sqrt(var) + eps)^2.
            var = ((np.sqrt(var.astype(np.float64)) + eps) ** 2).astype(np.float32)
            eps = 0.0
        g.op("BatchNormalization", [g.x(0), g.const(np.ones(c), "gamma"), g.const(np.zeros(c), "beta"),
                                    g.const(mean, "mean"), g.const(var, "var")], g.y(0), epsilon=eps)

    # -- folding into the convolution / inner product before it (export) ---------------------
    @staticmethod
    def use_global_stats(node, phase: str = "TEST") -> bool:
        """BatchNormLayer: the stored statistics unless use_global_stats says otherwise; its
        default follows the phase (TEST: stored, TRAIN: the batch's own)."""
        p = node.param.batch_norm_param
        return p.use_global_stats if p.HasField("use_global_stats") else phase == "TEST"

    @staticmethod
    def statistics(sum_mean, sum_var, factor):
        """Mean and variance as BatchNormLayer uses them (float64): the stored sums scaled by
        1 / blob 2, where a factor of 0 means 0 (not infinity)."""
        import numpy as np
        f = float(np.asarray(factor).reshape(-1)[0])
        k = 0.0 if f == 0 else 1.0 / f
        return np.asarray(sum_mean).astype(np.float64) * k, np.asarray(sum_var).astype(np.float64) * k

    def foldable(self, node, phase: str = "TEST") -> bool:
        """With the stored statistics, y = (x - mean) / sqrt(var + eps) is per channel affine."""
        return _fold_shape_ok(node) and self.use_global_stats(node, phase)

    def fold(self, node, blobs, a, c):
        """(a, c) of y = a * x + c composed with this layer: a / sd, (c - mean) / sd, with
        sd = sqrt(var + eps), or sqrt(var) + eps in Synopsys' fork (eps_before_sqrt)."""
        import numpy as np
        mean, var = self.statistics(*blobs[:3])
        eps = float(np.float32(node.param.batch_norm_param.eps))
        inv = 1.0 / (np.sqrt(var + eps) if eps_before_sqrt(node) else np.sqrt(var) + eps)
        return a * inv, (c - mean) * inv


def affine_shape(node, field: str, in_shapes) -> tuple:
    """The parameter shape of a one-bottom Scale/Bias: bottom axes [axis, axis + num_axes)."""
    msg = getattr(node.param, field)
    shape = in_shapes[0]
    axis = canonical_axis(node, msg.axis, shape, (field, "axis"))
    if msg.num_axes < -1:
        bad(node, f"num_axes must be -1 (all remaining axes) or at least 0, got {msg.num_axes}",
            node.field_span(field, "num_axes"), code=codes.BAD_AXIS)
    if msg.num_axes == -1:
        return tuple(shape[axis:])
    if axis + msg.num_axes > len(shape):
        bad(node, f"axis {axis} + num_axes {msg.num_axes} runs past the {len(shape)}-D bottom {fmt_shape(shape)}",
            node.field_span(field, "num_axes"), code=codes.BAD_AXIS)
    return tuple(shape[axis:axis + msg.num_axes])


def check_broadcast(node, field: str, shape, other) -> None:
    """Scale/BiasLayer::Reshape with a second bottom: it must match bottom 0 from `axis` on."""
    msg = getattr(node.param, field)
    axis = 0 if len(other) == 0 else canonical_axis(node, msg.axis, shape, (field, "axis"))
    if axis + len(other) > len(shape):
        bad(node, f"'{node.inputs[1].name}' {fmt_shape(other)} extends past '{node.inputs[0].name}' "
                  f"{fmt_shape(shape)} when applied from axis {axis}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
    for i, d in enumerate(other):
        if shape[axis + i] != d:
            bad(node, f"'{node.inputs[1].name}' {fmt_shape(other)} does not match '{node.inputs[0].name}' "
                      f"{fmt_shape(shape)} from axis {axis}: dimension {i} is {d}, not {shape[axis + i]}",
                node.bottom_span(1), code=codes.SHAPE_MISMATCH,
                notes=[f"the second bottom must equal bottom 0's shape[{axis}:{axis + len(other)}] = "
                       f"{fmt_shape(shape[axis:axis + len(other)])}"])


def affine_axis(node, g, field):
    """(axis, parameter shape) of Scale/Bias with one bottom, lowering: shape[axis : axis + num_axes]."""
    pshape = g.blob_shape(0)
    if not pshape:
        return 0, ()
    return canonical_axis(node, getattr(node.param, field).axis, g.in_shape(0)), pshape


def bcast_shape(pshape, axis, rank):
    """The parameter shape padded with 1s to broadcast from `axis` of a rank-`rank` blob."""
    return tuple(pshape) + (1,) * (rank - axis - len(pshape))


@register("Scale")
class Scale(Layer):
    family = "normalisation"
    param = "scale_param"
    bottoms = (1, 2)
    elementwise = True

    def infer_shapes(self, node, in_shapes):
        if len(in_shapes) > 1:
            check_broadcast(node, "scale_param", in_shapes[0], in_shapes[1])
        else:
            affine_shape(node, "scale_param", in_shapes)
        return [in_shapes[0]]

    def param_shapes(self, node, in_shapes):
        sp = node.param.scale_param
        if len(in_shapes) > 1:
            # The scale comes from bottom 1; only the optional bias is a parameter.
            return [tuple(in_shapes[1])] if sp.bias_term else []
        s = affine_shape(node, "scale_param", in_shapes)
        return [s, s] if sp.bias_term else [s]

    def filler_params(self, node):
        sp = node.param.scale_param
        # ScaleLayer fills with constant 1 unless a filler is given; the bias with bias_filler.
        scale = sp.filler if sp.HasField("filler") else _constant(1)
        fillers = [] if len(node.inputs) > 1 else [scale]
        return fillers + ([sp.bias_filler] if sp.bias_term else [])

    def cost(self, node, in_shapes, out_shapes):
        n = prod(out_shapes[0])
        return {"macs": 0, "flops": n * (2 if node.param.scale_param.bias_term else 1)}

    def to_onnx(self, node, g):
        """ONNX Mul (and Add) broadcast from `axis`, or by the second bottom."""
        p = node.param.scale_param
        rank = len(g.in_shape(0))
        if g.n_in > 1:
            s_shape = g.in_shape(1)
            axis = canonical_axis(node, p.axis, g.in_shape(0)) if s_shape else 0
            trail = rank - axis - len(s_shape)
            s = g.x(1)
            if trail:
                # Reshape with 0 copies the second bottom's own dims (dynamic batch safe).
                s = g.op("Reshape", [s, g.ints([0] * len(s_shape) + [1] * trail, "scale_shape")], g.tmp("scale_b"))
            bias_shape = bcast_shape(s_shape, axis, rank)
            if p.bias_term:
                y = g.op("Mul", [g.x(0), s], g.tmp("mul"))
                g.op("Add", [y, g.param(0, "bias", bias_shape)], g.y(0))
            else:
                g.op("Mul", [g.x(0), s], g.y(0))
            return
        axis, pshape = affine_axis(node, g, "scale_param")
        b = bcast_shape(pshape, axis, rank)
        s = g.param(0, "scale", b)
        if p.bias_term:
            y = g.op("Mul", [g.x(0), s], g.tmp("mul"))
            g.op("Add", [y, g.param(1, "bias", b)], g.y(0))
        else:
            g.op("Mul", [g.x(0), s], g.y(0))

    # -- folding into the convolution / inner product before it (export) ---------------------
    def foldable(self, node, phase: str = "TEST") -> bool:
        """One bottom, and a (C,) scale over the channel axis only."""
        if not _fold_shape_ok(node):
            return False
        shape = node.inputs[0].meta["shape"]
        blobs = node.meta.get("blobs") or []
        return bool(blobs) and tuple(blobs[0]) == (shape[1],) and \
            canonical_axis(node, node.param.scale_param.axis, shape) == 1

    def fold(self, node, blobs, a, c):
        """(a, c) of y = a * x + c composed with this layer: a * s, c * s (+ bias)."""
        s = blobs[0].reshape(-1)
        a, c = a * s, c * s
        if node.param.scale_param.bias_term:
            c = c + blobs[1].reshape(-1)
        return a, c


@register("Bias")
class Bias(Layer):
    family = "normalisation"
    param = "bias_param"
    bottoms = (1, 2)
    elementwise = True

    def infer_shapes(self, node, in_shapes):
        if len(in_shapes) > 1:
            check_broadcast(node, "bias_param", in_shapes[0], in_shapes[1])
        else:
            affine_shape(node, "bias_param", in_shapes)
        return [in_shapes[0]]

    def param_shapes(self, node, in_shapes):
        if len(in_shapes) > 1:
            return []
        return [affine_shape(node, "bias_param", in_shapes)]

    def filler_params(self, node):
        if len(node.inputs) > 1:
            return []
        bp = node.param.bias_param
        return [bp.filler if bp.HasField("filler") else _constant(0)]

    def to_onnx(self, node, g):
        """ONNX Add broadcast from `axis`, or of the second bottom."""
        p = node.param.bias_param
        rank = len(g.in_shape(0))
        if g.n_in > 1:
            b_shape = g.in_shape(1)
            axis = canonical_axis(node, p.axis, g.in_shape(0)) if b_shape else 0
            trail = rank - axis - len(b_shape)
            b = g.x(1)
            if trail:
                b = g.op("Reshape", [b, g.ints([0] * len(b_shape) + [1] * trail, "bias_shape")], g.tmp("bias_b"))
            g.op("Add", [g.x(0), b], g.y(0))
            return
        axis, pshape = affine_axis(node, g, "bias_param")
        g.op("Add", [g.x(0), g.param(0, "bias", bcast_shape(pshape, axis, rank))], g.y(0))


@register("MVN")
class MVN(Layer):
    family = "normalisation"
    param = "mvn_param"
    elementwise = True

    def cost(self, node, in_shapes, out_shapes):
        per = 4 if node.param.mvn_param.normalize_variance else 2
        return {"macs": 0, "flops": prod(out_shapes[0]) * per}

    def to_onnx(self, node, g):
        """Mean (and standard deviation) over each sample or channel, as ReduceMean chains."""
        p = node.param.mvn_param
        shape = g.in_shape(0)
        start = 1 if p.across_channels else 2
        if len(shape) <= start:
            g.fail(f"MVN of a {len(shape)}-D blob: every value is its own group")
        axes = list(range(start, len(shape)))
        mean = g.mean(g.x(0), axes)
        if not p.normalize_variance:
            g.op("Sub", [g.x(0), mean], g.y(0))
            return
        d = g.op("Sub", [g.x(0), mean], g.tmp("centred"))
        var = g.mean(g.op("Mul", [d, d], g.tmp("sq")), axes)
        # Caffe adds eps to the standard deviation, not to the variance.
        std = g.op("Add", [g.op("Sqrt", [var], g.tmp("std")), g.const(p.eps, "eps")], g.tmp("std_eps"))
        g.op("Div", [d, std], g.y(0))


# --- the fork `BN` layer ---------------------------------------------------------------------

# SegNet's BNParameter (alexgkendall/caffe-segnet src/caffe/proto/caffe.proto): scale_filler = 1,
# shift_filler = 2, bn_mode = 3 [default = LEARN] (LEARN = 0, INFERENCE = 1).
# yjxiong/caffe's (PSPNet's) BNParameter: slope_filler = 1, bias_filler = 2,
# momentum = 3 [default 0.9], eps = 4 [default 1e-5], frozen = 5 [default false].
_BN = {"bn_mode": "LEARN", "eps": 1e-5, "momentum": 0.9, "frozen": False}
SEGNET_BN_EPS = 1e-9  # BNLayer::LayerSetUp's var_eps_ (SegNet), not a parameter
PSP_BN_FIELDS = ("slope_filler", "momentum", "frozen", "eps")  # any of them: the PSPNet/yjxiong BN


@register("BN")
class BN(Layer):
    """Batch normalisation with its own scale and shift, from two families of forks:
    SegNet's (bn_param { scale_filler shift_filler bn_mode }) keeps 2 blobs, scale and shift;
    the yjxiong/PSPNet one (bn_param { slope_filler bias_filler momentum frozen }) keeps 4:
    slope, bias, then the running mean and variance (statistics). Every blob is (1, C, 1, 1).

    Forward at test time (alexgkendall/caffe-segnet src/caffe/layers/bn_layer.cpp): INFERENCE
    is scale * x + shift; LEARN, the default, normalises with the batch's own statistics in
    every phase (mean over N, H, W; variance E[x^2] - E[x]^2; + 1e-9), then scales and shifts.
    hszhao/PSPNet src/caffe/layers/bn_layer.cpp (commit c479f4fe, the yjxiong-style BN that
    PSPNet's own deploy files use) at test time, or when frozen, uses the stored mean and
    variance: slope * (x - mean) / sqrt(var + eps) + bias, blobs (1, C, 1, 1).
    yjxiong/caffe (TSN's fork, branch action_recog, src/caffe/layers/bn_layer.cpp LayerSetUp)
    computes the same but keeps its four blobs as (1, C): a .caffemodel may hold either.
    wy1iu/LargeMargin_Softmax_Loss's BN has the same bn_param fields but keeps (1, C) blobs and
    stores the inverse standard deviation in blob 3: face.py's LSoftmaxBN, chosen only in nets
    that use that fork's LargeMarginInnerProduct (the fields alone cannot tell them apart)."""

    family = "normalisation"
    elementwise = True
    fork_defaults = _BN
    origin = "the SegNet fork (alexgkendall/caffe-segnet) and the PSPNet/yjxiong forks"
    checked_against = ("alexgkendall/caffe-segnet src/caffe/layers/bn_layer.cpp and caffe.proto; "
                       "hszhao/PSPNet src/caffe/layers/bn_layer.cpp (commit c479f4fe); yjxiong/caffe's "
                       "BNParameter (slope_filler, bias_filler, momentum, eps 1e-5, frozen)")

    def pspnet_style(self, node) -> bool:
        raw = (node.extra.get("bn_param") or [{}])[-1]
        return isinstance(raw, dict) and any(k in raw for k in PSP_BN_FIELDS)

    def mode(self, node) -> str:
        from .fork import ForkParams
        return str(ForkParams(node, "bn_param").get("bn_mode"))

    def check(self, node, diags):
        if not self.pspnet_style(node) and self.mode(node) not in ("LEARN", "INFERENCE", "0", "1"):
            diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': bn_mode must be LEARN or "
                                                            f"INFERENCE, got {self.mode(node)}"))

    # SegNet's BN takes 1 to 3 tops (alexgkendall/caffe-segnet bn_layer.cpp Reshape: top[1], the
    # batch mean, and top[2], the batch variance E[x^2] - E[x]^2, both (1, C, 1, 1), written by
    # Forward_cpu in LEARN mode; its compute_bn_statistics.py builds such nets). yjxiong/caffe's
    # (and PSPNet's) BNLayer: ExactNumTopBlobs 1 (include/caffe/common_layers.hpp).
    tops = (1, 3)

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        if len(node.outputs) > 1 and self.pspnet_style(node):
            bad(node, f"this BN (bn_param with slope_filler, momentum, frozen or eps) takes 1 top, got "
                      f"{len(node.outputs)}", node.span, notes=["only SegNet's BN gives the batch mean and variance "
                                                               "as tops 2 and 3"])
        stat = (1, shape[1], 1, 1)
        return [shape, stat, stat][:len(node.outputs)]

    def param_shapes(self, node, in_shapes):
        c = in_shapes[0][1] if len(in_shapes[0]) > 1 else 1
        return [(1, c, 1, 1)] * (4 if self.pspnet_style(node) else 2)

    def receptive_field(self, node, in_rfs):
        return [in_rfs[0]] + [None] * (len(node.outputs) - 1)

    def lint(self, node, in_shapes, out_shapes, diags):
        if len(node.outputs) > 1 and self.mode(node) in ("INFERENCE", "1"):
            diags.add(codes.PARAM_IGNORED.at(node.span, message=f"layer '{node.name}': in INFERENCE mode SegNet's BN "
                                                                "does not write its mean and variance tops (they "
                                                                "stay zero)"))

    def stat_blobs(self, node):
        return {2, 3} if self.pspnet_style(node) else set()

    def alternative_blob_shapes(self, node, shapes):
        # yjxiong/caffe src/caffe/layers/bn_layer.cpp (action_recog, TSN's fork) LayerSetUp makes
        # slope, bias, mean and variance with shape {1, channels}; PSPNet's bn_layer.cpp (commit
        # c479f4fe) makes them (1, C, 1, 1). Same values and order; the definition cannot tell
        # which fork wrote a file, so binding takes either (and no other shape).
        if not self.pspnet_style(node):
            return {}
        return {i: (tuple(s[:2]),) for i, s in enumerate(shapes) if len(s) == 4 and s[2:] == (1, 1)}

    # The PSPNet style's running mean and variance start neutral, as BatchNorm's do.
    neutral_statistics = {2: 0.0, 3: 1.0}

    def filler_params(self, node):
        raw = (node.extra.get("bn_param") or [{}])[-1]
        names = ("slope_filler", "bias_filler") if self.pspnet_style(node) else ("scale_filler", "shift_filler")
        out = []
        for name, default in zip(names, (1.0, 0.0)):
            f = pb.FillerParameter()
            spec = raw.get(name, [None])[-1] if isinstance(raw, dict) else None
            f.type = str((spec.get("type") or ["constant"])[-1]) if isinstance(spec, dict) else "constant"
            f.value = float((spec.get("value") or [default])[-1]) if isinstance(spec, dict) else default
            out.append(f)
        return out + [None, None] if self.pspnet_style(node) else out

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 2 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """Mul and Add with the (1, C, 1, 1) blobs; the stored statistics (PSPNet) or the batch's
        own (SegNet's LEARN mode: ReduceMean over N, H, W) normalise first."""
        from .fork import ForkParams
        shape = (1, g.in_shape(0)[1], 1, 1)
        x = g.x(0)
        if self.pspnet_style(node):
            eps = float(ForkParams(node, "bn_param").get("eps"))
            mean, var = g.param(2, "mean", shape), g.param(3, "var", shape)
            std = g.op("Sqrt", [g.op("Add", [var, g.const(eps, "eps")], g.tmp("var_eps"))], g.tmp("std"))
            x = g.op("Div", [g.op("Sub", [x, mean], g.tmp("centred")), std], g.tmp("normed"))
        elif self.mode(node) in ("LEARN", "0"):
            mean = g.mean(x, [0, 2, 3], g.tmp("mean"))
            sq = g.mean(g.op("Mul", [x, x], g.tmp("sq")), [0, 2, 3], g.tmp("sq_mean"))
            var = g.op("Sub", [sq, g.op("Mul", [mean, mean], g.tmp("mean_sq"))], g.tmp("var"))
            std = g.op("Sqrt", [g.op("Add", [var, g.const(SEGNET_BN_EPS, "eps")], g.tmp("var_eps"))], g.tmp("std"))
            x = g.op("Div", [g.op("Sub", [x, mean], g.tmp("centred")), std], g.tmp("normed"))
        scaled = g.op("Mul", [x, g.param(0, "scale", shape)], g.tmp("scaled"))
        g.op("Add", [scaled, g.param(1, "shift", shape)], g.y(0))
        if len(node.outputs) > 1:
            # SegNet's tops 2 and 3: the batch mean and E[x^2] - E[x]^2 (LEARN), zeros (INFERENCE).
            if self.mode(node) in ("LEARN", "0"):
                stats = [mean, var]
            else:
                import numpy as np
                stats = [g.const(np.zeros(shape), "mean_top"), g.const(np.zeros(shape), "var_top")]
            for i in range(1, len(node.outputs)):
                g.op("Identity", [stats[i - 1]], g.y(i))


# --- folding BatchNorm / Scale into the layer before (export) --------------------------------
# The exporter asks a layer that follows a convolution / inner product whether it folds
# (impl.foldable) and composes the absorbed layers' per-channel y = a * x + c (impl.fold);
# folded_blobs rewrites the target's weights lazily: W' = W * a, b' = b * a + c.

FOLD_TARGETS = ("Convolution", "Deconvolution", "InnerProduct")


def _fold_shape_ok(node) -> bool:
    if len(node.inputs) != 1 or len(node.outputs) != 1:
        return False
    shape = node.inputs[0].meta.get("shape")
    return bool(shape) and len(shape) >= 2


def fold_target_ok(node) -> bool:
    """A layer the ones after it can fold into: its output channels are axis 1."""
    if node.type not in FOLD_TARGETS or node.outputs[0].meta.get("shape") is None:
        return False
    if getattr(node.impl, "variant", ""):
        return False        # a fork's variant (InnerProduct normalize: true rescales its weights)
    shape = node.inputs[0].meta.get("shape")
    if node.type == "InnerProduct":
        return shape is not None and canonical_axis(node, node.param.inner_product_param.axis, shape) == 1
    return node.param.convolution_param.axis in (1, -len(shape or (0, 0)) + 1)


def _channel_view(target, w):
    """Broadcast shape for a per-output-channel factor on this layer's weight."""
    if target.type == "Convolution":
        return (-1,) + (1,) * (w.ndim - 1)
    if target.type == "InnerProduct":
        return (1, -1) if target.param.inner_product_param.transpose else (-1, 1)
    return None  # Deconvolution: handled by the caller (groups interleave the axes)


def folded_blobs(target, absorbed, target_blobs, absorbed_blobs) -> list:
    """The target's [weight, bias] after absorbing `absorbed` (in order), as thunks: the blobs
    (lists of thunks returning arrays) are read only when a thunk is called."""
    import numpy as np
    n_out = target.outputs[0].meta["shape"][1]

    def coefficients():
        a = np.ones(n_out, np.float64)
        c = np.zeros(n_out, np.float64)
        for node, thunks in zip(absorbed, absorbed_blobs):
            a, c = node.impl.fold(node, [np.asarray(t(), np.float64) for t in thunks], a, c)
        return a, c

    def weight():
        a, _ = coefficients()
        w = np.asarray(target_blobs[0](), np.float32)
        if target.type == "Deconvolution":
            grp = target.param.convolution_param.group
            cin = w.shape[0]
            wg = w.reshape(grp, cin // grp, w.shape[1], *w.shape[2:])
            f = a.reshape(grp, 1, w.shape[1], *(1,) * (w.ndim - 2))
            return (wg * f).astype(np.float32).reshape(w.shape)
        return (w * a.reshape(_channel_view(target, w))).astype(np.float32)

    def bias():
        a, c = coefficients()
        b = np.asarray(target_blobs[1](), np.float64).reshape(-1) if len(target_blobs) > 1 else np.zeros(n_out)
        return (b * a + c).astype(np.float32)

    return [weight, bias]
