"""Solver definitions: field checks with source spans, Caffe's learning-rate schedules, the
`netdef solver` summary, and `netdef lr`'s table and plot.

Caffe trains with Dtype = float, and SGDSolver::GetLearningRate mixes precisions in a way that
shows in the sixth digit Caffe prints:
  * step, exp, multistep compute `base_lr * pow(gamma, n)` with an integer n. Since C++11,
    std::pow(float, int) promotes to double, so the power and the product are double, rounded
    to float once when assigned to the rate.
  * inv, poly, sigmoid have float operands only: std::pow(float, float) and std::exp(float) are
    the float overloads (powf, expf), and every + - * / is rounded to float.
netdef does the float arithmetic in numpy float32 and evaluates powf/expf as the double result
rounded to float (what glibc's powf/expf return in all but a vanishing fraction of cases;
numpy's own float32 power is less accurate and misses Caffe's sixth digit).
"""
from __future__ import annotations

import difflib
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import codes
from .diagnostics import CliError, DiagnosticError, Diagnostics, Span, UsageError
from .ir import fmt_shape
from .proto import pb

F32 = np.float32

# --- learning-rate policies ------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    name: str
    needs: tuple[str, ...]      # fields the schedule reads, which the file must set
    formula: str
    rates: Callable             # (params: _Params, iters: int64 array) -> float32 array
    stepped: bool               # piecewise constant: changes only at change points


POLICIES: dict[str, Policy] = {}
# The fields some policy reads; a policy that does not read one of these ignores it.
SCHEDULE_FIELDS = ("gamma", "power", "stepsize", "stepvalue")


def policy(name: str, needs: tuple[str, ...], formula: str, stepped: bool = False):
    def register(fn):
        if name in POLICIES:
            raise ValueError(f"lr_policy '{name}' registered twice")
        POLICIES[name] = Policy(name, needs, formula, fn, stepped)
        return fn
    return register


@dataclass(frozen=True)
class _Params:
    """The schedule's fields as Caffe holds them (float fields are float32)."""
    base_lr: np.float32
    gamma: np.float32
    power: np.float32
    stepsize: int
    max_iter: int
    steps_at: np.ndarray  # multistep: the iteration at which each step is taken

    @classmethod
    def of(cls, msg) -> "_Params":
        return cls(F32(msg.base_lr), F32(msg.gamma), F32(msg.power), int(msg.stepsize),
                   int(msg.max_iter), np.array(multistep_iterations(msg.stepvalue), dtype=np.int64))


def multistep_iterations(stepvalues) -> list[int]:
    """The iteration at which each multistep step is taken.

    Caffe checks once per iteration `iter >= stepvalue[current_step]` and then advances
    current_step by one, so a stepvalue that is not greater than the previous one does not
    take effect together with it but one iteration later (and one more per repeat)."""
    out, t = [], -1
    for v in stepvalues:
        t = max(t + 1, int(v))
        out.append(t)
    return out


def _libm(fn, npfn, xs: np.ndarray, y: float) -> np.ndarray:
    """fn(x, y) per element in double (math.* is the C library's), with C's results where
    Python raises (a pole gives inf, a domain error NaN: numpy's float64 ufunc gives those)."""
    out = np.empty(len(xs), dtype=np.float64)
    with np.errstate(all="ignore"):
        for i, x in enumerate(xs.tolist()):
            try:
                out[i] = fn(x, y)
            except (ValueError, OverflowError):
                out[i] = npfn(np.float64(x), np.float64(y))
    return out


