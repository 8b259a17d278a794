"""An independent NumPy implementation of Caffe's TEST-phase forward pass.

Written from Caffe's C++ (src/caffe/layers/*_layer.cpp) and the forks' sources, not from
netdef's ONNX lowering, so that the two can check each other: `netdef verify` runs both and
reports the first layer whose outputs disagree. Values are computed in float64 and stored as
float32 after every layer, as Caffe stores its blobs.

    blobs = forward(net_param, weights, {"data": x})        # blob name -> array (final values)
    for step in trace(net_param, weights, inputs): ...      # one Step per layer, in order

One module per layer family, as in netdef/layers/ (conv, pool, dense, activation, norm, merge,
shape, resize, recurrent, detection, roi, yolo, ocr, ...); base.py holds the registry
(`@op("Type")`), the context an op reads (Ctx: fork fields, with the defaults the layer classes declare) and shared helpers;
net.py the forward pass over a net. The loops run over kernel offsets, never over output pixels,
which keeps the zoo nets' forward passes to seconds.
"""
from __future__ import annotations

from .base import _OPS, FLT_MAX, Ctx, ReferenceError, included, op, supported_types  # noqa: F401  (_OPS: the registry)
from .net import DATA_LAYERS, TRAINING_ONLY, Step, forward, trace
from . import activation, conv, dense, detection, merge, norm, pool, recurrent, resize, shape  # noqa: F401,E402,E501  (register their ops)
from . import attention, face, ocr  # noqa: F401,E402  (after the families whose types face's variants extend)
from . import coordmap, crf, roi, video, yolo  # noqa: F401,E402  (register their ops)

__all__ = ["ReferenceError", "Step", "forward", "trace", "included", "op", "supported_types", "TRAINING_ONLY",
           "DATA_LAYERS"]
