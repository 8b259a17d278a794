"""Re-analysing one layer's edit instead of the whole file.

Most edits change a value inside one `layer { ... }` block: a kernel size, a num_output, a
filler. For those the previous analysis is reused:

  1. the text that changed is found (common prefix and suffix of the old and new text); it
     must lie inside one layer block of a net already analysed without syntax errors;
  2. that block alone is parsed (the rest of the text blanked out, so offsets stay those of
     the file), and must still be one `layer` block;
  3. if the layer's name, type, bottoms, tops, include/exclude rules and parameter names are
     unchanged, the graph's topology is, and with it the build's diagnostics, unused tops and
     dead layers. The new parameters replace the old in the message and the node, every
     location after the block moves by the edit's length, and
  4. the layer is checked again (verify's per-layer checks), then shapes, receptive fields and
     cost are recomputed for it and for the layers after it whose inputs changed, in file order
     (a layer's results depend only on its inputs and its own parameters, once shared
     parameters, `param { name }`, are ruled out).

Anything else (a syntax error, an edit between layers, a new bottom, a V1 file, ...) is analysed
from scratch, as is any file past the diagnostics limit. The result is the same as a full
analysis; tests/test_lsp_incremental.py compares the two on random edits of zoo files.

The previous Document is consumed: its graph, messages and locations are updated in place (the
server never reads a Document again once a newer text exists).
"""
from __future__ import annotations

import bisect

