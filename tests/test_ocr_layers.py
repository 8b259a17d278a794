"""The OCR and sequence layers of caffe_ocr (senlinuc/caffe_ocr) and caffe-lstm
(junhyukoh/caffe-lstm): Transpose, Reverse, CTCGreedyDecoder, Lstm, DenseBlock. Each one's
shape rule from the fork's Reshape, its NumPy reference against values worked out by hand from
the fork's Forward_cpu/Forward_gpu, and `netdef verify` (reference against the exported model in
onnxruntime) on small nets."""
import contextlib
import io
import math

import numpy as np
import pytest
from conftest import compile_text, errors_of, shapes_of

from netdef.cli import main
from netdef.parse import parse_text
from netdef.reference import forward
from netdef.source import Source


def _net(inputs, layers, name="ocr"):
    head = f'name: "{name}"\n'
    for blob, shape in inputs.items():
        dims = " ".join(f"dim: {d}" for d in shape)
        head += f'layer {{ name: "{blob}_in" type: "Input" top: "{blob}" input_param {{ shape {{ {dims} }} }} }}\n'
    return head + layers


def _ref(text, inputs, weights=None):
    parsed = parse_text(Source(text, "t.prototxt"), "net")
    return forward(parsed.message, weights or {}, inputs, loc=parsed.loc)


