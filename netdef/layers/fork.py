"""Layer types from Caffe forks whose semantics are public, so their shapes can be inferred.

Their parameters are not in netdef's (BVLC) schema: the parser keeps them as plain values in the
layer Loc's `extra` (e.g. extra["permute_param"] == [{"order": [0, 2, 3, 1]}]). Each parameter
message's defaults are declared once below, as the fork's own .proto declares them:
  SSD (weiliu89/caffe): Permute, Normalize, PriorBox, DetectionOutput, pooling's ceil_mode
  SegNet (alexgkendall/caffe-segnet): Upsample (two bottoms: data and pooling mask), BN
  DeepLab / PSPNet: Interp
  MobileNet forks: ReLU6; ShuffleNet forks: ShuffleChannel
  Fast R-CNN: ROIPooling, SmoothL1Loss
"""
from __future__ import annotations

from fractions import Fraction

from .. import codes
from ..ir import RF
from ..proto import pb
from .base import Layer, bad, fmt_shape, need_rank, prod, register


class ForkParams:
    """Read access to a fork parameter message kept in node.extra, with the fork's defaults."""

    def __init__(self, node, field: str, defaults: dict):
        raw = node.extra.get(field) or [{}]
        self.values = raw[-1] if isinstance(raw[-1], dict) else {}
        self.defaults = defaults
        self.node = node
        self.field = field

    def has(self, name: str) -> bool:
        return bool(self.values.get(name))

    def get(self, name: str):
        vals = self.values.get(name)
        if vals:
            return vals[-1]
        return self.defaults.get(name)

    def all(self, name: str) -> list:
        return list(self.values.get(name) or [])

    def span(self, name: str | None = None):
        # The parser keeps no locations inside blocks the schema lacks: point at the layer.
        return self.node.span


def _int(node, params, name):
    v = params.get(name)
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):  # OverflowError: scale: -inf
        bad(node, f"{params.field}.{name} must be an integer, got {v!r}", params.span(name))


