"""What the detection families' ONNX lowerings share (detection.py, roi.py, yolo.py): numpy
imported when first used, FLT_MAX, float32 constants and casts, and the forks' boolean fields;
and DetectionOutput's lowering (box decoding, per-class NMS, keep_top_k), SSD's and RefineDet's,
kept here so that detection.py stays under the module size limit."""
from __future__ import annotations

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
    return g.const(value, suffix, float32=True)


def _to_f32(g, x: str) -> str:
    if not g.fp16:
        return x
    return g.op("Cast", [x], g.tmp("to_float32"), to=g.FLOAT)


def _from_f32(g, x: str, out: str) -> str:
    if not g.fp16:
        return g.op("Identity", [x], out)
    return g.op("Cast", [x], out, to=g.FLOAT16)


def _flag(v) -> bool:
    return bool(v) and str(v).lower() not in ("false", "0")


def _legacy(shape, axis: int) -> int:
    """Blob::LegacyShape: axes past the blob's rank count as 1."""
    return shape[axis] if axis < len(shape) else 1


def _split4(g, x, axis, tag):
    outs = [g.tmp(f"{tag}{i}") for i in range(4)]
    return g.op("Split", [x], outs, axis=axis) if g.opset < 18 else \
        g.op("Split", [x], outs, axis=axis, num_outputs=4)


