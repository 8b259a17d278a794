"""receptive_field: per blob and spatial axis, the RF size, the stride (jump) and the input
coordinate of output position 0's centre (ir.RF in Value.meta["rf"]).

Net inputs with spatial axes (N, C, H, W, ...) start at size 1, stride 1, centre 0 on their
trailing axes; blobs without spatial meaning (labels, sequences) have no RF. Each layer maps its
inputs' RFs (layers.Layer.receptive_field); where branches meet (Concat, Eltwise) the largest RF
is kept and a warning says when the branches disagree on stride or centre.
"""
from __future__ import annotations

from .. import codes
from ..ir import RF


def input_rf(shape) -> RF | None:
    if shape is None or len(shape) < 3:
        return None
    n = len(shape) - 2
    return RF((1,) * n, (1,) * n, (0,) * n)


def run(graph) -> None:
    diags = graph.diagnostics
    for v in graph.inputs:
        v.meta["rf"] = input_rf(v.meta.get("shape"))
    for node in graph.nodes:
        impl = node.impl
        if impl is None or impl.opaque or node.meta.get("unknown"):
            for v in node.outputs:
                v.meta.setdefault("rf", input_rf(v.meta.get("shape")) if v in graph.inputs else None)
            continue
        if impl.source or node.meta.get("invalid"):
            continue
        if any("shape" not in v.meta for v in node.outputs) or any("shape" not in v.meta for v in node.inputs):
            continue
        in_rfs = [v.meta.get("rf") for v in node.inputs]
        try:
            out = impl.receptive_field(node, in_rfs)
        except (ArithmeticError, ValueError, TypeError, IndexError, KeyError):
            out = [None] * len(node.outputs)  # the shapes pass has set the layer up; the RF is optional
        for v, rf in zip(node.outputs, out):
            v.meta["rf"] = rf
        disagree = node.meta.pop("rf_disagree", None)
        if disagree:
            what, detail = disagree
            diags.add(codes.RF_DISAGREE.at(node.span, layer=node.name, what=what, detail=detail,
                                           notes=["the branches look at differently aligned input regions; "
                                                  "netdef reports the largest receptive field"]))
