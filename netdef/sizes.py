"""valid_sizes(): the input sizes for which a whole net is valid (`netdef sizes`), found by
re-running the shape pass over a compiled graph (netdef.pipeline.compile) at each size.
"""
from __future__ import annotations

from .ir import Graph


class SizeScan:
    """Which input heights/widths a net accepts (see valid_sizes)."""

    def __init__(self, inputs, declared, modes, fixed, skipped, derived=(), held=(), unchecked=()):
        self.inputs = inputs        # names of the spatial inputs that were varied
        self.declared = declared    # their declared (H, W)
        self.modes = modes          # {"height" | "width" | "square": [(lo, hi), ...]}
        self.fixed = fixed          # layers whose parameter shapes depend on the input size
        self.skipped = skipped      # layers netdef cannot analyse (their constraints are unknown)
        self.derived = list(derived)      # [(input, [comparison layers reading it])]: labels
        self.held = list(held)            # [(input, (H, W))]: trunk inputs of another declared size
        self.unchecked = list(unchecked)  # comparison layers left out because they read a label


def _compares(node) -> bool:
    """Losses and Accuracy compare a prediction with a label, whose size is the data's business."""
    impl = node.impl
    return impl is not None and (impl.loss or impl.compares)


def scan_inputs(graph):
    """Split the net's spatial inputs (N, C, H, W, ...) for the size scan.

    varied:  inputs some layer other than a loss, Accuracy or Silence reads (the images the
             trunk computes on) whose declared H x W is the first such input's: they take each
             size together.
    held:    trunk inputs declared at another size: kept at it (no rule says how they scale).
    derived: inputs read only by losses and Accuracy (and Silence): label maps. Their size
             must follow the prediction's, whatever it is, so they are not varied and the
             layers comparing them are not checked; holding a 388x388 label fixed would make
             every U-Net tile but 572x572 "invalid"."""
    spatial = [v for v in graph.inputs if v.meta.get("shape") is not None and len(v.meta["shape"]) >= 4]
    trunk, derived = [], []
    for v in spatial:
        readers = [n for n in v.consumers if n.type != "Silence"]
        if readers and all(_compares(n) for n in readers):
            derived.append((v, readers))
        elif readers:
            trunk.append(v)
    if not trunk:
        return [], [], derived
    declared = tuple(trunk[0].meta["shape"][-2:])
    varied = [v for v in trunk if tuple(v.meta["shape"][-2:]) == declared]
    held = [v for v in trunk if tuple(v.meta["shape"][-2:]) != declared]
    return varied, held, derived


def valid_sizes(graph: Graph, lo: int, hi: int) -> SizeScan:
    """Re-run shape inference with the varied inputs' height, width, or both set to every size
    in [lo, hi] (scan_inputs says which inputs vary). A size is valid when every layer sets up
    (Concat, Eltwise and Crop align, no window is larger than its input) and every parameter
    blob keeps the shape it has at the declared size: InnerProduct's weights fix its input
    count, so nets with one accept only the sizes that reproduce it.

    All sizes run together, layer by layer, as classes of sizes that have produced the same
    shapes so far: once two sizes agree on every blob a later layer still reads, their futures
    are identical and they merge. After a few strided layers there are few classes left, so the
    scan costs about as much as a handful of ordinary shape passes."""
    from .layers import LayerError

    spatial, held, derived = scan_inputs(graph)
    if not spatial:
        return SizeScan([], None, {}, [], [], [(v.name, [n.name for n in r]) for v, r in derived])
    declared = tuple(spatial[0].meta["shape"][-2:])
    labels = {id(v) for v, _ in derived}
    unchecked = [n for n in graph.nodes if _compares(n) and any(id(v) in labels for v in n.inputs)]
    left_out = {id(n) for n in unchecked}
    fixed: dict[str, str] = {}
    nodes = [n for n in graph.nodes
             if n.impl is not None and not n.impl.opaque and not n.impl.source and not n.meta.get("invalid")
             and id(n) not in left_out]
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
            prog.update(detail=node.name)
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
                except (LayerError, ArithmeticError, ValueError, TypeError, IndexError, KeyError, AttributeError):
                    # As the shapes pass: a rule that cannot take these values rules the size out.
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

    from .progress import Progress
    modes = {}
    with Progress("sizes", total=3 * len(nodes)) as prog:   # a line on a terminal when it takes a while
        for mode in ("height", "width", "square"):
            sizes = [(s, s if mode != "width" else declared[0], s if mode != "height" else declared[1])
                     for s in range(lo, hi + 1)]
            modes[mode] = _ranges(scan(sizes))
    return SizeScan([v.name for v in spatial], declared, modes, sorted(fixed.items()), skipped,
                    [(v.name, [n.name for n in r]) for v, r in derived],
                    [(v.name, tuple(v.meta["shape"][-2:])) for v in held], [n.name for n in unchecked])


def _ranges(values: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out
