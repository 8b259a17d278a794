"""Weights: reading and writing .caffemodel files, and Caffe's fillers.

A .caffemodel is a binary NetParameter whose layers carry their learnable blobs. Models are
large (ResNet-152: 240 MB, VGG-16: 550 MB), and the protobuf runtime would hold three copies of
every weight while decoding (the file, the message, the arrays). This module walks the wire
format itself instead: the file is read once into one buffer and every float blob becomes a
NumPy view into it, so the weights cost their size once. Writing streams blob by blob the same
way.

    ws = read_caffemodel("bvlc_alexnet.caffemodel")      # WeightSet; raises DiagnosticError
    ws["conv1"].blobs[0].shape                            # (96, 3, 11, 11)
    arrays = bind(specs, ws, diags)                       # name -> arrays, shape-checked
    write_caffemodel(path, "net", [("conv1", "Convolution", [w, b]), ...])

Without a .caffemodel, every blob comes from its layer's filler, as in a freshly constructed
Caffe net, with one deliberate difference: statistics. BatchNorm's mean, variance and
moving-average factor have no filler in Caffe (BatchNormLayer::LayerSetUp zero-fills them), and
with a factor of 0 Caffe's forward pass reads mean 0 and variance 0, so every BatchNorm divides
its input by sqrt(eps): x316 per layer at eps 1e-5, which overflows float32 within a few
layers and leaves deep nets (ResNet, Inception-v3, DenseNet, MobileNet) printing NaN. netdef
initialises statistics neutral instead: mean 0, variance 1, factor 1, so an untrained
BatchNorm computes x / sqrt(1 + eps). `netdef init` writes them so; trained weights replace
them wherever the file has the layer.
"""
from __future__ import annotations

import hashlib
import math
import os
import struct
import sys
from dataclasses import dataclass, field

import numpy as np

from . import codes
from .diagnostics import Diagnostics, DiagnosticError, Span, byte_span
from .ir import fmt_shape
from .proto import pb
from .wire import FIXED32 as _FIXED32, FIXED64 as _FIXED64, LEN as _LEN, VARINT as _VARINT
from .wire import encode_varint, field_key, len_prefix

# --- reading ---------------------------------------------------------------------------------

# NetParameter / LayerParameter / V1LayerParameter / V0LayerParameter / BlobProto field numbers
# (caffe.proto). Only what locates blobs is decoded; everything else is skipped over.
_NET_LAYER, _NET_LAYERS = 100, 2
_LAYER_NAME, _LAYER_TYPE, _LAYER_BLOBS = 1, 2, 7
_V1_NAME, _V1_TYPE, _V1_BLOBS, _V1_V0 = 4, 5, 6, 1
_V0_NAME, _V0_TYPE, _V0_BLOBS = 1, 2, 50
_BLOB_NUM, _BLOB_CHANNELS, _BLOB_HEIGHT, _BLOB_WIDTH = 1, 2, 3, 4
_BLOB_DATA, _BLOB_DOUBLE, _BLOB_SHAPE, _SHAPE_DIM = 5, 8, 7, 1


# V1 `layers { type: CONVOLUTION }` enum names -> current type strings (UpgradeV1LayerType).
_V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DATA": "Data",
    "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN", "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

# A buffer the size of the file is allocated up front; refuse files that cannot fit.
def _memory_limit() -> int:
    """The memory this process may use: physical memory, or less under `ulimit -v`."""
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        limit = 1 << 40
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft)
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-POSIX
        pass
    return limit


class _Corrupt(Exception):
    def __init__(self, pos: int, why: str):
        super().__init__(why)
        self.pos, self.why = pos, why


@dataclass
class LayerWeights:
    """The blobs one layer of a .caffemodel holds, in Caffe's order (weights, bias, ...)."""
    name: str
    type: str
    blobs: list[np.ndarray] = field(default_factory=list)
    # True where a blob gave only the legacy num/channels/height/width: Caffe then compares
    # it with the net's shape padded with leading 1s to four axes (Blob::ShapeEquals).
    legacy: list[bool] = field(default_factory=list)


