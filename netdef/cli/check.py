"""`netdef check`, `summary`, `rf` and `sizes`: the analysis on the command line.

Each handler compiles the definition (netdef.pipeline.compile), prints what it found and returns
the exit code: 0 when the definition has no errors, 1 otherwise. Diagnostics go to standard
error (which ones: cli/select.py), results to standard output (or -o FILE, written atomically);
the tables themselves are laid out by cli/tables.py.
"""
from __future__ import annotations

import sys

from .. import codes
from ..diagnostics import DiagnosticError, UsageError
from ..outputs import write_atomic, write_or_print
from ..pipeline import compile as compile_net
from ..sizes import valid_sizes
from . import output
from .select import print_report, shown
from .tables import not_analysed, rf_rows, rf_text, shape_json, summary_json, summary_text, terminal_width

# --- shared -------------------------------------------------------------------------------


def _graph(args):
    return compile_net(args.file, phase=args.phase, stages=tuple(args.stage), level=args.level,
                       inputs=args.inputs, max_errors=getattr(args, "max_errors", 100))


def _report(graph, args) -> int:
    """Print the diagnostics the command shows (errors, and the warnings that explain missing
    results) to stderr; the exit code."""
    diags = graph.diagnostics
    if not graph.nodes and diags.has_errors:
        raise DiagnosticError(diags)  # the collector itself: the CLI says how many were cut
    print_report(diags, args)
    return 1 if diags.has_errors else 0


def display_name(path: str) -> str:
    """How a FILE argument is named in messages ('-' is standard input)."""
    return "<stdin>" if path == "-" else path


# --- check ----------------------------------------------------------------------------------

def cmd_check(args) -> int:
    graph = _graph(args)
    diags = shown("check", graph.diagnostics)
    errors = [d for d in diags if d.is_error]
    warnings = [d for d in diags if d.severity == "warning"]
    failed = bool(errors) or (args.warnings == "error" and bool(warnings))
    listed = [d for d in diags if args.warnings != "hide" or d.severity != "warning"]
    target = getattr(args, "output", None)
    if args.format in ("github", "sarif"):
        write_or_print(target, output.render_ci(args.format, listed))
        return 1 if failed else 0
    if args.format == "json":
        doc = {"file": display_name(args.file), "ok": not failed, "errors": graph.diagnostics.error_count,
               "warnings": len(warnings), "layers": len(graph.nodes), "dropped": graph.diagnostics.dropped,
               "diagnostics": [d.to_json() for d in listed]}
        output.emit_json(args, doc, target)
        return 1 if failed else 0
    if target:
        # The text report goes to the file, uncoloured, as it would to a pipe.
        lines = [d.render() for d in listed]
        if graph.diagnostics.dropped:
            lines.append(output.dropped_note(graph.diagnostics.dropped))
        lines.append(_check_verdict(args, graph, errors, warnings, failed))
        write_atomic(target, "\n".join(lines) + "\n")
        return 1 if failed else 0
    output.print_diagnostics(graph.diagnostics, warnings=args.warnings)
    if failed:
        sys.stderr.write(_check_verdict(args, graph, errors, warnings, failed) + "\n")
        return 1
    output.info(_check_verdict(args, graph, errors, warnings, failed))
    return 0


def _check_verdict(args, graph, errors, warnings, failed) -> str:
    name = display_name(args.file)
    if failed:
        why = f"{len(errors)} error(s)" if errors else f"{len(warnings)} warning(s) treated as errors (-W error)"
        return f"{name}: {why}, {len(warnings)} warning(s)"
    note = f", {len(warnings)} warning(s)" if warnings else ""
    return f"{name}: ok ({len(graph.nodes)} layers in {graph.state}{note})"


# --- summary --------------------------------------------------------------------------------

def _incomplete_is_an_error(graph) -> list:
    """Totals over part of a net are wrong numbers, not smaller ones (issue 11: `summary
    --format json` reported a ResNet's 2,100 parameters and exit 0): an analysis that stopped is
    an error (E415) for a command that reports totals. Returns the names not analysed."""
    missing = not_analysed(graph)
    if missing and not graph.diagnostics.has_errors:
        first = missing[0]
        graph.diagnostics.add(codes.ANALYSIS_INCOMPLETE.at(
            first.span, n=len(missing), layer=first.name,
            notes=["the warnings above say why; 'netdef check' lists every diagnostic"]))
    return [n.name for n in missing]


