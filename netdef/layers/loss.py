"""Losses, Accuracy and sinks (Silence, HDF5Output).

Caffe's LossLayer writes a scalar (shape ()), and its first top carries loss_weight 1 unless the
layer says otherwise; with no top written, Net::Init makes an anonymous one (AutoTopBlobs). SoftmaxWithLoss and InfogainLoss may add a second top: the softmax
probabilities (bottom 0's shape). Accuracy's optional second top is per-class accuracy.
"""
from __future__ import annotations

from .. import codes
from .base import Layer, bad, canonical_axis, count, fork_filler, fmt_shape, prod, register

SCALAR = ()


class Loss(Layer):
    loss = True
    # LossLayer::AutoTopBlobs: a loss written without a top still gets its scalar, in a blob
    # Net::Init names "(automatic)" and keeps out of the blobs later layers may read.
    auto_tops = True
    bottoms = (2, 2)

    def infer_shapes(self, node, in_shapes):
        data, label = in_shapes[0], in_shapes[1]
        if data and label and data[0] != label[0]:
            bad(node, f"'{node.inputs[0].label}' {fmt_shape(data)} and '{node.inputs[1].label}' {fmt_shape(label)} "
                      f"must have the same first (batch) dimension", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        self.check_inputs(node, in_shapes)
        return [SCALAR] + [tuple(data)] * (len(node.outputs) - 1)

    def check_inputs(self, node, in_shapes):
        pass

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 3 * prod(in_shapes[0])}


def _labels_match(node, in_shapes, axis_field: str):
    data, label = in_shapes[0], in_shapes[1]
    msg = getattr(node.param, axis_field)
    axis = canonical_axis(node, msg.axis, data, (axis_field, "axis"))
    want = count(data, 0, axis) * count(data, axis + 1)
    if prod(label) != want:
        bad(node, f"the label '{node.inputs[1].label}' {fmt_shape(label)} has {prod(label)} values but the "
                  f"predictions '{node.inputs[0].label}' {fmt_shape(data)} need {want} (one per position outside "
                  f"axis {axis})", node.bottom_span(1), code=codes.SHAPE_MISMATCH,
            notes=["for (N, C, H, W) predictions over axis 1, give N*H*W labels in 0..C-1"])
    return axis


@register("SoftmaxWithLoss")
class SoftmaxWithLoss(Loss):
    param = "softmax_param"
    tops = (1, 2)

    def check_inputs(self, node, in_shapes):
        _labels_match(node, in_shapes, "softmax_param")


@register("InfogainLoss")
class InfogainLoss(Loss):
    param = "infogain_loss_param"
    bottoms = (2, 3)
    tops = (1, 2)

    def check_inputs(self, node, in_shapes):
        _labels_match(node, in_shapes, "infogain_loss_param")


