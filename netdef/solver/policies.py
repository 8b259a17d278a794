"""Caffe's learning-rate policies and the Schedule that evaluates them, with the number
formats the solver tools print rates and field values in.

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

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

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


def fmt_value(x: float) -> str:
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


def json_float(v) -> float | None:
    """A float32 rate as the shortest decimal that reads back to the same float32; NaN/inf as null."""
    v = F32(v)
    if not np.isfinite(v):
        return None
    return float(np.format_float_scientific(v, unique=True))
