"""`netdef export`: a definition with its weights (or fillers) as an ONNX file.

export_from_args is the one way from a command line to netdef.export.onnx.export; run and bench
(cli/run.py) export a definition through it too.
"""
from __future__ import annotations

from ..export.model import DEFAULT_OPSET, Exported
from ..export.onnx import export
from . import output
from .select import print_report, reporting


def export_from_args(args, batch=None, **overrides) -> Exported:
    """Export with the network-state options every net command shares; prints the
    diagnostics worth showing (select.print_report). `batch`: as the --batch parser gives
    it (cli.parser.batch_size): None, a number, or 'dynamic'."""
    kw = dict(opset=getattr(args, "opset", DEFAULT_OPSET), fp16=getattr(args, "fp16", False),
              fp16_io=getattr(args, "fp16_io", False), fold=getattr(args, "fold", True),
              seed=getattr(args, "seed", 0), phase=args.phase, stages=tuple(args.stage), level=args.level,
              inputs=args.inputs, max_errors=getattr(args, "max_errors", 100),
              allow_missing_weights=getattr(args, "allow_missing_weights", False),
              outputs=getattr(args, "outputs", None), custom_ops=getattr(args, "custom_ops", False))
    kw.update(overrides)
    ex = export(args.file, getattr(args, "weights", None), batch=batch, **kw)
    print_report(ex.diagnostics, args)
    return ex


@reporting
def cmd_export(args) -> int:
    from ..outputs import check_writable
    check_writable(args.output)
    ex = export_from_args(args, batch=args.batch)
    n = ex.write(args.output)
    g = ex.skeleton.graph
    if output.json_mode:
        output.emit_json(args, {"ok": True, "wrote": args.output, "bytes": n, "opset": ex.exporter.opset,
                                "nodes": len(g.node), "initializers": len(ex.inits),
                                "inputs": [i.name for i in g.input], "outputs": [o.name for o in g.output]})
        return 0
    output.info(f"wrote {args.output}: opset {ex.exporter.opset}, {len(g.node)} nodes, "
                f"{len(ex.inits)} initializers, {n / 1e6:.1f} MB")
    return 0
