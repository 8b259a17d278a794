"""compile(): a definition (path or parsed) → an analysed ir.Graph.

    g = netdef.compile("alexnet", phase="TEST")
    g.blob("fc8").meta["shape"]        # (10, 1000)
    g.diagnostics                      # everything found, from syntax to shapes

compile never raises for bad input: a file that cannot be read, syntax errors, unknown layers
and shape errors all become diagnostics. Passes: verify → shapes → receptive_field → cost
(netdef/passes). Shape inference stops at a layer it cannot handle; everything that does not
depend on that layer keeps its shapes.
"""
from __future__ import annotations

import gc

from . import codes
from .build import build
from .diagnostics import Diagnostics
from .ir import PHASES, Graph
from .parse import NET
from .passes import run_all
from .source import SourceError


def compile(path_or_parsed, phase: str = "TEST", stages=(), level: int = 0, inputs: dict | None = None,
            max_errors: int = 100) -> Graph:
    """Parse (and upgrade) when given a path or bundled name, build the IR, run the passes.

    inputs: {blob name: shape tuple} supplying or replacing input shapes (the CLI's --input).
    """
    phase = str(phase).upper()
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    parsed = path_or_parsed
    if isinstance(path_or_parsed, (str, bytes)) or hasattr(path_or_parsed, "__fspath__"):
        from . import load
        try:
            parsed = load(path_or_parsed if isinstance(path_or_parsed, str) else str(path_or_parsed),
                          max_errors=max_errors)
        except SourceError as e:
            diags = Diagnostics(max_errors)
            diags.add(e.diagnostic())  # E100 at the offending byte (or 1:1)
            return Graph(diagnostics=diags)
    diags = Diagnostics(max_errors)
    diags.extend(parsed.diagnostics)
    diags.dropped += getattr(parsed.diagnostics, "dropped", 0)
    if parsed.kind != NET:
        diags.add(codes.NOT_A_NET.at(parsed.loc.span, path=parsed.source.path,
                                     notes=["a solver names its net with 'net:'; analyse that file"]))
        return Graph(parsed=parsed, diagnostics=diags)
    if not parsed.syntax_ok:
        # The message is cut off where the syntax error is; analysing it would only add noise.
        return Graph(parsed.message.name, parsed=parsed, diagnostics=diags)
    # The IR is millions of small objects for a large net, and none of them is garbage until
    # the graph is dropped: the cyclic collector would rescan the whole heap again and again
    # (what made 50k layers cost 1.7x per layer of 10k). Pause it, as the parser does.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        graph = build(parsed, phase, stages, level, inputs, diagnostics=diags)
        run_all(graph)
    finally:
        if gc_was_enabled:
            gc.enable()
    return graph


class SizeScan:
    """Which input heights/widths a net accepts (see valid_sizes)."""

    def __init__(self, inputs, declared, modes, fixed, skipped):
        self.inputs = inputs        # names of the spatial inputs that were varied
        self.declared = declared    # their declared (H, W)
        self.modes = modes          # {"height" | "width" | "square": [(lo, hi), ...]}
        self.fixed = fixed          # layers whose parameter shapes depend on the input size
        self.skipped = skipped      # layers netdef cannot analyse (their constraints are unknown)


def valid_sizes(graph: Graph, lo: int, hi: int) -> SizeScan:
    """Re-run shape inference with the spatial inputs' height, width, or both set to every
    size in [lo, hi]. A size is valid when every layer sets up (Concat, Eltwise and Crop align,
    no window is larger than its input) and every parameter blob keeps the shape it has at the
    declared size: InnerProduct's weights fix its input count, so nets with one accept only the
    sizes that reproduce it.

    All sizes run together, layer by layer, as classes of sizes that have produced the same
    shapes so far: once two sizes agree on every blob a later layer still reads, their futures
    are identical and they merge. After a few strided layers there are few classes left, so the
    scan costs about as much as a handful of ordinary shape passes."""
    from .layers import LayerError

    spatial = [v for v in graph.inputs if v.meta.get("shape") is not None and len(v.meta["shape"]) >= 4]
    if not spatial:
        return SizeScan([], None, {}, [], [])
    declared = tuple(spatial[0].meta["shape"][-2:])
    fixed: dict[str, str] = {}
    nodes = [n for n in graph.nodes
             if n.impl is not None and not n.impl.opaque and not n.impl.source and not n.meta.get("invalid")]
    skipped = [n.name for n in graph.nodes if n.impl is None or n.impl.opaque or n.meta.get("invalid")]
    last_use: dict[int, int] = {}
    for i, n in enumerate(nodes):
        for v in n.inputs:
            last_use[id(v)] = i

    def scan(sizes: list[tuple[int, int, int]]) -> list[int]:
        # A class: (the sizes in it, {id(value): shape} for the values still to be read).
        start: dict[tuple, list] = {}
        base = {id(v): tuple(v.meta["shape"]) for v in graph.inputs if v.meta.get("shape") is not None
                and id(v) in last_use}
        for s, h, w in sizes:
            state = dict(base)
            for v in spatial:
                if id(v) in state:
                    state[id(v)] = state[id(v)][:-2] + (h, w)
            start.setdefault(tuple(sorted(state.items())), [[], state])[0].append(s)
        classes = list(start.values())
        for i, node in enumerate(nodes):
            impl = node.impl
            survivors = []
            for members, state in classes:
                try:
                    ins = [state[id(v)] for v in node.inputs]
                except KeyError:  # an input netdef could not analyse: this layer's check is unknown
                    survivors.append((members, state))
                    continue
                try:
                    out = impl.infer_shapes(node, ins)
                    if any(d < 0 for sh in out for d in sh):
                        continue
                    if "blobs" in node.meta and [tuple(b) for b in impl.param_shapes(node, ins)] != node.meta["blobs"]:
                        fixed.setdefault(node.name, node.type)
                        continue
                except LayerError:
                    continue
                for v, sh in zip(node.outputs, out):
                    if last_use.get(id(v), -1) > i:
                        state[id(v)] = tuple(sh)
                for v in node.inputs:
                    if last_use.get(id(v)) == i:
                        state.pop(id(v), None)
                survivors.append((members, state))
            if len(survivors) < 2 or (impl.elementwise and not any(last_use.get(id(v)) == i for v in node.inputs)):
                # Shape-preserving layers that free nothing cannot make two classes equal.
                classes = survivors
                continue
            merged: dict[tuple, list] = {}
            for members, state in survivors:
                key = tuple(sorted(state.items()))
                if key in merged:
                    merged[key][0].extend(members)
                else:
                    merged[key] = [members, state]
            classes = list(merged.values())
        return sorted(s for members, _ in classes for s in members)

    modes = {}
    for mode in ("height", "width", "square"):
        sizes = [(s, s if mode != "width" else declared[0], s if mode != "height" else declared[1])
                 for s in range(lo, hi + 1)]
        modes[mode] = _ranges(scan(sizes))
    return SizeScan([v.name for v in spatial], declared, modes, sorted(fixed.items()), skipped)


def _ranges(values: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out
