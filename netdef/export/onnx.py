"""IR -> ONNX: a deploy graph of standard operators, with Caffe's semantics.

    ex = export("resnet50", weights="resnet50.caffemodel", opset=17, batch="dynamic")
    ex.write("resnet50.onnx")        # atomic; initializers streamed one at a time
    ex.model()                       # an onnx.ModelProto (materialises every weight)

Each layer family lowers itself (`to_onnx(node, g)` beside its shape rule in netdef/layers/);
this module drives them: it chooses value names (blob names survive; an in-place rewrite gets
`name@version` for the earlier versions), drops training-only layers, folds BatchNorm/Scale
into the convolution or inner product before them, adds fp16 casts and a symbolic batch, and
writes the file. Weights stay lazy until the writer needs them, so the model is never held
twice: exporting costs the weights' size once, plus the largest tensor.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from .. import codes
from ..diagnostics import CliError, DiagnosticError, Diagnostics, UsageError
from ..wire import encode_varint, field_key
from ..cli.select import reporting
from ..layers.base import training_only_types
from .lowering import CUSTOM_DOMAIN, NO_LOWERING_NOTE, Init, LowerError, Lowering, lowered_types

OPSETS = range(13, 22)
DEFAULT_OPSET = 17
TRAINING_ONLY = training_only_types()    # the layer classes' `training_only` flag


def ir_version_for(opset: int) -> int:
    """The oldest IR version that knows `opset` (onnx.helper.VERSION_TABLE). Newer onnx
    releases stamp their own, newer IR, which older runtimes (onnxruntime 1.31 included)
    refuse; the oldest one that carries the opset loads everywhere the opset does."""
    from .onnx_proto import IR_VERSION_FOR_OPSET
    if opset not in IR_VERSION_FOR_OPSET:
        raise UsageError(f"opset {opset} is not supported (allowed: {OPSETS.start} to {OPSETS.stop - 1})")
    return IR_VERSION_FOR_OPSET[opset]


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
    def _is_dropped(self, node) -> bool:
        return is_training_only(node)

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
        needed = _ancestors(self.requested) if self.requested is not None else None
        for node in graph.nodes:
            if needed is not None and id(node) not in needed:
                continue
            (dropped if self._is_dropped(node) else kept).append(node)
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
            notes = [f"'{b}' becomes an output of the exported graph" for b in dict.fromkeys(dangling)]
            self.diags.add(codes.EXPORT_DROPPED.at(node.span, layer=node.name, type=node.type, notes=notes))
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


def select_outputs(graph, names) -> list:
    """--outputs: the latest version of each named blob, produced by a layer the export keeps.
    A name the net does not have is a usage error naming the close ones."""
    import difflib
    chosen = []
    known = graph.blob_names
    for name in names:
        v = graph.blob(name)
        if v is None:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
                f" (its blobs: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})"
            raise UsageError(f"--outputs: the net has no blob '{name}'{hint}")
        if v.producer is None or getattr(v.producer.impl, "source", False) or v.producer.type == "Input":
            raise UsageError(f"--outputs: '{name}' is an input of the net, not a blob a layer computes")
        if is_training_only(v.producer):
            raise UsageError(f"--outputs: '{name}' is computed by '{v.producer.name}' ({v.producer.type}), "
                             "a training-only layer the export leaves out")
        if all(v is not c for c in chosen):
            chosen.append(v)
    return chosen


def _ancestors(values) -> set:
    """id() of every layer the values depend on. A layer that reads only its bottoms' shapes
    (PriorBox: reads_values = False) does not need their producers."""
    seen, stack = set(), [v.producer for v in values if v.producer is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if getattr(node.impl, "reads_values", True) is False:
            continue
        stack.extend(v.producer for v in node.inputs if v.producer is not None)
    return seen


def _attr_value(v):
    """A parameter value as an ONNX attribute value (None when it has no attribute form)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float, str, bytes)):
        return v
    return None


