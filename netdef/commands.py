"""`netdef check`, `summary`, `rf` and `sizes`: the analysis on the command line.

Each handler compiles the definition (netdef.analysis.compile), prints what it found and returns
the exit code: 0 when the definition has no errors, 1 otherwise. Diagnostics go to standard
error, results to standard output (or -o FILE, written atomically).
"""
from __future__ import annotations

import csv
import io
import json
import sys

from .analysis import compile as compile_net, valid_sizes
from .cli import print_diagnostics
from .diagnostics import DiagnosticError, UsageError
from .ir import fmt_num
from .outputs import write_atomic, write_or_print
from .passes.cost import BYTES_PER_ELEMENT, samples, totals
from .layers.base import prod

# Warnings that explain why a summary is incomplete; the others are for `netdef check`.
_EXPLAINS_GAPS = {"W306", "W308"}


# --- shared -------------------------------------------------------------------------------

def parse_input_option(text: str) -> tuple[str, tuple[int, ...]]:
    """--input NAME=N,C,H,W (any number of dimensions; 'x' also separates them)."""
    name, sep, dims = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"--input {text}: expected NAME=N,C,H,W (e.g. --input data=1,3,224,224)")
    parts = [p.strip() for p in dims.replace("x", ",").split(",")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--input {text}: dimensions must be whole numbers, separated by commas") from None
    if not shape or any(d < 0 for d in shape):
        raise UsageError(f"--input {text}: give one or more dimensions, none negative")
    count = 1
    for d in shape:
        count *= d
    if len(shape) > 32 or count > 2**31 - 1:  # Blob::Reshape: kMaxBlobAxes, INT_MAX elements
        raise UsageError(f"--input {text}: a Caffe blob has at most 32 axes and 2,147,483,647 elements")
    return name, shape


def _inputs(args) -> dict:
    out = {}
    for text in getattr(args, "inputs", []) or []:
        name, shape = parse_input_option(text)
        out[name] = shape
    return out


def _graph(args):
    return compile_net(args.file, phase=args.phase, stages=tuple(args.stage), level=args.level,
                       inputs=_inputs(args), max_errors=getattr(args, "max_errors", 100))


def _report(graph, args, only_gaps: bool = True) -> int:
    """Print errors (and the warnings that explain missing results) to stderr; the exit code."""
    diags = graph.diagnostics
    if not graph.nodes and diags.has_errors:
        raise DiagnosticError(diags)  # the collector itself: the CLI says how many were cut
    shown = [d for d in diags if d.is_error or not only_gaps or d.code in _EXPLAINS_GAPS]
    print_diagnostics(shown)
    if diags.dropped:
        sys.stderr.write(f"note: {diags.dropped} more diagnostics not shown (--max-errors)\n")
    hidden = len(diags) - len(shown)
    if hidden:
        sys.stderr.write(f"note: {hidden} more warning(s); run 'netdef check {args.file}' to see them\n")
    return 1 if diags.has_errors else 0


def _dims(shape) -> str:
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def _bytes(n: float) -> str:
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _rf_short(rf) -> str:
    if rf is None:
        return "-"
    if rf.whole:
        return "whole"
    size = fmt_num(rf.size[0]) if len(set(rf.size)) == 1 else "x".join(fmt_num(s) for s in rf.size)
    stride = fmt_num(rf.stride[0]) if len(set(rf.stride)) == 1 else "x".join(fmt_num(s) for s in rf.stride)
    return f"{size}/{stride}"


# --- check ----------------------------------------------------------------------------------

def cmd_check(args) -> int:
    from . import cli
    graph = _graph(args)
    diags = list(graph.diagnostics)
    errors = [d for d in diags if d.is_error]
    warnings = [d for d in diags if d.severity == "warning"]
    failed = bool(errors) or (args.warnings == "error" and bool(warnings))
    shown = [d for d in diags if args.warnings != "hide" or d.severity != "warning"]
    output = getattr(args, "output", None)
    if args.format in ("github", "sarif"):
        write_or_print(output, cli.render_ci(args.format, shown))
        return 1 if failed else 0
    if args.format == "json":
        doc = {"file": display_name(args.file), "ok": not failed, "errors": graph.diagnostics.error_count,
               "warnings": len(warnings), "layers": len(graph.nodes), "dropped": graph.diagnostics.dropped,
               "diagnostics": [d.to_json() for d in shown]}
        cli.emit_json(args, doc, output)
        return 1 if failed else 0
    if output:
        # The text report goes to the file, uncoloured, as it would to a pipe.
        lines = [d.render() for d in shown]
        if graph.diagnostics.dropped:
            lines.append(f"note: {graph.diagnostics.dropped} more diagnostics not shown (--max-errors)")
        lines.append(_check_verdict(args, graph, errors, warnings, failed))
        write_atomic(output, "\n".join(lines) + "\n")
        return 1 if failed else 0
    print_diagnostics(graph.diagnostics, warnings=args.warnings)
    if failed:
        sys.stderr.write(_check_verdict(args, graph, errors, warnings, failed) + "\n")
        return 1
    cli.info(_check_verdict(args, graph, errors, warnings, failed))
    return 0


def _check_verdict(args, graph, errors, warnings, failed) -> str:
    name = display_name(args.file)
    if failed:
        why = f"{len(errors)} error(s)" if errors else f"{len(warnings)} warning(s) treated as errors (-W error)"
        return f"{name}: {why}, {len(warnings)} warning(s)"
    note = f", {len(warnings)} warning(s)" if warnings else ""
    return f"{name}: ok ({len(graph.nodes)} layers in {graph.state}{note})"


def display_name(path: str) -> str:
    """How a FILE argument is named in messages ('-' is standard input)."""
    return "<stdin>" if path == "-" else path


# --- summary --------------------------------------------------------------------------------

def summary_json(graph) -> dict:
    """The stable JSON form of `netdef summary` (see the README of the analysis)."""
    t = totals(graph)
    per = samples(graph)
    batch = per.size
    blobs = {}
    for name in graph.blob_names:
        v = graph.blob(name)
        rf = v.meta.get("rf")
        blobs[name] = {"shape": list(v.meta["shape"]) if v.meta.get("shape") is not None else None,
                       "rf": rf.as_json() if rf is not None else None}
    layers = []
    for node in graph.nodes:
        c = node.meta.get("cost") or {}
        params = node.meta.get("params")
        stats = node.impl.stat_blobs(node) if node.impl is not None else set()
        layers.append({
            "name": node.name, "type": node.type,
            "bottoms": list(node.param.bottom), "tops": list(node.param.top),
            "params": [list(s) for s in params] if params is not None else None,
            "stat_params": [list(s) for s in node.meta.get("stat_params", [])],
            "param_count": sum(prod(s) for s in params) if params is not None else None,
            # Every parameter blob in Caffe's order, with its size (float32) and whether a solver
            # updates it (BatchNorm's statistics are not learnable).
            "param_blobs": [{"shape": list(s), "count": prod(s), "bytes": prod(s) * BYTES_PER_ELEMENT,
                             "learnable": i not in stats} for i, s in enumerate(node.meta.get("blobs", []))],
            "macs": c.get("macs"), "flops": c.get("flops"), "activation_bytes": c.get("activation_bytes"),
        })
    return {
        "name": graph.name,
        "inputs": {v.name: list(v.meta["shape"]) if v.meta.get("shape") is not None else None for v in graph.inputs},
        "outputs": [v.name for v in graph.outputs],
        "blobs": blobs,
        "layers": layers,
        "totals": t,
        # batch_size counts samples: axis 1 of time-major (T, N, ...) nets, axis 0 otherwise.
        "batch_size": per.size if graph.batch_size is not None else None,
        "batch_axis": per.axis,
        "per_sample": {k: t[k] // batch for k in ("macs", "flops", "activation_bytes")},
        "per_sample_is": per.what,
    }


_COLUMNS = ("layer", "type", "bottoms -> tops", "output", "rf", "params", "macs", "memory")


def _rows(graph) -> list[list[str]]:
    rows = []
    for node in graph.nodes:
        c = node.meta.get("cost") or {}
        params = node.meta.get("params")
        pc = sum(prod(s) for s in params) if params is not None else None
        stat = sum(prod(s) for s in node.meta.get("stat_params", []))
        flow = f"{', '.join(node.param.bottom)} -> {', '.join(v.name for v in node.outputs)}".strip()
        first = node.outputs[0] if node.outputs else None
        rows.append([
            node.name, node.type, flow,
            "; ".join(_dims(v.meta.get("shape")) for v in node.outputs) or "-",
            _rf_short(first.meta.get("rf")) if first is not None else "-",
            "?" if pc is None else (f"{pc:,}" + (f" (+{stat:,} stats)" if stat else "") if pc or stat else "-"),
            _si(c["macs"]) if c.get("macs") else ("?" if not c and node.outputs else "-"),
            _bytes(c["activation_bytes"]) if c.get("activation_bytes") else "-",
        ])
    return rows


def _totals_lines(graph) -> list[str]:
    t = totals(graph)
    per = samples(graph)
    batch = per.size
    lines = [f"parameters: {t['params']:,} learnable ({_bytes(t['params'] * BYTES_PER_ELEMENT)})"
             + (f", {t['stat_params']:,} BatchNorm statistics" if t["stat_params"] else "")]
    what = f"{batch} sequences x {per.steps} time steps" if per.steps is not None else str(batch)
    lines.append(f"batch {what}: {_si(t['macs'])} MACs, {_si(t['flops'])} FLOPs, "
                 f"activations {_bytes(t['activation_bytes'])}")
    if batch != 1:
        # Say what a sample is where it is not one item of axis 0.
        label = f"per sample ({per.what})" if per.steps is not None else "per sample"
        lines.append(f"{label}: {_si(t['macs'] / batch)} MACs, {_si(t['flops'] / batch)} FLOPs, "
                     f"activations {_bytes(t['activation_bytes'] / batch)}")
    unknown = [n.name for n in graph.nodes if n.meta.get("unknown") or (n.outputs and "cost" not in n.meta)]
    if unknown:
        lines.append(f"incomplete: {len(unknown)} layer(s) could not be analysed, starting at '{unknown[0]}'")
    return lines


def _table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    right = {5, 6, 7}
    def line(r):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def summary_text(graph, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(summary_json(graph), indent=2) + "\n"
    rows = _rows(graph)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["layer", "type", "bottoms", "tops", "output_shapes", "rf_size", "rf_stride", "params",
                    "stat_params", "param_bytes", "macs", "flops", "activation_bytes"])
        for node in graph.nodes:
            c = node.meta.get("cost") or {}
            rf = node.outputs[0].meta.get("rf") if node.outputs else None
            params = node.meta.get("params")
            w.writerow([node.name, node.type, " ".join(node.param.bottom), " ".join(node.param.top),
                        " ".join(_dims(v.meta.get("shape")) for v in node.outputs),
                        "x".join(fmt_num(s) for s in rf.size) if rf else "",
                        "x".join(fmt_num(s) for s in rf.stride) if rf else "",
                        sum(prod(s) for s in params) if params is not None else "",
                        sum(prod(s) for s in node.meta.get("stat_params", [])),
                        sum(prod(s) for s in node.meta.get("blobs", [])) * BYTES_PER_ELEMENT,
                        c.get("macs", ""), c.get("flops", ""), c.get("activation_bytes", "")])
        t = totals(graph)
        w.writerow(["TOTAL", "", "", "", "", "", "", t["params"], t["stat_params"],
                    (t["params"] + t["stat_params"]) * BYTES_PER_ELEMENT, t["macs"], t["flops"], t["activation_bytes"]])
        return buf.getvalue()
    if fmt == "markdown":
        def esc(s):
            return str(s).replace("|", "\\|")
        out = ["| " + " | ".join(_COLUMNS) + " |", "|" + "|".join("---:" if i in (5, 6, 7) else "---"
                                                              for i in range(len(_COLUMNS))) + "|"]
        out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        out.append("")
        out += [f"- {line}" for line in _totals_lines(graph)]
        return f"## {graph.name or 'net'} ({graph.state})\n\n" + "\n".join(out) + "\n"
    head = f"{graph.name or 'net'} ({graph.state}); inputs: " + ", ".join(
        f"{v.name} {_dims(v.meta.get('shape'))}" for v in graph.inputs) + "\n\n"
    return head + _table(list(_COLUMNS), rows) + "\n\n" + "\n".join(_totals_lines(graph)) + "\n"


def cmd_summary(args) -> int:
    graph = _graph(args)
    code = _report(graph, args)
    text = summary_text(graph, args.format)
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

def rf_rows(graph) -> list:
    out = []
    for name in graph.blob_names:
        v = graph.blob(name)
        rf = v.meta.get("rf")
        if rf is not None:
            out.append((v, rf))
    return out


def cmd_rf(args) -> int:
    graph = _graph(args)
    code = _report(graph, args)
    rows = rf_rows(graph)
    if args.format == "json":
        doc = {v.name: dict(rf.as_json(), whole=rf.whole, shape=list(v.meta["shape"]) if v.meta.get("shape") else None)
               for v, rf in rows}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return code
    if not rows:
        sys.stdout.write("no blob has spatial axes to trace a receptive field through\n")
        return code
    table = []
    for v, rf in rows:
        table.append([v.name, _dims(v.meta.get("shape")),
                      " x ".join(fmt_num(s) for s in rf.size) + (" (whole input)" if rf.whole else ""),
                      " x ".join(fmt_num(s) for s in rf.stride),
                      "(" + ", ".join(fmt_num(c) for c in rf.center) + ")"])
    header = ["blob", "shape", "rf size", "stride", "centre of output 0"]
    widths = [max(len(r[i]) for r in [header] + table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    sys.stdout.write("\n".join(lines) + "\n")
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
    sys.stdout.write("\n".join(lines) + "\n")
    return code
