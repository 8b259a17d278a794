"""The layers of the YOLO ports of Caffe: the YOLOv2 ports' data layer and losses (issue 11), and
the outputs (Region, YoloDetectionOutput, Yolov3DetectionOutput).

  BoxData, RegionLoss   gklz1982/caffe-yolov2 (box_data_layer.cpp, region_loss_layer.cpp)
  YoloV2Loss            foss-for-synopsys-dwc-arc-processors/synopsys-caffe (yolo_v2_loss_layer.cpp)
  YOLO (v2, v3)         eric612/MobileNet-YOLO (69b4441): src/caffe/layers/yolo_detection_output_layer.cpp,
  outputs               yolov3_detection_output_layer.cpp, src/caffe/util/bbox_util.cpp (get_region_box)
  Region                openvinotoolkit/training_toolbox_caffe (2137b63): src/caffe/layers/region_layer.cpp

The losses compare predictions with boxes: a deploy graph leaves them out. Their shape rules are
the CHECKs their LayerSetUp makes on the sizes of the two bottoms. The YOLO outputs' number of
rows depends on the data: they report Caffe's own setup shape, one row of 7; the exported
model's row axis is symbolic.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import codes, forks
from .base import Layer, bad, count, fmt_shape, need_rank, prod, register
from .fork import ForkParams, ForkSource, _int
from .loss import Loss
from .postproc import _f32, _flag, _from_f32, _to_f32, match_tied_rows, np

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


# --- YOLO ports: outputs ---------------------------------------------------------------------

# RegionParameter (openvinotoolkit/training_toolbox_caffe caffe.proto): coords = 1 [4],
# classes = 2 [20], num = 3 [1].
_REGION = {"coords": 4, "classes": 20, "num": 1}


@register("Region")
class Region(Layer):
    """YOLOv2's region activation (openvinotoolkit/training_toolbox_caffe region_layer.cpp): per
    anchor, logistic on x, y and the objectness, softmax over the classes; the top has the
    bottom's shape."""
    family = "activation"
    checked_against = "openvinotoolkit/training_toolbox_caffe src/caffe/layers/region_layer.cpp and caffe.proto"
    fork_defaults = _REGION

    elementwise = True

    def spec(self, node):
        p = ForkParams(node, "region_param")
        coords, classes, num = _int(node, p, "coords"), _int(node, p, "classes"), _int(node, p, "num")
        if coords < 2 or classes < 1 or num < 1:
            bad(node, f"region_param: coords {coords} (at least 2), classes {classes} and num {num} "
                      "(at least 1)", p.span())
        return coords, classes, num

    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        need_rank(node, shape, 4)
        coords, classes, num = self.spec(node)
        # Forward_cpu indexes num * (coords + classes + 1) channels; any other count reads past
        # the blob (Caffe does not check it; its output is undefined).
        if shape[1] != num * (coords + classes + 1):
            bad(node, f"the input has {shape[1]} channels; num {num} x (coords {coords} + classes {classes} + 1) "
                      f"is {num * (coords + classes + 1)}", node.bottom_span(0), code=codes.SHAPE_MISMATCH)
        return [shape]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 4 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """Reshape to (N, num, coords + 1 + classes, H*W); Sigmoid on entries 0, 1 and coords,
        Softmax over the class entries; the others pass through."""
        coords, classes, num = self.spec(node)
        n, c, h, w = g.in_shape(0)
        dyn = g.in_dyn(0)
        x = g.reshape(g.x(0), [n, num, coords + 1 + classes, h * w], [dyn[0], False, False, False])
        parts = [g.tmp(t) for t in ("xy", "wh", "obj", "cls")]
        sizes = g.ints([2, coords - 2, 1, classes], "split")
        if coords == 2:
            parts = [parts[0], parts[2], parts[3]]
            sizes = g.ints([2, 1, classes], "split")
        g.op("Split", [x, sizes], parts, axis=2)
        out = [g.op("Sigmoid", [parts[0]], g.tmp("xy_s"))]
        if coords > 2:
            out.append(parts[1])
        out.append(g.op("Sigmoid", [parts[-2]], g.tmp("obj_s")))
        out.append(g.op("Softmax", [parts[-1]], g.tmp("cls_s"), axis=2))
        y = g.op("Concat", out, g.tmp("region"), axis=2)
        g.reshape(y, [n, c, h, w], dyn, g.y(0))


