"""One self-contained interactive page per definition: what `netdef view FILE -o net.html`
writes (its handler is netdef.cli.view).

A net gives the graph (Graphviz's layout, repeated blocks folded, pan and zoom), a details
panel per layer and per blob, a sortable per-layer table, search, diagnostics marked on their
layers, and every NetState of the file (TRAIN, TEST, stages) switchable. A solver gives its
summary and an interactive learning-rate plot.

The page is one HTML file with its script and style inlined (netdef/view/assets): no network
access, no external resources, and a Content-Security-Policy that forbids any. Everything that
comes from the definition is JSON data in a <script type="application/json"> element, with
`<`, `>` and `&` written as \\u escapes so that no text can close the element; view.js reads it
with JSON.parse and puts text into the page with textContent only.
"""
from __future__ import annotations

import html
import json
import os
from importlib import resources

from ..diagnostics import DiagnosticError, Diagnostics

MAX_STATES = 8


def asset(name: str) -> str:
    text = resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")
    # Inlined into <script>/<style>: a closing tag inside would end the element early.
    lowered = text.lower()
    if any(tag in lowered for tag in ("<script", "</script", "</style", "<!--")):
        raise RuntimeError(f"netdef/view/assets/{name} must not contain <script, </script, </style or <!--")
    return text


