"""Canonical text for a net or solver: what `netdef fmt` and `netdef upgrade` print.

The layout is Caffe's own (what upgrade_net_proto_text and protobuf's TextFormat write):
fields in field-number order, two-space indent, `name {` ... `}` blocks, one line per element
of a repeated field, enums by name, floats in the fewest digits that read back to the same
value in the field's own precision (a float32 0.1 prints as 0.1, not 0.100000001). The text
parses back, with netdef's parser, to an equal message.

Fields the schema lacks (Caffe forks' parameters, kept by the parser in Loc.extra) are printed
after the schema's fields of the block they were written in, in the order they were written,
so that formatting never loses them; parsing the output gives the same Loc.extra values.
"""
from __future__ import annotations

import math
import re
import struct

from google.protobuf.descriptor import FieldDescriptor as FD

# --- scalars --------------------------------------------------------------------------

_pack_f32 = struct.Struct("<f")


def _round_f32(v: float) -> float:
    return _pack_f32.unpack(_pack_f32.pack(v))[0]


def _special(v: float) -> str | None:
    if v != v:
        return "nan"
    if v in (math.inf, -math.inf):
        return "inf" if v > 0 else "-inf"
    return None


def _trim(s: str) -> str:
    # Caffe writes a whole number as `1`, not `1.0`; netdef reads both back as the same float.
    return s[:-2] if s.endswith(".0") else s


_F32_CACHE: dict[float, str] = {}


def format_float32(v: float) -> str:
    """The shortest decimal that rounds to the same float32."""
    s = _F32_CACHE.get(v)
    if s is not None:
        return s
    s = _special(v)
    if s is None:
        for digits in range(1, 10):  # 9 significant digits always identify a float32
            candidate = "%.*g" % (digits, v)
            try:
                if _round_f32(float(candidate)) == v:
                    break
            except OverflowError:  # rounded past the largest float32
                continue
        # repr of the shortest decimal's double gives Python's plain spelling (10, not 1e+01)
        s = _trim(repr(float(candidate)))
    if len(_F32_CACHE) < 65536:
        _F32_CACHE[v] = s
    return s


def format_double(v: float) -> str:
    return _special(v) or _trim(repr(v))


# Quote, backslash and control characters are escaped; other text (UTF-8 included) is kept.
_STR_ESCAPES = {i: "\\%03o" % i for i in range(32)}
_STR_ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r", ord('"'): '\\"',
                     ord("\\"): "\\\\", 0x7F: "\\177"})


def quote(s: str) -> str:
    return '"' + s.translate(_STR_ESCAPES) + '"'


def quote_bytes(b: bytes) -> str:
    out = []
    for c in b:
        if c in (0x22, 0x5C):
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\%03o" % c)
    return '"' + "".join(out) + '"'


def _scalar_formatter(fd):
    t = fd.type
    if t == FD.TYPE_FLOAT:
        return format_float32
    if t == FD.TYPE_DOUBLE:
        return format_double
    if t == FD.TYPE_BOOL:
        return lambda v: "true" if v else "false"
    if t == FD.TYPE_STRING:
        return quote
    if t == FD.TYPE_BYTES:
        return quote_bytes
    if t == FD.TYPE_ENUM:
        names = {v.number: v.name for v in fd.enum_type.values}
        return lambda v: names.get(v, str(v))
    return str


_FORMATTERS: dict[str, dict[str, object]] = {}


def _formatters(descriptor) -> dict:
    table = _FORMATTERS.get(descriptor.full_name)
    if table is None:
        table = {fd.name: (None if fd.message_type is not None else _scalar_formatter(fd))
                 for fd in descriptor.fields}
        _FORMATTERS[descriptor.full_name] = table
    return table


# --- fields the schema lacks ----------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_UNESCAPED_DQUOTE = re.compile(r'(?<!\\)(?:\\\\)*"')


