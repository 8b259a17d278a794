"""Issue 11's face, large-margin, YOLO-training and PSANet fork layers (netdef/layers/face.py,
yolo.py, attention.py): shapes against each fork's Reshape/LayerSetUp, the NumPy reference against
values worked out by hand from the fork's C++, and `verify` (onnxruntime against the reference)
on small nets. The sources are named in the layer classes' docstrings."""
import math

import numpy as np
import pytest
from conftest import compile_text, errors_of, shapes_of

import netdef
from netdef.cli import main
from netdef.export.verify import verify
from netdef.parse import parse_text
from netdef.reference import forward
from netdef.source import Source


def _input(name, shape):
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ {dims} }} }} }}\n'


def _net(shape, layers, extra_inputs=()):
    return 'name: "face"\n' + _input("data", shape) + "".join(_input(n, s) for n, s in extra_inputs) + layers


def _verify(tmp_path, text, inputs=None):
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    report = verify(str(p), inputs=inputs)
    assert report.first_bad is None, report.first_bad
    assert report.stopped is None, report.stopped
    return report


def _ref(text, inputs, weights=None, phase="TEST"):
    parsed = parse_text(Source(text, "t.prototxt"), "net")
    return forward(parsed.message, weights or {}, inputs, phase=phase, loc=parsed.loc)


RNG = np.random.default_rng(11)


# --- Flip ----------------------------------------------------------------------------------------

FLIP = _net((2, 3, 4, 5), """
layer { name: "fw" type: "Flip" bottom: "data" top: "fw" }
layer { name: "fh" type: "Flip" bottom: "data" top: "fh" flip_param { flip_width: false flip_height: true } }
layer { name: "both" type: "Flip" bottom: "data" top: "both" flip_param { flip_height: true } }
layer { name: "cat" type: "Concat" bottom: "data" bottom: "fw" top: "cat" concat_param { axis: 0 } }
""")


def test_flip_shapes():
    shapes, _ = shapes_of(FLIP)
    assert shapes["fw"] == shapes["fh"] == shapes["both"] == (2, 3, 4, 5)
    assert shapes["cat"] == (4, 3, 4, 5)
    five = _net((1, 2, 3, 4, 5), 'layer { name: "f" type: "Flip" bottom: "data" top: "f" }\n')
    assert any("at most 4-D" in e for e in errors_of(five))


def test_flip_by_hand():
    # flip_layer.cpp: width index reversed (flip_width, the default), height with flip_height.
    x = np.array([[1, 2, 3], [4, 5, 6]], np.float32).reshape(1, 1, 2, 3)
    out = _ref(_net((1, 1, 2, 3), FLIP.split("\n", 2)[2]), {"data": x})
    assert out["fw"].reshape(2, 3).tolist() == [[3, 2, 1], [6, 5, 4]]
    assert out["fh"].reshape(2, 3).tolist() == [[4, 5, 6], [1, 2, 3]]
    assert out["both"].reshape(2, 3).tolist() == [[6, 5, 4], [3, 2, 1]]
    # A 2-D blob reads height = width = 1: copied unchanged.
    flat = _net((2, 3), 'layer { name: "f" type: "Flip" bottom: "data" top: "f" }\n')
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(_ref(flat, {"data": v})["f"], v)


def test_flip_export_matches_reference(tmp_path):
    _verify(tmp_path, FLIP)


# --- happynear's Normalize -------------------------------------------------------------------------

NORMALIZE = _net((2, 3, 2, 2), """
layer { name: "l2" type: "Normalize" bottom: "data" top: "l2" top: "l2_norm" normalize_param { normalize_type: "L2" } }
layer { name: "l1" type: "Normalize" bottom: "data" top: "l1" normalize_param { normalize_type: "L1" } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 5 } }
layer { name: "ipn" type: "Normalize" bottom: "ip" top: "ipn" normalize_param { bp_norm: true } }
layer { name: "ssd" type: "Normalize" bottom: "data" top: "ssd" norm_param { across_spatial: false } }
""")


