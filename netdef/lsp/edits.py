"""Edits: formatting (netdef fmt, comments kept), rename of a blob or a layer, quick fixes for
the diagnostics that say "did you mean", and inlay hints with each top's shape."""
from __future__ import annotations

import re

from lsprotocol import types as t

from ..fmt import quote
from ..ir import fmt_shape
from .diagnostics import lsp_range, to_lsp
from .document import Document
from .navigation import _layer_name_at




# --- formatting ----------------------------------------------------------------------------

def formatting(doc: Document) -> list[t.TextEdit] | None:
    """The whole document in netdef's canonical form; nothing when it has errors (values with
    errors are not in the message, so formatting would lose them), as `netdef fmt` refuses."""
    from ..fmt import format_parsed
    from ..parse import parse_text

    parsed = parse_text(doc.source)  # the text as written: V1 stays V1, as with `netdef fmt`
    if parsed.diagnostics.has_errors:
        return None
    text = format_parsed(parsed)
    if text == doc.text:
        return []
    end = doc.offset_to_position(len(doc.text))
    return [t.TextEdit(t.Range(t.Position(0, 0), t.Position(*end)), text)]


# --- rename --------------------------------------------------------------------------------

def _rename_target(doc: Document, offset: int):
    """("blob", name, [(start, end)]) or ("layer", name, [...]): the values a rename rewrites."""
    use = doc.blob_at(offset)
    if use is not None:
        return "blob", use.name, [(u.start, u.end) for u in doc.blobs if u.name == use.name]
    ref = _layer_name_at(doc, offset)
    if ref is not None:
        spans = []
        for r in doc.layers:
            e = r.loc.entry("name")
            if r.name == ref.name and isinstance(e, tuple):
                spans.append((e[1], e[2]))
        return "layer", ref.name, spans
    return None


def prepare_rename(doc: Document, offset: int):
    target = _rename_target(doc, offset)
    if target is None:
        return None
    for start, end in target[2]:
        if start <= offset <= end:
            return t.PrepareRenamePlaceholder(lsp_range(doc, start, end), target[1])
    return None


def rename(doc: Document, offset: int, new_name: str) -> t.WorkspaceEdit | None:
    target = _rename_target(doc, offset)
    if target is None:
        return None
    text = quote(new_name)
    edits = [t.TextEdit(lsp_range(doc, s, e), text) for s, e in target[2]]
    return t.WorkspaceEdit(changes={doc.uri: edits})


# --- quick fixes ---------------------------------------------------------------------------

_DID_YOU_MEAN = re.compile(r"^did you mean (.*)\?$")
_CANDIDATE = re.compile(r"'([^']*)'")


def code_actions(doc: Document, start: int, end: int) -> list[t.CodeAction]:
    actions = []
    for d in doc.diagnostics:
        if d.span is None or d.span.source is not doc.source:
            continue
        if d.span.end < start or d.span.start > end:
            continue
        for note in d.notes:
            m = _DID_YOU_MEAN.match(note)
            if not m:
                continue
            written = doc.text[d.span.start:d.span.end]
            q = written[0] if written[:1] in ("'", '"') else ""
            for cand in _CANDIDATE.findall(m.group(1)):
                new = quote(cand) if q == '"' else f"{q}{cand}{q}"
                diag = to_lsp(doc, d)
                actions.append(t.CodeAction(
                    title=f"Replace with '{cand}'", kind=t.CodeActionKind.QuickFix, diagnostics=[diag],
                    is_preferred=len(actions) == 0,
                    edit=t.WorkspaceEdit(changes={doc.uri: [t.TextEdit(diag.range, new)]})))
    return actions


# --- inlay hints ---------------------------------------------------------------------------

def inlay_hints(doc: Document, start: int, end: int) -> list[t.InlayHint]:
    hints = []
    for ref in doc.layers:
        if ref.loc.end < start:
            continue
        if ref.loc.name_start > end:
            break
        node = ref.node
        if node is None:
            continue
        tops = ref.loc.fields.get("top", [])
        for k, v in enumerate(node.outputs):
            if k >= len(tops) or not isinstance(tops[k], tuple):
                continue
            shape = v.meta.get("shape")
            if shape is None:
                continue
            hints.append(t.InlayHint(t.Position(*doc.offset_to_position(tops[k][2])), fmt_shape(shape, "x"),
                                     kind=t.InlayHintKind.Type, padding_left=True))
    return hints
