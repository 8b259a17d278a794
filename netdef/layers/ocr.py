"""The OCR and sequence layers of two Caffe forks: caffe_ocr (senlinuc/caffe_ocr: DenseBlock,
Transpose, Reverse, CTCGreedyDecoder, and its copy of Junhyuk Oh's Lstm) and caffe-lstm
(junhyukoh/caffe-lstm: the original Lstm).

Their parameters are not in netdef's (BVLC) schema: they are read from the layer Loc's `extra`
(ForkParams) with the defaults each fork's caffe.proto declares, written once below.
"""
from __future__ import annotations

from .. import codes
from ..forks import LSTM_FORKS, OCR, as_bool
from ..proto import pb
from .base import Layer, bad, count, fmt_shape, need_rank, prod, register, window_rf
from .fork import ForkParams, _int

# Each class's fork_defaults (netdef.reference reads them too), as the forks' caffe.proto declare:
# senlinuc/caffe_ocr src/caffe/proto/caffe.proto: TransposeParameter { repeated int32 dim = 1 };
# ReverseParameter { int32 axis = 1 [default 0] }; CTCDecoderParameter { int32 blank_index = 1
# [default 0]; bool ctc_merge_repeated = 2 [default true] }; DenseBlockParameter { numTransition = 1
# [40]; initChannel = 2 [16]; growthRate = 3 [12]; pad_h/pad_w = 4/5 [1]; conv_verticalStride /
# conv_horizentalStride = 6/7 [1]; filter_H/filter_W = 8/9 [3]; Filter_Filler = 10;
# BN_Scaler_Filler = 11; BN_Bias_Filler = 12; gpuIdx = 15 [0]; use_dropout = 16 [false];
# dropout_amount = 17 [0]; use_BC = 18 [false]; BC_ultra_space_efficient = 19 [false];
# workspace_MB = 20 [8]; moving_average_fraction = 21 [0.1] }. LayerParameter: denseblock_param =
# 147, ctc_decoder_param = 158, reverse_param = 160, transpose_param = 8266710, lstm_param = 8266711.
REVERSE_DEFAULTS = {"axis": 0}
CTC_DEFAULTS = {"blank_index": 0, "ctc_merge_repeated": True}
DENSEBLOCK_DEFAULTS = {"numTransition": 40, "initChannel": 16, "growthRate": 12, "use_dropout": False,
                       "dropout_amount": 0.0, "use_BC": False}
# LSTMParameter, the same in junhyukoh/caffe-lstm (lstm_param = 201) and caffe_ocr (8266711):
# num_output = 1; clipping_threshold = 2 [default 0]; weight_filler = 3; bias_filler = 4;
# batch_size = 5 [default 1].
LSTM_DEFAULTS = {"clipping_threshold": 0.0, "batch_size": 1}
# onnx TensorProto data types (layers do not import the exporter).
_FLOAT, _INT64, _FLOAT16 = 1, 7, 10
# cuDNN's CUDNN_BN_MIN_EPSILON (1e-5 up to cuDNN 7, the fork's era), also the CPU path's epsilon.
DENSEBLOCK_EPS = 1e-5


def _bool(node, p, name) -> bool:
    v = as_bool(p.get(name))
    if v is None:
        bad(node, f"{p.field}.{name} must be true or false, got {p.get(name)!r}", p.span(name))
    return v


def _filler(p, name):
    """A FillerParameter from a fork's `name { type value std ... }` block (FillerParameter's
    defaults, constant 0, where a field is not written or not a number)."""
    f = pb.FillerParameter()
    spec = p.get(name)
    if isinstance(spec, dict):
        if spec.get("type"):
            f.type = str(spec["type"][-1])
        for key in ("value", "min", "max", "mean", "std"):
            v = (spec.get(key) or [None])[-1]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                setattr(f, key, float(v))
    return f


def _constant(value):
    f = pb.FillerParameter()
    f.type, f.value = "constant", value
    return f


# --- Transpose -------------------------------------------------------------------------------