def _cli(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


# --- Transpose and Reverse (caffe_ocr transpose_layer.cpp, reverse_layer.cpp) --------------------

TR = _net({"data": (2, 3, 1, 5)}, """
layer { name: "t" type: "Transpose" bottom: "data" top: "t" transpose_param { dim: 3 dim: 2 dim: 0 dim: 1 } }
layer { name: "r" type: "Reverse" bottom: "t" top: "r" reverse_param { axis: 0 } }
layer { name: "r1" type: "Reverse" bottom: "data" top: "r1" reverse_param { axis: 1 } }
""")


def test_transpose_and_reverse_shapes():
    shapes, g = shapes_of(TR)
    assert shapes["t"] == (5, 1, 2, 3)          # top axis i is bottom axis dim[i]
    assert shapes["r"] == (5, 1, 2, 3) and shapes["r1"] == (2, 3, 1, 5)
    assert (g.node("t").meta["cost"]["macs"], g.node("t").meta["cost"]["flops"]) == (0, 0)


def test_transpose_and_reverse_values_by_hand():
    x = np.arange(30, dtype=np.float32).reshape(2, 3, 1, 5)
    out = _ref(TR, {"data": x})
    # top[w, 0, n, c] = x[n, c, 0, w]: x[1, 2, 0, 4] is 1*15 + 2*5 + 4 = 29.
    assert out["t"][4, 0, 1, 2] == 29 and out["t"][0, 0, 1, 0] == 15
    # Reverse axis 0 of t: r[0] = t[4]; so r[0, 0, 1, 2] = x[1, 2, 0, 4] = 29.
    assert out["r"][0, 0, 1, 2] == 29 and out["r"][4, 0, 0, 0] == 0
    # Reverse axis 1 of data: channel 0 becomes channel 2: r1[0, 0, 0, 1] = x[0, 2, 0, 1] = 11.
    assert out["r1"][0, 0, 0, 1] == 11 and out["r1"][1, 2, 0, 0] == 15


@pytest.mark.parametrize("param,needle", [
    ("transpose_param { dim: 0 dim: 1 dim: 2 }", "3 dim values for a 4-D bottom"),
    ("transpose_param { dim: 0 dim: 0 dim: 2 dim: 3 }", "repeat an axis"),
    ("transpose_param { dim: 0 dim: 1 dim: 2 dim: 4 }", "is not an axis"),
])
def test_transpose_rejects_bad_dims(param, needle):
    text = _net({"data": (1, 2, 3, 4)}, f'layer {{ name: "t" type: "Transpose" bottom: "data" top: "t" {param} }}\n')
    assert any(needle in m for m in errors_of(text)), errors_of(text)


def test_reverse_rejects_bad_axes_and_in_place():
    for axis in (-1, 4):
        text = _net({"data": (1, 2, 3, 4)},
                    f'layer {{ name: "r" type: "Reverse" bottom: "data" top: "r" reverse_param {{ axis: {axis} }} }}\n')
        assert any("is not an axis" in m for m in errors_of(text))
    text = _net({"data": (1, 2, 3, 4)}, 'layer { name: "r" type: "Reverse" bottom: "data" top: "data" }\n')
    assert any("cannot run in place" in m for m in errors_of(text))


# --- CTCGreedyDecoder (caffe_ocr ctc_decoder_layer.cpp) -----------------------------------------

def _ctc(param="", t=6, n=2, c=3):
    return _net({"data": (t, n, c)}, f'layer {{ name: "dec" type: "CTCGreedyDecoder" bottom: "data" top: "dec" '
                                     f'{param} }}\n')


def _scores(labels_per_seq, c=3):
    """(T, N, C) scores whose maximum at (t, n) is labels_per_seq[n][t]."""
    t, n = len(labels_per_seq[0]), len(labels_per_seq)
    x = np.zeros((t, n, c), np.float32)
    for j, seq in enumerate(labels_per_seq):
        for i, lab in enumerate(seq):
            x[i, j, lab] = 1.0
    return x


def test_ctc_shape_is_n_by_t():
    shapes, g = shapes_of(_ctc(t=7, n=3, c=5))
    assert shapes["dec"] == (3, 7, 1, 1)
    assert g.node("dec").meta["cost"]["flops"] == 7 * 3 * 5


def test_ctc_greedy_values_by_hand():
    x = _scores([[1, 1, 0, 1, 2, 2], [0, 0, 0, 0, 0, 0]])
    # Blank 0, merging: 1 1 _ 1 2 2 -> 1 (repeat dropped), blank, 1 (after a blank: kept), 2, 2 dropped.
    out = _ref(_ctc(), {"data": x})["dec"]
    assert out[0, :, 0, 0].tolist() == [1, 1, 2, -1, -1, -1]
    assert out[1, :, 0, 0].tolist() == [-1] * 6                # all blanks: nothing, -1 filled
    out = _ref(_ctc("ctc_decoder_param { ctc_merge_repeated: false }"), {"data": x})["dec"]
    assert out[0, :, 0, 0].tolist() == [1, 1, 1, 2, 2, -1]
    # A negative blank_index is C - 1 = 2: class 0 is a label now.
    out = _ref(_ctc("ctc_decoder_param { blank_index: -1 }"), {"data": x})["dec"]
    assert out[0, :, 0, 0].tolist() == [1, 0, 1, -1, -1, -1]
    assert out[1, :, 0, 0].tolist() == [0, -1, -1, -1, -1, -1]


def test_ctc_ties_take_the_first_class():
    x = np.ones((2, 1, 3), np.float32)                      # every class equal: class 0 wins (blank)
    x[1, 0, 1] = x[1, 0, 2] = 2.0                           # 1 and 2 tie: 1
    out = _ref(_ctc(t=2, n=1), {"data": x})["dec"]
    assert out[0, :, 0, 0].tolist() == [1, -1]


def test_ctc_two_bottoms_are_refused():
    text = _net({"data": (4, 1, 3), "label": (1, 4)},
                'layer { name: "acc" type: "CTCGreedyDecoder" bottom: "data" bottom: "label" top: "acc" }\n')
    assert any("two-bottom CTCGreedyDecoder" in m for m in errors_of(text))


# --- Lstm (junhyukoh/caffe-lstm lstm_layer.cpp; caffe_ocr lstm_layer_Junhyuk.cpp) ---------------

def _lstm(inputs, extra="", bottoms=("data",), h=4):
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    return _net(inputs, f'layer {{ name: "lstm" type: "Lstm" {b} top: "out" '
                        f'lstm_param {{ num_output: {h} {extra} weight_filler {{ type: "gaussian" std: 0.5 }} }} }}\n')


def test_lstm_shapes_by_fork():
    # caffe_ocr: (T, N, I) -> (T, N, H).
    shapes, g = shapes_of(_lstm({"data": (5, 2, 3)}))
    assert shapes["out"] == (5, 2, 4)
    assert g.node("lstm").meta["blobs"] == [(16, 3), (16, 4), (16,)]
    assert g.node("lstm").meta["cost"]["macs"] == 5 * 2 * 16 * (3 + 4)
    # caffe-lstm: (T*N, ...) -> (T*N, H) with N = batch_size and I = count / num.
    shapes, g = shapes_of(_lstm({"data": (6, 2, 1, 1), "clip": (6, 1)}, "batch_size: 2", ("data", "clip")))
    assert shapes["out"] == (6, 4)
    assert g.node("lstm").meta["blobs"] == [(16, 2), (16, 4), (16,)]


def test_lstm_rejects_bad_geometry():
    assert any("does not divide" in m for m in errors_of(_lstm({"data": (5, 2)}, "batch_size: 2")))
    assert any("has no num_output" in m for m in errors_of(_net(
        {"data": (5, 1, 2)}, 'layer { name: "l" type: "Lstm" bottom: "data" top: "o" }\n')))
    assert any("one value per item" in m for m in errors_of(
        _lstm({"data": (4, 1, 2), "clip": (4, 2)}, "", ("data", "clip"))))
    assert any("fewer than T + N - 1" in m for m in errors_of(
        _lstm({"data": (4, 2, 2), "clip": (4, 1)}, "", ("data", "clip"))))


def _one_unit_weights():
    # H = 1, I = 1; gate rows i, f, o, g.
    w_i = np.array([[0.5], [-0.3], [0.8], [1.2]], np.float32)
    w_h = np.array([[0.1], [0.2], [-0.4], [0.7]], np.float32)
    b = np.array([0.05, 0.6, -0.1, 0.0], np.float32)
    return {"lstm": [w_i, w_h, b]}


def _one_unit_by_hand(xs, conts):
    h = c = 0.0
    out = []
    for x, cont in zip(xs, conts):
        pre = [0.5 * x + 0.05, -0.3 * x + 0.6, 0.8 * x - 0.1, 1.2 * x]
        if cont:
            pre = [p + w * h for p, w in zip(pre, (0.1, 0.2, -0.4, 0.7))]
        i, f, o, g = _sig(pre[0]), _sig(pre[1]) if cont else 0.0, _sig(pre[2]), math.tanh(pre[3])
        c = f * c + i * g
        h = o * math.tanh(c)
        out.append(h)
    return out


def test_lstm_values_by_hand():
    xs = [1.0, -2.0, 0.5]
    text = _lstm({"data": (3, 1, 1)}, h=1)
    out = _ref(text, {"data": np.array(xs, np.float32).reshape(3, 1, 1)}, _one_unit_weights())["out"]
    np.testing.assert_allclose(out.reshape(-1), _one_unit_by_hand(xs, [False, True, True]), rtol=1e-6)
    # caffe-lstm with clip: a 0 restarts the sequence (no recurrent input, forget gate 0).
    text = _lstm({"data": (3, 1), "clip": (3, 1)}, h=1, bottoms=("data", "clip"))
    clip = np.array([[0.0], [1.0], [0.0]], np.float32)
    out = _ref(text, {"data": np.array(xs, np.float32).reshape(3, 1), "clip": clip}, _one_unit_weights())["out"]
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out.reshape(-1), _one_unit_by_hand(xs, [False, True, False]), rtol=1e-6)
    # The restart at step 2 makes it the first step of a new sequence.
    np.testing.assert_allclose(out[2, 0], _one_unit_by_hand([0.5], [False])[0], rtol=1e-6)


