"""`netdef init`: filler-initialised weights for a net, written as a .caffemodel."""
from __future__ import annotations

import math

from ..diagnostics import DiagnosticError, Diagnostics
from ..export.prepare import compile_for_export, param_specs
from ..outputs import check_writable
from ..weights import init_layer, write_caffemodel
from . import output
from .output import print_diagnostics
from .select import print_report, reporting


def cmd_init(args) -> int:
    """Filler-initialised weights for a net, written as a .caffemodel Caffe can load."""
    return reporting(_init)(args)


def _init(args) -> int:
    check_writable(args.output)
    graph, _ = compile_for_export(args.file, phase=args.phase, stages=tuple(args.stage), level=args.level,
                                  inputs=args.inputs, max_errors=args.max_errors,
                                  what="initialised")
    diags = Diagnostics(args.max_errors)
    diags.extend(graph.diagnostics)
    specs = {s.name: s for s in param_specs(graph)}

    def layers():
        # One layer at a time: only the layer being written is held in memory.
        for node in graph.nodes:
            spec = specs.get(node.name)
            arrays = init_layer(spec, args.seed, diags) if spec is not None else []
            if arrays is None:
                raise DiagnosticError(list(diags))
            yield node.name, node.type, arrays

    print_report(diags, args)
    diags = Diagnostics(args.max_errors)
    n = write_caffemodel(args.output, graph.name, layers())
    print_diagnostics(diags)
    count = sum(math.prod(s) for spec in specs.values() for s in spec.shapes)
    if output.json_mode:
        output.emit_json(args, {"ok": True, "wrote": args.output, "bytes": n, "layers_with_parameters": len(specs),
                                "values": count, "seed": args.seed})
        return 0
    output.info(f"wrote {args.output}: {len(specs)} layers with parameters, {count:,} values, {n / 1e6:.1f} MB")
    return 0
