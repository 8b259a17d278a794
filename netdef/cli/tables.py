"""The tables of `netdef summary` and `netdef rf`: one row per layer or blob, as aligned text,
CSV, Markdown or JSON, fitted to the terminal's width. Numbers only come from the graph's
analysis (netdef.passes); this module only lays them out.
"""
from __future__ import annotations

import csv
import io
import json
import sys

from ..ir import fmt_num, fmt_shape
from ..layers.base import prod
from ..passes.cost import BYTES_PER_ELEMENT, samples, totals
from .output import SCHEMA_VERSION


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


def shape_json(v):
    return list(v.meta["shape"]) if v.meta.get("shape") is not None else None


def summary_json(graph) -> dict:
    """The stable JSON form of `netdef summary` (see the README of the analysis): numbers only
    (counts, bytes, MACs and FLOPs for the whole batch), every layer with its output shapes."""
    t = totals(graph)
    per = samples(graph)
    batch = per.size
    blobs = {}
    for name in graph.blob_names:
        v = graph.blob(name)
        rf = v.meta.get("rf")
        blobs[name] = {"shape": shape_json(v), "rf": rf.as_json() if rf is not None else None}
    layers = []
    for node in graph.nodes:
        c = node.meta.get("cost") or {}
        params = node.meta.get("params")
        stats = node.impl.stat_blobs(node) if node.impl is not None else set()
        param_blobs = node.meta.get("blobs", [])
        rf = node.outputs[0].meta.get("rf") if node.outputs else None
        layers.append({
            "name": node.name, "type": node.type,
            "bottoms": list(node.param.bottom), "tops": list(node.param.top),
            "outputs": [{"name": v.name, "shape": shape_json(v)} for v in node.outputs],
            "output_shapes": [shape_json(v) for v in node.outputs],
            "rf": rf.as_json() if rf is not None else None,
            "params": [list(s) for s in params] if params is not None else None,
            "stat_params": [list(s) for s in node.meta.get("stat_params", [])],
            "param_count": sum(prod(s) for s in params) if params is not None else None,
            # float32 bytes of every parameter blob, learnable or not (the per-layer memory column)
            "param_bytes": sum(prod(s) for s in param_blobs) * BYTES_PER_ELEMENT,
            # Every parameter blob in Caffe's order, with its size (float32) and whether a solver
            # updates it (BatchNorm's statistics are not learnable).
            "param_blobs": [{"shape": list(s), "count": prod(s), "bytes": prod(s) * BYTES_PER_ELEMENT,
                             "learnable": i not in stats} for i, s in enumerate(param_blobs)],
            "macs": c.get("macs"), "flops": c.get("flops"), "activation_bytes": c.get("activation_bytes"),
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "name": graph.name,
        "inputs": {v.name: shape_json(v) for v in graph.inputs},
        "outputs": [v.name for v in graph.outputs],
        "blobs": blobs,
        "layers": layers,
        "totals": dict(t, param_bytes=(t["params"] + t["stat_params"]) * BYTES_PER_ELEMENT),
        # batch_size counts samples: axis 1 of time-major (T, N, ...) nets, axis 0 otherwise.
        "batch_size": per.size if graph.batch_size is not None else None,
        "batch_axis": per.axis,
        "per_sample": {k: t[k] // batch for k in ("macs", "flops", "activation_bytes")},
        "per_sample_is": per.what,
        "units": {"macs": "multiply-accumulates, whole batch", "flops": "floating-point operations, whole batch",
                  "activation_bytes": "bytes of the layer's tops (float32), whole batch",
                  "param_bytes": "bytes of the parameter blobs (float32)",
                  "rf": "receptive field of the first top in input pixels: size, stride, centre of output 0"},
    }


_COLUMNS = ("layer", "type", "bottoms -> tops", "output", "rf", "params", "param mem", "macs", "memory")
_RIGHT = {"params", "param mem", "macs", "memory"}
# Left out first when the table is wider than the terminal.
_DROP_ORDER = ("bottoms -> tops", "param mem", "memory", "rf", "type")

_FOOTER = [
    "units: rf = receptive field size/stride of the layer's first top, in input pixels",
    "       params = learnable values (+ BatchNorm statistics); param mem = their float32 bytes",
    "       macs = multiply-accumulates for the whole batch (the totals' FLOPs count multiplies and adds)",
    "       memory = float32 bytes of the layer's tops for the whole batch; G/M/K = 10^9/10^6/10^3",
]


def _footer(width: int | None) -> list[str]:
    if width is None:
        return list(_FOOTER)
    import textwrap
    out = []
    for line in _FOOTER:
        out += textwrap.wrap(line, width, subsequent_indent="       ", drop_whitespace=True)
    return out


def _flow(node, elide: int | None = None) -> str:
    def names(seq):
        seq = list(seq)
        if elide is not None and len(seq) > elide:
            return ", ".join(seq[:elide - 1]) + f", +{len(seq) - elide + 1} more"
        return ", ".join(seq)
    return f"{names(node.param.bottom)} -> {names(v.name for v in node.outputs)}".strip()


def _rows(graph, elide: int | None = None) -> list[list[str]]:
    rows = []
    for node in graph.nodes:
        c = node.meta.get("cost") or {}
        params = node.meta.get("params")
        pc = sum(prod(s) for s in params) if params is not None else None
        stat = sum(prod(s) for s in node.meta.get("stat_params", []))
        pbytes = sum(prod(s) for s in node.meta.get("blobs", [])) * BYTES_PER_ELEMENT
        first = node.outputs[0] if node.outputs else None
        rows.append([
            node.name, node.type, _flow(node, elide),
            "; ".join(fmt_shape(v.meta.get("shape"), "x") for v in node.outputs) or "-",
            _rf_short(first.meta.get("rf")) if first is not None else "-",
            "?" if pc is None else (f"{pc:,}" + (f" (+{stat:,} stats)" if stat else "") if pc or stat else "-"),
            _bytes(pbytes) if pbytes else ("?" if pc is None else "-"),
            _si(c["macs"]) if c.get("macs") else ("?" if not c and node.outputs else "-"),
            _bytes(c["activation_bytes"]) if c.get("activation_bytes") else "-",
        ])
    return rows


def not_analysed(graph) -> list:
    """The nodes the analysis could not cost (unknown types, or after the analysis stopped)."""
    return [n for n in graph.nodes if n.meta.get("unknown") or (n.outputs and "cost" not in n.meta)]


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
    unknown = [n.name for n in not_analysed(graph)]
    if unknown:
        lines.append(f"incomplete: {len(unknown)} layer(s) could not be analysed, starting at '{unknown[0]}'")
    return lines


def _table(header, rows, right=None) -> str:
    right = _RIGHT if right is None else right
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    def line(r):
        return "  ".join(str(c).rjust(w) if header[i] in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _table_width(header, rows) -> int:
    return sum(max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))) + 2 * (len(header) - 1)


def _fit(graph, width: int | None) -> tuple[list[str], list[list[str]], list[str]]:
    """The summary's columns and rows within `width` characters (None: all, in full): long
    bottom/top lists elided first, then columns left out in _DROP_ORDER, then long layer
    names cut. Returns (header, rows, the columns left out)."""
    header = list(_COLUMNS)
    rows = _rows(graph)
    if width is None or _table_width(header, rows) <= width:
        return header, rows, []
    rows = _rows(graph, elide=3)
    dropped = []
    for col in _DROP_ORDER:
        if _table_width(header, rows) <= width:
            break
        i = header.index(col)
        header.pop(i)
        for r in rows:
            r.pop(i)
        dropped.append(col)
    over = _table_width(header, rows) - width
    if over > 0:
        name_w = max(len(r[0]) for r in rows + [header])
        keep = max(12, name_w - over)
        for r in rows:
            if len(r[0]) > keep:
                r[0] = r[0][:keep - 3] + "..."
    return header, rows, dropped


def terminal_width(args) -> int | None:
    """The width a text table must fit: the terminal's, when standard output is one (and
    neither -o nor --wide is given); None (no limit) otherwise."""
    import shutil
    if getattr(args, "wide", False) or getattr(args, "output", None):
        return None
    try:
        if not sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return max(40, shutil.get_terminal_size().columns)


def summary_text(graph, fmt: str, width: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(summary_json(graph), indent=2) + "\n"
    if fmt == "csv":
        # One row per layer and nothing else: totals are in the table, markdown and JSON forms.
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["layer", "type", "bottoms", "tops", "output_shapes", "rf_size", "rf_stride", "params",
                    "stat_params", "param_bytes", "macs", "flops", "activation_bytes"])
        for node in graph.nodes:
            c = node.meta.get("cost") or {}
            rf = node.outputs[0].meta.get("rf") if node.outputs else None
            params = node.meta.get("params")
            w.writerow([node.name, node.type, " ".join(node.param.bottom), " ".join(node.param.top),
                        " ".join(fmt_shape(v.meta.get("shape"), "x") for v in node.outputs),
                        "x".join(fmt_num(s) for s in rf.size) if rf else "",
                        "x".join(fmt_num(s) for s in rf.stride) if rf else "",
                        sum(prod(s) for s in params) if params is not None else "",
                        sum(prod(s) for s in node.meta.get("stat_params", [])),
                        sum(prod(s) for s in node.meta.get("blobs", [])) * BYTES_PER_ELEMENT,
                        c.get("macs", ""), c.get("flops", ""), c.get("activation_bytes", "")])
        return buf.getvalue()
    if fmt == "markdown":
        def esc(s):
            return str(s).replace("|", "\\|")
        rows = _rows(graph)
        out = ["| " + " | ".join(_COLUMNS) + " |", "|" + "|".join("---:" if c in _RIGHT else "---"
                                                              for c in _COLUMNS) + "|"]
        out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        out.append("")
        out += [f"- {line}" for line in _totals_lines(graph)]
        out += [""] + [line.strip() + "  " for line in _FOOTER]
        return f"## {graph.name or 'net'} ({graph.state})\n\n" + "\n".join(out) + "\n"
    head = f"{graph.name or 'net'} ({graph.state}); inputs: " + ", ".join(
        f"{v.name} {fmt_shape(v.meta.get('shape'), 'x')}" for v in graph.inputs) + "\n\n"
    header, rows, dropped = _fit(graph, width)
    foot = _footer(width)
    if dropped:
        import textwrap
        foot += textwrap.wrap(f"left out to fit {width} columns: {', '.join(dropped)} (--wide shows every column)",
                              width)
    return head + _table(header, rows) + "\n\n" + "\n".join(_totals_lines(graph)) + "\n\n" + "\n".join(foot) + "\n"


def rf_rows(graph) -> list:
    out = []
    for name in graph.blob_names:
        v = graph.blob(name)
        rf = v.meta.get("rf")
        if rf is not None:
            out.append((v, rf))
    return out


def render_table(header, rows, fmt: str, right=()) -> str:
    """A plain table as text (aligned columns), CSV or Markdown."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "markdown":
        def esc(c):
            return str(c).replace("|", "\\|")
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if h in right else "---" for h in header) + "|"]
        out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        return "\n".join(out) + "\n"
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def rf_text(graph, fmt: str) -> str:
    """`netdef rf` as a table: text (table) or CSV/Markdown, whose columns are machine-readable."""
    rows = rf_rows(graph)
    if not rows:
        return "no blob has spatial axes to trace a receptive field through\n"
    table = []
    for v, rf in rows:
        if fmt in ("csv", "markdown"):
            table.append([v.name, fmt_shape(v.meta.get("shape"), "x"), "x".join(fmt_num(s) for s in rf.size),
                          "x".join(fmt_num(s) for s in rf.stride), "x".join(fmt_num(c) for c in rf.center),
                          "yes" if rf.whole else "no"])
            continue
        table.append([v.name, fmt_shape(v.meta.get("shape"), "x"),
                      " x ".join(fmt_num(s) for s in rf.size) + (" (whole input)" if rf.whole else ""),
                      " x ".join(fmt_num(s) for s in rf.stride),
                      "(" + ", ".join(fmt_num(c) for c in rf.center) + ")"])
    if fmt in ("csv", "markdown"):
        header = ["blob", "shape", "rf_size", "rf_stride", "center", "whole_input"]
    else:
        header = ["blob", "shape", "rf size", "stride", "centre of output 0"]
    return render_table(header, table, "text" if fmt == "table" else fmt)
