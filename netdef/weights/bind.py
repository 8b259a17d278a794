"""Matching a .caffemodel's blobs to the layers of a net that need them, as Caffe's
Net::CopyTrainedLayersFrom does: by layer name, checking the number and shape of the blobs.

    arrays = bind(specs, ws, diags)                       # name -> arrays, shape-checked
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import codes
from ..diagnostics import Diagnostics, Span, byte_span
from ..ir import fmt_shape  # re-exported: weights.fmt_shape
from ..proto import pb
from .caffemodel import WeightSet


@dataclass
class ParamSpec:
    """What one layer of a net needs: its learnable blobs' shapes and fillers, in Caffe's order."""
    name: str
    type: str
    span: Span | None
    shapes: list[tuple[int, ...]]
    fillers: list[pb.FillerParameter | None] = field(default_factory=list)
    filler_spans: list[Span | None] = field(default_factory=list)
    stats: frozenset[int] = frozenset()     # which blobs are statistics (Layer.stat_blobs)
    # Blob index -> other shapes a fork's file may hold for it (Layer.alternative_blob_shapes):
    # the same values in the same order, only singleton axes differ.
    alternatives: dict[int, tuple[tuple[int, ...], ...]] = field(default_factory=dict)


def _legacy_equal(target: tuple[int, ...], stored: tuple[int, ...]) -> bool:
    # Blob::ShapeEquals for legacy blobs: the net's shape, padded with leading 1s to 4 axes.
    if len(target) > 4:
        return False
    return (1,) * (4 - len(target)) + tuple(target) == tuple(stored)


def bind(specs, weights: WeightSet, diags: Diagnostics, allow_missing: bool = True) -> dict[str, list[np.ndarray]]:
    """Match a .caffemodel's blobs to the layers that need them, by layer name, as Caffe's
    Net::CopyTrainedLayersFrom does. Returns name -> arrays (in the net's shapes) for the
    layers found. Layers missing from the file are left out so that the caller falls back to
    fillers, which is what Caffe does: warned about (W505) with allow_missing, an error (E505)
    without it, since weights of another net then silently give a net of random filters."""
    out: dict[str, list[np.ndarray]] = {}
    wanted = set()
    specs = list(specs)
    missing = []
    for spec in specs:
        wanted.add(spec.name)
        if not spec.shapes:
            continue
        lw = weights.get(spec.name)
        if lw is None or not lw.blobs:
            missing.append(spec)
            if allow_missing:
                diags.add(codes.WEIGHTS_MISSING.at(spec.span, layer=spec.name, path=weights.path))
                continue
            notes = []
            if len(missing) == 1:
                needing = [s for s in specs if s.shapes]
                if not any(weights.get(s.name) is not None and weights.get(s.name).blobs for s in needing):
                    held = [lw.name for lw in weights if lw.blobs][:5]
                    notes.append(f"none of the net's {len(needing)} layer(s) with parameters is in the file"
                                 + (f" (it holds {', '.join(repr(n) for n in held)}, ...)" if held else "")
                                 + ": are these the weights of another net?")
                notes.append("--allow-missing-weights uses the layer's fillers instead, as Caffe does")
            diags.add(codes.WEIGHTS_MISSING_STRICT.at(spec.span, layer=spec.name, path=weights.path, notes=notes))
            continue
        if len(lw.blobs) != len(spec.shapes):
            diags.add(codes.WEIGHTS_BLOB_COUNT.at(
                spec.span, layer=spec.name, path=weights.path, expected=len(spec.shapes), got=len(lw.blobs),
                expected_shapes=", ".join(fmt_shape(s) for s in spec.shapes),
                got_shapes=", ".join(fmt_shape(b.shape) for b in lw.blobs),
                notes=["Caffe copies a layer's blobs only when their number matches (Net::CopyTrainedLayersFrom)"]))
            continue
        arrays, ok = [], True
        for i, (want, have, leg) in enumerate(zip(spec.shapes, lw.blobs, lw.legacy)):
            want = tuple(int(d) for d in want)
            if tuple(have.shape) == want:
                arrays.append(have)
            elif leg and _legacy_equal(want, have.shape):
                arrays.append(have.reshape(want))
            elif tuple(have.shape) in spec.alternatives.get(i, ()):
                arrays.append(have.reshape(want))
            else:
                notes = []
                if leg:
                    notes.append("the file gives this blob as legacy num/channels/height/width; "
                                 "Caffe compares it with the net's shape padded with leading 1s")
                alts = spec.alternatives.get(i, ())
                if alts:
                    notes.append(f"a {spec.type} layer's file may also hold it as "
                                 + " or ".join(fmt_shape(a) for a in alts))
                diags.add(codes.WEIGHTS_BLOB_SHAPE.at(spec.span, index=i, layer=spec.name, path=weights.path,
                                              got=fmt_shape(have.shape), expected=fmt_shape(want), notes=notes))
                ok = False
        if ok:
            out[spec.name] = arrays
    for lw in weights:
        if lw.name not in wanted and lw.blobs:
            diags.add(codes.WEIGHTS_EXTRA.at(byte_span(weights.path), path=weights.path, layer=lw.name, type=lw.type or "?",
                                             count=len(lw.blobs)))
    return out
