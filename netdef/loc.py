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
