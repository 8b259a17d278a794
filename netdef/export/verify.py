"""`netdef verify`: the exported model, run by onnxruntime, against the NumPy reference.

Both see the same weights and inputs. Every blob the exported graph still has (folding removes
the convolution outputs it merges) becomes an extra model output, and is compared, layer by
layer in Caffe's order, with what netdef.reference computed from Caffe's C++ semantics. The
first layer whose tops differ by more than the tolerance (max |a - b| / max(1, max |b|)) is
reported at its definition.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .. import codes
from ..diagnostics import DiagnosticError, Diagnostics
from ..cli.select import print_report, reporting


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if b.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    # NaN on both sides, or the same infinity (inf - inf is NaN), is agreement.
    same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    if same.any():
        diff = np.where(same, 0.0, diff)
    finite = np.abs(b[np.isfinite(b)])
    scale = max(1.0, float(finite.max()) if finite.size else 1.0)
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    return worst / scale if not np.isnan(diff).any() else float("inf")


@dataclass
class Comparison:
    layer: str
    type: str
    top: str
    onnx_name: str
    error: float
    shape: tuple
    span: object = None


@dataclass
class Report:
    comparisons: list[Comparison]
    first_bad: Comparison | None
    skipped: list[str]
    stopped: str | None          # why the reference stopped early, if it did
    provider: str
    nonfinite: dict              # model output -> W517 warning, for outputs holding NaN or Inf


def with_every_value(exported) -> tuple[bytes, dict[int, str]]:
    """The model's bytes with every value it still computes as an extra output, and the map
    from IR values (by id) to those ONNX names."""
    from . import onnx_proto as helper
    from .onnx_proto import TensorProto
    graph = exported.exporter.graph
    names = exported.value_map()
    skel = exported.skeleton.graph
    existing = {o.name for o in skel.output} | {i.name for i in skel.input}
    by_id = {id(v): v for v in graph.values}
    added = []
    for key, nm in sorted(names.items(), key=lambda kv: kv[1]):
        v = by_id.get(key)
        if v is None or nm in existing or v.meta.get("shape") is None:
            continue
        existing.add(nm)
        free = exported.exporter.free_dims.get(key, {})   # axes known only at run time (detections)
        added.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT16 if exported.exporter.fp16 else TensorProto.FLOAT,
                                                   [free.get(i, d) for i, d in enumerate(v.meta["shape"])]))
    skel.output.extend(added)
    try:
        return exported.to_bytes(), names
    finally:
        for _ in added:
            skel.output.pop()


def verify(source, weights=None, *, inputs: dict | None = None, tolerance: float = 1e-4, seed: int = 0,
           fold: bool = True, provider: str = "cpu", phase: str = "TEST", stages=(), level: int = 0,
           input_shapes: dict | None = None, diags: Diagnostics | None = None,
           allow_missing_weights: bool = False, batch: int | None = None) -> Report:
    from ..reference import ReferenceError, trace
    from .onnx import Exporter, Exported, compile_for_export, graph_weights
    from .runtime import Session, nonfinite_outputs

    diags = diags if diags is not None else Diagnostics()
    # The batch comes from the input arrays when given (else `batch`: 1 by default from the
    # command line); losses and Accuracy are left out first.
    graph, _ = compile_for_export(source, phase=phase, stages=stages, level=level, inputs=input_shapes,
                                  deploy=True, batch=batch,
                                  batch_from={n: np.shape(a) for n, a in (inputs or {}).items()})
    diags.extend(graph.diagnostics)
    blobs = graph_weights(graph, weights, seed, diags, allow_missing_weights=allow_missing_weights)
    ex = Exporter(graph, blobs, fold=fold, diags=diags)
    ex.build()
    exported = Exported(ex, graph.name)
    model, names = with_every_value(exported)

    sess = Session(model, provider)
    rng = np.random.default_rng(seed)
    feed = {}
    for arg in sess.inputs:
        if inputs and arg.name in inputs:
            feed[arg.name] = np.asarray(inputs[arg.name], np.float32)
        else:
            v = graph.blob(arg.name)
            feed[arg.name] = rng.standard_normal(tuple(v.meta["shape"])).astype(np.float32)
    onnx_out = sess.run(feed)

    def where(name):
        v = graph.blob(name) if name in graph.blob_names else None
        return v.producer.span if v is not None and v.producer is not None else None
    nonfinite = nonfinite_outputs({o.name: onnx_out[o.name] for o in exported.skeleton.graph.output}, where)

    ref_inputs = dict(feed)
    for v in graph.inputs:                 # data layers' tops the export left out (labels)
        if v.name not in ref_inputs and v.meta.get("shape"):
            ref_inputs[v.name] = rng.standard_normal(tuple(v.meta["shape"])).astype(np.float32)
    nodes = {n.name: n for n in graph.nodes}
    comparisons, skipped, stopped, first_bad = [], [], None, None
    from ..progress import Progress
    # The reference is the long part on a big net (a line on a terminal after a second).
    progress = Progress("verify: NumPy reference", total=len(graph.parsed.message.layer))
    try:
        for step in trace(graph.parsed.message, blobs, ref_inputs, phase=phase, level=level, stages=stages,
                          loc=graph.parsed.loc, whole=graph.parsed.whole):
            progress.update(detail=step.layer)
            node = nodes.get(step.layer)
            if node is None or not node.inputs:
                continue
            for i, (top, value) in enumerate(zip(step.tops, step.values)):
                out = node.outputs[i] if i < len(node.outputs) else None
                nm = names.get(id(out)) if out is not None else None
                if nm is None or nm not in onnx_out:
                    skipped.append(f"{step.layer}:{top}")
                    continue
                c = Comparison(step.layer, step.type, top, nm, rel_error(onnx_out[nm], value), tuple(value.shape),
                               node.span)
                comparisons.append(c)
                if first_bad is None and not c.error <= tolerance:
                    first_bad = c
    except ReferenceError as e:
        stopped = str(e)
    finally:
        progress.close()
    return Report(comparisons, first_bad, skipped, stopped, sess.provider, nonfinite)


def _verify_findings(args, report, diags) -> None:
    if report.stopped:
        diags.add(codes.VERIFY_INCOMPLETE.at(None, why=report.stopped))
    for d in report.nonfinite.values():
        diags.add(d)
    if report.first_bad is not None:
        c = report.first_bad
        diags.add(codes.VERIFY_MISMATCH.at(c.span, layer=c.layer, type=c.type, top=c.top,
                                           error=f"{c.error:.3g}", tolerance=f"{args.tolerance:g}",
                                           notes=["the layers before it agree; this layer's lowering or its "
                                                  "reference implementation is wrong"]))


def _verify_json(args, report, diags) -> int:
    from ..cli.output import emit_json
    _verify_findings(args, report, diags)
    if not report.comparisons:
        diags.add(codes.VERIFY_INCOMPLETE.at(None, why="no blob could be compared"))
    print_report(diags, args)
    failed = report.first_bad is not None or diags.has_errors or not report.comparisons
    emit_json(args, {
        "ok": not failed, "provider": report.provider, "tolerance": args.tolerance,
        "max_error": max((c.error for c in report.comparisons), default=None),
        "comparisons": [{"layer": c.layer, "type": c.type, "top": c.top, "onnx_name": c.onnx_name, "shape": list(c.shape),
                         "error": c.error, "ok": c.error <= args.tolerance} for c in report.comparisons],
        "first_mismatch": report.first_bad.layer if report.first_bad is not None else None,
        "not_compared": list(report.skipped), "stopped": report.stopped or None})
    return 1 if failed else 0


@reporting
def cmd_verify(args) -> int:
    from .runtime import read_input_files

    if args.tolerance <= 0:
        from ..diagnostics import UsageError
        raise UsageError("--tolerance must be positive")
    inputs = read_input_files(args.input_files)
    diags = Diagnostics(getattr(args, "max_errors", 100))
    common = dict(inputs=inputs, tolerance=args.tolerance, seed=args.seed,
                  fold=getattr(args, "fold", True), provider=getattr(args, "provider", "cpu"),
                  phase=args.phase, stages=tuple(args.stage), level=args.level,
                  input_shapes=args.inputs,
                  allow_missing_weights=getattr(args, "allow_missing_weights", False))
    batch = getattr(args, "batch", None)
    if batch is not None and batch < 1:
        from ..diagnostics import UsageError
        raise UsageError(f"--batch must be a positive number, got {batch}")
    if batch is None and not inputs:
        # Batch 1 by default (issue 11): a net declares 10 or 50 samples for its benchmarks, and
        # the NumPy reference takes minutes over them; one sample checks the same arithmetic.
        # A net whose graph cannot take batch 1 (a Reshape that fixes it) runs as declared.
        from .onnx import compile_for_export
        try:
            compile_for_export(args.file, batch=1, phase=args.phase, stages=tuple(args.stage), level=args.level,
                               inputs=common["input_shapes"], deploy=True)
            batch = 1
        except DiagnosticError:
            batch = None
    report = verify(args.file, args.weights, diags=diags, batch=batch, **common)
    if args.format == "json":
        return _verify_json(args, report, diags)
    out = sys.stdout
    width = max((len(c.layer) for c in report.comparisons), default=5)
    for c in report.comparisons:
        flag = "" if c.error <= args.tolerance else "  <-- exceeds tolerance"
        out.write(f"{c.layer:<{width}}  {c.type:<14} {c.top:<20} {c.error:.3g}{flag}\n")
    worst = max((c.error for c in report.comparisons), default=0.0)
    out.write(f"compared {len(report.comparisons)} blobs (onnxruntime on {report.provider} vs the NumPy reference); "
              f"max relative error {worst:.3g}, tolerance {args.tolerance:g}\n")
    if report.skipped:
        out.write(f"not in the exported graph (folded): {len(report.skipped)} blobs\n")
    _verify_findings(args, report, diags)
    print_report(diags, args)
    if report.first_bad is not None or diags.has_errors:
        return 1
    if not report.comparisons:
        raise DiagnosticError([codes.VERIFY_INCOMPLETE.at(None, why="no blob could be compared")])
    return 0