def custom_attributes(node) -> dict:
    """The layer's parameters, flattened to 'message.field' attributes: the schema's parameter
    messages that are set (python_param.module, ...) and the fork fields netdef keeps as data."""
    from google.protobuf.descriptor import FieldDescriptor as FD
    attrs: dict = {}

    def put(key, values):
        vals = [_attr_value(x) for x in values]
        vals = [x for x in vals if x is not None]
        if not vals:
            return
        if all(isinstance(x, int) for x in vals) or all(isinstance(x, (int, float)) for x in vals) or \
                all(isinstance(x, (str, bytes)) for x in vals):
            if any(isinstance(x, float) for x in vals):
                vals = [float(x) for x in vals]
            attrs[key] = vals[0] if len(vals) == 1 else vals

    def walk_msg(prefix, msg):
        for fd, value in msg.ListFields():
            key = f"{prefix}.{fd.name}"
            items = list(value) if fd.is_repeated else [value]
            if fd.type == FD.TYPE_MESSAGE:
                for i, item in enumerate(items):
                    walk_msg(key if len(items) == 1 else f"{key}.{i}", item)
            elif fd.type == FD.TYPE_ENUM:
                put(key, [fd.enum_type.values_by_number[x].name if x in fd.enum_type.values_by_number else x
                          for x in items])
            else:
                put(key, items)

    def walk_extra(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk_extra(f"{prefix}.{k}", v)
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for i, item in enumerate(value):
                walk_extra(prefix if len(value) == 1 else f"{prefix}.{i}", item)
        elif isinstance(value, list):
            put(prefix, value)
        else:
            put(prefix, [value])

    skip = {"name", "type", "bottom", "top", "phase", "include", "exclude", "loss_weight", "param",
            "blobs", "propagate_down"}
    for fd, value in node.param.ListFields():
        if fd.name in skip:
            continue
        if fd.type == FD.TYPE_MESSAGE and not fd.is_repeated:
            walk_msg(fd.name, value)
    for fname, value in (node.extra or {}).items():
        walk_extra(fname, value)
    return attrs


# --- the result: a model held as a skeleton plus lazy initializers ----------------------------

class Exported:
    def __init__(self, ex: Exporter, name: str):
        from . import onnx_proto as helper
        self.exporter = ex
        self.diagnostics = ex.diags
        graph = helper.make_graph(ex.nodes, name or "net", ex.inputs, ex.outputs)
        opsets = [helper.make_opsetid("", ex.opset)]
        if ex.custom_nodes:
            opsets.append(helper.make_opsetid(CUSTOM_DOMAIN, 1))
        self.skeleton = helper.make_model(graph, producer_name="netdef", producer_version=_version(),
                                          opset_imports=opsets)
        self.skeleton.ir_version = ir_version_for(ex.opset)
        self.inits = ex.inits
        self._add_value_info()
        for key, value in model_metadata(ex).items():
            self.skeleton.metadata_props.add(key=key, value=value)

    def _add_value_info(self) -> None:
        """A value_info entry (type and shape, batch symbolic where dynamic) for every Caffe
        blob that is an intermediate value of the model, so that viewers (Netron) and tools
        show the shapes between layers without running shape inference."""
        from . import onnx_proto as helper
        from .onnx_proto import TensorProto
        ex = self.exporter
        graph = self.skeleton.graph
        io = {v.name for v in graph.input} | {v.name for v in graph.output}
        values = {}
        for node in ex.graph.nodes:
            for v in node.outputs:
                values[id(v)] = v
        for v in ex.graph.inputs:
            values[id(v)] = v
        elem = TensorProto.FLOAT16 if ex.fp16 else TensorProto.FLOAT
        seen = set()
        for key, name in self.value_map().items():
            v = values.get(key)
            if v is None or name in io or name in seen or v.meta.get("shape") is None:
                continue
            seen.add(name)
            free = ex.free_dims.get(key, {})
            dims = [free.get(i, "batch" if d else int(n)) for i, (n, d) in enumerate(zip(v.meta["shape"], ex.dyn_of(v)))]
            graph.value_info.append(helper.make_tensor_value_info(name, elem, dims))

    def _init_header(self, init: Init) -> bytes:
        from . import onnx_proto as helper
        from .onnx_proto import TensorProto
        t = TensorProto(name=init.name, data_type=helper.np_dtype_to_tensor_dtype(init.dtype))
        t.dims.extend(init.shape)
        return t.SerializeToString()

    def chunks(self):
        """The model file as a sequence of byte chunks; each weight is made when reached."""
        # ModelProto.graph (7) holds GraphProto.initializer (5) entries: the graph message is
        # written as its skeleton's fields followed by one initializer field per tensor.
        graph_bytes = self.skeleton.graph.SerializeToString()
        model = type(self.skeleton)()
        model.CopyFrom(self.skeleton)
        model.ClearField("graph")
        heads = []
        total = len(graph_bytes)
        for init in self.inits:
            head = self._init_header(init)
            raw_key = field_key(9, 2) + encode_varint(init.nbytes)
            body = len(head) + len(raw_key) + init.nbytes
            outer = field_key(5, 2) + encode_varint(body)
            heads.append((outer + head + raw_key, init))
            total += len(outer) + body
        yield model.SerializeToString()
        yield field_key(7, 2) + encode_varint(total)
        yield graph_bytes
        from ..progress import Progress
        # Weights are made (filled or converted) here, one tensor at a time: the long part of
        # exporting a large net, so a progress line on a terminal.
        with Progress("export: weights", total=len(heads)) as prog:
            for head, init in heads:
                yield head
                arr = np.asarray(init.make(), dtype=init.dtype.newbyteorder("<"), order="C")
                if arr.shape != init.shape:
                    raise AssertionError(f"initializer {init.name}: shape {arr.shape}, expected {init.shape}")
                yield memoryview(arr).cast("B")
                prog.update(detail=init.name)

    def to_bytes(self) -> bytes:
        return b"".join(bytes(c) for c in self.chunks())

    def model(self, with_weights: bool = True):
        """The model as an onnx.ModelProto (this imports onnx; `skeleton` is netdef's own
        message of the same schema). with_weights=False declares the float weights as
        typed graph inputs instead (shape constants stay): the structure and every shape
        without the data, for checking or inspecting large nets cheaply."""
        import onnx
        if with_weights:
            return onnx.load_from_string(self.to_bytes())
        from onnx import helper, numpy_helper
        m = onnx.load_from_string(self.skeleton.SerializeToString())
        for init in self.inits:
            if init.dtype == np.int64 or math.prod(init.shape) <= 16:
                t = numpy_helper.from_array(np.asarray(init.make(), init.dtype).reshape(init.shape), init.name)
                m.graph.initializer.append(t)
            else:
                m.graph.input.append(helper.make_tensor_value_info(
                    init.name, helper.np_dtype_to_tensor_dtype(init.dtype), list(init.shape)))
        return m

    def write(self, path: str) -> int:
        from ..outputs import atomic_path
        n = 0
        with atomic_path(path) as tmp:
            try:
                with open(tmp, "wb") as f:
                    for chunk in self.chunks():
                        f.write(chunk)
                        n += len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
            except OSError as e:
                raise CliError(f"cannot write {path}: {e.strerror or e}") from None
        return n

    def value_map(self) -> dict[int, str]:
        """id(IR Value) -> ONNX value name, for every value that exists in the model."""
        ex = self.exporter
        present = {o for n in self.skeleton.graph.node for o in n.output} | {i.name for i in self.skeleton.graph.input}
        out = {}
        for key, nm in ex._names.items():
            if key in ex.folded_away:
                continue
            nm = ex._renames.get(nm, nm)
            if nm in present:
                out[key] = nm
        return out


def _version() -> str:
    from .. import __version__
    return __version__


def model_metadata(ex: "Exporter") -> dict[str, str]:
    """metadata_props of an exported model: where it came from and what its inputs expect.

    netdef.source, netdef.version; caffe.net, caffe.phase; caffe.inputs (JSON: the Caffe input
    blobs, by name, with their shapes); caffe.transform_param (JSON, where the net's data layers
    have one: layer -> the fields set). Caffe's DataTransformer computes each input value as
    (pixel - mean) * scale, after cropping to crop_size (BVLC/caffe src/caffe/data_transformer.cpp,
    DataTransformer::Transform): the exported model starts after that step, so whoever feeds it
    must do the same, with these numbers."""
    import json
    graph = ex.graph
    meta = {"netdef.version": _version()}
    if graph.parsed is not None:
        meta["netdef.source"] = graph.parsed.source.path
    if graph.name:
        meta["caffe.net"] = graph.name
    meta["caffe.phase"] = graph.state.phase if hasattr(graph.state, "phase") else str(graph.state)
    inputs = [{"name": i.name, "shape": [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]}
              for i in ex.inputs]
    meta["caffe.inputs"] = json.dumps(inputs)
    from ..fmt import format_float32

    def plain(value):
        # float32 fields as their shortest decimal (1/255 as 0.003921569, not 0.0039215688593685627)
        return float(format_float32(value)) if isinstance(value, float) else value

    transforms = {}
    for node in graph.nodes:
        if not node.param.HasField("transform_param"):
            continue
        tp = node.param.transform_param
        fields = {}
        for fd, value in tp.ListFields():
            scalar = isinstance(value, (str, bytes, int, float, bool))
            fields[fd.name] = plain(value) if scalar else [plain(x) for x in value]
        fields.setdefault("scale", plain(tp.scale))
        fields["tops"] = list(node.param.top)
        transforms[node.name] = fields
    if transforms:
        meta["caffe.transform_param"] = json.dumps(transforms)
    return meta


# --- the driver ------------------------------------------------------------------------------

def _load(source, max_errors: int = 100):
    if isinstance(source, (str, os.PathLike)):
        from ..pipeline import load
        from ..source import SourceError
        try:
            return load(os.fspath(source), max_errors=max_errors)
        except SourceError as e:
            raise DiagnosticError([e.diagnostic()]) from None  # E100 at the offending byte (or 1:1)
    return source


def _compile(parsed, phase, stages, level, inputs, max_errors):
    from ..pipeline import compile as compile_net
    graph = compile_net(parsed, phase=phase, stages=tuple(stages), level=level, inputs=inputs or None,
                        max_errors=max_errors)
    if graph.diagnostics.has_errors:
        raise DiagnosticError(list(graph.diagnostics))
    return graph


def _with_batch(graph, inputs, batch: int) -> dict:
    shapes = dict(inputs or {})
    for v in graph.inputs:
        s = v.meta.get("shape")
        if s:
            shapes[v.name] = (batch,) + tuple(shapes.get(v.name, s))[1:]
    return shapes


def is_training_only(node) -> bool:
    """Losses, Accuracy, Silence...: a deploy graph leaves them out. A Python layer whose tops
    all carry a loss_weight is a loss computed by user code: left out too."""
    if node.type == "Python" and node.param.loss_weight and all(w != 0 for w in node.param.loss_weight):
        return True
    return bool(getattr(node.impl, "training_only", False))


def _need_shapes(graph, what: str) -> None:
    """The inputs the exported graph reads need shapes (labels, read only by losses, do not);
    a layer whose shapes are still unknown is reported when it is lowered."""
    needed = [v for v in graph.inputs if any(not is_training_only(c) for c in v.consumers)]
    for v in needed:
        if v.meta.get("shape") is None:
            notes = ["give the shapes of the net's inputs with --input NAME=N,C,H,W"] if any(
                v2.meta.get("shape") is None for v2 in graph.inputs) else []
            raise DiagnosticError(list(graph.diagnostics) + [codes.SHAPES_UNKNOWN.at(
                v.producer.span if v.producer is not None else None, blob=v.name, what=what, notes=notes)])


def deploy_view(parsed, phase="TEST", stages=(), level=0):
    """(parsed, notes, orphans): the net without the layers a deploy graph leaves out (losses,
    Accuracy, Silence, ...; is_training_only), removed before analysis, so that the labels they
    compare with the prediction need no shape and an input of another batch or size does not
    fail in a loss layer. notes: W511 warnings for the layers removed; orphans: the blobs only
    they read (labels), whose 'never used' warnings say nothing about the deploy graph. The net
    as it is when a kept layer reads what a removed one computes (nothing is removed then)."""
    import dataclasses

    from ..build import build
    from ..transform import Loc
    graph = build(parsed, phase, stages, level, diagnostics=Diagnostics())
    dropped = [n for n in graph.nodes if is_training_only(n)]
    if not dropped or graph.diagnostics.has_errors:
        return parsed, [], set()
    gone = {id(v) for n in dropped for v in n.outputs}
    if any(id(v) in gone for n in graph.nodes if not is_training_only(n) for v in n.inputs):
        return parsed, [], set()
    drop = {n.index for n in dropped}
    msg = type(parsed.message)()
    msg.CopyFrom(parsed.message)
    del msg.layer[:]
    msg.layer.extend(lp for i, lp in enumerate(parsed.message.layer) if i not in drop)
    loc = parsed.loc
    if loc is not None:
        new = Loc(loc.source, loc.name_start, loc.head_end)
        new.end, new.extra, new.fields = loc.end, loc.extra, dict(loc.fields)
        if "layer" in new.fields:
            new.fields["layer"] = [e for i, e in enumerate(new.fields["layer"]) if i not in drop]
        loc = new
    kept_reads = {id(v) for n in graph.nodes if not is_training_only(n) for v in n.inputs}
    notes = [codes.EXPORT_DROPPED.at(n.span, layer=n.name, type=n.type, notes=[
        f"'{v.name}' becomes an output of the exported graph" for v in dict.fromkeys(n.inputs)
        if v.producer is not None and not is_training_only(v.producer) and id(v) not in kept_reads
        and not getattr(v.producer.impl, "source", False) and v.producer.type != "Input"])
        for n in dropped]
    orphans = {v.name for n in dropped for v in n.inputs if id(v) not in kept_reads}
    return dataclasses.replace(parsed, message=msg, loc=loc), notes, orphans


def batch_of_arrays(graph, shapes: dict) -> int | None:
    """The batch that input arrays of these shapes give the net: the first dimension of the
    arrays for inputs whose declared first dimension is the net's batch (an ROI list's row
    count is not a batch), which must agree. None when no such array is given."""
    batch = graph.batch_size
    found = {}
    for v in graph.inputs:
        declared = v.meta.get("shape")
        given = shapes.get(v.name)
        if declared and given and declared[0] == batch and len(given) == len(declared):
            found[v.name] = int(given[0])
    if len(set(found.values())) > 1:
        shown = ", ".join(f"'{n}' {b}" for n, b in found.items())
        raise CliError(f"the input arrays disagree on the batch (their first dimension): {shown}")
    b = next(iter(found.values()), None)
    if b is not None and b < 1:
        raise CliError(f"the array for '{next(iter(found))}' is empty (its first dimension is 0)")
    return b


def compile_for_export(source, *, batch=None, phase="TEST", stages=(), level=0, inputs=None, max_errors=100,
                       what: str = "exported", deploy: bool = False, batch_from: dict | None = None):
    """(graph, dyn): the analysed graph at the requested batch, and for a dynamic batch which
    dimension of every value follows it (found by analysing the net at two batch sizes).
    deploy: analyse deploy_view(parsed) (its W511 warnings join the graph's diagnostics).
    batch_from: {input name: shape} of the arrays to be fed; without `batch`, the batch they
    give (batch_of_arrays)."""
    parsed = _load(source, max_errors)
    dropped, orphans = [], set()
    if deploy and getattr(parsed, "kind", None) == "net" and parsed.syntax_ok:
        parsed, dropped, orphans = deploy_view(parsed, phase, stages, level)

    def _compile_view(inputs):
        graph = _compile(parsed, phase, stages, level, inputs, max_errors)
        if orphans:
            graph.diagnostics.items = [d for d in graph.diagnostics if not (
                d.code == codes.UNUSED_TOP.id and any(d.message.startswith(f"top '{b}' ") for b in orphans))]
        graph.diagnostics.extend(dropped)
        return graph
    graph = _compile_view(inputs)
    if batch is None and batch_from:
        batch = batch_of_arrays(graph, batch_from)
    _need_shapes(graph, what)
    dyn = {}
    if batch is None:
        return graph, dyn
    if not graph.inputs or any(not v.meta.get("shape") for v in graph.inputs):
        raise DiagnosticError([codes.EXPORT_BATCH.at(None, why="the net's inputs have no shapes")])
    if batch == "dynamic":
        base = graph.batch_size or 1
        other = _compile(parsed, phase, stages, level, _with_batch(graph, inputs, base + 3), max_errors)
        if len(other.values) != len(graph.values):
            raise DiagnosticError([codes.EXPORT_BATCH.at(None, why="the graph changes with the batch size")])
        for a, b in zip(graph.values, other.values):
            sa, sb = a.meta.get("shape"), b.meta.get("shape")
            if sa is not None and sb is not None and len(sa) == len(sb):
                dyn[id(a)] = tuple(x != y for x, y in zip(sa, sb))
        return graph, dyn
    if int(batch) < 1:
        raise UsageError(f"--batch must be a positive number or 'dynamic', got {batch}")
    if graph.batch_size != int(batch):
        graph = _compile_view(_with_batch(graph, inputs, int(batch)))
    return graph, dyn


def param_specs(graph):
    from ..weights import ParamSpec
    specs, owners, clashes = [], {}, []
    for n in graph.nodes:
        shapes = [tuple(s) for s in n.meta.get("blobs") or []]
        if not shapes:
            continue
        # Blobs are keyed by layer name (as in a .caffemodel): two layers with parameters and
        # one name would receive each other's arrays (a BatchNorm got a Convolution's).
        first = owners.setdefault(n.name, n)
        if first is not n:
            clashes.append(codes.SAME_NAME_PARAMS.at(
                n.span, layer=n.name, type=n.type, other=first.type, line=first.span.line if first.span else "?",
                related=[(first.span, "the other layer")] if first.span else [], notes=["rename one of them"]))
        fillers = list(n.impl.filler_params(n)) if n.impl is not None else []
        stats = frozenset(n.impl.stat_blobs(n)) if n.impl is not None else frozenset()
        specs.append(ParamSpec(n.name, n.type, n.span, shapes, fillers, stats=stats))
    if clashes:
        raise DiagnosticError(clashes)
    return specs


def graph_weights(graph, weights=None, seed: int = 0, diags: Diagnostics | None = None, lazy: bool = False,
                  allow_missing_weights: bool = False) -> dict:
    """Every layer's blobs for `graph`: from a .caffemodel path or WeightSet, else fillers
    (weights.Lazy blobs, made when written, with lazy=True)."""
    from ..weights import WeightSet, read_caffemodel, resolve_weights
    diags = diags if diags is not None else Diagnostics()
    ws = weights
    if isinstance(weights, (str, os.PathLike)):
        ws = read_caffemodel(weights)
    elif weights is not None and not isinstance(weights, WeightSet):
        raise TypeError("weights must be a path or a WeightSet")
    blobs = resolve_weights(param_specs(graph), ws, seed, diags, lazy, allow_missing=allow_missing_weights)
    if diags.has_errors:
        raise DiagnosticError(list(diags))
    return blobs


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
                                    inputs=inputs, max_errors=max_errors, deploy=deploy, batch_from=batch_from)
    diags = Diagnostics(max_errors)
    diags.extend(graph.diagnostics)
    blobs = graph_weights(graph, weights, seed, diags, lazy=True, allow_missing_weights=allow_missing_weights)
    ex = Exporter(graph, blobs, opset=opset, fp16=fp16, fp16_io=fp16_io, fold=fold, dyn=dyn, diags=diags,
                  outputs=outputs, custom_ops=custom_ops)
    ex.build()
    return Exported(ex, graph.name)


