"""Attention layers of Caffe forks (issue 11): PSANet's point-wise spatial attention.

hszhao/PSANet src/caffe/layers/pointwise_spatial_attention_layer.cpp (the layer PSANet adds to
its PSPNet fork of Caffe) and src/caffe/proto/caffe.proto:
  PointwiseSpatialAttentionParameter attention_mask_height = 1, attention_mask_width = 2
  (both or neither; odd and > 1; neither: 2H - 1 and 2W - 1 of bottom 0), normalization_factor
  = 3 (default: mask height * mask width), is_softmax = 4 [false], psa_type = 5 [COLLECT]
  (COLLECT = 0, DISTRIBUTE = 1).
Bottom 0 is the feature map (N, C, H, W), bottom 1 the attention (N, mask_h * mask_w, H, W);
the top has bottom 0's shape. The forward scatters, for every position p = (h, w), the mask
values of bottom 1 at p into an (H*W) x (H*W) buffer: COLLECT puts mask[(q - p) + half, p] at
row q, column p; DISTRIBUTE at row p, column q (q the positions within half a mask of p; the
rest of the buffer is 0). With is_softmax, a softmax over the buffer's rows (the layer's
Softmax on the (N, H*W, H, W) buffer, axis 1) follows. Then top[n] = bottom0[n] (C x HW) times
buffer[n] (HW x HW), divided by normalization_factor.
"""
from __future__ import annotations

from .. import codes, forks
from .base import Layer, bad, fmt_shape, need_rank, register, window_rf
from .fork import ForkParams, _int

PSA_DEFAULTS = {"is_softmax": False, "psa_type": "COLLECT"}
PSA_TYPES = {"COLLECT": "COLLECT", "DISTRIBUTE": "DISTRIBUTE", "0": "COLLECT", "1": "DISTRIBUTE"}


def psa_params(node, h: int, w: int):
    """(mask_h, mask_w, normalization_factor, is_softmax, psa_type) for features of size h x w,
    as LayerSetUp reads them."""
    p = ForkParams(node, "pointwise_spatial_attention_param", PSA_DEFAULTS)
    has_h, has_w = p.has("attention_mask_height"), p.has("attention_mask_width")
    if has_h != has_w:
        bad(node, "attention_mask_height and attention_mask_width must be given together", p.span())
    if has_h:
        mh, mw = _int(node, p, "attention_mask_height"), _int(node, p, "attention_mask_width")
        for name, m in (("attention_mask_height", mh), ("attention_mask_width", mw)):
            if m <= 1 or m % 2 != 1:
                bad(node, f"{name} must be an odd number larger than 1, got {m}", p.span())
    else:
        mh, mw = 2 * h - 1, 2 * w - 1
    nf = p.get("normalization_factor")
    try:
        nf = float(nf) if nf is not None else float(mh * mw)
    except (TypeError, ValueError):
        bad(node, f"normalization_factor must be a number, got {nf!r}", p.span())
    soft = forks.as_bool(p.get("is_softmax"))
    if soft is None:
        bad(node, f"is_softmax must be true or false, got {p.get('is_softmax')!r}", p.span())
    kind = PSA_TYPES.get(str(p.get("psa_type")))
    if kind is None:
        bad(node, f"psa_type must be COLLECT or DISTRIBUTE, got {p.get('psa_type')}", p.span())
    return mh, mw, nf, soft, kind