def test_face_normalize_shapes_and_no_blobs():
    shapes, g = shapes_of(NORMALIZE)
    assert shapes["l2"] == (2, 3, 2, 2) and shapes["l2_norm"] == (2, 1, 2, 2)
    # Reshape(num, channels, height, width): a 2-D bottom gives a 4-D top.
    assert shapes["ipn"] == (2, 5, 1, 1)
    assert g.node("l2").meta["blobs"] == [] and g.node("ipn").meta["blobs"] == []
    # SSD's Normalize (norm_param) keeps its scale blob.
    assert len(g.node("ssd").meta["blobs"]) == 1 and type(g.node("ssd").impl).__name__ == "Normalize"
    assert any("normalize_type" in e for e in errors_of(NORMALIZE.replace('"L1"', '"L3"')))


def test_face_normalize_by_hand():
    # normalize_layer.cpp: per position, x / sqrt(sum x^2 + 1e-6) (L2), x / (sum |x| + 1e-6) (L1).
    text = _net((1, 2), """
layer { name: "l2" type: "Normalize" bottom: "data" top: "l2" top: "n" normalize_param { } }
layer { name: "l1" type: "Normalize" bottom: "data" top: "l1" normalize_param { normalize_type: "L1" } }
""")
    out = _ref(text, {"data": np.array([[3, -4]], np.float32)})
    r = math.sqrt(25 + 1e-6)
    assert out["l2"].shape == (1, 2, 1, 1)
    assert np.allclose(out["l2"].reshape(2), [3 / r, -4 / r]) and np.isclose(out["n"].item(), r)
    assert np.allclose(out["l1"].reshape(2), [3 / 7.000001, -4 / 7.000001])


def test_face_normalize_export_matches_reference(tmp_path):
    _verify(tmp_path, NORMALIZE)


# --- InnerProduct normalize: true -------------------------------------------------------------------

IPN = _net((2, 2), """
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 2 normalize: true weight_filler { type: "gaussian" std: 3 } } }
""")


def test_normalized_inner_product_by_hand(tmp_path, capsys):
    # inner_product_layer.cpp: row n of the weight is scaled by 1/sqrt(its sum of squares + 1e-6).
    w = np.array([[3, 4], [0, 2]], np.float32)
    b = np.array([0.5, -1], np.float32)
    out = _ref(IPN, {"data": np.array([[1, 1]], np.float32)}, {"ip": [w, b]})["ip"]
    assert np.allclose(out, [[7 / math.sqrt(25 + 1e-6) + 0.5, 2 / math.sqrt(4 + 1e-6) - 1]])
    # Without normalize, BVLC's product: the same weights give x W^T + b.
    plain = _ref(IPN.replace("normalize: true ", ""), {"data": np.array([[1, 1]], np.float32)}, {"ip": [w, b]})["ip"]
    assert np.allclose(plain, [[7.5, 1.0]])
    p = tmp_path / "ipn.prototxt"
    p.write_text(IPN)
    assert main(["check", str(p)]) == 0
    assert "W216" in capsys.readouterr().err


def test_normalized_inner_product_export_matches_reference(tmp_path):
    _verify(tmp_path, IPN)
    # A Scale after it is not folded into its weights (the row normalisation would undo it).
    _verify(tmp_path, IPN + 'layer { name: "s" type: "Scale" bottom: "ip" top: "s" '
                            'scale_param { filler { type: "constant" value: 3 } bias_term: true } }\n')


# --- CosinAddm, FocalLoss ------------------------------------------------------------------------

ARC = _net((3, 4), """
layer { name: "arc" type: "CosinAddm" bottom: "data" bottom: "label" top: "arc" cosin_add_m_param { m: 0.5 } }
layer { name: "s" type: "Scale" bottom: "data" top: "s" scale_param { filler { value: 64 } } }
layer { name: "focal" type: "FocalLoss" bottom: "s" bottom: "label" top: "focal" top: "prob"
        focal_loss_param { gamma: 2 alpha: 0.25 } }
""", extra_inputs=[("label", (3,))])


