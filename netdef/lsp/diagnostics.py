"""netdef's diagnostics as LSP diagnostics.

The code, severity and message are netdef's own (what `netdef check` prints); the range is the
span's start and end; a diagnostic's secondary places (`first given here`, ...) and its
`note:` lines become related information (notes at the diagnostic's own range, since they have
no place of their own), so an editor shows everything the terminal shows.
"""
from __future__ import annotations

from lsprotocol import types as t

from .document import Document, uri_of

_SEVERITY = {"error": t.DiagnosticSeverity.Error, "warning": t.DiagnosticSeverity.Warning,
             "note": t.DiagnosticSeverity.Information}


def lsp_range(doc: Document, start: int, end: int) -> t.Range:
    a = doc.offset_to_position(start)
    b = doc.offset_to_position(max(start, end))
    return t.Range(t.Position(*a), t.Position(*b))


def _range_in(doc: Document, span) -> t.Range:
    """The range of a span in whatever file it points into (a net file named by a solver)."""
    if span.source is doc.source:
        return lsp_range(doc, span.start, span.end)
    src = span.source
    l1, c1 = src.line_col(span.start)
    l2, c2 = src.line_col(max(span.start, span.end))
    return t.Range(t.Position(l1 - 1, c1 - 1), t.Position(l2 - 1, c2 - 1))


def to_lsp(doc: Document, d) -> t.Diagnostic:
    if d.span is not None and d.span.source is doc.source:
        rng = lsp_range(doc, d.span.start, d.span.end)
    else:
        rng = t.Range(t.Position(0, 0), t.Position(0, 0))
    related = []
    for span, label in d.related:
        uri = doc.uri if span.source is doc.source else uri_of(span.path)
        related.append(t.DiagnosticRelatedInformation(t.Location(uri, _range_in(doc, span)), label))
    for note in d.notes:
        related.append(t.DiagnosticRelatedInformation(t.Location(doc.uri, rng), f"note: {note}"))
    return t.Diagnostic(range=rng, message=d.message, severity=_SEVERITY.get(d.severity, t.DiagnosticSeverity.Error),
                        code=d.code, source="netdef", related_information=related or None,
                        data={"notes": list(d.notes)} if d.notes else None)


def lsp_diagnostics(doc: Document) -> list[t.Diagnostic]:
    return [to_lsp(doc, d) for d in doc.diagnostics]
