"""Spans and diagnostics: where, what is wrong, and what is allowed.

Rendering follows the compilers people already read every day:

    net.prototxt:12:5: error[E202]: unknown field 'kernal_size' in ConvolutionParameter
       12 |     kernal_size: 3
          |     ^~~~~~~~~~~
    note: did you mean 'kernel_size'?

This module imports nothing from netdef: codes.py (the catalogue of diagnostics) builds on it,
and source.py (reading definitions) on both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

ERROR = "error"
WARNING = "warning"
NOTE = "note"


class Text(Protocol):
    """What a Span points into: a netdef.source.Source, or a BinarySource below."""

    path: str
    text: str

    def line_col(self, offset: int) -> tuple[int, int]: ...

    def line_text(self, line: int) -> str: ...


class BinarySource:
    """A binary file (a .caffemodel), for diagnostics: it has no lines, so a position is
    shown as line 1 and column offset + 1, i.e. `model.caffemodel:1:513:` is byte 512."""

    __slots__ = ("path", "text")

    def __init__(self, path: str):
        self.path = path
        self.text = ""

    def line_col(self, offset: int) -> tuple[int, int]:
        return 1, max(0, offset) + 1

    def line_text(self, line: int) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class Span:
    source: Text
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

    @property
    def end_line_col(self) -> tuple[int, int]:
        """Line and column just past the span's last character (exclusive, as LSP and SARIF
        count), never before the start."""
        return self.source.line_col(max(self.start, self.end))

    def location(self) -> dict:
        """The span for machine-readable output: 1-based start and exclusive end."""
        line, col = self.source.line_col(self.start)
        end_line, end_col = self.end_line_col
        return {"file": self.source.path, "line": line, "col": col, "end_line": end_line, "end_col": end_col}

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

    def header(self, color: bool = False) -> str:
        if not color:
            where = f"{self.span}: " if self.span is not None else ""
            return f"{where}{self.severity}[{self.code}]: {self.message}"
        where = f"{_BOLD}{self.span}:{_RESET} " if self.span is not None else ""
        tint = _SEVERITY_COLOR.get(self.severity, _BOLD)
        return f"{where}{tint}{self.severity}[{self.code}]{_RESET}: {_BOLD}{self.message}{_RESET}"

    def render(self, snippet: bool = True, color: bool = False) -> str:
        """The diagnostic as text; with color, ANSI colours as rustc and ruff use them
        (severity and code in the severity's colour, the caret line too, notes in cyan)."""
        tint = _SEVERITY_COLOR.get(self.severity, _BOLD) if color else ""
        note = f"{_NOTE}note{_RESET}" if color else "note"
        out = [self.header(color)]
        if snippet and self.span is not None:
            out.extend(_snippet(self.span, tint))
        for span, label in self.related:
            out.append(f"{_BOLD}{span}:{_RESET} {note}: {label}" if color else f"{span}: note: {label}")
            if snippet:
                out.extend(_snippet(span, _NOTE if color else ""))
        out.extend(f"{note}: {n}" for n in self.notes)
        return "\n".join(out)

    def to_json(self) -> dict:
        """Machine-readable form: the location as start line/col and exclusive end line/col
        (absent for a diagnostic without a place), and every note, those with a place of
        their own (the first definition of a duplicated field, ...) with its location."""
        d = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.span is not None:
            d.update(self.span.location())
        notes = [dict(span.location(), message=label) for span, label in self.related]
        notes += [{"message": n} for n in self.notes]
        d["notes"] = notes
        return d

    def __str__(self) -> str:
        return self.render()


# Every control character but the tab (expanded), as '?'.
_VISIBLE = {c: "?" for c in [*range(32), 127] if c != 9}


_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_NOTE = "\x1b[1;36m"
_BLUE = "\x1b[1;34m"
_SEVERITY_COLOR = {ERROR: "\x1b[1;31m", WARNING: "\x1b[1;33m", NOTE: _NOTE}


def _snippet(span: Span, tint: str = "") -> list[str]:
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
    caret = f"^{'~' * (width - 1)}"
    if tint:
        return [f"{_BLUE} {gutter} |{_RESET} {shown_text}", f"{_BLUE} {pad} |{_RESET} {' ' * caret_at}{tint}{caret}{_RESET}"]
    return [f" {gutter} | {shown_text}", f" {pad} | {' ' * caret_at}{caret}"]


# --- for CI systems ----------------------------------------------------------------------------

def _gh_data(text: str) -> str:
    # GitHub's workflow-command escaping (actions/toolkit, command.ts: escapeData/escapeProperty).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(d: Diagnostic) -> str:
    """One GitHub Actions workflow command, which the run's page shows on the line:
    `::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=CODE::message`."""
    kind = {ERROR: "error", WARNING: "warning"}.get(d.severity, "notice")
    props = []
    if d.span is not None:
        loc = d.span.location()
        props += [f"file={_gh_property(loc['file'])}", f"line={loc['line']}", f"col={loc['col']}",
                  f"endLine={loc['end_line']}", f"endColumn={loc['end_col']}"]
    props.append(f"title={_gh_property(d.code)}")
    text = d.message
    for span, label in d.related:
        text += f"\nnote: {span}: {label}"
    for n in d.notes:
        text += f"\nnote: {n}"
    return f"::{kind} {','.join(props)}::{_gh_data(text)}"


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _sarif_region(span: Span) -> dict:
    loc = span.location()
    return {"artifactLocation": {"uri": _sarif_uri(loc["file"])},
            "region": {"startLine": loc["line"], "startColumn": loc["col"],
                       "endLine": loc["end_line"], "endColumn": loc["end_col"]}}


def _sarif_uri(path: str) -> str:
    from urllib.parse import quote
    return quote(path.replace("\\", "/"), safe="/:")


def sarif_log(diags, tool_version: str, known: dict | None = None) -> dict:
    """A SARIF 2.1.0 log (OASIS) of one run: a rule per code used, a result per diagnostic;
    columns are 1-based and endColumn exclusive, SARIF's defaults. `known` maps a code to its
    codes.Code (whose template describes the rule): codes.all_codes()."""
    diags = list(diags)
    known = known or {}
    rule_ids = list(dict.fromkeys(d.code for d in diags))
    rules = []
    for rid in rule_ids:
        code = known.get(rid)
        rule = {"id": rid}
        if code is not None and code.template != "{message}":
            rule["shortDescription"] = {"text": code.template}
        rules.append(rule)
    results = []
    for d in diags:
        text = d.message + "".join(f"\nnote: {n}" for n in d.notes)
        r = {"ruleId": d.code, "ruleIndex": rule_ids.index(d.code),
             "level": {ERROR: "error", WARNING: "warning"}.get(d.severity, "note"),
             "message": {"text": text}}
        if d.span is not None:
            r["locations"] = [{"physicalLocation": _sarif_region(d.span)}]
        if d.related:
            r["relatedLocations"] = [{"id": i, "physicalLocation": _sarif_region(span), "message": {"text": label}}
                                     for i, (span, label) in enumerate(d.related)]
        results.append(r)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "netdef", "version": tool_version, "rules": rules}},
                      "columnKind": "unicodeCodePoints", "results": results}]}


def byte_span(path: str, offset: int = 0) -> Span:
    """A place in a binary file: rendered `path:1:<offset + 1>:`, without a snippet."""
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
