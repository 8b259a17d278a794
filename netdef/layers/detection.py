"""SSD's layers (weiliu89/caffe, branch ssd): its heads, post-processing and training layers.
Their parameters are fork fields, read through ForkParams with the defaults the fork's
caffe.proto declares (field numbers noted beside them). The R-CNN forks' region layers are in
roi.py, the YOLO ports' in yolo.py.

Sources, read for every rule below (the comment above a rule names the file):
  SSD            weiliu89/caffe, branch ssd (4817bf8): src/caffe/layers/{permute,normalize,
                 prior_box,detection_output}_layer.cpp, src/caffe/util/bbox_util.cpp
  RefineDet      sfzhang15/RefineDet (52b6fe2): src/caffe/layers/detection_output_layer.cpp,
                 src/caffe/util/bbox_util.cpp (OSGetConfidenceScores, CasRegDecodeBBoxesAll)

DetectionOutput's number of output rows depends on the data: it reports Caffe's own setup
shape, one row of 7; the exported model's row axis is symbolic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import codes
from ..proto import pb
from .base import Layer, bad, fmt_shape, need_rank, prod, register, register_variant
from .fork import ForkParams, _int
from .postproc import FLT_MAX, _flag, _legacy, lower_detection_output, match_tied_rows, np  # noqa: F401  (np: tests/test_startup.py)


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


def _image_and_steps(spec: PriorSpec, layer_h: int, layer_w: int, image_h: int, image_w: int):
    """PriorBoxLayer's image size (img_h/img_w when both given, else the image bottom's) and its
    steps in float (step_w/step_h when both given, else the image size over the feature map's)."""
    f32 = np.float32
    img_w = spec.img_w if spec.img_h and spec.img_w else image_w
    img_h = spec.img_h if spec.img_h and spec.img_w else image_h
    if spec.step_w == 0 or spec.step_h == 0:
        return img_w, img_h, f32(img_w) / f32(layer_w), f32(img_h) / f32(layer_h)
    return img_w, img_h, f32(spec.step_w), f32(spec.step_h)


def prior_boxes(spec: PriorSpec, layer_h: int, layer_w: int, image_h: int, image_w: int) -> np.ndarray:
    """PriorBoxLayer::Forward_cpu as whole arrays: (1, 2, H*W*priors*4), corners then variances.
    Caffe's float arithmetic is kept where it rounds: the centres and steps are float, each
    corner is computed in double and stored as float."""
    f32 = np.float32
    img_w, img_h, step_w, step_h = _image_and_steps(spec, layer_h, layer_w, image_h, image_w)
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
        n = feat[2] * feat[3] * self.num_priors(node) * 4
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
        values = self.boxes(spec, feat[2], feat[3], img[2] if len(img) > 3 else 0, img[3] if len(img) > 3 else 0)
        g.op("Identity", [g.const(values, "priors")], g.y(0))

    boxes = staticmethod(prior_boxes)


def is_faceboxes_prior_box(layer_param, loc, net_param) -> bool:
    """sfzhang15/FaceBoxes src/caffe/layers/prior_box_layer.cpp: its PriorBox counts 21 priors
    whenever a layer has three min_size values and tiles the priors of min_size 32 (4 x 4, 8
    pixels apart) and 64 (2 x 2, 16 apart): one definition, two meanings. The layer whose three
    sizes are 32, 64 and one more, without max_size or aspect_ratio (16 + 4 + 1 = 21 boxes, the
    only case where the fork's count and boxes agree) is read as the fork's."""
    block = ((loc.extra if loc is not None else {}).get("prior_box_param") or [{}])[-1]
    if not isinstance(block, dict) or block.get("max_size") or block.get("aspect_ratio"):
        return False
    mins = block.get("min_size") or []
    try:
        sizes = [int(float(v)) for v in mins]
    except (TypeError, ValueError):
        return False
    return len(sizes) == 3 and 32 in sizes and 64 in sizes


def faceboxes_prior_boxes(spec: PriorSpec, layer_h: int, layer_w: int, image_h: int, image_w: int) -> np.ndarray:
    """The FaceBoxes fork's PriorBoxLayer::Forward_cpu: per position, for each min_size in order,
    min_size 32 as 16 boxes whose centres are shifted by (8j, 8i), i, j in -2..1; 64 as 4 shifted
    by (16j, 16i), i, j in -1..0; any other size as one box; every side is min_size - 1 wide
    (corners at centre -+ (size - 1) / 2). The centre and shift add in float, the rest in double
    stored as float, as the fork writes it."""
    f32 = np.float32
    img_w, img_h, step_w, step_h = _image_and_steps(spec, layer_h, layer_w, image_h, image_w)
    shifts = []                 # (dx, dy, half side) per prior, in the fork's order
    for lo in spec.min_sizes:
        lo = int(lo)
        tile = {32: (range(-2, 2), 8), 64: (range(-1, 1), 16)}.get(lo, (range(0, 1), 0))
        shifts += [(j * tile[1], i * tile[1], (lo - 1) / 2.0) for i in tile[0] for j in tile[0]]
    cx = (np.arange(layer_w, dtype=f32) + f32(spec.offset)) * step_w
    cy = (np.arange(layer_h, dtype=f32) + f32(spec.offset)) * step_h
    dx = np.array([d for d, _, _ in shifts], f32)
    dy = np.array([d for _, d, _ in shifts], f32)
    half = np.array([h for _, _, h in shifts], np.float64)
    sx = (cx[None, :, None] + dx).astype(np.float64)       # (1, W, P): float sums, then double
    sy = (cy[:, None, None] + dy).astype(np.float64)       # (H, 1, P)
    boxes = np.stack(np.broadcast_arrays((sx - half) / img_w, (sy - half) / img_h,
                                         (sx + half) / img_w, (sy + half) / img_h), axis=-1)
    boxes = boxes.astype(np.float32).reshape(-1)
    if spec.clip:
        boxes = np.minimum(np.maximum(boxes, 0.0), 1.0).astype(np.float32)
    var = np.resize(np.asarray(spec.variance, np.float32), boxes.size) if len(spec.variance) == 4 else \
        np.full(boxes.size, spec.variance[0], np.float32)
    return np.stack([boxes, var]).reshape(1, 2, -1)


@register_variant("PriorBox", is_faceboxes_prior_box)
class FaceBoxesPriorBox(PriorBox):
    """FaceBoxes' densified anchors (sfzhang15/FaceBoxes, and the FaceBoxes ports built on its
    Caffe): 21 priors per position for min_size 32, 64 and one more. The fork's other PriorBox
    layers (one min_size) also use the size - 1 corners, which netdef does not follow (it cannot
    tell them from SSD's): their corners differ from the fork's by half a pixel."""
    variant = "with min_size 32, 64 and one more (FaceBoxes)"
    origin = "sfzhang15/FaceBoxes"
    checked_against = "sfzhang15/FaceBoxes src/caffe/layers/prior_box_layer.cpp"

    def num_priors(self, node) -> int:
        return 21

    def check(self, node, diags):
        diags.add(codes.FORK_SEMANTICS.at(
            node.span, layer=node.name, type=node.type, forks="sfzhang15/FaceBoxes and SSD (weiliu89/caffe)",
            chosen="FaceBoxes", why="its three min_size values are 32, 64 and one more, FaceBoxes' densified anchors",
            notes=["FaceBoxes' PriorBox gives such a layer 21 priors per position (4 x 4 of size 32, 2 x 2 of "
                   "size 64, 1 of the third size); SSD's gives 3"]))

    boxes = staticmethod(faceboxes_prior_boxes)


# --- SSD: DetectionOutput ---------------------------------------------------------------------

# DetectionOutputParameter (weiliu89/caffe caffe.proto): num_classes = 1 (required),
# share_location = 2 [true], background_label_id = 3 [0], nms_param = 4, save_output_param = 5,
# code_type = 6 [CORNER], keep_top_k = 7 [-1], variance_encoded_in_target = 8 [false],
# confidence_threshold = 9 (absent: -FLT_MAX). NonMaximumSuppressionParameter: nms_threshold = 1
# [0.3], top_k = 2 (absent: -1), eta = 3 [1.0]. RefineDet's fork (sfzhang15/RefineDet
# src/caffe/proto/caffe.proto) adds objectness_score = 24 [0.01].
_DETECTION_OUTPUT = {"share_location": True, "background_label_id": 0, "code_type": 1, "keep_top_k": -1,
                     "variance_encoded_in_target": False, "objectness_score": 0.01}
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
    objectness_score: float
    arm_conf: bool = False      # RefineDet: bottom 3 holds the ARM's (background, object) scores
    arm_loc: bool = False       # RefineDet: bottom 4 holds the ARM's offsets of the priors


def uses_arm(node) -> tuple[bool, bool]:
    """Whether bottoms 3 and 4 are RefineDet's anchor refinement module outputs. RefineDet's
    DetectionOutputLayer::Forward_cpu (sfzhang15/RefineDet src/caffe/layers/detection_output_layer.cpp)
    reads bottom 3 as the ARM confidences and bottom 4 as the ARM locations whenever they are
    there; SSD's layer takes a 4th bottom too, the images its `visualize` option draws on. So five
    bottoms are RefineDet's, and four are only when objectness_score (a field SSD lacks) is written."""
    n = len(node.inputs)
    arm_conf = n >= 5 or (n == 4 and ForkParams(node, "detection_output_param").has("objectness_score"))
    return arm_conf, n >= 5


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
    arm_conf, arm_loc = uses_arm(node)
    obj = p.get("objectness_score")
    if isinstance(obj, bool) or not isinstance(obj, (int, float)) or not math.isfinite(obj):
        bad(node, f"objectness_score must be a number, got {obj!r}", p.span("objectness_score"))
    share = _flag(p.get("share_location"))
    if arm_loc and not share:
        # CasRegDecodeBBoxesAll looks the ARM offsets up under label -1, which only a shared
        # location has (sfzhang15/RefineDet src/caffe/util/bbox_util.cpp).
        bad(node, "RefineDet's DetectionOutput (5 bottoms) needs share_location: true",
            p.span("share_location"), notes=["the anchor refinement offsets are shared by every class"])
    return DetectionSpec(num_classes, share, _int(node, p, "background_label_id"), code,
                         _flag(p.get("variance_encoded_in_target")), _int(node, p, "keep_top_k"),
                         float(np.float32(conf)) if conf is not None else -FLT_MAX,
                         float(np.float32(nms_threshold)), int(nms_value("top_k")), float(np.float32(eta)),
                         float(np.float32(obj)),
                         arm_conf, arm_loc)


@register("DetectionOutput")
class DetectionOutput(Layer):
    """SSD's NMS head. Its row count depends on the data; like Caffe's setup, netdef reports one
    row of 7 values (image, label, score, xmin, ymin, xmax, ymax). RefineDet's variant takes the
    anchor refinement module's confidences and offsets as bottoms 3 and 4 (uses_arm)."""
    family = "shape"
    checked_against = ("weiliu89/caffe (ssd) src/caffe/layers/detection_output_layer.cpp, src/caffe/util/bbox_util.cpp; "
                       "sfzhang15/RefineDet, the same files; onnxruntime non_max_suppression.cc")
    fork_defaults = _DETECTION_OUTPUT

    bottoms = (3, 5)
    selects = True      # verify: compared on the export's bottoms (its NMS decides on near-equal scores)

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
        # RefineDet's Forward reads 2 ARM scores and 4 ARM offsets per prior and image
        # (OSGetConfidenceScores, GetLocPredictions); its Reshape checks neither, netdef does.
        for i, per, what in ((3, 2, "ARM confidences"), (4, 4, "ARM locations")):
            if i < len(in_shapes) and (spec.arm_conf if i == 3 else spec.arm_loc):
                s = in_shapes[i]
                if s[0] != loc[0] or prod(s[1:]) != num_priors * per:
                    bad(node, f"the {what} {fmt_shape(s)} need {loc[0]} x {num_priors * per} values "
                              f"({per} per prior, {num_priors} priors)", node.bottom_span(i),
                        code=codes.SHAPE_MISMATCH)
        return [(1, 1, 1, 7)]

    def receptive_field(self, node, in_rfs):
        return [None]

    @staticmethod
    def comparable(got, want):
        """For verify: rows of one image and label whose scores are (nearly) equal come out in
        either order; the export's are put in the reference's (postproc.match_tied_rows)."""
        return match_tied_rows(got, want, by_label=True)

    def cost(self, node, in_shapes, out_shapes):
        # Decoding and thresholding; the NMS work depends on the data.
        n, per = in_shapes[0][0], prod(in_shapes[1][1:])
        return {"macs": 0, "flops": n * (prod(in_shapes[0][1:]) * 3 + per)}

    def to_onnx(self, node, g):
        """Box decoding as arithmetic, then per image: the top_k candidates of each class
        (TopK), NonMaxSuppression per class, keep_top_k over the image (TopK), rows ordered by
        label then score as Caffe's std::map of labels orders them."""
        lower_detection_output(node, g, detection_spec(node))


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