@register("Permute")
class Permute(Layer):
    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        n = len(shape)
        p = ForkParams(node, "permute_param", {})
        order = []
        for o in p.all("order"):
            if not isinstance(o, int) or not 0 <= o < n:
                bad(node, f"permute order {o!r} is not an axis of the {n}-D bottom {fmt_shape(shape)}",
                    p.span("order"), code=codes.BAD_AXIS)
            if o in order:
                bad(node, f"axis {o} appears twice in the permute order", p.span("order"), code=codes.BAD_AXIS)
            order.append(o)
        # SSD's PermuteLayer appends the axes the order leaves out, in their original order.
        order += [i for i in range(n) if i not in order]
        node.meta["permute_order"] = order
        return [tuple(shape[i] for i in order)]

    def receptive_field(self, node, in_rfs):
        order = node.meta.get("permute_order", [])
        keeps_spatial = order[-2:] == [len(order) - 2, len(order) - 1]
        return [in_rfs[0] if keeps_spatial else None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Transpose."""
        order = node.meta.get("permute_order")
        if order is None:
            g.fail("the permute order is unknown")
        g.op("Transpose", [g.x(0)], g.y(0), perm=list(order))


_NORMALIZE = {"across_spatial": True, "channel_shared": True, "eps": 1e-10}


@register("Normalize")
class Normalize(Layer):
    elementwise = True

    def param_shapes(self, node, in_shapes):
        p = ForkParams(node, "norm_param", _NORMALIZE)
        # SSD's NormalizeLayer makes a shared scale a blob with no axes (vector<int>(0)).
        return [()] if p.get("channel_shared") else [(in_shapes[0][1],)]

    def filler_params(self, node):
        p = ForkParams(node, "norm_param", _NORMALIZE)
        raw = p.get("scale_filler")
        f = pb.FillerParameter()
        if isinstance(raw, dict):
            f.type = str((raw.get("type") or ["constant"])[-1])
            f.value = float((raw.get("value") or [1.0])[-1])
        else:
            f.type, f.value = "constant", 1.0  # NormalizeLayer's default scale
        return [f]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 4 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """SSD's L2 normalisation with its learnt per-channel (or shared) scale."""
        p = ForkParams(node, "norm_param", _NORMALIZE)
        shape = g.in_shape(0)
        eps = float(p.get("eps"))
        sq = g.op("Mul", [g.x(0), g.x(0)], g.tmp("sq"))
        # SSD's NormalizeLayer: sqrt(sum of squares + eps), over C*H*W or over channels per pixel.
        axes = list(range(1, len(shape))) if p.get("across_spatial") else [1]
        ssum = g.reduce("ReduceSum", sq, axes, 1)
        norm = g.op("Sqrt", [g.op("Add", [ssum, g.const(eps, "eps")], g.tmp("sum_eps"))], g.tmp("norm"))
        y = g.op("Div", [g.x(0), norm], g.tmp("normed"))
        sshape = () if p.get("channel_shared") else (shape[1],) + (1,) * (len(shape) - 2)
        g.op("Mul", [y, g.param(0, "scale", sshape if sshape else (1,))], g.y(0))


_PRIOR_BOX = {"flip": True, "clip": False, "offset": 0.5}


@register("PriorBox")
class PriorBox(Layer):
    bottoms = (2, 2)

    def num_priors(self, node) -> int:
        p = ForkParams(node, "prior_box_param", _PRIOR_BOX)
        mins, maxs = p.all("min_size"), p.all("max_size")
        if not mins:
            bad(node, "prior_box_param has no min_size", p.span(), code=codes.BAD_PARAM)
        ratios = [1.0]
        for ar in p.all("aspect_ratio"):
            if not isinstance(ar, (int, float)) or ar <= 0:
                bad(node, f"aspect_ratio must be a positive number, got {ar!r}", p.span("aspect_ratio"))
            if all(abs(ar - r) >= 1e-6 for r in ratios):
                ratios.append(ar)
                if p.get("flip"):
                    ratios.append(1.0 / ar)
        n = len(ratios) * len(mins)
        if maxs:
            if len(maxs) != len(mins):
                bad(node, f"{len(maxs)} max_size values for {len(mins)} min_size values", p.span("max_size"))
            for lo, hi in zip(mins, maxs):
                if hi <= lo:
                    bad(node, f"max_size {hi} must be greater than min_size {lo}", p.span("max_size"))
            n += len(maxs)
        return n

    def infer_shapes(self, node, in_shapes):
        feat = in_shapes[0]
        need_rank(node, feat, 4)
        # (1, 2, H*W*priors*4): box corners, then their variances.
        return [(1, 2, feat[2] * feat[3] * self.num_priors(node) * 4)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}


@register("DetectionOutput")
class DetectionOutput(Layer):
    """SSD's NMS head. Its row count depends on the data; like Caffe's setup, netdef reports one
    row of 7 values (image, label, score, xmin, ymin, xmax, ymax)."""

    bottoms = (3, 4)

    def infer_shapes(self, node, in_shapes):
        return [(1, 1, 1, 7)]

    def receptive_field(self, node, in_rfs):
        return [None]


_UPSAMPLE = {"scale": 2, "pad_out_h": False, "pad_out_w": False}


@register("Upsample")
class Upsample(Layer):
    """SegNet's max-unpooling (bottoms: data, pooling mask); one-bottom ports scale by nearest
    neighbour. Output: upsample_h/w if given, else H*scale_h - pad_out_h (SegNet)."""

    bottoms = (1, 2)

    def sizes(self, node, shape):
        p = ForkParams(node, "upsample_param", _UPSAMPLE)
        if p.has("upsample_h") and p.has("upsample_w"):
            return _int(node, p, "upsample_h"), _int(node, p, "upsample_w"), None
        sh = _int(node, p, "scale_h") if p.has("scale_h") else _int(node, p, "scale")
        sw = _int(node, p, "scale_w") if p.has("scale_w") else _int(node, p, "scale")
        if sh < 1 or sw < 1:
            bad(node, f"upsample scale must be positive, got {sh} x {sw}", p.span("scale"))
        h = shape[2] * sh - int(bool(p.get("pad_out_h")))
        w = shape[3] * sw - int(bool(p.get("pad_out_w")))
        return h, w, (sh, sw)

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        if len(in_shapes) > 1:
            mask = in_shapes[1]
            if mask != shape:
                bad(node, f"the pooling mask '{node.inputs[1].label}' {fmt_shape(mask)} must have the shape of "
                          f"the data '{node.inputs[0].label}' {fmt_shape(shape)}", node.bottom_span(1),
                    code=codes.SHAPE_MISMATCH)
        h, w, _ = self.sizes(node, shape)
        return [(shape[0], shape[1], h, w)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape = node.inputs[0].meta["shape"]
        h, w, _ = self.sizes(node, shape)
        scale = (Fraction(h, shape[2]), Fraction(w, shape[3]))
        jump = tuple(_frac(rf.stride[i] / scale[i]) for i in range(min(2, len(rf.size))))
        return [RF(rf.size, jump + tuple(rf.stride[2:]), rf.center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}


def _frac(x):
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


@register("Interp")
class Interp(Layer):
    """DeepLab/PSPNet bilinear resize (align-corners). zoom: (H-1)*zoom + 1; shrink:
    (H-1)/shrink + 1; both: shrink then zoom; or an explicit height/width; pad_beg/pad_end
    (<= 0) crop the input first."""

    bottoms = (1, 2)

    def sizes(self, node, in_shapes):
        p = ForkParams(node, "interp_param", {"pad_beg": 0, "pad_end": 0})
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        beg, end = int(p.get("pad_beg")), int(p.get("pad_end"))
        if beg > 0 or end > 0:
            bad(node, "Interp supports only pad_beg/pad_end <= 0 (cropping)", p.span("pad_beg"))
        eff = [shape[2] + beg + end, shape[3] + beg + end]
        zoom, shrink = p.has("zoom_factor"), p.has("shrink_factor")
        if shrink and not zoom:
            s = _int(node, p, "shrink_factor")
            out = [(e - 1) // s + 1 for e in eff]
        elif zoom and not shrink:
            z = _int(node, p, "zoom_factor")
            out = [e + (e - 1) * (z - 1) for e in eff]
        elif p.has("height") and p.has("width"):
            out = [_int(node, p, "height"), _int(node, p, "width")]
        elif zoom and shrink:
            s, z = _int(node, p, "shrink_factor"), _int(node, p, "zoom_factor")
            out = [(e - 1) // s + 1 for e in eff]
            out = [o + (o - 1) * (z - 1) for o in out]
        elif len(in_shapes) > 1:
            out = list(in_shapes[1][2:4])
        else:
            bad(node, "interp_param gives no output size", p.span(),
                notes=["give zoom_factor, shrink_factor, or height and width"])
        if min(eff) <= 0 or min(out) <= 0:
            bad(node, f"the output size would be {out[0]} x {out[1]} from an input of {fmt_shape(shape)}",
                p.span(), code=codes.BAD_GEOMETRY)
        return out

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        h, w = self.sizes(node, in_shapes)
        return [(shape[0], shape[1], h, w)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        shape = node.inputs[0].meta["shape"]
        out = node.outputs[0].meta["shape"]
        # Align-corners: output o samples input o * (H_in - 1) / (H_out - 1).
        jump = []
        for i in range(min(2, len(rf.size))):
            hi, ho = shape[2 + i], out[2 + i]
            ratio = Fraction(hi - 1, ho - 1) if ho > 1 else Fraction(1)
            jump.append(_frac(rf.stride[i] * ratio))
        return [RF(tuple(rf.size[i] + rf.stride[i] for i in range(len(rf.size))), tuple(jump), rf.center)]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 8 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX Resize, linear, align_corners (caffe_cpu_interp2 maps corner to corner)."""
        out = g.out_shape(0)
        p = ForkParams(node, "interp_param", {"pad_beg": 0, "pad_end": 0})
        beg, end = int(p.get("pad_beg")), int(p.get("pad_end"))
        x = g.x(0)
        if beg or end:
            # pad_beg/pad_end <= 0 crop the input before resizing.
            h, w = g.in_shape(0)[2:]
            x = g.op("Slice", [x, g.ints([-beg, -beg], "crop_starts"), g.ints([h + end, w + end], "crop_ends"),
                               g.ints([2, 3], "crop_axes")], g.tmp("cropped"))
        # PSPNet's caffe_cpu_interp2 maps corners to corners: (in - 1) / (out - 1).
        sizes = g.ints(list(out), "sizes")
        if any(g.out_dyn(0)):
            shp = g.op("Shape", [g.x(0)], g.tmp("shape"))
            nc = g.op("Slice", [shp, g.ints([0], "s0"), g.ints([2], "s2")], g.tmp("nc"))
            sizes = g.op("Concat", [nc, g.ints(list(out[2:]), "hw")], g.tmp("sizes"), axis=0)
        g.op("Resize", [x, "", "", sizes], g.y(0), mode="linear", coordinate_transformation_mode="align_corners")


@register("ReLU6")
class ReLU6(Layer):
    elementwise = True

    def to_onnx(self, node, g):
        """ONNX Clip to [0, 6]."""
        g.op("Clip", [g.x(0), g.const(0.0, "min"), g.const(6.0, "max")], g.y(0))


@register("ShuffleChannel")
class ShuffleChannel(Layer):
    elementwise = True

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """Reshape to (N, group, C/group, ...), swap the two, reshape back."""
        groups = int(ForkParams(node, "shuffle_channel_param", {"group": 1}).get("group"))
        n, c, *rest = g.in_shape(0)
        if c % groups:
            g.fail(f"{c} channels do not split into {groups} groups")
        dyn = g.in_dyn(0)
        a = g.reshape(g.x(0), [n, groups, c // groups, *rest], [dyn[0], False, False] + [False] * len(rest))
        t = g.op("Transpose", [a], g.tmp("transpose"), perm=[0, 2, 1] + list(range(3, 3 + len(rest))))
        g.reshape(t, g.out_shape(0), g.out_dyn(0), g.y(0))


@register("BN")
class BN(Layer):
    """Batch normalisation with its own scale and shift, from two families of forks:
    SegNet's (bn_param { scale_filler shift_filler bn_mode }) keeps 2 blobs, scale and shift;
    the yjxiong/PSPNet one (bn_param { slope_filler bias_filler momentum frozen }) keeps 4:
    slope, bias, then the running mean and variance (statistics). Every blob is (1, C, 1, 1)."""

    elementwise = True

    def pspnet_style(self, node) -> bool:
        raw = (node.extra.get("bn_param") or [{}])[-1]
        return isinstance(raw, dict) and any(k in raw for k in ("slope_filler", "momentum", "frozen"))

    def param_shapes(self, node, in_shapes):
        c = in_shapes[0][1] if len(in_shapes[0]) > 1 else 1
        return [(1, c, 1, 1)] * (4 if self.pspnet_style(node) else 2)

    def stat_blobs(self, node):
        return {2, 3} if self.pspnet_style(node) else set()

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


@register("ROIPooling")
class ROIPooling(Layer):
    """Fast R-CNN: max-pool each region of interest (bottom 1 rows) to pooled_h x pooled_w."""

    bottoms = (2, 2)

    def infer_shapes(self, node, in_shapes):
        feat, rois = in_shapes
        need_rank(node, feat, 4)
        p = ForkParams(node, "roi_pooling_param", {})
        ph, pw = _int(node, p, "pooled_h"), _int(node, p, "pooled_w")
        if ph <= 0 or pw <= 0:
            bad(node, "roi_pooling_param needs positive pooled_h and pooled_w", p.span())
        return [(rois[0], feat[1], ph, pw)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def to_onnx(self, node, g):
        """ONNX MaxRoiPool, whose definition is Fast R-CNN's: corners rounded after scaling,
        bins floor/ceil over the rounded box, empty bins 0. Rows of bottom 1 are
        (batch index, x1, y1, x2, y2)."""
        p = ForkParams(node, "roi_pooling_param", {"spatial_scale": 1.0})
        rois = g.in_shape(1)
        if len(rois) < 2 or rois[1] != 5 or any(d != 1 for d in rois[2:]):
            g.fail(f"the regions must be (R, 5) rows, got {rois}")
        r = g.op("Reshape", [g.x(1), g.ints([rois[0], 5], "rois_shape")], g.tmp("rois"))
        g.op("MaxRoiPool", [g.x(0), r], g.y(0), pooled_shape=[int(p.get("pooled_h")), int(p.get("pooled_w"))],
             spatial_scale=float(p.get("spatial_scale")))


@register("SmoothL1Loss")
class SmoothL1Loss(Layer):
    loss = True
    auto_tops = True  # a LossLayer subclass in its fork
    bottoms = (2, 4)

    def infer_shapes(self, node, in_shapes):
        a, b = in_shapes[0], in_shapes[1]
        if prod(a) != prod(b):
            bad(node, f"the inputs must have the same number of elements: {fmt_shape(a)} vs {fmt_shape(b)}",
                node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [()]

    def receptive_field(self, node, in_rfs):
        return [None]


@register("MultiBoxLoss")
class MultiBoxLoss(Layer):
    loss = True
    auto_tops = True  # a LossLayer subclass in its fork
    bottoms = (4, 4)

    def infer_shapes(self, node, in_shapes):
        return [()]

    def receptive_field(self, node, in_rfs):
        return [None]


class ForkSource(Layer):
    source = True
    bottoms = (0, 0)
    tops = (1, None)

    def source_shapes(self, node):
        return [f"the {node.type} data layer of a Caffe fork reads its shapes from the data"] * len(node.outputs)

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)


for _t in ("AnnotatedData", "DenseImageData", "VideoData"):
    register(_t)(type(_t, (ForkSource,), {"__doc__": f"{_t}: a fork's data layer (shapes from --input)."}))


@register("DetectionEvaluate")
class DetectionEvaluate(Layer):
    bottoms = (2, 3)
    opaque = "its output has one row per detection, a number known only from the data"
