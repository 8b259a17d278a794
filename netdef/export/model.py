"""The exported model: opsets and IR version, metadata, and the file written with each weight
made only when reached (Exported.chunks), so that the model is never held twice.
"""
from __future__ import annotations

import math

import numpy as np

from ..diagnostics import CliError, UsageError
from ..version import __version__
from ..wire import encode_varint, field_key

OPSETS = range(13, 22)
CUSTOM_DOMAIN = "netdef.caffe"   # --custom-ops: layers ONNX cannot express, parameters as attributes
DEFAULT_OPSET = 17


def ir_version_for(opset: int) -> int:
    """The oldest IR version that knows `opset` (onnx.helper.VERSION_TABLE). Newer onnx
    releases stamp their own, newer IR, which older runtimes (onnxruntime 1.31 included)
    refuse; the oldest one that carries the opset loads everywhere the opset does."""
    from .onnx_proto import IR_VERSION_FOR_OPSET
    if opset not in IR_VERSION_FOR_OPSET:
        raise UsageError(f"opset {opset} is not supported (allowed: {OPSETS.start} to {OPSETS.stop - 1})")
    return IR_VERSION_FOR_OPSET[opset]


class InvalidModel(RuntimeError):
    """The exported model would fail onnx.checker (Exported.check): a bug in netdef (a lowering
    or the exporter wired the graph wrong), never a fault of the definition. The CLI reports it
    as an internal error (exit 3), and nothing is written."""


class Exported:
    """The model of a built Exporter `ex`: a ModelProto skeleton (nodes, inputs, outputs,
    value_info, metadata) plus ex.inits, lazy initializers made one at a time when written."""

    def __init__(self, ex, name: str):
        from . import onnx_proto as helper
        self.exporter = ex
        self.diagnostics = ex.diags
        graph = helper.make_graph(ex.nodes, name or "net", ex.inputs, ex.outputs)
        opsets = [helper.make_opsetid("", ex.opset)]
        if ex.custom_nodes:
            opsets.append(helper.make_opsetid(CUSTOM_DOMAIN, 1))
        self.skeleton = helper.make_model(graph, producer_name="netdef", producer_version=__version__,
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

    def _init_header(self, init) -> bytes:
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
        """The model file's bytes (what run, bench and verify give onnxruntime), checked first."""
        self.check()
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

    def check(self) -> None:
        """The graph's wiring as onnx.checker.check_model checks it, before the model's bytes are
        made (write, to_bytes): every value a node reads is a graph input, an initializer or an
        earlier node's output (topological order), every value is defined once, every graph
        output is computed. Done
        here, without onnx: `netdef export` never imports it (importing onnx costs more than a
        small net's whole export; benchmarks/RESULTS.md), and the operators' schemas are pinned
        by the tests, which run onnx's full check on every exportable zoo net. Raises
        InvalidModel (a bug in netdef, not in the definition)."""
        g = self.skeleton.graph
        defined: dict[str, str] = {}
        problems: list[str] = []

        def define(name, what):
            if name in defined:
                problems.append(f"'{name}' is defined twice ({defined[name]} and {what})")
            defined.setdefault(name, what)

        for v in g.input:
            define(v.name, "a graph input")
        for init in self.inits:
            define(init.name, "an initializer")
        for n in g.node:
            for x in n.input:
                if x and x not in defined:     # "" is an optional input left out
                    problems.append(f"node '{n.name}' ({n.op_type}) reads '{x}', which no graph input, "
                                    "initializer or earlier node defines")
            for y in n.output:
                if y:
                    define(y, f"node '{n.name}' ({n.op_type})")
        problems += [f"graph output '{v.name}' is computed by no node" for v in g.output if v.name not in defined]
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise InvalidModel(f"the exported model is not valid ONNX, so it was not written: {problems[0]}{more}")

    def write(self, path: str) -> int:
        from ..outputs import atomic_path
        self.check()
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


def model_metadata(ex) -> dict[str, str]:
    """metadata_props of an exported model: where it came from and what its inputs expect.

    netdef.source, netdef.version; caffe.net, caffe.phase; caffe.inputs (JSON: the Caffe input
    blobs, by name, with their shapes); caffe.transform_param (JSON, where the net's data layers
    have one: layer -> the fields set). Caffe's DataTransformer computes each input value as
    (pixel - mean) * scale, after cropping to crop_size (BVLC/caffe src/caffe/data_transformer.cpp,
    DataTransformer::Transform): the exported model starts after that step, so whoever feeds it
    must do the same, with these numbers."""
    import json
    graph = ex.graph
    meta = {"netdef.version": __version__}
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