def test_cosin_add_m_and_focal_loss_shapes():
    shapes, g = shapes_of(ARC)
    assert shapes["arc"] == (3, 4) and shapes["focal"] == () and shapes["prob"] == (3, 4)
    assert g.node("arc").impl.training_only and g.node("focal").impl.loss
    # FocalLossLayer::Reshape CHECKs one label per position outside the softmax axis.
    two = ARC.replace('top: "label" input_param { shape { dim: 3 }', 'top: "label" input_param { shape { dim: 3 dim: 2 }')
    assert any("needs 3 labels" in e for e in errors_of(two))
    assert any("alpha must be a number above 0" in e for e in errors_of(ARC.replace("alpha: 0.25", "alpha: 0")))


def test_cosin_add_m_by_hand():
    # cosin_add_m_layer.cpp: label column -> cos*cos(m) - sin*sin(m), or cos - sin(pi - m)*m
    # when cos <= cos(pi - m); every other value is copied.
    from netdef.reference import _OPS

    class Ctx:
        extra = {"cosin_add_m_param": [{"m": [0.5]}]}

        def fork_given(self, message, name):
            return self.extra.get(message, [{}])[-1].get(name, [None])[-1]

    x = np.array([[0.6, 0.1], [-0.95, 0.2], [1.2, 0.3]])
    out = _OPS["CosinAddm"](Ctx(), None, [x, np.array([0, 0, 0])], [])[0]
    assert np.isclose(out[0, 0], 0.6 * math.cos(0.5) - 0.8 * math.sin(0.5))
    assert np.isclose(out[1, 0], -0.95 - math.sin(math.pi - 0.5) * 0.5)       # cos(pi - 0.5) = -0.878
    assert np.isclose(out[2, 0], math.cos(0.5))                                # above 1: counts as 1
    assert np.array_equal(out[:, 1], x[:, 1])


def test_face_training_layers_leave_the_export(tmp_path, capsys):
    # The deploy graph drops CosinAddm and FocalLoss (W511); the Scale feeding FocalLoss stays.
    _verify(tmp_path, ARC)
    p = tmp_path / "arc.prototxt"
    p.write_text(ARC)
    assert main(["export", str(p), "-o", str(tmp_path / "arc.onnx")]) == 0
    err = capsys.readouterr().err
    assert "'arc' (CosinAddm) is for training only" in err and "'focal' (FocalLoss) is for training only" in err


# --- LargeMarginInnerProduct and wy1iu's BN ---------------------------------------------------------

LSOFT = _net((2, 3, 4, 4), """
layer { name: "bn" type: "BN" bottom: "data" top: "bn"
        bn_param { slope_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0 } } }
layer { name: "ip" type: "InnerProduct" bottom: "bn" top: "feat" inner_product_param { num_output: 6 } }
layer { name: "bn_ip" type: "BN" bottom: "feat" top: "bn_ip" bn_param { slope_filler { value: 1 } } }
layer { name: "lm" type: "LargeMarginInnerProduct" bottom: "bn_ip" bottom: "label" top: "lm" top: "lambda"
        largemargin_inner_product_param { num_output: 10 type: DOUBLE base: 1 gamma: 0 weight_filler { type: "msra" } } }
""", extra_inputs=[("label", (2,))])


