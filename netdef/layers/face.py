"""Face-recognition and large-margin layers of Caffe forks (issue 11).

  Flip, Normalize with normalize_param, InnerProduct's `normalize`, FocalLoss
      happynear/caffe-windows (AM-Softmax's Caffe); xialuxi/arcface-caffe's caffe.proto declares
      the same messages under other LayerParameter field numbers
  CosinAddm           xialuxi/arcface-caffe (ArcFace's additive angular margin)
  LargeMarginInnerProduct, and that fork's BN
                      wy1iu/LargeMargin_Softmax_Loss

Where a fork gives a type BVLC or another fork also has (Normalize, InnerProduct, BN) other
semantics, the class is a variant (base.register_variant), chosen per layer by its fields, or by
the net's other layers when the fields cannot tell.
"""
from __future__ import annotations

from .. import codes, forks
from .base import Layer, bad, canonical_axis, count, fail, fmt_shape, fork_filler, prod, register, register_variant
from .dense import InnerProduct
from .fork import ForkParams, num_output_and_axis
from .loss import Loss
from .norm import BN

# happynear/caffe-windows src/caffe/proto/caffe.proto: FlipParameter flip_width = 1
# [default true], flip_height = 2 [default false]; NormalizeParameter normalize_type = 1
# [default "L2"], fix_gradient = 2 [false], bp_norm = 3 [false] (xialuxi/arcface-caffe's
# caffe.proto: the same NormalizeParameter); FocalLossParameter (xialuxi/arcface-caffe
# caffe.proto) type = 1 [ORIGIN] (ORIGIN = 0, LINEAR = 1), gamma = 2 [2], alpha = 3 [0.25],
# beta = 4 [1]; CosinAddmParameter m = 1 [0.5], transform_test = 2 [false].
FLIP_DEFAULTS = {"flip_width": True, "flip_height": False}
NORMALIZE_DEFAULTS = {"normalize_type": "L2", "fix_gradient": False, "bp_norm": False}
FOCAL_DEFAULTS = {"type": "ORIGIN", "gamma": 2.0, "alpha": 0.25, "beta": 1.0}
COSIN_ADD_M_DEFAULTS = {"m": 0.5, "transform_test": False}
# wy1iu/LargeMargin_Softmax_Loss src/caffe/proto/caffe.proto: LargeMarginInnerProductParameter
# num_output = 1, type = 2 [SINGLE] (SINGLE, DOUBLE, TRIPLE, QUADRUPLE = 0..3), weight_filler = 3,
# axis = 4 [1], base = 5 [1], gamma = 6 [0], power = 7 [1], iteration = 8 [0], lambda_min = 9 [0].
LARGE_MARGIN_DEFAULTS = {"type": "SINGLE", "axis": 1, "base": 1.0, "gamma": 0.0, "power": 1.0, "iteration": 0,
                         "lambda_min": 0.0}
