"""What part of the net an export covers, and how a layer ONNX cannot express is carried.

select_outputs and ancestors serve --outputs BLOB[,BLOB...] (export only the layers that
compute these blobs); custom_attributes serves --custom-ops (a layer as one node of the custom
domain, its parameters flattened to attributes).
"""
from __future__ import annotations

from ..diagnostics import UsageError
from .prepare import left_out


def select_outputs(graph, names) -> list:
    """--outputs: the latest version of each named blob, produced by a layer the export keeps.
    A name the net does not have is a usage error naming the close ones."""
    import difflib
    chosen = []
    known = graph.blob_names
    gone = left_out(graph)
    for name in names:
        v = graph.blob(name)
        if v is None:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
                f" (its blobs: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})"
            raise UsageError(f"--outputs: the net has no blob '{name}'{hint}")
        if v.producer is None or getattr(v.producer.impl, "source", False) or v.producer.type == "Input":
            raise UsageError(f"--outputs: '{name}' is an input of the net, not a blob a layer computes")
        if id(v.producer) in gone:
            why = gone[id(v.producer)][1]
            what = "a training-only layer the export leaves out" if why is None else (
                f"which the export leaves out: it depends on the training-only layer '{why[2].name}' ({why[2].type})")
            raise UsageError(f"--outputs: '{name}' is computed by '{v.producer.name}' ({v.producer.type}), {what}")
        if all(v is not c for c in chosen):
            chosen.append(v)
    return chosen


def ancestors(values, every_bottom: bool = False) -> set:
    """id() of every layer the values depend on. A layer that reads only its bottoms' shapes
    (PriorBox: reads_values = False) does not need their producers, unless `every_bottom`
    (the NumPy reference takes every bottom as an array)."""
    seen, stack = set(), [v.producer for v in values if v.producer is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not every_bottom and getattr(node.impl, "reads_values", True) is False:
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