@register("Transpose")
class Transpose(Layer):
    """caffe_ocr's TransposeLayer. senlinuc/caffe_ocr src/caffe/layers/transpose_layer.cpp:
    not in place (CHECK_NE), Reshape CHECKs that `dim` has one entry per bottom axis and makes the
    top's axis i the bottom's axis dim[i]; transpose_cpu moves every element there (numpy's
    transpose(x, dim)). The source does not check that dim is a permutation (a repeated axis
    writes out of bounds): netdef requires one."""

    origin = OCR
    checked_against = "senlinuc/caffe_ocr src/caffe/layers/transpose_layer.cpp and its caffe.proto"
    family = "shape"

    def dims(self, node, shape):
        p = ForkParams(node, "transpose_param", {})
        dims = p.all("dim")
        n = len(shape)
        if len(dims) != n:
            bad(node, f"transpose_param has {len(dims)} dim values for a {n}-D bottom {fmt_shape(shape)}",
                p.span("dim"), notes=["give one dim per bottom axis: top axis i is bottom axis dim[i]"],
                code=codes.BAD_AXIS)
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < n:
                bad(node, f"transpose dim {d!r} is not an axis of the {n}-D bottom {fmt_shape(shape)}",
                    p.span("dim"), code=codes.BAD_AXIS)
        if len(set(dims)) != n:
            bad(node, f"transpose dims {list(dims)} repeat an axis", p.span("dim"),
                notes=["the dims must be a permutation of the bottom's axes"], code=codes.BAD_AXIS)
        return list(dims)

    def infer_shapes(self, node, in_shapes):
        if node.inputs[0].name == node.outputs[0].name:
            bad(node, "Transpose cannot run in place", node.span,
                notes=["caffe_ocr's TransposeLayer CHECKs that its top is not its bottom"])
        dims = self.dims(node, in_shapes[0])
        node.meta["transpose_dims"] = dims
        return [tuple(in_shapes[0][d] for d in dims)]

    def receptive_field(self, node, in_rfs):
        dims = node.meta.get("transpose_dims", [])
        return [in_rfs[0] if dims[-2:] == [len(dims) - 2, len(dims) - 1] else None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Transpose with perm = dim."""
        g.op("Transpose", [g.x(0)], g.y(0), perm=self.dims(node, g.in_shape(0)))


# --- Reverse ---------------------------------------------------------------------------------

@register("Reverse")
class Reverse(Layer):
    """caffe_ocr's ReverseLayer (a NeuronLayer: one bottom, top shaped like it).
    senlinuc/caffe_ocr src/caffe/layers/reverse_layer.cpp: the constructor CHECKs axis >= 0,
    LayerSetUp that it is below the bottom's axis count and that the layer is not in place;
    Forward_cpu copies slice i along the axis to slice (n - 1 - i)."""

    fork_defaults = REVERSE_DEFAULTS
    origin = OCR
    checked_against = "senlinuc/caffe_ocr src/caffe/layers/reverse_layer.cpp and its caffe.proto"
    family = "shape"

    def axis(self, node, shape):
        p = ForkParams(node, "reverse_param")
        a = _int(node, p, "axis")
        if not 0 <= a < len(shape):
            bad(node, f"reverse axis {a} is not an axis of the {len(shape)}-D bottom {fmt_shape(shape)}",
                p.span("axis"), notes=[f"allowed values: 0 to {len(shape) - 1} (the fork CHECKs axis >= 0)"],
                code=codes.BAD_AXIS)
        return a

    def infer_shapes(self, node, in_shapes):
        if node.inputs[0].name == node.outputs[0].name:
            bad(node, "Reverse cannot run in place", node.span,
                notes=["caffe_ocr's ReverseLayer CHECKs that its top is not its bottom"])
        self.axis(node, in_shapes[0])
        return [in_shapes[0]]

    def receptive_field(self, node, in_rfs):
        # Reversing the batch or the channels keeps the spatial geometry; a spatial axis does not.
        a = ForkParams(node, "reverse_param").get("axis")
        return [in_rfs[0] if isinstance(a, int) and 0 <= a < 2 else None]

    def cost(self, node, in_shapes, out_shapes):
        return {"macs": 0, "flops": 0}

    def to_onnx(self, node, g):
        """ONNX Slice along the axis with step -1."""
        shape = g.in_shape(0)
        a = self.axis(node, shape)
        g.op("Slice", [g.x(0), g.ints([-1], "starts"), g.ints([-(shape[a] + 1)], "ends"), g.ints([a], "axes"),
                       g.ints([-1], "steps")], g.y(0))


# --- CTCGreedyDecoder ------------------------------------------------------------------------

@register("CTCGreedyDecoder")
class CTCGreedyDecoder(Layer):
    """caffe_ocr's greedy CTC decoder with one bottom, the scores (T, N, C), and one top, the
    labels (N, T, 1, 1). senlinuc/caffe_ocr src/caffe/layers/ctc_decoder_layer.cpp: Reshape reads
    T, N, C = shape(0), shape(1), shape(2) and a negative blank_index becomes C - 1; Forward_cpu
    fills the top with -1, then per sequence n takes at each t the first class of maximal score
    (the scores of (t, n) start at offset(t, n)), drops it when it is the blank or (with
    ctc_merge_repeated) equals the class at t - 1, and writes the kept classes from the start
    of row n. Its two-bottom form (scores and labels -> accuracy) is not supported."""

    fork_defaults = CTC_DEFAULTS
    origin = OCR
    checked_against = "senlinuc/caffe_ocr src/caffe/layers/ctc_decoder_layer.cpp and its caffe.proto"
    family = "shape"

    def params(self, node, c):
        p = ForkParams(node, "ctc_decoder_param")
        blank = _int(node, p, "blank_index")
        if blank < 0:
            blank = c - 1
        return blank, _bool(node, p, "ctc_merge_repeated")

    def count_limits(self, node):
        return (1, 2), (1, 1)

    def infer_shapes(self, node, in_shapes):
        if len(in_shapes) != 1:
            bad(node, "the two-bottom CTCGreedyDecoder (scores and labels, computing an accuracy) is not "
                      "supported", node.span, notes=["a deploy net decodes one bottom, the scores (T, N, C)"])
        x = in_shapes[0]
        if len(x) < 3:
            need_rank(node, x, 3, exact=False)
        self.params(node, x[2])
        return [(x[1], x[0], 1, 1)]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        x = in_shapes[0]
        return {"macs": 0, "flops": x[0] * x[1] * x[2]}

    def to_onnx(self, node, g):
        """ArgMax, a keep mask, CumSum positions and a one-hot placement of the kept labels.

        ArgMax over the classes (the first maximum, as the fork's strict '>' keeps), a keep mask
        (not the blank; with merging, not the class before it), and the kept labels moved to the
        front of each row with a one-hot matrix of their positions (the running count of kept
        labels): out[n, j] = sum_t keep[t] (pos[t] == j) label[t], -1 where no label lands."""
        t_len, n, c = g.in_shape(0)[:3]
        dyn = g.in_dyn(0)
        if dyn[0] or any(dyn[2:]):
            g.fail("the sequence length and the class axes must be fixed", notes=["export with a fixed --batch"])
        blank, merge = self.params(node, c)
        width = count(g.in_shape(0), 2)
        x = g.op("Reshape", [g.x(0), g.ints([t_len, -1 if dyn[1] else n, width], "scores_shape")], g.tmp("scores"))
        if width != c:
            x = g.op("Slice", [x, g.ints([0], "c_start"), g.ints([c], "c_end"), g.ints([2], "c_axis")],
                     g.tmp("scores_c"))
        xt = g.op("Transpose", [x], g.tmp("scores_nt"), perm=[1, 0, 2])                       # (N, T, C)
        # Integer arithmetic throughout (exact, and CumSum has no float16 kernel in onnxruntime).
        label = g.op("ArgMax", [xt], g.tmp("argmax"), axis=2, keepdims=0, select_last_index=0)   # int64 (N, T)
        keep = g.op("Not", [g.op("Equal", [label, g.ints(blank, "blank")], g.tmp("is_blank"))], g.tmp("not_blank"))
        if merge and t_len > 1:
            # The class before each step (-1 before the first): pad on the left, drop the last.
            padded = g.op("Pad", [label, g.ints([0, 1, 0, 0], "prev_pads"), g.ints(-1, "prev_fill")],
                          g.tmp("label_padded"))
            prev = g.op("Slice", [padded, g.ints([0], "p_start"), g.ints([t_len], "p_end"), g.ints([1], "p_axis")],
                        g.tmp("prev"))
            keep = g.op("And", [keep, g.op("Not", [g.op("Equal", [label, prev], g.tmp("is_repeat"))],
                                           g.tmp("not_repeat"))], g.tmp("keep"))
        keep_i = g.op("Cast", [keep], g.tmp("keep_int"), to=_INT64)
        pos = g.op("Sub", [g.op("CumSum", [keep_i, g.ints(1, "cum_axis")], g.tmp("kept_so_far")),
                           g.ints(1, "one")], g.tmp("pos"))                                  # (N, T)
        onehot = g.op("Mul", [g.op("Cast", [g.op("Equal", [g.op("Unsqueeze", [pos, g.ints([2], "ax2")], g.tmp("pos3")),
                                                            g.ints(list(range(t_len)), "slots")], g.tmp("at_slot"))],
                                   g.tmp("at_slot_int"), to=_INT64),
                              g.op("Unsqueeze", [keep_i, g.ints([2], "ax2k")], g.tmp("keep3"))],
                      g.tmp("onehot"))                                                       # (N, T, T)
        placed = g.op("ReduceSum", [g.op("Mul", [onehot, g.op("Unsqueeze", [label, g.ints([2], "ax2l")],
                                                                g.tmp("label3"))], g.tmp("weighted")),
                                    g.ints([1], "sum_axis")], g.tmp("placed"), keepdims=0)    # (N, T)
        filled = g.op("ReduceSum", [onehot, g.ints([1], "sum_axis_f")], g.tmp("filled"), keepdims=0)
        empty = g.op("Sub", [filled, g.ints(1, "one_e")], g.tmp("minus_empty"))             # 0 or -1
        out = g.cast_float(g.op("Add", [placed, empty], g.tmp("labels_int")))
        g.op("Reshape", [out, g.ints([-1 if dyn[1] else n, t_len, 1, 1], "out_shape")], g.y(0))


# --- Lstm ------------------------------------------------------------------------------------

@register("Lstm")
class Lstm(Layer):
    """Junhyuk Oh's LSTM layer, in two forks with two shape rules.

    junhyukoh/caffe-lstm src/caffe/layers/lstm_layer.cpp: N = lstm_param.batch_size [1],
    I = count / num, T = num / N (CHECK that N divides num), top (T*N, H).
    senlinuc/caffe_ocr src/caffe/layers/lstm_layer_Junhyuk.cpp (REGISTER_LAYER_CLASS(Lstm)):
    the bottom is (T, N, I) (T, N, I = shape(0), shape(1), shape(2); batch_size is not read),
    top (T, N, H). netdef takes a 3-D bottom by caffe_ocr's rule and any other by caffe-lstm's;
    the two agree on the values when N = 1.

    Both: blobs W_i (4H, I), W_h (4H, H), b (4H) (weight_filler, weight_filler, bias_filler);
    the gate rows are i, f, o, g. Forward_cpu: pre = x W_i^T + b; per step t and stream n,
    cont = clip[t + n] != 0 with the optional second bottom `clip` (whose count must equal its
    num; it is read at clip + offset(t) + n), else t > 0; if cont, pre += h_{t-1} W_h^T;
    i, o = sigmoid, f = cont ? sigmoid : 0, g = tanh, c = f c_{t-1} + i g, h = o tanh(c).
    h_0 = c_0 = 0 without clip; with clip they are the previous forward pass's last state (zero
    in a freshly loaded net, which is what netdef computes). clipping_threshold only bounds
    gradients."""

    fork_defaults = LSTM_DEFAULTS
    origin = LSTM_FORKS
    checked_against = ("junhyukoh/caffe-lstm src/caffe/layers/lstm_layer.cpp and senlinuc/caffe_ocr "
                       "src/caffe/layers/lstm_layer_Junhyuk.cpp, with their caffe.proto")
    family = "recurrent"
    time_major = True

    def count_limits(self, node):
        return (1, 2), (1, 1)

    def hidden(self, node):
        p = ForkParams(node, "lstm_param")
        if not p.has("num_output"):
            bad(node, "lstm_param has no num_output", p.span(), notes=["num_output is the hidden state size"])
        h = _int(node, p, "num_output")
        if h <= 0:
            bad(node, f"lstm_param.num_output must be positive, got {h}", p.span())
        return h, p

    def dims(self, node, x):
        """(T, N, I, ocr): the sequence geometry by the fork whose rule applies."""
        h, p = self.hidden(node)
        if len(x) == 3:
            return x[0], x[1], x[2], True
        if len(x) < 1 or x[0] == 0:
            bad(node, f"the bottom {fmt_shape(x)} has no items", node.bottom_span(0), code=codes.SHAPE_MISMATCH)
        n = _int(node, p, "batch_size")
        if n <= 0 or x[0] % n:
            bad(node, f"lstm_param.batch_size {n} does not divide the bottom's first axis {x[0]}", p.span(),
                notes=["caffe-lstm CHECKs that num is a multiple of the batch size (T = num / batch_size)"])
        return x[0] // n, n, count(x, 1), False

    def infer_shapes(self, node, in_shapes):
        x = in_shapes[0]
        h, _ = self.hidden(node)
        t, n, _i, ocr = self.dims(node, x)
        if len(in_shapes) > 1:
            clip = in_shapes[1]
            if not clip or prod(clip) != clip[0]:
                bad(node, f"the clip bottom '{node.inputs[1].name}' {fmt_shape(clip)} must have one value per item",
                    node.bottom_span(1), notes=["the fork CHECKs that its count equals its num"],
                    code=codes.SHAPE_MISMATCH)
            if clip[0] < t + n - 1:
                bad(node, f"the clip bottom '{node.inputs[1].name}' {fmt_shape(clip)} has fewer than T + N - 1 = "
                          f"{t + n - 1} values", node.bottom_span(1),
                    notes=["the fork reads the indicator of step t and stream n at clip[t + n]"],
                    code=codes.SHAPE_MISMATCH)
        return [(t, n, h) if ocr else (t * n, h)]

    def param_shapes(self, node, in_shapes):
        h, _ = self.hidden(node)
        _t, _n, i, _ = self.dims(node, in_shapes[0])
        return [(4 * h, i), (4 * h, h), (4 * h,)]

    def filler_params(self, node):
        _h, p = self.hidden(node)
        w = _filler(p, "weight_filler")
        return [w, w, _filler(p, "bias_filler")]

    def receptive_field(self, node, in_rfs):
        return [None]

    def cost(self, node, in_shapes, out_shapes):
        h, _ = self.hidden(node)
        t, n, i, _ = self.dims(node, in_shapes[0])
        macs = t * n * 4 * h * (i + h)
        return {"macs": macs, "flops": 2 * macs + t * n * h * 10}

    def to_onnx(self, node, g):
        """ONNX LSTM with the gate rows reordered (Gather); with a clip bottom, the steps unrolled.

        Without clip: one ONNX LSTM (zero initial state), the gate rows reordered from Caffe's
        i, f, o, g to ONNX's i, o, f, c, the bias as Wb with a zero Rb. With clip (which resets
        the state per step and stream, which ONNX's LSTM cannot): the steps unrolled."""
        h, _ = self.hidden(node)
        t, n, i, ocr = self.dims(node, g.in_shape(0))
        dyn = any(g.in_dyn(0))
        if g.n_in > 1 and (dyn or any(g.in_dyn(1))):
            g.fail("with a clip bottom the steps are unrolled: the sequence and batch axes must be fixed",
                   notes=["export with a fixed --batch"])
        if ocr and any(g.in_dyn(0)[2:]) or not ocr and dyn and any(g.in_dyn(0)[1:]):
            g.fail("the input size of the Lstm must be fixed")
        # caffe_ocr's bottom is already (T, N, I); caffe-lstm's (T*N, ...) is read as (T, N, I).
        x = g.x(0) if ocr else g.op("Reshape", [g.x(0), g.ints([-1 if dyn else t, n, i], "x_shape")], g.tmp("x"))
        rows = [r for block in (0, 2, 1, 3) for r in range(block * h, (block + 1) * h)]     # i, o, f, g
        if g.n_in == 1:
            order = g.ints(rows, "onnx_gate_rows")
            w = g.op("Unsqueeze", [g.op("Gather", [g.param(0, "W_i"), order], g.tmp("w_iofc"), axis=0),
                                   g.ints([0], "dir_axis")], g.tmp("W"))
            r = g.op("Unsqueeze", [g.op("Gather", [g.param(1, "W_h"), order], g.tmp("r_iofc"), axis=0),
                                   g.ints([0], "dir_axis_r")], g.tmp("R"))
            b = g.op("Unsqueeze", [g.op("Concat", [g.op("Gather", [g.param(2, "b"), order], g.tmp("b_iofc"), axis=0),
                                                   g.const([0.0] * (4 * h), "rb")], g.tmp("b_wr"), axis=0),
                                   g.ints([0], "dir_axis_b")], g.tmp("B"))
            if g.fp16:      # onnxruntime's CPU LSTM is float32 only: run it in float32
                x, w, r, b = (g.op("Cast", [v], g.tmp(f"{v.rsplit('/', 1)[-1]}_f32"), to=_FLOAT) for v in (x, w, r, b))
            y = g.op("LSTM", [x, w, r, b], g.tmp("Y"), hidden_size=h)                        # (T, 1, N, H)
            if g.fp16:
                y = g.op("Cast", [y], g.tmp("Y_f16"), to=_FLOAT16)
            if ocr:
                g.op("Squeeze", [y, g.ints([1], "dir_axis_y")], g.y(0))
            else:
                g.op("Reshape", [y, g.ints([-1 if dyn else t * n, h], "out_shape")], g.y(0))
            return
        self._unrolled(g, x, t, n, h, ocr)

    def _unrolled(self, g, x, t, n, h, ocr):
        flat = g.op("Reshape", [x, g.ints([t * n, -1], "x_rows")], g.tmp("x_rows"))
        pre = g.op("Gemm", [flat, g.param(0, "W_i"), g.param(2, "b")], g.tmp("pre_gate"), transB=1)
        steps = g.op("Split", [pre, g.ints([n] * t, "steps")], [g.tmp(f"pre_{s}") for s in range(t)], axis=0) \
            if t > 1 else [pre]
        clip = g.op("Reshape", [g.x(1), g.ints([-1], "clip_flat")], g.tmp("clip"))
        # cont of (t, n) = clip[t + n] != 0: one (N, 1) column per step.
        conts = g.op("Sub", [g.const(1.0, "one"), g.cast_float(g.op("Equal", [
            g.op("Gather", [clip, g.ints([[s + k for k in range(n)] for s in range(t)], "clip_index")],
                 g.tmp("clip_tn")), g.const(0.0, "zero")], g.tmp("clip_zero")))], g.tmp("cont"))   # (T, N)
        cont_cols = g.op("Split", [g.op("Unsqueeze", [conts, g.ints([2], "col")], g.tmp("cont3")),
                                   g.ints([1] * t, "cont_steps")], [g.tmp(f"cont_{s}") for s in range(t)], axis=0) \
            if t > 1 else [g.op("Unsqueeze", [conts, g.ints([2], "col")], g.tmp("cont3"))]
        w_h = g.param(1, "W_h")
        hs = g.const([[0.0] * h] * n, "h_0")
        cs = g.const([[0.0] * h] * n, "c_0")
        outs = []
        for s in range(t):
            cont = g.op("Reshape", [cont_cols[s], g.ints([n, 1], "cont_col")], g.tmp(f"cont_col_{s}"))
            rec = g.op("Mul", [g.op("Gemm", [hs, w_h], g.tmp(f"h_to_gate_{s}"), transB=1), cont],
                       g.tmp(f"h_to_gate_cont_{s}"))
            gate = g.op("Add", [steps[s], rec], g.tmp(f"gate_{s}"))
            gi, gf, go, gg = g.op("Split", [gate, g.ints([h] * 4, "gates")],
                                  [g.tmp(f"{q}_in_{s}") for q in "ifog"], axis=1)
            f = g.op("Mul", [g.op("Sigmoid", [gf], g.tmp(f"f_sig_{s}")), cont], g.tmp(f"f_{s}"))
            cs = g.op("Add", [g.op("Mul", [f, cs], g.tmp(f"fc_{s}")),
                              g.op("Mul", [g.op("Sigmoid", [gi], g.tmp(f"i_{s}")), g.op("Tanh", [gg], g.tmp(f"g_{s}"))],
                                   g.tmp(f"ig_{s}"))], g.tmp(f"c_{s}"))
            hs = g.op("Mul", [g.op("Sigmoid", [go], g.tmp(f"o_{s}")), g.op("Tanh", [cs], g.tmp(f"tanh_c_{s}"))],
                      g.tmp(f"h_{s}"))
            outs.append(hs)
        seq = g.op("Concat", outs, g.tmp("steps_concat"), axis=0) if len(outs) > 1 else outs[0]
        g.op("Reshape", [seq, g.ints([t, n, h] if ocr else [t * n, h], "out_shape")], g.y(0))


# --- DenseBlock ------------------------------------------------------------------------------

@register("DenseBlock")
class DenseBlock(Layer):
    """caffe_ocr's memory-efficient DenseNet block. senlinuc/caffe_ocr
    src/caffe/layers/DenseBlock_layer.cpp and .cu: the bottom is (N, C0, H, W) (initChannel is
    not read: C0 is the bottom's channels); the top (N, C0 + numTransition * growthRate, H, W)
    is the bottom followed by each transition's growthRate maps. Transition k (C_k = C0 + k g
    channels in): BatchNorm with the stored statistics (cuDNN's inference form in the GPU path:
    scale (x - mean) / sqrt(var + 1e-5) + bias), ReLU, a 3 x 3 convolution, stride 1, pad 1
    (hard-coded: pad_h/pad_w, the strides and filter_H/filter_W are not read) in cuDNN's
    CUDNN_CONVOLUTION mode, i.e. with the kernel flipped (the CPU path's convolution_Fwd reads
    x[h + 1 - i, w + 1 - j] too). With use_BC a 1 x 1 convolution to 4 g maps, BatchNorm and
    ReLU come before the 3 x 3 one. Dropout runs only in TRAIN.

    Blobs (LayerSetUp), without BC 5 T + 1: filters (g, C_k, 3, 3), BN scales, BN biases, means
    and variances (1, C_k, 1, 1) each, then a (1,) factor; with BC 10 T + 1: those, then the 1 x 1
    filters (4g, C_k, 1, 1), the BC scales, biases, means, variances (1, 4g, 1, 1), then the
    factor. Means and variances (and the factor) are statistics, set to 0, 1 (and 0). LayerSetUp
    refuses a layer that has `param` entries (CHECK "Nope"). The CPU path divides the statistics
    by the factor (0 makes them 0), the GPU path uses them as stored; netdef follows the GPU
    path, the one the fork's README times and its models were trained with."""

    fork_defaults = DENSEBLOCK_DEFAULTS
    origin = OCR
    checked_against = "senlinuc/caffe_ocr src/caffe/layers/DenseBlock_layer.cpp and DenseBlock_layer.cu, its caffe.proto"
    family = "convolution"

    def params(self, node):
        p = ForkParams(node, "denseblock_param")
        t, gr = _int(node, p, "numTransition"), _int(node, p, "growthRate")
        if t < 1 or gr < 1:
            bad(node, f"numTransition ({t}) and growthRate ({gr}) must be positive", p.span())
        return t, gr, _bool(node, p, "use_BC"), p

    def check(self, node, diags):
        if len(node.param.param):
            diags.add(codes.BAD_PARAM.at(node.span, message=f"layer '{node.name}': a DenseBlock layer cannot have "
                                         "param entries", notes=["caffe_ocr's DenseBlockLayer::LayerSetUp makes its "
                                                                 "own and aborts ('Nope') when the layer has some"]))

    def infer_shapes(self, node, in_shapes):
        x = in_shapes[0]
        need_rank(node, x, 4)
        t, gr, _bc, _ = self.params(node)
        return [(x[0], x[1] + t * gr, x[2], x[3])]

    def param_shapes(self, node, in_shapes):
        c0 = in_shapes[0][1]
        t, gr, bc, _ = self.params(node)
        chans = [(1, c0 + k * gr, 1, 1) for k in range(t)]
        shapes = [(gr, 4 * gr if bc else c0 + k * gr, 3, 3) for k in range(t)] + chans * 4
        if bc:
            shapes += [(4 * gr, c0 + k * gr, 1, 1) for k in range(t)] + [(1, 4 * gr, 1, 1)] * (4 * t)
        return shapes + [(1,)]

    def stat_blobs(self, node):
        t, _gr, bc, _ = self.params(node)
        stats = set(range(3 * t, 5 * t)) | ({*range(8 * t, 10 * t)} if bc else set())
        return stats | {10 * t if bc else 5 * t}

    def filler_params(self, node):
        t, _gr, bc, p = self.params(node)
        w, s, b = _filler(p, "Filter_Filler"), _filler(p, "BN_Scaler_Filler"), _filler(p, "BN_Bias_Filler")
        fill = [w] * t + [s] * t + [b] * t + [_constant(0.0)] * t + [_constant(1.0)] * t
        if bc:
            fill += [w] * t + [s] * t + [b] * t + [_constant(0.0)] * t + [_constant(1.0)] * t
        return fill + [_constant(0.0)]

    def receptive_field(self, node, in_rfs):
        rf = in_rfs[0]
        if rf is None:
            return [None]
        t, _gr, _bc, _ = self.params(node)
        for _ in range(t):
            rf = window_rf(rf, [3, 3], [1, 1], [1, 1])
        return [rf]

    def cost(self, node, in_shapes, out_shapes):
        n, c0, hh, ww = in_shapes[0]
        t, gr, bc, _ = self.params(node)
        macs = flops = 0
        for k in range(t):
            ck = c0 + k * gr
            flops += 3 * n * ck * hh * ww                                   # BN and ReLU
            if bc:
                macs += n * hh * ww * 4 * gr * ck
                flops += 3 * n * 4 * gr * hh * ww
            macs += n * hh * ww * gr * (4 * gr if bc else ck) * 9
        return {"macs": macs, "flops": 2 * macs + flops}

    def to_onnx(self, node, g):
        """Per transition: BatchNorm as Mul/Add, Relu, Conv with the kernel flipped (Slice, step -1), Concat.

        Per transition: the BatchNorm as an affine map of the stored statistics, Relu, Conv with
        the kernel flipped on both spatial axes (a Slice with step -1 of the initializer), pad 1,
        and Concat of the maps so far with its output."""
        t, gr, bc, _ = self.params(node)
        cur = g.x(0)
        for k in range(t):
            y = self._bn_relu(g, cur, t + k, 2 * t + k, 3 * t + k, 4 * t + k, f"t{k}")
            if bc:
                y = g.op("Conv", [y, g.param(5 * t + k, f"bc_filter_{k}")], g.tmp(f"t{k}_bc_conv"),
                         kernel_shape=[1, 1])
                y = self._bn_relu(g, y, 6 * t + k, 7 * t + k, 8 * t + k, 9 * t + k, f"t{k}_bc")
            flipped = g.op("Slice", [g.param(k, f"filter_{k}"), g.ints([-1, -1], "flip_start"),
                                     g.ints([-4, -4], "flip_end"), g.ints([2, 3], "flip_axes"),
                                     g.ints([-1, -1], "flip_steps")], g.tmp(f"t{k}_filter_flipped"))
            conv = g.op("Conv", [y, flipped], g.tmp(f"t{k}_conv"), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
            cur = g.op("Concat", [cur, conv], g.y(0) if k == t - 1 else g.tmp(f"t{k}_out"), axis=1)

    def _bn_relu(self, g, x, scale_i, bias_i, mean_i, var_i, tag):
        """scale (x - mean) / sqrt(var + eps) + bias, then ReLU, from blobs of these indices."""
        inv = g.op("Div", [g.param(scale_i, f"{tag}_scale"),
                           g.op("Sqrt", [g.op("Add", [g.param(var_i, f"{tag}_var"), g.const(DENSEBLOCK_EPS, "eps")],
                                              g.tmp(f"{tag}_var_eps"))], g.tmp(f"{tag}_std"))], g.tmp(f"{tag}_mult"))
        shift = g.op("Sub", [g.param(bias_i, f"{tag}_bias"), g.op("Mul", [g.param(mean_i, f"{tag}_mean"), inv],
                                                                 g.tmp(f"{tag}_mean_mult"))], g.tmp(f"{tag}_shift"))
        y = g.op("Add", [g.op("Mul", [x, inv], g.tmp(f"{tag}_scaled")), shift], g.tmp(f"{tag}_bn"))
        return g.op("Relu", [y], g.tmp(f"{tag}_relu"))
