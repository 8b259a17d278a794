"""The span tree of a parsed definition: one Loc per message, remembering where the message
and each of its fields were written, so that every later stage (the build, the passes, fmt,
upgrade, the language server) can point at the text.

netdef.transform fills it while parsing; an upgrade or an export that rewrites a message
makes the Loc tree to match (Loc.copy).
"""
from __future__ import annotations

from .diagnostics import Span
from .source import Source


class Loc:
    """Where one message was written: the `name {` head, its end, and each field's place.

    fields maps a field name to one entry per occurrence, in order (so entry i belongs to
    element i of a repeated field): a (name_start, value_start, value_end) tuple for a
    scalar, a Loc for a message.
    """

    __slots__ = ("source", "name_start", "head_end", "end", "fields", "extra")

    def __init__(self, source: Source, name_start: int, head_end: int):
        self.source = source
        self.name_start = name_start
        self.head_end = head_end
        self.end = head_end
        self.fields: dict[str, list] = {}
        self.extra: dict[str, list] = {}

    @property
    def span(self) -> Span:
        """The head of the block: `layer {`."""
        return Span(self.source, self.name_start, self.head_end)

    @property
    def full_span(self) -> Span:
        return Span(self.source, self.name_start, self.end)

    def count(self, name: str) -> int:
        return len(self.fields.get(name, ()))

    def entry(self, name: str, index: int = 0):
        entries = self.fields.get(name)
        if not entries or index >= len(entries) or index < -len(entries):
            return None
        return entries[index]

    def field(self, name: str, index: int = 0) -> Span | None:
        """The span of a field's value (a scalar) or of its `name {` head (a message)."""
        e = self.entry(name, index)
        if e is None:
            return None
        if isinstance(e, Loc):
            return e.span
        return Span(self.source, e[1], e[2])

    def name_span(self, name: str, index: int = 0) -> Span | None:
        e = self.entry(name, index)
        if e is None:
            return None
        if isinstance(e, Loc):
            return e.span
        return Span(self.source, e[0], e[0] + len(name))

    def msg(self, name: str, index: int = 0) -> "Loc | None":
        e = self.entry(name, index)
        return e if isinstance(e, Loc) else None

    def field_or_self(self, name: str, index: int = 0) -> Span:
        """The field's span if it was written, else this block's head (for defaults)."""
        return self.field(name, index) or self.span

    # -- making Locs for rewritten messages (netdef.upgrade) ------------------------------------

    def blank(self) -> "Loc":
        """A Loc with no fields of its own, spanning this one's head and extent."""
        loc = Loc(self.source, self.name_start, self.head_end)
        loc.end = self.end
        return loc

    def sub(self, name: str, make_at: "Loc") -> "Loc":
        """The Loc of sub-message `name`, made (spanning `make_at`'s head) if absent."""
        sub = self.msg(name)
        if sub is None:
            sub = make_at.blank()
            self.fields[name] = [sub]
        return sub

    def locs(self, name: str, n: int) -> "list[Loc]":
        """The n Locs of repeated message field `name`; a parse always has them all, but a
        message built by hand may not, and a missing Loc must not lose a message."""
        entries = [e if isinstance(e, Loc) else self.blank() for e in self.fields.get(name, [])[:n]]
        return entries + [self.blank() for _ in range(n - len(entries))]

    def around(self, entries: list, fields: dict) -> "Loc":
        """A Loc for a message made up from other messages' entries (places of scalars, or
        Locs), with `fields`: it spans the first of them (this Loc's head when there are none)."""
        tuples = [e for e in entries if e is not None and not isinstance(e, Loc)]
        locs = [e for e in entries if isinstance(e, Loc)]
        if not tuples and not locs:
            loc = self.blank()
            loc.fields = {k: v for k, v in fields.items() if v}
            return loc
        if tuples:
            start, end = tuples[0][0], tuples[0][2]
            last = max(e[2] for e in tuples)
        else:
            start, end, last = locs[0].name_start, locs[0].head_end, locs[0].end
        loc = Loc(self.source, start, end)
        loc.end = max([last] + [sub.end for sub in locs])
        loc.fields = {k: v for k, v in fields.items() if v}
        return loc

    def copy(self, fields: dict | None = None) -> "Loc":
        """A new Loc over the same text (the same places), with `fields` (default: a shallow
        copy of this one's) and a copy of the kept unknown fields."""
        new = Loc(self.source, self.name_start, self.head_end)
        new.end = self.end
        new.fields = dict(self.fields) if fields is None else fields
        new.extra = dict(self.extra)
        return new

    def __repr__(self) -> str:
        return f"Loc({self.span}, fields={list(self.fields)})"
