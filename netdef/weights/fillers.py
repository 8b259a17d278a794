"""Caffe's fillers (include/caffe/filler.hpp), and every layer's blobs without a .caffemodel.

Without a .caffemodel, every blob comes from its layer's filler, as in a freshly constructed
Caffe net, with one deliberate difference: statistics (BatchNorm's mean, variance and
moving-average factor) start from the neutral values their layer class declares
(Layer.neutral_statistics; norm.py's BatchNorm says why), so that an untrained BatchNorm computes
x / sqrt(1 + eps) rather than Caffe's x / sqrt(eps). `netdef init` writes them so; trained
weights replace them wherever the file has the layer.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from .. import codes, layers
from ..diagnostics import Diagnostics
from ..proto import pb
from .bind import ParamSpec, bind, fmt_shape
from .caffemodel import WeightSet, memory_limit


class FillerError(Exception):
    pass


def _legacy_dim(shape: tuple[int, ...], index: int) -> int:
    # Blob::LegacyShape: axes past the end count as 1; more than four axes is an error.
    if len(shape) > 4:
        raise FillerError(f"it has {len(shape)} axes; this filler reads num/channels, defined for at most 4")
    return shape[index] if index < len(shape) else 1


def _fan(shape, fp: pb.FillerParameter) -> float:
    count = math.prod(shape)
    fan_in = count // _legacy_dim(shape, 0)
    fan_out = count // _legacy_dim(shape, 1)
    if fp.variance_norm == pb.FillerParameter.AVERAGE:
        return (fan_in + fan_out) / 2.0
    if fp.variance_norm == pb.FillerParameter.FAN_OUT:
        return float(fan_out)
    return float(fan_in)


def _no_sparse(fp) -> None:
    if fp.sparse != -1:
        raise FillerError(f"'sparse: {fp.sparse}' is supported by the gaussian filler only")


FILLERS = ("constant", "uniform", "gaussian", "positive_unitball", "xavier", "msra", "bilinear")


def check_filler(shape, fp: pb.FillerParameter) -> None:
    """Raise KeyError (unknown type) or FillerError where Caffe's filler would CHECK-fail."""
    shape = tuple(int(d) for d in shape)
    kind = fp.type
    if kind not in FILLERS:
        raise KeyError(kind)
    count = math.prod(shape)
    if count == 0:
        raise FillerError("the blob is empty")
    # Filling makes the float32 blob (4 bytes a value; a sparse gaussian's mask adds 4 for its
    # draws and 1 for the comparison): a blob whose filling cannot fit is refused here, at its
    # layer, rather than dying of MemoryError (or the OOM killer) halfway through the output.
    sparse = kind == "gaussian" and fp.sparse >= 0
    need, limit = count * (9 if sparse else 4), memory_limit() // 2
    if need > limit:
        raise FillerError(f"filling its {count:,} values needs {need / 2**30:.1f} GiB of memory, more than "
                          f"the {limit / 2**30:.1f} GiB netdef allows itself (half of what this process may use)")
    if kind == "gaussian":
        if fp.std <= 0:
            raise FillerError(f"std must be positive, got {fp.std:g} (caffe_rng_gaussian)")
        if fp.sparse < -1:
            raise FillerError(f"sparse must be -1 (off) or at least 0, got {fp.sparse}")
        if fp.sparse >= 0 and np.float32(fp.sparse) / np.float32(shape[0] if shape else 1) > 1:
            raise FillerError(f"sparse {fp.sparse} is more than the {shape[0] if shape else 1} outputs (axis 0)")
        return
    _no_sparse(fp)
    if kind == "uniform" and fp.min > fp.max:
        raise FillerError(f"min {fp.min:g} is greater than max {fp.max:g}")
    if kind in ("positive_unitball", "xavier", "msra"):
        _legacy_dim(shape, 0)
    if kind == "bilinear":
        if len(shape) != 4:
            raise FillerError(f"it has {len(shape)} axes; bilinear needs a 4-axis blob")
        if shape[2] != shape[3]:
            raise FillerError(f"the kernel is {shape[2]}x{shape[3]}; bilinear needs a square kernel")


# Caffe's caffe_rng_gaussian<float> and caffe_rng_uniform<float> draw with boost's
# normal_distribution<float> and uniform_real<float>: float32 values of the distribution. NumPy's
# float32 draws (standard_normal's float32 ziggurat, random's 24-bit uniforms) are the same
# distributions at float32 precision, in half the memory and time of float64 draws cast down:
# VGG-16's fc6 alone holds 103M values. Scaling happens in place, in float32, as Caffe's does.

def _normal(rng: np.random.Generator, mean, std, shape) -> np.ndarray:
    data = rng.standard_normal(shape, dtype=np.float32)
    data *= np.float32(std)
    if mean:
        data += np.float32(mean)
    return data


def _uniform(rng: np.random.Generator, low, high, shape) -> np.ndarray:
    data = rng.random(shape, dtype=np.float32)
    data *= np.float32(high) - np.float32(low)
    data += np.float32(low)
    return data