LARGE_MARGIN_TYPES = {"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "QUADRUPLE": 4, "0": 1, "1": 2, "2": 3, "3": 4}
# happynear/caffe-windows normalize_layer.cpp and inner_product_layer.cpp add this to the sum
# before the root.
NORM_EPS = 1e-6


def legacy4(node, shape):
    """Blob::num/channels/height/width: LegacyShape CHECKs at most 4 axes, and an axis past the
    end reads as 1."""
    if len(shape) > 4:
        fail(codes.BAD_RANK, node.bottom_span(0), layer=node.name, type=node.type,
             need="at most 4-D (num, channels, height, width)", blob=node.inputs[0].name, shape=fmt_shape(shape))
    return tuple(shape) + (1,) * (4 - len(shape))


# --- Flip ------------------------------------------------------------------------------------

def flip_axes(node_or_extra, rank: int) -> list[int]:
    """The axes a Flip mirrors: 3 (width) and/or 2 (height), those the blob has."""
    extra = node_or_extra if isinstance(node_or_extra, dict) else node_or_extra.extra
    block = (extra.get("flip_param") or [{}])[-1]
    block = block if isinstance(block, dict) else {}

    def flag(name):
        vals = block.get(name)
        return forks.as_bool(vals[-1]) if vals else FLIP_DEFAULTS[name]

    return [a for a, name in ((2, "flip_height"), (3, "flip_width")) if flag(name) and a < rank]


@register("Flip")
class Flip(Layer):
    """happynear/caffe-windows src/caffe/layers/flip_layer.cpp: the top has the bottom's shape
    (ReshapeLike); Forward_cpu copies with the width index reversed when flip_width (default) and
    the height index reversed when flip_height, over num/channels/height/width (the legacy
    accessors: at most 4 axes, missing ones read as 1, so a 2-D blob is copied unchanged)."""

    family = "shape"
    fork_defaults = FLIP_DEFAULTS
    origin = forks.FACE
    checked_against = "happynear/caffe-windows src/caffe/layers/flip_layer.cpp and caffe.proto (FlipParameter)"

    def check(self, node, diags):
        p = ForkParams(node, "flip_param", FLIP_DEFAULTS)
        for name in FLIP_DEFAULTS:
            if forks.as_bool(p.get(name)) is None:
                diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': flip_param.{name} must be "
                                                                f"true or false, got {p.get(name)!r}"))

    def infer_shapes(self, node, in_shapes):
        legacy4(node, in_shapes[0])
        return [tuple(in_shapes[0])]

    def receptive_field(self, node, in_rfs):
        # A mirrored map is not an affine map of its input with a positive stride, which is what
        # netdef's receptive-field model tracks; unflipped (a 2-D blob, no flag) it is the input's.
        rf = in_rfs[0]
        shape = node.inputs[0].meta.get("shape") or ()
        return [rf if not flip_axes(node, len(shape)) else None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}      # a copy

    def to_onnx(self, node, g):
        """ONNX Slice with step -1 on the flipped axes (Identity when none is)."""
        axes = flip_axes(node, len(g.in_shape(0)))
        if not axes:
            g.op("Identity", [g.x(0)], g.y(0))
            return
        k = len(axes)
        g.op("Slice", [g.x(0), g.ints([-1] * k, "starts"), g.ints([-(2 ** 63)] * k, "ends"), g.ints(axes, "axes"),
                       g.ints([-1] * k, "steps")], g.y(0))


# --- Normalize (happynear's) -----------------------------------------------------------------

def is_happynear_normalize(layer_param, loc, net_param) -> bool:
    """A Normalize layer with normalize_param and no norm_param is happynear's (SSD's Normalize
    reads norm_param and keeps a scale blob; this one has no blob)."""
    extra = getattr(loc, "extra", None) or {}
    return "normalize_param" in extra and "norm_param" not in extra