def embed_json(doc) -> str:
    """JSON safe inside a <script> element: no `<`, `>` or `&` survives as itself."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'")


def page(doc: dict, title: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)} · netdef view</title>\n"
            f"<style>\n{asset('view.css')}\n</style>\n</head>\n<body>\n"
            "<noscript>This page needs JavaScript to show the network.</noscript>\n"
            f"<script type=\"application/json\" id=\"netdef-data\">{embed_json(doc)}</script>\n"
            f"<script>\n{asset('view.js')}\n</script>\n</body>\n</html>\n")


# --- nets ------------------------------------------------------------------------------------

def _rules(msg):
    return [r for lp in msg.layer for r in list(lp.include) + list(lp.exclude)]


def states_of(msg, phase: str, stages: tuple, level: int) -> list[tuple[str, tuple]]:
    """The NetStates worth showing: the one asked for first, the other phase, and each stage a
    rule names (with both phases). A file without include/exclude rules has one."""
    rules = _rules(msg)
    if not rules:
        return [(phase, tuple(stages))]
    other = "TRAIN" if phase == "TEST" else "TEST"
    out = [(phase, tuple(stages)), (other, tuple(stages))]
    named = []
    for r in rules:
        for s in list(r.stage) + list(r.not_stage):
            if s not in named and s not in stages:
                named.append(s)
    for s in named:
        for ph in (phase, other):
            if len(out) < MAX_STATES:
                out.append((ph, tuple(stages) + (s,)))
    return out


def _state_label(phase, stages, level) -> str:
    return phase + "".join(f" +{s}" for s in stages) + (f" level {level}" if level else "")


def _compile(parsed, phase, stages, level, inputs, max_errors):
    from ..pipeline import compile as compile_net

    if parsed.syntax_ok:
        return compile_net(parsed, phase, stages, level, inputs, max_errors)
    # Cut off by a syntax error: show the layers read before it. Their analysis runs with its
    # own collector (its complaints about what the cut removed would be noise); the page lists
    # the file's own diagnostics.
    from ..build import build
    from ..passes import run_all

    graph = build(parsed, phase, stages, level, inputs, diagnostics=Diagnostics(max_errors))
    try:
        run_all(graph)
    except Exception:  # noqa: BLE001 - a partial message may break a pass; the layers still show
        pass
    diags = Diagnostics(max_errors)
    diags.extend(parsed.diagnostics)
    diags.dropped += getattr(parsed.diagnostics, "dropped", 0)
    graph.diagnostics = diags
    return graph


def net_doc(parsed, phase="TEST", stages=(), level=0, inputs=None, max_errors=100) -> tuple[dict, list]:
    """The page's data for a parsed net, and the graphs it was made from (the first is the
    state asked for)."""
    from ..draw import clusters, fold
    from .data import family_fills, net_state
    from .layout import acyclic_blocks, layout

    wanted = states_of(parsed.message, phase, tuple(stages), level)
    graphs, keys, labels = [], [], []
    for ph, st in wanted:
        g = _compile(parsed, ph, st, level, inputs, max_errors)
        key = tuple(n.index for n in g.nodes)
        if key in keys and st == tuple(stages):
            labels[keys.index(key)] += " = " + _state_label(ph, st, level)
            continue
        if key in keys:
            continue  # a stage that changes nothing
        graphs.append(g)
        keys.append(key)
        labels.append(_state_label(ph, st, level))
    present = [set(k) for k in keys]
    states = []
    for g, label in zip(graphs, labels):
        boxes, box_of = fold(g)
        blocks = []
        for stage, bl in clusters(boxes, ["auto"]):
            for name, bs in bl:
                blocks.append((f"b{len(blocks)}", name, stage, bs))
        blocks = acyclic_blocks(g, box_of, blocks)
        block_of = {b.id: bid for bid, _, _, bs in blocks for b in bs}
        vids: dict = {}
        doc = net_state(g, boxes, box_of, block_of, label, vids)
        index = {id(n): i for i, n in enumerate(g.nodes)}
        doc["layout"] = layout(g, boxes, box_of, blocks, vids, index)
        for layer, node in zip(doc["layers"], g.nodes):
            layer["states"] = [k for k, p in enumerate(present) if node.index in p]
        states.append(doc)
    source = parsed.source
    return {"kind": "net", "file": source.path, "name": parsed.message.name, "source": source.text,
            "fills": family_fills(), "states": states}, graphs


# --- solvers ---------------------------------------------------------------------------------

def solver_doc(parsed, inputs=None) -> dict:
    import numpy as np

    from ..solver import Schedule, json_float as _json_float, check_fields, compile_nets, plan_nets, render_summary, summarize

    diags = parsed.diagnostics
    check_fields(parsed.message, parsed.loc, diags)
    if diags.has_errors:
        raise DiagnosticError(diags)
    uses = plan_nets(parsed, diags)
    compile_nets(uses, diags, inputs=inputs)
    doc = summarize(parsed, uses)
    msg = parsed.message
    schedule = Schedule(msg)
    last = max(0, msg.max_iter - 1)
    changes = schedule.change_points(msg.max_iter, limit=2000)
    iters = set(np.unique(np.round(np.linspace(0, last, min(last + 1, 1200))).astype(np.int64)).tolist())
    for t, _ in changes:
        iters.update((t - 1, t))
    xs = sorted(i for i in iters if 0 <= i <= last)
    rates = schedule.rates(xs).tolist() if xs else []
    points = [[i, _json_float(r)] for i, r in zip(xs, rates)]
    finite = [r for _, r in points if r is not None]
    pol = schedule.policy
    log = (pol.name in ("step", "multistep", "exp") and bool(finite) and min(finite) > 0
           and max(finite) / min(finite) > 100)
    return {"kind": "solver", "file": parsed.source.path, "name": os.path.basename(parsed.source.path),
            "source": parsed.source.text, "summary": doc, "text": render_summary(doc),
            "schedule": {"points": points, "stepped": pol.stepped, "log": log, "policy": pol.name,
                         "formula": pol.formula, "max_iter": msg.max_iter,
                         "changes": [[t, _json_float(r)] for t, r in changes]},
            "diagnostics": [_diag_json(d) for d in diags]}


def _diag_json(d) -> dict:
    return {"code": d.code, "severity": d.severity, "message": d.message, "notes": list(d.notes),
            "file": d.span.path if d.span is not None else None,
            "line": d.span.line if d.span is not None else None,
            "col": d.span.col if d.span is not None else None, "layer": None}


# --- the page of a file -----------------------------------------------------------------------------

def build(path: str, phase: str = "TEST", stages=(), level: int = 0, inputs=None, max_errors: int = 100):
    """(html text, diagnostics, has errors, kind: parse.NET or parse.SOLVER) for a net or solver
    file or bundled name (the net's diagnostics are those of its first state's graph).
    Raises DiagnosticError when there is nothing to show (unreadable file, a syntax error before
    the first layer, a solver whose fields are wrong)."""
    from ..pipeline import load
    from ..parse import NET
    from ..source import SourceError

    try:
        parsed = load(path, max_errors=max_errors)
    except SourceError as e:
        raise DiagnosticError([e.diagnostic()]) from None
    if parsed.kind != NET:
        if not parsed.syntax_ok:
            raise DiagnosticError(parsed.diagnostics)
        doc = solver_doc(parsed, inputs)
        diags = parsed.diagnostics
        return page(doc, doc["name"]), list(diags), diags.has_errors, parsed.kind
    if not parsed.syntax_ok and not any(lp.type for lp in parsed.message.layer) and not len(parsed.message.input):
        raise DiagnosticError(parsed.diagnostics)
    doc, graphs = net_doc(parsed, phase, stages, level, inputs, max_errors)
    first = graphs[0]
    title = parsed.message.name or os.path.basename(parsed.source.path)
    errors = first.diagnostics.has_errors or parsed.diagnostics.has_errors
    return page(doc, title), list(first.diagnostics), errors, parsed.kind
