"""Layer types from Caffe forks whose semantics are public, so their shapes can be inferred.

Their parameters are not in netdef's (BVLC) schema: the parser keeps them as plain values in the
layer Loc's `extra` (e.g. extra["permute_param"] == [{"order": [0, 2, 3, 1]}]). Each parameter
message's defaults are declared once below, as the fork's own .proto declares them:
  SSD (weiliu89/caffe): Permute, Normalize, PriorBox, DetectionOutput, pooling's ceil_mode
  (Upsample and Interp live in resize.py, BN in norm.py, ReLU6 and Mish in activation.py,
  ShuffleChannel and Reorg in shape.py, the depthwise convolutions in conv.py, Axpy in merge.py.)
  Fast R-CNN: ROIPooling, SmoothL1Loss
"""
from __future__ import annotations


from .. import codes
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
