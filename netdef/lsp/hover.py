"""Hovers: a layer (type, output shapes, receptive field, parameters, MACs and the formula that
gave its output size, with its own numbers), a field (schema type, default, documentation,
origin) and a blob name (who writes this version, who reads it, its shape)."""
from __future__ import annotations

import re

from lsprotocol import types as t

from ..ir import fmt_num, fmt_shape
from ..layers.base import prod
from .diagnostics import lsp_range
from .document import Document, LayerRef
from .schema import field_markdown


def _rf(rf) -> str:
    if rf is None:
        return "-"
    if rf.whole:
        return "whole input"
    size = "x".join(fmt_num(s) for s in rf.size)
    stride = "x".join(fmt_num(s) for s in rf.stride)
    return f"size {size}, stride {stride}"


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


# --- output-size formulas -------------------------------------------------------------------

def formula_markdown(node) -> list[str]:
    """netdef.formula's lines as Markdown: each formula in a code span, its note after it."""
    from ..formula import formula

    out = []
    for line in formula(node):
        text = f"`{line.math}`" if line.math else ""
        out.append(f"{text} ({line.note})" if text and line.note else text or line.note)
    return out


# --- hovers ---------------------------------------------------------------------------------

def layer_markdown(doc: Document, ref: LayerRef) -> str:
    from ..forks import fork_of_layer_type
    from ..layers import get

    head = f"**{ref.name or '(unnamed layer)'}**: `{ref.type}`"
    impl = get(ref.type)
    if impl is not None:
        head += f" ({type(impl).__module__.rsplit('.', 1)[-1]} family)"
    else:
        fork = fork_of_layer_type(ref.type)
        head += f", from {fork}" if fork else ", a type netdef does not know"
    parts = [head]
    node = ref.node
    if node is None:
        why = "the file has errors that stop the analysis" if doc.graph is None or not doc.graph.nodes else \
            "it is not in the TEST-phase net (its include/exclude rules leave it out)"
        parts.append(f"Not analysed: {why}.")
        return "\n\n".join(parts)
    rows = ["| blob | shape | receptive field |", "|---|---|---|"]
    for v in node.inputs:
        rows.append(f"| in `{v.label}` | {fmt_shape(v.meta.get('shape'), 'x')} | {_rf(v.meta.get('rf'))} |")
    for v in node.outputs:
        rows.append(f"| out `{v.label}` | {fmt_shape(v.meta.get('shape'), 'x')} | {_rf(v.meta.get('rf'))} |")
    parts.append("\n".join(rows))
    stats = []
    params = node.meta.get("params")
    if params is not None:
        n = sum(prod(s) for s in params)
        stats.append(f"parameters: {n:,}" + (f" ({', '.join(fmt_shape(s, 'x') for s in params)})" if params else ""))
    if node.meta.get("stat_params"):
        stats.append(f"statistics: {sum(prod(s) for s in node.meta['stat_params']):,}")
    cost = node.meta.get("cost")
    if cost:
        stats.append(f"MACs: {_si(cost.get('macs', 0))}, FLOPs: {_si(cost.get('flops', 0))} (batch of "
                     f"{node.outputs[0].meta['shape'][0] if node.outputs and node.outputs[0].meta.get('shape') else '?'})")
    if node.meta.get("unknown"):
        stats.append("netdef cannot infer shapes through this layer")
    if stats:
        parts.append("  \n".join(stats))
    formula = formula_markdown(node)
    if formula:
        parts.append("Output size:  \n" + "  \n".join(formula))
    return "\n\n".join(parts)


def blob_markdown(doc: Document, use) -> str:
    producer = doc.producer_of(use) if use.role != "input" else use
    value = doc.value_of(producer) if producer is not None else None
    if value is None:
        value = doc.value_of(use)
    parts = [f"**{use.name}** (blob)"]
    if value is not None:
        parts[0] += f" `{fmt_shape(value.meta.get('shape'), 'x')}`"
        if value.meta.get("rf") is not None:
            parts.append(f"receptive field: {_rf(value.meta['rf'])}")
        if value.version:
            parts.append(f"version {value.version}: rewritten in place")
    if producer is None:
        parts.append("produced by: nothing above this layer")
    elif producer.role == "input":
        parts.append("produced by: the net's `input:`")
    else:
        p = doc.layers[producer.layer]
        line = doc.offset_to_position(p.loc.name_start)[0] + 1
        parts.append(f"produced by: `{p.name}` ({p.type}, line {line})")
    if value is not None:
        readers = [f"`{n.name}`" for n in value.consumers]
        parts.append("read by: " + (", ".join(readers[:20]) + (" ..." if len(readers) > 20 else "")
                                    if readers else "nothing (a net output)"))
    else:
        readers = sorted({doc.layers[u.layer].name for u in doc.blobs if u.role == "bottom" and u.name == use.name})
        parts.append("read by: " + (", ".join(f"`{r}`" for r in readers[:20]) or "nothing"))
    return "\n\n".join(parts)


_WORD = re.compile(r"[A-Za-z_]\w*")
_FIELD_AFTER = re.compile(r"\s*:?\s*[{<]|\s*:")


def _unknown_field(doc: Document, offset: int, chain) -> t.Hover | None:
    """A field the schema lacks (a fork's, or a typo) is not in the Loc tree: find the word."""
    text = doc.text
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    m = _WORD.match(text, start)
    if m is None or not chain or not _FIELD_AFTER.match(text, m.end()) or m.end() < offset:
        return None
    desc = chain[-1][2]
    if desc is None:
        return None
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, field_markdown(desc, m.group(0))),
                   lsp_range(doc, m.start(), m.end()))


def hover(doc: Document, offset: int) -> t.Hover | None:
    if doc.parsed is None:
        return None
    use = doc.blob_at(offset)
    if use is not None and use.start <= offset <= use.end:
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, blob_markdown(doc, use)),
                       lsp_range(doc, use.start, use.end))
    chain, field = doc.locate(offset)
    if field is None:
        return _unknown_field(doc, offset, chain)
    name, entry, desc = field
    if isinstance(entry, tuple):
        start, vstart, vend = entry
        on_name = offset <= start + len(name)
        rng = lsp_range(doc, start, start + len(name)) if on_name else lsp_range(doc, vstart, vend)
        if not on_name and len(chain) == 2 and chain[1][0] in ("layer", "layers") and name in ("name", "type"):
            ref = doc.layer_at(offset)
            if ref is not None:
                return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, layer_markdown(doc, ref)), rng)
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, field_markdown(desc, name)), rng)
    rng = lsp_range(doc, entry.name_start, entry.head_end)
    if len(chain) == 1 and name in ("layer", "layers"):
        ref = doc.layer_at(offset)
        if ref is not None:
            return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, layer_markdown(doc, ref)), rng)
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, field_markdown(desc, name)), rng)
