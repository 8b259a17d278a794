"""Caffe's solver types (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam): the hyper-parameters
each update reads, its update rule, and the checks Caffe's constructor_sanity_check makes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import codes
from .policies import fmt_value

HYPER_FIELDS = ("momentum", "momentum2", "delta", "rms_decay")


@dataclass(frozen=True)
class SolverKind:
    name: str
    uses: tuple[str, ...]       # the hyper-parameters its update reads
    update: str                 # the update rule, for the summary
    check: Callable             # (msg, loc, diags) -> None


SOLVERS: dict[str, SolverKind] = {}


def solver_kind(name: str, uses: tuple[str, ...], update: str):
    def register(fn):
        if name in SOLVERS:
            raise ValueError(f"solver type '{name}' registered twice")
        SOLVERS[name] = SolverKind(name, uses, update, fn)
        return fn
    return register


def _in_unit(msg, loc, diags, fname, type_name, why, error=False):
    """`fname` must lie in [0, 1); an error where Caffe or the arithmetic breaks, else a warning."""
    v = getattr(msg, fname)
    if 0 <= v < 1:
        return
    span = loc.field_or_self(fname)
    if error:
        diags.add(codes.SOLVER_CONSTRAINT.at(span, notes=[why], field=fname, rule="at least 0 and below 1",
                                             type=type_name, value=fmt_value(v)))
    else:
        diags.add(codes.SOLVER_SUSPICIOUS.at(span, field=fname, value=fmt_value(v), type=type_name, why=why))


def _positive_delta(msg, loc, diags, type_name):
    if msg.delta <= 0:
        diags.add(codes.SOLVER_SUSPICIOUS.at(loc.field_or_self("delta"), field="delta", value=fmt_value(msg.delta),
                                             type=type_name, why="it guards a division; with delta <= 0 a zero "
                                             "gradient history divides by zero"))


def _no_momentum(msg, loc, diags, type_name):
    # AdaGradSolver/RMSPropSolver::constructor_sanity_check: CHECK_EQ(0, momentum).
    if msg.momentum != 0:
        diags.add(codes.SOLVER_CONSTRAINT.at(loc.field_or_self("momentum"), field="momentum", rule="0",
                                             type=type_name, value=fmt_value(msg.momentum),
                                             notes=[f"Caffe refuses momentum with {type_name} "
                                                    f"(\"Momentum cannot be used with {type_name}.\")"]))


_MOMENTUM_WHY = "momentum must lie in [0, 1) for the velocity to decay; at 1 or more updates grow without bound"


@solver_kind("SGD", ("momentum",), "v ← momentum·v + rate·g;  w ← w − v")
def _sgd(msg, loc, diags):
    _in_unit(msg, loc, diags, "momentum", "SGD", _MOMENTUM_WHY)


@solver_kind("Nesterov", ("momentum",), "v′ ← momentum·v + rate·g;  w ← w − ((1 + momentum)·v′ − momentum·v)")
def _nesterov(msg, loc, diags):
    _in_unit(msg, loc, diags, "momentum", "Nesterov", _MOMENTUM_WHY)


@solver_kind("AdaGrad", ("delta",), "h ← h + g²;  w ← w − rate·g / (√h + delta)")
def _adagrad(msg, loc, diags):
    _no_momentum(msg, loc, diags, "AdaGrad")
    _positive_delta(msg, loc, diags, "AdaGrad")


@solver_kind("RMSProp", ("rms_decay", "delta"), "h ← rms_decay·h + (1 − rms_decay)·g²;  w ← w − rate·g / (√h + delta)")
def _rmsprop(msg, loc, diags):
    _no_momentum(msg, loc, diags, "RMSProp")
    # RMSPropSolver::constructor_sanity_check: CHECK_GE(rms_decay, 0), CHECK_LT(rms_decay, 1).
    _in_unit(msg, loc, diags, "rms_decay", "RMSProp", "Caffe refuses it (\"rms_decay should lie between 0 and 1.\")",
             error=True)
    _positive_delta(msg, loc, diags, "RMSProp")


@solver_kind("AdaDelta", ("momentum", "delta"),
             "h ← m·h + (1 − m)·g²;  u ← g·√((s + delta) / (h + delta));  s ← m·s + (1 − m)·u²;  w ← w − rate·u   (m = momentum)")
def _adadelta(msg, loc, diags):
    # Caffe checks nothing here; momentum is AdaDelta's decay rate (rho; Zeiler uses 0.95).
    if msg.momentum == 0:
        diags.add(codes.SOLVER_SUSPICIOUS.at(loc.field_or_self("momentum"), field="momentum", value="0",
                                             type="AdaDelta", why="AdaDelta uses momentum as the decay of its running "
                                             "averages (rho, 0.95 in Zeiler's paper and Caffe's example); at 0 they "
                                             "hold only the last gradient"))
    else:
        _in_unit(msg, loc, diags, "momentum", "AdaDelta", "momentum is AdaDelta's decay rate and must lie in [0, 1)")
    _positive_delta(msg, loc, diags, "AdaDelta")


@solver_kind("Adam", ("momentum", "momentum2", "delta"),
             "m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;  w ← w − rate·√(1 − β2^t)/(1 − β1^t)·m / (√v + delta)"
             "   (β1 = momentum, β2 = momentum2)")
def _adam(msg, loc, diags):
    why = "Caffe does not check it, but Adam's bias correction √(1 − β2^t) / (1 − β1^t) is 0, infinite or NaN " \
          "unless both betas lie in [0, 1)"


    _in_unit(msg, loc, diags, "momentum", "Adam", why, error=True)
    _in_unit(msg, loc, diags, "momentum2", "Adam", why, error=True)
    _positive_delta(msg, loc, diags, "Adam")


def type_name(msg) -> str:
    """The registered solver type (netdef.load has already turned a deprecated `solver_type`
    enum into `type`, as Caffe's UpgradeSolverType does)."""
    return msg.type