# YoloDetectionOutputParameter (eric612/MobileNet-YOLO caffe.proto): side = 1 [13],
# num_classes = 2 [20], num_box = 3 [5], coords = 4 [4], confidence_threshold = 5 [0.01],
# nms_threshold = 6 [0.45], biases = 7 (repeated), label_map_file = 8.
_YOLO = {"num_classes": 20, "num_box": 5, "coords": 4, "confidence_threshold": 0.01, "nms_threshold": 0.45}
# Yolov3DetectionOutputParameter: num_classes = 1 [20], num_box = 2 [3], confidence_threshold =
# 3 [0.01], nms_threshold = 4 [0.45], biases = 5, anchors_scale = 6, mask_group_num = 7 [2],
# mask = 8 (repeated), gaussian_box = 9 [false].
_YOLOV3 = {"num_classes": 20, "num_box": 3, "confidence_threshold": 0.01, "nms_threshold": 0.45,
           "mask_group_num": 2, "gaussian_box": False}


@dataclass
class YoloSpec:
    v3: bool
    classes: int
    num_box: int
    conf: float
    nms: float
    biases: list
    anchors_scale: list
    mask: list
    groups: int           # mask entries per bottom (mask_size / mask_group_num)


def yolo_spec(node, v3: bool, n_bottoms: int) -> YoloSpec:
    field = "yolov3_detection_output_param" if v3 else "yolo_detection_output_param"
    p = ForkParams(node, field)
    if not p.has("num_classes"):
        bad(node, f"{field} needs num_classes", p.span())
    classes, num_box = _int(node, p, "num_classes"), _int(node, p, "num_box")
    if classes < 1 or num_box < 1:
        bad(node, f"num_classes ({classes}) and num_box ({num_box}) must be positive", p.span())
    biases = [float(b) for b in p.all("biases")]
    conf, nms = float(np.float32(p.get("confidence_threshold"))), float(np.float32(p.get("nms_threshold")))
    if not v3:
        if not p.has("coords") or _int(node, p, "coords") == 4:
            pass
        else:
            bad(node, "yolo_detection_output_param.coords must be 4 (get_region_box reads 4 values)", p.span())
        if len(biases) < 2 * num_box:
            bad(node, f"{len(biases)} biases for {num_box} boxes; give 2 per box", p.span())
        return YoloSpec(False, classes, num_box, conf, nms, biases, [], list(range(num_box)), num_box)
    if _flag(p.get("gaussian_box")):
        bad(node, "gaussian_box (Gaussian YOLOv3) is not supported", p.span())
    groups_num = _int(node, p, "mask_group_num")
    # LayerSetUp: CHECK_EQ(bottom.size(), mask_group_num).
    if groups_num != n_bottoms:
        bad(node, f"mask_group_num {groups_num} must equal the number of bottoms ({n_bottoms})", p.span())
    mask = [int(m) for m in p.all("mask")]
    anchors = [int(a) for a in p.all("anchors_scale")]
    groups = len(mask) // groups_num
    if len(anchors) < n_bottoms:
        bad(node, f"{len(anchors)} anchors_scale values for {n_bottoms} bottoms", p.span())
    need = (n_bottoms - 1) * groups + num_box
    if len(mask) < need:
        bad(node, f"{len(mask)} mask values; the {n_bottoms} bottoms read {need}", p.span())
    if any(2 * m + 1 >= len(biases) for m in mask[:need]):
        bad(node, f"a mask value points past the {len(biases)} biases", p.span())
    return YoloSpec(True, classes, num_box, conf, nms, biases, anchors, mask, groups)


