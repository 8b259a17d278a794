"""Solver definitions: field checks with source spans, Caffe's learning-rate schedules, the nets
a solver trains and tests, the `netdef solver` summary and the schedule plot of `netdef lr`.

    parsed = load_solver("lenet_solver")           # parse and upgrade; DiagnosticError if unreadable
    check_fields(parsed.message, parsed.loc, parsed.diagnostics)
    Schedule(parsed.message).rate(5000)            # the rate Caffe uses at iteration 5000

One module per job: policies (learning-rate policies, Schedule, number formats), kinds (solver
types), checks (the solver's own fields), nets (reading a solver, planning and compiling its
nets), summary (`netdef solver`'s document and text), chart (the matplotlib plot). The commands
themselves are in netdef/cli/solver.py.
"""
from __future__ import annotations

from .chart import plot_schedule, schedule_figure
from .checks import check_fields
from .kinds import HYPER_FIELDS, SOLVERS, SolverKind, type_name
from .nets import NetUse, batch_size, compile_nets, load_solver, plan_nets, resolve_net_path
from .policies import F32, POLICIES, SCHEDULE_FIELDS, Policy, Schedule, fmt_rate, fmt_value, json_float, \
    multistep_iterations
from .summary import ParamRow, param_rows, render_summary, summarize

__all__ = ["Schedule", "Policy", "POLICIES", "SCHEDULE_FIELDS", "multistep_iterations", "fmt_rate", "fmt_value",
           "json_float", "F32", "SolverKind", "SOLVERS", "HYPER_FIELDS", "type_name", "check_fields", "NetUse",
           "load_solver", "plan_nets", "compile_nets", "resolve_net_path", "batch_size", "ParamRow", "param_rows",
           "summarize", "render_summary", "schedule_figure", "plot_schedule"]