def _to_f32(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return a.astype(np.float32)


def _base_times_pow(p: _Params, n: np.ndarray) -> np.ndarray:
    """float(double(base_lr) * pow(double(gamma), n)): the integer-exponent policies."""
    uniq, where = np.unique(n, return_inverse=True)
    powers = _libm(lambda k, g: math.pow(g, k), lambda k, g: np.power(g, k), uniq.astype(np.float64), float(p.gamma))
    with np.errstate(all="ignore"):
        return _to_f32(float(p.base_lr) * powers)[where]


def _powf(x: np.ndarray, y) -> np.ndarray:
    return _to_f32(_libm(math.pow, np.power, x, float(y)))


def _expf(x: np.ndarray) -> np.ndarray:
    return _to_f32(_libm(lambda v, _: math.exp(v), lambda v, _: np.exp(v), x, 0.0))


@policy("fixed", (), "base_lr", stepped=True)
def _fixed(p: _Params, it: np.ndarray) -> np.ndarray:
    return np.full(len(it), p.base_lr, dtype=np.float32)


@policy("step", ("gamma", "stepsize"), "base_lr × gamma ^ floor(iter / stepsize)", stepped=True)
def _step(p: _Params, it: np.ndarray) -> np.ndarray:
    return _base_times_pow(p, it // p.stepsize)


@policy("exp", ("gamma",), "base_lr × gamma ^ iter")
def _exp(p: _Params, it: np.ndarray) -> np.ndarray:
    return _base_times_pow(p, it)


@policy("inv", ("gamma", "power"), "base_lr × (1 + gamma × iter) ^ (−power)")
def _inv(p: _Params, it: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return p.base_lr * _powf(F32(1) + p.gamma * it.astype(np.float32), -p.power)


@policy("multistep", ("gamma", "stepvalue"), "base_lr × gamma ^ (steps taken; one per stepvalue reached)",
        stepped=True)
def _multistep(p: _Params, it: np.ndarray) -> np.ndarray:
    return _base_times_pow(p, np.searchsorted(p.steps_at, it, side="right"))


@policy("poly", ("power", "max_iter"), "base_lr × (1 − iter / max_iter) ^ power")
def _poly(p: _Params, it: np.ndarray) -> np.ndarray:
    # Caffe does not clamp: past max_iter the base is negative (NaN for a fractional power).
    with np.errstate(all="ignore"):
        return p.base_lr * _powf(F32(1) - it.astype(np.float32) / F32(p.max_iter), p.power)


@policy("sigmoid", ("gamma", "stepsize"), "base_lr / (1 + exp(−gamma × (iter − stepsize)))")
def _sigmoid(p: _Params, it: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = _expf(-p.gamma * (it.astype(np.float32) - F32(p.stepsize)))
        return p.base_lr * (F32(1) / (F32(1) + e))


class Schedule:
    """The learning rate of a checked solver at any iteration."""

    CHUNK = 1 << 16

    def __init__(self, msg):
        self.policy = POLICIES[msg.lr_policy]
        self.params = _Params.of(msg)

    def rates(self, iters) -> np.ndarray:
        it = np.asarray(iters, dtype=np.int64)
        return self.policy.rates(self.params, it) if len(it) else np.zeros(0, np.float32)

    def rate(self, it: int) -> float:
        return float(self.rates([it])[0])

    def chunks(self, start: int, stop: int, step: int = 1):
        """(iterations, rates) for range(start, stop, step), a bounded block at a time."""
        span = self.CHUNK * step
        for lo in range(start, stop, span):
            it = np.arange(lo, min(stop, lo + span), step, dtype=np.int64)
            yield it, self.rates(it)

    def change_points(self, stop: int, limit: int = 10000) -> list[tuple[int, float]]:
        """Iterations in (0, stop) where a stepped schedule's rate changes, with the new rate."""
        p = self.params
        if self.policy.name == "step":
            # Bounded before it is made: stepsize 1 and max_iter 2^31 would be a 16 GiB arange.
            cands = np.arange(p.stepsize, min(stop, p.stepsize * (limit + 1)), p.stepsize, dtype=np.int64) \
                if p.stepsize > 0 else []
        elif self.policy.name == "multistep":
            cands = np.array([t for t in p.steps_at if 0 < t < stop][:limit], dtype=np.int64)
        else:
            return []
        if not len(cands):
            return []
        before, after = self.rates(cands - 1), self.rates(cands)
        keep = ~((before == after) | (np.isnan(before) & np.isnan(after)))
        return [(int(t), float(r)) for t, r in zip(cands[keep], after[keep])]


def fmt_rate(x: float) -> str:
    """As Caffe's LOG prints a float: ostream's default, six significant digits."""
    if math.isnan(x):
        return "nan"
    return "%.6g" % x


def _num(x: float) -> str:
    """A float32 field value in its shortest form (0.1, not 0.10000000149)."""
    if x is None:  # the JSON summary's null: an infinite or NaN value (momentum: -inf)
        return "non-finite"
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return np.format_float_positional(F32(x), unique=True, trim="-") if 1e-4 <= abs(x) < 1e7 \
        else np.format_float_scientific(F32(x), unique=True, trim="-").replace("e-0", "e-").replace("e+0", "e+")


# --- solver types --------------------------------------------------------------------------

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
                                             type=type_name, value=_num(v)))
    else:
        diags.add(codes.SOLVER_SUSPICIOUS.at(span, field=fname, value=_num(v), type=type_name, why=why))


def _positive_delta(msg, loc, diags, type_name):
    if msg.delta <= 0:
        diags.add(codes.SOLVER_SUSPICIOUS.at(loc.field_or_self("delta"), field="delta", value=_num(msg.delta),
                                             type=type_name, why="it guards a division; with delta <= 0 a zero "
                                             "gradient history divides by zero"))


def _no_momentum(msg, loc, diags, type_name):
    # AdaGradSolver/RMSPropSolver::constructor_sanity_check: CHECK_EQ(0, momentum).
    if msg.momentum != 0:
        diags.add(codes.SOLVER_CONSTRAINT.at(loc.field_or_self("momentum"), field="momentum", rule="0",
                                             type=type_name, value=_num(msg.momentum),
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


# --- checking the solver's own fields ----------------------------------------------------------


def _did_you_mean(value: str, names) -> list[str]:
    close = [n for n in names if n.lower() == value.lower()] or difflib.get_close_matches(value, names, n=2, cutoff=0.6)
    return ["did you mean " + " or ".join(f"'{c}'" for c in close) + "?"] if close else []


def _has(msg, name: str) -> bool:
    fd = msg.DESCRIPTOR.fields_by_name[name]
    return len(getattr(msg, name)) > 0 if fd.is_repeated else msg.HasField(name)


def check_fields(msg, loc, diags: Diagnostics) -> None:
    """Every check on the SolverParameter's own fields (the nets are checked by check_nets)."""
    _check_type(msg, loc, diags)
    _check_policy(msg, loc, diags)
    _check_values(msg, loc, diags)


def _check_type(msg, loc, diags):
    if msg.HasField("solver_type"):
        return  # both solver_type and type: the upgrade has reported it (E212), as Caffe refuses it
    name = type_name(msg)
    kind = SOLVERS.get(name)
    if kind is None:
        diags.add(codes.UNKNOWN_SOLVER_TYPE.at(loc.field_or_self("type"), value=name,
                                               notes=_did_you_mean(name, list(SOLVERS)) +
                                               ["Caffe's solver types: " + ", ".join(SOLVERS)]))
        return
    kind.check(msg, loc, diags)
    for f in HYPER_FIELDS:
        if f in kind.uses or not msg.HasField(f):
            continue
        if f == "momentum" and name in ("AdaGrad", "RMSProp"):
            continue  # checked above: must be 0
        users = [k.name for k in SOLVERS.values() if f in k.uses]
        diags.add(codes.SOLVER_IGNORES.at(loc.field_or_self(f), field=f, type=name,
                                          notes=[f"'{f}' is read by: " + ", ".join(users)]))


def _check_policy(msg, loc, diags):
    if not msg.HasField("lr_policy"):
        diags.add(codes.NO_LR_POLICY.at(loc.span, notes=["Caffe stops at the first iteration (\"Unknown learning "
                                                         "rate policy: \"); set lr_policy to one of: " + ", ".join(POLICIES)]))
        return
    name = msg.lr_policy
    pol = POLICIES.get(name)
    at = loc.field("lr_policy")
    if pol is None:
        diags.add(codes.UNKNOWN_LR_POLICY.at(at, value=name, notes=_did_you_mean(name, list(POLICIES)) +
                                             ["BVLC Caffe's policies: " + ", ".join(POLICIES)]))
        return
    missing = [f for f in pol.needs if not _has(msg, f)]
    for f in missing:
        diags.add(codes.POLICY_NEEDS.at(at, policy=name, field=f, notes=[f"'{name}': rate = {pol.formula}"]))
    for f in SCHEDULE_FIELDS:
        if f not in pol.needs and _has(msg, f):
            diags.add(codes.POLICY_IGNORES.at(loc.field(f), field=f, policy=name,
                                              notes=[f"'{name}': rate = {pol.formula}"]))

    def bad(fname, rule, note=None):
        diags.add(codes.POLICY_VALUE.at(loc.field_or_self(fname), field=fname, rule=rule, policy=name,
                                        value=_num(getattr(msg, fname)), notes=[note] if note else []))

    def degenerate(fname, message):
        diags.add(codes.POLICY_DEGENERATE.at(loc.field_or_self(fname), message=message))

    g, has_g = msg.gamma, msg.HasField("gamma")
    # GetLearningRate's CHECKs: gamma >= 0 for every policy that reads it; stepsize > 0.
    if "gamma" in pol.needs and has_g and g < 0:
        bad("gamma", "0 or more", "BVLC Caffe checks gamma >= 0 (for sigmoid too, so its schedule can only rise)"
            if name == "sigmoid" else "Caffe checks gamma >= 0")
    if "stepsize" in pol.needs and msg.HasField("stepsize") and msg.stepsize <= 0:
        bad("stepsize", "positive", "Caffe checks stepsize > 0")
    # poly divides by max_iter, but only in GetLearningRate, which Solver::Step calls once per
    # iteration: with max_iter 0 no iteration runs and Caffe only evaluates the net (BVLC
    # src/caffe/solvers/sgd_solver.cpp, solver.cpp: no CHECK on max_iter). An evaluation-only
    # solver is therefore not an error; the warning below says that nothing is trained.
    if name in ("step", "exp", "multistep") and has_g and g >= 0:
        if g == 1:
            degenerate("gamma", f"gamma is 1: the rate never changes under lr_policy '{name}' ('fixed' says so directly)")
        elif g > 1:
            degenerate("gamma", f"gamma is {_num(g)} (more than 1): the learning rate grows under lr_policy '{name}'")
        elif g == 0:
            degenerate("gamma", f"gamma is 0: the learning rate becomes 0 at the first step and stays there")
    if name == "step" and msg.stepsize > 0 and msg.HasField("max_iter") and msg.stepsize >= msg.max_iter > 0:
        degenerate("stepsize", f"stepsize {msg.stepsize} is not below max_iter ({msg.max_iter}): the rate never changes")
    if name == "multistep":
        at_iters = multistep_iterations(msg.stepvalue)
        for i in range(1, len(msg.stepvalue)):
            if msg.stepvalue[i] <= msg.stepvalue[i - 1]:
                diags.add(codes.STEPVALUE_ORDER.at(loc.field("stepvalue", i), value=msg.stepvalue[i],
                                                   prev=msg.stepvalue[i - 1], at=at_iters[i],
                                                   notes=["list stepvalue in increasing order"]))
        if msg.max_iter > 0:
            late = [i for i, t in enumerate(at_iters) if t >= msg.max_iter]
            if late:
                degenerate_at = loc.field("stepvalue", late[0]) or at
                diags.add(codes.POLICY_DEGENERATE.at(degenerate_at, message=f"stepvalue {msg.stepvalue[late[0]]} is "
                                                     f"not reached before max_iter ({msg.max_iter})"))
    if name == "inv" and has_g and msg.HasField("power"):
        if g == 0 or msg.power == 0:
            degenerate("gamma" if g == 0 else "power", f"{'gamma' if g == 0 else 'power'} is 0: the rate never changes")
        elif msg.power < 0:
            degenerate("power", "power is negative: the learning rate grows")
    if name == "poly" and msg.HasField("power"):
        if msg.power == 0:
            degenerate("power", "power is 0: the rate never changes before max_iter")
        elif msg.power < 0:
            degenerate("power", "power is negative: the learning rate grows without bound towards max_iter")
    if name == "sigmoid" and has_g and g == 0:
        degenerate("gamma", "gamma is 0: the rate is base_lr / 2 throughout")


def _check_values(msg, loc, diags):
    def err(fname, rule, note=None, value=None):
        diags.add(codes.SOLVER_VALUE.at(loc.field_or_self(fname), field=fname, rule=rule,
                                        value=getattr(msg, fname) if value is None else value,
                                        notes=[note] if note else []))

    def warn(fname, why):
        v = getattr(msg, fname)
        diags.add(codes.SOLVER_VALUE_WARN.at(loc.field_or_self(fname), field=fname,
                                             value=_num(v) if isinstance(v, float) else v, why=why))

    if msg.average_loss < 1:
        err("average_loss", "at least 1", "Caffe checks average_loss >= 1")
    if msg.iter_size < 1:
        err("iter_size", "at least 1", "Caffe runs iter_size forward/backward passes per iteration and divides "
            "the gradients by iter_size")
    if msg.snapshot != 0 and not msg.HasField("snapshot_prefix"):
        diags.add(codes.SNAPSHOT_NO_PREFIX.at(loc.field("snapshot"), value=msg.snapshot,
                                              notes=["Caffe refuses this (\"snapshot is specified but "
                                                     "snapshot_prefix is not\"); set snapshot_prefix: \"dir/name\""]))
    if msg.regularization_type not in ("L1", "L2"):
        if msg.weight_decay != 0:
            diags.add(codes.BAD_REGULARIZATION.at(loc.field("regularization_type"), value=msg.regularization_type))
        else:
            warn("regularization_type", "Caffe knows only 'L1' and 'L2'; it does not fail only because weight_decay is 0")
    if not msg.HasField("base_lr") or msg.base_lr == 0:
        diags.add(codes.SOLVER_VALUE_WARN.at(loc.field_or_self("base_lr"), field="base_lr", value=_num(msg.base_lr),
                                             why="every update is zero (base_lr is not set)" if not msg.HasField("base_lr")
                                             else "every update is zero"))
    elif msg.base_lr < 0:
        warn("base_lr", "a negative rate climbs the loss instead of descending it")
    if msg.max_iter <= 0:
        diags.add(codes.SOLVER_VALUE_WARN.at(loc.field_or_self("max_iter"), field="max_iter", value=msg.max_iter,
                                             why="Caffe runs no training iteration"))
    if msg.weight_decay < 0:
        warn("weight_decay", "a negative decay pushes the weights away from zero")
    if msg.clip_gradients == 0:
        warn("clip_gradients", "every non-zero gradient is scaled to zero; a negative value (the default, -1) "
             "turns clipping off")
    for i, n in enumerate(msg.test_iter):
        if n <= 0:
            diags.add(codes.SOLVER_VALUE_WARN.at(loc.field("test_iter", i), field="test_iter", value=n,
                                                 why="the test runs no forward pass and Caffe divides the scores by "
                                                 f"{n}"))


# --- which nets the solver trains and tests ----------------------------------------------------


@dataclass
class NetUse:
    """One net instance Caffe's Solver builds: the training net or one test net."""
    role: str                 # "train" or "test #i"
    phase: str                # "TRAIN" / "TEST"
    field: str                # the solver field it comes from
    span: Span
    path: str | None          # the file read (None for inline net_param/test_net_param)
    parsed: object | None     # parse.Parsed, None when unreadable
    state: object             # pb.NetState after Caffe's merge (solver default < net's own < solver's)
    test_iter: int | None = None
    graph: object | None = None


def resolve_net_path(name: str, solver_dir: str) -> tuple[str | None, str, str | None]:
    """(found path or None, the path tried first, why not found).

    Caffe opens these paths relative to the directory it runs in; netdef reads them relative to
    the solver file. Definitions copied out of a Caffe checkout name nets as seen from its root
    ("examples/mnist/lenet_train_test.prototxt" beside the solver), so when the full path is not
    there, the shorter tails of the same path are tried in the solver's directory."""
    first = name if os.path.isabs(name) else os.path.normpath(os.path.join(solver_dir, name))
    if os.path.isfile(first):
        return first, first, None
    if os.path.isdir(first):
        return None, first, "it is a directory"
    if not os.path.isabs(name):
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        for i in range(1, len(parts)):
            if ".." in parts[i:]:
                continue
            cand = os.path.join(solver_dir, *parts[i:])
            if os.path.isfile(cand):
                return cand, first, None
    return None, first, "no such file"


def _display(path: str) -> str:
    rel = os.path.relpath(path)
    return rel if not rel.startswith("../../") else path


def plan_nets(parsed, diags: Diagnostics) -> list[NetUse]:
    """The training net and the test nets, as Solver::InitTrainNet/InitTestNets choose them,
    with each file read (relative to the solver) and parsed; problems go to `diags`."""
    from .pipeline import load
    from .parse import NET, Parsed
    from .source import SourceError
    from .upgrade import upgrade_parsed

    msg, loc = parsed.message, parsed.loc
    solver_dir = os.path.dirname(os.path.abspath(parsed.source.path))
    cache: dict[str, object] = {}

    def read(fname: str, index: int, role: str):
        span = loc.field(fname, index)
        name = getattr(msg, fname)[index] if fname == "test_net" else getattr(msg, fname)
        found, tried, why = resolve_net_path(name, solver_dir)
        if found is None:
            diags.add(codes.NET_FILE_MISSING.at(span, role=role, path=name, why=f"{why} ({_display(tried)})",
                                                notes=["netdef reads net files relative to the solver file's directory"]))
            return None, None
        if os.path.abspath(found) != os.path.abspath(tried):
            diags.add(codes.NET_FILE_ELSEWHERE.at(span, role=role, path=name, found=os.path.relpath(found, solver_dir),
                                                  notes=["Caffe opens the path relative to the directory it runs in; "
                                                         "netdef reads it relative to the solver file and, failing "
                                                         "that, tries the path's shorter tails there"]))
        if found not in cache:
            try:
                cache[found] = load(found, kind=NET, max_errors=diags.limit)
            except SourceError as e:
                diags.add(codes.NET_FILE_MISSING.at(span, role=role, path=name, why=e.message))
                cache[found] = None
            else:
                diags.extend(d for d in cache[found].diagnostics if codes.explains_a_gap(d))
        return found, cache[found]

    def inline(fname: str, index: int):
        sub = getattr(msg, fname)[index] if fname == "test_net_param" else getattr(msg, fname)
        sub_loc = loc.msg(fname, index)
        key = f"{fname}#{index}"
        if key not in cache:
            p = upgrade_parsed(Parsed(NET, sub, sub_loc, parsed.source, Diagnostics(limit=diags.limit)))
            diags.extend(p.diagnostics)
            cache[key] = p
        return cache[key]

    def state(phase: int, net, override):
        # NetState: the solver's default phase, then the net's own state, then train_state/test_state.
        s = pb.NetState(phase=phase)
        if net is not None:
            s.MergeFrom(net.message.state)
        if override is not None:
            s.MergeFrom(override)
        return s

    uses: list[NetUse] = []
    train_fields = [f for f in ("net", "net_param", "train_net", "train_net_param") if msg.HasField(f)]
    if not train_fields:
        diags.add(codes.NO_TRAIN_NET.at(loc.span, notes=["name it with net: \"train_val.prototxt\" (train and test "
                                                         "nets in one file) or train_net: \"...\""]))
    elif len(train_fields) > 1:
        spans = [loc.field(f) for f in train_fields]
        diags.add(codes.MANY_TRAIN_NETS.at(spans[0], count=len(train_fields),
                                           related=[(s, f"'{f}' given here") for s, f in zip(spans[1:], train_fields[1:])]))
    else:
        f = train_fields[0]
        path, net = read(f, 0, "training") if f in ("net", "train_net") else (None, inline(f, 0))
        train_state = msg.train_state if msg.HasField("train_state") else None
        uses.append(NetUse("train", "TRAIN", f, loc.field(f), path, net, state(pb.TRAIN, net, train_state)))

    # InitTestNets: test_net_param blocks, then test_net files, then as many instances of the
    # generic net (net / net_param) as test_iter entries remain.
    generic = [f for f in ("net", "net_param") if msg.HasField(f)]
    n_explicit = len(msg.test_net_param) + len(msg.test_net)
    n_iter = len(msg.test_iter)
    if generic:
        if n_iter < n_explicit:
            diags.add(codes.TEST_ITER_COUNT.at(loc.field("test_iter") or loc.span, got=n_iter,
                                               nets=f"{n_explicit} test_net/test_net_param net(s)",
                                               rule="give one test_iter per test net (each further test_iter tests "
                                               f"the '{generic[0]}' net once more)"))
    elif n_iter != n_explicit:
        diags.add(codes.TEST_ITER_COUNT.at(loc.field("test_iter", n_explicit if n_iter > n_explicit else 0) or loc.span,
                                           got=n_iter, nets=f"{n_explicit} test net(s)",
                                           rule="give exactly one test_iter per test_net/test_net_param "
                                           "(without a 'net' or 'net_param' there is nothing else to test)"))
    n_instances = max(n_iter, n_explicit) if generic else n_explicit
    if msg.test_state and len(msg.test_state) != n_instances:
        diags.add(codes.TEST_STATE_COUNT.at(loc.field("test_state"), got=len(msg.test_state), instances=n_instances))
    if n_instances and msg.test_interval <= 0:
        diags.add(codes.NO_TEST_INTERVAL.at(loc.field_or_self("test_interval") if msg.HasField("test_interval")
                                            else loc.field("test_iter") or loc.span, value=msg.test_interval,
                                            notes=["Caffe checks test_interval > 0 when there are test nets"]))
    elif not n_instances and msg.test_interval > 0 and not n_iter:  # (a stray test_iter: E618 says it)
        diags.add(codes.TEST_INTERVAL_UNUSED.at(loc.field("test_interval")))

    sources: list[tuple[str, int]] = [("test_net_param", i) for i in range(len(msg.test_net_param))]
    sources += [("test_net", i) for i in range(len(msg.test_net))]
    if generic and n_iter > n_explicit:
        sources += [(generic[0], 0)] * (n_iter - n_explicit)
    for k, (f, i) in enumerate(sources):
        if f in ("test_net", "net"):
            path, net = read(f, i, f"test #{k}") if f == "test_net" or not uses or uses[0].field != "net" \
                else (uses[0].path, uses[0].parsed)
        else:
            path, net = None, inline(f, i)
        ts = msg.test_state[k] if len(msg.test_state) == n_instances and k < len(msg.test_state) else None
        uses.append(NetUse(f"test #{k}", "TEST", f, loc.field(f, i), path, net, state(pb.TEST, net, ts),
                           test_iter=msg.test_iter[k] if k < n_iter else None))
    return uses


# --- loading and the commands ----------------------------------------------------------------


def load_solver(path: str, max_errors: int = 100):
    """Parse (and upgrade) a solver; raises DiagnosticError when it cannot be read as one."""
    from .library import resolve
    from .parse import NET, SOLVER, _NET_KEYS, parse_text, sniff_kind
    from .source import Source
    from .upgrade import upgrade_parsed

    source = Source.from_path(resolve(path))
    if sniff_kind(source.text) == NET:
        # Parsed as a solver, a net would be a hundred 'unknown field' errors: say what it is
        # (after its syntax errors, if it has any: those are what to fix first).
        as_net = parse_text(source, NET, max_errors)
        if not as_net.syntax_ok:
            raise DiagnosticError(list(as_net.diagnostics))
        m = _NET_KEYS.search(source.text)
        at = m.start(1) if m.group(1) else m.start()
        word = m.group(1) or "name"
        raise DiagnosticError([codes.NOT_A_SOLVER.at(
            Span(source, at, at + len(word)), path=source.path,
            notes=[f"it has '{word}', which solvers do not; a solver sets base_lr, lr_policy, net, ...",
                   "'netdef check' and 'netdef summary' analyse networks; 'netdef lr' and 'netdef solver' "
                   "take the solver that trains one (the library's are listed by 'netdef list')"])])
    parsed = upgrade_parsed(parse_text(source, SOLVER, max_errors))
    if not parsed.syntax_ok:
        raise DiagnosticError(list(parsed.diagnostics))
    return parsed


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
    from .cli.output import print_diagnostics

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
        from . import progress
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
        from .cli.output import SCHEMA_VERSION, collected
        head = json.dumps({"schema_version": SCHEMA_VERSION, "command": "lr",
                           "file": parsed.source.path, "lr_policy": msg.lr_policy, "type": type_name(msg),
                           "base_lr": _json_float(F32(msg.base_lr)), "max_iter": msg.max_iter,
                           "change_points": [{"iter": t, "lr": _json_float(v)}
                                             for t, v in schedule.change_points(stop)],
                           "sampled": short}, indent=1)
        # The points are streamed a chunk at a time, as the TSV is: max_iter can be 2^31.
        out.write(head[:-2] + ',\n "points": [')
        first = True
        for it, r in blocks:
            items = [f'{{"iter": {i}, "lr": {json.dumps(_json_float(v))}}}' for i, v in zip(it.tolist(), r.tolist())]
            if items:
                out.write(("\n  " if first else ",\n  ") + ",\n  ".join(items))
                first = False
        out.write("\n ],\n \"diagnostics\": " + json.dumps([d.to_json() for d in collected]) + "\n}\n")
        return 0
    for it, r in blocks:
        out.write("".join(f"{i}\t{fmt_rate(v)}\n" for i, v in zip(it.tolist(), r.tolist())))
    return 0


def _json_float(v) -> float | None:
    """A float32 rate as the shortest decimal that reads back to the same float32; NaN/inf as null."""
    v = F32(v)
    if not np.isfinite(v):
        return None
    return float(np.format_float_scientific(v, unique=True))


# --- the schedule plot -----------------------------------------------------------------------


def _plot_points(schedule: Schedule, start: int, last: int, changes) -> tuple[np.ndarray, np.ndarray]:
    """Up to 2,000 evenly spaced iterations, plus both sides of every change point shown, so
    that a step is drawn where it happens."""
    n = min(last - start + 1, 2000)
    iters = set(np.unique(np.round(np.linspace(start, last, n)).astype(np.int64)).tolist())
    for t, _ in changes:
        iters.update((t - 1, t))
    xs = np.array(sorted(i for i in iters if start <= i <= last), dtype=np.int64)
    return xs, schedule.rates(xs).astype(np.float64)


def schedule_figure(parsed, schedule: Schedule, start: int, stop: int, log: bool = False):
    """The schedule over [start, stop) as a matplotlib Figure (no pyplot: no global state)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    msg = parsed.message
    last = max(start, stop - 1)
    changes = [(t, r) for t, r in schedule.change_points(stop) if start < t <= last]
    xs, ys = _plot_points(schedule, start, last, changes)
    ys = np.where(np.isfinite(ys) & ((ys > 0) if log else True), ys, np.nan)  # gaps, not wild lines

    fig = Figure(figsize=(8.6, 5.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    p = schedule.policy
    details = [type_name(msg), f'lr_policy "{p.name}"', f"base_lr {_num(msg.base_lr)}"]
    details += [f"{f} {_num(getattr(msg, f))}" for f in ("gamma", "power", "stepsize") if f in p.needs]
    if "stepvalue" in p.needs:
        details.append("stepvalue " + ", ".join(str(v) for v in msg.stepvalue[:8]) + (" …" if len(msg.stepvalue) > 8 else ""))
    if p.name == "poly" or msg.max_iter:
        details.append(f"max_iter {msg.max_iter:,}")
    # Text from the definition is data: parse_math=False keeps a '$' in a file name literal.
    fig.suptitle(f"Learning rate: {os.path.basename(parsed.source.path)}", x=0.01, ha="left",
                 fontweight="bold", parse_math=False)
    ax.set_title(" · ".join(details) + f"\nrate = {p.formula}", loc="left", fontsize=9, color="#555555",
                 parse_math=False)
    ax.plot(xs, ys, color="#1f5fa8", linewidth=2, drawstyle="steps-post" if p.stepped else "default")
    if len(changes) <= 200:
        shown = [(t, r) for t, r in changes if math.isfinite(r) and (r > 0 or not log)]
        for t, r in shown:
            ax.axvline(t, color="#c0392b", linewidth=0.8, linestyle="--", alpha=0.6)
        if shown:
            ax.plot([t for t, _ in shown], [r for _, r in shown], "o", color="#c0392b", markersize=4)
        if len(shown) <= 12:
            for t, r in shown:
                right = t > start + 0.8 * (last - start)   # labels near the right edge go to the left
                ax.annotate(f"{t:,} → {fmt_rate(r)}", (t, r), textcoords="offset points",
                            xytext=(-5 if right else 5, 5), ha="right" if right else "left",
                            fontsize=8, color="#c0392b", parse_math=False)
    if log:
        ax.set_yscale("log")
    if not np.isfinite(ys).any():
        ax.text(0.5, 0.5, "no finite learning rate in this range" + (" above 0" if log else ""),
                transform=ax.transAxes, ha="center", color="#b22222")
    ax.set_xlim(start, last if last > start else start + 1)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel("iteration")
    ax.set_ylabel("learning rate" + (" (log scale)" if log else ""))
    ax.grid(True, color="#e6e6e6")
    return fig


def plot_schedule(out: str, parsed, schedule: Schedule, start: int, stop: int, log: bool = False) -> None:
    import io

    from .outputs import check_writable, write_atomic

    ext = os.path.splitext(out)[1].lower().lstrip(".")
    if ext not in ("svg", "png", "pdf"):
        raise CliError(f"cannot plot to {out}: unknown format '{ext or out}'; use .svg, .png or .pdf")
    check_writable(out)
    try:
        import matplotlib
    except ImportError as e:
        raise CliError(f"cannot plot: matplotlib is not installed ({e}); pip install matplotlib") from None
    fig = schedule_figure(parsed, schedule, start, stop, log)
    buf = io.BytesIO()
    # No dates or random ids in the file: the same schedule gives the same bytes.
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(ext)
    with matplotlib.rc_context({"svg.hashsalt": "netdef", "svg.fonttype": "none"}):
        fig.savefig(buf, format=ext, metadata=metadata, dpi=150 if ext == "png" else "figure")
    write_atomic(out, buf.getvalue())


# --- compiling the nets and the `netdef solver` summary ----------------------------------------


def compile_nets(uses: list[NetUse], diags: Diagnostics, inputs=None) -> None:
    """Compile each net instance in its NetState (phase, level, stages after Caffe's merge);
    the graphs' diagnostics join `diags`, each reported once even when a file serves twice."""
    from .pipeline import compile as compile_net

    seen = {(d.code, d.span.source.path if d.span else None, d.span.start if d.span else None, d.message)
            for d in diags}
    for use in uses:
        if use.parsed is None or not use.parsed.syntax_ok:
            continue
        st = use.state
        kw = dict(phase=pb.Phase.Name(st.phase), stages=tuple(st.stage), level=st.level, max_errors=diags.limit)
        use.graph = compile_net(use.parsed, inputs=inputs, **kw)
        if inputs and use.phase == "TEST":
            # --input gives the training net's shapes; a test net reads its own batch size
            own = {v.name: batch for n in use.graph.nodes if (batch := _param_batch(n)) for v in n.outputs}
            if any(k in own and own[k] != v[0] for k, v in inputs.items()):
                use.graph = compile_net(use.parsed, inputs={k: ((own[k],) + tuple(v[1:]) if k in own else v)
                                                            for k, v in inputs.items()}, **kw)
        for d in use.graph.diagnostics:
            key = (d.code, d.span.source.path if d.span else None, d.span.start if d.span else None, d.message)
            if key not in seen and codes.explains_a_gap(d):
                seen.add(key)
                diags.add(d)


@dataclass
class ParamRow:
    layer: str
    index: int
    shape: tuple
    lr_mult: float
    decay_mult: float
    shared_with: str | None = None   # the owner layer when this blob is shared by name

    @property
    def count(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 0


def param_rows(graph) -> list[ParamRow]:
    """Every learnable blob with its effective multipliers, as Net::AppendParam settles them: a
    shared blob (param { name }) is one learnable blob whose lr_mult/decay_mult come from the
    first layer that sets them, the owner first."""
    rows: list[ParamRow] = []
    owners: dict[str, ParamRow] = {}
    explicit: dict[int, set] = {}
    owner_of: dict[int, ParamRow] = {}
    for node in graph.nodes:
        for i, shape in enumerate(node.meta.get("params") or []):
            spec = node.param.param[i] if i < len(node.param.param) else pb.ParamSpec()
            owner = owners.get(spec.name) if spec.name else None
            if owner is None:
                row = ParamRow(node.name, i, tuple(shape), spec.lr_mult, spec.decay_mult)
                if spec.name:
                    owners[spec.name] = row
                explicit[id(row)] = {f for f in ("lr_mult", "decay_mult") if spec.HasField(f)}
            else:
                row = ParamRow(node.name, i, tuple(shape), owner.lr_mult, owner.decay_mult,
                               shared_with=f"{owner.layer}[{owner.index}]")
                owner_of[id(row)] = owner
                for f in ("lr_mult", "decay_mult"):
                    if spec.HasField(f) and f not in explicit[id(owner)]:
                        explicit[id(owner)].add(f)
                        setattr(owner, f, getattr(spec, f))
            rows.append(row)
    for row in rows:  # a sharer shows the multipliers its owner ended with
        owner = owner_of.get(id(row))
        if owner is not None:
            row.lr_mult, row.decay_mult = owner.lr_mult, owner.decay_mult
    return rows


# Data layers whose batch size is a parameter (their other dimensions may live in a database).
_BATCH_FIELDS = {"Data": "data_param", "ImageData": "image_data_param", "WindowData": "window_data_param",
                 "HDF5Data": "hdf5_data_param", "MemoryData": "memory_data_param"}


def _param_batch(node) -> int | None:
    field_name = _BATCH_FIELDS.get(node.type)
    return (getattr(node.param, field_name).batch_size or None) if field_name else None


def batch_size(graph) -> int | None:
    """Samples per forward pass: the first data layer's batch_size, else the first input's N."""
    if graph is None:
        return None
    for node in graph.nodes:
        if _param_batch(node):
            return _param_batch(node)
    return graph.batch_size


def missing_shapes(graph) -> list[str]:
    """The inputs whose shape nobody gave (a Data layer's channels live in its database)."""
    return [v.name for v in graph.inputs if v.meta.get("shape") is None]


def summarize(parsed, uses: list[NetUse], dataset_size: int | None = None) -> dict:
    """Everything `netdef solver` prints, as plain data (the JSON form)."""
    msg = parsed.message
    kind = SOLVERS[type_name(msg)]
    schedule = Schedule(msg)
    pol = schedule.policy
    base = _json_float(msg.base_lr)
    doc: dict = {"file": parsed.source.path}
    doc["optimizer"] = {"type": kind.name, "update": kind.update,
                        "hyper": {f: _json_float(getattr(msg, f)) for f in kind.uses}}
    doc["learning_rate"] = {"base_lr": base, "lr_policy": pol.name, "formula": pol.formula,
                            "params": {f: (list(msg.stepvalue) if f == "stepvalue" else
                                           int(getattr(msg, f)) if f in ("stepsize", "max_iter") else
                                           _json_float(getattr(msg, f))) for f in pol.needs}}
    doc["regularization"] = {"type": msg.regularization_type, "weight_decay": _json_float(msg.weight_decay)}
    doc["max_iter"] = msg.max_iter
    doc["iter_size"] = msg.iter_size
    doc["clip_gradients"] = _json_float(msg.clip_gradients) if msg.clip_gradients >= 0 else None
    doc["average_loss"] = msg.average_loss
    snaps = {"every": msg.snapshot or None, "after_train": msg.snapshot_after_train,
             "format": pb.SolverParameter.SnapshotFormat.Name(msg.snapshot_format)}
    if msg.snapshot or msg.snapshot_after_train:
        # Solver::SnapshotFilename: prefix + "_iter_" + iter + extension
        h5 = msg.snapshot_format == pb.SolverParameter.HDF5
        snaps["files"] = [f"{msg.snapshot_prefix}_iter_N.caffemodel" + (".h5" if h5 else ""),
                          f"{msg.snapshot_prefix}_iter_N.solverstate" + (".h5" if h5 else "")]
    doc["snapshots"] = snaps

    last = max(0, msg.max_iter - 1)
    if pol.stepped:
        changes = schedule.change_points(msg.max_iter)
        points = [(0, schedule.rate(0))] + changes
        doc["schedule"] = {"kind": "steps", "changes": len(changes),
                           "points": [{"iter": t, "lr": _json_float(r)} for t, r in points]}
    else:
        marks = sorted({0, last // 4, last // 2, 3 * last // 4, last})
        doc["schedule"] = {"kind": "continuous",
                           "points": [{"iter": t, "lr": _json_float(schedule.rate(t))} for t in marks]}
    doc["schedule"]["last_iter"] = last
    doc["schedule"]["last_lr"] = _json_float(schedule.rate(last)) if msg.max_iter > 0 else None

    nets = []
    train_batch = None
    for use in uses:
        entry = {"role": use.role, "phase": use.phase, "field": use.field,
                 "file": _display(use.path) if use.path else None,
                 "stages": list(use.state.stage), "level": use.state.level,
                 "batch": batch_size(use.graph), "compiled": use.graph is not None}
        if use.role == "train":
            train_batch = entry["batch"]
            if train_batch:
                entry["samples_per_iteration"] = train_batch * msg.iter_size
        else:
            entry["test_iter"] = use.test_iter
            if entry["batch"] and use.test_iter:
                entry["samples_per_test"] = entry["batch"] * use.test_iter
        nets.append(entry)
    doc["nets"] = nets
    doc["test_interval"] = msg.test_interval or None

    if dataset_size and not train_batch:
        doc["epochs"] = {"dataset_size": dataset_size, "unknown": "the training net's batch size is not known"}
    elif dataset_size:
        per_iter = train_batch * msg.iter_size
        ipe = dataset_size / per_iter
        doc["epochs"] = {"dataset_size": dataset_size, "samples_per_iteration": per_iter,
                         "iterations_per_epoch": ipe, "epochs": msg.max_iter / ipe,
                         "change_epochs": [t / ipe for t, _ in schedule.change_points(msg.max_iter)] if pol.stepped else []}
    train = next((u for u in uses if u.role == "train"), None)
    if train is not None and train.graph is not None:
        rows = param_rows(train.graph)
        # Caffe's local rate and decay: float products of the float fields
        doc["params"] = [{"layer": r.layer, "blob": r.index, "shape": list(r.shape), "count": r.count,
                          "lr_mult": _json_float(r.lr_mult), "lr": _json_float(F32(msg.base_lr) * F32(r.lr_mult)),
                          "decay_mult": _json_float(r.decay_mult),
                          "decay": _json_float(F32(msg.weight_decay) * F32(r.decay_mult)),
                          "shared_with": r.shared_with} for r in rows]
        own = [r for r in rows if not r.shared_with]
        doc["param_totals"] = {"learnable": sum(r.count for r in own),
                               "frozen": sum(r.count for r in own if r.lr_mult == 0),
                               "blobs": len(own)}
        # layers after an input of unknown shape have no parameter shapes either
        doc["params_incomplete"] = {"inputs": missing_shapes(train.graph),
                                    "layers": [n.name for n in train.graph.nodes
                                               if any(v.meta.get("shape") is None for v in n.outputs)]}
    return doc


def _g(x) -> str:
    return "—" if x is None else _num(x) if isinstance(x, float) else f"{x:,}" if isinstance(x, int) else str(x)


def render_summary(doc: dict) -> str:
    out = []
    w = out.append
    o, lr = doc["optimizer"], doc["learning_rate"]
    w(f"solver   {doc['file']}")
    hyper = ", ".join(f"{k} {_num(v)}" for k, v in o["hyper"].items())
    w(f"  optimizer       {o['type']}" + (f" ({hyper})" if hyper else ""))
    w(f"                  {o['update']}")
    params = ", ".join(f"{k} " + (", ".join(map(str, v)) if isinstance(v, list) else _g(v)) for k, v in lr["params"].items())
    w(f"  learning rate   base_lr {_num(lr['base_lr'])}, lr_policy \"{lr['lr_policy']}\"" + (f": {params}" if params else ""))
    w(f"                  rate = {lr['formula']}")
    reg = doc["regularization"]
    w(f"  weight decay    {_num(reg['weight_decay'])} ({reg['type']})")
    w(f"  iterations      max_iter {doc['max_iter']:,}" +
      (f", iter_size {doc['iter_size']} (gradients accumulated over {doc['iter_size']} passes)" if doc["iter_size"] != 1 else ""))
    w(f"  clip gradients  " + ("off" if doc["clip_gradients"] is None else f"L2 norm above {_num(doc['clip_gradients'])}"))
    s = doc["snapshots"]
    when = ([f"every {s['every']:,} iterations"] if s["every"] else []) + (["after training"] if s["after_train"] else [])
    w(f"  snapshots       " + (" and ".join(when) + (f": {', '.join(s['files'])}" if s.get("files") else "") if when else "none"))

    sch = doc["schedule"]
    w("")
    if sch["kind"] == "steps":
        w(f"schedule: the rate changes {sch['changes']} time(s) before max_iter" if sch["changes"] else
          "schedule: the rate is constant")
    else:
        w("schedule: continuous; the rate at")
    pts = sch["points"]
    shown = pts if len(pts) <= 21 else pts[:20]
    width = max([len(f"{p['iter']:,}") for p in pts] + [9])
    w(f"  {'iteration':>{width}}  rate")
    for p in shown:
        w(f"  {p['iter']:>{width},}  {fmt_rate(p['lr']) if p['lr'] is not None else 'nan'}")
    if len(pts) > len(shown):
        w(f"  {'…':>{width}}  ({len(pts) - len(shown)} more changes)")
    if sch["last_lr"] is not None and pts[-1]["iter"] != sch["last_iter"]:
        w(f"  {sch['last_iter']:>{width},}  {fmt_rate(sch['last_lr'])}  (last iteration)")

    w("")
    w("nets")
    for n in doc["nets"]:
        where = n["file"] or f"inline {n['field']}"
        state = f"phase {n['phase']}" + (f", stages {', '.join(n['stages'])}" if n["stages"] else "") + \
            (f", level {n['level']}" if n["level"] else "")
        line = f"  {n['role']:<8} {where} ({state})"
        if n["role"] == "train":
            if n.get("samples_per_iteration"):
                line += f": batch {n['batch']}" + (f" × iter_size {doc['iter_size']} = {n['samples_per_iteration']:,} samples per iteration"
                                                   if doc["iter_size"] != 1 else " per iteration")
        else:
            line += f": test_iter {n['test_iter']}"
            if n.get("samples_per_test"):
                line += f" × batch {n['batch']} = {n['samples_per_test']:,} samples"
            if doc["test_interval"]:
                line += f", every {doc['test_interval']:,} iterations"
        if not n["compiled"]:
            line += "  [not compiled]"
        w(line)

    e = doc.get("epochs")
    if e and "unknown" in e:
        w("")
        w(f"epochs: {e['unknown']} (no data layer with a batch_size; give --input with the batch as N)")
    elif e:
        w("")
        w(f"epochs ({e['dataset_size']:,} samples, {e['samples_per_iteration']:,} per iteration): "
          f"{e['iterations_per_epoch']:,.1f} iterations per epoch; max_iter = {e['epochs']:,.2f} epochs")
        if e["change_epochs"]:
            ce = ", ".join(f"{x:,.2f}" for x in e["change_epochs"][:12]) + (" …" if len(e["change_epochs"]) > 12 else "")
            w(f"  the rate changes at epochs {ce}")

    if "params" in doc:
        rows = doc["params"]
        w("")
        w("parameters (at iteration 0: lr = base_lr × lr_mult, decay = weight_decay × decay_mult)")
        gap = doc["params_incomplete"]
        if gap["layers"]:
            hint = " ".join(f"--input {name}=N,C,H,W" for name in gap["inputs"])
            w(f"  incomplete: {len(gap['layers'])} layer(s) have no shapes" +
              (f"; give {hint}" if hint else f" (from '{gap['layers'][0]}' on)"))
        if not rows:
            return "\n".join(out) + "\n"
        table = [("layer", "blob", "shape", "count", "lr_mult", "lr", "decay_mult", "decay", "")]
        for r in rows:
            table.append((r["layer"], str(r["blob"]), fmt_shape(r["shape"], "×"), f"{r['count']:,}",
                          _num(r["lr_mult"]), _num(r["lr"]), _num(r["decay_mult"]), _num(r["decay"]),
                          f"shared with {r['shared_with']}" if r["shared_with"] else ("frozen" if r["lr_mult"] == 0 else "")))
        widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
        right = {1, 3, 4, 5, 6, 7}
        for t in table:
            w("  " + "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(t)).rstrip())
        tot = doc["param_totals"]
        w(f"  {tot['learnable']:,} learnable values in {tot['blobs']} blob(s)" +
          (f"; {tot['frozen']:,} frozen (lr_mult 0)" if tot["frozen"] else ""))
    return "\n".join(out) + "\n"


def cmd_solver(args) -> int:
    from .cli.output import print_diagnostics

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
            from .cli.output import emit_json
            emit_json(args, dict(doc, ok=not diags.has_errors))
        else:
            sys.stdout.write(render_summary(doc))
    elif args.format == "json":
        from .cli.output import emit_json
        emit_json(args, {"ok": False})
    return 1 if diags.has_errors else 0
