"""The region-of-interest layers of the R-CNN forks: Fast R-CNN's ROIPooling and SmoothL1Loss,
R-FCN's PSROIPooling, Faster R-CNN's Proposal. Their parameters are fork fields, read through
ForkParams with the defaults each fork's caffe.proto declares.

Sources, read for every rule below (the comment above a rule names the file):
  Fast R-CNN     rbgirshick/caffe-fast-rcnn: src/caffe/layers/roi_pooling_layer.cpp
  R-FCN          daijifeng001/caffe-rfcn: src/caffe/layers/psroi_pooling_layer.cpp
"""
from __future__ import annotations

from .. import codes
from .base import Layer, bad, fmt_shape, need_rank, prod, register
from .fork import ForkParams, _int
from .postproc import _f32, _to_f32, np


@register("ROIPooling")
class ROIPooling(Layer):
    """Fast R-CNN: max-pool each region of interest (bottom 1 rows) to pooled_h x pooled_w."""
    family = "pooling"
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
    family = "pooling"
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
        scale, out_dim, group = self.spec(node)
        n, c, h, w = g.in_shape(0)
        if any(g.in_dyn(0)):
            g.fail("PSROIPooling is exported for a fixed batch", notes=["export with --batch N"])
        x = g.op("Cast", [g.x(0)], g.tmp("f64"), to=g.DOUBLE)
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
        i64 = g.INT64
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
        area = g.op("Cast", [g.op("Mul", [dh, dw], g.tmp("area_i"))], g.tmp("area"), to=g.DOUBLE)
        empty = g.op("Or", [g.op("LessOrEqual", [he4, hs4], g.tmp("eh")), g.op("LessOrEqual", [we4, ws4], g.tmp("ew"))],
                     g.tmp("empty"))
        safe = g.op("Max", [area, g.op("Cast", [_f32(g, 1.0, "one_d")], g.tmp("one64"), to=g.DOUBLE)],
                    g.tmp("safe_area"))
        mean = g.op("Div", [total, safe], g.tmp("mean"))
        zero = g.op("Cast", [_f32(g, 0.0, "zero_d")], g.tmp("zero64"), to=g.DOUBLE)
        mean = g.op("Where", [empty, zero, mean], g.tmp("mean_or_0"))
        g.cast_float(mean, g.y(0))


@register("SmoothL1Loss")
class SmoothL1Loss(Layer):
    family = "loss"
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


@register("Proposal")
class Proposal(Layer):
    """The C++ ports of Faster R-CNN's proposal layer (e.g. the vendor collections' Caffe):
    anchors, NMS and the best post_nms_topn regions, one (0, x1, y1, x2, y2) row each."""
    family = "shape"
    checked_against = "several forks' src/caffe/layers/proposal_layer.cpp (each writes one row per region it keeps)"

    bottoms = (3, 3)
    tops = (1, 2)
    opaque = "its output has one row per proposal kept by NMS, a number known only from the data"
