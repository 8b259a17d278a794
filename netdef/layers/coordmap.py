"""The coordinate-map crop of the FCN-era Caffe forks (V1 `type: CROP`).

torrvision/caffe (master: the submodule of torrvision/crfasrnn) src/caffe/layers/crop_layer.cpp
CropLayer::LayerSetUp has no parameters: it walks up from the first bottom through each layer's
first bottom (a blob's first producer; in-place layers skipped) to the net's start, then up from
the second bottom to the first blob on that path, composes each layer's coord_map() along both
walks (include/caffe/util/coords.hpp DiagonalAffineMap, one (scale, shift) per axis, x -> scale x
+ shift), and maps first-bottom coordinates to second-bottom ones. The scale must be 1 and the
shift a whole number <= 0; the crop offset is minus the shift. Reshape: (N, C) of the first
bottom, (H, W) of the second; Forward copies from (crop_h + h, crop_w + w).

coord_map() per layer (include/caffe/vision_layers.hpp, common_layers.hpp, neuron_layers.hpp):
Convolution and Pooling FilterMap(kernel, stride, pad).inv(), Deconvolution FilterMap(...),
where FilterMap is (stride, (kernel - 1) / 2 - pad); Crop (1, -crop); identity for the neuron
layers, Concat, Eltwise, MVN, Softmax, Split, Slice, LRN; any other layer on a walk aborts
(Layer::coord_map is NOT_IMPLEMENTED).
"""
from __future__ import annotations

from fractions import Fraction

from .. import codes
from .base import bad

ORIGIN = "the FCN-era Caffe forks' CROP (torrvision/caffe, the crfasrnn submodule)"
IDENTITY_TYPES = frozenset({
    "ReLU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Dropout", "Exp", "Power", "Threshold", "PReLU", "Log",
    "Concat", "Eltwise", "MVN", "Softmax", "Split", "Slice", "LRN",
})


def _first_producer(value):
    """The layer that first wrote this blob (Caffe's down_map skips in-place layers)."""
    while value.producer is not None and any(v.name == value.name for v in value.producer.inputs):
        value = next(v for v in value.producer.inputs if v.name == value.name)
    return value.producer, value


def _layer_map(crop, node):
    """node.coord_map() as [(scale, shift)] for (H, W); LayerError when the fork has none."""
    shape = node.inputs[0].meta.get("shape") if node.inputs else None
    if node.type in IDENTITY_TYPES:
        return [(Fraction(1), Fraction(0))] * 2
    if node.type in ("Convolution", "Deconvolution") and shape is not None and len(shape) == 4:
        from .conv import geometry
        g = geometry(node, shape)
        kernel, stride, pad = g.kernel, g.stride, g.pad
    elif node.type == "Pooling" and shape is not None and len(shape) == 4:
        from .pool import geometry
        g = geometry(node, shape)
        kernel, stride, pad = g.kernel, g.stride, g.pad
    elif node.type == "Crop" and node.meta.get("_coord_crop") is not None:
        return [(Fraction(1), Fraction(-c)) for c in node.meta["_coord_crop"]]
    else:
        bad(crop, f"the coordinate-map crop walks through layer '{node.name}' ({node.type}), which has no "
                  f"coordinate map in the fork (Layer::coord_map is NOT_IMPLEMENTED there)", crop.span,
            code=codes.BAD_PARAM)
    fm = [(Fraction(stride[i]), Fraction(kernel[i] - 1, 2) - pad[i]) for i in range(2)]
    if node.type == "Deconvolution":
        return fm
    return [(1 / a, -b / a) for a, b in fm]


def _compose(left, right):
    return [(la * ra, la * rb + lb) for (la, lb), (ra, rb) in zip(left, right)]


def coord_crop_offsets(node) -> tuple[int, int]:
    """(crop_h, crop_w) of a coordinate-map Crop, as CropLayer::LayerSetUp computes them."""
    cached = node.meta.get("_coord_crop")
    if cached is not None:
        return cached
    path, value = [], node.inputs[0]
    names = {value.name}
    while True:
        producer, value = _first_producer(value)
        if producer is None or not producer.inputs:
            break
        path.append(producer)
        value = producer.inputs[0]
        names.add(value.name)
    inter = node.inputs[1]
    while inter.name not in names:
        producer, inter = _first_producer(inter)
        if producer is None or not producer.inputs:
            bad(node, f"cannot align '{node.inputs[0].name}' and '{node.inputs[1].name}': their walks up the "
                      f"first bottoms never meet (\"Cannot align apparently disconnected blobs.\")", node.span)
        inter = producer.inputs[0]
    maps = []
    for i in range(2):
        m = [(Fraction(1), Fraction(0))] * 2
        value = node.inputs[i]
        while value.name != inter.name:
            producer, value = _first_producer(value)
            m = _compose(m, _layer_map(node, producer))
            value = producer.inputs[0]
        maps.append(m)
    crop = _compose(maps[1], [(1 / a, -b / a) for a, b in maps[0]])
    out = []
    for axis, (a, b) in zip(("height", "width"), crop):
        if a != 1:
            bad(node, f"the coordinate maps of '{node.inputs[0].name}' and '{node.inputs[1].name}' differ in scale "
                      f"on the {axis} axis ({a}): CropLayer checks that it is 1", node.span, code=codes.BAD_GEOMETRY)
        if b > 0 or b.denominator != 1:
            bad(node, f"the crop offset on the {axis} axis would be {-b}: CropLayer needs a whole number >= 0 "
                      f"(\"Negative crop width.\")", node.span, code=codes.BAD_GEOMETRY)
        out.append(int(-b))
    node.meta["_coord_crop"] = tuple(out)
    return tuple(out)
