"""Layer types from Caffe forks whose semantics are public, so their shapes can be inferred.

Their parameters are not in netdef's (BVLC) schema: the parser keeps them as plain values in the
layer Loc's `extra` (e.g. extra["permute_param"] == [{"order": [0, 2, 3, 1]}]). Each parameter
message's defaults are declared once below, as the fork's own .proto declares them:
  SSD (weiliu89/caffe): pooling's ceil_mode
  (Upsample and Interp live in resize.py, BN in norm.py, ReLU6 and Mish in activation.py,
  ShuffleChannel and Reorg in shape.py, the depthwise convolutions in conv.py, Axpy in merge.py;
  the detection family, SSD's Permute, Normalize, PriorBox, DetectionOutput, R-CNN's ROIPooling,
  PSROIPooling, SmoothL1Loss and the YOLO ports' outputs, in detection.py.)
"""
from __future__ import annotations

from .base import Layer, bad, register


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
