"""The `netdef solver` summary: the optimiser, the schedule, the nets with their batches and
epochs, and every learnable blob's rate and decay, as plain data (the JSON form) and as text."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..proto import pb
from .kinds import SOLVERS, type_name
from .nets import NetUse, batch_size, display_path
from .policies import F32, Schedule, fmt_rate, fmt_value, json_float


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


def missing_shapes(graph) -> list[str]:
    """The inputs whose shape nobody gave (a Data layer's channels live in its database)."""
    return [v.name for v in graph.inputs if v.meta.get("shape") is None]


def summarize(parsed, uses: list[NetUse], dataset_size: int | None = None) -> dict:
    """Everything `netdef solver` prints, as plain data (the JSON form)."""
    msg = parsed.message
    kind = SOLVERS[type_name(msg)]
    schedule = Schedule(msg)
    pol = schedule.policy
    base = json_float(msg.base_lr)
    doc: dict = {"file": parsed.source.path}
    doc["optimizer"] = {"type": kind.name, "update": kind.update,
                        "hyper": {f: json_float(getattr(msg, f)) for f in kind.uses}}
    doc["learning_rate"] = {"base_lr": base, "lr_policy": pol.name, "formula": pol.formula,
                            "params": {f: (list(msg.stepvalue) if f == "stepvalue" else
                                           int(getattr(msg, f)) if f in ("stepsize", "max_iter") else
                                           json_float(getattr(msg, f))) for f in pol.needs}}
    doc["regularization"] = {"type": msg.regularization_type, "weight_decay": json_float(msg.weight_decay)}
    doc["max_iter"] = msg.max_iter
    doc["iter_size"] = msg.iter_size
    doc["clip_gradients"] = json_float(msg.clip_gradients) if msg.clip_gradients >= 0 else None
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
                           "points": [{"iter": t, "lr": json_float(r)} for t, r in points]}
    else:
        marks = sorted({0, last // 4, last // 2, 3 * last // 4, last})
        doc["schedule"] = {"kind": "continuous",
                           "points": [{"iter": t, "lr": json_float(schedule.rate(t))} for t in marks]}
    doc["schedule"]["last_iter"] = last
    doc["schedule"]["last_lr"] = json_float(schedule.rate(last)) if msg.max_iter > 0 else None

    nets = []
    train_batch = None
    for use in uses:
        entry = {"role": use.role, "phase": use.phase, "field": use.field,
                 "file": display_path(use.path) if use.path else None,
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
                          "lr_mult": json_float(r.lr_mult), "lr": json_float(F32(msg.base_lr) * F32(r.lr_mult)),
                          "decay_mult": json_float(r.decay_mult),
                          "decay": json_float(F32(msg.weight_decay) * F32(r.decay_mult)),
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
    return "—" if x is None else fmt_value(x) if isinstance(x, float) else f"{x:,}" if isinstance(x, int) else str(x)


def render_summary(doc: dict) -> str:
    out = []
    w = out.append
    o, lr = doc["optimizer"], doc["learning_rate"]
    w(f"solver   {doc['file']}")
    hyper = ", ".join(f"{k} {fmt_value(v)}" for k, v in o["hyper"].items())
    w(f"  optimizer       {o['type']}" + (f" ({hyper})" if hyper else ""))
    w(f"                  {o['update']}")
    params = ", ".join(f"{k} " + (", ".join(map(str, v)) if isinstance(v, list) else _g(v)) for k, v in lr["params"].items())
    w(f"  learning rate   base_lr {fmt_value(lr['base_lr'])}, lr_policy \"{lr['lr_policy']}\"" + (f": {params}" if params else ""))
    w(f"                  rate = {lr['formula']}")
    reg = doc["regularization"]
    w(f"  weight decay    {fmt_value(reg['weight_decay'])} ({reg['type']})")
    w(f"  iterations      max_iter {doc['max_iter']:,}" +
      (f", iter_size {doc['iter_size']} (gradients accumulated over {doc['iter_size']} passes)" if doc["iter_size"] != 1 else ""))
    w(f"  clip gradients  " + ("off" if doc["clip_gradients"] is None else f"L2 norm above {fmt_value(doc['clip_gradients'])}"))
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
            table.append((r["layer"], str(r["blob"]), "×".join(map(str, r["shape"])) or "scalar", f"{r['count']:,}",
                          fmt_value(r["lr_mult"]), fmt_value(r["lr"]), fmt_value(r["decay_mult"]), fmt_value(r["decay"]),
                          f"shared with {r['shared_with']}" if r["shared_with"] else ("frozen" if r["lr_mult"] == 0 else "")))


        widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
        right = {1, 3, 4, 5, 6, 7}
        for t in table:
            w("  " + "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(t)).rstrip())
        tot = doc["param_totals"]
        w(f"  {tot['learnable']:,} learnable values in {tot['blobs']} blob(s)" +
          (f"; {tot['frozen']:,} frozen (lr_mult 0)" if tot["frozen"] else ""))
    return "\n".join(out) + "\n"
