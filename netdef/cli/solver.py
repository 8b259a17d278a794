"""`netdef solver` (check and summarise a solver) and `netdef lr` (the learning rate at each
iteration, as a table, JSON or a plot)."""
from __future__ import annotations

import json
import sys

import numpy as np

from .. import progress
from ..diagnostics import DiagnosticError, UsageError
from ..solver import (F32, Schedule, check_fields, compile_nets, fmt_rate, json_float, load_solver,
                      plan_nets, plot_schedule, render_summary, summarize, type_name)
from . import output
from .output import emit_json, print_diagnostics


def parse_iters(text: str | None, max_iter: int) -> tuple[int, int, int]:
    if text is None:
        return 0, max(0, max_iter), 1
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(f"netdef lr: --iters expects START:STOP or START:STOP:STEP, got '{text}'")
    try:
        start = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else max(0, max_iter)
        step = int(parts[2]) if len(parts) == 3 and parts[2].strip() else 1
    except ValueError:
        raise UsageError(f"netdef lr: --iters expects whole numbers START:STOP[:STEP], got '{text}'") from None
    if start < 0 or step < 1 or stop < start:
        raise UsageError(f"netdef lr: --iters needs 0 <= START <= STOP and STEP >= 1, got '{text}'")
    if stop > 2**31:
        raise UsageError(f"netdef lr: --iters STOP {stop} is beyond Caffe's iteration counter (a 32-bit int)")
    return start, stop, step


def _checked(args):
    """Load and check a solver's own fields; warnings printed, errors raised."""
    parsed = load_solver(args.file, getattr(args, "max_errors", 100))
    check_fields(parsed.message, parsed.loc, parsed.diagnostics)
    if parsed.diagnostics.has_errors:
        raise DiagnosticError(list(parsed.diagnostics))
    print_diagnostics(parsed.diagnostics)
    return parsed


SAMPLES = 11          # the default view: this many evenly spaced iterations ...
CHANGE_POINTS = 20    # ... and up to this many change points


def short_schedule(schedule: Schedule, stop: int) -> tuple[np.ndarray, int]:
    """The default view of 0:stop: iteration 0, the first CHANGE_POINTS change points, evenly
    spaced samples and the last iteration, in order; with the number of change points."""
    if stop <= 0:
        return np.zeros(0, np.int64), 0
    changes = schedule.change_points(stop)
    its = {0, stop - 1}
    its.update(int(round(x)) for x in np.linspace(0, stop, SAMPLES) if round(x) < stop)
    its.update(t for t, _ in changes[:CHANGE_POINTS])
    return np.array(sorted(its), dtype=np.int64), len(changes)


def cmd_lr(args) -> int:
    if args.all and args.iters is not None:
        raise UsageError("netdef lr: give --iters or --all, not both")
    parsed = _checked(args)
    msg = parsed.message
    start, stop, step = parse_iters(args.iters, msg.max_iter)
    schedule = Schedule(msg)
    if args.plot:
        plot_schedule(args.plot, parsed, schedule, start, stop, log=args.log)
    elif args.log:
        raise UsageError("netdef lr: --log applies to --plot")
    short = args.iters is None and not args.all
    if short:
        sample, n_changes = short_schedule(schedule, stop)
        blocks = [(sample, schedule.rates(sample))]
        if not progress.quiet:
            what = (f"the first {CHANGE_POINTS} of its {n_changes:,} change points and an even sample"
                    if n_changes > CHANGE_POINTS else
                    f"its {n_changes} change point{'s' if n_changes > 1 else ''} and an even sample" if n_changes
                    else "an even sample")
            sys.stderr.write(f"netdef lr: {len(sample)} of {stop:,} iterations ({what}); "
                             "--iters START:STOP[:STEP] for a range, --all for every iteration\n")
    else:
        blocks = schedule.chunks(start, stop, step)
    out = sys.stdout
    if args.format == "json":
        head = json.dumps({"schema_version": output.SCHEMA_VERSION, "command": "lr",
                           "file": parsed.source.path, "lr_policy": msg.lr_policy, "type": type_name(msg),
                           "base_lr": json_float(F32(msg.base_lr)), "max_iter": msg.max_iter,
                           "change_points": [{"iter": t, "lr": json_float(v)}
                                             for t, v in schedule.change_points(stop)],
                           "sampled": short}, indent=1)
        # The points are streamed a chunk at a time, as the TSV is: max_iter can be 2^31.
        out.write(head[:-2] + ',\n "points": [')
        first = True
        for it, r in blocks:
            items = [f'{{"iter": {i}, "lr": {json.dumps(json_float(v))}}}' for i, v in zip(it.tolist(), r.tolist())]
            if items:
                out.write(("\n  " if first else ",\n  ") + ",\n  ".join(items))
                first = False
        out.write("\n ],\n \"diagnostics\": " + json.dumps([d.to_json() for d in output.collected]) + "\n}\n")
        return 0
    for it, r in blocks:
        out.write("".join(f"{i}\t{fmt_rate(v)}\n" for i, v in zip(it.tolist(), r.tolist())))
    return 0


def cmd_solver(args) -> int:
    if args.dataset_size is not None and args.dataset_size < 1:
        raise UsageError(f"netdef solver: --dataset-size must be at least 1, got {args.dataset_size}")

    parsed = load_solver(args.file, getattr(args, "max_errors", 100))
    diags = parsed.diagnostics
    check_fields(parsed.message, parsed.loc, diags)
    fields_ok = not diags.has_errors
    uses = plan_nets(parsed, diags)
    compile_nets(uses, diags, inputs=args.inputs or None)
    print_diagnostics(diags)
    if fields_ok:
        doc = summarize(parsed, uses, args.dataset_size)
        if args.format == "json":
            emit_json(args, dict(doc, ok=not diags.has_errors))
        else:
            sys.stdout.write(render_summary(doc))
    elif args.format == "json":
        emit_json(args, {"ok": False})
    return 1 if diags.has_errors else 0