# --- DenseBlock (caffe_ocr DenseBlock_layer.cpp / .cu) ------------------------------------------

def _dense(shape=(1, 1, 3, 3), param="numTransition: 1 growthRate: 1", extra=""):
    return _net({"data": shape}, f'layer {{ name: "db" type: "DenseBlock" bottom: "data" top: "db" {extra} '
                                 f'denseblock_param {{ {param} }} }}\n')


def test_dense_block_shapes_and_blobs():
    shapes, g = shapes_of(_dense((2, 4, 5, 6), "numTransition: 3 growthRate: 2 initChannel: 99"))
    assert shapes["db"] == (2, 4 + 3 * 2, 5, 6)          # initChannel is not read: the bottom's 4
    blobs = g.node("db").meta["blobs"]
    assert len(blobs) == 5 * 3 + 1
    assert blobs[:3] == [(2, 4, 3, 3), (2, 6, 3, 3), (2, 8, 3, 3)]
    assert blobs[3:6] == [(1, 4, 1, 1), (1, 6, 1, 1), (1, 8, 1, 1)] and blobs[-1] == (1,)
    assert g.node("db").meta["cost"]["macs"] == 2 * 5 * 6 * 2 * (4 + 6 + 8) * 9
    shapes, g = shapes_of(_dense((1, 4, 5, 6), "numTransition: 2 growthRate: 3 use_BC: true"))
    blobs = g.node("db").meta["blobs"]
    assert len(blobs) == 10 * 2 + 1 and blobs[0] == (3, 12, 3, 3) and blobs[10] == (12, 4, 1, 1)
    # Receptive field: two 3 x 3 stride-1 convolutions.
    assert g.node("db").outputs[0].meta["rf"].size == (5, 5)


