"""IR -> ONNX: a deploy graph of standard operators, with Caffe's semantics.

    ex = export("resnet50", weights="resnet50.caffemodel", opset=17, batch="dynamic")
    ex.write("resnet50.onnx")        # atomic; initializers streamed one at a time
    ex.model()                       # an onnx.ModelProto (materialises every weight)

Each layer family lowers itself (`to_onnx(node, g)` beside its shape rule in netdef/layers/);
this module drives them: it chooses value names (blob names survive; an in-place rewrite gets
`name@version` for the earlier versions), drops training-only layers (and the layers that read
what they compute: prepare.left_out), folds BatchNorm/Scale into the convolution or inner
product before them, adds fp16 casts and a symbolic batch, and writes the file (after checking
its wiring: Exported.check). Weights stay lazy until the writer needs them, so the model is never held
twice: exporting costs the weights' size once, plus the largest tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import codes
from ..diagnostics import DiagnosticError, Diagnostics, UsageError
from .model import CUSTOM_DOMAIN, DEFAULT_OPSET, OPSETS, Exported, ir_version_for
from .lowering import NO_LOWERING_NOTE, Init, LowerError, Lowering, lowered_types
from .prepare import (TRAINING_ONLY, compile_for_export, graph_weights, is_training_only, left_out, left_out_diagnostic,
                      param_specs)
from .subgraph import ancestors, custom_attributes, select_outputs

# Re-exported: the public API and the tests import these from here.
__all__ = ["CUSTOM_DOMAIN", "DEFAULT_OPSET", "OPSETS", "TRAINING_ONLY", "Exported", "Exporter", "compile_for_export",
           "export", "graph_weights", "ir_version_for", "is_training_only", "param_specs"]


# --- the exporter -----------------------------------------------------------------------------

@dataclass
class Fold:
    """A convolution/inner product absorbing the BatchNorm/Scale layers after it."""
    target: object
    absorbed: list = field(default_factory=list)


class Exporter:
    def __init__(self, graph, blobs: dict[str, list], *, opset: int = DEFAULT_OPSET, fp16: bool = False,
                 fp16_io: bool = False, fold: bool = True, dyn: dict | None = None, diags: Diagnostics | None = None,
                 outputs=None, custom_ops: bool = False):
        if opset not in OPSETS:
            raise UsageError(f"--opset {opset} is not supported (allowed: {OPSETS.start} to {OPSETS.stop - 1})")
        self.graph = graph
        self.opset = opset
        self.fp16 = fp16
        self.fp16_io = fp16_io and fp16
        self.fold = fold
        self.diags = diags if diags is not None else Diagnostics()
        self.float_dtype = np.dtype(np.float16 if fp16 else np.float32)
        # layer name -> list of thunks returning float32 arrays (lazy; folding replaces them)
        self._blobs = {name: [(a if callable(a) else (lambda a=a: a)) for a in arrays] for name, arrays in blobs.items()}
        self._blob_shapes = {name: [tuple(np.shape(a)) for a in arrays] for name, arrays in blobs.items()}
        self._dyn = dyn or {}
        self.nodes = []
        self.inits: list[Init] = []
        self.node_names: set[str] = set()
        self.used: set[str] = set()
        self._names: dict[int, str] = {}
        self.inputs: list = []
        self.outputs: list = []
        self.folded_away: set[int] = set()           # id(Value) of values folding removed
        self._renames: dict[str, str] = {}
        self.free_dims: dict[int, dict[int, str]] = {}  # id(Value) -> {axis: symbolic name}
        self.custom_ops = custom_ops
        self.custom_nodes: list[str] = []            # layers emitted in CUSTOM_DOMAIN
        # --outputs: the values to compute (the latest version of each named blob)
        self.requested = select_outputs(graph, outputs) if outputs else None
        self._requested_ids = {id(v) for v in self.requested or []}

    # -- names --------------------------------------------------------------------------------
    def unique(self, base: str, pool: set | None = None) -> str:
        pool = self.used if pool is None else pool
        name, k = base, 1
        while name in pool:
            k += 1
            name = f"{base}_{k}"
        pool.add(name)
        return name

    def name_of(self, value) -> str:
        key = id(value)
        if key not in self._names:
            latest = self.graph.blob(value.name)
            base = value.name if latest is value else f"{value.name}@{value.version}"
            self._names[key] = self.unique(base)
        return self._names[key]

    def rename_output(self, old: str, new: str) -> None:
        """Make the node that writes `old` write `new` instead (the last step of a chain)."""
        for n in reversed(self.nodes):
            for i, o in enumerate(n.output):
                if o == old:
                    n.output[i] = new
                    return
        raise KeyError(old)

    def set_alias(self, value, name: str) -> None:
        self._names[id(value)] = name

    def dyn_of(self, value) -> tuple:
        shape = value.meta.get("shape") or ()
        return self._dyn.get(id(value), (False,) * len(shape))

    def blobs_of(self, node) -> list:
        return self._blobs.get(node.name, [])

    def blob_shapes_of(self, node) -> list:
        return self._blob_shapes.get(node.name, [])

    def add_init(self, base: str, shape, dtype, make) -> str:
        name = self.unique(base)
        self.inits.append(Init(name, tuple(int(d) for d in shape), np.dtype(dtype), make))
        return name

    # -- graph selection ----------------------------------------------------------------------
    def _is_source(self, node) -> bool:
        return bool(getattr(node.impl, "source", False)) or node.type == "Input"

    def _plan_folds(self, kept) -> dict:
        """conv/ip name -> Fold, for chains whose intermediate outputs nothing else reads."""
        from ..layers import norm
        plans = {}
        if not self.fold:
            return plans
        absorbed = set()
        for node in kept:
            if len(node.outputs) != 1 or len(node.inputs) != 1 or not norm.fold_target_ok(node):
                continue
            if node.name not in self._blobs:
                continue
            fold = Fold(node)
            cur = node
            while True:
                out = cur.outputs[0]
                cons = [c for c in out.consumers if id(c) in self._kept_ids]
                if len(cons) != 1 or len(out.consumers) != 1 or id(out) in self._requested_ids:
                    break
                nxt = cons[0]
                foldable = getattr(nxt.impl, "foldable", None)     # BatchNorm, Scale (layers/norm.py)
                if id(nxt) in absorbed or foldable is None or not foldable(nxt, self.graph.state.phase) or \
                        nxt.name not in self._blobs:
                    break
                fold.absorbed.append(nxt)
                absorbed.add(id(nxt))
                cur = nxt
            if fold.absorbed:
                plans[node.name] = fold
        return plans

    def build(self):
        """Lower every kept layer; fills self.nodes / inits / inputs / outputs."""
        from ..layers import norm
        graph = self.graph
        kept, dropped = [], []
        needed = ancestors(self.requested) if self.requested is not None else None
        gone = left_out(graph)       # training-only layers, and those that read what they compute
        for node in graph.nodes:
            if needed is not None and id(node) not in needed:
                continue
            (dropped if id(node) in gone else kept).append(node)
        # Net inputs: legacy `input:` values and the tops of Input/data layers that a kept layer reads.
        kept = [n for n in kept if not self._is_source(n)]
        self._kept_ids = {id(n) for n in kept}
        input_values = [v for v in graph.inputs if any(id(c) in self._kept_ids for c in v.consumers)]
        for v in input_values:
            self.name_of(v)
        # An input keeps its blob's name in the model: no later value (an in-place layer on the
        # input, as ShuffleNet's `data/bn`) may take it, or the model defines it twice.
        self.used.update(v.name for v in input_values)
        folds = self._plan_folds(kept)
        absorbed = {id(a): f for f in folds.values() for a in f.absorbed}
        for f in folds.values():
            target = f.target
            self._blobs[target.name] = norm.folded_blobs(target, f.absorbed, self.blobs_of(target),
                                                         [self.blobs_of(a) for a in f.absorbed])
            self._blob_shapes[target.name] = [self.blob_shapes_of(target)[0], (target.outputs[0].meta["shape"][1],)]
        errors = []
        blocked: dict[int, list] = {}     # id(Value) -> [the error of the layer it depends on, count]
        for node in kept:
            if id(node) in absorbed:
                continue
            cause = next((blocked[id(v)] for v in node.inputs if id(v) in blocked), None)
            if cause is not None:
                # A layer after one that cannot be exported: counted on that layer's error, not
                # reported once more for every layer down the net.
                cause[1] += 1
                for v in node.outputs:
                    blocked[id(v)] = cause
                continue
            g = Lowering(self, node)
            fn = _lowering_for(node)
            n_nodes, n_inits = len(self.nodes), len(self.inits)
            try:
                if fn is None and node.type == "Python":
                    g.fail("a Python layer runs user code, which netdef describes but never imports or converts",
                           notes=[NO_LOWERING_NOTE])
                if fn is None:
                    g.fail("netdef has no ONNX lowering for this layer type",
                           notes=[NO_LOWERING_NOTE, f"lowered types: {', '.join(sorted(lowered_types()))}"])
                if any(v.meta.get("shape") is None for v in node.inputs) or \
                        (fn is not None and any(v.meta.get("shape") is None for v in node.outputs)):
                    g.fail("the shapes of its bottoms or tops are unknown (see the diagnostics above)")
                if node.name in folds:
                    # The folded layer writes the last absorbed layer's output directly.
                    fold = folds[node.name]
                    last = fold.absorbed[-1].outputs[0]
                    self._names[id(node.outputs[0])] = self.name_of(last)
                    # The values between the layer and its last absorbed one no longer exist.
                    self.folded_away.add(id(node.outputs[0]))
                    self.folded_away.update(id(a.outputs[0]) for a in fold.absorbed[:-1])
                fn(node, g)
            except LowerError as e:
                unknown_tops = [v.name for v in node.outputs if v.meta.get("shape") is None]
                if self.custom_ops and not _shapes_missing(node) and unknown_tops:
                    e.diagnostic.notes.append(
                        "--custom-ops: a custom node's tops need shapes for the model to declare; give them with " +
                        ", ".join(f"--input {t}=..." for t in unknown_tops))
                if self.custom_ops and not _shapes_missing(node) and not unknown_tops:
                    # What the layer's own lowering added is discarded; one custom node replaces it.
                    del self.nodes[n_nodes:]
                    del self.inits[n_inits:]
                    self._custom_node(node)
                else:
                    errors.append(e.diagnostic)
                    entry = [e.diagnostic, 0]
                    for v in node.outputs:
                        blocked[id(v)] = entry
        for diag, later in {id(c[0]): c for c in blocked.values()}.values():
            if later:
                diag.notes.append(f"{later} later layer(s) read its tops and cannot be exported either")
        if errors:
            raise DiagnosticError(list(self.diags) + errors)
        # Outputs: values the lowered layers produce and none of them reads (a folded layer
        # produces its last absorbed layer's output).
        lowered = [n for n in kept if id(n) not in absorbed]
        consumed = {id(v) for n in lowered for v in n.inputs}
        outputs, seen = [], set()
        for node in lowered:
            produced = [folds[node.name].absorbed[-1].outputs[0]] if node.name in folds else node.outputs
            for v in produced:
                if id(v) not in consumed and id(v) not in seen:
                    outputs.append(v)
                    seen.add(id(v))
        if self.requested is not None:
            outputs = list(self.requested)
        for node in dropped:
            dangling = [v.name for v in node.inputs if any(v is o for o in outputs)]
            self.diags.add(left_out_diagnostic(node, gone[id(node)][1], dangling))
        if not outputs:
            where = graph.parsed.loc.span if graph.parsed is not None else None  # the whole file: 1:1
            raise DiagnosticError(list(self.diags) + [codes.EXPORT_EMPTY.at(where, net=graph.name or "the net")])
        self._finish_io(input_values, outputs)

    def _custom_node(self, node) -> None:
        """--custom-ops: the layer as one node of CUSTOM_DOMAIN, op type = the Caffe type."""
        from . import onnx_proto as helper
        ins = [self.name_of(v) for v in node.inputs]
        outs = [self.name_of(v) for v in node.outputs]
        self.nodes.append(helper.make_node(node.type, ins, outs, name=self.unique(node.name, self.node_names),
                                           domain=CUSTOM_DOMAIN, **custom_attributes(node)))
        self.custom_nodes.append(node.name)
        self.diags.add(codes.EXPORT_CUSTOM.at(node.span, layer=node.name, type=node.type, domain=CUSTOM_DOMAIN))

    def _finish_io(self, input_values, outputs):
        from . import onnx_proto as helper
        from .onnx_proto import TensorProto
        ftype = TensorProto.FLOAT16 if self.fp16 else TensorProto.FLOAT
        io_type = TensorProto.FLOAT16 if self.fp16_io else TensorProto.FLOAT

        def dims(v):
            if v.meta.get("shape") is None:
                return None          # a custom node's top whose shape netdef does not know
            dyn = self.dyn_of(v)
            free = self.free_dims.get(id(v), {})
            return [free.get(i, "batch" if d else int(s)) for i, (s, d) in enumerate(zip(v.meta["shape"], dyn))]

        pre, post = [], []
        renames: dict[str, str] = {}
        for v in input_values:
            public = v.name
            internal = self.name_of(v)
            if self.fp16 and not self.fp16_io:
                # float32 in, float16 inside: the cast's output takes the internal name.
                cast_out = self.unique(f"{public}@fp16")
                renames[internal] = cast_out
                pre.append(helper.make_node("Cast", [public], [cast_out], to=ftype,
                                            name=self.unique(f"{public}/to_float16", self.node_names)))
            elif internal != public:
                renames[internal] = public
            self.inputs.append(helper.make_tensor_value_info(public, io_type, dims(v)))
        for v in outputs:
            public = v.name
            internal = renames.get(self.name_of(v), self.name_of(v))
            if self.fp16 and not self.fp16_io:
                if internal == public:
                    internal = self.unique(f"{public}@fp16")
                    renames[public] = internal
                post.append(helper.make_node("Cast", [internal], [public], to=TensorProto.FLOAT,
                                             name=self.unique(f"{public}/to_float32", self.node_names)))
            elif internal != public:
                # A layer that vanished (Dropout) wrote this output: the Identity carries its name.
                layer = v.producer.name if v.producer is not None else public
                post.append(helper.make_node("Identity", [internal], [public], name=self.unique(layer, self.node_names)))
            self.outputs.append(helper.make_tensor_value_info(public, io_type, dims(v)))
        if renames:
            for n in self.nodes:
                for i, nm in enumerate(n.input):
                    if nm in renames:
                        n.input[i] = renames[nm]
                for i, nm in enumerate(n.output):
                    if nm in renames:
                        n.output[i] = renames[nm]
        self.nodes = pre + self.nodes + post
        self._renames = renames
        self.output_values = outputs

    def onnx_name(self, value) -> str | None:
        """The ONNX value holding `value` after export (None if folded away or unknown)."""
        nm = self._names.get(id(value))
        if nm is None:
            return None
        return self._renames.get(nm, nm)


def _lowering_for(node):
    return getattr(node.impl, "to_onnx", None) if node.impl is not None else None


def _shapes_missing(node) -> bool:
    return any(v.meta.get("shape") is None for v in node.inputs)


def export(source, weights=None, *, opset: int = DEFAULT_OPSET, batch=None, fp16: bool = False,
           fp16_io: bool = False, fold: bool = True, seed: int = 0, phase: str = "TEST", stages=(),
           level: int = 0, inputs: dict | None = None, max_errors: int = 100,
           allow_missing_weights: bool = False, outputs=None, custom_ops: bool = False, deploy: bool = False,
           batch_from: dict | None = None) -> Exported:
    """A definition (path, bundled name or parsed) with weights (.caffemodel path, WeightSet, or
    None for fillers seeded by `seed`) as an ONNX model. Raises DiagnosticError, also when the
    weights lack a layer with parameters (unless allow_missing_weights: fillers for it).
    `outputs` (blob names) exports only what computes them; `custom_ops` emits layers ONNX cannot
    express as CUSTOM_DOMAIN nodes. deploy, batch_from: see compile_for_export."""
    if opset not in OPSETS:
        raise UsageError(f"--opset {opset} is not supported (allowed: {OPSETS.start} to {OPSETS.stop - 1})")
    graph, dyn = compile_for_export(source, batch=batch, phase=phase, stages=stages, level=level,
                                    inputs=inputs, max_errors=max_errors, deploy=deploy, batch_from=batch_from,
                                    outputs=outputs)
    diags = Diagnostics(max_errors)
    diags.extend(graph.diagnostics)
    blobs = graph_weights(graph, weights, seed, diags, lazy=True, allow_missing_weights=allow_missing_weights)
    ex = Exporter(graph, blobs, opset=opset, fp16=fp16, fp16_io=fp16_io, fold=fold, dyn=dyn, diags=diags,
                  outputs=outputs, custom_ops=custom_ops)
    ex.build()
    return Exported(ex, graph.name)

