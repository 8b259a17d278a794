"""Layer types from Caffe forks whose semantics are public, so their shapes can be inferred.

Their parameters are not in netdef's (BVLC) schema: the parser keeps them as plain values in the
layer Loc's `extra` (e.g. extra["permute_param"] == [{"order": [0, 2, 3, 1]}]). Each fork layer
class declares its parameter message's defaults once, as the fork's own .proto declares them, in
its `fork_defaults` (field -> default); ForkParams here and netdef.reference read them there.
  (Upsample and Interp live in resize.py, BN in norm.py, ReLU6 and Mish in activation.py,
  ShuffleChannel and Reorg in shape.py, the depthwise convolutions in conv.py, Axpy in merge.py;
  SSD's Permute, Normalize, PriorBox, DetectionOutput in detection.py; R-CNN's ROIPooling,
  PSROIPooling, SmoothL1Loss, Proposal in roi.py; the YOLO ports' outputs in yolo.py.)
"""
from __future__ import annotations

from .base import Layer, bad, get, register


class ForkParams:
    """Read access to a fork parameter message kept in node.extra, with the fork's defaults:
    those the node's layer class declares in `fork_defaults` (declared once, in its family file;
    netdef.reference reads them too), unless `defaults` is given."""

    def __init__(self, node, field: str, defaults: dict | None = None):
        raw = node.extra.get(field) or [{}]
        self.values = raw[-1] if isinstance(raw[-1], dict) else {}
        if defaults is None:
            impl = get(node.type)
            defaults = impl.fork_defaults if impl is not None else {}
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


def num_output_and_axis(node, message: str) -> tuple[int, int]:
    """`num_output` (required, positive) and `axis` (its default in the layer class's
    fork_defaults) of a fork's inner-product-like parameter message (SphereFace's
    margin_inner_product_param, caffe-face's center_loss_param)."""
    p = ForkParams(node, message)
    if not p.has("num_output"):
        bad(node, f"{message} has no num_output", p.span())
    n = _int(node, p, "num_output")
    if n <= 0:
        bad(node, f"num_output must be positive, got {n}", p.span())
    return n, _int(node, p, "axis")


def synopsys_pads(node, message: str):
    """Synopsys' asymmetric padding, (top, left, bottom, right), or None when it is not used.

    foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/proto/caffe.proto declares
    pad_l/pad_r/pad_t/pad_b (uint32, default 0) in ConvolutionParameter (36-39) and
    PoolingParameter (16-19); base_conv_layer.cpp and pooling_layer.cpp (LayerSetUp) use them
    when any is non-zero, 2-D only, and then refuse pad, pad_h/pad_w (and pad_type)."""
    sub = node.loc.msg(message) if node.loc is not None else None
    if sub is None:
        return None
    vals = []
    for name in ("pad_t", "pad_l", "pad_b", "pad_r"):
        raw = sub.extra.get(name)
        v = raw[-1] if raw else 0
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2**31 - 1:
            bad(node, f"{message}.{name} must be a non-negative integer, got {v!r}", node.span,
                notes=["Synopsys' caffe.proto declares it uint32"])
        vals.append(v)
    if not any(vals):
        return None
    msg = getattr(node.param, message)
    if len(msg.pad) if message == "convolution_param" else msg.HasField("pad"):
        bad(node, "both pad and pad_l/pad_r/pad_t/pad_b are given", node.field_span(message, "pad"),
            notes=["Synopsys' Caffe accepts one or the other"])
    if msg.HasField("pad_h") or msg.HasField("pad_w"):
        bad(node, "both pad_h/pad_w and pad_l/pad_r/pad_t/pad_b are given",
            node.field_span(message, "pad_h" if msg.HasField("pad_h") else "pad_w"),
            notes=["Synopsys' Caffe accepts one or the other"])
    return tuple(vals)


class ForkSource(Layer):
    family = "data"
    source = True
    bottoms = (0, 0)
    tops = (1, None)

    def source_shapes(self, node):
        return [f"the {node.type} data layer of a Caffe fork reads its shapes from the data"] * len(node.outputs)

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)


for _t in ("AnnotatedData", "DenseImageData", "VideoData"):
    register(_t)(type(_t, (ForkSource,), {"__doc__": f"{_t}: a fork's data layer (shapes from --input)."}))
