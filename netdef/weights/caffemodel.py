""".caffemodel files: streaming reads and writes of the wire format.

A .caffemodel is a binary NetParameter whose layers carry their learnable blobs. Models are
large (ResNet-152: 240 MB, VGG-16: 550 MB), and the protobuf runtime would hold three copies of
every weight while decoding (the file, the message, the arrays). This module walks the wire
format itself instead: the file is read once into one buffer and every float blob becomes a
NumPy view into it, so the weights cost their size once. Writing streams blob by blob the same
way.

    ws = read_caffemodel("bvlc_alexnet.caffemodel")      # WeightSet; raises DiagnosticError
    ws["conv1"].blobs[0].shape                            # (96, 3, 11, 11)
    write_caffemodel(path, "net", [("conv1", "Convolution", [w, b]), ...])
"""
from __future__ import annotations

import math
import os
import struct
import sys
from dataclasses import dataclass, field

import numpy as np

from .. import codes
from ..diagnostics import DiagnosticError, byte_span
from ..outputs import atomic_path
from ..proto import pb
from ..wire import FIXED32 as _FIXED32, FIXED64 as _FIXED64, LEN as _LEN, VARINT as _VARINT
from ..wire import encode_varint, len_prefix

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
def memory_limit() -> int:
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
    limit = memory_limit()
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
