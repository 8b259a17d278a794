"""From a definition to the graph the exporter lowers: the pipeline's glue for export, run and
verify.

    graph, dyn = compile_for_export("resnet50", batch="dynamic", deploy=True)
    blobs = graph_weights(graph, "resnet50.caffemodel", lazy=True)

compile_for_export loads and analyses the net at the batch asked for (for a dynamic batch, which
dimension of every value follows it), optionally without the layers a deploy graph leaves out
(deploy_view); graph_weights gives every layer's parameter blobs, from a .caffemodel or fillers.
"""
from __future__ import annotations

import os

from .. import codes
from ..diagnostics import CliError, DiagnosticError, Diagnostics, UsageError
from ..layers.base import training_only_types


def load_source(source, max_errors: int = 100):
    """A path or bundled name parsed (a parse.Parsed passes through): a file that cannot be
    read is a DiagnosticError (E100), as every other problem of the definition."""
    if isinstance(source, (str, os.PathLike)):
        from ..pipeline import load
        from ..source import SourceError
        try:
            return load(os.fspath(source), max_errors=max_errors)
        except SourceError as e:
            raise DiagnosticError([e.diagnostic()]) from None  # E100 at the offending byte (or 1:1)
    return source


def _compile(parsed, phase, stages, level, inputs, max_errors):
    from ..pipeline import compile as compile_net
    graph = compile_net(parsed, phase=phase, stages=tuple(stages), level=level, inputs=inputs or None,
                        max_errors=max_errors)
    if graph.diagnostics.has_errors:
        raise DiagnosticError(list(graph.diagnostics))
    return graph


def _with_batch(graph, inputs, batch: int) -> dict:
    shapes = dict(inputs or {})
    for v in graph.inputs:
        s = v.meta.get("shape")
        if s:
            shapes[v.name] = (batch,) + tuple(shapes.get(v.name, s))[1:]
    return shapes


TRAINING_ONLY = training_only_types()    # the layer classes' `training_only` flag


def is_training_only(node) -> bool:
    """Losses, Accuracy, Silence...: a deploy graph leaves them out. A Python layer whose tops
    all carry a loss_weight is a loss computed by user code: left out too."""
    if node.type == "Python" and node.param.loss_weight and all(w != 0 for w in node.param.loss_weight):
        return True
    return bool(getattr(node.impl, "training_only", False))


def left_out(graph) -> dict:
    """The layers a deploy graph leaves out: id(node) -> (node, why), in the net's order. why is
    None for a training-only layer (is_training_only). A layer that reads a blob a left-out
    layer computes cannot be computed either (arcface's Scale between CosinAddm and FocalLoss):
    it is left out too, and so on down the net; its why is (blob, producer, origin), origin
    being the training-only layer it depends on."""
    gone: dict = {}
    changed = True
    while changed:                 # one pass in the net's order; more only if a bottom comes later
        changed = False
        for node in graph.nodes:
            if id(node) in gone:
                continue
            if is_training_only(node):
                gone[id(node)] = (node, None)
                changed = True
                continue
            for v in node.inputs:
                p = v.producer
                if p is not None and id(p) in gone:
                    why = gone[id(p)][1]
                    gone[id(node)] = (node, (v, p, p if why is None else why[2]))
                    changed = True
                    break
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    return dict(sorted(gone.items(), key=lambda kv: order[kv[0]]))


def left_out_diagnostic(node, why, outputs=()):
    """W511 for a training-only layer, W518 for a layer left out because of one (left_out's
    why); outputs: the blobs it read that become outputs of the exported graph."""
    notes = [f"'{b}' becomes an output of the exported graph" for b in dict.fromkeys(outputs)]
    if why is None:
        return codes.EXPORT_DROPPED.at(node.span, layer=node.name, type=node.type, notes=notes)
    blob, producer, origin = why
    source = (f"the training-only layer '{origin.name}' ({origin.type})" if producer is origin else
              f"'{producer.name}' ({producer.type}), itself left out: it depends on the training-only layer "
              f"'{origin.name}' ({origin.type})")
    return codes.EXPORT_DROPPED_INPUT.at(node.span, layer=node.name, type=node.type, blob=blob.name,
                                         source=source, notes=notes)