def test_large_margin_shapes_and_lsoftmax_bn():
    shapes, g = shapes_of(LSOFT)
    assert shapes["lm"] == (2, 10) and shapes["lambda"] == (1,)
    assert g.node("lm").meta["blobs"] == [(10, 6)]
    # wy1iu's BN: four (1, C) blobs, also on a 2-D bottom; W218 says why this fork was chosen.
    assert g.node("bn").meta["blobs"] == [(1, 3)] * 4 and g.node("bn_ip").meta["blobs"] == [(1, 6)] * 4
    w218 = [d for d in g.diagnostics if d.code == "W218"]
    assert len(w218) == 1 and "LargeMarginInnerProduct" in w218[0].message and "'bn'" in w218[0].message
    # Without a layer only wy1iu's fork has, the same BN is PSPNet's: (1, C, 1, 1), no W218.
    _, g2 = shapes_of(LSOFT.split('layer { name: "ip"')[0])
    assert g2.node("bn").meta["blobs"] == [(1, 3, 1, 1)] * 4
    assert not [d for d in g2.diagnostics if d.code == "W218"]
    # Reshape writes top 1 (lambda) unconditionally: both tops are needed.
    assert errors_of(LSOFT.replace('top: "lm" top: "lambda"', 'top: "lm"'))


def test_lsoftmax_bn_by_hand():
    # bn_layer.cpp (wy1iu), TEST: (x - mean) * inv_std * slope + bias with the stored blobs; TRAIN:
    # the batch's mean and (E[(x - mean)^2] + eps)^-1/2.
    text = LSOFT
    x = np.broadcast_to(np.array([2.0, 4.0, 6.0]).reshape(1, 3, 1, 1), (2, 3, 4, 4)).astype(np.float32)
    blobs = [np.full((1, 3), 3.0), np.full((1, 3), 1.0), np.array([[1.0, 2.0, 3.0]]), np.full((1, 3), 0.5)]
    w = {"bn": blobs, "ip": [np.zeros((6, 48)), np.zeros(6)], "bn_ip": [np.ones((1, 6)), np.zeros((1, 6)),
                                                                          np.zeros((1, 6)), np.ones((1, 6))],
         "lm": [np.zeros((10, 6))]}
    out = _ref(text, {"data": x, "label": np.zeros(2, np.float32)}, w)
    assert np.allclose(out["bn"][0, :, 0, 0], [(2 - 1) * 0.5 * 3 + 1, (4 - 2) * 0.5 * 3 + 1, (6 - 3) * 0.5 * 3 + 1])
    y = np.array([1.0, 3.0]).reshape(2, 1, 1, 1) * np.ones((2, 3, 4, 4))
    tr = _ref(text.split('layer { name: "ip"')[0] + 'layer { name: "lm" type: "LargeMarginInnerProduct" '
              'bottom: "bn" bottom: "label" top: "lm" top: "l" largemargin_inner_product_param { num_output: 1 } }',
              {"data": y.astype(np.float32), "label": np.zeros(2, np.float32)}, {"bn": blobs}, phase="TRAIN")
    # mean 2, variance 1: (y - 2) / sqrt(1 + 1e-5) * 3 + 1
    assert np.allclose(tr["bn"][:, 0, 0, 0], [-3 / math.sqrt(1 + 1e-5) + 1, 3 / math.sqrt(1 + 1e-5) + 1])


def test_large_margin_reference_by_hand():
    # largemargin_inner_product_layer.cpp, DOUBLE (m = 2), first forward: lambda = base * (1 +
    # gamma * 1)^-power = 1; label column: |x||w| (2 sign(cos) cos^2 - 1), then (. + lambda x.w) / 2.
    from netdef.reference import _OPS

    class Ctx:
        extra = {"largemargin_inner_product_param": [{"num_output": [2], "type": ["DOUBLE"], "gamma": [0]}]}

        def fork_given(self, message, name):
            return self.extra[message][-1].get(name, [None])[-1]

        def fail(self, why):
            raise AssertionError(why)

    w = np.array([[1.0, 1.0], [0.0, 1.0]])
    top, lam = _OPS["LargeMarginInnerProduct"](Ctx(), None, [np.array([[1.0, 0.0]]), np.array([0.0])], [w])
    # cos = 1/sqrt(2): psi = 2 * 0.5 - 1 = 0; label column (0 + 1 * 1) / 2, the other (0 + 0) / 2 = x.w.
    assert np.allclose(top, [[0.5, 0.0]], atol=1e-8) and lam.tolist() == [1.0]


