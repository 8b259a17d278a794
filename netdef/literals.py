"""Scalar literals of protobuf's text format, as its tokenizer reads them (and so Caffe):
strings with C-style escapes, integers in decimal, hex and octal, floats with an optional
f suffix and the words inf/infinity/nan, booleans as true/True/t and false/False/f.
netdef.transform reads them while filling messages (netdef.fmt writes them).
"""
from __future__ import annotations

import math
import re

_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.S)
_SIMPLE_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f",
                   "v": b"\v", "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}


class BadEscape(Exception):
    """args: the escape as written, and its offset in the string's body."""


def unescape(body: str) -> bytes:
    """C-style escapes as protobuf's text format defines them, to bytes."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(body):
        out += body[pos:m.start()].encode("utf-8")
        octal, hx, u4, u8, other = m.groups()
        if octal is not None:
            out.append(int(octal, 8) & 0xFF)
        elif hx is not None:
            out.append(int(hx, 16))
        elif u4 is not None or u8 is not None:
            cp = int(u4 or u8, 16)
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise BadEscape(m.group(0), m.start())
            out += chr(cp).encode("utf-8")
        elif other in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[other]
        else:
            raise BadEscape(m.group(0), m.start())
        pos = m.end()
    out += body[pos:].encode("utf-8")
    return bytes(out)


FLOAT_WORDS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}
BOOL_WORDS = {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}


def parse_int(text: str) -> int | None:
    neg = text.startswith("-")
    body = text[1:] if neg else text
    if body[:2] in ("0x", "0X"):
        v = int(body, 16)
    elif len(body) > 1 and body[0] == "0" and body.isdigit():
        if any(c in "89" for c in body):
            return None
        v = int(body, 8)  # C++ and protobuf read a leading 0 as octal
    elif body.isdigit():
        # Python refuses to convert more than 4300 decimal digits (a guard against quadratic
        # time); a number of more than 40 digits is past every integer field's range anyway,
        # and any value past 2^128 says so.
        v = int(body) if len(body) <= 40 else 1 << 140
    else:
        return None
    return -v if neg else v


def parse_float(text: str) -> float:
    if text[-1] in "fF" and not text.lstrip("-")[:2] in ("0x", "0X"):
        text = text[:-1]
    if text.lstrip("-")[:2] in ("0x", "0X"):
        return float(int(text, 16))
    return float(text)


class Ident(str):
    """A bare word (an enum value, `inf`) kept for a field the schema lacks. It equals its text;
    the mark lets `netdef fmt` write it back bare rather than as a quoted string."""

    __slots__ = ()
    is_ident = True
