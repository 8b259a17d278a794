"""Navigation: go to the layer that wrote the version of a blob a `bottom` reads (through in-place
chains), every use of a blob or layer name, the layers as an outline, and a solver's net files
as definitions and links."""
from __future__ import annotations

import os

from lsprotocol import types as t

from ..ir import fmt_shape
from ..parse import SOLVER
from .diagnostics import lsp_range
from .document import Document, uri_of

NET_FIELDS = ("net", "train_net", "test_net")


def _net_field_at(doc: Document, offset: int):
    """(field, index, entry) when the offset is on the value of a solver's net path."""
    if doc.kind != SOLVER or doc.parsed is None:
        return None
    chain, field = doc.locate(offset)
    if field is None or len(chain) != 1:
        return None
    name, entry, _ = field
    if name not in NET_FIELDS or not isinstance(entry, tuple) or offset < entry[1]:
        return None
    index = doc.parsed.loc.fields[name].index(entry)
    return name, index, entry


def _net_target(doc: Document, name: str, index: int) -> str | None:
    from ..solver import resolve_net_path

    msg = doc.parsed.message
    value = msg.test_net[index] if name == "test_net" else getattr(msg, name)
    found, _, _ = resolve_net_path(value, os.path.dirname(os.path.abspath(doc.path)))
    return found


def definition(doc: Document, offset: int) -> list[t.Location] | None:
    use = doc.blob_at(offset)
    if use is not None:
        prod = doc.producer_of(use)
        if prod is None:
            return None
        return [t.Location(doc.uri, lsp_range(doc, prod.start, prod.end))]
    net = _net_field_at(doc, offset)
    if net is not None:
        found = _net_target(doc, net[0], net[1])
        if found is not None:
            return [t.Location(uri_of(found), t.Range(t.Position(0, 0), t.Position(0, 0)))]
    return None


def _layer_name_at(doc: Document, offset: int):
    ref = doc.layer_at(offset)
    if ref is None:
        return None
    e = ref.loc.entry("name")
    if isinstance(e, tuple) and e[1] <= offset <= e[2]:
        return ref
    return None


def references(doc: Document, offset: int, include_declaration: bool = True) -> list[t.Location] | None:
    use = doc.blob_at(offset)
    if use is not None:
        return [t.Location(doc.uri, lsp_range(doc, u.start, u.end)) for u in doc.blobs if u.name == use.name]
    ref = _layer_name_at(doc, offset)
    if ref is not None:
        out = []
        for r in doc.layers:
            e = r.loc.entry("name")
            if r.name == ref.name and isinstance(e, tuple):
                out.append(t.Location(doc.uri, lsp_range(doc, e[1], e[2])))
        return out
    return None


def document_symbols(doc: Document) -> list[t.DocumentSymbol]:
    if doc.parsed is None or doc.parsed.loc is None:
        return []
    out = []
    if doc.kind == SOLVER:
        starts, items = doc.entries(doc.parsed.loc)
        for name, e in items:
            if isinstance(e, tuple):
                rng = lsp_range(doc, e[0], e[2])
                out.append(t.DocumentSymbol(name=name, kind=t.SymbolKind.Property, range=rng, selection_range=rng,
                                            detail=doc.text[e[1]:e[2]][:80]))
        return out
    for ref in doc.layers:
        loc = ref.loc
        rng = lsp_range(doc, loc.name_start, loc.end)
        e = loc.entry("name")
        sel = lsp_range(doc, e[1], e[2]) if isinstance(e, tuple) else lsp_range(doc, loc.name_start, loc.head_end)
        shapes = ""
        if ref.node is not None and ref.node.outputs:
            shapes = " -> " + ", ".join(fmt_shape(v.meta.get("shape"), "x") for v in ref.node.outputs)
        out.append(t.DocumentSymbol(name=ref.name or "(unnamed)", kind=t.SymbolKind.Class, range=rng,
                                    selection_range=sel, detail=ref.type + shapes))
    return out


def document_links(doc: Document) -> list[t.DocumentLink]:
    if doc.kind != SOLVER or doc.parsed is None:
        return []
    links = []
    for name in NET_FIELDS:
        for i, e in enumerate(doc.parsed.loc.fields.get(name, [])):
            if not isinstance(e, tuple):
                continue
            found = _net_target(doc, name, i)
            if found is not None:
                links.append(t.DocumentLink(lsp_range(doc, e[1], e[2]), target=uri_of(found),
                                            tooltip=os.path.relpath(found, os.path.dirname(os.path.abspath(doc.path)))))
    return links
