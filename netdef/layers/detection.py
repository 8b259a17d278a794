"""SSD's layers (weiliu89/caffe, branch ssd): its heads, post-processing and training layers.
Their parameters are fork fields, read through ForkParams with the defaults the fork's
caffe.proto declares (field numbers noted beside them). The R-CNN forks' region layers are in
roi.py, the YOLO ports' in yolo.py.

Sources, read for every rule below (the comment above a rule names the file):
  SSD            weiliu89/caffe, branch ssd (4817bf8): src/caffe/layers/{permute,normalize,
                 prior_box,detection_output}_layer.cpp, src/caffe/util/bbox_util.cpp

DetectionOutput's number of output rows depends on the data: it reports Caffe's own setup
shape, one row of 7; the exported model's row axis is symbolic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import codes
from ..proto import pb
from .base import Layer, bad, fmt_shape, need_rank, prod, register
from .fork import ForkParams, _int
from .postproc import FLT_MAX, _f32, _flag, _from_f32, _to_f32, np  # noqa: F401  (FLT_MAX, np: tests/test_startup.py)


# --- SSD: Permute, Normalize ------------------------------------------------------------------

@register("Permute")
class Permute(Layer):
    family = "shape"
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
    family = "normalisation"
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
    family = "shape"
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
    family = "shape"
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
    if not spec.share_location:
        g.fail("share_location: false (a box per class) has no lowering yet",
               notes=[g.NO_LOWERING_NOTE])
    if spec.eta < 1:
        g.fail(f"adaptive NMS (nms_param.eta {spec.eta} < 1) changes the threshold as boxes are kept; "
               "ONNX NonMaxSuppression has one fixed threshold",
               notes=[g.NO_LOWERING_NOTE])
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



@register("MultiBoxLoss")
class MultiBoxLoss(Layer):
    family = "loss"
    loss = True
    auto_tops = True  # a LossLayer subclass in its fork
    bottoms = (4, 4)

    def infer_shapes(self, node, in_shapes):
        return [()]

    def receptive_field(self, node, in_rfs):
        return [None]


@register("DetectionEvaluate")
class DetectionEvaluate(Layer):
    # SSD's evaluation of the detections against the ground-truth boxes (weiliu89/caffe, branch
    # ssd: src/caffe/layers/detection_evaluate_layer.cpp reads the labels from bottom 1): a
    # metric of the TEST phase, like Accuracy, so a deployed net leaves it out.
    family = "loss"
    training_only = True
    bottoms = (2, 3)
    opaque = "its output has one row per detection, a number known only from the data"
