"""Spans and diagnostics: where, what is wrong, and what is allowed.

Rendering follows the compilers people already read every day:

    net.prototxt:12:5: error[E202]: unknown field 'kernal_size' in ConvolutionParameter
       12 |     kernal_size: 3
          |     ^~~~~~~~~~~
    note: did you mean 'kernel_size'?
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .source import Source

ERROR = "error"
WARNING = "warning"
NOTE = "note"


@dataclass(frozen=True, slots=True)
class Span:
    source: Source
    start: int
    end: int

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def line(self) -> int:
        return self.source.line_col(self.start)[0]

    @property
    def col(self) -> int:
        return self.source.line_col(self.start)[1]

    def __str__(self) -> str:
        line, col = self.source.line_col(self.start)
        return f"{self.source.path}:{line}:{col}"

    def __repr__(self) -> str:
        return f"Span({self})"


@dataclass(slots=True)
class Diagnostic:
    code: str
    severity: str
    message: str
    span: Span | None = None
    notes: list[str] = field(default_factory=list)
    # Secondary places, e.g. the first definition of a duplicated field: (span, label).
    related: list[tuple[Span, str]] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def header(self) -> str:
        where = f"{self.span}: " if self.span is not None else ""
        return f"{where}{self.severity}[{self.code}]: {self.message}"

    def render(self, snippet: bool = True) -> str:
        out = [self.header()]
        if snippet and self.span is not None:
            out.extend(_snippet(self.span))
        for span, label in self.related:
            out.append(f"{span}: note: {label}")
            if snippet:
                out.extend(_snippet(span))
        out.extend(f"note: {n}" for n in self.notes)
        return "\n".join(out)

    def to_json(self) -> dict:
        d = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.span is not None:
            d.update(file=self.span.path, line=self.span.line, col=self.span.col)
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    def __str__(self) -> str:
        return self.render()


# Every control character but the tab (expanded), as '?'.
_VISIBLE = {c: "?" for c in [*range(32), 127] if c != 9}


def _snippet(span: Span) -> list[str]:
    src = span.source
    line, col = src.line_col(span.start)
    text = src.line_text(line)
    if not text.strip() and span.start >= len(src.text):
        return []
    end_line, end_col = src.line_col(max(span.start, span.end - 1) if span.end > span.start else span.start)
    width = (end_col - col + 1) if end_line == line and span.end > span.start else 1
    width = max(1, min(width, len(text) - col + 1 if len(text) >= col else 1))
    # Control characters are shown as '?' (one column, as they count), then tabs expanded to
    # the next multiple of 4 so that the caret lines up. Both in C: a line can be a whole file.
    shown_text = text.translate(_VISIBLE).expandtabs(4)
    caret_at = len(text[:col - 1].translate(_VISIBLE).expandtabs(4))
    if len(shown_text) > 200:  # one-line files (minified, fuzzed) must not flood the terminal
        lo = max(0, caret_at - 80)
        shown_text = ("..." if lo else "") + shown_text[lo:lo + 160] + "..."
        caret_at = caret_at - lo + (3 if lo else 0)
        width = min(width, 160)
    gutter = str(line)
    pad = " " * len(gutter)
    return [f" {gutter} | {shown_text}", f" {pad} | {' ' * caret_at}^{'~' * (width - 1)}"]


def byte_span(path: str, offset: int = 0) -> Span:
    """A place in a binary file: rendered `path:1:<offset + 1>:`, without a snippet."""
    from .source import BinarySource
    return Span(BinarySource(path), offset, offset + 1)


class DiagnosticError(Exception):
    """Raised when a stage cannot go on; carries every diagnostic collected so far."""

    def __init__(self, diagnostics):
        self.diagnostics = list(diagnostics)
        # How many the collector left out past its limit, so the CLI can say so.
        self.dropped = getattr(diagnostics, "dropped", 0)
        super().__init__("\n".join(d.header() for d in self.diagnostics[:5]))


class Diagnostics:
    """A collector. Stages append to it and carry on; callers decide when errors are fatal.

    At most `limit` diagnostics are kept (the rest are counted in `dropped`), with one
    exception: the first error is always kept, so that a run that fails shows why even when
    warnings filled the collector. Errors left out still count: `has_errors` and
    `error_count` see them, so a dropped error can never turn a failure into a success."""

    def __init__(self, limit: int = 100):
        self.items: list[Diagnostic] = []
        self.limit = limit
        self.dropped = 0
        self.dropped_errors = 0

    def add(self, diag: Diagnostic) -> Diagnostic:
        if len(self.items) >= self.limit and not (diag.is_error and not self.errors):
            self.dropped += 1
            self.dropped_errors += diag.is_error
        else:
            self.items.append(diag)
        return diag

    def extend(self, diags) -> None:
        for d in diags:
            self.add(d)
        # Errors another collector left out are still errors here.
        self.dropped_errors += getattr(diags, "dropped_errors", 0)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.is_error]

    @property
    def error_count(self) -> int:
        """Errors added so far, shown or not."""
        return sum(d.is_error for d in self.items) + self.dropped_errors

    @property
    def has_errors(self) -> bool:
        return self.dropped_errors > 0 or any(d.is_error for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise DiagnosticError(self)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class CliError(Exception):
    """A failure with a one-line message and no source location (exit code 1)."""


class UsageError(Exception):
    """The command line itself is wrong (exit code 2)."""
