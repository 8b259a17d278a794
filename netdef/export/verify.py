"""The exported model, run by onnxruntime, against the NumPy reference.

Both see the same weights and inputs. Every blob the exported graph still has (folding removes
the convolution outputs it merges) becomes an extra model output, and is compared, layer by
layer in Caffe's order, with what netdef.reference computed from Caffe's C++ semantics. The
first layer whose tops differ by more than the tolerance (max |a - b| / max(1, max |b|)) is
reported at its definition. (The `netdef verify` command: netdef/cli/verify.py.)

A MAX pooling's mask (argmax indices, which SegNet's Upsample unpools with) is compared with one
allowance: where a window's two largest values are equal within the tolerance, the float32
runtime and the reference may each round them into a different order and pick different
indices. Such a position is accepted when onnxruntime's index lies in the same window and the
reference's pooled input holds the same value there within the tolerance (a tie); the reference
then continues with onnxruntime's index, so that the layers fed by the mask are compared from the
same state. The count is reported (Comparison.ties); any other differing index still fails.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..diagnostics import Diagnostics
from .model import Exported
from .onnx import Exporter
from .prepare import compile_for_export, graph_weights
from .runtime import Session, nonfinite_outputs


def rel_error(a: np.ndarray, b: np.ndarray, chunk: int = 1 << 20) -> float:
    """max |a - b| / max(1, max |b|) over the finite values of b, in float64; NaN on both sides
    or the same infinity is agreement, any other NaN an infinite error. Worked out `chunk`
    elements at a time, so that the float64 copies of a big blob are never made whole."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    if b.size == 0:
        return 0.0
    a, b = a.reshape(-1), b.reshape(-1)
    worst, top, nan = 0.0, 0.0, False
    for lo in range(0, b.size, chunk):
        x = np.asarray(a[lo:lo + chunk], np.float64)
        y = np.asarray(b[lo:lo + chunk], np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(x - y)
        # NaN on both sides, or the same infinity (inf - inf is NaN), is agreement.
        same = (np.isnan(x) & np.isnan(y)) | (np.isinf(x) & (x == y))
        if same.any():
            diff = np.where(same, 0.0, diff)
        finite = np.abs(y[np.isfinite(y)])
        if finite.size:
            top = max(top, float(finite.max()))
        if np.isnan(diff).any():
            nan = True
        else:
            worst = max(worst, float(diff.max()))
    return float("inf") if nan else worst / max(1.0, top)


@dataclass
class Comparison:
    layer: str
    type: str
    top: str
    onnx_name: str
    error: float
    shape: tuple
    span: object = None
    ties: int = 0          # argmax positions that differ at ties within the tolerance (settle_ties)


@dataclass
class Report:
    comparisons: list[Comparison]
    first_bad: Comparison | None
    skipped: list[str]
    stopped: str | None          # why the reference stopped early, if it did
    provider: str
    nonfinite: dict              # model output -> W517 warning, for outputs holding NaN or Inf


def with_every_value(exported, keep=None) -> tuple[bytes, dict[int, str]]:
    """The model's bytes with every value it still computes as an extra output, and the map
    from IR values (by id) to those ONNX names. `keep`: only these ONNX names are added (a
    segment of the values, for verify's runs in parts)."""
    from . import onnx_proto as helper
    from .onnx_proto import TensorProto
    graph = exported.exporter.graph
    names = exported.value_map()
    skel = exported.skeleton.graph
    existing = {o.name for o in skel.output} | {i.name for i in skel.input}
    by_id = {id(v): v for v in graph.values}
    added = []
    for key, nm in sorted(names.items(), key=lambda kv: kv[1]):
        v = by_id.get(key)
        if v is None or nm in existing or v.meta.get("shape") is None or (keep is not None and nm not in keep):
            continue
        existing.add(nm)
        free = exported.exporter.free_dims.get(key, {})   # axes known only at run time (detections)
        added.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT16 if exported.exporter.fp16 else TensorProto.FLOAT,
                                                   [free.get(i, d) for i, d in enumerate(v.meta["shape"])]))
    skel.output.extend(added)
    try:
        return exported.to_bytes(), names
    finally:
        for _ in added:
            skel.output.pop()


