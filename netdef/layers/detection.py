"""Detection layers of Caffe forks: SSD's heads and post-processing, R-CNN's region pooling, and
the outputs of the YOLO ports. Their parameters are fork fields, read through ForkParams with
the defaults each fork's caffe.proto declares (field numbers noted beside them).

Sources, read for every rule below (the comment above a rule names the file):
  SSD            weiliu89/caffe, branch ssd (4817bf8): src/caffe/layers/{permute,normalize,
                 prior_box,detection_output}_layer.cpp, src/caffe/util/bbox_util.cpp
  Fast R-CNN     rbgirshick/caffe-fast-rcnn: src/caffe/layers/roi_pooling_layer.cpp
  R-FCN          daijifeng001/caffe-rfcn: src/caffe/layers/psroi_pooling_layer.cpp
  YOLO (v2, v3)  eric612/MobileNet-YOLO (69b4441): src/caffe/layers/yolo_detection_output_layer.cpp,
                 yolov3_detection_output_layer.cpp, src/caffe/util/bbox_util.cpp (get_region_box)
  Region         openvinotoolkit/training_toolbox_caffe (2137b63): src/caffe/layers/region_layer.cpp

Layers whose number of output rows depends on the data (DetectionOutput and the YOLO outputs)
report Caffe's own setup shape, one row of 7; the exported model's row axis is symbolic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import codes
from ..proto import pb
from .base import Layer, bad, fmt_shape, need_rank, prod, register
from .fork import ForkParams, _int


class _LazyNumpy:
    """numpy, imported when first used: the layer registry imports this module for every
    command, and `netdef check` of a net without detection layers never needs numpy (its
    import alone is more than the rest of a small check; see tests/test_startup.py)."""

    def __getattr__(self, name):
        import numpy
        globals()["np"] = numpy
        return getattr(numpy, name)


np = _LazyNumpy()

FLT_MAX = 3.4028234663852886e+38   # float(np.finfo(np.float32).max), without importing numpy


def _f32(g, value, suffix: str) -> str:
    """A float32 constant whatever the compute type (the detection post-processing runs in
    float32: onnxruntime's NonMaxSuppression takes float32 boxes only)."""
    arr = np.asarray(value, dtype=np.float32)
    return g.ex.add_init(f"{g.node.name}.{suffix}", arr.shape, np.float32, lambda: arr)


def _to_f32(g, x: str) -> str:
    if not g.fp16:
        return x
    from ..export.onnx_proto import TensorProto
    return g.op("Cast", [x], g.tmp("to_float32"), to=TensorProto.FLOAT)


def _from_f32(g, x: str, out: str) -> str:
    if not g.fp16:
        return g.op("Identity", [x], out)
    from ..export.onnx_proto import TensorProto
    return g.op("Cast", [x], out, to=TensorProto.FLOAT16)


def _flag(v) -> bool:
    return bool(v) and str(v).lower() not in ("false", "0")


# --- SSD: Permute, Normalize ------------------------------------------------------------------

@register("Permute")
class Permute(Layer):
    checked_against = "weiliu89/caffe (ssd) src/caffe/layers/permute_layer.cpp"
    def infer_shapes(self, node, in_shapes):
        shape = in_shapes[0]
        n = len(shape)
        p = ForkParams(node, "permute_param")
        order = []
        for o in p.all("order"):
            if not isinstance(o, int) or not 0 <= o < n:
                bad(node, f"permute order {o!r} is not an axis of the {n}-D bottom {fmt_shape(shape)}",
                    p.span("order"), code=codes.BAD_AXIS)
            if o in order:
                bad(node, f"axis {o} appears twice in the permute order", p.span("order"), code=codes.BAD_AXIS)
            order.append(o)
        # SSD's PermuteLayer appends the axes the order leaves out, in their original order.
        order += [i for i in range(n) if i not in order]
        node.meta["permute_order"] = order
        return [tuple(shape[i] for i in order)]

    def receptive_field(self, node, in_rfs):
        order = node.meta.get("permute_order", [])
        keeps_spatial = order[-2:] == [len(order) - 2, len(order) - 1]
        return [in_rfs[0] if keeps_spatial else None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Transpose."""
        order = node.meta.get("permute_order")
        if order is None:
            g.fail("the permute order is unknown")
        g.op("Transpose", [g.x(0)], g.y(0), perm=list(order))


# NormalizeParameter (weiliu89/caffe caffe.proto): across_spatial = 1 [true], scale_filler = 2,
# channel_shared = 3 [true], eps = 4 [1e-10].
_NORMALIZE = {"across_spatial": True, "channel_shared": True, "eps": 1e-10}


@register("Normalize")
class Normalize(Layer):
    checked_against = "weiliu89/caffe (ssd) src/caffe/layers/normalize_layer.cpp"
    fork_defaults = _NORMALIZE
    elementwise = True

    def param_shapes(self, node, in_shapes):
        p = ForkParams(node, "norm_param")
        # SSD's NormalizeLayer makes a shared scale a blob with no axes (vector<int>(0)).
        return [()] if p.get("channel_shared") else [(in_shapes[0][1],)]

    def filler_params(self, node):
        p = ForkParams(node, "norm_param")
        raw = p.get("scale_filler")
        f = pb.FillerParameter()
        if isinstance(raw, dict):
            f.type = str((raw.get("type") or ["constant"])[-1])
            f.value = float((raw.get("value") or [1.0])[-1])
        else:
            f.type, f.value = "constant", 1.0  # NormalizeLayer's default scale
        return [f]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 4 * prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """SSD's L2 normalisation with its learnt per-channel (or shared) scale."""
        p = ForkParams(node, "norm_param")
        shape = g.in_shape(0)
        eps = float(p.get("eps"))
        sq = g.op("Mul", [g.x(0), g.x(0)], g.tmp("sq"))
        # SSD's NormalizeLayer: sqrt(sum of squares + eps), over C*H*W or over channels per pixel.
        axes = list(range(1, len(shape))) if p.get("across_spatial") else [1]
        ssum = g.reduce("ReduceSum", sq, axes, 1)
        norm = g.op("Sqrt", [g.op("Add", [ssum, g.const(eps, "eps")], g.tmp("sum_eps"))], g.tmp("norm"))
        y = g.op("Div", [g.x(0), norm], g.tmp("normalized"))
        sshape = g.blob_shape(0)
        if sshape:
            sshape = (1, sshape[0]) + (1,) * (len(shape) - 2)
        g.op("Mul", [y, g.param(0, "scale", sshape if sshape else (1,))], g.y(0))


# --- SSD: PriorBox ----------------------------------------------------------------------------

# PriorBoxParameter (weiliu89/caffe caffe.proto): min_size = 1, max_size = 2, aspect_ratio = 3
# (all repeated float), flip = 4 [true], clip = 5 [false], variance = 6 (repeated), img_size = 7,
# img_h = 8, img_w = 9, step = 10, step_h = 11, step_w = 12, offset = 13 [0.5].
_PRIOR_BOX = {"flip": True, "clip": False, "offset": 0.5}


@dataclass
class PriorSpec:
    min_sizes: list
    max_sizes: list
    ratios: list          # aspect_ratios_ as LayerSetUp builds it: 1 first, then each new r (and 1/r)
    clip: bool
    variance: list        # 1 or 4 values
    img_h: int
    img_w: int
    step_h: float
    step_w: float
    offset: float

    @property
    def num_priors(self) -> int:
        return len(self.ratios) * len(self.min_sizes) + len(self.max_sizes)


def _num(node, p, name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        bad(node, f"prior_box_param.{name} must be a number, got {v!r}", p.span(name))
    return v


def prior_spec(node) -> PriorSpec:
    """PriorBoxLayer::LayerSetUp (weiliu89/caffe src/caffe/layers/prior_box_layer.cpp), with
    its CHECKs as errors."""
    p = ForkParams(node, "prior_box_param")
    mins = [_num(node, p, "min_size", v) for v in p.all("min_size")]
    if not mins:
        bad(node, "prior_box_param has no min_size (PriorBoxLayer requires one)", p.span())
    if any(m <= 0 for m in mins):
        bad(node, f"min_size must be positive, got {mins}", p.span("min_size"))
    ratios = [1.0]
    flip = _flag(p.get("flip"))
    for ar in p.all("aspect_ratio"):
        ar = float(np.float32(_num(node, p, "aspect_ratio", ar)))
        if ar <= 0:
            bad(node, f"aspect_ratio must be a positive number, got {ar!r}", p.span("aspect_ratio"))
        # A ratio within 1e-6 of one already listed is ignored.
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(ar)
            if flip:
                ratios.append(float(np.float32(1.0 / ar)))
    maxs = [_num(node, p, "max_size", v) for v in p.all("max_size")]
    if maxs:
        if len(maxs) != len(mins):
            bad(node, f"{len(maxs)} max_size values for {len(mins)} min_size values", p.span("max_size"))
        for lo, hi in zip(mins, maxs):
            if hi <= lo:
                bad(node, f"max_size {hi} must be greater than min_size {lo}", p.span("max_size"))
    variance = [_num(node, p, "variance", v) for v in p.all("variance")]
    if len(variance) > 1 and len(variance) != 4:
        bad(node, f"prior_box_param has {len(variance)} variance values; give 1 or 4", p.span("variance"))
    if any(v <= 0 for v in variance):
        bad(node, f"variance values must be positive, got {variance}", p.span("variance"))
    variance = variance or [0.1]
    if p.has("img_h") or p.has("img_w"):
        if p.has("img_size"):
            bad(node, "give img_size or img_h/img_w, not both", p.span("img_size"))
        img_h, img_w = _int(node, p, "img_h") if p.has("img_h") else 0, _int(node, p, "img_w") if p.has("img_w") else 0
        if img_h <= 0 or img_w <= 0:
            bad(node, "img_h and img_w must both be positive", p.span("img_h"))
    elif p.has("img_size"):
        img_h = img_w = _int(node, p, "img_size")
        if img_h <= 0:
            bad(node, "img_size must be positive", p.span("img_size"))
    else:
        img_h = img_w = 0
    if p.has("step_h") or p.has("step_w"):
        if p.has("step"):
            bad(node, "give step or step_h/step_w, not both", p.span("step"))
        step_h = _num(node, p, "step_h", p.get("step_h") or 0)
        step_w = _num(node, p, "step_w", p.get("step_w") or 0)
        if step_h <= 0 or step_w <= 0:
            bad(node, "step_h and step_w must both be positive", p.span("step_h"))
    elif p.has("step"):
        step_h = step_w = _num(node, p, "step", p.get("step"))
        if step_h <= 0:
            bad(node, "step must be positive", p.span("step"))
    else:
        step_h = step_w = 0
    return PriorSpec(mins, maxs, ratios, _flag(p.get("clip")), variance, img_h, img_w,
                     float(step_h), float(step_w), float(_num(node, p, "offset", p.get("offset"))))


def prior_boxes(spec: PriorSpec, layer_h: int, layer_w: int, image_h: int, image_w: int) -> np.ndarray:
    """PriorBoxLayer::Forward_cpu as whole arrays: (1, 2, H*W*priors*4), corners then variances.
    Caffe's float arithmetic is kept where it rounds: the centres and steps are float, each
    corner is computed in double and stored as float."""
    f32 = np.float32
    img_w = spec.img_w if spec.img_h and spec.img_w else image_w
    img_h = spec.img_h if spec.img_h and spec.img_w else image_h
    if spec.step_w == 0 or spec.step_h == 0:
        step_w, step_h = f32(img_w) / f32(layer_w), f32(img_h) / f32(layer_h)
    else:
        step_w, step_h = f32(spec.step_w), f32(spec.step_h)
    # The ssd branch truncates the sizes to int (`int min_size_ = min_sizes_[s]`).
    sizes = []          # (box_width, box_height) per prior, in Caffe's order
    for s, lo in enumerate(spec.min_sizes):
        lo = int(lo)
        sizes.append((f32(lo), f32(lo)))
        if spec.max_sizes:
            side = f32(math.sqrt(lo * int(spec.max_sizes[s])))
            sizes.append((side, side))
        for ar in spec.ratios:
            if abs(ar - 1.0) < 1e-6:
                continue
            sizes.append((f32(lo * math.sqrt(ar)), f32(lo / math.sqrt(ar))))
    bw = np.array([w for w, _ in sizes], np.float64)
    bh = np.array([h for _, h in sizes], np.float64)
    cx = ((np.arange(layer_w, dtype=f32) + f32(spec.offset)) * step_w).astype(np.float64)
    cy = ((np.arange(layer_h, dtype=f32) + f32(spec.offset)) * step_h).astype(np.float64)
    cxg = cx[None, :, None]
    cyg = cy[:, None, None]
    boxes = np.stack(np.broadcast_arrays((cxg - bw / 2.0) / img_w, (cyg - bh / 2.0) / img_h,
                                         (cxg + bw / 2.0) / img_w, (cyg + bh / 2.0) / img_h), axis=-1)
    boxes = boxes.astype(np.float32).reshape(-1)
    if spec.clip:
        boxes = np.minimum(np.maximum(boxes, 0.0), 1.0).astype(np.float32)
    var = np.resize(np.asarray(spec.variance, np.float32), boxes.size) if len(spec.variance) == 4 else \
        np.full(boxes.size, spec.variance[0], np.float32)
    return np.stack([boxes, var]).reshape(1, 2, -1)


@register("PriorBox")
class PriorBox(Layer):
    """SSD's default boxes for one feature map. They depend only on the shapes of the bottoms,
    so the export holds them as a constant."""
    checked_against = "weiliu89/caffe (ssd) src/caffe/layers/prior_box_layer.cpp and caffe.proto"
    fork_defaults = _PRIOR_BOX

    bottoms = (2, 2)
    reads_values = False      # only the bottoms' shapes matter: --outputs does not keep their producers

    def num_priors(self, node) -> int:
        return prior_spec(node).num_priors

    def infer_shapes(self, node, in_shapes):
        feat = in_shapes[0]
        need_rank(node, feat, 4)
        spec = prior_spec(node)
        if not (spec.img_h and spec.img_w):
            # Forward reads the image size from bottom 1's height and width.
            need_rank(node, in_shapes[1], 4, 1)
        # (1, 2, H*W*priors*4): box corners, then their variances.
        n = feat[2] * feat[3] * spec.num_priors * 4
        if n <= 0:
            bad(node, f"the feature map {fmt_shape(feat)} gives no priors", code=codes.BAD_GEOMETRY)
        return [(1, 2, n)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """A constant: PriorBoxLayer::Forward_cpu evaluated at export time."""
        if any(g.in_dyn(0)[2:]) or any(g.in_dyn(1)[2:]):
            g.fail("the priors depend on spatial sizes that are not fixed")
        feat, img = g.in_shape(0), g.in_shape(1)
        spec = prior_spec(node)
        values = prior_boxes(spec, feat[2], feat[3], img[2] if len(img) > 3 else 0, img[3] if len(img) > 3 else 0)
        g.op("Identity", [g.const(values, "priors")], g.y(0))


# --- SSD: DetectionOutput ---------------------------------------------------------------------

# DetectionOutputParameter (weiliu89/caffe caffe.proto): num_classes = 1 (required),
# share_location = 2 [true], background_label_id = 3 [0], nms_param = 4, save_output_param = 5,
# code_type = 6 [CORNER], keep_top_k = 7 [-1], variance_encoded_in_target = 8 [false],
# confidence_threshold = 9 (absent: -FLT_MAX). NonMaximumSuppressionParameter: nms_threshold = 1
# [0.3], top_k = 2 (absent: -1), eta = 3 [1.0].
_DETECTION_OUTPUT = {"share_location": True, "background_label_id": 0, "code_type": 1, "keep_top_k": -1,
                     "variance_encoded_in_target": False}
CODE_TYPES = {"CORNER": 1, "CENTER_SIZE": 2, "CORNER_SIZE": 3}
# nms_param's defaults (NonMaximumSuppressionParameter, above); the reference reads them too.
NMS_PARAM = {"nms_threshold": 0.3, "top_k": -1, "eta": 1.0}


@dataclass
class DetectionSpec:
    num_classes: int
    share_location: bool
    background: int
    code_type: int
    variance_encoded: bool
    keep_top_k: int
    confidence_threshold: float
    nms_threshold: float
    top_k: int
    eta: float


def detection_spec(node) -> DetectionSpec:
    """DetectionOutputLayer::LayerSetUp (weiliu89/caffe src/caffe/layers/detection_output_layer.cpp)."""
    p = ForkParams(node, "detection_output_param")
    if not p.has("num_classes"):
        bad(node, "detection_output_param needs num_classes", p.span())
    num_classes = _int(node, p, "num_classes")
    if num_classes < 1:
        bad(node, f"num_classes must be positive, got {num_classes}", p.span("num_classes"))
    code = p.get("code_type")
    code = CODE_TYPES.get(code, code) if isinstance(code, str) else code
    if code not in (1, 2, 3):
        bad(node, f"unknown code_type {p.get('code_type')!r}", p.span("code_type"),
            notes=["allowed: CORNER, CENTER_SIZE, CORNER_SIZE"])
    nms = p.get("nms_param")
    nms = nms if isinstance(nms, dict) else {}

    def nms_value(name):
        v = nms.get(name)
        return v[-1] if v else NMS_PARAM[name]

    nms_threshold = float(nms_value("nms_threshold"))
    eta = float(nms_value("eta"))
    if nms_threshold < 0:
        bad(node, f"nms_threshold must be non-negative, got {nms_threshold}", p.span("nms_param"))
    if not 0 < eta <= 1:
        bad(node, f"nms_param.eta must be in (0, 1], got {eta}", p.span("nms_param"))
    conf = p.get("confidence_threshold")
    return DetectionSpec(num_classes, _flag(p.get("share_location")), _int(node, p, "background_label_id"), code,
                         _flag(p.get("variance_encoded_in_target")), _int(node, p, "keep_top_k"),
                         float(np.float32(conf)) if conf is not None else -FLT_MAX,
                         float(np.float32(nms_threshold)), int(nms_value("top_k")), float(np.float32(eta)))


def _legacy(shape, axis: int) -> int:
    """Blob::LegacyShape: axes past the blob's rank count as 1."""
    return shape[axis] if axis < len(shape) else 1


@register("DetectionOutput")
class DetectionOutput(Layer):
    """SSD's NMS head. Its row count depends on the data; like Caffe's setup, netdef reports one
    row of 7 values (image, label, score, xmin, ymin, xmax, ymax)."""
    checked_against = "weiliu89/caffe (ssd) src/caffe/layers/detection_output_layer.cpp, src/caffe/util/bbox_util.cpp; onnxruntime non_max_suppression.cc"
    fork_defaults = _DETECTION_OUTPUT

    bottoms = (3, 4)

    def infer_shapes(self, node, in_shapes):
        spec = detection_spec(node)
        loc, conf, prior = in_shapes[:3]
        # DetectionOutputLayer::Reshape: priors = bottom[2]->height() / 4, and the channel counts
        # of the location and confidence predictions must match them.
        num_priors = _legacy(prior, 2) // 4
        loc_classes = 1 if spec.share_location else spec.num_classes
        if _legacy(loc, 1) != num_priors * loc_classes * 4:
            bad(node, f"the location predictions {fmt_shape(loc)} need {num_priors * loc_classes * 4} channels "
                      f"for {num_priors} priors", node.bottom_span(0), code=codes.SHAPE_MISMATCH)
        if _legacy(conf, 1) != num_priors * spec.num_classes:
            bad(node, f"the confidences {fmt_shape(conf)} need {num_priors * spec.num_classes} channels for "
                      f"{num_priors} priors and {spec.num_classes} classes", node.bottom_span(1),
                code=codes.SHAPE_MISMATCH)
        if loc[0] != conf[0]:
            bad(node, f"the location predictions {fmt_shape(loc)} and confidences {fmt_shape(conf)} have "
                      "different batch sizes", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [(1, 1, 1, 7)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        # Decoding and thresholding; the NMS work depends on the data.
        n, per = in_shapes[0][0], prod(in_shapes[1][1:])
        return {"macs": 0, "flops": n * (prod(in_shapes[0][1:]) * 3 + per)}

    def to_onnx(self, node, g):
        """Box decoding as arithmetic, then per image: the top_k candidates of each class
        (TopK), NonMaxSuppression per class, keep_top_k over the image (TopK), rows ordered by
        label then score as Caffe's std::map of labels orders them."""
        lower_detection_output(node, g, detection_spec(node))


def _split4(g, x, axis, tag):
    outs = [g.tmp(f"{tag}{i}") for i in range(4)]
    return g.op("Split", [x], outs, axis=axis) if g.opset < 18 else \
        g.op("Split", [x], outs, axis=axis, num_outputs=4)


def lower_detection_output(node, g, spec: DetectionSpec):
    # One difference remains, on exactly equal scores only: Caffe orders them stably (lower prior
    # first) and onnxruntime's NonMaxSuppression pops them from a heap in no fixed order, so
    # rows of equal score may come out swapped (the set of boxes kept is the same unless the
    # tie decides an overlap or a keep_top_k cut).
    from ..export.onnx import NO_LOWERING_NOTE
    if not spec.share_location:
        g.fail("share_location: false (a box per class) has no lowering yet",
               notes=[NO_LOWERING_NOTE])
    if spec.eta < 1:
        g.fail(f"adaptive NMS (nms_param.eta {spec.eta} < 1) changes the threshold as boxes are kept; "
               "ONNX NonMaxSuppression has one fixed threshold",
               notes=[NO_LOWERING_NOTE])
    if any(any(g.in_dyn(i)) for i in range(3)):
        g.fail("DetectionOutput is exported for a fixed batch", notes=["export with --batch N"])
    n = g.in_shape(0)[0]
    num_priors = _legacy(g.in_shape(2), 2) // 4
    c = spec.num_classes
    loc = g.op("Reshape", [_to_f32(g, g.x(0)), g.ints([n, num_priors, 4], "loc_shape")], g.tmp("loc"))
    conf = g.op("Reshape", [_to_f32(g, g.x(1)), g.ints([n, num_priors, c], "conf_shape")], g.tmp("conf"))
    conf = g.op("Transpose", [conf], g.tmp("conf_t"), perm=[0, 2, 1])                 # (N, C, P)
    prior = g.op("Reshape", [_to_f32(g, g.x(2)), g.ints([2, num_priors, 4], "prior_shape")], g.tmp("prior"))
    pb_, pv = g.op("Split", [prior], [g.tmp("prior_box"), g.tmp("prior_var")], axis=0) if g.opset < 18 else \
        g.op("Split", [prior], [g.tmp("prior_box"), g.tmp("prior_var")], axis=0, num_outputs=2)
    # DecodeBBox (weiliu89/caffe src/caffe/util/bbox_util.cpp), with Caffe's operation order.
    p0, p1, p2, p3 = _split4(g, pb_, 2, "prior_c")         # (1, P, 1) each
    v = _split4(g, pv, 2, "var_c")
    l0, l1, l2, l3 = _split4(g, loc, 2, "loc_c")           # (N, P, 1) each

    def mul(a, b, t):
        return g.op("Mul", [a, b], g.tmp(t))

    def add(a, b, t):
        return g.op("Add", [a, b], g.tmp(t))

    def sub(a, b, t):
        return g.op("Sub", [a, b], g.tmp(t))

    scaled = [l0, l1, l2, l3] if spec.variance_encoded else [mul(v[i], li, f"v{i}l") for i, li in
                                                             enumerate((l0, l1, l2, l3))]
    if spec.code_type == 1:      # CORNER
        corners = [add(p, s, f"corner{i}") for i, (p, s) in enumerate(zip((p0, p1, p2, p3), scaled))]
    else:
        pw, ph = sub(p2, p0, "prior_w"), sub(p3, p1, "prior_h")
        if spec.code_type == 3:  # CORNER_SIZE
            corners = [add(p, mul(s, d, f"off{i}"), f"corner{i}")
                       for i, (p, s, d) in enumerate(zip((p0, p1, p2, p3), scaled, (pw, ph, pw, ph)))]
        else:                    # CENTER_SIZE
            half = _f32(g, 0.5, "half")
            pcx = mul(add(p0, p2, "pcx2"), half, "pcx")
            pcy = mul(add(p1, p3, "pcy2"), half, "pcy")
            cx = add(mul(scaled[0], pw, "dcx"), pcx, "cx")
            cy = add(mul(scaled[1], ph, "dcy"), pcy, "cy")
            hw = mul(mul(g.op("Exp", [scaled[2]], g.tmp("ew")), pw, "w"), half, "half_w")
            hh = mul(mul(g.op("Exp", [scaled[3]], g.tmp("eh")), ph, "h"), half, "half_h")
            corners = [sub(cx, hw, "xmin"), sub(cy, hh, "ymin"), add(cx, hw, "xmax"), add(cy, hh, "ymax")]
    boxes = g.op("Concat", corners, g.tmp("boxes"), axis=2)                                # (N, P, 4)
    labels = [k for k in range(c) if k != spec.background]
    if not labels:
        g.fail("every class is the background class")
    iou = _f32(g, [min(spec.nms_threshold, 1.0)], "iou_threshold")
    score_thr = _f32(g, [spec.confidence_threshold], "score_threshold")
    k = num_priors if spec.top_k < 0 or spec.top_k >= num_priors else spec.top_k
    rows = []
    for i in range(n):
        tag = f"img{i}"
        take = g.ints([i], f"{tag}_index")
        b_i = g.op("Gather", [boxes, take], g.tmp(f"{tag}_boxes"), axis=0)               # (1, P, 4)
        s_i = g.op("Gather", [conf, take], g.tmp(f"{tag}_conf"), axis=0)                 # (1, C, P)
        s_i = g.op("Gather", [s_i, g.ints(labels, "labels_idx")], g.tmp(f"{tag}_scores"), axis=1)  # (1, L, P)
        scores2 = g.op("Squeeze", [s_i, g.ints([0], "axis0")], g.tmp(f"{tag}_s2"))      # (L, P)
        boxes2 = g.op("Squeeze", [b_i, g.ints([0], "axis0")], g.tmp(f"{tag}_b2"))      # (P, 4)
        if k < num_priors:
            # GetMaxScoreIndex: each class's top_k scores (stable: ties keep the lower index, as
            # ONNX TopK does), then NMS among those only.
            top_v, top_i = g.op("TopK", [scores2, g.ints([k], "top_k")], [g.tmp(f"{tag}_topv"), g.tmp(f"{tag}_topi")],
                                axis=1, largest=1, sorted=1)                              # (L, k)
            cand = g.op("Gather", [boxes2, top_i], g.tmp(f"{tag}_cand"), axis=0)         # (L, k, 4)
            cscore = g.op("Unsqueeze", [top_v, g.ints([1], "axis1")], g.tmp(f"{tag}_cs"))  # (L, 1, k)
            sel = g.op("NonMaxSuppression", [cand, cscore, g.ints([k], "max_out"), iou, score_thr],
                       g.tmp(f"{tag}_sel"))                                               # (M, 3): label j, 0, slot
            cls = g.op("Gather", [sel, g.ints([0], "col0")], g.tmp(f"{tag}_cls"), axis=1)    # (M, 1)
            slot = g.op("Gather", [sel, g.ints([2], "col2")], g.tmp(f"{tag}_slot"), axis=1)  # (M, 1)
            jk = g.op("Concat", [cls, slot], g.tmp(f"{tag}_jk"), axis=1)
            prior_idx = g.op("GatherND", [top_i, jk], g.tmp(f"{tag}_prior"))            # (M,)
            score = g.op("GatherND", [top_v, jk], g.tmp(f"{tag}_score"))                # (M,)
        else:
            sel = g.op("NonMaxSuppression", [g.op("Unsqueeze", [boxes2, g.ints([0], "axis0u")], g.tmp(f"{tag}_b3")),
                                              s_i, g.ints([num_priors], "max_out_all"), iou, score_thr],
                       g.tmp(f"{tag}_sel"))                                               # (M, 3): 0, label j, prior
            cls = g.op("Gather", [sel, g.ints([1], "col1")], g.tmp(f"{tag}_cls"), axis=1)
            pcol = g.op("Gather", [sel, g.ints([2], "col2")], g.tmp(f"{tag}_pcol"), axis=1)
            jp = g.op("Concat", [cls, pcol], g.tmp(f"{tag}_jp"), axis=1)
            score = g.op("GatherND", [scores2, jp], g.tmp(f"{tag}_score"))
            prior_idx = g.op("Squeeze", [pcol, g.ints([1], "axis1s")], g.tmp(f"{tag}_prior"))
        cls = g.op("Squeeze", [cls, g.ints([1], "axis1s")], g.tmp(f"{tag}_cls1"))          # (M,) index into labels
        label = g.op("Gather", [_f32(g, labels, "label_values"), cls], g.tmp(f"{tag}_label"), axis=0)
        box = g.op("Gather", [boxes2, prior_idx], g.tmp(f"{tag}_box"), axis=0)            # (M, 4)
        if spec.keep_top_k > -1:
            # keep_top_k over the image: the best scores, then regrouped by label (a stable
            # ascending TopK on the label), as the std::map<label, indices> Caffe writes from.
            m = g.op("Shape", [score], g.tmp(f"{tag}_m"))
            kk = g.op("Min", [m, g.ints([spec.keep_top_k], "keep_top_k")], g.tmp(f"{tag}_kk"))
            _, order = g.op("TopK", [score, kk], [g.tmp(f"{tag}_kv"), g.tmp(f"{tag}_ko")], axis=0, largest=1, sorted=1)
            lab_k = g.op("Gather", [label, order], g.tmp(f"{tag}_lab_k"), axis=0)
            _, regroup = g.op("TopK", [lab_k, kk], [g.tmp(f"{tag}_rv"), g.tmp(f"{tag}_ro")], axis=0, largest=0, sorted=1)
            order = g.op("Gather", [order, regroup], g.tmp(f"{tag}_order"), axis=0)
            score = g.op("Gather", [score, order], g.tmp(f"{tag}_score_k"), axis=0)
            label = g.op("Gather", [label, order], g.tmp(f"{tag}_label_k"), axis=0)
            box = g.op("Gather", [box, order], g.tmp(f"{tag}_box_k"), axis=0)
        col = g.op("Unsqueeze", [score, g.ints([1], "axis1u")], g.tmp(f"{tag}_score_col"))
        lcol = g.op("Unsqueeze", [label, g.ints([1], "axis1u")], g.tmp(f"{tag}_label_col"))
        img = g.op("Add", [g.op("Sub", [lcol, lcol], g.tmp(f"{tag}_zero")), _f32(g, float(i), f"{tag}_id")],
                   g.tmp(f"{tag}_img"))
        rows.append(g.op("Concat", [img, lcol, col, box], g.tmp(f"{tag}_rows"), axis=1))  # (M, 7)
    allrows = rows[0] if len(rows) == 1 else g.op("Concat", rows, g.tmp("rows"), axis=0)
    # No detection at all: one row per image, [i, -1, -1, -1, -1, -1, -1].
    fake = np.full((n, 7), -1.0, np.float32)
    fake[:, 0] = np.arange(n)
    both = g.op("Concat", [allrows, _f32(g, fake, "no_detection")], g.tmp("rows_or_fake"), axis=0)
    count = g.op("Slice", [g.op("Shape", [allrows], g.tmp("rows_shape")), g.ints([0], "s0"), g.ints([1], "s1")],
                 g.tmp("count"))
    none = g.op("Cast", [g.op("Equal", [count, g.ints([0], "zero_i")], g.tmp("none_b"))], g.tmp("none"), to=7)
    end = g.op("Add", [count, g.op("Mul", [none, g.ints([n], "n_images")], g.tmp("fake_n"))], g.tmp("end"))
    out = g.op("Slice", [both, g.ints([0], "start0"), end, g.ints([0], "axis0s")], g.tmp("detections"))
    out = g.op("Reshape", [out, g.ints([1, 1, -1, 7], "out_shape")], g.tmp("detections4"))
    _from_f32(g, out, g.y(0))
    g.free_dim(0, 2, f"{node.name}_detections")


# --- R-CNN: ROIPooling, PSROIPooling ----------------------------------------------------------

@register("ROIPooling")
class ROIPooling(Layer):
    """Fast R-CNN: max-pool each region of interest (bottom 1 rows) to pooled_h x pooled_w."""
    checked_against = "rbgirshick/caffe-fast-rcnn src/caffe/layers/roi_pooling_layer.cpp; onnxruntime roi_pool.cc"
    # ROIPoolingParameter (rbgirshick/caffe-fast-rcnn caffe.proto): pooled_h = 1 [0],
    # pooled_w = 2 [0], spatial_scale = 3 [1].
    fork_defaults = {"pooled_h": 0, "pooled_w": 0, "spatial_scale": 1.0}

    bottoms = (2, 2)

    def infer_shapes(self, node, in_shapes):
        feat, rois = in_shapes
        need_rank(node, feat, 4)
        # ROIPoolingParameter (rbgirshick/caffe-fast-rcnn caffe.proto): pooled_h = 1 [0],
        # pooled_w = 2 [0], spatial_scale = 3 [1]; LayerSetUp checks both sizes > 0, Reshape that
        # the regions are 5 values (C*H*W == 5).
        p = ForkParams(node, "roi_pooling_param")
        ph, pw = _int(node, p, "pooled_h"), _int(node, p, "pooled_w")
        if ph <= 0 or pw <= 0:
            bad(node, "roi_pooling_param needs positive pooled_h and pooled_w", p.span())
        if prod(rois[1:]) != 5:
            bad(node, f"the regions '{node.inputs[1].label}' {fmt_shape(rois)} must be rows of 5 values "
                      "(batch index, x1, y1, x2, y2)", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [(rois[0], feat[1], ph, pw)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """ONNX MaxRoiPool. onnxruntime's kernel (onnxruntime/core/providers/cpu/object_detection/
        roi_pool.cc) computes what ROIPoolingLayer::Forward_cpu (rbgirshick/caffe-fast-rcnn
        src/caffe/layers/roi_pooling_layer.cpp) does, step for step: corners round()ed after
        scaling in float, sizes at least 1, bins floor/ceil of float products, clipped to the
        map, empty bins 0. Rows of bottom 1 are (batch index, x1, y1, x2, y2)."""
        p = ForkParams(node, "roi_pooling_param")
        rois = g.in_shape(1)
        if len(rois) < 2 or prod(rois[1:]) != 5:
            g.fail(f"the regions must be (R, 5) rows, got {rois}")
        r = g.op("Reshape", [g.x(1), g.ints([-1, 5], "rois_shape")], g.tmp("rois"))
        g.op("MaxRoiPool", [g.x(0), r], g.y(0), pooled_shape=[int(p.get("pooled_h")), int(p.get("pooled_w"))],
             spatial_scale=float(np.float32(p.get("spatial_scale"))))


# PSROIPoolingParameter (daijifeng001/caffe-rfcn caffe.proto): spatial_scale = 1, output_dim = 2,
# group_size = 3, all required.
@register("PSROIPooling")
class PSROIPooling(Layer):
    """R-FCN's position-sensitive average pooling: bin (i, j) of output channel k averages input
    channel (k * group + i) * group + j over the bin."""
    checked_against = "daijifeng001/caffe-rfcn src/caffe/layers/psroi_pooling_layer.cpp and caffe.proto"

    bottoms = (2, 2)

    def spec(self, node):
        p = ForkParams(node, "psroi_pooling_param")
        for name in ("spatial_scale", "output_dim", "group_size"):
            if not p.has(name):
                bad(node, f"psroi_pooling_param needs {name} (a required field of R-FCN's schema)", p.span())
        out, group = _int(node, p, "output_dim"), _int(node, p, "group_size")
        if out <= 0 or group <= 0:
            bad(node, f"output_dim and group_size must be positive, got {out} and {group}", p.span())
        scale = p.get("spatial_scale")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            bad(node, f"psroi_pooling_param.spatial_scale must be a number, got {scale!r}", p.span())
        return float(np.float32(scale)), out, group

    def infer_shapes(self, node, in_shapes):
        feat, rois = in_shapes
        need_rank(node, feat, 4)
        scale, out, group = self.spec(node)
        # PSROIPoolingLayer::Reshape: channels == output_dim * group_size^2; top (R, output_dim,
        # group, group).
        if feat[1] != out * group * group:
            bad(node, f"the input has {feat[1]} channels; output_dim {out} x group_size {group}^2 needs "
                      f"{out * group * group}", node.bottom_span(0), code=codes.SHAPE_MISMATCH)
        if prod(rois[1:]) != 5:
            bad(node, f"the regions '{node.inputs[1].label}' {fmt_shape(rois)} must be rows of 5 values "
                      "(batch index, x1, y1, x2, y2)", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [(rois[0], out, group, group)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": prod(out_shapes[0])}

    def to_onnx(self, node, g):
        """Each bin's sum from a summed-area table (CumSum in float64, so that the differences
        lose nothing), gathered at the bin corners Caffe computes: corners round()ed (halves away
        from zero) before scaling, end + 1, size at least 0.1, bin edges floor/ceil of float
        products, clipped to the map; the mean over the bin, 0 for an empty one."""
        from ..export.onnx_proto import TensorProto
        scale, out_dim, group = self.spec(node)
        n, c, h, w = g.in_shape(0)
        if any(g.in_dyn(0)):
            g.fail("PSROIPooling is exported for a fixed batch", notes=["export with --batch N"])
        x = g.op("Cast", [g.x(0)], g.tmp("f64"), to=TensorProto.DOUBLE)
        x = g.op("Pad", [x, g.ints([0, 0, 1, 1, 0, 0, 0, 0], "sat_pads")], g.tmp("padded"), mode="constant")
        x = g.op("CumSum", [x, g.ints(2, "axis_h")], g.tmp("cum_h"))
        sat = g.op("CumSum", [x, g.ints(3, "axis_w")], g.tmp("sat"))                     # (N, C, H+1, W+1)
        flat = g.op("Reshape", [sat, g.ints([-1], "flat")], g.tmp("sat_flat"))
        rois = g.op("Reshape", [_to_f32(g, g.x(1)), g.ints([-1, 5], "rois_shape")], g.tmp("rois"))
        cols = [g.tmp(f"roi{i}") for i in range(5)]
        g.op("Split", [rois], cols, axis=1) if g.opset < 18 else g.op("Split", [rois], cols, axis=1, num_outputs=5)

        def c_round(v, t):
            # C's round(): halves away from zero (ONNX Round rounds them to even).
            r = g.op("Round", [v], g.tmp(f"{t}_r"))
            frac = g.op("Sub", [v, g.op("Floor", [v], g.tmp(f"{t}_fl"))], g.tmp(f"{t}_frac"))
            half = g.op("Equal", [frac, _f32(g, 0.5, "half")], g.tmp(f"{t}_half"))
            away = g.op("Add", [v, g.op("Mul", [g.op("Sign", [v], g.tmp(f"{t}_sign")), _f32(g, 0.5, "half")],
                                            g.tmp(f"{t}_hs"))], g.tmp(f"{t}_away"))
            return g.op("Where", [half, away, r], g.tmp(f"{t}_round"))

        s = _f32(g, scale, "scale")
        one = _f32(g, 1.0, "one")
        start_w = g.op("Mul", [c_round(cols[1], "x1"), s], g.tmp("start_w"))
        start_h = g.op("Mul", [c_round(cols[2], "y1"), s], g.tmp("start_h"))
        end_w = g.op("Mul", [g.op("Add", [c_round(cols[3], "x2"), one], g.tmp("x2p")), s], g.tmp("end_w"))
        end_h = g.op("Mul", [g.op("Add", [c_round(cols[4], "y2"), one], g.tmp("y2p")), s], g.tmp("end_h"))
        tenth = _f32(g, np.float32(0.1), "min_size")
        roi_w = g.op("Max", [g.op("Sub", [end_w, start_w], g.tmp("rw")), tenth], g.tmp("roi_w"))
        roi_h = g.op("Max", [g.op("Sub", [end_h, start_h], g.tmp("rh")), tenth], g.tmp("roi_h"))
        bin_w = g.op("Div", [roi_w, _f32(g, float(group), "group_f")], g.tmp("bin_w"))       # (R, 1)
        bin_h = g.op("Div", [roi_h, _f32(g, float(group), "group_f")], g.tmp("bin_h"))
        steps = _f32(g, np.arange(group, dtype=np.float32)[None, :], "steps")               # (1, G)
        steps1 = _f32(g, np.arange(1, group + 1, dtype=np.float32)[None, :], "steps1")

        def edge(bin_, start, st, fn, t, limit):
            v = g.op("Add", [g.op("Mul", [st, bin_], g.tmp(f"{t}_m")), start], g.tmp(f"{t}_v"))
            v = g.op(fn, [v], g.tmp(f"{t}_{fn.lower()}"))
            v = g.op("Clip", [v, _f32(g, 0.0, "zero"), _f32(g, float(limit), f"limit_{limit}")], g.tmp(f"{t}_clip"))
            return v                                                                          # (R, G)

        hs = edge(bin_h, start_h, steps, "Floor", "hs", h)
        he = edge(bin_h, start_h, steps1, "Ceil", "he", h)
        ws = edge(bin_w, start_w, steps, "Floor", "ws", w)
        we = edge(bin_w, start_w, steps1, "Ceil", "we", w)
        i64 = TensorProto.INT64
        hs, he, ws, we = (g.op("Cast", [v], g.tmp(f"{t}_i"), to=i64) for v, t in
                          ((hs, "hs"), (he, "he"), (ws, "ws"), (we, "we")))
        batch = g.op("Cast", [cols[0]], g.tmp("batch_i"), to=i64)                                # (R, 1)
        # Input channel of output (k, i, j): (k * G + i) * G + j, laid out as (1, K, G, G).
        chan = (np.arange(out_dim)[:, None, None] * group + np.arange(group)[None, :, None]) * group + \
            np.arange(group)[None, None, :]
        base = g.op("Mul", [g.op("Add", [g.op("Mul", [batch, g.ints([c], "channels")], g.tmp("bc")), g.ints(
            chan[None].reshape(1, -1), "chan")], g.tmp("bcc")), g.ints([(h + 1) * (w + 1)], "plane")],
            g.tmp("base"))                                                                   # (R, K*G*G)
        base = g.op("Reshape", [base, g.ints([-1, out_dim, group, group], "base_shape")], g.tmp("base4"))
        r4 = [-1, 1, group, 1]
        c4 = [-1, 1, 1, group]
        hs4, he4 = (g.op("Reshape", [v, g.ints(r4, "rows4")], g.tmp(f"{t}4")) for v, t in ((hs, "hs"), (he, "he")))
        ws4, we4 = (g.op("Reshape", [v, g.ints(c4, "cols4")], g.tmp(f"{t}4")) for v, t in ((ws, "ws"), (we, "we")))
        wp = g.ints([w + 1], "row_len")

        def at(hh, ww, t):
            idx = g.op("Add", [g.op("Add", [base, g.op("Mul", [hh, wp], g.tmp(f"{t}_hw"))], g.tmp(f"{t}_b")), ww],
                       g.tmp(f"{t}_idx"))
            return g.op("Gather", [flat, idx], g.tmp(f"{t}_sum"), axis=0)

        total = g.op("Add", [g.op("Sub", [at(he4, we4, "a"), at(hs4, we4, "b")], g.tmp("ab")),
                             g.op("Sub", [at(hs4, ws4, "d"), at(he4, ws4, "c")], g.tmp("dc"))], g.tmp("bin_sum"))
        dh = g.op("Sub", [he4, hs4], g.tmp("dh"))
        dw = g.op("Sub", [we4, ws4], g.tmp("dw"))
        area = g.op("Cast", [g.op("Mul", [dh, dw], g.tmp("area_i"))], g.tmp("area"), to=TensorProto.DOUBLE)
        empty = g.op("Or", [g.op("LessOrEqual", [he4, hs4], g.tmp("eh")), g.op("LessOrEqual", [we4, ws4], g.tmp("ew"))],
                     g.tmp("empty"))
        safe = g.op("Max", [area, g.op("Cast", [_f32(g, 1.0, "one_d")], g.tmp("one64"), to=TensorProto.DOUBLE)],
                    g.tmp("safe_area"))
        mean = g.op("Div", [total, safe], g.tmp("mean"))
        zero = g.op("Cast", [_f32(g, 0.0, "zero_d")], g.tmp("zero64"), to=TensorProto.DOUBLE)
        mean = g.op("Where", [empty, zero, mean], g.tmp("mean_or_0"))
        g.cast_float(mean, g.y(0))


@register("SmoothL1Loss")
class SmoothL1Loss(Layer):
    loss = True
    auto_tops = True  # a LossLayer subclass in its fork
    bottoms = (2, 4)

    def infer_shapes(self, node, in_shapes):
        a, b = in_shapes[0], in_shapes[1]
        if prod(a) != prod(b):
            bad(node, f"the inputs must have the same number of elements: {fmt_shape(a)} vs {fmt_shape(b)}",
                node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [()]

    def receptive_field(self, node, in_rfs):
        return [None]


@register("MultiBoxLoss")
class MultiBoxLoss(Layer):
    loss = True
    auto_tops = True  # a LossLayer subclass in its fork
    bottoms = (4, 4)

    def infer_shapes(self, node, in_shapes):
        return [()]

    def receptive_field(self, node, in_rfs):
        return [None]


@register("Proposal")
class Proposal(Layer):
    """The C++ ports of Faster R-CNN's proposal layer (e.g. the vendor collections' Caffe):
    anchors, NMS and the best post_nms_topn regions, one (0, x1, y1, x2, y2) row each."""
    checked_against = "several forks' src/caffe/layers/proposal_layer.cpp (each writes one row per region it keeps)"

    bottoms = (3, 3)
    tops = (1, 2)
    opaque = "its output has one row per proposal kept by NMS, a number known only from the data"


@register("DetectionEvaluate")
class DetectionEvaluate(Layer):
    bottoms = (2, 3)
    opaque = "its output has one row per detection, a number known only from the data"


# --- YOLO ports -------------------------------------------------------------------------------

# RegionParameter (openvinotoolkit/training_toolbox_caffe caffe.proto): coords = 1 [4],
# classes = 2 [20], num = 3 [1].
_REGION = {"coords": 4, "classes": 20, "num": 1}


@register("Region")
class Region(Layer):
    """YOLOv2's region activation (openvinotoolkit/training_toolbox_caffe region_layer.cpp): per
    anchor, logistic on x, y and the objectness, softmax over the classes; the top has the
    bottom's shape."""
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
    v3 = False
    bottoms = (1, None)

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