def _raw_scalar(v) -> str:
    """A value the parser kept for a field the schema lacks, written as it was read."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _special(v) or repr(v)
    if getattr(v, "is_ident", False):  # transform.Ident: a bare word such as an enum value
        return str(v)
    # The parser keeps a string's text as written, escapes included; only the quotes were
    # taken off, so put back ones that the text cannot contain unescaped.
    if _UNESCAPED_DQUOTE.search(v) is None:
        return '"' + v + '"'
    return "'" + v + "'"


def _write_raw(out: list, indent: str, name: str, values: list) -> None:
    if not values:
        out.append(f"{indent}{name}: []")
        return
    for v in values:
        if isinstance(v, dict):
            out.append(f"{indent}{name} {{")
            inner = indent + "  "
            for k, vs in v.items():
                _write_raw(out, inner, k, vs)
            out.append(f"{indent}}}")
        else:
            out.append(f"{indent}{name}: {_raw_scalar(v)}")


# --- messages -------------------------------------------------------------------------


def _write(out: list, msg, loc, indent: str) -> None:
    table = _formatters(msg.DESCRIPTOR)
    inner = indent + "  "
    for fd, value in msg.ListFields():
        name = fd.name
        fmt = table[name]
        if fmt is None:
            if fd.is_repeated:
                subs = loc.fields.get(name) if loc is not None else None
                for i, sub in enumerate(value):
                    out.append(f"{indent}{name} {{")
                    sub_loc = subs[i] if subs is not None and i < len(subs) else None
                    _write(out, sub, sub_loc if hasattr(sub_loc, "extra") else None, inner)
                    out.append(f"{indent}}}")
            else:
                out.append(f"{indent}{name} {{")
                sub_loc = loc.msg(name) if loc is not None else None
                _write(out, value, sub_loc, inner)
                out.append(f"{indent}}}")
        elif fd.is_repeated:
            prefix = f"{indent}{name}: "
            out.extend(prefix + fmt(v) for v in value)
        else:
            out.append(f"{indent}{name}: {fmt(value)}")
    if loc is not None and loc.extra:
        for name, values in loc.extra.items():
            _write_raw(out, indent, name, values)


def format_message(msg, extras=None) -> str:
    """Canonical text of a message. `extras` is the message's Loc tree (parse.Parsed.loc), whose
    Loc.extra values, the fields the schema lacks, are written at the end of their blocks."""
    out: list[str] = []
    _write(out, msg, extras, "")
    return "\n".join(out) + "\n" if out else ""


def count_extras(loc) -> list[str]:
    """The names of the fields the schema lacks anywhere in a Loc tree, in text order."""
    found: list[tuple[int, str]] = []
    stack = [loc]
    while stack:
        l = stack.pop()
        if l is None:
            continue
        for name in l.extra:
            found.append((l.name_start, name))
        for entries in l.fields.values():
            stack.extend(e for e in entries if hasattr(e, "extra"))
    return [name for _, name in sorted(found)]


# --- the command ----------------------------------------------------------------------


def cmd_fmt(args) -> int:
    """`netdef fmt FILE [-o OUT]`: the file in canonical form, in the format it is written in
    (V1 stays V1: `netdef upgrade` is the command that changes formats)."""
    import sys

    from .cli import print_diagnostics
    from .library import resolve
    from .outputs import check_writable, write_or_print
    from .parse import parse_file

    if args.output:
        check_writable(args.output)
    parsed = parse_file(resolve(args.file), None, args.max_errors)
    if parsed.diagnostics.has_errors:
        # Values with errors are not in the message: formatting would silently lose them.
        print_diagnostics(parsed.diagnostics)
        return 1
    # The fork-field warnings (W202) are summed up in the one line below.
    print_diagnostics([d for d in parsed.diagnostics if d.code != "W202"])
    kept = count_extras(parsed.loc)
    if kept:
        names = ", ".join(dict.fromkeys(kept))
        sys.stderr.write(f"netdef fmt: kept {len(kept)} field(s) that BVLC Caffe does not define, "
                         f"at the end of their blocks: {names}\n")
    text = format_message(parsed.message, extras=parsed.loc)
    write_or_print(args.output, text)
    return 0
