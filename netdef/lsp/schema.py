"""What the schema says about a field: its type, default and documentation.

Types and defaults come from the compiled descriptors; the documentation is the comment written
above the field (or after it, on its line) in netdef/proto/netdef.proto, Caffe's caffe.proto
with its comments, read once. Fields the schema lacks are described by netdef.forks.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor as FD

from ..forks import fork_of_field

PROTO = Path(__file__).resolve().parent.parent / "proto" / "netdef.proto"

_MESSAGE = re.compile(r"^\s*message\s+(\w+)\s*\{")
_FIELD = re.compile(r"^\s*(?:optional|repeated|required)\s+[\w.]+\s+(\w+)\s*=\s*\d+[^;]*;\s*(?://\s*(.*))?$")
_COMMENT = re.compile(r"^\s*//\s?(.*)$")


@lru_cache(maxsize=1)
def _docs() -> dict[tuple[str, str], str]:
    docs: dict[tuple[str, str], str] = {}
    try:
        lines = PROTO.read_text().splitlines()
    except OSError:
        return docs
    stack: list[str] = []
    pending: list[str] = []
    for line in lines:
        m = _MESSAGE.match(line)
        if m:
            stack.append(m.group(1))
            pending = []
            continue
        c = _COMMENT.match(line)
        if c:
            pending.append(c.group(1))
            continue
        f = _FIELD.match(line)
        if f and stack:
            text = pending + ([f.group(2)] if f.group(2) else [])
            if text:
                docs[(stack[-1], f.group(1))] = "\n".join(text).strip()
            pending = []
            continue
        if not line.strip():
            pending = []
            continue
        stripped = line.strip()
        if stripped.startswith("enum ") or stripped.endswith("{"):
            stack.append("")  # an enum or a oneof: closes like a message
            pending = []
        elif stripped.startswith("}"):
            if stack:
                stack.pop()
            pending = []
        else:
            pending = []
    return docs


def field_doc(message: str, field: str) -> str | None:
    return _docs().get((message, field))


_TYPE_NAMES = {
    FD.TYPE_DOUBLE: "double", FD.TYPE_FLOAT: "float", FD.TYPE_INT64: "int64", FD.TYPE_UINT64: "uint64",
    FD.TYPE_INT32: "int32", FD.TYPE_FIXED64: "fixed64", FD.TYPE_FIXED32: "fixed32", FD.TYPE_BOOL: "bool",
    FD.TYPE_STRING: "string", FD.TYPE_BYTES: "bytes", FD.TYPE_UINT32: "uint32", FD.TYPE_SFIXED32: "sfixed32",
    FD.TYPE_SFIXED64: "sfixed64", FD.TYPE_SINT32: "sint32", FD.TYPE_SINT64: "sint64",
}


def type_name(fd) -> str:
    if fd.message_type is not None:
        return fd.message_type.name
    if fd.enum_type is not None:
        return fd.enum_type.name
    return _TYPE_NAMES.get(fd.type, "?")


def default_text(fd) -> str | None:
    """The default as a definition would write it; None for messages and repeated fields."""
    if fd.is_repeated or fd.message_type is not None:
        return None
    v = fd.default_value
    if fd.enum_type is not None:
        return fd.enum_type.values_by_number[v].name if v in fd.enum_type.values_by_number else str(v)
    if fd.type == FD.TYPE_BOOL:
        return "true" if v else "false"
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return '"' + (v.decode("latin-1") if isinstance(v, bytes) else v) + '"'
    if fd.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        from ..fmt import format_double, format_float32
        return format_float32(v) if fd.type == FD.TYPE_FLOAT else format_double(v)
    return str(v)


def field_markdown(desc, name: str) -> str:
    """A field's hover text: `type name = default`, where it comes from, its documentation."""
    fd = desc.fields_by_name.get(name) if desc is not None else None
    if fd is None:
        fork = fork_of_field(desc.name, name) if desc is not None else None
        where = f"`{desc.name}`" if desc is not None else "this block"
        if fork:
            return (f"**{name}**: not a field of BVLC Caffe's {where}\n\nFrom {fork}. netdef keeps it "
                    "(fmt writes it back) but does not interpret it unless the layer rule reads it.")
        return f"**{name}**: not a field of {where} in BVLC Caffe's schema"
    label = "repeated " if fd.is_repeated else ""
    head = f"```proto\n{label}{type_name(fd)} {fd.name} = {fd.number}"
    d = default_text(fd)
    if d is not None:
        head += f" [default = {d}]"
    head += "\n```"
    parts = [head, f"Field of `{desc.name}`, BVLC Caffe (caffe.proto)."]
    if fd.enum_type is not None:
        parts.append("One of: " + ", ".join(f"`{v.name}`" for v in fd.enum_type.values))
    doc = field_doc(desc.name, name)
    if doc:
        parts.append(doc)
    return "\n\n".join(parts)


def field_detail(fd) -> str:
    label = "repeated " if fd.is_repeated else ""
    d = default_text(fd)
    return f"{label}{type_name(fd)}" + (f" = {d}" if d is not None else "")
