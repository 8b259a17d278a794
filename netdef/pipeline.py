"""The one way from a definition to an analysed graph, used by every command and the API:

    load:    text (a path, a bundled name, or '-' for stdin) → parse → upgrade (V0/V1 nets,
             old solvers) → parse.Parsed (messages, Loc tree, diagnostics)
    compile: Parsed (or a path) → build (NetState filter, in-place, fan-out) → passes (verify,
             shapes, receptive field, cost) → an analysed ir.Graph

    g = netdef.compile("alexnet", phase="TEST")
    g.blob("fc8").meta["shape"]        # (10, 1000)
    g.diagnostics                      # everything found, from syntax to shapes

compile never raises for bad input: a file that cannot be read, syntax errors, unknown layers
and shape errors all become diagnostics. Shape inference stops at a layer it cannot handle;
everything that does not depend on that layer keeps its shapes. Nothing here imports the
command line or the package facade; consumers (export, draw, view, solver, lsp, cli) call in.
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


def load(path: str, kind: str | None = None, max_errors: int = 100):
    """Parse a net or solver definition (a path or a bundled name), upgrading V0/V1 formats.

    Returns a parse.Parsed: .kind ("net"/"solver"), .message, .loc, .diagnostics.
    Raises source.SourceError when the file cannot be read.
    """
    from .library import resolve
    from .parse import parse_file
    from .upgrade import upgrade_parsed

    parsed = parse_file(resolve(path), kind, max_errors)
    return upgrade_parsed(parsed)


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
