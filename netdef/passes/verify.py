"""verify: what can be checked without shapes.

Unknown layer types, bottom/top counts (Caffe's Layer::CheckBlobCounts), propagate_down counts,
each type's static parameter checks, unused tops and layers whose results reach no net output.
Writes node.meta["invalid"] = True when a layer's own parameters are wrong, so that the shapes
pass skips it instead of reporting the same problem twice.
"""
from __future__ import annotations

from .. import codes
from ..build import unknown_type_note


def run(graph) -> None:
    diags = graph.diagnostics
    for node in graph.nodes:
        check_node(node, diags)
    _unused_tops(graph, diags)
    _dead_layers(graph, diags)


def check_node(node, diags) -> None:
    """The checks of one layer that depend on nothing but the layer itself."""
    impl = node.impl
    if impl is None:
        if node.type:
            fork, notes = unknown_type_note(node.type)
            if fork is None:
                node.meta["invalid"] = True
                diags.add(codes.UNKNOWN_LAYER_TYPE.at(node.field_span(None, "type"), notes=notes,
                                                      type=node.type, layer=node.name))
        return
    before = diags.error_count  # counts errors past --max-errors too
    _check_counts(node, diags)
    p = node.param
    if p.propagate_down and len(p.propagate_down) != len(p.bottom):
        diags.add(codes.PROPAGATE_DOWN_COUNT.at(node.field_span(None, "propagate_down"), layer=node.name,
                                                got=len(p.propagate_down), bottoms=len(p.bottom)))
    impl.check(node, diags)
    if diags.error_count > before:
        node.meta["invalid"] = True


def _range(lo, hi) -> str:
    if hi is None:
        return f"at least {lo}"
    if lo == hi:
        return str(lo)
    return f"{lo} to {hi}"


def _check_counts(node, diags) -> None:
    (bmin, bmax), (tmin, tmax) = node.impl.count_limits(node)
    # Layer::CheckBlobCounts runs on the top vector after Net::Init added automatic tops.
    nb, nt = len(node.param.bottom), len(node.outputs)
    if nb < bmin or (bmax is not None and nb > bmax):
        diags.add(codes.BLOB_COUNT.at(node.span, type=node.type, expected=_range(bmin, bmax), what="bottoms",
                                      layer=node.name, got=nb))
    if nt < tmin or (tmax is not None and nt > tmax):
        diags.add(codes.BLOB_COUNT.at(node.span, type=node.type, expected=_range(tmin, tmax), what="tops",
                                      layer=node.name, got=nt))
    if node.impl.equal_bottom_top and nb != nt:
        diags.add(codes.BLOB_COUNT.at(node.span, type=node.type, expected=f"one top per bottom ({nb})",
                                      what="tops", layer=node.name, got=nt))


def _unused_tops(graph, diags) -> None:
    for node in graph.nodes:
        if len(node.outputs) < 2 or not any(v.consumers for v in node.outputs):
            continue
        for i, v in enumerate(node.outputs):
            if not v.consumers:
                diags.add(codes.UNUSED_TOP.at(node.top_span(i), blob=v.name, layer=node.name,
                                              notes=["consume it, or pass it to a Silence layer if it is "
                                                     "not needed"]))


def _dead_layers(graph, diags) -> None:
    """A layer is live if it writes a net output, is a sink that stores data (HDF5Output), or
    feeds a live layer. Results that only reach Silence layers are computed for nothing."""
    live: set[int] = set()
    for node in reversed(graph.nodes):
        impl = node.impl
        if impl is not None and impl.sink and node.type != "Silence":
            live.add(id(node))
            continue
        for v in node.outputs:
            if not v.consumers or any(id(c) in live for c in v.consumers):
                live.add(id(node))
                break
    for node in graph.nodes:
        if id(node) in live or node.type == "Silence" or (not node.outputs and node.impl is None):
            continue
        silencers = {c.name for v in node.outputs for c in v.consumers if c.type == "Silence"}
        why = f" (only Silence layer '{sorted(silencers)[0]}' reads them)" if silencers else ""
        diags.add(codes.DEAD_LAYER.at(node.span, layer=node.name, why=why))
