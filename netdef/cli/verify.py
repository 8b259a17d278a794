"""`netdef verify`: the exported model, run by onnxruntime, against the NumPy reference,
blob by blob (netdef.export.verify); the first layer that disagrees is reported at its
definition.
"""
from __future__ import annotations

import sys

from .. import codes
from ..diagnostics import DiagnosticError, Diagnostics, UsageError
from ..export.prepare import compile_for_export, load_source
from ..export.runtime import read_input_files
from ..export.verify import verify
from .output import emit_json
from .select import print_report, reporting


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


def _ties(n: int) -> str:
    return f"{n} argmax position{'s' if n != 1 else ''} differ{'s' if n == 1 else ''} at ties within tolerance"


def _verify_json(args, report, diags) -> int:
    _verify_findings(args, report, diags)
    if not report.comparisons:
        diags.add(codes.VERIFY_INCOMPLETE.at(None, why="no blob could be compared"))
    print_report(diags, args)
    failed = report.first_bad is not None or diags.has_errors or not report.comparisons
    emit_json(args, {
        "ok": not failed, "provider": report.provider, "tolerance": args.tolerance,
        "max_error": max((c.error for c in report.comparisons), default=None),
        "comparisons": [{"layer": c.layer, "type": c.type, "top": c.top, "onnx_name": c.onnx_name, "shape": list(c.shape),
                         "error": c.error, "ok": c.error <= args.tolerance, "argmax_ties": c.ties}
                        for c in report.comparisons],
        "argmax_ties": sum(c.ties for c in report.comparisons),
        "first_mismatch": report.first_bad.layer if report.first_bad is not None else None,
        "not_compared": list(report.skipped), "stopped": report.stopped or None})
    return 1 if failed else 0


@reporting
def cmd_verify(args) -> int:
    if args.tolerance <= 0:
        raise UsageError("--tolerance must be positive")
    inputs = read_input_files(args.input_files)
    diags = Diagnostics(getattr(args, "max_errors", 100))
    common = dict(inputs=inputs, tolerance=args.tolerance, seed=args.seed,
                  fold=getattr(args, "fold", True), provider=getattr(args, "provider", "cpu"),
                  phase=args.phase, stages=tuple(args.stage), level=args.level,
                  input_shapes=args.inputs,
                  allow_missing_weights=getattr(args, "allow_missing_weights", False),
                  outputs=getattr(args, "outputs", None))
    batch = getattr(args, "batch", None)            # at least 1: cli.parser.batch_size
    # Read and parsed once (standard input too): the probe below and verify share it.
    source = load_source(args.file, getattr(args, "max_errors", 100))
    graph = None
    outputs = common["outputs"]
    if batch is None and not inputs:
        # Batch 1 by default (issue 11): a net declares 10 or 50 samples for its benchmarks, and
        # the NumPy reference takes minutes over them; one sample checks the same arithmetic.
        # A net whose graph cannot take batch 1 (a Reshape that fixes it) runs as declared.
        # The probe's graph is the one verify needs: passed on, not compiled again.
        try:
            graph, _ = compile_for_export(source, batch=1, phase=args.phase, stages=tuple(args.stage),
                                          level=args.level, inputs=common["input_shapes"], deploy=True,
                                          outputs=outputs)
            batch = 1
        except DiagnosticError:
            batch = None
    if graph is None and outputs:
        # --outputs: only what computes them is analysed (prepare.outputs_view), as verify would
        # compile it, so that a layer outside that sub-graph does not stop the check.
        graph, _ = compile_for_export(source, phase=args.phase, stages=tuple(args.stage), level=args.level,
                                      inputs=common["input_shapes"], deploy=True, batch=batch, outputs=outputs,
                                      batch_from={n: tuple(a.shape) for n, a in inputs.items()})
    report = verify(source, args.weights, diags=diags, batch=batch, graph=graph, **common)
    if args.format == "json":
        return _verify_json(args, report, diags)
    out = sys.stdout
    width = max((len(c.layer) for c in report.comparisons), default=5)
    for c in report.comparisons:
        flag = "" if c.error <= args.tolerance else "  <-- exceeds tolerance"
        if c.ties:
            flag += f"  ({_ties(c.ties)})"
        out.write(f"{c.layer:<{width}}  {c.type:<14} {c.top:<20} {c.error:.3g}{flag}\n")
    worst = max((c.error for c in report.comparisons), default=0.0)
    out.write(f"compared {len(report.comparisons)} blobs (onnxruntime on {report.provider} vs the NumPy reference); "
              f"max relative error {worst:.3g}, tolerance {args.tolerance:g}\n")
    ties = sum(c.ties for c in report.comparisons)
    if ties:
        out.write(f"{_ties(ties)}; the reference continues with onnxruntime's indices there\n")
    if report.skipped:
        out.write(f"not in the exported graph (folded): {len(report.skipped)} blobs\n")
    _verify_findings(args, report, diags)
    print_report(diags, args)
    if report.first_bad is not None or diags.has_errors:
        return 1
    if not report.comparisons:
        raise DiagnosticError([codes.VERIFY_INCOMPLETE.at(None, why="no blob could be compared")])
    return 0
