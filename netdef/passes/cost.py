"""cost: parameters, multiply-accumulates, FLOPs and activation memory per layer.

Node.meta["cost"] = {"macs", "flops", "activation_bytes"} for the net's batch size. MACs count
the multiply-accumulates of matrix products (Convolution and Deconvolution, group-aware,
InnerProduct, recurrent gates); FLOPs are 2 x MACs plus bias additions and a rough count of
elementwise work (activations, pooling windows, normalisation). Activation memory is 4 bytes
(float32) per element of each top the layer allocates: an in-place top reuses its bottom's
memory and counts nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..layers.base import prod

BYTES_PER_ELEMENT = 4  # Caffe's float blobs


def run(graph) -> None:
    for node in graph.nodes:
        impl = node.impl
        # An invalid layer (wrong blob counts, bad parameters) has been reported; a layer with
        # no tops must not reach a cost formula that reads its output shape.
        if impl is None or node.meta.get("unknown") or node.meta.get("invalid"):
            continue
        if any("shape" not in v.meta for v in node.inputs) or any("shape" not in v.meta for v in node.outputs):
            continue
        in_shapes = [v.meta["shape"] for v in node.inputs]
        out_shapes = [v.meta["shape"] for v in node.outputs]
        try:
            c = dict(impl.cost(node, in_shapes, out_shapes))
        except (ArithmeticError, ValueError, TypeError, IndexError, KeyError):
            continue
        in_place = node.meta.get("in_place", [False] * len(node.outputs))
        c["activation_bytes"] = sum(prod(s) * BYTES_PER_ELEMENT for s, ip in zip(out_shapes, in_place) if not ip)
        node.meta["cost"] = c


def totals(graph) -> dict:
    """Whole-net totals. Shared parameters (param { name }) are counted once, at their owner."""
    params = stat = macs = flops = act = 0
    seen: set[str] = set()
    for node in graph.nodes:
        specs = node.param.param
        stats = node.impl.stat_blobs(node) if node.impl is not None else set()
        for i, s in enumerate(node.meta.get("blobs", [])):
            name = specs[i].name if i < len(specs) else ""
            if name:
                if name in seen:
                    continue
                seen.add(name)
            if i in stats:
                stat += prod(s)
            else:
                params += prod(s)
        c = node.meta.get("cost")
        if c:
            macs += c["macs"]
            flops += c["flops"]
            act += c["activation_bytes"]
    for v in graph.inputs:
        if v.producer is None and v.meta.get("shape") is not None:
            act += prod(v.meta["shape"]) * BYTES_PER_ELEMENT
    return {"params": params, "stat_params": stat, "macs": macs, "flops": flops, "activation_bytes": act}


@dataclass(frozen=True)
class Samples:
    """What the per-sample figures divide by."""

    size: int            # samples in one forward pass
    axis: int            # the axis of the input blobs that counts them
    steps: int | None    # time steps per sample (time-major nets)
    layer: str | None    # the recurrent layer that says the net is time-major

    @property
    def what(self) -> str:
        if self.steps is not None:
            return (f"one sequence of {self.steps} time steps; N = {self.size} is axis 1 of the time-major blobs "
                    f"{self.layer} reads")
        return f"one item; N = {self.size} is axis 0 of the inputs"


def samples(graph) -> Samples:
    """Caffe's recurrent layers read time-major blobs, (T, N, ...) with cont (T, N): there a
    sample is one of the N sequences, and every layer's work (the Embed and InnerProduct over
    all T x N positions too) belongs to the N of them. Elsewhere the batch is axis 0 of the
    inputs."""
    for node in graph.nodes:
        if node.impl is not None and node.impl.time_major and node.inputs:
            shape = node.inputs[0].meta.get("shape")
            if shape is not None and len(shape) >= 2 and shape[1] > 0:
                return Samples(shape[1], 1, shape[0], f"{node.type} '{node.name}'")
    return Samples(graph.batch_size or 1, 0, None, None)