@register("EuclideanLoss")
class EuclideanLoss(Loss):
    def check_inputs(self, node, in_shapes):
        a, b = in_shapes[0], in_shapes[1]
        if count(a, 1) != count(b, 1):
            bad(node, f"the inputs must have the same size per item: '{node.inputs[0].label}' {fmt_shape(a)} vs "
                      f"'{node.inputs[1].label}' {fmt_shape(b)}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)


@register("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLoss(Loss):
    def check_inputs(self, node, in_shapes):
        a, b = in_shapes[0], in_shapes[1]
        if prod(a) != prod(b):
            bad(node, f"the inputs must have the same number of elements: '{node.inputs[0].label}' {fmt_shape(a)} "
                      f"vs '{node.inputs[1].label}' {fmt_shape(b)}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)


@register("HingeLoss")
class HingeLoss(Loss):
    param = "hinge_loss_param"


@register("MultinomialLogisticLoss")
class MultinomialLogisticLoss(Loss):
    pass


@register("ContrastiveLoss")
class ContrastiveLoss(Loss):
    param = "contrastive_loss_param"
    bottoms = (3, 3)

    def check_inputs(self, node, in_shapes):
        a, b, y = in_shapes
        if count(a, 1) != count(b, 1) or a[0] != b[0]:
            bad(node, f"the two feature blobs must have one shape: '{node.inputs[0].label}' {fmt_shape(a)} vs "
                      f"'{node.inputs[1].label}' {fmt_shape(b)}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        if prod(y) != a[0]:
            bad(node, f"the similarity labels '{node.inputs[2].label}' {fmt_shape(y)} must hold one value per pair "
                      f"({a[0]})", node.bottom_span(2), code=codes.SHAPE_MISMATCH)


@register("Accuracy")
class Accuracy(Layer):
    param = "accuracy_param"
    compares = True
    bottoms = (2, 2)
    tops = (1, 2)

    def infer_shapes(self, node, in_shapes):
        data = in_shapes[0]
        axis = _labels_match(node, in_shapes, "accuracy_param")
        k = node.param.accuracy_param.top_k
        classes = data[axis]
        if k > classes:
            bad(node, f"top_k {k} exceeds the {classes} classes of '{node.inputs[0].label}' {fmt_shape(data)}",
                node.field_span("accuracy_param", "top_k"))
        return [SCALAR, (classes,)][:len(node.outputs)]

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(in_shapes[0])}


@register("Silence")
class Silence(Layer):
    """Consumes blobs so that they are not net outputs; produces nothing."""

    bottoms = (1, None)
    tops = (0, 0)
    sink = True

    def infer_shapes(self, node, in_shapes):
        return []

    def receptive_field(self, node, in_rfs):
        return []


@register("HDF5Output")
class HDF5Output(Layer):
    param = "hdf5_output_param"
    bottoms = (2, 2)
    tops = (0, 0)
    sink = True

    def infer_shapes(self, node, in_shapes):
        return []

    def receptive_field(self, node, in_rfs):
        return []


# --- training-only layers of Caffe forks (dropped for deployment) ----------------------------

@register("SegAccuracy")
class SegAccuracy(Layer):
    """DeepLab's per-pixel accuracy (hszhao/PSPNet src/caffe/layers/seg_accuracy_layer.cpp): a
    metric over predictions and a label map; reports one row of accuracy figures. Not part of a
    deployed net: export and the reference leave it out, as they do Accuracy."""

    bottoms = (2, 2)
    compares = True
    origin = "the DeepLab fork of Caffe (deeplab-public; also hszhao/PSPNet)"
    checked_against = "hszhao/PSPNet src/caffe/layers/seg_accuracy_layer.cpp"
    training_only = True
    opaque = "its output is a row of accuracy figures whose size depends on its parameters"

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)


@register("MatWrite")
class MatWrite(Layer):
    """DeepLab's MatWrite (hszhao/PSPNet src/caffe/layers/mat_write_layer.cpp): writes its
    bottoms to .mat files every `period` iterations; no tops, nothing to deploy."""

    bottoms = (1, None)
    tops = (0, 0)
    sink = True
    training_only = True
    origin = "the DeepLab fork of Caffe (deeplab-public; also hszhao/PSPNet)"
    checked_against = "hszhao/PSPNet src/caffe/layers/mat_write_layer.cpp"

    def infer_shapes(self, node, in_shapes):
        return []

    def receptive_field(self, node, in_rfs):
        return []


@register("CenterLoss")
class CenterLoss(Layer):
    """Center loss (Wen et al.), as ydwen/caffe-face's CenterLossLayer defines it (a LossLayer;
    read from a stored copy of src/caffe/layers/center_loss_layer.cpp): bottoms (features,
    labels), a scalar loss top; one blob, the centers (num_output, K) with K = count(axis) of
    the features, filled by center_filler. center_loss_param: num_output, center_filler, axis
    [default 1]. Training only: export and verify leave it out."""

    loss = True
    auto_tops = True
    bottoms = (2, 2)
    origin = "the center-loss fork of Caffe (ydwen/caffe-face)"
    fork_defaults = {"axis": 1}
    checked_against = "ydwen/caffe-face src/caffe/layers/center_loss_layer.cpp (a stored copy)"

    def _params(self, node):
        from .fork import num_output_and_axis
        return num_output_and_axis(node, "center_loss_param")

    def infer_shapes(self, node, in_shapes):
        self._params(node)
        return [()] * len(node.outputs)

    def param_shapes(self, node, in_shapes):
        n, axis = self._params(node)
        axis = canonical_axis(node, axis, in_shapes[0])
        return [(n, count(in_shapes[0], axis))]

    def filler_params(self, node):
        return [fork_filler(node, "center_loss_param", "center_filler")]

    def receptive_field(self, node, in_rfs):
        return [None] * len(node.outputs)
