"""What the page shows about one compiled net state, as plain JSON-able data.

Everything a definition says (names, types, field values, the source text, diagnostic
messages) travels as JSON strings and is put into the page with textContent by view.js: it is
never markup, and never code.
"""
from __future__ import annotations

import bisect

from google.protobuf import text_format

from ..draw import FILLS, OTHER_FILL, UNKNOWN_FILL, detail_text, family
from ..ir import fmt_num
from ..layers.base import total
from ..passes.cost import BYTES_PER_ELEMENT, samples, totals
from .formula import formula


def family_fills() -> dict:
    """The box colours the page uses: draw's, one per family, and those of a family without a
    colour ("other") and of a layer netdef cannot analyse ("unknown"). view.js has no copy."""
    return {**FILLS, "other": OTHER_FILL, "unknown": UNKNOWN_FILL}


def shape_list(shape):
    return [int(d) for d in shape] if shape is not None else None


def rf_json(rf):
    if rf is None:
        return None
    if rf.whole:
        return {"whole": True, "text": "whole input"}
    size = "×".join(fmt_num(s) for s in rf.size)
    stride = "×".join(fmt_num(s) for s in rf.stride)
    return {"whole": False, "size": size, "stride": stride,
            "center": "(" + ", ".join(fmt_num(c) for c in rf.center) + ")",
            "text": f"{size} / {stride}"}


def _value_text(field, value) -> str:
    if field.enum_type is not None:
        ev = field.enum_type.values_by_number.get(value)
        return ev.name if ev is not None else str(value)
    if field.message_type is not None:
        return "{ " + text_format.MessageToString(value, as_one_line=True, as_utf8=True) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, bytes):
        return repr(value)
    return str(value)


def _code_defaults() -> dict:
    # Repeated fields whose default lives in Caffe's code, not in the schema
    # (BaseConvolutionLayer::LayerSetUp's kDefaultStride, kDefaultPad, kDefaultDilation).
    from ..layers.conv import DEFAULT_DILATION, DEFAULT_PAD, DEFAULT_STRIDE

    return {("convolution_param", "stride"): str(DEFAULT_STRIDE), ("convolution_param", "pad"): str(DEFAULT_PAD),
            ("convolution_param", "dilation"): str(DEFAULT_DILATION)}


def param_fields(node) -> list[dict]:
    """The layer type's parameter message field by field: what is written, and the schema's
    default for what is not ({"name", "value", "default": True} for an unwritten field)."""
    msgs = []
    impl = node.impl
    if impl is not None and impl.param:
        msgs.append(impl.param)
    else:  # an unknown type: whichever *_param blocks were written
        msgs.extend(f.name for f, _ in node.param.ListFields() if f.name.endswith("_param"))
    out = []
    code_defaults = _code_defaults()
    for name in msgs:
        if not node.param.HasField(name):
            out.append({"group": name, "name": "", "value": "(not written: every field has its default)",
                        "default": True})
        msg = getattr(node.param, name)
        for f in msg.DESCRIPTOR.fields:
            value = getattr(msg, f.name)
            if f.is_repeated:
                written = len(value) > 0
                text = ", ".join(_value_text(f, v) for v in value) if written else \
                    code_defaults.get((name, f.name), "(none)")
                if written and len(text) > 400:
                    text = text[:400] + " …"
            else:
                written = msg.HasField(f.name) if f.has_presence else value != f.default_value
                if f.message_type is not None and not written:
                    text = "(not set)"
                else:
                    text = _value_text(f, value)
            out.append({"group": name, "name": f.name, "value": text, "default": not written})
    for key, values in node.extra.items():  # fork fields the schema lacks
        out.append({"group": "fork", "name": key, "value": ", ".join(str(v) for v in values), "default": False})
    return out


