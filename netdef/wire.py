"""The few pieces of protobuf's wire format that netdef writes by hand.

.caffemodel and .onnx files are written a tensor at a time, straight from numpy buffers, so a
large model is never held twice as protobuf messages (see weights.py and export/onnx.py).
"""
from __future__ import annotations

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


def encode_varint(v: int) -> bytes:
    """Base-128 varint; negative values as their 64-bit two's complement, as protobuf does."""
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_key(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def len_prefix(number: int, payload_len: int) -> bytes:
    """The key and length that precede a length-delimited field's payload."""
    return field_key(number, LEN) + encode_varint(payload_len)
