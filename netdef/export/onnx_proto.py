"""Building ONNX messages without importing the onnx package.

The messages are netdef's own generated classes for ONNX's schema (netdef/proto/netdef_onnx.proto:
the same field names and numbers, so the bytes are those of an onnx.ModelProto). The builders
below behave like the onnx.helper functions of the same names, for the cases netdef uses:
`import onnx` costs about 1.7 s (it loads ml_dtypes' extension module), about five times
all the rest of a small export. onnx itself is still what the tests use to check the models.
"""
from __future__ import annotations

import numbers

from ..proto.netdef_onnx_pb2 import (AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
                                     StringStringEntryProto, TensorProto, TypeProto, ValueInfoProto)

__all__ = ["AttributeProto", "GraphProto", "ModelProto", "NodeProto", "OperatorSetIdProto", "StringStringEntryProto",
           "TensorProto", "TypeProto", "ValueInfoProto", "IR_VERSION_FOR_OPSET", "make_attribute", "make_graph",
           "make_model", "make_node", "make_opsetid", "make_tensor_value_info", "np_dtype_to_tensor_dtype"]

# The oldest ONNX IR version that carries each opset: the first row of onnx's release table
# (onnx/helper.py, VERSION_TABLE: release, IR version, ai.onnx opset, ...) whose opset reaches it.
# Pinned against the installed onnx by tests/test_startup.py.
IR_VERSION_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}

_NP_TO_ONNX = {"float32": TensorProto.FLOAT, "uint8": TensorProto.UINT8, "int8": TensorProto.INT8,
               "uint16": TensorProto.UINT16, "int16": TensorProto.INT16, "int32": TensorProto.INT32,
               "int64": TensorProto.INT64, "bool": TensorProto.BOOL, "float16": TensorProto.FLOAT16,
               "float64": TensorProto.DOUBLE, "uint32": TensorProto.UINT32, "uint64": TensorProto.UINT64}


def np_dtype_to_tensor_dtype(dtype) -> int:
    name = getattr(dtype, "name", None) or str(dtype)
    try:
        return _NP_TO_ONNX[name]
    except KeyError:
        raise ValueError(f"no ONNX tensor type for numpy dtype {name}") from None


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral)  # bool and numpy integers included, as in onnx.helper


def make_attribute(name: str, value) -> AttributeProto:
    """An attribute typed from its Python value: int -> INT, float -> FLOAT, str/bytes ->
    STRING, TensorProto/GraphProto, and lists of those (a list mixing ints and floats is FLOATS)."""
    attr = AttributeProto(name=name)
    if isinstance(value, numbers.Integral):
        attr.i, attr.type = int(value), AttributeProto.INT
    elif isinstance(value, numbers.Real):
        attr.f, attr.type = float(value), AttributeProto.FLOAT
    elif isinstance(value, (str, bytes)):
        attr.s, attr.type = value.encode() if isinstance(value, str) else value, AttributeProto.STRING
    elif isinstance(value, TensorProto):
        attr.t.CopyFrom(value)
        attr.type = AttributeProto.TENSOR
    elif isinstance(value, GraphProto):
        attr.g.CopyFrom(value)
        attr.type = AttributeProto.GRAPH
    else:
        try:
            items = list(value)
        except TypeError:
            raise ValueError(f"attribute {name}: cannot store a {type(value).__name__}") from None
        if not items:
            raise ValueError(f"attribute {name}: an empty list has no type")
        if all(_is_int(v) for v in items):
            attr.ints.extend(int(v) for v in items)
            attr.type = AttributeProto.INTS
        elif all(isinstance(v, numbers.Real) for v in items):
            attr.floats.extend(float(v) for v in items)
            attr.type = AttributeProto.FLOATS
        elif all(isinstance(v, (str, bytes)) for v in items):
            attr.strings.extend(v.encode() if isinstance(v, str) else v for v in items)
            attr.type = AttributeProto.STRINGS
        elif all(isinstance(v, TensorProto) for v in items):
            attr.tensors.extend(items)
            attr.type = AttributeProto.TENSORS
        elif all(isinstance(v, GraphProto) for v in items):
            attr.graphs.extend(items)
            attr.type = AttributeProto.GRAPHS
        else:
            raise ValueError(f"attribute {name}: a list of mixed types")
    return attr


def make_node(op_type: str, inputs, outputs, name: str | None = None, doc_string: str | None = None,
              domain: str | None = None, **attrs) -> NodeProto:
    node = NodeProto(op_type=op_type, input=list(inputs), output=list(outputs))
    if name:
        node.name = name
    if doc_string:
        node.doc_string = doc_string
    if domain is not None:
        node.domain = domain
    node.attribute.extend(make_attribute(k, v) for k, v in sorted(attrs.items()) if v is not None)
    return node


def make_tensor_value_info(name: str, elem_type: int, shape) -> ValueInfoProto:
    """shape: None (unknown rank), or dims each an int (a size), a str (a symbolic size) or None."""
    vi = ValueInfoProto(name=name)
    tensor = vi.type.tensor_type
    tensor.elem_type = elem_type
    if shape is not None:
        tensor.shape.SetInParent()  # a scalar's shape is present, with no dims
        for d in shape:
            dim = tensor.shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            elif d is not None:
                dim.dim_value = int(d)
    return vi


def make_graph(nodes, name: str, inputs, outputs, initializer=None, doc_string: str | None = None,
               value_info=()) -> GraphProto:
    graph = GraphProto(name=name)
    graph.node.extend(nodes)
    graph.input.extend(inputs)
    graph.output.extend(outputs)
    graph.initializer.extend(initializer or [])
    graph.value_info.extend(value_info)
    if doc_string:
        graph.doc_string = doc_string
    return graph


def make_opsetid(domain: str, version: int) -> OperatorSetIdProto:
    return OperatorSetIdProto(domain=domain, version=version)


def make_model(graph: GraphProto, *, opset_imports, ir_version: int | None = None, **fields) -> ModelProto:
    """fields: producer_name, producer_version, domain, model_version, doc_string."""
    model = ModelProto(**fields)
    if ir_version is not None:
        model.ir_version = ir_version
    model.graph.CopyFrom(graph)
    model.opset_import.extend(opset_imports)
    return model