class _YoloOutput(Layer):
    family = "shape"
    v3 = False
    bottoms = (1, None)
    selects = True      # verify: compared on the export's bottoms (its NMS decides on near-equal scores)

    @staticmethod
    def comparable(got, want):
        """For verify: rows of (nearly) equal score, of any class, come out in either order
        (one class-agnostic NMS, rows in score order); see postproc.match_tied_rows."""
        return match_tied_rows(got, want, by_label=False)

    def infer_shapes(self, node, in_shapes):
        spec = yolo_spec(node, self.v3, len(in_shapes))
        for i, s in enumerate(in_shapes):
            need_rank(node, s, 4, i)
            if s[1] != spec.num_box * (5 + spec.classes):
                bad(node, f"bottom '{node.inputs[i].label}' {fmt_shape(s)} needs num_box {spec.num_box} x "
                          f"(5 + {spec.classes} classes) = {spec.num_box * (5 + spec.classes)} channels",
                    node.bottom_span(i), code=codes.SHAPE_MISMATCH)
        if not self.v3 and len(in_shapes) > 2:
            bad(node, "YoloDetectionOutput reads at most 2 bottoms", node.bottom_span(2))
        # Reshape: one (fake) row of 7 values; Forward writes one per kept box.
        return [(1, 1, 1, 7)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": sum(4 * prod(s) for s in in_shapes)}

    def to_onnx(self, node, g):
        """Sigmoid/Exp box decoding, one class-agnostic NonMaxSuppression, the rows in score order."""
        lower_yolo(node, g, yolo_spec(node, self.v3, g.n_in))


@register("YoloDetectionOutput")
class YoloDetectionOutput(_YoloOutput):
    """YOLOv2 boxes (eric612/MobileNet-YOLO yolo_detection_output_layer.cpp): per cell and
    anchor, the best class of a softmax, times the sigmoid objectness; boxes kept at or above
    confidence_threshold, then one class-agnostic NMS; rows (0, class + 1, score, corners)."""
    checked_against = "eric612/MobileNet-YOLO src/caffe/layers/yolo_detection_output_layer.cpp and caffe.proto"
    fork_defaults = _YOLO


@register("Yolov3DetectionOutput")
class Yolov3DetectionOutput(_YoloOutput):
    """YOLOv3 boxes (eric612/MobileNet-YOLO yolov3_detection_output_layer.cpp): every class
    whose sigmoid times the objectness exceeds confidence_threshold is a candidate; one
    class-agnostic NMS over all of them; rows (0, class + 1, score, corners)."""
    checked_against = "eric612/MobileNet-YOLO src/caffe/layers/yolov3_detection_output_layer.cpp, src/caffe/util/bbox_util.cpp"

    v3 = True
    fork_defaults = _YOLOV3


def lower_yolo(node, g, spec: YoloSpec):
    """Candidates as (box, score) pairs, one class-agnostic NonMaxSuppression (Caffe's ApplyNms
    is greedy over the score-sorted list and suppresses at IoU >= nms_threshold; ONNX suppresses
    above its threshold, so it gets the float32 just below), the rows in score order."""
    if spec.nms <= 0:
        g.fail(f"nms_threshold {spec.nms} suppresses every box after the first; ONNX NonMaxSuppression "
               "takes thresholds in (0, 1]")
    if any(any(g.in_dyn(i)) for i in range(g.n_in)):
        g.fail(f"{node.type} is exported for a fixed batch", notes=["export with --batch N"])
    boxes, scores, labels = [], [], []
    nb, k = spec.num_box, 5 + spec.classes
    for t in range(g.n_in):
        n, c, h, w = g.in_shape(t)
        if not spec.v3 and h != w:
            g.fail(f"bottom {t} is {h} x {w}: YoloDetectionOutput walks a side x side grid with side = width")
        tag = f"b{t}"
        x = g.op("Reshape", [_to_f32(g, g.x(t)), g.ints([n, nb, k, h * w], f"{tag}_shape")], g.tmp(f"{tag}_r"))
        parts = [g.tmp(f"{tag}_{s}") for s in ("xy", "wh", "obj", "cls")]
        g.op("Split", [x, g.ints([2, 2, 1, spec.classes], "split")], parts, axis=2)
        xy = g.op("Sigmoid", [parts[0]], g.tmp(f"{tag}_xy_s"))
        wh = g.op("Exp", [parts[1]], g.tmp(f"{tag}_wh_e"))
        obj = g.op("Sigmoid", [parts[2]], g.tmp(f"{tag}_obj_s"))
        # get_region_box: x = (col + sig) / W, y = (row + sig) / H, w = exp * bias_w / nw,
        # h = exp * bias_h / nh; v2 divides all by side = W, v3 by W, H and W*scale, H*scale
        # (its correct_yolo_boxes is the identity, since the net size is W*scale x H*scale).
        cells = np.arange(h * w)
        grid = np.stack([cells % w, cells // w]).astype(np.float32)[None, None]          # (1, 1, 2, HW)
        if spec.v3:
            scale_t = spec.anchors_scale[t]
            div_xy = np.array([w, h], np.float32)
            m = [spec.mask[j + t * spec.groups] for j in range(nb)]
            div_wh = np.array([w * scale_t, h * scale_t], np.float32)
        else:
            div_xy = np.array([w, w], np.float32)
            m = list(range(nb))
            div_wh = div_xy
        anchors = np.array([[spec.biases[2 * a], spec.biases[2 * a + 1]] for a in m], np.float32)[None, :, :, None]
        cxy = g.op("Div", [g.op("Add", [xy, _f32(g, grid, f"{tag}_grid")], g.tmp(f"{tag}_gxy")),
                           _f32(g, div_xy[None, None, :, None], f"{tag}_div_xy")], g.tmp(f"{tag}_cxy"))
        bwh = g.op("Div", [g.op("Mul", [wh, _f32(g, anchors, f"{tag}_anchors")], g.tmp(f"{tag}_awh")),
                           _f32(g, div_wh[None, None, :, None], f"{tag}_div_wh")], g.tmp(f"{tag}_bwh"))
        half = g.op("Mul", [bwh, _f32(g, 0.5, "half")], g.tmp(f"{tag}_half"))
        corners = g.op("Concat", [g.op("Sub", [cxy, half], g.tmp(f"{tag}_lo")), g.op("Add", [cxy, half], g.tmp(f"{tag}_hi"))],
                       g.tmp(f"{tag}_corners"), axis=2)                                   # (N, nb, 4, HW)
        corners = g.op("Transpose", [corners], g.tmp(f"{tag}_ct"), perm=[0, 1, 3, 2])      # (N, nb, HW, 4)
        corners = g.op("Reshape", [corners, g.ints([-1, 4], "rows4")], g.tmp(f"{tag}_boxes"))  # (B, 4)
        if spec.v3:
            cls = g.op("Mul", [g.op("Sigmoid", [parts[3]], g.tmp(f"{tag}_cls_s")), obj], g.tmp(f"{tag}_conf"))
            cls = g.op("Transpose", [cls], g.tmp(f"{tag}_conf_t"), perm=[0, 1, 3, 2])     # (N, nb, HW, C)
            cls = g.op("Reshape", [cls, g.ints([-1], "flat")], g.tmp(f"{tag}_scores"))   # (B*C,)
            # One candidate per (box, class): the box repeated for each class.
            rep = g.op("Expand", [g.op("Unsqueeze", [corners, g.ints([1], "axis1")], g.tmp(f"{tag}_bu")),
                                  g.ints([1, spec.classes, 1], f"{tag}_rep")], g.tmp(f"{tag}_be"))
            boxes.append(g.op("Reshape", [rep, g.ints([-1, 4], "rows4")], g.tmp(f"{tag}_cand")))
            lab = np.tile(np.arange(1, spec.classes + 1, dtype=np.float32), n * nb * h * w)
            labels.append(_f32(g, lab, f"{tag}_labels"))
            scores.append(cls)
        else:
            prob = g.op("Softmax", [parts[3]], g.tmp(f"{tag}_prob"), axis=2)
            best = g.op("ReduceMax", [prob], g.tmp(f"{tag}_best"), axes=[2], keepdims=1) if g.opset < 18 else \
                g.op("ReduceMax", [prob, g.ints([2], "axis2")], g.tmp(f"{tag}_best"), keepdims=1)
            # class_index_and_score keeps the first of equal maxima (strict >), as ArgMax does.
            arg = g.op("ArgMax", [prob], g.tmp(f"{tag}_arg"), axis=2, keepdims=1, select_last_index=0)
            conf = g.op("Mul", [obj, best], g.tmp(f"{tag}_conf"))
            scores.append(g.op("Reshape", [conf, g.ints([-1], "flat")], g.tmp(f"{tag}_scores")))
            lab = g.op("Add", [g.op("Cast", [arg], g.tmp(f"{tag}_arg_f"), to=1), _f32(g, 1.0, "one")], g.tmp(f"{tag}_lab"))
            labels.append(g.op("Reshape", [lab, g.ints([-1], "flat")], g.tmp(f"{tag}_labels")))
            boxes.append(corners)
    cat = (lambda xs, t: xs[0] if len(xs) == 1 else g.op("Concat", xs, g.tmp(t), axis=0))
    allb, alls, alll = cat(boxes, "all_boxes"), cat(scores, "all_scores"), cat(labels, "all_labels")
    # v3 keeps scores > threshold, v2 scores >= threshold (the float32 just below it).
    thr = np.float32(spec.conf) if spec.v3 else np.nextafter(np.float32(spec.conf), np.float32(-np.inf))
    iou = np.nextafter(np.float32(min(spec.nms, 1.0)), np.float32(0))
    total = sum(g.in_shape(t)[0] * spec.num_box * g.in_shape(t)[2] * g.in_shape(t)[3] for t in range(g.n_in))
    total *= spec.classes if spec.v3 else 1
    sel = g.op("NonMaxSuppression", [g.op("Unsqueeze", [allb, g.ints([0], "axis0")], g.tmp("nms_boxes")),
                                      g.op("Reshape", [alls, g.ints([1, 1, -1], "nms_s_shape")], g.tmp("nms_scores")),
                                      g.ints([total], "max_out"), _f32(g, [iou], "iou"), _f32(g, [thr], "score_thr")],
               g.tmp("selected"))
    idx = g.op("Gather", [sel, g.ints(2, "col2")], g.tmp("kept"), axis=1)                     # (M,)
    score = g.op("Unsqueeze", [g.op("Gather", [alls, idx], g.tmp("kept_s"), axis=0), g.ints([1], "axis1")], g.tmp("ks"))
    label = g.op("Unsqueeze", [g.op("Gather", [alll, idx], g.tmp("kept_l"), axis=0), g.ints([1], "axis1")], g.tmp("kl"))
    box = g.op("Gather", [allb, idx], g.tmp("kept_b"), axis=0)
    zero = g.op("Mul", [score, _f32(g, 0.0, "zero")], g.tmp("image0"))
    rows = g.op("Concat", [zero, label, score, box], g.tmp("rows"), axis=1)
    n0 = g.in_shape(0)[0]
    fake = np.full((n0, 7), -1.0, np.float32)
    fake[:, 0] = np.arange(n0)
    both = g.op("Concat", [rows, _f32(g, fake, "no_detection")], g.tmp("rows_or_fake"), axis=0)
    count = g.op("Slice", [g.op("Shape", [rows], g.tmp("rows_shape")), g.ints([0], "s0"), g.ints([1], "s1")], g.tmp("count"))
    none = g.op("Cast", [g.op("Equal", [count, g.ints([0], "zero_i")], g.tmp("none_b"))], g.tmp("none"), to=7)
    end = g.op("Add", [count, g.op("Mul", [none, g.ints([n0], "n_images")], g.tmp("fake_n"))], g.tmp("end"))
    out = g.op("Slice", [both, g.ints([0], "start0"), end, g.ints([0], "axis0s")], g.tmp("detections"))
    out = g.op("Reshape", [out, g.ints([1, 1, -1, 7], "out_shape")], g.tmp("detections4"))
    _from_f32(g, out, g.y(0))
    g.free_dim(0, 2, f"{node.name}_detections")
