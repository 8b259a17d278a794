"""Text → protobuf messages, filled while the LALR parser runs.

The grammar (netdef/data/grammar/prototxt.lark) reduces `open`/`list_open` as soon as a bracket is read,
so this transformer keeps a stack of the messages being filled and puts every value straight
into its protobuf field: there is no parse tree and no second walk. Each message gets a Loc
(netdef.loc) that remembers where each of its fields was written, so later stages can point at the text.

Fields netdef does not know (Caffe forks' layer parameters, typos) are reported and their
contents kept as plain Python values in Loc.extra, so fork layers can still be described.
"""
from __future__ import annotations

import difflib
import math

from google.protobuf.descriptor import FieldDescriptor as FD

from . import codes
from .diagnostics import Diagnostics, Span
from .forks import fork_of_field, reading_of_field
from .literals import BOOL_WORDS, FLOAT_WORDS, BadEscape, Ident, parse_float, parse_int, unescape
from .loc import Loc
from .source import Source

# Caffe's schema nests at most five deep; deeper text is hostile or broken, and stopping
# early keeps every later recursive walk (fmt, raw values of unknown fields) bounded.
MAX_DEPTH = 64


# --- per-message-type field tables --------------------------------------------------------

_INT_RANGES = {
    FD.TYPE_INT32: ("int32", -2**31, 2**31 - 1), FD.TYPE_SINT32: ("int32", -2**31, 2**31 - 1),
    FD.TYPE_SFIXED32: ("int32", -2**31, 2**31 - 1), FD.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FD.TYPE_FIXED32: ("uint32", 0, 2**32 - 1), FD.TYPE_INT64: ("int64", -2**63, 2**63 - 1),
    FD.TYPE_SINT64: ("int64", -2**63, 2**63 - 1), FD.TYPE_SFIXED64: ("int64", -2**63, 2**63 - 1),
    FD.TYPE_UINT64: ("uint64", 0, 2**64 - 1), FD.TYPE_FIXED64: ("uint64", 0, 2**64 - 1),
}


class _Field:
    __slots__ = ("name", "fd", "kind", "repeated", "int_range", "enum_names", "enum_numbers", "type_name")

    def __init__(self, fd):
        self.name = fd.name
        self.fd = fd
        self.repeated = fd.is_repeated
        t = fd.type
        self.int_range = _INT_RANGES.get(t)
        self.enum_names = self.enum_numbers = None
        if t in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
            self.kind = "m"
            self.type_name = f"message {fd.message_type.name}"
        elif t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
            self.kind = "f"
            self.type_name = "a number"
        elif self.int_range:
            self.kind = "i"
            self.type_name = f"an integer ({self.int_range[0]})"
        elif t == FD.TYPE_BOOL:
            self.kind = "b"
            self.type_name = "true or false"
        elif t == FD.TYPE_STRING:
            self.kind = "s"
            self.type_name = "a string"
        elif t == FD.TYPE_BYTES:
            self.kind = "y"
            self.type_name = "a string"
        elif t == FD.TYPE_ENUM:
            self.kind = "e"
            self.enum_names = {v.name: v.number for v in fd.enum_type.values}
            self.enum_numbers = {v.number for v in fd.enum_type.values}
            self.type_name = f"one of {fd.enum_type.name}"
        else:  # pragma: no cover - every protobuf type is handled above
            raise TypeError(f"unsupported field type {t}")


_TABLES: dict[str, dict[str, _Field]] = {}


def field_table(descriptor) -> dict[str, _Field]:
    table = _TABLES.get(descriptor.full_name)
    if table is None:
        table = _TABLES[descriptor.full_name] = {fd.name: _Field(fd) for fd in descriptor.fields}
    return table


# --- scalar conversion (the literals' syntax: netdef.literals) ----------------------------


class _LazySpan:
    """Builds the Span only when a diagnostic needs it (the common path never does)."""

    __slots__ = ("source", "start", "end")

    def __init__(self, source, start, end):
        self.source, self.start, self.end = source, start, end

    def get(self) -> Span:
        return Span(self.source, self.start, self.end)


def _describe(kind: str, text: str) -> str:
    if kind == "STRING":
        return "a string"
    if kind == "NUMBER":
        return f"the number {text}"
    return f"the name {text}"