def test_lsoftmax_bn_export_matches_reference_and_shows_w218(tmp_path, capsys):
    _verify(tmp_path, LSOFT)
    p = tmp_path / "l.prototxt"
    p.write_text(LSOFT)
    assert main(["export", str(p), "-o", str(tmp_path / "l.onnx")]) == 0
    assert "W218" in capsys.readouterr().err


# --- YOLOv2 training layers ----------------------------------------------------------------------

REGION = """name: "y"
layer { name: "data" type: "BoxData" top: "data" top: "label" data_param { batch_size: 2 side: 13 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 70 kernel_size: 1 } }
layer { name: "region" type: "RegionLoss" bottom: "conv" bottom: "label" top: "loss"
        region_loss_param { side: 13 num_class: 9 coords: 4 num: 5 } }
"""


def test_box_data_and_region_loss_shapes():
    g = netdef.compile(parse_text(Source(REGION, "t.prototxt"), "net"), inputs={"data": (2, 3, 13, 13)})
    assert not g.diagnostics.has_errors, [d.header() for d in g.diagnostics if d.is_error]
    assert g.blob("label").meta["shape"] == (2, 150) and g.blob("loss").meta["shape"] == ()
    bad = netdef.compile(parse_text(Source(REGION, "t.prototxt"), "net"), inputs={"data": (2, 3, 12, 12)})
    assert any("13*13*5*(4+9+1) = 11830" in d.message for d in bad.diagnostics if d.is_error)
    two = REGION.replace('top: "label" data_param', 'top: "label" top: "label2" data_param')
    assert any("2 label top(s) but 1" in d.message for d in compile_text(two).diagnostics if d.is_error)


YOLO2 = _net((2, 125, 13, 13), """
layer { name: "loss" type: "YoloV2Loss" bottom: "data" bottom: "label" top: "loss"
        yolo_v2_loss_param { anchors: 1 anchors: 2 anchors: 3 anchors: 4 anchors: 5 anchors: 6 anchors: 7 anchors: 8
                             anchors: 9 anchors: 10 side: 13 num_classes: 20 num_object: 5 } }
""", extra_inputs=[("label", (2, 1183))])


def test_yolo_v2_loss_shapes():
    shapes, g = shapes_of(YOLO2)
    assert shapes["loss"] == () and g.node("loss").impl.loss
    assert any("13*13*(20+5)*5 = 21125" in e for e in errors_of(YOLO2.replace("dim: 125", "dim: 120")))
    assert any("side * side * 7 = 1183" in e for e in errors_of(YOLO2.replace("dim: 1183", "dim: 150")))
    assert any("2 * num_object" in e for e in errors_of(YOLO2.replace("anchors: 10 ", "")))


# --- PointwiseSpatialAttention ----------------------------------------------------------------------

def _psa(kind, extra="", mask=None, shape=(1, 3, 4, 5)):
    n, c, h, w = shape
    mh, mw = mask or (2 * h - 1, 2 * w - 1)
    return _net(shape, f"""
layer {{ name: "psa" type: "PointwiseSpatialAttention" bottom: "data" bottom: "att" top: "psa"
        pointwise_spatial_attention_param {{ psa_type: {kind} {extra} }} }}
""", extra_inputs=[("att", (n, mh * mw, h, w))])


def test_psa_shapes_and_errors():
    shapes, g = shapes_of(_psa("COLLECT"))
    assert shapes["psa"] == (1, 3, 4, 5)
    assert g.node("psa").meta["cost"]["macs"] == 3 * 20 * 20
    errs = errors_of(_psa("COLLECT", mask=(4, 5)))
    assert any("a 7x9 attention mask needs 63" in e for e in errs)
    assert any("odd number" in e for e in errors_of(_psa("COLLECT", "attention_mask_height: 4 attention_mask_width: 3",
                                                      mask=(4, 3))))
    assert any("together" in e for e in errors_of(_psa("COLLECT", "attention_mask_height: 3", mask=(3, 9))))