from .. import codes
from ..diagnostics import Diagnostics, Span
from ..passes import cost, receptive_field, shapes, verify
from ..parse import NET, parse_text
from ..source import Source
from ..loc import Loc
from .document import Document, common_prefix, line_starts


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    la, lb = len(a), len(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[la - mid:la - lo] == b[lb - mid:lb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _topology(lp) -> tuple:
    return (lp.name, lp.type, tuple(lp.bottom), tuple(lp.top), lp.HasField("phase") and lp.phase,
            tuple(r.SerializeToString() for r in lp.include), tuple(r.SerializeToString() for r in lp.exclude),
            tuple(p.name for p in lp.param), lp.type == "BatchNorm" and len(lp.param) == 3)


def _shift_tree(root: Loc, at: int, delta: int, spread: set) -> None:
    """Move every place at or after `at` by delta, in place. Blocks that end before `at` are
    left alone (their places cannot move), so an edit near the end of a file costs little;
    `spread` holds the ids of the root's blocks whose fields lie outside their own extent (the
    Input layer the upgrade makes of `input:` fields spread over the file), which are always
    visited."""
    stack = [root]
    tup = tuple
    while stack:
        l = stack.pop()
        if l.name_start >= at:
            l.name_start += delta
            l.head_end += delta
        if l.end >= at:
            l.end += delta
        for entries in l.fields.values():
            for i, e in enumerate(entries):
                if type(e) is tup:
                    if e[2] >= at:
                        a, b, c = e
                        entries[i] = (a + delta if a >= at else a, b + delta if b >= at else b, c + delta)
                elif e.end >= at or id(e) in spread:
                    stack.append(e)


def _set_source(loc: Loc, source: Source) -> None:
    stack = [loc]
    while stack:
        l = stack.pop()
        l.source = source
        stack.extend(e for es in l.fields.values() for e in es if isinstance(e, Loc))


def _moved(span: Span | None, at: int, delta: int, source: Source):
    if span is None:
        return None
    if span.start >= at:
        return Span(source, span.start + delta, span.end + delta)
    if span.source is not source:
        return Span(source, span.start, span.end + (delta if span.end >= at else 0))
    return span


def _shift_diags(diags, at: int, delta: int, source: Source) -> None:
    for d in diags:
        d.span = _moved(d.span, at, delta, source)
        if d.related:
            d.related = [(_moved(s, at, delta, source), label) for s, label in d.related]


def _inside(d, start: int, end: int) -> bool:
    return d.span is not None and start <= d.span.start < end


class _Sub:
    """The few attributes the passes read, for running them on chosen layers."""

    def __init__(self, nodes, inputs, outputs, diagnostics):
        self.nodes, self.inputs, self.outputs, self.diagnostics = nodes, inputs, outputs, diagnostics
        self.overrides = {}


def reanalyse(prev: Document, text: str, version, max_errors: int = 100) -> Document | None:
    """The analysis of `text` from `prev`'s, when the edit allows (see the module docstring);
    None otherwise (then `prev` is untouched, and a full analysis is needed)."""
    if (prev.kind != NET or prev.stages is None or prev.graph is None or prev.parsed is None
            or not prev.parsed.syntax_ok or prev.parsed.message.layers or text.startswith("\ufeff")):
        return None
    stage_diags, built = prev.stages
    if sum(len(s) for s in stage_diags) >= max_errors or getattr(prev.graph.diagnostics, "dropped", 0):
        return None  # near the limit, which diagnostics are kept depends on their order
    old = prev.text
    p = common_prefix(old, text)
    s = _common_suffix(old, text, min(len(old), len(text)) - p)
    old_end, delta = len(old) - s, len(text) - len(old)
    ref = prev.layer_at(p)
    if ref is None or not (ref.loc.head_end <= p and old_end < ref.loc.end):
        return None
    L = ref.loc
    start, end = L.name_start, L.end
    masked = " " * start + text[start:end + delta]
    block = parse_text(Source(masked, prev.path), NET, max_errors)
    nl = block.loc.fields.get("layer", [])
    if (not block.syntax_ok or len(block.message.layer) != 1 or list(block.loc.fields) != ["layer"] or len(nl) != 1
            or nl[0].name_start != start or nl[0].end != end + delta or block.message.layers):
        return None
    new_lp = block.message.layer[0]
    if _topology(new_lp) != _topology(ref.msg):
        return None
    if any(p_.name for lp in prev.parsed.message.layer for p_ in lp.param):
        return None  # shared parameters: a layer's blobs depend on their owner's

    # --- commit: from here on `prev` is consumed -------------------------------------------
    source = prev.source
    source.text = text
    source._starts = line_starts(text)
    parsed = prev.parsed
    _shift_tree(parsed.loc, end, delta, prev.spread)
    new_loc = nl[0]
    _set_source(new_loc, source)
    k = ref.index
    layer_field = parsed.loc.fields["layer"]
    layer_field[k] = new_loc
    msg_layer = parsed.message.layer[k]
    msg_layer.CopyFrom(new_lp)
    new_block_diags = list(block.diagnostics)
    for d in new_block_diags:
        d.span = Span(source, d.span.start, d.span.end) if d.span is not None else None
        d.related = [(Span(source, sp.start, sp.end), label) for sp, label in d.related]
    parse_d, build_d, verify_d, shape_d, rf_d, cost_d = stage_diags
    for group in stage_diags:
        _shift_diags(group, end, delta, source)
    parse_d = [d for d in parse_d if not _inside(d, start, end + delta)] + new_block_diags
    parse_d.sort(key=lambda d: d.span.start if d.span is not None else -1)

    graph = prev.graph
    node = ref.node
    node_meta, value_meta = built
    if node is not None:
        node.param = msg_layer
        node.loc = new_loc
        node.geometry = None  # computed from the old parameters
        verify_global = {codes.UNUSED_TOP.id, codes.DEAD_LAYER.id}
        verify_d = [d for d in verify_d if d.code in verify_global or not _inside(d, start, end + delta)]
        fresh = Diagnostics(max_errors)
        node.meta = dict(node_meta[id(node)])
        verify.check_node(node, fresh)
        # Keep verify's order: the layer's own checks where the layer is.
        verify_d.extend(fresh.items)
        changed: set[int] = set()
        flow = {"shapes": [], "rf": [], "cost": []}
        redone: list = []
        for n in graph.nodes[graph.nodes.index(node):]:
            if n is not node and not any(id(v) in changed for v in n.inputs):
                continue
            before = [(v.meta.get("shape"), v.meta.get("rf")) for v in n.outputs]
            if n is not node:  # (the edited layer's meta was reset before its checks)
                invalid = n.meta.get("invalid")  # verify's verdict on the layer's own parameters
                n.meta = dict(node_meta[id(n)])
                if invalid:
                    n.meta["invalid"] = invalid
            for v in n.outputs:
                v.meta = dict(value_meta[id(v)])
            sub_inputs = [v for v in graph.inputs if v.producer is n]
            for pass_, key in ((shapes, "shapes"), (receptive_field, "rf"), (cost, "cost")):
                sub = _Sub([n], sub_inputs, graph.outputs, Diagnostics(max_errors))
                pass_.run(sub)
                flow[key].extend(sub.diagnostics.items)
            redone.append(n)
            after = [(v.meta.get("shape"), v.meta.get("rf")) for v in n.outputs]
            if after != before:
                changed.update(id(v) for v in n.outputs)
        spans = [(n.loc.name_start, n.loc.end) for n in redone if n.loc is not None]

        def stale(d):
            return d.span is not None and any(a <= d.span.start < b for a, b in spans)

        shape_d = [d for d in shape_d if not stale(d)] + flow["shapes"]
        rf_d = [d for d in rf_d if not stale(d)] + flow["rf"]
        cost_d = [d for d in cost_d if not stale(d)] + flow["cost"]

    doc = Document.__new__(Document)
    doc.__dict__.update(prev.__dict__)
    doc.raw = text
    doc.text = text
    doc.version = version
    doc._sorted = {}
    doc.incremental = True
    ref.loc = new_loc
    ref.msg = msg_layer
    groups = [parse_d, build_d, verify_d, shape_d, rf_d, cost_d]
    doc.stages = (groups, built)
    doc.diagnostics = [d for g in groups for d in g]
    if len(doc.diagnostics) >= max_errors:
        return Document(prev.uri, prev.path, text, version, max_errors=max_errors)
    items = Diagnostics(max_errors)
    for d in doc.diagnostics:
        items.add(d)
    graph.diagnostics = items
    parsed.diagnostics = Diagnostics(max_errors)
    for d in parse_d:
        parsed.diagnostics.add(d)
    doc.layers = prev.layers
    # Blob names are unchanged (so is the topology): only their places move.
    for u in prev.blobs:
        if u.start >= end:
            u.start += delta
            u.end += delta
        elif u.layer == k:
            e = new_loc.fields[u.role][u.slot]
            u.start, u.end = e[1], e[2]
    # Only the edited layer's uses can have changed order (among themselves).
    lo = bisect.bisect_left(prev._blob_starts, start)
    hi = bisect.bisect_left(prev._blob_starts, end)
    blobs = prev.blobs
    blobs[lo:hi] = sorted(blobs[lo:hi], key=lambda u: u.start)
    doc.blobs = blobs
    doc._blob_starts = [u.start for u in blobs]
    prev.graph = prev.parsed = prev.stages = None  # consumed
    return doc
