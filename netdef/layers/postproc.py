"""What the detection families' ONNX lowerings share (detection.py, roi.py, yolo.py): numpy
imported when first used, FLT_MAX, float32 constants and casts, and the forks' boolean fields."""
from __future__ import annotations

class _LazyNumpy:
    """numpy, imported when first used: the layer registry imports this module for every
    command, and `netdef check` of a net without detection layers never needs numpy (its
    import alone is more than the rest of a small check; see tests/test_startup.py)."""

    def __getattr__(self, name):
        import numpy
        globals()["np"] = numpy
        return getattr(numpy, name)


np = _LazyNumpy()

FLT_MAX = 3.4028234663852886e+38   # float(np.finfo(np.float32).max), without importing numpy


def _f32(g, value, suffix: str) -> str:
    """A float32 constant whatever the compute type (the detection post-processing runs in
    float32: onnxruntime's NonMaxSuppression takes float32 boxes only)."""
    return g.const(value, suffix, float32=True)


def _to_f32(g, x: str) -> str:
    if not g.fp16:
        return x
    return g.op("Cast", [x], g.tmp("to_float32"), to=g.FLOAT)


def _from_f32(g, x: str, out: str) -> str:
    if not g.fp16:
        return g.op("Identity", [x], out)
    return g.op("Cast", [x], out, to=g.FLOAT16)


def _flag(v) -> bool:
    return bool(v) and str(v).lower() not in ("false", "0")