def test_psa_reference_by_hand():
    # H = 1, W = 2: a 1x3 mask, half (0, 1). COLLECT: buffer[q, p] = mask[q - p + 1, p];
    # DISTRIBUTE: buffer[p, q] = mask[q - p + 1, p]; top[p] = sum_q x[q] buffer[q, p] / nf.
    a, b = 2.0, 3.0
    m = np.arange(1.0, 7.0).reshape(1, 3, 1, 2)       # m[k, p] at channel k, column p
    x = np.array([a, b]).reshape(1, 1, 1, 2)
    col = _ref(_psa("COLLECT", "normalization_factor: 1", shape=(1, 1, 1, 2)), {"data": x, "att": m})["psa"]
    assert np.allclose(col.reshape(2), [a * m[0, 1, 0, 0] + b * m[0, 2, 0, 0], a * m[0, 0, 0, 1] + b * m[0, 1, 0, 1]])
    dis = _ref(_psa("DISTRIBUTE", "", shape=(1, 1, 1, 2)), {"data": x, "att": m})["psa"]
    # the default normalization_factor is mask_h * mask_w = 3
    assert np.allclose(dis.reshape(2), [(a * m[0, 1, 0, 0] + b * m[0, 0, 0, 1]) / 3,
                                        (a * m[0, 2, 0, 0] + b * m[0, 1, 0, 1]) / 3])


@pytest.mark.parametrize("kind,extra,mask", [
    ("COLLECT", "is_softmax: true normalization_factor: 1.0", None),
    ("DISTRIBUTE", "is_softmax: true", None),
    ("COLLECT", "attention_mask_height: 3 attention_mask_width: 5", (3, 5)),
    ("DISTRIBUTE", "attention_mask_height: 3 attention_mask_width: 3 is_softmax: true", (3, 3)),
])
def test_psa_export_matches_reference(tmp_path, kind, extra, mask):
    _verify(tmp_path, _psa(kind, extra, mask))


def test_export_keeps_the_fork_told_by_a_dropped_layer(tmp_path):
    # The deploy view leaves LargeMarginInnerProduct out; its BN layers stay wy1iu's (Parsed.whole).
    from netdef.export.onnx import export
    p = tmp_path / "l.prototxt"
    p.write_text(LSOFT)
    names = {i.name for i in export(str(p)).model(with_weights=False).graph.initializer}
    assert {"bn.inv_std", "bn_ip.inv_std"} <= names


@pytest.mark.parametrize("text", [
    FLIP,
    _net((2, 3, 2, 2), 'layer { name: "n" type: "Normalize" bottom: "data" top: "n" top: "m" normalize_param { } }\n'),
    _net((2, 6), 'layer { name: "n" type: "Normalize" bottom: "data" top: "n" normalize_param { } }\n'),
    _psa("COLLECT", "is_softmax: true"),
    _psa("DISTRIBUTE", "attention_mask_height: 3 attention_mask_width: 3", (3, 3)),
], ids=["flip", "normalize", "normalize_2d", "psa_collect", "psa_distribute"])
def test_dynamic_batch_export_runs_at_another_batch(tmp_path, text):
    # The lowerings keep the batch axis free: exported with batch "dynamic", the model runs at
    # batch 3 and agrees with the reference at that batch (these nets have no weights).
    import onnxruntime as ort

    from netdef.export.onnx import export
    from netdef.export.verify import rel_error
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    sess = ort.InferenceSession(export(str(p), batch="dynamic").to_bytes(), providers=["CPUExecutionProvider"])
    feeds = {i.name: RNG.standard_normal([3] + list(i.shape[1:])).astype(np.float32) for i in sess.get_inputs()}
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    ref = _ref(text, feeds)
    for name, value in outs.items():
        assert value.shape == ref[name].shape and value.shape[0] in (3, 6), name     # Concat on axis 0: 6
        assert rel_error(value, ref[name]) < 1e-4, name