def net_state(graph, boxes, box_of, block_of, label: str, values: dict) -> dict:
    """One NetState's layers, blob versions, diagnostics and totals. `values` is filled with
    id(Value) → the blob's index in the page."""
    vlist = []

    def vid(v) -> int:
        k = id(v)
        if k not in values:
            values[k] = len(vlist)
            vlist.append(v)
        return values[k]

    for v in graph.inputs:
        vid(v)
    node_index = {id(n): i for i, n in enumerate(graph.nodes)}
    layers = []
    for i, node in enumerate(graph.nodes):
        c = node.meta.get("cost") or {}
        params = node.meta.get("params")
        loc = node.loc
        lines = None
        if loc is not None:
            src = loc.source
            lines = [src.line_col(loc.name_start)[0], src.line_col(max(loc.name_start, loc.end - 1))[0]]
        first = node.outputs[0] if node.outputs else None
        box = box_of[id(node)]
        layers.append({
            "name": node.name, "type": node.type, "family": family(node),
            "unknown": bool(node.meta.get("unknown")),
            "detail": detail_text(node) if not node.meta.get("unknown") or node.type == "Python" else "",
            "box": box.id, "block": block_of.get(box.id),
            "inputs": [vid(v) for v in node.inputs], "outputs": [vid(v) for v in node.outputs],
            "rf": rf_json(first.meta.get("rf")) if first is not None else None,
            "params": total(params) if params is not None else None,
            "stat_params": total(node.meta.get("stat_params")),
            "param_shapes": [shape_list(s) for s in node.meta.get("blobs", [])],
            "param_bytes": total(node.meta.get("blobs")) * BYTES_PER_ELEMENT if node.meta.get("blobs") else 0,
            "macs": c.get("macs"), "flops": c.get("flops"), "act_bytes": c.get("activation_bytes"),
            "lines": lines, "fields": param_fields(node), "formula": formula(node),
            "diags": [],
        })
    outputs = [vid(v) for v in graph.outputs]
    blobs = []
    for v in vlist:
        blobs.append({"name": v.name, "version": v.version, "shape": shape_list(v.meta.get("shape")),
                      "rf": rf_json(v.meta.get("rf")),
                      "producer": node_index.get(id(v.producer)) if v.producer is not None else None,
                      "consumers": [node_index[id(n)] for n in v.consumers if id(n) in node_index],
                      "input": v.producer is None or (v.producer.impl is not None and v.producer.impl.source),
                      "undefined": bool(v.meta.get("undefined"))})

    # Diagnostics, each tied to the layer whose block contains its position.
    ranges = sorted((n.loc.name_start, n.loc.end, i) for i, n in enumerate(graph.nodes) if n.loc is not None)
    starts = [r[0] for r in ranges]
    diags = []
    for d in graph.diagnostics:
        entry = {"code": d.code, "severity": d.severity, "message": d.message, "notes": list(d.notes),
                 "file": d.span.path if d.span is not None else None,
                 "line": d.span.line if d.span is not None else None,
                 "col": d.span.col if d.span is not None else None, "layer": None}
        if d.span is not None and graph.parsed is not None and d.span.source is graph.parsed.source:
            k = bisect.bisect_right(starts, d.span.start) - 1
            if k >= 0 and ranges[k][0] <= d.span.start < max(ranges[k][1], ranges[k][0] + 1):
                entry["layer"] = ranges[k][2]
                layers[ranges[k][2]]["diags"].append(len(diags))
        diags.append(entry)
    dropped = getattr(graph.diagnostics, "dropped", 0)

    t = totals(graph) if graph.nodes else {"params": 0, "stat_params": 0, "macs": 0, "flops": 0,
                                            "activation_bytes": 0}
    per = samples(graph) if graph.nodes else None
    incomplete = [i for i, n in enumerate(graph.nodes)
                  if n.meta.get("unknown") or (n.outputs and "cost" not in n.meta)]
    return {
        "label": label, "name": graph.name, "state": str(graph.state),
        "layers": layers, "blobs": blobs, "diagnostics": diags, "dropped": dropped,
        "outputs": outputs,
        "totals": {"params": t["params"], "stat_params": t["stat_params"], "macs": t["macs"], "flops": t["flops"],
                   "act_bytes": t["activation_bytes"],
                   "param_bytes": (t["params"] + t["stat_params"]) * BYTES_PER_ELEMENT},
        "batch": per.size if per is not None and graph.batch_size is not None else None,
        "incomplete": incomplete,
    }