def test_dense_block_refuses_param_entries_and_bad_rank():
    assert any("cannot have param entries" in m for m in errors_of(_dense(extra="param { lr_mult: 1 }")))
    assert errors_of(_dense((1, 2, 3)))


def test_dense_block_values_by_hand():
    # One transition, one new map. Filter 1 at (0, 0) only: the fork's flipped convolution reads
    # x[h + 1 - 0, w + 1 - 0], the pixel below and to the right. BN: scale 2, bias 0.5, mean 1,
    # var 3: 2 (x - 1) / sqrt(3 + 1e-5) + 0.5, then ReLU.
    x = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32).reshape(1, 1, 3, 3)
    w = np.zeros((1, 1, 3, 3), np.float32)
    w[0, 0, 0, 0] = 1.0
    weights = {"db": [w, np.full((1, 1, 1, 1), 2.0, np.float32), np.full((1, 1, 1, 1), 0.5, np.float32),
                      np.ones((1, 1, 1, 1), np.float32), np.full((1, 1, 1, 1), 3.0, np.float32),
                      np.zeros(1, np.float32)]}
    out = _ref(_dense(), {"data": x}, weights)["db"]
    assert out.shape == (1, 2, 3, 3)
    np.testing.assert_array_equal(out[0, 0], x[0, 0])       # the bottom comes first
    bn = lambda v: max(2 * (v - 1) / math.sqrt(3 + 1e-5) + 0.5, 0.0)  # noqa: E731
    expect = [[bn(5), bn(6), 0], [bn(8), bn(9), 0], [0, 0, 0]]
    np.testing.assert_allclose(out[0, 1], expect, rtol=1e-6)


# --- verify: the reference against the exported model in onnxruntime ---------------------------

CRNN = _net({"data": (1, 2, 4, 10)}, """
layer { name: "db" type: "DenseBlock" bottom: "data" top: "db"
        denseblock_param { numTransition: 2 growthRate: 3 Filter_Filler { type: "msra" }
                           BN_Scaler_Filler { type: "constant" value: 1 } } }
layer { name: "pool" type: "Pooling" bottom: "db" top: "pool" pooling_param { pool: AVE kernel_h: 4 kernel_w: 1 } }
layer { name: "t" type: "Transpose" bottom: "pool" top: "t" transpose_param { dim: 3 dim: 2 dim: 0 dim: 1 } }
layer { name: "seq" type: "Reshape" bottom: "t" top: "seq" reshape_param { shape { dim: -1 } axis: 1 num_axes: 2 } }
layer { name: "fw" type: "Lstm" bottom: "seq" top: "fw" lstm_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 }
        bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "rev" type: "Reverse" bottom: "seq" top: "rev" reverse_param { axis: 0 } }
layer { name: "bw" type: "Lstm" bottom: "rev" top: "bw" lstm_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "bwr" type: "Reverse" bottom: "bw" top: "bwr" }
layer { name: "cat" type: "Concat" bottom: "fw" bottom: "bwr" top: "cat" concat_param { axis: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "cat" top: "fc" inner_product_param { num_output: 3 axis: 2
        weight_filler { type: "gaussian" std: 1 } } }
layer { name: "dec" type: "CTCGreedyDecoder" bottom: "fc" top: "dec" }
""")


def test_verify_a_small_crnn(tmp_path):
    p = tmp_path / "crnn.prototxt"
    p.write_text(CRNN)
    code, text = _cli("verify", str(p))
    assert code == 0, text[-3000:]
    assert "compared" in text and "DenseBlock" in text and "CTCGreedyDecoder" in text
    shapes, _ = shapes_of(CRNN)
    assert shapes["seq"] == (10, 1, 2 + 2 * 3) and shapes["dec"] == (1, 10, 1, 1)


