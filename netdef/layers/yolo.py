"""The training layers of YOLOv2 ports of Caffe (issue 11): their data layer and losses.

  BoxData, RegionLoss   gklz1982/caffe-yolov2 (box_data_layer.cpp, region_loss_layer.cpp)
  YoloV2Loss            foss-for-synopsys-dwc-arc-processors/synopsys-caffe (yolo_v2_loss_layer.cpp)

The losses compare predictions with boxes: a deploy graph leaves them out. Their shape rules are
the CHECKs their LayerSetUp makes on the sizes of the two bottoms.
"""
from __future__ import annotations

from .. import codes, forks
from .base import bad, count, fmt_shape, prod, register
from .fork import ForkParams, ForkSource, _int
from .loss import Loss

# gklz1982/caffe-yolov2 box_data_layer.cpp DataLayerSetUp: each label top is (batch_size, 150),
# room for 30 boxes of 5 numbers; one label top per `side` (DataParameter side = 11, repeated
# uint32; [7] when none is given), CHECK_EQ(sides, tops - 1).
BOX_LABEL_SIZE = 30 * 5
BOX_DEFAULT_SIDES = [7]
# gklz1982/caffe-yolov2 src/caffe/proto/caffe.proto RegionLossParameter: side = 1 [13],
# num_class = 2 [20], bias_match = 3 [1], coords = 4 [4], num = 5 [5], softmax = 6 [1],
# jitter = 7 [0.2], rescore = 8 [1], object_scale = 9 [1], class_scale = 10 [1],
# noobject_scale = 11 [0.5], coord_scale = 12 [5], absolute = 13 [1], thresh = 14 [0.2],
# random = 15 [1], biases = 16 (repeated), softmax_tree = 17, class_map = 18.
REGION_LOSS_DEFAULTS = {"side": 13, "num_class": 20, "coords": 4, "num": 5}
# foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/proto/caffe.proto
# YoloV2LossParameter: anchors = 1 (repeated), side = 2, num_classes = 3, num_object = 4 (no
# defaults: 0), box_scale = 5 [.5], class_scale = 6 [.5], noobject_scale = 7 [.5],
# object_scale = 8 [.5], rescore = 9 [true], constraint = 10 [true], thresh = 11 [0.7].
YOLO_V2_LOSS_DEFAULTS = {"side": 0, "num_classes": 0, "num_object": 0}


@register("BoxData")
class BoxData(ForkSource):
    """gklz1982/caffe-yolov2 src/caffe/layers/box_data_layer.cpp: top 0 is the image batch, its
    shape from the first Datum (given with --input); every further top is a label blob
    (batch_size, 150), one per data_param.side value (one side, 7, when none is given)."""

    origin = forks.YOLOV2
    checked_against = "gklz1982/caffe-yolov2 src/caffe/layers/box_data_layer.cpp and caffe.proto (DataParameter side)"

    def sides(self, node) -> list:
        sub = node.loc.msg("data_param") if node.loc is not None else None
        return list(sub.extra.get("side") or []) if sub is not None else []

    def check(self, node, diags):
        sides = self.sides(node) or BOX_DEFAULT_SIDES
        if len(node.outputs) > 1 and len(sides) != len(node.outputs) - 1:
            diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': {len(node.outputs) - 1} label "
                                                            f"top(s) but {len(sides)} data_param.side value(s)",
                                         notes=["BoxDataLayer::DataLayerSetUp CHECKs one side per label top "
                                                "(one side, 7, when none is given)"]))

    def source_shapes(self, node):
        batch = node.param.data_param.batch_size
        out = ["the BoxData data layer reads the image size from its first Datum"]
        return out + [(batch, BOX_LABEL_SIZE)] * (len(node.outputs) - 1)


def _ints(node, message, defaults, names):
    p = ForkParams(node, message, defaults)
    return [_int(node, p, n) for n in names]


@register("RegionLoss")
class RegionLoss(Loss):
    """gklz1982/caffe-yolov2 src/caffe/layers/region_loss_layer.cpp LayerSetUp: CHECK_EQ that
    bottom 0 holds side * side * num * (coords + num_class + 1) values per sample and bottom 1
    (the BoxData labels) 30 * num; top 0 is the loss (a scalar)."""

    fork_defaults = REGION_LOSS_DEFAULTS
    origin = forks.YOLOV2
    checked_against = "gklz1982/caffe-yolov2 src/caffe/layers/region_loss_layer.cpp and caffe.proto"

    def check_inputs(self, node, in_shapes):
        side, classes, coords, num = _ints(node, "region_loss_param", REGION_LOSS_DEFAULTS,
                                           ("side", "num_class", "coords", "num"))
        pred, label = in_shapes
        want = side * side * num * (coords + classes + 1)
        if count(pred, 1) != want:
            bad(node, f"'{node.inputs[0].label}' {fmt_shape(pred)} holds {count(pred, 1)} values per sample; "
                      f"side {side}, num {num}, coords {coords} and num_class {classes} need "
                      f"{side}*{side}*{num}*({coords}+{classes}+1) = {want}", node.bottom_span(0),
                code=codes.SHAPE_MISMATCH)
        if count(label, 1) != 30 * num:
            bad(node, f"'{node.inputs[1].label}' {fmt_shape(label)} holds {count(label, 1)} values per sample; the "
                      f"layer needs 30 * num = {30 * num}", node.bottom_span(1), code=codes.SHAPE_MISMATCH)

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 3 * prod(in_shapes[0])}


@register("YoloV2Loss")
class YoloV2Loss(Loss):
    """foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/yolo_v2_loss_layer.cpp
    LayerSetUp: CHECK_EQ(anchors, 2 * num_object); CHECK_EQ that bottom 0 holds side * side *
    (num_classes + 5) * num_object values per sample and bottom 1 side * side * 7; top 0 is the
    loss (a scalar)."""

    fork_defaults = YOLO_V2_LOSS_DEFAULTS
    origin = forks.SYNOPSYS
    checked_against = "foss-for-synopsys-dwc-arc-processors/synopsys-caffe src/caffe/layers/yolo_v2_loss_layer.cpp"

    def check_inputs(self, node, in_shapes):
        side, classes, boxes = _ints(node, "yolo_v2_loss_param", YOLO_V2_LOSS_DEFAULTS,
                                     ("side", "num_classes", "num_object"))
        anchors = ForkParams(node, "yolo_v2_loss_param", {}).all("anchors")
        if len(anchors) != 2 * boxes:
            bad(node, f"{len(anchors)} anchors for num_object {boxes}: the layer needs 2 * num_object",
                node.span)
        pred, label = in_shapes
        want = side * side * (classes + 5) * boxes
        if count(pred, 1) != want:
            bad(node, f"'{node.inputs[0].label}' {fmt_shape(pred)} holds {count(pred, 1)} values per sample; "
                      f"side {side}, num_classes {classes} and num_object {boxes} need "
                      f"{side}*{side}*({classes}+5)*{boxes} = {want}", node.bottom_span(0), code=codes.SHAPE_MISMATCH)
        if count(label, 1) != side * side * 7:
            bad(node, f"'{node.inputs[1].label}' {fmt_shape(label)} holds {count(label, 1)} values per sample; the "
                      f"layer needs side * side * 7 = {side * side * 7}", node.bottom_span(1),
                code=codes.SHAPE_MISMATCH)

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 3 * prod(in_shapes[0])}