def parse_outputs(value) -> list[str] | None:
    """--outputs BLOB[,BLOB...] (repeatable) -> blob names, in order, without repeats."""
    if not value:
        return None
    names = []
    for item in value if isinstance(value, (list, tuple)) else [value]:
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                raise UsageError(f"--outputs expects blob names separated by commas, got '{item}'")
            if name not in names:
                names.append(name)
    return names


def parse_batch(value):
    if value is None:
        return None
    if str(value).lower() == "dynamic":
        return "dynamic"
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"--batch expects a number or 'dynamic', got '{value}'") from None
    if n < 1:
        raise UsageError(f"--batch must be at least 1, got {n}")
    return n


def export_from_args(args, batch=None, **overrides) -> Exported:
    """Export with the network-state options every net command shares; prints the
    diagnostics worth showing (report.print_report)."""
    from ..cli.select import print_report
    kw = dict(opset=getattr(args, "opset", DEFAULT_OPSET), fp16=getattr(args, "fp16", False),
              fp16_io=getattr(args, "fp16_io", False), fold=getattr(args, "fold", True),
              seed=getattr(args, "seed", 0), phase=args.phase, stages=tuple(args.stage), level=args.level,
              inputs=args.inputs, max_errors=getattr(args, "max_errors", 100),
              allow_missing_weights=getattr(args, "allow_missing_weights", False),
              outputs=parse_outputs(getattr(args, "outputs", None)), custom_ops=getattr(args, "custom_ops", False))
    kw.update(overrides)
    ex = export(args.file, getattr(args, "weights", None), batch=parse_batch(batch), **kw)
    print_report(ex.diagnostics, args)
    return ex


@reporting
def cmd_export(args) -> int:
    from ..outputs import check_writable
    check_writable(args.output)
    ex = export_from_args(args, batch=args.batch)
    n = ex.write(args.output)
    g = ex.skeleton.graph
    from ..cli import output as cli
    if cli.json_mode:
        cli.emit_json(args, {"ok": True, "wrote": args.output, "bytes": n, "opset": ex.exporter.opset,
                             "nodes": len(g.node), "initializers": len(ex.inits),
                             "inputs": [i.name for i in g.input], "outputs": [o.name for o in g.output]})
        return 0
    cli.info(f"wrote {args.output}: opset {ex.exporter.opset}, {len(g.node)} nodes, "
             f"{len(ex.inits)} initializers, {n / 1e6:.1f} MB")
    return 0