def _random_input(value, rng) -> np.ndarray:
    """Random data for an input: standard normal, but whole numbers in [0, input_dim) where an
    Embed layer reads the input (its values are indices; Caffe's EmbedLayer checks the range)."""
    shape = tuple(value.meta["shape"])
    dims = [n.param.embed_param.input_dim for n in value.consumers if n.type == "Embed"]
    if dims and min(dims) > 0:
        return rng.integers(0, min(dims), shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def settle_ties(node, x, mask, other, tolerance: float) -> int:
    """A MAX pooling's mask top: the positions where onnxruntime's index `other` differs from
    the reference's `mask` at a tie (reference.pool.argmax_ties, on the reference's pooled input
    `x`) take onnxruntime's index, in place: trace's later layers read this very array. Returns
    how many did."""
    from ..layers.pool import geometry
    from ..reference.pool import argmax_ties
    if mask.shape != np.shape(other) or x is None:
        return 0
    geo = geometry(node, x.shape)
    tie = argmax_ties(x, mask, np.asarray(other), geo.kernel, geo.stride, geo.pad, tolerance)
    count = int(tie.sum())
    if count:
        mask[tie] = np.asarray(other, mask.dtype)[tie]
    return count


# onnxruntime keeps every output of a run until the run ends: with every value of a big net as
# an output (PSPNet-50 at 473x473: 1.8 GiB) that alone was more than the rest of verify. Values
# are computed in runs of about this many bytes each, in the net's order (each run a model with
# just that segment's values as extra outputs, its session dropped after the run), and each value
# is dropped once compared. Measured in benchmarks/verify_memory.py (RESULTS.md).
SEGMENT_BYTES = 512 * 2**20


def decides(graph) -> bool:
    """Whether a layer of the net makes a discrete choice from nearly equal values: a MAX
    pooling's mask top (argmax), ArgMax, or a layer that `selects` (DetectionOutput's NMS). Each
    segment is its own model and run, and two runs of different models need not round alike in
    the last bit (measured: SegNet's pool2 mask picks the other of two tied values in the run that
    computes upsample2 than in the run that reported it), so the reference's adoption of
    onnxruntime's choice (settle_ties, `selects`) holds only within one run: such a net is
    verified in one run."""
    return any((n.type == "Pooling" and len(n.outputs) > 1) or n.type == "ArgMax"
               or getattr(n.impl, "selects", False) for n in graph.nodes)


class _Runs:
    """onnxruntime's value of each blob that verify compares, run segment by segment on demand:
    take(name) returns it (running its segment first if need be) and lets it go after its last
    comparison. One segment (the net's values fit in `budget`, or budget None) is one run of
    the model with every value as an output, as before."""

    def __init__(self, exported, graph, provider: str, budget: int | None):
        self.exported, self.asked = exported, provider
        self.names = exported.value_map()
        self.real = [o.name for o in exported.skeleton.graph.output]
        io = {i.name for i in exported.skeleton.graph.input}
        itemsize = 2 if exported.exporter.fp16 else 4
        self.uses: dict[str, int] = {}          # ONNX name -> comparisons still to make
        sizes: dict[str, int] = {}
        for n in graph.nodes:                   # the order trace and the comparison follow
            if not n.inputs:
                continue
            for out in n.outputs:
                nm = self.names.get(id(out))
                if nm is None or nm in io or out.meta.get("shape") is None:
                    continue
                self.uses[nm] = self.uses.get(nm, 0) + 1
                sizes.setdefault(nm, itemsize * max(1, math.prod(max(1, int(d)) for d in out.meta["shape"])))
        self.segments: list[list[str]] = []
        size = 0
        for nm, b in sizes.items():
            if not self.segments or (budget is not None and size + b > budget and self.segments[-1]):
                self.segments.append([])
                size = 0
            self.segments[-1].append(nm)
            size += b
        self.segment = {nm: k for k, seg in enumerate(self.segments) for nm in seg}
        self.values: dict[str, np.ndarray] = {}
        self.fetched: set[str] = set()
        self.ran: set[int] = set()
        self.feed: dict = {}
        self.sess = self._session(0)
        # Names only: onnxruntime's NodeArg objects keep their session (and the memory its
        # arena holds after a run: 1.1 GiB on SegNet) alive.
        self.inputs = [a.name for a in self.sess.inputs]
        self.provider = self.sess.provider

    def _session(self, k: int) -> Session:
        keep = set(self.segments[k]) if len(self.segments) > 1 else None
        model, _ = with_every_value(self.exported, keep)
        return Session(model, self.asked)

    def _run(self, k: int) -> dict:
        sess = self.sess if self.sess is not None else self._session(k)
        self.sess = None
        out = sess.run(self.feed)
        del sess
        self.ran.add(k)
        seg = set(self.segments[k]) if len(self.segments) > 1 else None
        for nm, v in out.items():
            if self.uses.get(nm) and nm not in self.fetched and (seg is None or nm in seg):
                self.values[nm] = v
                self.fetched.add(nm)
        return out

    def start(self, feed: dict) -> dict:
        """The first run; returns the model's own outputs (for the NaN/Inf warnings)."""
        self.feed = feed
        out = self._run(0)
        return {nm: out[nm] for nm in self.real if nm in out}

    def take(self, nm):
        if nm is None:
            return None
        k = self.segment.get(nm)
        if nm not in self.values and k is not None and k not in self.ran:
            self._run(k)
        v = self.values.get(nm)
        if v is not None:
            self.uses[nm] -= 1
            if self.uses[nm] <= 0:
                del self.values[nm]
        return v


def _computing(graph, outputs) -> set[str]:
    """--outputs: the names of the layers the named blobs depend on, for the reference to run."""
    from .subgraph import ancestors, select_outputs
    needed = ancestors(select_outputs(graph, outputs), every_bottom=True)
    return {n.name for n in graph.nodes if id(n) in needed}


def verify(source, weights=None, *, inputs: dict | None = None, tolerance: float = 1e-4, seed: int = 0,
           fold: bool = True, provider: str = "cpu", phase: str = "TEST", stages=(), level: int = 0,
           input_shapes: dict | None = None, diags: Diagnostics | None = None,
           allow_missing_weights: bool = False, batch: int | None = None, outputs=None, graph=None,
           segment_bytes: int | None = None, stand_in: bool = True) -> Report:
    """stand_in: blobs the definition gives no filler (Caffe's default makes them 0, which
    leaves nothing to compare) get weights.stand_in_filler's random values; False keeps zeros.
    graph: the net as compile_for_export(source, deploy=True, ...) analysed it with these
    options (the command line's batch-1 probe), used as it is instead of compiling it again.
    segment_bytes: onnxruntime's values are computed in runs whose extra outputs hold about this
    much (None: SEGMENT_BYTES, or one run for a net that `decides`; 0: every value in one run);
    see _Runs."""
    from ..reference import ReferenceError, trace

    diags = diags if diags is not None else Diagnostics()
    # The batch comes from the input arrays when given (else `batch`: 1 by default from the
    # command line); losses and Accuracy are left out first.
    if graph is None:
        graph, _ = compile_for_export(source, phase=phase, stages=stages, level=level, inputs=input_shapes,
                                      deploy=True, batch=batch,
                                      batch_from={n: np.shape(a) for n, a in (inputs or {}).items()})
    diags.extend(graph.diagnostics)
    blobs = graph_weights(graph, weights, seed, diags, allow_missing_weights=allow_missing_weights,
                          stand_in=stand_in)
    ex = Exporter(graph, blobs, fold=fold, diags=diags, outputs=outputs)
    ex.build()
    only = _computing(graph, outputs) if outputs else None
    exported = Exported(ex, graph.name)
    if segment_bytes is None:
        segment_bytes = 0 if decides(graph) else SEGMENT_BYTES
    runs = _Runs(exported, graph, provider, segment_bytes or None)
    names, real = runs.names, runs.real
    rng = np.random.default_rng(seed)
    feed = {}
    for name in runs.inputs:
        if inputs and name in inputs:
            feed[name] = np.asarray(inputs[name], np.float32)
        else:
            feed[name] = _random_input(graph.blob(name), rng)
    first = runs.start(feed)

    def where(name):
        v = graph.blob(name) if name in graph.blob_names else None
        return v.producer.span if v is not None and v.producer is not None else None
    nonfinite = nonfinite_outputs({nm: first[nm] for nm in real}, where)
    del first

    ref_inputs = dict(feed)
    for v in graph.inputs:                 # data layers' tops the export left out (labels)
        if v.name in ref_inputs:
            continue
        if v.meta.get("shape"):
            ref_inputs[v.name] = rng.standard_normal(tuple(v.meta["shape"])).astype(np.float32)
        elif not v.consumers:
            # A label whose shape only the data would tell, read by no layer the deployed net
            # keeps (its loss is left out): the data layer still writes it, so it needs a value.
            ref_inputs[v.name] = np.zeros(0, np.float32)
    # Layer names can repeat (W310; CRF-as-RNN's FCN has two 'crop' and two 'fuse'): the trace
    # and the graph both follow the file's order, so the k-th step of a name is its k-th node.
    nodes: dict[str, list] = {}
    for n in graph.nodes:
        nodes.setdefault(n.name, []).append(n)
    comparisons, skipped, stopped, first_bad = [], [], None, None
    from ..progress import Progress
    # The reference is the long part on a big net (a line on a terminal after a second).
    progress = Progress("verify: NumPy reference", total=len(graph.parsed.message.layer))
    try:
        for step in trace(graph.parsed.message, blobs, ref_inputs, phase=phase, level=level, stages=stages,
                          loc=graph.parsed.loc, whole=graph.parsed.whole, only=only):
            progress.update(detail=step.layer)
            same_name = nodes.get(step.layer)
            node = same_name.pop(0) if same_name else None
            if node is None or not node.inputs:
                continue
            for i, (top, value) in enumerate(zip(step.tops, step.values)):
                out = node.outputs[i] if i < len(node.outputs) else None
                nm = names.get(id(out)) if out is not None else None
                theirs = runs.take(nm)
                if theirs is None:
                    skipped.append(f"{step.layer}:{top}")
                    continue
                got = theirs
                # A layer whose rows of (near) equal score come in no fixed order puts the
                # export's rows in the reference's order first (DetectionOutput's `comparable`).
                comparable = getattr(node.impl, "comparable", None)
                if comparable is not None and np.shape(got) == np.shape(value):
                    got = comparable(got, value)
                ties = 0
                if step.type == "Pooling" and i == 1 and step.inputs:    # the MAX mask top
                    ties = settle_ties(node, step.inputs[0], value, got, tolerance)
                c = Comparison(step.layer, step.type, top, nm, rel_error(got, value), tuple(value.shape),
                               node.span, ties)
                del got
                comparisons.append(c)
                if first_bad is None and not c.error <= tolerance:
                    first_bad = c
                # A layer that decides by comparing its inputs (DetectionOutput's thresholds and
                # NMS, `selects`) reads the export's value of a blob that agrees within the
                # tolerance, in place as for the mask ties: last-bit differences upstream must not
                # flip its decisions, so that its comparison judges the layer alone.
                ref = step.values[i]
                if c.error <= tolerance and out is not None and ref.flags.writeable and \
                        np.shape(theirs) == np.shape(ref) and \
                        any(getattr(n.impl, "selects", False) for n in out.consumers):
                    np.copyto(ref, theirs)
                del theirs, ref
            del step
    except ReferenceError as e:
        stopped = str(e)
    finally:
        progress.close()
    return Report(comparisons, first_bad, skipped, stopped, runs.provider, nonfinite)
