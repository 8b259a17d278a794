"""The forward pass over a net: which layers run, in order, and the blobs they write."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers.base import training_only_types
from ..proto import pb
from .base import _OPS, Ctx, ReferenceError, included, op_for

# Layers that compute nothing at inference time; a deploy graph drops them: the layer classes'
# `training_only` flag (losses, Accuracy, sinks, the forks' metrics), the set export drops too.
TRAINING_ONLY = training_only_types()
DATA_LAYERS = frozenset({
    "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData", "AnnotatedData",
    "VideoData", "DenseImageData", "Python", "ImageLabelmapData", "ImageSegData", "BoxData",
})


@dataclass
class Step:
    """One layer's forward: its name, type, top names and the values it wrote."""
    layer: str
    type: str
    bottoms: list[str]
    tops: list[str]
    values: list[np.ndarray]


def _phase_value(phase) -> int:
    if isinstance(phase, str):
        return pb.Phase.Value(phase.upper())
    return int(phase)


def trace(net: pb.NetParameter, weights: dict[str, list[np.ndarray]], inputs: dict[str, np.ndarray],
          phase="TEST", level: int = 0, stages=(), loc=None, whole=None, only=None):
    """Yields a Step per layer that runs, in order. `weights` maps layer names to their blobs;
    `inputs` must hold every Input/`input:` blob and the tops of any data layer; `loc` (the
    parse's Loc tree) supplies fork layers' parameters, which the schema does not hold; `whole`:
    the net before layers were removed from `net` (Parsed.whole), for forks told by its layers;
    `only`: the names of the layers to run (the others, and what only they feed, are skipped).
    A Step's values are the arrays later layers read: a caller may correct one in place before
    asking for the next step (verify does, for a pooling mask's ties)."""
    ph = _phase_value(phase)
    blobs: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    for name in net.input:
        if name not in blobs:
            raise ReferenceError(name, "input", f"no value given for net input '{name}'")
    layer_locs = (loc.fields.get("layer") or []) if loc is not None else []
    for index, layer in enumerate(net.layer):
        if not included(layer, ph, level, stages):
            continue
        t = layer.type
        if t in TRAINING_ONLY:
            continue
        if only is not None and layer.name not in only:
            continue
        if t == "Input" or t in DATA_LAYERS:
            missing = [top for top in layer.top if top not in blobs]
            if missing:
                raise ReferenceError(layer.name, t, f"no value given for its top '{missing[0]}'")
            yield Step(layer.name, t, [], list(layer.top), [blobs[top] for top in layer.top])
            continue
        if t not in _OPS:
            raise ReferenceError(layer.name, t, "the reference has no implementation of this layer type")
        bottoms = []
        for b in layer.bottom:
            if b not in blobs:
                raise ReferenceError(layer.name, t, f"bottom '{b}' is not produced by any earlier layer")
            bottoms.append(blobs[b].astype(np.float64))
        params = [np.asarray(w, dtype=np.float64) for w in weights.get(layer.name, [])]
        layer_loc = layer_locs[index] if index < len(layer_locs) else None
        ctx = Ctx(layer, ph, getattr(layer_loc, "extra", None), layer_loc, net, index, (ph, level, tuple(stages)))
        if whole is not None:
            ctx.whole = whole
        fn = op_for(ctx)
        with np.errstate(all="ignore"):
            try:
                outs = fn(ctx, layer, bottoms, params)
            except MemoryError as e:
                # numpy says what it could not allocate ("Unable to allocate 3.1 GiB for an array
                # with shape ..."): the layer and that size, instead of a bare "out of memory".
                ctx.fail(f"out of memory in the NumPy reference: {e or 'the size needed is not known'}"
                         f" (its bottoms hold {sum(b.nbytes for b in bottoms) / 2**20:.1f} MiB as float64)")
            if len(outs) != len(layer.top):
                ctx.fail(f"computes {len(outs)} output(s) but has {len(layer.top)} top(s)")
            # Past float32's range is Inf, as in Caffe's float blobs: not worth a RuntimeWarning.
            outs = [np.asarray(o, dtype=np.float32) for o in outs]
        for top, value in zip(layer.top, outs):
            blobs[top] = value
        yield Step(layer.name, t, list(layer.bottom), list(layer.top), outs)


def forward(net, weights, inputs, phase="TEST", level: int = 0, stages=(), loc=None) -> dict[str, np.ndarray]:
    """Every blob's final value after one forward pass (in-place chains overwrite)."""
    blobs = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    for step in trace(net, weights, inputs, phase, level, stages, loc):
        for top, value in zip(step.tops, step.values):
            blobs[top] = value
    return blobs
