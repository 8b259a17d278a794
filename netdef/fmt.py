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


def _emit_before(out: list, indent: str, comments, key) -> None:
    if comments is not None:
        for text in comments.before.pop(key, ()):
            out.append(indent + text)


def _emit_after(out: list, comments, key) -> None:
    if comments is not None:
        text = comments.trailing.pop(key, None)
        if text is not None:
            out[-1] += "  " + text


def _write(out: list, msg, loc, indent: str, comments=None) -> None:
    table = _formatters(msg.DESCRIPTOR)
    inner = indent + "  "
    for fd, value in msg.ListFields():
        name = fd.name
        fmt = table[name]
        entries = loc.fields.get(name) if loc is not None else None
        if fmt is None:
            subs = value if fd.is_repeated else [value]
            for i, sub in enumerate(subs):
                if entries is not None and i < len(entries):
                    sub_loc = entries[i] if fd.is_repeated else entries[-1]
                else:
                    sub_loc = None
                sub_loc = sub_loc if hasattr(sub_loc, "extra") else None
                head = sub_loc.name_start if sub_loc is not None else None
                _emit_before(out, indent, comments, head)
                out.append(f"{indent}{name} {{")
                _emit_after(out, comments, head)
                _write(out, sub, sub_loc, inner, comments)
                if sub_loc is not None:
                    _emit_before(out, inner, comments, ("end", id(sub_loc)))
                out.append(f"{indent}}}")
                if sub_loc is not None:
                    _emit_after(out, comments, ("end", id(sub_loc)))
        else:
            prefix = f"{indent}{name}: "
            values = value if fd.is_repeated else [value]
            for i, v in enumerate(values):
                key = None
                if entries:
                    e = entries[i] if fd.is_repeated and i < len(entries) else entries[-1]
                    key = e[0] if isinstance(e, tuple) else None
                _emit_before(out, indent, comments, key)
                out.append(prefix + fmt(v))
                _emit_after(out, comments, key)
    if loc is not None and loc.extra:
        for name, values in loc.extra.items():
            _write_raw(out, indent, name, values)


def format_message(msg, extras=None, comments=None) -> str:
    """Canonical text of a message. `extras` is the message's Loc tree (parse.Parsed.loc), whose
    Loc.extra values, the fields the schema lacks, are written at the end of their blocks.
    `comments` (a Comments from find_comments, with the same Loc tree) puts the source's
    comments back: each before the field it preceded, or after the line it ended."""
    out: list[str] = []
    if comments is not None:
        comments = comments.copy()
    _write(out, msg, extras, "", comments)
    if comments is not None:
        # Comments at the end of the file, and any whose field the canonical text does not
        # write on a line of its own (inside blocks the schema lacks): kept, at the end.
        out.extend(comments.leftover())
    return "\n".join(out) + "\n" if out else ""


# --- comments ---------------------------------------------------------------------------------

# The lexer's own rules (netdef/data/grammar/prototxt.lark): a string runs to its closing quote on
# the same line, and `#` outside a string starts a comment that runs to the end of the line.
_COMMENT_SCAN = re.compile(r'''"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*'|(#[^\n]*)''')


class Comments:
    """The comments of a source, attached to the fields of its Loc tree.

    before:   key -> comment lines written on their own lines before the field (or before the
              closing brace of a block, key ("end", id(loc)))
    trailing: key -> a comment that ended the field's line (or the line of a block's head or
              closing brace)
    A field's key is its name's offset (Loc.name_start for a block)."""

    def __init__(self):
        self.before: dict = {}
        self.trailing: dict = {}
        self.order: dict = {}  # key -> offset of the first comment, for leftovers in text order

    def copy(self) -> "Comments":
        c = Comments()
        c.before = {k: list(v) for k, v in self.before.items()}
        c.trailing = dict(self.trailing)
        c.order = self.order
        return c

    def leftover(self) -> list[str]:
        rest = []
        for k, v in self.before.items():
            rest.extend((self.order.get(k, 0), i, t) for i, t in enumerate(v))
        rest.extend((self.order.get(k, 0), 0, t) for k, t in self.trailing.items())
        self.before, self.trailing = {}, {}
        return [t for _, _, t in sorted(rest, key=lambda r: (r[0], r[1]))]

    def __len__(self) -> int:
        return sum(len(v) for v in self.before.values()) + len(self.trailing)