def fill(shape, fp: pb.FillerParameter, rng: np.random.Generator) -> np.ndarray:
    """One blob filled as Caffe's filler of that type would, from `rng` (float32).

    Caffe draws from boost's mt19937; the distributions and their parameters are Caffe's, the
    bits are NumPy's: the same seed gives the same values, not Caffe's values."""
    shape = tuple(int(d) for d in shape)
    check_filler(shape, fp)
    count = math.prod(shape)
    kind = fp.type
    if kind == "constant":
        return np.full(shape, fp.value, dtype=np.float32)
    if kind == "uniform":
        return _uniform(rng, fp.min, fp.max, shape)
    if kind == "gaussian":
        data = _normal(rng, fp.mean, fp.std, shape)
        if fp.sparse >= 0:
            # Meant for weight matrices: on average `sparse` non-zero inputs per output row.
            p = np.float32(fp.sparse) / np.float32(shape[0] if shape else 1)
            data *= rng.random(shape, dtype=np.float32) < p
        return data
    if kind == "positive_unitball":
        num = _legacy_dim(shape, 0)
        data = rng.random((num, count // num), dtype=np.float32)
        data /= data.sum(axis=1, keepdims=True, dtype=np.float32)
        return data.reshape(shape)
    if kind == "xavier":
        scale = np.sqrt(np.float32(3.0) / np.float32(_fan(shape, fp)))
        return _uniform(rng, -scale, scale, shape)
    if kind == "msra":
        std = np.sqrt(np.float32(2.0) / np.float32(_fan(shape, fp)))
        return _normal(rng, 0.0, std, shape)
    # bilinear: the same (K, K) interpolation kernel in every (out, in) slot.
    k = shape[3]
    f = math.ceil(k / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    x = np.arange(k, dtype=np.float64)
    line = 1 - np.abs(x / f - c)
    kernel = np.outer(line, line).astype(np.float32)
    return np.broadcast_to(kernel, shape).copy()


def blob_rng(seed: int, layer: str, index: int) -> np.random.Generator:
    """A generator per parameter blob, derived from the seed, the layer's name and the blob's
    index: a blob's initial values do not change when other layers are added or reordered, and
    each blob can be made on its own, when it is needed."""
    digest = hashlib.sha256(layer.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, index, *words])))


class Lazy:
    """A blob made on demand (fillers): `.shape` now, the array when called."""
    __slots__ = ("shape", "_make")

    def __init__(self, shape, make):
        self.shape = tuple(shape)
        self._make = make

    def __call__(self) -> np.ndarray:
        return self._make()


def _constant(value: float) -> pb.FillerParameter:
    return pb.FillerParameter(type="constant", value=value)


def stand_in_filler(shape) -> pb.FillerParameter:
    """What verify fills a blob with whose filler makes it all 0 (Caffe's default filler, which
    deploy files leave as it is: a comparison of zeros proves nothing): weights of variance
    1/fan_in, as Caffe's xavier, so that activations keep their size through the net; a small
    gaussian for vectors."""
    if len(shape) >= 2 and shape[0]:
        # Caffe's xavier's variance (fan_in = count / num), as a gaussian: xavier itself reads
        # num/channels of at most 4 axes, and C3D's blobs have 5.
        return pb.FillerParameter(type="gaussian", std=float(math.sqrt(shape[0] / math.prod(shape))))
    return pb.FillerParameter(type="gaussian", std=0.1)


def init_layer(spec: ParamSpec, seed: int, diags: Diagnostics, lazy: bool = False, stand_in: bool = False):
    """A layer's blobs from its fillers (arrays, or Lazy blobs with lazy=True); None after
    reporting a filler Caffe would reject. Statistics blobs start from their layer class's
    neutral_statistics; any other blob without a filler is zero, as in Caffe. With
    stand_in=True (verify), a blob that would be all 0 (no filler, or constant 0) is filled by
    stand_in_filler instead."""
    out = []
    impl = layers.get(spec.type)
    neutral = impl.neutral_statistics if impl is not None else {}
    for i, shape in enumerate(spec.shapes):
        shape = tuple(int(d) for d in shape)
        fp = spec.fillers[i] if i < len(spec.fillers) else None
        if i in spec.stats and i in neutral:
            fp = _constant(neutral[i])
        span = (spec.filler_spans[i] if i < len(spec.filler_spans) else None) or spec.span
        if (stand_in and i not in spec.stats and shape and math.prod(shape)
                and (fp is None or (fp.type == "constant" and fp.value == 0))):
            fp = stand_in_filler(shape)
        if fp is None:
            make = (lambda shape=shape: np.zeros(shape, np.float32))
        else:
            try:
                check_filler(shape, fp)
            except KeyError:
                diags.add(codes.FILLER_UNKNOWN.at(span, type=fp.type, notes=["Caffe's fillers: " + ", ".join(FILLERS)]))
                return None
            except FillerError as e:
                diags.add(codes.FILLER_INVALID.at(span, type=fp.type, index=i, layer=spec.name,
                                                  shape=fmt_shape(shape), why=str(e)))
                return None
            make = (lambda shape=shape, fp=fp, i=i: fill(shape, fp, blob_rng(seed, spec.name, i)))
        out.append(Lazy(shape, make) if lazy else make())
    return out


def resolve_weights(specs, weights: WeightSet | None, seed: int, diags: Diagnostics, lazy: bool = False,
                    allow_missing: bool = True, stand_in: bool = False) -> dict:
    """Every layer's blobs: from `weights` where it has them, from fillers otherwise (made on
    demand with lazy=True); without allow_missing, a layer the weights lack is an error (E505)."""
    specs = list(specs)
    bound = bind(specs, weights, diags, allow_missing) if weights is not None else {}
    out: dict[str, list] = {}
    for spec in specs:
        if not spec.shapes:
            continue
        if spec.name in bound:
            out[spec.name] = bound[spec.name]
        elif weights is None or spec.name not in weights or not weights[spec.name].blobs:
            arrays = init_layer(spec, seed, diags, lazy, stand_in)
            if arrays is not None:
                out[spec.name] = arrays
    return out