def _need_shapes(graph, what: str) -> None:
    """The inputs the exported graph reads need shapes (labels, read only by losses, do not);
    a layer whose shapes are still unknown is reported when it is lowered."""
    gone = left_out(graph)
    needed = [v for v in graph.inputs if any(id(c) not in gone for c in v.consumers)]
    unknown = [v for v in needed if v.meta.get("shape") is None]
    if unknown:
        v = unknown[0]
        flags = " ".join(f"--input {u.name}=N,C,H,W" for u in unknown)
        notes = [f"the exported graph reads it: add {flags} (as many dimensions as the layers reading "
                 f"{'it' if len(unknown) == 1 else 'them'} need)"]
        raise DiagnosticError(list(graph.diagnostics) + [codes.SHAPES_UNKNOWN.at(
            v.producer.span if v.producer is not None else None, blob=v.name, what=what, notes=notes)])


def deploy_view(parsed, phase="TEST", stages=(), level=0):
    """(parsed, notes, orphans): the net without the layers a deploy graph leaves out (losses,
    Accuracy, Silence, ...; is_training_only, and the layers that read what those compute:
    left_out), removed before analysis, so that the labels they compare with the prediction
    need no shape and an input of another batch or size does not fail in a loss layer. notes:
    W511/W518 warnings for the layers removed; orphans: the blobs only they read (labels), whose
    'never used' warnings say nothing about the deploy graph."""
    from ..build import build
    graph = build(parsed, phase, stages, level, diagnostics=Diagnostics())
    gone = left_out(graph)
    if not gone or graph.diagnostics.has_errors:
        return parsed, [], set()
    drop = {n.index for n, _ in gone.values()}
    kept_reads = {id(v) for n in graph.nodes if id(n) not in gone for v in n.inputs}
    notes = [left_out_diagnostic(n, why, [
        v.name for v in n.inputs if v.producer is not None and id(v.producer) not in gone and id(v) not in kept_reads
        and not getattr(v.producer.impl, "source", False) and v.producer.type != "Input"])
        for n, why in gone.values()]
    orphans = {v.name for n, _ in gone.values() for v in n.inputs if id(v) not in kept_reads}
    return _without_layers(parsed, drop), notes, orphans


def _without_layers(parsed, drop: set):
    """The parsed net without the layers of these indices (its source locations kept in step);
    `whole` keeps the full net, by which forks are told apart."""
    import dataclasses

    from ..loc import Loc
    msg = type(parsed.message)()
    msg.CopyFrom(parsed.message)
    del msg.layer[:]
    msg.layer.extend(lp for i, lp in enumerate(parsed.message.layer) if i not in drop)
    loc = parsed.loc
    if loc is not None:
        new = Loc(loc.source, loc.name_start, loc.head_end)
        new.end, new.extra, new.fields = loc.end, loc.extra, dict(loc.fields)
        if "layer" in new.fields:
            new.fields["layer"] = [e for i, e in enumerate(new.fields["layer"]) if i not in drop]
        loc = new
    return dataclasses.replace(parsed, message=msg, loc=loc,
                               whole=parsed.message if parsed.whole is None else parsed.whole)


def select_outputs(graph, names) -> list:
    """--outputs: the latest version of each named blob, produced by a layer the export keeps.
    A name the net does not have is a usage error naming the close ones."""
    import difflib
    chosen = []
    known = graph.blob_names
    gone = left_out(graph)
    for name in names:
        v = graph.blob(name)
        if v is None:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
                f" (its blobs: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})"
            raise UsageError(f"--outputs: the net has no blob '{name}'{hint}")
        if v.producer is None or getattr(v.producer.impl, "source", False) or v.producer.type == "Input":
            raise UsageError(f"--outputs: '{name}' is an input of the net, not a blob a layer computes")
        if id(v.producer) in gone:
            why = gone[id(v.producer)][1]
            what = "a training-only layer the export leaves out" if why is None else (
                f"which the export leaves out: it depends on the training-only layer '{why[2].name}' ({why[2].type})")
            raise UsageError(f"--outputs: '{name}' is computed by '{v.producer.name}' ({v.producer.type}), {what}")
        if all(v is not c for c in chosen):
            chosen.append(v)
    return chosen


