"""Layer types, one module per family; each type is a class registered by its Caffe name.

    from netdef import layers
    impl = layers.get("Convolution")          # the registered instance, or None
    layers.known_types()                      # every registered type name, sorted

See base.py for the methods a layer class provides.
"""
from __future__ import annotations

from .base import Layer, LayerError, close_types, get, known_types, register, resolve
from . import activation, conv, data, dense, detection, fork, loss, merge, norm, pool, recurrent, resize, shape  # noqa: F401,E501  (registers)
from . import attention, face, ocr, yolo  # noqa: F401,E402  (fork layers of issue 11: registers)
from . import roi  # noqa: F401,E402  (registers)
from . import crf, video  # noqa: F401,E402  (registers)

__all__ = ["Layer", "LayerError", "register", "get", "resolve", "known_types", "close_types"]