@register("PointwiseSpatialAttention")
class PointwiseSpatialAttention(Layer):
    """See the module docstring: the rule, the CHECKs and the forward of hszhao/PSANet's layer."""

    fork_defaults = PSA_DEFAULTS
    bottoms = (2, 2)
    origin = forks.PSANET
    checked_against = ("hszhao/PSANet src/caffe/layers/pointwise_spatial_attention_layer.cpp and "
                       "src/caffe/proto/caffe.proto (PointwiseSpatialAttentionParameter)")

    def infer_shapes(self, node, in_shapes):
        feat, att = in_shapes
        need_rank(node, feat, 4, 0)
        need_rank(node, att, 4, 1)
        n, c, h, w = feat
        mh, mw, _, _, _ = psa_params(node, h, w)
        if att[1] != mh * mw:
            bad(node, f"'{node.inputs[1].label}' {fmt_shape(att)} has {att[1]} channels; a {mh}x{mw} attention mask "
                      f"needs {mh * mw}", node.bottom_span(1), code=codes.SHAPE_MISMATCH,
                notes=["LayerSetUp CHECKs that bottom 1 has mask_h * mask_w channels; without "
                       "attention_mask_height/width the mask is (2H - 1) x (2W - 1) of bottom 0"])
        if att[0] != n or att[2:] != feat[2:]:
            bad(node, f"'{node.inputs[0].label}' {fmt_shape(feat)} and '{node.inputs[1].label}' {fmt_shape(att)} must "
                      f"have the same num, height and width", node.bottom_span(1), code=codes.SHAPE_MISMATCH)
        return [tuple(feat)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None or rf.whole:
            return [rf]
        h, w = node.inputs[0].meta["shape"][2:]
        mh, mw, _, _, _ = psa_params(node, h, w)
        return [window_rf(rf, [mh, mw], [1, 1], [(mh - 1) // 2, (mw - 1) // 2])]

    def cost(self, node, in_shapes, out_shapes):
        n, c, h, w = in_shapes[0]
        _, _, _, soft, _ = psa_params(node, h, w)
        macs = n * c * (h * w) ** 2
        return {"macs": macs, "flops": 2 * macs + (3 * n * (h * w) ** 2 if soft else 0)}

    def to_onnx(self, node, g):
        """ONNX Gather of the attention into an (HW x HW) buffer (indices built with Add/Sub/Abs
        from per-position constants), Softmax, MatMul, Mul."""
        import numpy as np
        n, c, h, w = g.in_shape(0)
        mh, mw, nf, soft, kind = psa_params(node, h, w)
        hw, hh, hw_half = h * w, (mh - 1) // 2, (mw - 1) // 2
        pos = np.arange(hw)
        rows, cols = pos // w, pos % w
        # idx[q, p] = ((hq - hp + hh) * mw + (wq - wp + hw_half)) * HW + p: the flat index, in one
        # sample's (mask_h * mask_w, H, W) attention, of the value for source q and target p.
        a = g.ints((rows * mw * hw + cols * hw).reshape(hw, 1), "q_term")
        b = g.ints(((hh - rows) * mw * hw + (hw_half - cols) * hw + pos).reshape(1, hw), "p_term")
        idx = g.op("Add", [a, b], g.tmp("index"))
        full = hh >= h - 1 and hw_half >= w - 1
        if not full:
            dh = g.op("Abs", [g.op("Sub", [g.ints(rows.reshape(hw, 1), "q_row"), g.ints(rows.reshape(1, hw), "p_row")],
                                   g.tmp("drow"))], g.tmp("adrow"))
            dw = g.op("Abs", [g.op("Sub", [g.ints(cols.reshape(hw, 1), "q_col"), g.ints(cols.reshape(1, hw), "p_col")],
                                   g.tmp("dcol"))], g.tmp("adcol"))
            valid = g.op("And", [g.op("LessOrEqual", [dh, g.ints(hh, "half_h")], g.tmp("in_h")),
                                 g.op("LessOrEqual", [dw, g.ints(hw_half, "half_w")], g.tmp("in_w"))], g.tmp("valid"))
            idx = g.op("Where", [valid, idx, g.ints(0, "zero_index")], g.tmp("safe_index"))
        if kind == "DISTRIBUTE":
            idx = g.op("Transpose", [idx], g.tmp("index_t"), perm=[1, 0])
            if not full:
                valid = g.op("Transpose", [valid], g.tmp("valid_t"), perm=[1, 0])
        dyn = g.in_dyn(1)
        att = g.reshape(g.x(1), (n, mh * mw * hw), (dyn[0], False))
        buf = g.op("Gather", [att, idx], g.tmp("buffer"), axis=1)           # (N, HW, HW)
        if not full:
            buf = g.op("Where", [valid, buf, g.const(0.0, "zero")], g.tmp("buffer_masked"))
        if soft:
            buf = g.op("Softmax", [buf], g.tmp("buffer_prob"), axis=1)
        x = g.reshape(g.x(0), (n, c, hw), (g.in_dyn(0)[0], False, False))
        y = g.op("MatMul", [x, buf], g.tmp("aggregate"))
        if nf != 1.0:
            y = g.op("Mul", [y, g.const(1.0 / nf, "inv_norm")], g.tmp("scaled"))
        g.reshape(y, (n, c, h, w), g.out_dyn(0), g.y(0))