def lower_detection_output(node, g, spec):
    if not spec.share_location:
        g.fail("share_location: false (a box per class) has no lowering yet",
               notes=[g.NO_LOWERING_NOTE])
    if spec.eta < 1:
        g.fail(f"adaptive NMS (nms_param.eta {spec.eta} < 1) changes the threshold as boxes are kept; "
               "ONNX NonMaxSuppression has one fixed threshold",
               notes=[g.NO_LOWERING_NOTE])
    if any(any(g.in_dyn(i)) for i in range(3 + spec.arm_conf + spec.arm_loc)):
        g.fail("DetectionOutput is exported for a fixed batch", notes=["export with --batch N"])
    n = g.in_shape(0)[0]
    num_priors = _legacy(g.in_shape(2), 2) // 4
    c = spec.num_classes
    conf = g.op("Reshape", [_to_f32(g, g.x(1)), g.ints([n, num_priors, c], "conf_shape")], g.tmp("conf"))
    conf = g.op("Transpose", [conf], g.tmp("conf_t"), perm=[0, 2, 1])                 # (N, C, P)
    if spec.arm_conf:
        # OSGetConfidenceScores (sfzhang15/RefineDet src/caffe/util/bbox_util.cpp): a prior whose
        # ARM object score (its 2nd value) is below objectness_score gets score 1 for class 0 and
        # 0 for every other class; the others keep the ODM's scores.
        arm = g.op("Reshape", [_to_f32(g, g.x(3)), g.ints([n, 1, num_priors, 2], "arm_shape")], g.tmp("arm"))
        obj = g.op("Gather", [arm, g.ints(1, "obj_col")], g.tmp("arm_obj"), axis=3)       # (N, 1, P)
        easy = g.op("Less", [obj, _f32(g, spec.objectness_score, "objectness_score")], g.tmp("easy"))
        onehot = np.zeros((1, c, 1), np.float32)
        onehot[0, 0, 0] = 1.0
        conf = g.op("Where", [easy, _f32(g, onehot, "class0"), conf], g.tmp("conf_os"))
    prior = g.op("Reshape", [_to_f32(g, g.x(2)), g.ints([2, num_priors, 4], "prior_shape")], g.tmp("prior"))
    pb_, pv = g.op("Split", [prior], [g.tmp("prior_box"), g.tmp("prior_var")], axis=0) if g.opset < 18 else \
        g.op("Split", [prior], [g.tmp("prior_box"), g.tmp("prior_var")], axis=0, num_outputs=2)
    p0, p1, p2, p3 = _split4(g, pb_, 2, "prior_c")         # (1, P, 1) each
    v = _split4(g, pv, 2, "var_c")

    def mul(a, b, t):
        return g.op("Mul", [a, b], g.tmp(t))

    def add(a, b, t):
        return g.op("Add", [a, b], g.tmp(t))

    def sub(a, b, t):
        return g.op("Sub", [a, b], g.tmp(t))

    def decode(prior4, loc_blob, tag):
        """DecodeBBox (weiliu89/caffe src/caffe/util/bbox_util.cpp), with Caffe's operation order."""
        p0, p1, p2, p3 = prior4
        flat = g.op("Reshape", [_to_f32(g, loc_blob), g.ints([n, num_priors, 4], "loc_shape")], g.tmp(tag))
        ls = _split4(g, flat, 2, f"{tag}_c")                                   # (N, P, 1) each
        scaled = ls if spec.variance_encoded else [mul(v[i], li, f"v{i}l") for i, li in enumerate(ls)]
        if spec.code_type == 1:      # CORNER
            return [add(p, s, f"corner{i}") for i, (p, s) in enumerate(zip(prior4, scaled))]
        pw, ph = sub(p2, p0, "prior_w"), sub(p3, p1, "prior_h")
        if spec.code_type == 3:      # CORNER_SIZE
            return [add(p, mul(s, d, f"off{i}"), f"corner{i}")
                    for i, (p, s, d) in enumerate(zip(prior4, scaled, (pw, ph, pw, ph)))]
        half = _f32(g, 0.5, "half")  # CENTER_SIZE
        pcx = mul(add(p0, p2, "pcx2"), half, "pcx")
        pcy = mul(add(p1, p3, "pcy2"), half, "pcy")
        cx = add(mul(scaled[0], pw, "dcx"), pcx, "cx")
        cy = add(mul(scaled[1], ph, "dcy"), pcy, "cy")
        hw = mul(mul(g.op("Exp", [scaled[2]], g.tmp("ew")), pw, "w"), half, "half_w")
        hh = mul(mul(g.op("Exp", [scaled[3]], g.tmp("eh")), ph, "h"), half, "half_h")
        return [sub(cx, hw, "xmin"), sub(cy, hh, "ymin"), add(cx, hw, "xmax"), add(cy, hh, "ymax")]

    priors = (p0, p1, p2, p3)
    if spec.arm_loc:
        # CasRegDecodeBBoxesAll (sfzhang15/RefineDet src/caffe/util/bbox_util.cpp): the ARM's
        # offsets move each prior first (same code type and variances, no clipping); the ODM's
        # offsets are decoded against those moved priors, with the priors' variances.
        priors = decode(priors, g.x(4), "arm_loc")                             # (N, P, 1) each
    corners = decode(priors, g.x(0), "loc")
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
        # GetMaxScoreIndex: each class's candidates in stable descending score order (TopK: ties
        # keep the lower index), the first top_k of them. NonMaxSuppression gets each candidate's
        # rank (k - slot) for its score, so that it visits them in Caffe's order where scores are
        # equal too (the ONNX operator leaves the order of equal scores open); the confidence threshold
        # is applied to the real scores first (a candidate at or below it ranks -1, below 0).
        top_v, top_i = g.op("TopK", [scores2, g.ints([k], "top_k")], [g.tmp(f"{tag}_topv"), g.tmp(f"{tag}_topi")],
                            axis=1, largest=1, sorted=1)                                  # (L, k)
        cand = g.op("Gather", [boxes2, top_i], g.tmp(f"{tag}_cand"), axis=0)             # (L, k, 4)
        passed = g.op("Greater", [top_v, score_thr], g.tmp(f"{tag}_passed"))
        rank = g.op("Where", [passed, _f32(g, np.arange(k, 0, -1, dtype=np.float32)[None], "ranks"),
                              _f32(g, [-1.0], "minus_one")], g.tmp(f"{tag}_rank"))
        cscore = g.op("Unsqueeze", [rank, g.ints([1], "axis1")], g.tmp(f"{tag}_cs"))     # (L, 1, k)
        sel = g.op("NonMaxSuppression", [cand, cscore, g.ints([k], "max_out"), iou, _f32(g, [0.0], "rank_threshold")],
                   g.tmp(f"{tag}_sel"))                                                   # (M, 3): label j, 0, slot
        cls = g.op("Gather", [sel, g.ints([0], "col0")], g.tmp(f"{tag}_cls"), axis=1)        # (M, 1)
        slot = g.op("Gather", [sel, g.ints([2], "col2")], g.tmp(f"{tag}_slot"), axis=1)      # (M, 1)
        jk = g.op("Concat", [cls, slot], g.tmp(f"{tag}_jk"), axis=1)
        prior_idx = g.op("GatherND", [top_i, jk], g.tmp(f"{tag}_prior"))                # (M,)
        score = g.op("GatherND", [top_v, jk], g.tmp(f"{tag}_score"))                    # (M,)
        cls = g.op("Squeeze", [cls, g.ints([1], "axis1s")], g.tmp(f"{tag}_cls1"))          # (M,) index into labels
        label = g.op("Gather", [_f32(g, labels, "label_values"), cls], g.tmp(f"{tag}_label"), axis=0)
        # Caffe's order: labels ascending, then each class's kept boxes by descending score, equal
        # scores by ascending prior (ApplyNMSFast's stable sort). onnxruntime's NonMaxSuppression
        # returns equal scores in no fixed order, so the rows are sorted again: three stable
        # TopK passes (ties keep the lower position), least significant key first.
        m = g.op("Shape", [score], g.tmp(f"{tag}_m"))
        for key, largest in (("prior", 0), ("score", 1), ("label", 0)):
            values = {"prior": prior_idx, "score": score, "label": label}[key]
            _, order = g.op("TopK", [values, m], [g.tmp(f"{tag}_{key}_v"), g.tmp(f"{tag}_{key}_o")],
                            axis=0, largest=largest, sorted=1)
            prior_idx, score, label = [g.op("Gather", [x, order], g.tmp(f"{tag}_{key}_{i}"), axis=0)
                                       for i, x in enumerate((prior_idx, score, label))]
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


def match_tied_rows(got, want, by_label: bool):
    """For verify: `got`'s detection rows (image, label, score, 4 corners) in `want`'s order
    where the order is not defined by the data. Boxes whose scores are equal, or differ in the
    last bit between two computations of one net, come out in either order. Within each run of
    `want`'s rows of one image (and label, by_label) whose scores differ by at most 1e-6
    (relative), each row of `want` takes the nearest row of `got` from the same positions; the
    rest is left as it is."""
    a, b = np.asarray(got).reshape(-1, 7), np.asarray(want).reshape(-1, 7)
    if a.shape != b.shape:
        return got
    out, start = a.copy(), 0
    for i in range(1, len(b) + 1):
        if i < len(b) and b[i, 0] == b[start, 0] and (not by_label or b[i, 1] == b[start, 1]) and \
                abs(float(b[i, 2]) - float(b[i - 1, 2])) <= 1e-6 * max(1.0, abs(float(b[i, 2]))):
            continue
        rows, free = a[start:i], np.ones(i - start, bool)
        for j in range(start, i):
            dist = np.where(free, np.abs(rows - b[j]).max(axis=1), np.inf)
            k = int(np.argmin(dist))
            free[k] = False
            out[j] = rows[k]
        start = i
    return out.reshape(np.shape(got))
