"""What `export`, `init`, `run`, `bench` and `verify` print of the analysis's diagnostics.

`netdef check` lists every warning; a command that makes or runs a model shows errors and only
the warnings that bear on the model it makes:

- its own (W5xx): training-only layers left out, weights missing or unused, NaN outputs, ...;
- the analysis warnings that explain a gap (a layer netdef cannot analyse, an input whose shape
  must be given), as `draw` and `solver` show them;
- fork fields netdef ignores (W202): the model computes without them;
- a layer name used twice (W310): weights are matched to layers by name.

The rest (pooling overhangs Caffe clips, deprecated formats upgraded, receptive fields that
disagree, ...) describe the definition, not the model; one closing line counts them and names
the command that lists them.
"""
from __future__ import annotations

import functools
import shlex
import sys

from ..diagnostics import DiagnosticError

_ALSO_SHOWN = {"W202", "W216", "W310"}


def worth_showing(diag) -> bool:
    from ..draw import worth_showing as explains_a_gap
    return diag.is_error or diag.code.startswith("W5") or diag.code in _ALSO_SHOWN or explains_a_gap(diag)


def check_command(args) -> str:
    """The `netdef check` command line that analyses the same net as `args` do."""
    argv = ["netdef", "check", args.file]
    if getattr(args, "phase", "TEST") != "TEST":
        argv += ["--phase", args.phase]
    for stage in getattr(args, "stage", None) or []:
        argv += ["--stage", stage]
    if getattr(args, "level", 0):
        argv += ["--level", str(args.level)]
    for spec in getattr(args, "inputs", None) or []:
        argv += ["--input", spec]
    return " ".join(shlex.quote(a) for a in argv)


def print_report(diags, args, dropped: int | None = None) -> None:
    """Print the diagnostics worth showing to stderr, then what was left out."""
    from ..cli.output import print_diagnostics
    diags_list = list(diags)
    shown = [d for d in diags_list if worth_showing(d)]
    print_diagnostics(shown)
    from ..cli.output import note
    dropped = getattr(diags, "dropped", 0) if dropped is None else dropped
    if dropped:
        note(f"note: {dropped} more diagnostics not shown (--max-errors)")
    hidden = len(diags_list) - len(shown)
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
