"""`netdef draw`: a compiled net drawn with graphviz (the drawing itself is netdef.draw)."""
from __future__ import annotations

import re
import sys

from ..diagnostics import DiagnosticError
from ..draw import draw, output_format
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


def layers_in_error(graph) -> set[str]:
    """The names of the layers the graph's errors are about: the layer a message names
    ("... layer 'conv1' ..."), else the layer whose definition holds the error's place."""
    names = {n.name for n in graph.nodes}
    path = graph.parsed.source.path if graph.parsed is not None else None
    starts = sorted((n.span.start, n.name) for n in graph.nodes if n.span is not None and n.span.path == path)
    out = set()
    for d in graph.diagnostics:
        if not d.is_error:
            continue
        named = [m for m in re.findall(r"layer '([^']*)'", d.message) if m in names]
        if named:
            out.update(named)
            continue
        if d.span is None or not starts or d.span.path != path:
            continue
        before = [name for start, name in starts if start <= d.span.start]
        if before:
            out.add(before[-1])
    return out
