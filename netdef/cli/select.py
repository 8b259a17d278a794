"""Which diagnostics each command shows: one table, keyed by the code constants of codes.py.

`netdef check` lists everything. A command that reports on a net (summary, rf, sizes, draw,
view, solver) shows errors and the warnings that explain a gap in its result (a layer netdef
cannot analyse, an input whose shape must be given). A command that makes or runs a model
(export, init, run, bench, verify) shows, besides those:

- its own warnings (W5xx): training-only layers left out, weights missing or unused, NaN outputs;
- fork fields netdef ignores or reads (W202, W216): the model computes without them or with them;
- which fork's meaning netdef chose for a definition that forks read differently (W218);
- a layer name used twice (W310): weights are matched to layers by name.

The rest (pooling overhangs Caffe clips, deprecated formats upgraded, receptive fields that
disagree, ...) describe the definition, not the result; one closing line counts them and names
the `netdef check` command that lists them. `upgrade` shows everything; `fmt` everything but
the notes on fork fields (W202, W216), which it sums up in one line.
"""
from __future__ import annotations

import functools
import shlex

from .. import codes
from ..diagnostics import DiagnosticError
from .output import note, print_diagnostics

_MODEL = codes.EXPLAINS_A_GAP | {codes.FORK_FIELD.id, codes.FORK_FIELD_READ.id, codes.DUPLICATE_LAYER_NAME.id,
                                  codes.FORK_SEMANTICS.id}


def _everything(diag) -> bool:
    return True


def _model(diag) -> bool:
    return diag.is_error or diag.code.startswith("W5") or diag.code in _MODEL


def _text(diag) -> bool:
    return diag.code not in (codes.FORK_FIELD.id, codes.FORK_FIELD_READ.id)


# command -> which of its diagnostics it shows
SHOWN = {
    "check": _everything,
    "summary": codes.explains_a_gap, "rf": codes.explains_a_gap, "sizes": codes.explains_a_gap,
    "draw": codes.explains_a_gap, "view": codes.explains_a_gap, "solver": codes.explains_a_gap,
    "export": _model, "init": _model, "run": _model, "bench": _model, "verify": _model,
    "fmt": _text, "upgrade": _everything,
}


def shown(command: str, diags) -> list:
    """The diagnostics `command` shows, in order."""
    keep = SHOWN[command]
    return [d for d in diags if keep(d)]


def check_command(args) -> str:
    """The `netdef check` command line that analyses the same net as `args` do."""
    argv = ["netdef", "check", args.file]
    if getattr(args, "phase", "TEST") != "TEST":
        argv += ["--phase", args.phase]
    for stage in getattr(args, "stage", None) or []:
        argv += ["--stage", stage]
    if getattr(args, "level", 0):
        argv += ["--level", str(args.level)]
    for name, shape in (getattr(args, "inputs", None) or {}).items():
        argv += ["--input", f"{name}={','.join(map(str, shape))}"]
    return " ".join(shlex.quote(a) for a in argv)


def print_report(diags, args, dropped: int | None = None) -> None:
    """Print the diagnostics worth showing to stderr, then what was left out."""
    diags_list = list(diags)
    kept = shown(args.command, diags_list)
    print_diagnostics(kept)
    dropped = getattr(diags, "dropped", 0) if dropped is None else dropped
    if dropped:
        note(f"note: {dropped} more diagnostics not shown (--max-errors)")
    hidden = len(diags_list) - len(kept)
    if hidden:
        what = "analysis warning" if hidden == 1 else "analysis warnings"
        note(f"note: {hidden} {what} not shown; '{check_command(args)}' lists them")


def reporting(handler):
    """A command handler whose failures are reported as print_report does (exit code 1)."""
    @functools.wraps(handler)
    def run(args) -> int:
        try:
            return handler(args)
        except DiagnosticError as e:
            print_report(e.diagnostics, args, dropped=e.dropped)
            return 1
    return run