class WeightSet:
    """Layer name -> LayerWeights, in file order. Arrays may be views into one file buffer."""

    def __init__(self, path: str = "<weights>", layers: dict[str, LayerWeights] | None = None):
        self.path = path
        self.layers: dict[str, LayerWeights] = dict(layers or {})

    def __getitem__(self, name: str) -> LayerWeights:
        return self.layers[name]

    def __contains__(self, name: str) -> bool:
        return name in self.layers

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self) -> int:
        return len(self.layers)

    def get(self, name: str) -> LayerWeights | None:
        return self.layers.get(name)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for lw in self.layers.values() for b in lw.blobs)


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Corrupt(pos, "the data ends inside a number")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Corrupt(pos, "a number is longer than ten bytes")


def _fields(buf, pos: int, end: int):
    """Yields (field number, wire type, value) where value is an int for varints and a
    (start, end) byte range otherwise."""
    while pos < end:
        at = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Corrupt(at, "field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
            continue
        if wire == _LEN:
            n, pos = _varint(buf, pos, end)
        elif wire == _FIXED64:
            n = 8
        elif wire == _FIXED32:
            n = 4
        else:
            raise _Corrupt(at, f"wire type {wire} (field {number}) is not used by Caffe's messages")
        if pos + n > end:
            raise _Corrupt(pos, f"field {number} claims {n} bytes but only {end - pos} remain (truncated file?)")
        yield number, wire, (pos, pos + n)
        pos += n


def _expect(wire: int, want: int, what: str, pos: int) -> None:
    if wire != want:
        raise _Corrupt(pos, f"{what} has the wrong wire type {wire}")


def _signed(v: int, bits: int = 64) -> int:
    v &= (1 << 64) - 1
    if v >= 1 << 63:
        v -= 1 << 64
    if bits == 32:
        v = (v + (1 << 31)) % (1 << 32) - (1 << 31)
    return v


def _string(buf, rng) -> str:
    return bytes(buf[rng[0]:rng[1]]).decode("utf-8", "replace")


def _packed_varints(buf, rng) -> list[int]:
    out, pos = [], rng[0]
    while pos < rng[1]:
        v, pos = _varint(buf, pos, rng[1])
        out.append(_signed(v))
    return out


def _decode_blob(buf, start: int, end: int) -> tuple[np.ndarray, bool]:
    shape: list[int] | None = None
    legacy = [None, None, None, None]
    data: list[np.ndarray] = []
    scalars: list[float] = []
    doubles = False
    for number, wire, v in _fields(buf, start, end):
        if number == _BLOB_SHAPE:
            _expect(wire, _LEN, "BlobProto.shape", start)
            shape = shape or []
            for n2, w2, v2 in _fields(buf, v[0], v[1]):
                if n2 == _SHAPE_DIM:
                    if w2 == _LEN:
                        shape.extend(_packed_varints(buf, v2))
                    else:
                        _expect(w2, _VARINT, "BlobShape.dim", v[0])
                        shape.append(_signed(v2))
        elif number in (_BLOB_NUM, _BLOB_CHANNELS, _BLOB_HEIGHT, _BLOB_WIDTH):
            _expect(wire, _VARINT, "a legacy blob dimension", start)
            legacy[number - 1] = _signed(v, 32)
        elif number == _BLOB_DATA:
            if wire == _LEN:
                if (v[1] - v[0]) % 4:
                    raise _Corrupt(v[0], "packed float data is not a multiple of 4 bytes")
                data.append(np.frombuffer(buf, dtype="<f4", count=(v[1] - v[0]) // 4, offset=v[0]))
            else:
                _expect(wire, _FIXED32, "BlobProto.data", start)
                scalars.append(struct.unpack_from("<f", buf, v[0])[0])
        elif number == _BLOB_DOUBLE:
            doubles = True
            if wire == _LEN:
                if (v[1] - v[0]) % 8:
                    raise _Corrupt(v[0], "packed double data is not a multiple of 8 bytes")
                data.append(np.frombuffer(buf, dtype="<f8", count=(v[1] - v[0]) // 8, offset=v[0]).astype(np.float32))
            else:
                _expect(wire, _FIXED64, "BlobProto.double_data", start)
                scalars.append(struct.unpack_from("<d", buf, v[0])[0])
    if scalars:
        data.append(np.asarray(scalars, dtype=np.float32))
    if len(data) == 1:
        flat = data[0]
    else:
        flat = np.concatenate(data) if data else np.zeros(0, np.float32)
    if doubles and flat.dtype != np.float32:
        flat = flat.astype(np.float32)
    is_legacy = shape is None and any(d is not None for d in legacy)
    if shape is None:
        # Blob::FromProto: unset legacy dimensions are 0. With neither form the blob has no
        # axes and one value: Blob::ToProto writes no `shape` at all for PReLU's shared slope.
        shape = [d or 0 for d in legacy] if is_legacy else []
    if len(shape) > 32:
        # Blob::Reshape: CHECK_LE(shape.size(), kMaxBlobAxes), which is 32.
        raise _Corrupt(start, f"a blob has {len(shape)} axes; Caffe's blobs have at most 32")
    if any(d < 0 for d in shape):
        raise _Corrupt(start, f"a blob has a negative dimension {tuple(shape)}")
    count = math.prod(shape)
    if count != flat.size:
        raise _Corrupt(start, f"a blob of shape {tuple(shape)} holds {flat.size} values, not {count}")
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        flat = flat.astype(np.float32)
    return flat.reshape(shape), is_legacy


def _decode_layer(buf, start: int, end: int, v1: bool) -> LayerWeights:
    name, type_ = "", ""
    blobs, legacy = [], []
    name_f, type_f, blobs_f = (_V1_NAME, _V1_TYPE, _V1_BLOBS) if v1 else (_LAYER_NAME, _LAYER_TYPE, _LAYER_BLOBS)
    v0: tuple[int, int] | None = None
    for number, wire, v in _fields(buf, start, end):
        if number == name_f:
            _expect(wire, _LEN, "a layer name", start)
            name = _string(buf, v)
        elif number == type_f:
            if v1:
                _expect(wire, _VARINT, "a V1 layer type", start)
                enum = pb.V1LayerParameter.LayerType
                label = enum.Name(v) if v in enum.values() else str(v)
                type_ = _V1_TYPES.get(label, label)
            else:
                _expect(wire, _LEN, "a layer type", start)
                type_ = _string(buf, v)
        elif number == blobs_f:
            _expect(wire, _LEN, "a layer's blobs", start)
            arr, leg = _decode_blob(buf, v[0], v[1])
            blobs.append(arr)
            legacy.append(leg)
        elif v1 and number == _V1_V0:
            _expect(wire, _LEN, "a V0 layer", start)
            v0 = v
    if v1 and v0 is not None and not blobs:
        # V0 nets nest the real layer one level deeper: layers { layer { name type blobs } }.
        for number, wire, v in _fields(buf, v0[0], v0[1]):
            if number == _V0_NAME and wire == _LEN and not name:
                name = _string(buf, v)
            elif number == _V0_TYPE and wire == _LEN and not type_:
                type_ = _string(buf, v)
            elif number == _V0_BLOBS:
                _expect(wire, _LEN, "a V0 layer's blobs", v0[0])
                arr, leg = _decode_blob(buf, v[0], v[1])
                blobs.append(arr)
                legacy.append(leg)
    return LayerWeights(name, type_, blobs, legacy)


def parse_caffemodel(data, path: str = "<weights>") -> WeightSet:
    """Decode a binary NetParameter held in `data` (bytes, bytearray, memoryview). Blobs are
    views into `data` where the bytes allow it. Raises DiagnosticError (E502) when corrupt."""
    buf = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
    ws = WeightSet(path)
    kinds = set()
    try:
        for number, wire, v in _fields(buf, 0, len(buf)):
            if number in (_NET_LAYER, _NET_LAYERS):
                _expect(wire, _LEN, "a layer", 0)
                kinds.add(number)
                if len(kinds) == 2:
                    # UpgradeV1Net: LOG(FATAL) "Refusing to upgrade inconsistent NetParameter input".
                    raise _Corrupt(v[0], "it holds both 'layer' (current) and 'layers' (V1) entries, "
                                         "which Caffe refuses to load")
                lw = _decode_layer(buf, v[0], v[1], v1=number == _NET_LAYERS)
                # Caffe copies every source layer in turn, so of two with one name the last wins.
                ws.layers.pop(lw.name, None)
                ws.layers[lw.name] = lw
    except _Corrupt as e:
        hint = ""
        head = bytes(buf[:64])
        if head.startswith(b"\x89HDF"):
            hint = " (this is an HDF5 file; netdef reads binary protobuf .caffemodel files only)"
        elif head and all(32 <= c < 127 or c in (9, 10, 13) for c in head):
            hint = " (it looks like text: is it a .prototxt?)"
        raise DiagnosticError([codes.WEIGHTS_CORRUPT.at(byte_span(path, e.pos), path=path,
                                                        why=f"{e.why} at byte {e.pos}{hint}")]) from None
    if not ws.layers and len(buf):
        raise DiagnosticError([codes.WEIGHTS_CORRUPT.at(byte_span(path), path=path, why="it holds no layers")])
    return ws


def read_caffemodel(path: str) -> WeightSet:
    """Read a .caffemodel once into one buffer; the arrays are views into it."""
    path = os.fspath(path)
    try:
        size = os.stat(path).st_size
        if os.path.isdir(path):
            raise IsADirectoryError(21, "it is a directory")
    except OSError as e:
        raise DiagnosticError([codes.WEIGHTS_UNREADABLE.at(byte_span(path), path=path, why=e.strerror or str(e))]) from None
    if size == 0:
        raise DiagnosticError([codes.WEIGHTS_CORRUPT.at(byte_span(path), path=path, why="the file is empty")])
    limit = _memory_limit()
    if size > limit:
        raise DiagnosticError([codes.WEIGHTS_UNREADABLE.at(
            byte_span(path), path=path, why=f"it is {size / 2**30:.1f} GiB, more than this machine's {limit / 2**30:.1f} GiB of memory")])
    buf = bytearray(size)
    try:
        with open(path, "rb") as f:
            got = f.readinto(buf)
    except OSError as e:
        raise DiagnosticError([codes.WEIGHTS_UNREADABLE.at(byte_span(path), path=path, why=e.strerror or str(e))]) from None
    if got != size:
        raise DiagnosticError([codes.WEIGHTS_UNREADABLE.at(byte_span(path), path=path, why="the file changed while being read")])
    return parse_caffemodel(buf, path)


# --- matching weights to a net ---------------------------------------------------------------

@dataclass
class ParamSpec:
    """What one layer of a net needs: its learnable blobs' shapes and fillers, in Caffe's order."""
    name: str
    type: str
    span: Span | None
    shapes: list[tuple[int, ...]]
    fillers: list[pb.FillerParameter | None] = field(default_factory=list)
    filler_spans: list[Span | None] = field(default_factory=list)
    stats: frozenset[int] = frozenset()     # which blobs are statistics (Layer.stat_blobs)


def _legacy_equal(target: tuple[int, ...], stored: tuple[int, ...]) -> bool:
    # Blob::ShapeEquals for legacy blobs: the net's shape, padded with leading 1s to 4 axes.
    if len(target) > 4:
        return False
    return (1,) * (4 - len(target)) + tuple(target) == tuple(stored)


def bind(specs, weights: WeightSet, diags: Diagnostics, allow_missing: bool = True) -> dict[str, list[np.ndarray]]:
    """Match a .caffemodel's blobs to the layers that need them, by layer name, as Caffe's
    Net::CopyTrainedLayersFrom does. Returns name -> arrays (in the net's shapes) for the
    layers found. Layers missing from the file are left out so that the caller falls back to
    fillers, which is what Caffe does: warned about (W505) with allow_missing, an error (E505)
    without it, since weights of another net then silently give a net of random filters."""
    out: dict[str, list[np.ndarray]] = {}
    wanted = set()
    specs = list(specs)
    missing = []
    for spec in specs:
        wanted.add(spec.name)
        if not spec.shapes:
            continue
        lw = weights.get(spec.name)
        if lw is None or not lw.blobs:
            missing.append(spec)
            if allow_missing:
                diags.add(codes.WEIGHTS_MISSING.at(spec.span, layer=spec.name, path=weights.path))
                continue
            notes = []
            if len(missing) == 1:
                needing = [s for s in specs if s.shapes]
                if not any(weights.get(s.name) is not None and weights.get(s.name).blobs for s in needing):
                    held = [lw.name for lw in weights if lw.blobs][:5]
                    notes.append(f"none of the net's {len(needing)} layer(s) with parameters is in the file"
                                 + (f" (it holds {', '.join(repr(n) for n in held)}, ...)" if held else "")
                                 + ": are these the weights of another net?")
                notes.append("--allow-missing-weights uses the layer's fillers instead, as Caffe does")
            diags.add(codes.WEIGHTS_MISSING_STRICT.at(spec.span, layer=spec.name, path=weights.path, notes=notes))
            continue
        if len(lw.blobs) != len(spec.shapes):
            diags.add(codes.WEIGHTS_BLOB_COUNT.at(
                spec.span, layer=spec.name, path=weights.path, expected=len(spec.shapes), got=len(lw.blobs),
                expected_shapes=", ".join(fmt_shape(s) for s in spec.shapes),
                got_shapes=", ".join(fmt_shape(b.shape) for b in lw.blobs),
                notes=["Caffe copies a layer's blobs only when their number matches (Net::CopyTrainedLayersFrom)"]))
            continue
        arrays, ok = [], True
        for i, (want, have, leg) in enumerate(zip(spec.shapes, lw.blobs, lw.legacy)):
            want = tuple(int(d) for d in want)
            if tuple(have.shape) == want:
                arrays.append(have)
            elif leg and _legacy_equal(want, have.shape):
                arrays.append(have.reshape(want))
            else:
                notes = []
                if leg:
                    notes.append("the file gives this blob as legacy num/channels/height/width; "
                                 "Caffe compares it with the net's shape padded with leading 1s")
                diags.add(codes.WEIGHTS_BLOB_SHAPE.at(spec.span, index=i, layer=spec.name, path=weights.path,
                                              got=fmt_shape(have.shape), expected=fmt_shape(want), notes=notes))
                ok = False
        if ok:
            out[spec.name] = arrays
    for lw in weights:
        if lw.name not in wanted and lw.blobs:
            diags.add(codes.WEIGHTS_EXTRA.at(byte_span(weights.path), path=weights.path, layer=lw.name, type=lw.type or "?",
                                             count=len(lw.blobs)))
    return out


# --- fillers (include/caffe/filler.hpp) -------------------------------------------------------

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
    need, limit = count * (9 if sparse else 4), _memory_limit() // 2
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


# The neutral value of each statistics blob (see the module's docstring), by layer type and
# blob index: BatchNorm's mean, variance and factor; the PSPNet fork's BN keeps its running
# mean and variance after its slope and bias.
NEUTRAL_STATISTICS = {"BatchNorm": {0: 0.0, 1: 1.0, 2: 1.0}, "BN": {2: 0.0, 3: 1.0}}


def _constant(value: float) -> pb.FillerParameter:
    return pb.FillerParameter(type="constant", value=value)


def init_layer(spec: ParamSpec, seed: int, diags: Diagnostics, lazy: bool = False):
    """A layer's blobs from its fillers (arrays, or Lazy blobs with lazy=True); None after
    reporting a filler Caffe would reject. Statistics blobs are neutral (NEUTRAL_STATISTICS);
    any other blob without a filler is zero."""
    out = []
    neutral = NEUTRAL_STATISTICS.get(spec.type, {})
    for i, shape in enumerate(spec.shapes):
        shape = tuple(int(d) for d in shape)
        fp = spec.fillers[i] if i < len(spec.fillers) else None
        if i in spec.stats and i in neutral:
            fp = _constant(neutral[i])
        span = (spec.filler_spans[i] if i < len(spec.filler_spans) else None) or spec.span
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
                    allow_missing: bool = True) -> dict:
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
            arrays = init_layer(spec, seed, diags, lazy)
            if arrays is not None:
                out[spec.name] = arrays
    return out


# --- writing ---------------------------------------------------------------------------------

def _blob_parts(arr: np.ndarray) -> tuple[bytes, np.ndarray, int, bytes]:
    """(bytes before the floats, the floats, payload length, bytes after) of one BlobProto."""
    dims = b"".join(encode_varint(int(d)) for d in arr.shape)
    shape_msg = len_prefix(_SHAPE_DIM, len(dims)) + dims if arr.shape else b""
    data = np.ascontiguousarray(arr, dtype="<f4").reshape(-1)
    # Field order as protobuf writes it: data (5) before shape (7).
    head = len_prefix(_BLOB_DATA, data.nbytes) if data.size else b""
    tail = len_prefix(_BLOB_SHAPE, len(shape_msg)) + shape_msg
    return head, data, len(head) + data.nbytes + len(tail), tail


def write_caffemodel(path: str, net_name: str, layers) -> int:
    """Write `layers` — (name, type, [arrays]) — as a binary NetParameter Caffe can load with
    `caffe.Net(prototxt, path, caffe.TEST)`. Streams blob by blob; atomic. Returns bytes written."""
    from .outputs import atomic_path
    written = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        def put(b):
            nonlocal written
            f.write(b)
            written += len(b) if isinstance(b, (bytes, bytearray)) else b.nbytes

        if net_name:
            name = net_name.encode("utf-8")
            put(len_prefix(1, len(name)) + name)
        for lname, ltype, arrays in layers:
            parts = [_blob_parts(np.asarray(a)) for a in arrays]
            nb, tb = lname.encode("utf-8"), ltype.encode("utf-8")
            head = len_prefix(_LAYER_NAME, len(nb)) + nb + len_prefix(_LAYER_TYPE, len(tb)) + tb
            blob_total = sum(len(len_prefix(_LAYER_BLOBS, n)) + n for _, _, n, _ in parts)
            put(len_prefix(_NET_LAYER, len(head) + blob_total) + head)
            for h, data, n, tail in parts:
                put(len_prefix(_LAYER_BLOBS, n))
                put(h)
                if data.size:
                    put(memoryview(data).cast("B"))
                put(tail)
    return written


# --- netdef init -------------------------------------------------------------------------------

def cmd_init(args) -> int:
    """Filler-initialised weights for a net, written as a .caffemodel Caffe can load."""
    from .cli.select import reporting

    return reporting(_init)(args)


def _init(args) -> int:
    from .cli.output import print_diagnostics
    from .export.onnx import compile_for_export, param_specs
    from .cli.select import print_report
    from .outputs import check_writable

    check_writable(args.output)
    graph, _ = compile_for_export(args.file, phase=args.phase, stages=tuple(args.stage), level=args.level,
                                  inputs=args.inputs, max_errors=args.max_errors,
                                  what="initialised")
    diags = Diagnostics(args.max_errors)
    diags.extend(graph.diagnostics)
    specs = {s.name: s for s in param_specs(graph)}

    def layers():
        # One layer at a time: only the layer being written is held in memory.
        for node in graph.nodes:
            spec = specs.get(node.name)
            arrays = init_layer(spec, args.seed, diags) if spec is not None else []
            if arrays is None:
                raise DiagnosticError(list(diags))
            yield node.name, node.type, arrays

    print_report(diags, args)
    diags = Diagnostics(args.max_errors)
    n = write_caffemodel(args.output, graph.name, layers())
    print_diagnostics(diags)
    count = sum(math.prod(s) for spec in specs.values() for s in spec.shapes)
    from .cli import output as cli
    if cli.json_mode:
        cli.emit_json(args, {"ok": True, "wrote": args.output, "bytes": n, "layers_with_parameters": len(specs),
                             "values": count, "seed": args.seed})
        return 0
    cli.info(f"wrote {args.output}: {len(specs)} layers with parameters, {count:,} values, {n / 1e6:.1f} MB")
    return 0
