"""What part of the net an export covers, and how a layer ONNX cannot express is carried.

select_outputs and ancestors (in prepare.py, which analyses only what --outputs needs;
re-exported here) serve --outputs BLOB[,BLOB...] (export only the layers that compute these
blobs); custom_attributes serves --custom-ops (a layer as one node of the custom
domain, its parameters flattened to attributes).
"""
from __future__ import annotations

from .prepare import ancestors, select_outputs  # re-exported: prepare.outputs_view uses them

__all__ = ["ancestors", "custom_attributes", "select_outputs"]


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