def scan_comments(text: str) -> list[tuple[int, str]]:
    """(offset, text) of every comment, strings skipped as the lexer skips them."""
    if "#" not in text:
        return []
    return [(m.start(1), m.group(1).rstrip()) for m in _COMMENT_SCAN.finditer(text) if m.start(1) >= 0]


def find_comments(source_text: str, loc) -> Comments:
    """Attach every comment of the text to the nearest field of the Loc tree: a comment on a
    line of its own to the field that follows it in the same block (or to the block's closing
    brace when none follows); a comment after code to the field, head or brace that ends on
    that line."""
    import bisect

    found = Comments()
    scanned = scan_comments(source_text)
    if not scanned:
        return found
    text = source_text

    def entry_start(e):
        return e.name_start if hasattr(e, "extra") else e[0]

    children_cache: dict[int, tuple] = {}

    def children(l):
        got = children_cache.get(id(l))
        if got is None:
            entries = sorted((entry_start(e), i, e) for i, e in
                             enumerate(e for es in l.fields.values() for e in es))
            got = ([s for s, _, _ in entries], [e for _, _, e in entries])
            children_cache[id(l)] = got
        return got

    def add(kind: str, key, offset: int, comment: str) -> None:
        found.order.setdefault(key, offset)
        if kind == "before":
            found.before.setdefault(key, []).append(comment)
        elif key in found.trailing:  # a field written over several lines, a comment on each
            found.trailing[key] += "  " + comment
        else:
            found.trailing[key] = comment

    for offset, comment in scanned:
        line_start = text.rfind("\n", 0, offset) + 1
        own_line = not text[line_start:offset].strip()
        # The innermost block that holds the comment.
        block = loc
        while True:
            starts, entries = children(block)
            i = bisect.bisect_right(starts, offset) - 1
            if i >= 0 and hasattr(entries[i], "extra") and entries[i].name_start <= offset < entries[i].end:
                block = entries[i]
                continue
            break
        starts, entries = children(block)
        i = bisect.bisect_right(starts, offset) - 1
        is_root = block is loc
        if own_line:
            if i + 1 < len(entries):
                add("before", entry_start(entries[i + 1]), offset, comment)
            elif not is_root:
                add("before", ("end", id(block)), offset, comment)
            else:
                add("before", ("eof",), offset, comment)
            continue
        # After code on the same line: the field, head or brace that ends on this line. (Code of
        # a block the schema lacks is not in the tree: then the comment is treated as one on a
        # line of its own.)
        target = None
        if i >= 0:
            e = entries[i]
            if hasattr(e, "extra"):
                if e.end <= offset:
                    target = ("end", id(e)), e.end
                else:  # between the block's name and its brace
                    target = e.name_start, e.name_start
            else:
                target = e[0], e[2]
        elif not is_root and block.name_start <= offset:
            target = block.name_start, block.head_end
        if target is not None and "\n" not in text[target[1]:offset]:
            add("trailing", target[0], offset, comment)
        elif i + 1 < len(entries):
            add("before", entry_start(entries[i + 1]), offset, comment)
        elif not is_root:
            add("before", ("end", id(block)), offset, comment)
        else:
            add("before", ("eof",), offset, comment)
    return found


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


def format_parsed(parsed) -> str:
    """The canonical text of a parsed definition, its comments kept (what `netdef fmt` writes)."""
    return format_message(parsed.message, extras=parsed.loc,
                          comments=find_comments(parsed.source.text, parsed.loc))
