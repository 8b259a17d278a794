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
            diags.add(codes.UNREADABLE.at(None, message=f"{e.path}: {e.message}"))
            return Graph(diagnostics=diags)
    diags = Diagnostics(max_errors)
    diags.extend(parsed.diagnostics)
    diags.dropped += getattr(parsed.diagnostics, "dropped", 0)
    if parsed.kind != NET:
        diags.add(codes.NOT_A_NET.at(None, path=parsed.source.path,
                                     notes=["a solver names its net with 'net:'; analyse that file"]))
        return Graph(parsed=parsed, diagnostics=diags)
    if not parsed.syntax_ok:
        # The message is cut off where the syntax error is; analysing it would only add noise.
        return Graph(parsed.message.name, parsed=parsed, diagnostics=diags)
    graph = build(parsed, phase, stages, level, inputs, diagnostics=diags)
    run_all(graph)
    return graph