def test_verify_dense_block_with_bc_and_ctc_options(tmp_path):
    text = _net({"data": (2, 3, 5, 4)}, """
layer { name: "db" type: "DenseBlock" bottom: "data" top: "db"
        denseblock_param { numTransition: 2 growthRate: 2 use_BC: true Filter_Filler { type: "msra" }
                           BN_Scaler_Filler { type: "gaussian" std: 1 } BN_Bias_Filler { type: "gaussian" std: 1 } } }
layer { name: "t" type: "Transpose" bottom: "db" top: "t" transpose_param { dim: 2 dim: 0 dim: 1 dim: 3 } }
layer { name: "s" type: "Reshape" bottom: "t" top: "s" reshape_param { shape { dim: 0 dim: 0 dim: -1 } } }
layer { name: "dec" type: "CTCGreedyDecoder" bottom: "s" top: "dec"
        ctc_decoder_param { blank_index: -1 ctc_merge_repeated: false } }
""")
    p = tmp_path / "bc.prototxt"
    p.write_text(text)
    code, out = _cli("verify", str(p), "--batch", "2")
    assert code == 0, out[-3000:]
    assert "compared" in out


def test_verify_caffe_lstm_with_clip(tmp_path):
    # caffe-lstm's example layout: (T, 1) data and clip, stacked layers; the clip restarts the
    # state, which the export unrolls.
    text = _net({"data": (12, 1), "clip": (12, 1)}, """
layer { name: "l1" type: "Lstm" bottom: "data" bottom: "clip" top: "l1"
        lstm_param { num_output: 3 clipping_threshold: 0.1 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "l2" type: "Lstm" bottom: "l1" bottom: "clip" top: "l2"
        lstm_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } } }
""")
    p = tmp_path / "seq.prototxt"
    p.write_text(text)
    code, out = _cli("verify", str(p), "--batch", "12")
    assert code == 0, out[-3000:]
    assert "compared" in out
    shapes, g = shapes_of(text)
    assert shapes["l2"] == (12, 3)
    # Random indicators are never 0: restarts (0 at steps 4 and 9) compared through the API.
    from netdef.export.verify import verify
    clip = np.ones((12, 1), np.float32)
    clip[[0, 4, 9]] = 0.0
    report = verify(str(p), inputs={"data": np.random.default_rng(5).standard_normal((12, 1)).astype(np.float32),
                                    "clip": clip})
    assert report.first_bad is None and report.stopped is None


def test_check_names_the_forks():
    g = compile_text(CRNN)
    w = [d.message for d in g.diagnostics if d.code == "W216"]
    assert any("denseblock_param" in m and "senlinuc/caffe_ocr" in m for m in w)
    assert any("lstm_param" in m and "junhyukoh/caffe-lstm" in m for m in w)
    assert any("transpose_param" in m and "netdef reads it" in m for m in w)


def test_export_dynamic_batch_and_fp16(tmp_path):
    # Without a clip bottom the Lstm is one ONNX LSTM and the decoder takes any batch: a model
    # exported with a symbolic batch computes what the fixed-batch one does; with --fp16 the
    # LSTM runs in float32 (onnxruntime's CPU LSTM has no float16 kernel).
    import onnxruntime as ort

    from netdef.export.onnx import export
    p = tmp_path / "crnn.prototxt"
    p.write_text(CRNN)
    x = np.random.default_rng(3).random((2, 2, 4, 10)).astype(np.float32)

    def run(model):
        s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return s.run(None, {"data": x})[0]
    dyn = export(str(p), batch="dynamic").model()
    assert [d.dim_param or d.dim_value for d in dyn.graph.output[0].type.tensor_type.shape.dim] == ["batch", 10, 1, 1]
    fixed = run(export(str(p), batch=2).model())
    np.testing.assert_array_equal(run(dyn), fixed)
    half = run(export(str(p), batch=2, fp16=True).model())
    assert half.shape == (2, 10, 1, 1) and set(np.unique(half)) <= {-1.0, 0.0, 1.0, 2.0}


def test_clip_lstm_needs_a_fixed_batch(tmp_path):
    text = _net({"data": (4, 1), "clip": (4, 1)}, """
layer { name: "l1" type: "Lstm" bottom: "data" bottom: "clip" top: "l1" lstm_param { num_output: 2 } }
""")
    p = tmp_path / "seq.prototxt"
    p.write_text(text)
    out = tmp_path / "seq.onnx"
    code, msg = _cli("export", str(p), "--batch", "dynamic", "-o", str(out))
    assert code != 0 and "must be fixed" in msg and not out.exists()