def _short(text: str) -> str:
    """A value as written, cut down for a one-line message."""
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def _suggest(name: str, allowed) -> list[str]:
    """Did-you-mean candidates: a case-insensitive match, else the closest names, keeping only
    those about as close as the best one (kernal_size suggests kernel_size, not kernel_w)."""
    lower = name.lower()
    same_case = [a for a in allowed if a.lower() == lower]
    if same_case:
        return same_case
    if len(name) > 2 * max(map(len, allowed), default=0):
        return []  # nothing can be close, and difflib's cost grows with the name's length
    scored = sorted(((difflib.SequenceMatcher(None, name, a).ratio(), a) for a in allowed), reverse=True)
    if not scored or scored[0][0] < 0.6:
        return []
    best = scored[0][0]
    return [a for r, a in scored[:3] if r >= 0.6 and r >= best - 0.08]


class Tok:
    """A token: its terminal name, text and character offsets."""

    __slots__ = ("type", "value", "start_pos", "end_pos")

    def __init__(self, type: str, value: str, start_pos: int, end_pos: int):
        self.type = type
        self.value = value
        self.start_pos = start_pos
        self.end_pos = end_pos

    def __repr__(self) -> str:
        return f"Tok({self.type}, {self.value!r}, {self.start_pos})"


class _Frame:
    __slots__ = ("msg", "table", "loc", "type_name", "raw", "open_char", "list_field")

    def __init__(self, msg, table, loc, type_name, raw=None, open_char="{"):
        self.msg = msg          # the protobuf message being filled, or None for a skipped block
        self.table = table
        self.loc = loc
        self.type_name = type_name
        self.raw = raw          # dict of plain values, for blocks netdef does not know
        self.open_char = open_char
        self.list_field = None  # (_Field or name, frame) while inside `name: [ ... ]`


class _Abort(Exception):
    """Stop parsing: the input is too deep to be a real definition."""


_CLOSERS = {"{": "}", "<": ">"}


