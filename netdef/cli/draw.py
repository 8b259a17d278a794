"""`netdef draw`: a compiled net drawn with graphviz (the drawing itself is netdef.draw)."""
from __future__ import annotations

import sys

from ..diagnostics import DiagnosticError
from ..draw import draw, layers_in_error, output_format
from ..pipeline import compile as compile_net
from . import output as cli
from .select import shown


def cmd_draw(args) -> int:
    output_format(args.output)  # an unknown format fails before any work
    graph = compile_net(args.file, phase=args.phase, stages=tuple(args.stage), level=args.level,
                        inputs=args.inputs or None, max_errors=args.max_errors)
    parsed = graph.parsed
    if parsed is None or not parsed.syntax_ok or parsed.kind != "net":
        # unreadable, broken syntax, or a solver: nothing to draw
        raise DiagnosticError(list(graph.diagnostics))
    cli.print_diagnostics(shown("draw", graph.diagnostics))
    failed = graph.diagnostics.has_errors
    errors = layers_in_error(graph) if failed else set()
    report = {"ok": not failed, "wrote": None, "format": output_format(args.output), "layers": len(graph.nodes),
              "layers_in_error": sorted(errors)}
    if failed and not getattr(args, "force", False):
        # A picture of a net with errors looks like a valid net: none is written unless asked.
        sys.stderr.write(f"netdef draw: {args.output} not written: the net has errors "
                         "(--force draws it, with the layers in error outlined in red)\n")
        if cli.json_mode:
            cli.emit_json(args, report)
        return 1
    draw(graph, args.output, args.rankdir, args.shapes, args.rf, args.params, args.collapse, errors)
    report["wrote"] = args.output
    if cli.json_mode:
        cli.emit_json(args, report)
    else:
        marked = f"; {len(errors)} layer(s) in error outlined in red" if errors else ""
        cli.info(f"wrote {args.output}: {report['format']}, {len(graph.nodes)} layers{marked}")
    return 1 if failed else 0
