"""netdef: a compiler for Caffe-style network and solver definitions.

    import netdef
    parsed = netdef.load("alexnet")   # messages + source locations
"""
from __future__ import annotations

from .version import __version__

__all__ = ["__version__", "compile", "draw_net", "export_onnx", "learning_rates", "load", "read_weights"]


def load(path: str, kind: str | None = None, max_errors: int = 100):
    """Parse a net or solver definition (a path or a bundled name), upgrading V0/V1 formats.

    Returns a parse.Parsed: .kind ("net"/"solver"), .message, .loc, .diagnostics.
    Raises source.SourceError when the file cannot be read. See netdef.pipeline.
    """
    from .pipeline import load as _load

    return _load(path, kind, max_errors)


def compile(path_or_parsed, phase: str = "TEST", stages=(), level: int = 0, inputs: dict | None = None,
            max_errors: int = 100):
    """Analyse a net: NetState filtering, IR, shapes, receptive fields, cost (an ir.Graph).

    Never raises for bad input; problems are in graph.diagnostics. See netdef.pipeline.
    """
    from .pipeline import compile as _compile

    return _compile(path_or_parsed, phase, stages, level, inputs, max_errors)


def draw_net(graph, path: str, rankdir: str = "TB", shapes: bool = True, rf: bool = False, params: bool = False,
             collapse=()) -> None:
    """Draw a compiled graph to .svg/.png/.pdf (rendered by Graphviz's dot) or .dot, atomically.

    collapse: name prefixes to frame as clusters, or "auto" for repeated blocks. See netdef.draw
    (the module's name is why this function is not called `draw`: importing netdef.draw would
    replace it).
    """
    from .draw import draw as _draw

    _draw(graph, path, rankdir, shapes, rf, params, collapse)


def learning_rates(solver, iters):
    """The learning rate Caffe's SGDSolver uses at each iteration in `iters` (float32 array).

    solver: a solver file, a bundled solver's name, or a parse.Parsed. Raises DiagnosticError
    when the solver is invalid. See netdef.solver.
    """
    from .diagnostics import DiagnosticError
    from .solver import Schedule, check_fields, load_solver

    import os

    parsed = load_solver(os.fspath(solver)) if isinstance(solver, str) or hasattr(solver, "__fspath__") else solver
    check_fields(parsed.message, parsed.loc, parsed.diagnostics)
    if parsed.diagnostics.has_errors:
        raise DiagnosticError(parsed.diagnostics)
    return Schedule(parsed.message).rates(iters)


def export_onnx(source, weights=None, output: str | None = None, **options):
    """Export a net definition (path, bundled name or parse.Parsed) to ONNX.

    weights: a .caffemodel path or a weights.WeightSet; without it, fillers seeded by `seed`.
    options: opset (13..21, default 17), batch (N or "dynamic"), fp16, fp16_io, fold (default
    True), seed, phase, stages, level, inputs ({blob: shape}). With `output`, the file is
    written atomically. Returns an export.onnx.Exported (.model(), .to_bytes(), .write(path),
    .diagnostics). Raises DiagnosticError. See netdef.export.onnx.
    """
    from .export.onnx import export

    exported = export(source, weights, **options)
    if output is not None:
        exported.write(output)
    return exported


def read_weights(path: str):
    """A .caffemodel as a weights.WeightSet (layer name -> blobs). Raises DiagnosticError."""
    from .weights import read_caffemodel

    return read_caffemodel(path)