class MessageFiller:
    """The lark inline transformer. One instance serves every parse (see parse.py's lock)."""

    def begin(self, source: Source, root, diags: Diagnostics):
        self.source = source
        self.diags = diags
        self.root_loc = Loc(source, 0, 0)
        self.stack = [_Frame(root, field_table(root.DESCRIPTOR), self.root_loc, root.DESCRIPTOR.name)]

    # -- helpers -------------------------------------------------------------------------
    def _span(self, start: int, end: int) -> Span:
        return Span(self.source, start, end)

    def _unknown(self, frame: _Frame, name_tok) -> None:
        name = name_tok.value
        span = self._span(name_tok.start_pos, name_tok.end_pos)
        fork = fork_of_field(frame.type_name, name)
        if fork:
            reading = reading_of_field(frame.type_name, name)
            if reading:
                self.diags.add(codes.FORK_FIELD_READ.at(span, field=name, message=frame.type_name, fork=fork,
                                                        reading=reading))
                return
            self.diags.add(codes.FORK_FIELD.at(span, field=name, message=frame.type_name, fork=fork))
            return
        if self.diags.full and self.diags.errors:
            # Past --max-errors the diagnostic is only counted: skip the suggestions, which
            # cost the most (a file of 100,000 misspelt fields took minutes).
            self.diags.add(codes.UNKNOWN_FIELD.at(span, field=name, message=frame.type_name))
            return
        allowed = sorted(frame.table)
        notes = []
        close = _suggest(name, allowed)
        if close:
            notes.append("did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
        # The whole list helps when nothing is close, or when it is short enough to read.
        if len(allowed) <= 10 or (not close and len(allowed) <= 24):
            notes.append(f"{frame.type_name} has the fields: " + ", ".join(allowed))
        self.diags.add(codes.UNKNOWN_FIELD.at(span, notes=notes, field=name, message=frame.type_name))

    def _v1_fork_type(self, frame: _Frame, value) -> bool:
        """A V1 `type: NAME` that only a fork's LayerType enum has (forks.V1_FORK_TYPES): kept in
        the layer's extra for the upgrade, with a warning naming the fork, instead of E204."""
        from .forks import V1_FORK_TYPE_NOTES, V1_FORK_TYPES
        if isinstance(value, list) or isinstance(value, tuple) or value.type != "NAME":
            return False
        known = V1_FORK_TYPES.get(value.value)
        if known is None:
            return False
        v2, fork = known
        note = V1_FORK_TYPE_NOTES.get(value.value)
        self.diags.add(codes.FORK_V1_TYPE.at(self._span(value.start_pos, value.end_pos), value=value.value,
                                             fork=fork, v2=v2, notes=[note] if note else []))
        # Kept as the enum word, so that fmt writes it back as written; upgrade maps it to v2.
        frame.loc.extra.setdefault("type", []).append(Ident(value.value))
        return True

    def _fork_enum(self, frame: _Frame, info: _Field, value) -> bool:
        """An enum value that only a fork has (forks.fork_of_enum_value): kept by name in the
        block's extra under the field's name, with a warning naming the fork, instead of E204."""
        from .forks import fork_of_enum_value
        if isinstance(value, (list, tuple)) or value.type != "NAME" or value.value in info.enum_names:
            return False
        fork = fork_of_enum_value(info.fd.enum_type.name, value.value)
        if fork is None:
            return False
        self.diags.add(codes.FORK_ENUM.at(self._span(value.start_pos, value.end_pos), value=value.value,
                                          enum=info.fd.enum_type.name, field=info.name, fork=fork))
        frame.loc.extra.setdefault(info.name, []).append(Ident(value.value))
        return True

    def _duplicate(self, frame: _Frame, info: _Field, name_tok) -> bool:
        """Report a non-repeated field given twice; True when it is a duplicate."""
        prev = frame.loc.fields.get(info.name)
        if not prev or info.repeated:
            return False
        first = prev[0]
        first_span = first.span if isinstance(first, Loc) else self._span(first[0], first[0] + len(info.name))
        self.diags.add(codes.DUPLICATE_FIELD.at(
            self._span(name_tok.start_pos, name_tok.end_pos), related=[(first_span, "first given here")],
            field=info.name, message=frame.type_name))
        return True

    def _convert(self, info: _Field, value):
        """Convert a scalar (token or list of string tokens) for a field; None after a diagnostic."""
        if isinstance(value, list):  # adjacent strings
            first, last = value[0], value[-1]
            kind, text = "STRING", None
        elif isinstance(value, tuple):  # "-" NAME
            first = last = value[1]
            kind, text = "NEG", "-" + value[1].value
        else:
            first = last = value
            kind, text = value.type, value.value
        span = _LazySpan(self.source, first.start_pos, last.end_pos)
        k = info.kind
        try:
            if kind == "STRING":
                if k not in "sy":
                    return self._wrong(info, span, "a string")
                data = b"".join(unescape(t.value[1:-1]) for t in value) if any("\\" in t.value for t in value) \
                    else "".join(t.value[1:-1] for t in value)
                if k == "y":
                    return data if isinstance(data, bytes) else data.encode("utf-8")
                if isinstance(data, bytes):
                    try:
                        return data.decode("utf-8")
                    except UnicodeDecodeError:
                        return self._wrong(info, span, "a string that is not valid UTF-8")
                return data
            if k == "f":
                if kind == "NUMBER":
                    return parse_float(text)
                word = text.lstrip("-").lower()
                if word in FLOAT_WORDS:
                    v = FLOAT_WORDS[word]
                    return -v if text.startswith("-") else v
                return self._wrong(info, span, _describe(kind, text))
            if k == "i":
                if kind != "NUMBER":
                    return self._wrong(info, span, _describe(kind, text))
                v = parse_int(text)
                if v is None:
                    return self._wrong(info, span, _describe(kind, text))
                tname, lo, hi = info.int_range
                if not lo <= v <= hi:
                    self.diags.add(codes.OUT_OF_RANGE.at(span.get(), value=_short(text), field=info.name, type=tname,
                                                         lo=lo, hi=hi))
                    return None
                return v
            if k == "b":
                if kind == "NAME" and text in BOOL_WORDS:
                    return BOOL_WORDS[text]
                if kind == "NUMBER" and text in ("0", "1"):
                    return text == "1"
                return self._wrong(info, span, _describe(kind, text))
            if k == "e":
                if kind == "NAME":
                    if text in info.enum_names:
                        return info.enum_names[text]
                    names = list(info.enum_names)
                    close = _suggest(text, names) if not (self.diags.full and self.diags.errors) else []
                    notes = [] if close and len(names) > 12 else \
                        [f"{info.fd.enum_type.name} values: " + ", ".join(names)]
                    if close:
                        notes.insert(0, "did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
                    self.diags.add(codes.UNKNOWN_ENUM.at(span.get(), notes=notes, value=_short(text),
                                                         enum=info.fd.enum_type.name, field=info.name))
                    return None
                if kind == "NUMBER":
                    v = parse_int(text)
                    if v is not None and v in info.enum_numbers:
                        return v
                    names = ", ".join(f"{n} ({v})" for n, v in info.enum_names.items())
                    self.diags.add(codes.UNKNOWN_ENUM.at(span.get(), notes=[f"{info.fd.enum_type.name} values: {names}"],
                                                         value=_short(text), enum=info.fd.enum_type.name, field=info.name))
                    return None
                return self._wrong(info, span, _describe(kind, text))
            if k in "sy":
                return self._wrong(info, span, _describe(kind, text))
        except BadEscape as e:
            where = span.get()
            for t in value if isinstance(value, list) else ():  # which string, and where in it
                try:
                    unescape(t.value[1:-1])
                except BadEscape as bad:
                    start = t.start_pos + 1 + bad.args[1]
                    where = Span(self.source, start, start + len(bad.args[0]))
                    break
            self.diags.add(codes.BAD_ESCAPE.at(where, escape=e.args[0], notes=[
                "escapes are \\n \\t \\r \\\\ \\\" \\' \\ooo (octal) \\xHH \\uHHHH; "
                "write a backslash itself as \\\\"]))
            return None
        except (ValueError, OverflowError):
            return self._wrong(info, span, _describe(kind, text))
        return self._wrong(info, span, _describe(kind, text))  # pragma: no cover

    def _wrong(self, info: _Field, span: _LazySpan, got: str):
        notes = []
        if info.kind == "s" and not got.startswith("a string"):
            written = got.split(" ", 2)[2] if got.startswith(("the name ", "the number ")) else \
                self.source.text[span.start:span.end]
            notes.append(f'strings are quoted: {info.name}: "{written}"')
        self.diags.add(codes.WRONG_TYPE.at(span.get(), notes=notes, field=info.name, expected=info.type_name, got=got))
        return None

    @staticmethod
    def _raw(value):
        """A scalar as a plain Python value, for fields netdef does not know."""
        if isinstance(value, list):
            return "".join(t.value[1:-1] for t in value)
        if isinstance(value, tuple):
            return -math.inf if value[1].value.lower().startswith("inf") else "-" + value[1].value
        text = value.value
        if value.type == "NUMBER":
            if len(text) > 40:  # kept as written, so that `netdef fmt` gives it back unchanged
                return Ident(text)
            v = parse_int(text)
            if v is not None:
                return v
            try:
                return parse_float(text)
            except ValueError:
                return text
        return BOOL_WORDS.get(text, text) if text in ("true", "false") else Ident(text)

    def _store_scalar(self, frame: _Frame, name_tok, value, list_item: bool):
        name = name_tok.value
        if frame.msg is None:  # inside a block netdef does not know: keep plain values
            frame.raw.setdefault(name, []).append(self._raw(value))
            return
        info = frame.table.get(name)
        if info is None:
            self._unknown(frame, name_tok)
            frame.loc.extra.setdefault(name, []).append(self._raw(value))
            return
        if info.kind == "m":
            self.diags.add(codes.SCALAR_FOR_MESSAGE.at(self._span(name_tok.start_pos, name_tok.end_pos),
                                                       field=name, message=info.fd.message_type.name))
            return
        if not list_item and self._duplicate(frame, info, name_tok):
            return
        if name == "type" and frame.type_name == "V1LayerParameter" and self._v1_fork_type(frame, value):
            return
        if info.kind == "e" and self._fork_enum(frame, info, value):
            return
        v = self._convert(info, value)
        if v is None:
            return
        first = value[0] if isinstance(value, list) else value[1] if isinstance(value, tuple) else value
        last = value[-1] if isinstance(value, list) else value[1] if isinstance(value, tuple) else value
        try:
            if info.repeated:
                getattr(frame.msg, name).append(v)
            else:
                setattr(frame.msg, name, v)
        except (ValueError, TypeError, OverflowError) as e:
            span = self._span(first.start_pos, last.end_pos)
            self.diags.add(codes.WRONG_TYPE.at(span, field=name, expected=info.type_name, got=f"{value} ({e})"))
            return
        frame.loc.fields.setdefault(name, []).append((name_tok.start_pos, first.start_pos, last.end_pos))

    def _push_message(self, frame: _Frame, name_tok, open_tok, in_list: bool):
        name = name_tok.value
        start = name_tok.start_pos
        loc = Loc(self.source, start, open_tok.end_pos)
        if len(self.stack) >= MAX_DEPTH:
            self.diags.add(codes.TOO_DEEP.at(self._span(open_tok.start_pos, open_tok.end_pos), limit=MAX_DEPTH))
            raise _Abort()
        open_char = open_tok.value
        if frame.msg is not None:
            info = frame.table.get(name)
            if info is not None and info.kind == "m":
                if not in_list and self._duplicate(frame, info, name_tok):
                    self.stack.append(_Frame(None, None, loc, name, raw={}, open_char=open_char))
                    return
                if info.repeated:
                    sub = getattr(frame.msg, name).add()
                else:
                    sub = getattr(frame.msg, name)
                    sub.SetInParent()
                frame.loc.fields.setdefault(name, []).append(loc)
                d = info.fd.message_type
                self.stack.append(_Frame(sub, field_table(d), loc, d.name, open_char=open_char))
                return
            if info is None:
                self._unknown(frame, name_tok)
            else:
                self.diags.add(codes.MESSAGE_FOR_SCALAR.at(self._span(start, name_tok.end_pos),
                                                           field=name, expected=info.type_name))
        raw: dict = {}
        if frame.msg is None:
            frame.raw.setdefault(name, []).append(raw)
        elif frame.table.get(name) is None:
            frame.loc.extra.setdefault(name, []).append(raw)
        self.stack.append(_Frame(None, None, loc, name, raw=raw, open_char=open_char))

    def _pop_message(self, close_tok):
        frame = self.stack.pop()
        frame.loc.end = close_tok.end_pos
        close = close_tok.value
        if _CLOSERS[frame.open_char] != close:
            self.diags.add(codes.MISMATCHED_CLOSE.at(self._span(close_tok.start_pos, close_tok.end_pos),
                                                     related=[(frame.loc.span, "block opened here")],
                                                     close=close, open=frame.open_char))

    # -- lark callbacks (named after grammar rules and aliases) ----------------------------
    def items(self, children):
        return None

    def elems(self, children):
        return None

    def start(self, children):
        return None

    def string(self, children):
        return children[0]

    def number(self, children):
        return children[0]

    def ident(self, children):
        return children[0]

    def neg_ident(self, children):
        return ("-", children[1])

    def strings(self, children):
        if len(children) == 1:
            return children
        children[0].append(children[1])
        return children[0]

    def scalar_field(self, children):
        self._store_scalar(self.stack[-1], children[0], children[2], False)

    def scalar_field_fused(self, children):
        name_tok, value = children[0]
        self._store_scalar(self.stack[-1], name_tok, value, False)

    def open(self, children):
        self._push_message(self.stack[-1], children[0], children[-1], False)

    def message_field(self, children):
        self._pop_message(children[-1])

    def list_open(self, children):
        frame = self.stack[-1]
        name_tok = children[0]
        name = name_tok.value
        info = frame.table.get(name) if frame.msg is not None else None
        if frame.msg is None:
            frame.raw.setdefault(name, [])  # so that `name: []` is kept, as at the top level
        else:
            if info is None:
                self._unknown(frame, name_tok)
                frame.loc.extra.setdefault(name, [])
            elif not info.repeated:
                self.diags.add(codes.WRONG_TYPE.at(self._span(name_tok.start_pos, name_tok.end_pos),
                                                   notes=[f"'{name}' is not repeated: give it once, as "
                                                          f"'{name}: value'; the [a, b, ...] form is for "
                                                          "repeated fields"],
                                                   field=name, expected=info.type_name, got="a list"))
                info = None
        frame.list_field = name_tok
        return None

    def list_scalar(self, children):
        frame = self.stack[-1]
        name_tok = frame.list_field
        info = frame.table.get(name_tok.value) if frame.msg is not None else None
        if frame.msg is not None and (info is None or not info.repeated):
            if info is None:
                frame.loc.extra.setdefault(name_tok.value, []).append(self._raw(children[0]))
            return  # already reported at the list's name
        self._store_scalar(frame, name_tok, children[0], True)

    def elem_open(self, children):
        frame = self.stack[-1]
        name_tok = frame.list_field
        info = frame.table.get(name_tok.value) if frame.msg is not None else None
        if frame.msg is not None and info is not None and not info.repeated:
            # Reported at the list's name; skip the element.
            raw: dict = {}
            self.stack.append(_Frame(None, None, Loc(self.source, name_tok.start_pos, children[0].end_pos),
                                     name_tok.value, raw=raw, open_char=children[0].value))
            return
        if frame.msg is not None and info is None:
            raw = {}
            frame.loc.extra.setdefault(name_tok.value, []).append(raw)
            self.stack.append(_Frame(None, None, Loc(self.source, name_tok.start_pos, children[0].end_pos),
                                     name_tok.value, raw=raw, open_char=children[0].value))
            return
        self._push_message(frame, name_tok, children[0], True)

    def list_message(self, children):
        self._pop_message(children[-1])

    def list_field(self, children):
        self.stack[-1].list_field = None