def ancestors(values, every_bottom: bool = False) -> set:
    """id() of every layer the values depend on. A layer that reads only its bottoms' shapes
    (PriorBox: reads_values = False) does not need their producers, unless `every_bottom`
    (the NumPy reference takes every bottom as an array; the shape pass needs them too)."""
    seen, stack = set(), [v.producer for v in values if v.producer is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not every_bottom and getattr(node.impl, "reads_values", True) is False:
            continue
        stack.extend(v.producer for v in node.inputs if v.producer is not None)
    return seen


def outputs_view(parsed, outputs, phase="TEST", stages=(), level=0):
    """(parsed, notes) for --outputs: the net with only the layers the named blobs depend on
    (ancestors with every bottom, so that shape-only bottoms keep their producers), removed
    before analysis, so that a layer outside that sub-graph cannot stop the export: a deploy
    file that kept its training loss on a 'label' nothing produces (Caffe: Unknown bottom blob)
    still exports the blobs before it. notes: a W529 warning for each error such a layer had
    while the net was built (its shapes are not analysed)."""
    from ..build import build
    graph = build(parsed, phase, stages, level, diagnostics=Diagnostics())
    keep = ancestors(select_outputs(graph, outputs), every_bottom=True)  # a bad name: its usage error
    outside = [n for n in graph.nodes if id(n) not in keep]
    if not outside:
        return parsed, []
    wanted = ", ".join(dict.fromkeys(outputs))
    notes = []
    for d in graph.diagnostics:
        n = next((n for n in outside if d.span is not None and n.loc is not None and d.span.source is n.loc.source
                  and n.loc.name_start <= d.span.start and d.span.end <= n.loc.end), None) if d.is_error else None
        if n is not None:
            notes.append(codes.OUTSIDE_OUTPUTS.at(d.span, layer=n.name, type=n.type, outputs=wanted,
                                                  message=f"{d.code}: {d.message}", notes=d.notes))
    return _without_layers(parsed, {n.index for n in outside}), notes


def batch_of_arrays(graph, shapes: dict) -> int | None:
    """The batch that input arrays of these shapes give the net: the first dimension of the
    arrays for inputs whose declared first dimension is the net's batch (an ROI list's row
    count is not a batch), which must agree. None when no such array is given."""
    batch = graph.batch_size
    found = {}
    for v in graph.inputs:
        declared = v.meta.get("shape")
        given = shapes.get(v.name)
        if declared and given and declared[0] == batch and len(given) == len(declared):
            found[v.name] = int(given[0])
    if len(set(found.values())) > 1:
        shown = ", ".join(f"'{n}' {b}" for n, b in found.items())
        raise CliError(f"the input arrays disagree on the batch (their first dimension): {shown}")
    b = next(iter(found.values()), None)
    if b is not None and b < 1:
        raise CliError(f"the array for '{next(iter(found))}' is empty (its first dimension is 0)")
    return b


def compile_for_export(source, *, batch=None, phase="TEST", stages=(), level=0, inputs=None, max_errors=100,
                       what: str = "exported", deploy: bool = False, batch_from: dict | None = None,
                       outputs=None):
    """(graph, dyn): the analysed graph at the requested batch, and for a dynamic batch which
    dimension of every value follows it (found by analysing the net at two batch sizes).
    deploy: analyse deploy_view(parsed) (its W511/W518 warnings join the graph's diagnostics).
    batch_from: {input name: shape} of the arrays to be fed; without `batch`, the batch they
    give (batch_of_arrays). outputs: blob names; analyse only what computes them (outputs_view,
    its W529 warnings join the graph's diagnostics)."""
    parsed = load_source(source, max_errors)
    dropped, orphans = [], set()
    if outputs and getattr(parsed, "kind", None) == "net" and parsed.syntax_ok:
        parsed, dropped = outputs_view(parsed, outputs, phase, stages, level)
    if deploy and getattr(parsed, "kind", None) == "net" and parsed.syntax_ok:
        parsed, more, orphans = deploy_view(parsed, phase, stages, level)
        dropped = dropped + more

    def _compile_view(inputs):
        graph = _compile(parsed, phase, stages, level, inputs, max_errors)
        if orphans:
            graph.diagnostics.items = [d for d in graph.diagnostics if not (
                d.code == codes.UNUSED_TOP.id and any(d.message.startswith(f"top '{b}' ") for b in orphans))]
        # W308 for an input the exported graph does not read (a label only losses compare with)
        # would ask for an --input nothing needs.
        gone = left_out(graph)
        unread = {v.name for v in graph.inputs if all(id(c) in gone for c in v.consumers)}
        graph.diagnostics.items = [d for d in graph.diagnostics if not (
            d.code == codes.INPUT_SHAPE_NEEDED.id and any(d.message.startswith(f"the shape of '{b}' ") for b in unread))]
        graph.diagnostics.extend(dropped)
        return graph
    graph = _compile_view(inputs)
    if batch is None and batch_from:
        batch = batch_of_arrays(graph, batch_from)
    _need_shapes(graph, what)
    dyn = {}
    if batch is None:
        return graph, dyn
    if not graph.inputs or any(not v.meta.get("shape") for v in graph.inputs):
        raise DiagnosticError([codes.EXPORT_BATCH.at(None, why="the net's inputs have no shapes")])
    if batch == "dynamic":
        base = graph.batch_size or 1
        other = _compile(parsed, phase, stages, level, _with_batch(graph, inputs, base + 3), max_errors)
        if len(other.values) != len(graph.values):
            raise DiagnosticError([codes.EXPORT_BATCH.at(None, why="the graph changes with the batch size")])
        for a, b in zip(graph.values, other.values):
            sa, sb = a.meta.get("shape"), b.meta.get("shape")
            if sa is not None and sb is not None and len(sa) == len(sb):
                dyn[id(a)] = tuple(x != y for x, y in zip(sa, sb))
        return graph, dyn
    if int(batch) < 1:
        raise UsageError(f"--batch must be a positive number or 'dynamic', got {batch}")
    if graph.batch_size != int(batch):
        graph = _compile_view(_with_batch(graph, inputs, int(batch)))
    return graph, dyn


def param_specs(graph):
    from ..weights import ParamSpec
    specs, owners, clashes = [], {}, []
    for n in graph.nodes:
        shapes = [tuple(s) for s in n.meta.get("blobs") or []]
        if not shapes:
            continue
        # Blobs are keyed by layer name (as in a .caffemodel): two layers with parameters and
        # one name would receive each other's arrays (a BatchNorm got a Convolution's).
        first = owners.setdefault(n.name, n)
        if first is not n:
            clashes.append(codes.SAME_NAME_PARAMS.at(
                n.span, layer=n.name, type=n.type, other=first.type, line=first.span.line if first.span else "?",
                related=[(first.span, "the other layer")] if first.span else [], notes=["rename one of them"]))
        fillers = list(n.impl.filler_params(n)) if n.impl is not None else []
        stats = frozenset(n.impl.stat_blobs(n)) if n.impl is not None else frozenset()
        alts = dict(n.impl.alternative_blob_shapes(n, shapes)) if n.impl is not None else {}
        specs.append(ParamSpec(n.name, n.type, n.span, shapes, fillers, stats=stats, alternatives=alts))
    if clashes:
        raise DiagnosticError(clashes)
    return specs


def graph_weights(graph, weights=None, seed: int = 0, diags: Diagnostics | None = None, lazy: bool = False,
                  allow_missing_weights: bool = False, stand_in: bool = False) -> dict:
    """Every layer's blobs for `graph`: from a .caffemodel path or WeightSet, else fillers
    (weights.Lazy blobs, made when written, with lazy=True)."""
    from ..weights import WeightSet, read_caffemodel, resolve_weights
    diags = diags if diags is not None else Diagnostics()
    ws = weights
    if isinstance(weights, (str, os.PathLike)):
        ws = read_caffemodel(weights)
    elif weights is not None and not isinstance(weights, WeightSet):
        raise TypeError("weights must be a path or a WeightSet")
    blobs = resolve_weights(param_specs(graph), ws, seed, diags, lazy, allow_missing=allow_missing_weights,
                            stand_in=stand_in)
    if diags.has_errors:
        raise DiagnosticError(list(diags))
    return blobs

