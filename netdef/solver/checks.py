"""The checks on a SolverParameter's own fields (its type, lr_policy and values), with spans;
the nets it names are planned and checked in nets.py."""
from __future__ import annotations

import difflib

from .. import codes
from ..diagnostics import Diagnostics
from .kinds import HYPER_FIELDS, SOLVERS, type_name
from .policies import POLICIES, SCHEDULE_FIELDS, fmt_value, multistep_iterations


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
                                        value=fmt_value(getattr(msg, fname)), notes=[note] if note else []))

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
            degenerate("gamma", f"gamma is {fmt_value(g)} (more than 1): the learning rate grows under lr_policy '{name}'")
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
                                             value=fmt_value(v) if isinstance(v, float) else v, why=why))

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
        diags.add(codes.SOLVER_VALUE_WARN.at(loc.field_or_self("base_lr"), field="base_lr", value=fmt_value(msg.base_lr),
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
