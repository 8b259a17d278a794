"""Layer types from Caffe forks whose semantics are public, so their shapes can be inferred.

Their parameters are not in netdef's (BVLC) schema: the parser keeps them as plain values in the
layer Loc's `extra` (e.g. extra["permute_param"] == [{"order": [0, 2, 3, 1]}]). Each parameter
message's defaults are declared once below, as the fork's own .proto declares them:
  SSD (weiliu89/caffe): pooling's ceil_mode
  SegNet (alexgkendall/caffe-segnet): Upsample (two bottoms: data and pooling mask), BN
  DeepLab / PSPNet: Interp
  MobileNet forks: ReLU6; ShuffleNet forks: ShuffleChannel
The detection family (SSD's Permute, Normalize, PriorBox, DetectionOutput; R-CNN's ROIPooling,
PSROIPooling, SmoothL1Loss; YOLO ports' outputs) lives in detection.py.
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