@register_variant("Normalize", is_happynear_normalize)
class FaceNormalize(Layer):
    """happynear/caffe-windows src/caffe/layers/normalize_layer.cpp (the Normalize of AM-Softmax
    and of xialuxi's ArcFace nets): top 0 is Reshape(num, channels, height, width), a 4-D blob
    even for a 2-D bottom (legacy accessors); top 1, when written, is the norm (num, 1, height,
    width). Forward: at each (n, h, w), norm = sqrt(sum over c of x^2 + 1e-6) for L2, sum of |x|
    + 1e-6 for L1; top = x / norm. No parameter blob."""

    family = "normalisation"
    fork_defaults = NORMALIZE_DEFAULTS
    tops = (1, 2)
    variant = "with normalize_param"
    origin = forks.FACE
    checked_against = ("happynear/caffe-windows src/caffe/layers/normalize_layer.cpp and caffe.proto "
                       "(NormalizeParameter); xialuxi/arcface-caffe caffe.proto")

    def norm_type(self, node) -> str:
        return str(ForkParams(node, "normalize_param", NORMALIZE_DEFAULTS).get("normalize_type"))

    def check(self, node, diags):
        if self.norm_type(node) not in ("L2", "L1"):
            diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': normalize_type must be \"L2\" or "
                                                            f"\"L1\", got {self.norm_type(node)!r}",
                                         notes=["the fork's Forward_cpu stops (NOT_IMPLEMENTED) on any other"]))

    def infer_shapes(self, node, in_shapes):
        n, c, h, w = legacy4(node, in_shapes[0])
        return [(n, c, h, w), (n, 1, h, w)][:len(node.outputs)]

    def receptive_field(self, node, in_rfs):
        return [in_rfs[0]] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 3 * prod(in_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX Mul/Abs, ReduceSum over the channels, Add 1e-6, Sqrt (L2), Div (4-D Reshape first)."""
        n, c, h, w = (tuple(g.in_shape(0)) + (1, 1, 1))[:4]
        x = g.x(0)
        dyn = tuple(g.in_dyn(0)) + (False,) * (4 - len(g.in_shape(0)))
        if len(g.in_shape(0)) != 4:
            x = g.reshape(x, (n, c, h, w), dyn[:4])
        if self.norm_type(node) == "L2":
            s = g.reduce("ReduceSum", g.op("Mul", [x, x], g.tmp("sq")), [1], 1)
            norm_out = g.y(1) if g.n_out > 1 else g.tmp("norm")
            norm = g.op("Sqrt", [g.op("Add", [s, g.const(NORM_EPS, "eps")], g.tmp("sum_eps"))], norm_out)
        else:
            s = g.reduce("ReduceSum", g.op("Abs", [x], g.tmp("abs")), [1], 1)
            norm = g.op("Add", [s, g.const(NORM_EPS, "eps")], g.y(1) if g.n_out > 1 else g.tmp("norm"))
        g.op("Div", [x, norm], g.y(0))


# --- InnerProduct with normalize: true ------------------------------------------------------

def ip_normalize(layer_param, loc, net_param) -> bool:
    """happynear/caffe-windows InnerProductParameter normalize = 7 (a field BVLC lacks)."""
    sub = loc.msg("inner_product_param") if loc is not None and hasattr(loc, "msg") else None
    vals = sub.extra.get("normalize") if sub is not None else None
    return bool(vals) and forks.as_bool(vals[-1]) is True


@register_variant("InnerProduct", ip_normalize)
class NormalizedInnerProduct(InnerProduct):
    """happynear/caffe-windows src/caffe/layers/inner_product_layer.cpp with normalize: true (one
    bottom): Forward_cpu first scales each run of K weights (row n of the (N, K) blob) by
    1/sqrt(its sum of squares + 1e-6), in place, then computes the usual product and bias."""

    variant = "with normalize: true"
    origin = forks.FACE
    checked_against = "happynear/caffe-windows src/caffe/layers/inner_product_layer.cpp (normalize_) and caffe.proto"

    def cost(self, node, in_shapes, out_shapes):
        base = super().cost(node, in_shapes, out_shapes)
        w = prod(self.param_shapes(node, in_shapes)[0])
        return {"macs": base["macs"] + w, "flops": base["flops"] + 3 * w}

    def to_onnx(self, node, g):
        """ONNX ReduceSum/Sqrt/Div normalising the weight rows, then Gemm as InnerProduct."""
        ip = node.param.inner_product_param
        wshape = g.blob_shape(0)
        n = ip.num_output
        k = prod(wshape) // max(n, 1)
        w = g.param(0, "weight_rows", (n, k))
        s = g.reduce("ReduceSum", g.op("Mul", [w, w], g.tmp("w_sq")), [1], 1)
        norm = g.op("Sqrt", [g.op("Add", [s, g.const(NORM_EPS, "eps")], g.tmp("w_sum_eps"))], g.tmp("w_norm"))
        wn = g.op("Div", [w, norm], g.tmp("w_normed"))
        if tuple(wshape) != (n, k):
            wn = g.reshape(wn, wshape)
        InnerProduct.gemm(node, g, wn)


# --- CosinAddm (ArcFace's margin) ------------------------------------------------------------

@register("CosinAddm")
class CosinAddm(Layer):
    """xialuxi/arcface-caffe cosin_add_m_layer.cpp: bottoms (cosines, labels); the top has the
    cosines' shape (ReshapeLike). Forward: a copy, except at each sample's label column, where
    cos(theta + m) = cos*cos(m) - sin*sin(m) replaces cos (sin = sqrt(1 - cos^2); a cosine above
    1 counts as 1), or cos - m*sin(m) when cos <= cos(pi - m). It reads the labels, so a deploy
    graph leaves it out, as it does losses."""

    family = "loss"
    fork_defaults = COSIN_ADD_M_DEFAULTS
    bottoms = (2, 2)
    compares = True
    training_only = True
    origin = forks.ARCFACE
    checked_against = "xialuxi/arcface-caffe cosin_add_m_layer.cpp and caffe.proto (CosinAddmParameter)"

    def check(self, node, diags):
        p = ForkParams(node, "cosin_add_m_param", COSIN_ADD_M_DEFAULTS)
        try:
            float(p.get("m"))
        except (TypeError, ValueError):
            diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': cosin_add_m_param.m must be a "
                                                            f"number, got {p.get('m')!r}"))

    def infer_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0])]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(out_shapes[0])}


# --- FocalLoss -------------------------------------------------------------------------------

@register("FocalLoss")
class FocalLoss(Loss):
    """The focal loss of happynear/caffe-windows src/caffe/layers/focal_loss_layer.cpp (after
    zimenglan-sysu-512/Focal-Loss; xialuxi/arcface-caffe's caffe.proto declares its
    FocalLossParameter): a softmax over softmax_param.axis, then the loss; Reshape CHECKs that
    count(0, axis) * count(axis + 1) equals the labels' count; top 0 is the loss (a scalar),
    top 1 (optional) the probabilities, bottom 0's shape."""

    fork_defaults = FOCAL_DEFAULTS
    tops = (1, 2)
    origin = forks.FACE
    checked_against = ("happynear/caffe-windows src/caffe/layers/focal_loss_layer.cpp; xialuxi/arcface-caffe "
                       "caffe.proto (FocalLossParameter)")

    def check(self, node, diags):
        # LayerSetUp: CHECK_GE(gamma, 0), CHECK_GT(alpha, 0).
        p = ForkParams(node, "focal_loss_param", FOCAL_DEFAULTS)
        for name, ok, rule in (("gamma", lambda v: v >= 0, "at least 0"), ("alpha", lambda v: v > 0, "above 0")):
            try:
                good = ok(float(p.get(name)))
            except (TypeError, ValueError):
                good = False
            if not good:
                diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': focal_loss_param.{name} must be "
                                                                f"a number {rule}, got {p.get(name)!r}"))

    def infer_shapes(self, node, in_shapes):
        data, label = in_shapes
        axis = canonical_axis(node, node.param.softmax_param.axis, data, ("softmax_param", "axis"))
        if count(data, 0, axis) * count(data, axis + 1) != prod(label):
            bad(node, f"'{node.inputs[0].label}' {fmt_shape(data)} needs {count(data, 0, axis) * count(data, axis + 1)} "
                      f"labels (one per position outside axis {axis}), '{node.inputs[1].label}' {fmt_shape(label)} "
                      f"holds {prod(label)}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [()] + [tuple(data)] * (len(node.outputs) - 1)


# --- LargeMarginInnerProduct (L-Softmax) ------------------------------------------------------

@register("LargeMarginInnerProduct")
class LargeMarginInnerProduct(Layer):
    """wy1iu/LargeMargin_Softmax_Loss src/caffe/layers/largemargin_inner_product_layer.cpp:
    bottoms (features, labels) with equal num (LayerSetUp CHECK); weight (num_output, K), K =
    count(axis) of the features; top 0 keeps the axes before `axis` and adds num_output; Reshape
    writes top 1 unconditionally, lambda, shape (1,), so the layer needs both tops. Its forward
    reads the labels and an iteration counter: a training layer, left out of a deploy graph."""

    family = "dense"
    fork_defaults = LARGE_MARGIN_DEFAULTS
    bottoms = (2, 2)
    tops = (2, 2)
    compares = True
    training_only = True
    origin = forks.LSOFTMAX
    checked_against = ("wy1iu/LargeMargin_Softmax_Loss src/caffe/layers/largemargin_inner_product_layer.cpp "
                       "and caffe.proto (LargeMarginInnerProductParameter)")

    def _params(self, node):
        return num_output_and_axis(node, "largemargin_inner_product_param")

    def check(self, node, diags):
        t = str(ForkParams(node, "largemargin_inner_product_param", LARGE_MARGIN_DEFAULTS).get("type"))
        if t not in LARGE_MARGIN_TYPES:
            diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': largemargin_inner_product_param.type "
                                                            f"must be SINGLE, DOUBLE, TRIPLE or QUADRUPLE, got {t}"))

    def infer_shapes(self, node, in_shapes):
        feat, label = in_shapes
        n, axis = self._params(node)
        axis = canonical_axis(node, axis, feat)
        if (feat[0] if feat else 1) != (label[0] if label else 1):
            bad(node, f"{feat[0] if feat else 1} feature rows but {label[0] if label else 1} labels", node.bottom_span(1),
                code=codes.SHAPE_MISMATCH)
        return [tuple(feat[:axis]) + (n,), (1,)]

    def param_shapes(self, node, in_shapes):
        n, axis = self._params(node)
        axis = canonical_axis(node, axis, in_shapes[0])
        return [(n, count(in_shapes[0], axis))]

    def filler_params(self, node):
        return [fork_filler(node, "largemargin_inner_product_param", "weight_filler")]

    def receptive_field(self, node, in_rfs):
        return [None, None]

    def cost(self, node, in_shapes, out_shapes):
        macs = prod(out_shapes[0]) * (prod(in_shapes[0]) // max(1, prod(out_shapes[0][:-1])))
        return {"macs": macs, "flops": 2 * macs}


# --- wy1iu's BN ------------------------------------------------------------------------------

# Layer types only wy1iu/LargeMargin_Softmax_Loss's Caffe defines: a net that uses one runs in
# that Caffe, so its BN layers are that fork's.
LSOFTMAX_ONLY_TYPES = frozenset({"LargeMarginInnerProduct"})


def lsoftmax_net_layer(net_param):
    """The first layer of the net (any phase) whose type only wy1iu's fork has, or None."""
    if net_param is None:
        return None
    for lp in net_param.layer:
        if lp.type in LSOFTMAX_ONLY_TYPES:
            return lp
    return None


def is_lsoftmax_bn(layer_param, loc, net_param) -> bool:
    return lsoftmax_net_layer(net_param) is not None


# wy1iu/LargeMargin_Softmax_Loss src/caffe/proto/caffe.proto BNParameter: slope_filler = 1,
# bias_filler = 2, momentum = 3 [default 0.9], eps = 4 [default 1e-5], frozen = 5 [false]: the
# fields, numbers and defaults of yjxiong's (PSPNet's) BN, so the definition alone cannot tell
# the two apart.
LSOFTMAX_BN_DEFAULTS = {"momentum": 0.9, "eps": 1e-5, "frozen": False}


def lsoftmax_bn_frozen(extra) -> bool:
    block = (extra.get("bn_param") or [{}])[-1]
    vals = block.get("frozen") if isinstance(block, dict) else None
    return bool(vals) and forks.as_bool(vals[-1]) is True


@register_variant("BN", is_lsoftmax_bn)
class LSoftmaxBN(BN):
    """wy1iu/LargeMargin_Softmax_Loss src/caffe/layers/bn_layer.cpp: four blobs of shape
    (1, C): slope, bias, the running mean, and the running INVERSE standard deviation (the
    moving average of (var + eps)^-1/2; initialised to 0 and 1). In TEST, or when frozen, the
    forward is (x - mean) * inv_std * slope + bias with the stored blobs; in TRAIN it uses the
    batch's mean and (E[(x - mean)^2] + eps)^-1/2 over (N, H, W). Chosen, with a W218, for the
    BN layers of a net that uses a layer type only this fork defines (LargeMarginInnerProduct):
    hszhao/PSPNet's BN reads the same bn_param but keeps (1, C, 1, 1) blobs and the variance."""

    fork_defaults = LSOFTMAX_BN_DEFAULTS
    variant = "in a net with LargeMarginInnerProduct"
    origin = forks.LSOFTMAX
    checked_against = "wy1iu/LargeMargin_Softmax_Loss src/caffe/layers/bn_layer.cpp and caffe.proto (BNParameter)"

    def pspnet_style(self, node) -> bool:
        return True

    def check(self, node, diags):
        if any(d.code == codes.FORK_SEMANTICS.id for d in diags):
            return          # said once, at the net's first BN layer
        why = f"the net has a {' or '.join(sorted(LSOFTMAX_ONLY_TYPES))} layer, a type only that fork defines"
        diags.add(codes.FORK_SEMANTICS.at(
            node.span, layer=node.name, type=node.type, forks="wy1iu/LargeMargin_Softmax_Loss and hszhao/PSPNet (yjxiong)",
            chosen="wy1iu/LargeMargin_Softmax_Loss", why=why,
            notes=["both read bn_param { slope_filler bias_filler momentum eps frozen }; wy1iu's keeps (1, C) "
                   "blobs and stores the inverse standard deviation in blob 3, PSPNet's (1, C, 1, 1) blobs and "
                   "the variance", "the same holds for every BN layer of this net"]))

    def infer_shapes(self, node, in_shapes):
        # Reshape: ReshapeLike; the forward reads num/channels/height/width (at most 4 axes).
        legacy4(node, in_shapes[0])
        if len(in_shapes[0]) < 2:
            bad(node, f"needs a channel axis, got {fmt_shape(in_shapes[0])}", node.bottom_span(0))
        return [tuple(in_shapes[0])]

    def param_shapes(self, node, in_shapes):
        return [(1, in_shapes[0][1])] * 4

    def to_onnx(self, node, g):
        """Mul and Add with the stored mean, inverse std, slope and bias (TEST or frozen); the
        batch's statistics (ReduceMean over N, H, W) in TRAIN."""
        rank = len(g.in_shape(0))
        shape = (1, g.in_shape(0)[1]) + (1,) * (rank - 2)
        axes = [0] + list(range(2, rank))
        x = g.x(0)
        if g.phase == "TEST" or lsoftmax_bn_frozen(node.extra):
            centred = g.op("Sub", [x, g.param(2, "mean", shape)], g.tmp("centred"))
            inv = g.param(3, "inv_std", shape)
        else:
            eps = float(ForkParams(node, "bn_param", LSOFTMAX_BN_DEFAULTS).get("eps"))
            mean = g.mean(x, axes)
            centred = g.op("Sub", [x, mean], g.tmp("centred"))
            var = g.mean(g.op("Mul", [centred, centred], g.tmp("sq")), axes)
            inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [var, g.const(eps, "eps")], g.tmp("var_eps"))],
                                               g.tmp("std"))], g.tmp("inv_std"))
        normed = g.op("Mul", [centred, inv], g.tmp("normed"))
        scaled = g.op("Mul", [normed, g.param(0, "slope", shape)], g.tmp("scaled"))
        g.op("Add", [scaled, g.param(1, "bias", shape)], g.y(0))