def cmd_summary(args) -> int:
    graph = _graph(args)
    missing = _incomplete_is_an_error(graph)
    code = _report(graph, args)
    if args.format == "json":
        doc = summary_json(graph)
        doc["ok"] = code == 0
        doc["complete"] = not missing
        doc["not_analysed"] = missing
        if args.output and code:
            sys.stderr.write(f"netdef summary: {args.output} not written: the net has errors\n")
        output.emit_json(args, doc, None if code else args.output)
        return code
    text = summary_text(graph, "table" if args.format == "text" else args.format, terminal_width(args))
    if args.output:
        if code:
            # A failed run leaves the previous output as it was; the partial table is shown.
            sys.stderr.write(f"netdef summary: {args.output} not written: the net has errors\n")
            sys.stdout.write(text)
            return code
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return code


# --- rf -------------------------------------------------------------------------------------

def cmd_rf(args) -> int:
    graph = _graph(args)
    code = _report(graph, args)
    target = getattr(args, "output", None)
    if args.format == "json":
        blobs = {v.name: dict(rf.as_json(), whole=rf.whole, shape=shape_json(v)) for v, rf in rf_rows(graph)}
        output.emit_json(args, {"file": display_name(args.file), "ok": code == 0, "blobs": blobs,
                                "units": "input pixels; centre of output 0 along each spatial axis"}, target)
        return code
    write_or_print(target, rf_text(graph, args.format))
    return code


# --- sizes ----------------------------------------------------------------------------------

def _parse_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition(":")
    try:
        lo_i, hi_i = int(lo), int(hi)
    except ValueError:
        raise UsageError(f"--range {text}: expected MIN:MAX, e.g. 32:512") from None
    if not sep or lo_i < 1 or hi_i < lo_i:
        raise UsageError(f"--range {text}: need 1 <= MIN <= MAX")
    if hi_i - lo_i > 100_000:
        raise UsageError(f"--range {text}: at most 100000 sizes at a time")
    return lo_i, hi_i


def _fmt_ranges(ranges) -> str:
    if not ranges:
        return "none"
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def cmd_sizes(args) -> int:
    lo, hi = _parse_range(args.range)
    graph = _graph(args)
    code = _report(graph, args)
    scan = valid_sizes(graph, lo, hi)
    if not scan.inputs:
        raise DiagnosticError(list(graph.diagnostics)) if graph.diagnostics.has_errors else \
            UsageError(f"{args.file} has no input with spatial axes (N, C, H, W) whose size could vary")
    h, w = scan.declared
    if args.format == "json":
        output.emit_json(args, {
            "file": display_name(args.file), "ok": code == 0, "inputs": list(scan.inputs), "declared": [h, w],
            "tried": [lo, hi],
            "valid": {mode: [[a, b] for a, b in scan.modes[mode]] for mode in ("height", "width", "square")},
            "fixed": [{"layer": n, "type": t} for n, t in scan.fixed],
            "derived": [{"input": n, "readers": list(r)} for n, r in scan.derived],
            "held": [{"input": n, "size": [hh, ww]} for n, (hh, ww) in scan.held],
            "skipped": list(scan.skipped)}, getattr(args, "output", None))
        return code
    lines = [f"inputs {', '.join(scan.inputs)}: declared {h}x{w}; sizes tried {lo}-{hi}",
             f"height (width {w}): {_fmt_ranges(scan.modes['height'])}",
             f"width (height {h}): {_fmt_ranges(scan.modes['width'])}",
             f"square (H = W):     {_fmt_ranges(scan.modes['square'])}"]
    if scan.fixed:
        names = ", ".join(f"{n} ({t})" for n, t in scan.fixed)
        lines.append(f"fixed-size layers: {names}: their parameter shapes depend on the input size, so only "
                     "sizes that give them their declared input are valid")
    for name, readers in scan.derived:
        lines.append(f"derived: {name} (read only by loss and Accuracy layers "
                     f"{', '.join(repr(r) for r in readers)}): not varied; its size must follow the prediction's, "
                     "so those layers are not checked")
    for name, (hh, ww) in scan.held:
        lines.append(f"held: {name} at its declared {hh}x{ww} (it differs from {scan.inputs[0]}'s)")
    if scan.skipped:
        lines.append(f"note: {len(scan.skipped)} layer(s) netdef cannot analyse are not checked "
                     f"(from '{scan.skipped[0]}')")
    write_or_print(getattr(args, "output", None), "\n".join(lines) + "\n")
    return code
