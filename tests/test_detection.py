"""The detection family (netdef/layers/detection.py): PriorBox, DetectionOutput, PSROIPooling,
Region and the YOLO outputs, through the CLI (export, verify) and onnxruntime, against numbers
worked out by hand from the forks' sources and against the NumPy reference; and `export
--outputs` / `--custom-ops` on real detection nets.

Expected values are computed here from the forks' formulas (weiliu89/caffe prior_box_layer.cpp,
bbox_util.cpp; daijifeng001/caffe-rfcn psroi_pooling_layer.cpp; eric612/MobileNet-YOLO
yolo*_detection_output_layer.cpp), not by netdef's code.
"""
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import ZOO, ZOO_WILD

import netdef
from netdef.cli import main
from netdef.reference import forward

SQ2, SQ3 = math.sqrt(2.0), math.sqrt(3.0)


def _write(tmp_path, text, name="net.prototxt"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _export(tmp_path, path, *extra, capsys=None):
    out = str(tmp_path / "m.onnx")
    rc = main(["export", path, "-o", out, *extra])
    assert rc == 0, capsys.readouterr().err if capsys else rc
    return out


def _run(model_path, feed):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feed)))


def _reference(path, feed, weights=None):
    parsed = netdef.load(path)
    return forward(parsed.message, weights or {}, feed, loc=parsed.loc)


# --- PriorBox ---------------------------------------------------------------------------------

PRIOR_NET = """
name: "priors"
layer { name: "in" type: "Input" top: "feat" top: "img"
        input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "pb" type: "PriorBox" bottom: "feat" bottom: "img" top: "pb"
        prior_box_param { min_size: 4.7 max_size: 9 aspect_ratio: 2 aspect_ratio: 2 flip: true
                          variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "pbc" type: "PriorBox" bottom: "feat" bottom: "img" top: "pbc"
        prior_box_param { min_size: 4 aspect_ratio: 3 flip: false clip: true step: 5 offset: 0 img_size: 10 } }
"""


def _expected_priors():
    # pb: the ssd branch truncates min_size 4.7 to 4; max 9 gives sqrt(4 * 9) = 6; ratio 2 given
    # twice counts once, flipped to 0.5: per cell [4x4, 6x6, 4*sqrt2 x 4/sqrt2, 4/sqrt2 x 4*sqrt2].
    # No step: 8 / 2 = 4, offset 0.5: centres 2 and 6; coordinates / 8.
    cell = []
    for w, h in [(4, 4), (6, 6), (4 * SQ2, 4 / SQ2), (4 / SQ2, 4 * SQ2)]:
        cell.append([(2 - w / 2) / 8, (2 - h / 2) / 8, (2 + w / 2) / 8, (2 + h / 2) / 8])
    cell = np.array(cell)
    pb = []
    for dy in (0, 0.5):                     # rows first, then columns (h, w loops)
        for dx in (0, 0.5):
            pb.append(cell + np.array([dx, dy, dx, dy]))
    pb = np.array(pb).reshape(-1)
    pb_var = np.tile([0.1, 0.1, 0.2, 0.2], 16)
    # pbc: img_size 10, step 5, offset 0: centres 0 and 5; ratio 3 unflipped; clipped to [0, 1];
    # one variance (the default 0.1) everywhere.
    pbc = []
    for cy in (0, 5):
        for cx in (0, 5):
            for w, h in [(4, 4), (4 * SQ3, 4 / SQ3)]:
                pbc.append([(cx - w / 2) / 10, (cy - h / 2) / 10, (cx + w / 2) / 10, (cy + h / 2) / 10])
    pbc = np.clip(np.array(pbc).reshape(-1), 0, 1)
    return np.stack([pb, pb_var])[None], np.stack([pbc, np.full(pbc.size, 0.1)])[None]


def test_prior_box_values_by_hand(tmp_path, capsys):
    path = _write(tmp_path, PRIOR_NET)
    pb, pbc = _expected_priors()
    # cell (0, 0) of pbc, by hand: [-0.2, -0.2, 0.2, 0.2] and [-0.3464, -0.1155, 0.3464, 0.1155], clipped
    assert pbc[0, 0, :8].tolist() == pytest.approx([0, 0, 0.2, 0.2, 0, 0, 0.34641016, 0.11547005])
    model = _export(tmp_path, path, capsys=capsys)
    feed = {"feat": np.zeros((1, 1, 2, 2), np.float32), "img": np.zeros((1, 3, 8, 8), np.float32)}
    out = _run(model, feed)
    assert out["pb"].shape == (1, 2, 64) and out["pbc"].shape == (1, 2, 32)
    np.testing.assert_allclose(out["pb"], pb, atol=1e-6)
    np.testing.assert_allclose(out["pbc"], pbc, atol=1e-6)
    # The priors are a constant of the model: no node reads the inputs.
    m = onnx.load(model)
    assert {n.op_type for n in m.graph.node} == {"Identity"}
    ref = _reference(path, feed)
    np.testing.assert_allclose(ref["pb"], pb, atol=1e-6)
    np.testing.assert_allclose(ref["pbc"], pbc, atol=1e-6)


def test_prior_box_parameter_errors(tmp_path, capsys):
    bad = PRIOR_NET.replace("max_size: 9", "max_size: 3")
    rc = main(["check", _write(tmp_path, bad)])
    err = capsys.readouterr().err
    assert rc == 1 and "max_size 3 must be greater than min_size 4.7" in err and "Traceback" not in err
    bad = PRIOR_NET.replace("variance: 0.2 variance: 0.2", "variance: 0.2")
    rc = main(["check", _write(tmp_path, bad)])
    assert rc == 1 and "3 variance values; give 1 or 4" in capsys.readouterr().err


def test_prior_box_shapes_match_the_ssd_fork(tmp_path):
    # ssd512 of zoo-wild: the SSD-fork Caffe loaded it; every PriorBox top must have its shape.
    import json
    rel = "ssd512_vgg16_voc/VGG_VOC0712_SSD_512x512_iter_120000.prototxt"
    oracle = json.loads((ZOO_WILD / "shapes.json").read_text())[rel]["blobs"]
    g = netdef.compile(str(ZOO_WILD / rel))
    priors = [n for n in g.nodes if n.type in ("PriorBox", "DetectionOutput", "Permute", "Normalize")]
    assert len(priors) > 20
    for n in priors:
        assert list(n.outputs[0].meta["shape"]) == oracle[n.outputs[0].name], n.name


# --- DetectionOutput --------------------------------------------------------------------------

DET_NET = """
name: "det"
layer {{ name: "in" type: "Input" top: "loc" top: "conf" top: "prior"
        input_param {{ shape {{ dim: {n} dim: 16 }} shape {{ dim: {n} dim: 12 }} shape {{ dim: 1 dim: 2 dim: 16 }} }} }}
layer {{ name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" top: "det"
        detection_output_param {{ num_classes: 3 share_location: true background_label_id: 0
          code_type: CENTER_SIZE nms_param {{ nms_threshold: 0.5 {top_k} }} {extra} }} }}
"""
PRIORS = np.array([[0.0, 0.0, 0.4, 0.4], [0.05, 0.05, 0.45, 0.45], [0.5, 0.5, 0.9, 0.9], [0.6, 0.0, 1.0, 0.3]])
# classes (background, 1, 2) per prior
CONF = np.array([[0.1, 0.6, 0.3], [0.1, 0.7, 0.2], [0.5, 0.2, 0.28], [0.3, 0.05, 0.65]])
# prior 0 moves: CENTER_SIZE with variances (0.1, 0.1, 0.2, 0.2): centre (0.2 + 0.1 * 1 * 0.4,
# 0.2 - 0.1 * 1 * 0.4) = (0.24, 0.16), width 0.4 * exp(0.2 * 0.5), height 0.4.
LOC0 = [1.0, -1.0, 0.5, 0.0]
W0 = 0.4 * math.exp(0.1)
BOX0 = [0.24 - W0 / 2, 0.16 - 0.2, 0.24 + W0 / 2, 0.36]


def _det_feed(n=1, conf=CONF):
    loc = np.zeros((n, 4, 4), np.float32)
    loc[:, 0] = LOC0
    prior = np.stack([PRIORS.reshape(-1), np.tile([0.1, 0.1, 0.2, 0.2], 4)])[None].astype(np.float32)
    return {"loc": loc.reshape(n, 16), "conf": np.broadcast_to(conf, (n, 4, 3)).reshape(n, 12).astype(np.float32),
            "prior": prior}


def _row(img, label, score, box):
    return [img, label, score, *box]


# By hand (ApplyNMSFast: stable descending order, kept unless IoU > 0.5 with a kept box; the
# moved prior 0 overlaps prior 1 by 0.124 / 0.2128 = 0.58):
#   class 1: prior 1 (0.7) kept, prior 0 (0.6) suppressed, prior 2 (0.2) kept (0.05 <= 0.1 out)
#   class 2: prior 3 (0.65), prior 0 (0.3), prior 2 (0.28) kept, prior 1 (0.2) suppressed by 0
ALL_ROWS = [_row(0, 1, 0.7, PRIORS[1]), _row(0, 1, 0.2, PRIORS[2]), _row(0, 2, 0.65, PRIORS[3]),
            _row(0, 2, 0.3, BOX0), _row(0, 2, 0.28, PRIORS[2])]
CASES = {
    "nms": ("", "confidence_threshold: 0.1", ALL_ROWS),
    # keep_top_k 3: the three best scores of the image, rows regrouped by label.
    "keep_top_k": ("", "confidence_threshold: 0.1 keep_top_k: 3", [ALL_ROWS[0], ALL_ROWS[2], ALL_ROWS[3]]),
    # top_k 2 picks each class's two best candidates before NMS: class 1 keeps prior 1 only
    # (prior 2 is never a candidate), class 2 keeps priors 3 and 0.
    "top_k": ("top_k: 2", "confidence_threshold: 0.1", [ALL_ROWS[0], ALL_ROWS[2], ALL_ROWS[3]]),
    # Nothing above the threshold: one row per image, (image, -1, ..., -1).
    "none": ("", "confidence_threshold: 0.9", [[0, -1, -1, -1, -1, -1, -1]]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_detection_output_by_hand(tmp_path, capsys, case):
    top_k, extra, rows = CASES[case]
    path = _write(tmp_path, DET_NET.format(n=1, top_k=top_k, extra=extra))
    model = _export(tmp_path, path, capsys=capsys)
    feed = _det_feed()
    out = _run(model, feed)["det"]
    expected = np.array(rows, np.float32).reshape(1, 1, -1, 7)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(_reference(path, feed)["det"], expected, atol=1e-6)
    # The row axis is symbolic in the model.
    dims = onnx.load(model).graph.output[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_value == 7


def test_detection_output_two_images_verify_cli(tmp_path, capsys):
    # Image 1 sees the classes swapped: its rows follow image 0's; `netdef verify` compares the
    # export with the reference on these inputs.
    path = _write(tmp_path, DET_NET.format(n=2, top_k="", extra="confidence_threshold: 0.1 keep_top_k: 4"))
    feed = _det_feed(2)
    conf = feed["conf"].reshape(2, 4, 3)
    conf[1] = conf[1][:, [0, 2, 1]]
    args = []
    for name, arr in feed.items():
        np.save(tmp_path / f"{name}.npy", arr)
        args += ["--input-file", f"{name}={tmp_path / (name + '.npy')}"]
    assert main(["verify", path, *args]) == 0
    out = capsys.readouterr().out
    assert "det " in out and "DetectionOutput" in out
    model = _export(tmp_path, path, capsys=capsys)
    got = _run(model, feed)["det"].reshape(-1, 7)
    assert got[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # image 0, best four: 0.7 (1), 0.65 (2), 0.3 (2), 0.28 (2); image 1 mirrors the labels
    assert got[:4, 1].tolist() == [1, 2, 2, 2] and got[4:, 1].tolist() == [1, 1, 1, 2]


def test_detection_output_checks_the_prediction_counts(tmp_path, capsys):
    bad = DET_NET.format(n=1, top_k="", extra="").replace("dim: 12", "dim: 10")
    assert main(["check", _write(tmp_path, bad)]) == 1
    err = capsys.readouterr().err
    assert "the confidences (1, 10) need 12 channels for 4 priors and 3 classes" in err


def test_detection_output_adaptive_nms_is_refused_with_a_location(tmp_path, capsys):
    net = DET_NET.format(n=1, top_k="eta: 0.5", extra="")
    path = _write(tmp_path, net)
    assert main(["export", path, "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "net.prototxt:5:1: error[E510]: layer 'det' (DetectionOutput)" in err and "eta" in err
    assert "--outputs" in err and "--custom-ops" in err and not (tmp_path / "m.onnx").exists()
    # On request it becomes a custom-domain node carrying its parameters.
    assert main(["export", path, "-o", str(tmp_path / "m.onnx"), "--custom-ops"]) == 0
    m = onnx.load(str(tmp_path / "m.onnx"))
    node = [n for n in m.graph.node if n.domain == "netdef.caffe"][0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert node.op_type == "DetectionOutput"
    assert attrs["detection_output_param.num_classes"] == 3
    assert attrs["detection_output_param.code_type"] == b"CENTER_SIZE"
    assert attrs["detection_output_param.nms_param.eta"] == pytest.approx(0.5)
    assert "W530" in capsys.readouterr().err


# --- PSROIPooling -----------------------------------------------------------------------------

PSROI_NET = """
name: "psroi"
layer { name: "in" type: "Input" top: "data" top: "rois"
        input_param { shape { dim: 2 dim: 8 dim: 6 dim: 7 } shape { dim: 5 dim: 5 dim: 1 dim: 1 } } }
layer { name: "ps" type: "PSROIPooling" bottom: "data" bottom: "rois" top: "ps"
        psroi_pooling_param { spatial_scale: 0.5 output_dim: 2 group_size: 2 } }
"""


def test_psroi_pooling_by_hand_and_against_the_reference(tmp_path, capsys):
    x = np.random.default_rng(3).standard_normal((2, 8, 6, 7)).astype(np.float32)
    rois = np.array([[0, 0, 0, 11, 9], [1, 4.5, 0, 11, 9], [0, 5, 5, 5, 5], [1, -3, -2, 20, 30],
                     [0, 2.5, 3.5, 7, 8]], np.float32).reshape(5, 5, 1, 1)
    path = _write(tmp_path, PSROI_NET)
    model = _export(tmp_path, path, capsys=capsys)
    out = _run(model, {"data": x, "rois": rois})["ps"]
    assert out.shape == (5, 2, 2, 2)
    # roi 0: start (0, 0), end ((11 + 1) / 2, (9 + 1) / 2) = (6, 5): bins 3 wide, 2.5 high.
    # bin (0, 0) of output channel 1 reads channel (1 * 2 + 0) * 2 + 0 = 4 over rows 0..2 (ceil
    # 2.5 = 3), columns 0..2; bin (1, 1) channel 7, rows floor(2.5) = 2 to 4, columns 3 to 5.
    assert out[0, 1, 0, 0] == pytest.approx(x[0, 4, 0:3, 0:3].mean(), abs=1e-6)
    assert out[0, 1, 1, 1] == pytest.approx(x[0, 7, 2:5, 3:6].mean(), abs=1e-6)
    # roi 1: C's round(4.5) = 5 (not 4): start_w 2.5, width 6 - 2.5 = 3.5, bins 1.75 wide; bin
    # (0, 0) of channel 0 covers columns floor(2.5) = 2 to ceil(4.25) = 5, rows 0 to 3.
    assert out[1, 0, 0, 0] == pytest.approx(x[1, 0, 0:3, 2:5].mean(), abs=1e-6)
    # roi 3 runs past every edge: clipped; roi 2 is a single pixel (2.5..3 after scaling).
    assert out[2, 0, 0, 0] == pytest.approx(x[0, 0, 2:3, 2:3].mean(), abs=1e-6)
    np.testing.assert_allclose(out, _reference(path, {"data": x, "rois": rois})["ps"], atol=1e-5)


def test_rfcn_checks_exports_and_verifies(tmp_path, capsys):
    # The R-FCN test net of zoo-wild (rois as a net input): shapes as the SSD-fork oracle's.
    import json
    rel = "rfcn_resnet50/test.prototxt"
    oracle = json.loads((ZOO_WILD / "shapes.json").read_text())[rel]["blobs"]
    g = netdef.compile(str(ZOO_WILD / rel))
    for n in g.nodes:
        if n.type == "PSROIPooling":
            assert list(n.outputs[0].meta["shape"]) == oracle[n.outputs[0].name]
    assert main(["check", str(ZOO_WILD / rel)]) == 0
    capsys.readouterr()


# --- YOLO ports -------------------------------------------------------------------------------

YOLO3_NET = """
name: "yolo3"
layer {{ name: "in" type: "Input" top: "a" input_param {{ shape {{ dim: 1 dim: 7 dim: 1 dim: 1 }} }} }}
layer {{ name: "det" type: "Yolov3DetectionOutput" bottom: "a" top: "det"
        yolov3_detection_output_param {{ num_classes: 2 num_box: 1 confidence_threshold: 0.01 nms_threshold: 0.45
          biases: 2 biases: 3 mask: 0 anchors_scale: 4 mask_group_num: 1 }} }}
"""
YOLO2_NET = """
name: "yolo2"
layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 1 dim: 7 dim: 1 dim: 1 } } }
layer { name: "det" type: "YoloDetectionOutput" bottom: "a" top: "det"
        yolo_detection_output_param { num_classes: 2 num_box: 1 confidence_threshold: 0.01 nms_threshold: 0.45
          biases: 0.5 biases: 0.25 } }
"""


def test_yolo_outputs_by_hand(tmp_path, capsys):
    # One cell, one anchor. v3: x = (0 + sigmoid 0) / 1 = 0.5, y = 0.5, w = exp(ln 2) * 2 / (1 * 4)
    # = 1, h = exp(0) * 3 / 4 = 0.75; objectness sigmoid 0 = 0.5; classes sigmoid(0) * 0.5 = 0.25
    # and sigmoid(ln 3) * 0.5 = 0.375: the same box twice, IoU 1 >= 0.45, so the class-agnostic
    # NMS keeps only the best; label = class + 1.
    a = np.array([0, 0, math.log(2), 0, 0, 0, math.log(3)], np.float32).reshape(1, 7, 1, 1)
    path = _write(tmp_path, YOLO3_NET.format())
    out = _run(_export(tmp_path, path, capsys=capsys), {"a": a})["det"]
    expected = [[0, 2, 0.375, 0.5 - 0.5, 0.5 - 0.375, 0.5 + 0.5, 0.5 + 0.375]]
    np.testing.assert_allclose(out.reshape(-1, 7), expected, atol=1e-6)
    np.testing.assert_allclose(_reference(path, {"a": a})["det"].reshape(-1, 7), expected, atol=1e-6)
    # v2: w = exp(ln 2) * 0.5 / 1 = 1, h = 0.25; softmax of (0, ln 3) = (0.25, 0.75): the best
    # class 1 with 0.5 * 0.75.
    path = _write(tmp_path, YOLO2_NET, "v2.prototxt")
    out = _run(_export(tmp_path, path, capsys=capsys), {"a": a})["det"]
    expected = [[0, 2, 0.375, 0.0, 0.5 - 0.125, 1.0, 0.5 + 0.125]]
    np.testing.assert_allclose(out.reshape(-1, 7), expected, atol=1e-6)
    np.testing.assert_allclose(_reference(path, {"a": a})["det"].reshape(-1, 7), expected, atol=1e-6)


YOLO_RANDOM = """
name: "yolo_random"
layer { name: "in" type: "Input" top: "a" top: "b"
        input_param { shape { dim: 1 dim: 27 dim: 4 dim: 4 } shape { dim: 1 dim: 27 dim: 8 dim: 8 } } }
layer { name: "v3" type: "Yolov3DetectionOutput" bottom: "a" bottom: "b" top: "v3"
        yolov3_detection_output_param { num_classes: 4 num_box: 3 confidence_threshold: 0.05 nms_threshold: 0.3
          biases: 10 biases: 14 biases: 23 biases: 27 biases: 37 biases: 58 biases: 81 biases: 82
          biases: 135 biases: 169 biases: 344 biases: 319
          mask: 3 mask: 4 mask: 5 mask: 0 mask: 1 mask: 2 anchors_scale: 32 anchors_scale: 16 mask_group_num: 2 } }
layer { name: "v2" type: "YoloDetectionOutput" bottom: "a" bottom: "b" top: "v2"
        yolo_detection_output_param { num_classes: 4 num_box: 3 confidence_threshold: 0.05 nms_threshold: 0.3
          biases: 1.08 biases: 1.19 biases: 3.42 biases: 4.41 biases: 6.63 biases: 11.38 } }
layer { name: "region" type: "Region" bottom: "b" top: "region" region_param { classes: 4 coords: 4 num: 3 } }
"""


def test_yolo_outputs_and_region_verify(tmp_path, capsys):
    # Random heads through `netdef verify`: the export (NMS in onnxruntime) against the
    # reference's loops over cells, anchors and classes.
    path = _write(tmp_path, YOLO_RANDOM)
    assert main(["verify", path, "--seed", "5"]) == 0
    out = capsys.readouterr().out
    for layer in ("v3", "v2", "region"):
        assert f"\n{layer} " in "\n" + out
    assert "compared 3 blobs" in out


# --- SSD nets whole and cut, Faster R-CNN backbones, custom ops --------------------------------

def test_ssd300_exports_whole_and_verifies():
    # DetectionOutput lowered: every blob of the SSD, detection_out included, agrees with the
    # reference.
    assert main(["verify", str(ZOO / "ssd300_vgg16_voc" / "deploy.prototxt")]) == 0


def test_mobilenet_ssd_outputs_before_detection_output(tmp_path, capsys):
    path = str(ZOO / "mobilenet_ssd" / "MobileNetSSD_deploy_nobn.prototxt")
    model = _export(tmp_path, path, "--outputs", "mbox_loc,mbox_conf_flatten", "--outputs", "mbox_priorbox",
                    "--seed", "3", capsys=capsys)
    m = onnx.load(model)
    assert [o.name for o in m.graph.output] == ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"]
    assert not any(n.op_type in ("NonMaxSuppression", "TopK") for n in m.graph.node)
    x = np.random.default_rng(0).standard_normal((1, 3, 300, 300)).astype(np.float32)
    got = _run(model, {"data": x})
    from netdef.export.onnx import compile_for_export, graph_weights
    graph, _ = compile_for_export(path)
    ref = _reference(path, {"data": x}, graph_weights(graph, seed=3))
    for name in ("mbox_loc", "mbox_conf_flatten", "mbox_priorbox"):
        b = ref[name]
        assert got[name].shape == b.shape
        assert np.abs(got[name] - b).max() / max(1.0, np.abs(b).max()) < 1e-4, name
    # Only the priors: a constant, no convolution is kept.
    model = _export(tmp_path, path, "--outputs", "mbox_priorbox", capsys=capsys)
    assert {n.op_type for n in onnx.load(model).graph.node} <= {"Identity", "Concat"}


def test_outputs_unknown_blob_is_a_usage_error(tmp_path, capsys):
    path = str(ZOO / "mobilenet_ssd" / "MobileNetSSD_deploy_nobn.prototxt")
    out = tmp_path / "m.onnx"
    assert main(["export", path, "-o", str(out), "--outputs", "mbox_lco"]) == 2
    err = capsys.readouterr().err
    assert "no blob 'mbox_lco'" in err and "'mbox_loc'" in err and not out.exists()
    assert main(["export", path, "-o", str(out), "--outputs", "data"]) == 2
    assert "input of the net" in capsys.readouterr().err


def test_faster_rcnn_backbone_and_custom_proposal(tmp_path, capsys):
    path = str(ZOO_WILD / "face_faster_rcnn_vgg16" / "test.prototxt")
    out = tmp_path / "m.onnx"
    # Whole: the Python proposal layer is one located E510 naming both ways out.
    assert main(["export", path, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("error[E510]") == 1 and "layer 'proposal' (Python)" in err
    assert "--outputs" in err and "--custom-ops" in err and "later layer(s)" in err and not out.exists()
    # The backbone and RPN heads before it, run at a small size against the reference.
    small = ["--input", "data=1,3,64,80"]
    model = _export(tmp_path, path, "--outputs", "rpn_cls_prob_reshape,rpn_bbox_pred", *small, capsys=capsys)
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 80)).astype(np.float32)
    sess_inputs = {i.name for i in onnx.load(model).graph.input}
    assert sess_inputs == {"data"}
    got = _run(model, {"data": x})
    assert set(got) == {"rpn_cls_prob_reshape", "rpn_bbox_pred"}
    from netdef.export.onnx import compile_for_export, graph_weights
    graph, _ = compile_for_export(path, inputs={"data": (1, 3, 64, 80)})
    parsed = netdef.load(path)
    from netdef.reference import trace
    ref = {}
    from netdef.reference import ReferenceError
    try:
        for step in trace(parsed.message, graph_weights(graph), {"data": x, "im_info": np.zeros((1, 3), np.float32)},
                          loc=parsed.loc):
            ref.update(zip(step.tops, step.values))
    except ReferenceError as e:
        assert e.layer == "proposal"      # the reference stops at the Python layer, after the heads
    for name in got:
        assert np.abs(got[name] - ref[name]).max() / max(1.0, np.abs(ref[name]).max()) < 1e-4
    # --custom-ops: the proposal layer as a netdef.caffe node with its python_param, once its
    # top's shape is given.
    model = _export(tmp_path, path, "--outputs", "rois", "--custom-ops", "--input", "rois=300,5", capsys=capsys)
    m = onnx.load(model)
    onnx.checker.check_model(m)
    node = [n for n in m.graph.node if n.domain == "netdef.caffe"]
    assert [n.op_type for n in node] == ["Python"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node[0].attribute}
    assert attrs["python_param.module"] == b"rpn.proposal_layer" and attrs["python_param.layer"] == b"ProposalLayer"
    assert any(o.domain == "netdef.caffe" for o in m.opset_import)
    assert "warning[W530]" in capsys.readouterr().err


# (zoo-wild file, export options) -> the detection nets of zoo-wild that check and export.
WILD = {
    "ssd512_vgg16_voc/VGG_VOC0712_SSD_512x512_iter_120000.prototxt": {},
    "rfcn_resnet50/test.prototxt": {},
    "ultraface_rfb320/RFB-320.prototxt": {},
    "face_faster_rcnn_vgg16/test.prototxt": {"outputs": ["rpn_cls_prob_reshape", "rpn_bbox_pred"]},
    "faster_rcnn_vgg16_proposal_layer/vgg16_faster_rcnn_c.pt": {"custom_ops": True, "inputs": {"rois": (300, 5)}},
}


@pytest.mark.parametrize("rel", sorted(WILD))
def test_zoo_wild_detection_nets_check_and_export(rel):
    from netdef.export.onnx import export
    path = str(ZOO_WILD / rel)
    opts = WILD[rel]
    graph = netdef.compile(path, inputs=opts.get("inputs"))
    assert not graph.diagnostics.has_errors
    ex = export(path, **opts)
    model = ex.model(with_weights=False)
    onnx.checker.check_model(model)
    if opts.get("custom_ops"):
        assert [n.op_type for n in model.graph.node if n.domain == "netdef.caffe"] == ["Proposal"]


@pytest.mark.parametrize("opts", [["--opset", "13"], ["--opset", "21"], ["--fp16"]], ids=["13", "21", "fp16"])
def test_detection_output_across_opsets_and_fp16(tmp_path, capsys, opts):
    top_k, extra, rows = CASES["keep_top_k"]
    path = _write(tmp_path, DET_NET.format(n=1, top_k=top_k, extra=extra))
    out = _run(_export(tmp_path, path, *opts, capsys=capsys), _det_feed())["det"]
    np.testing.assert_allclose(out, np.array(rows, np.float32).reshape(1, 1, -1, 7), atol=1e-3 if "--fp16" in opts else 1e-6)


def test_detection_output_dynamic_batch_is_refused(tmp_path, capsys):
    path = _write(tmp_path, DET_NET.format(n=1, top_k="", extra=""))
    assert main(["export", path, "-o", str(tmp_path / "m.onnx"), "--batch", "dynamic"]) == 1
    err = capsys.readouterr().err
    assert "error[E510]: layer 'det' (DetectionOutput)" in err and "--batch N" in err


FOLD_NET = """
name: "fold"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "c" type: "Convolution" bottom: "data" top: "c"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "bn" type: "BatchNorm" bottom: "c" top: "b" }
layer { name: "sc" type: "Scale" bottom: "b" top: "b" scale_param { bias_term: true } }
layer { name: "r" type: "ReLU" bottom: "b" top: "r" }
"""


def test_outputs_keep_a_requested_blob_that_folding_would_remove(tmp_path, capsys):
    # BatchNorm/Scale fold into the convolution, which removes 'c'; asked for, it stays, and
    # the layers after the last requested blob are left out.
    path = _write(tmp_path, FOLD_NET)
    model = _export(tmp_path, path, "--outputs", "c,b", capsys=capsys)
    m = onnx.load(model)
    assert [o.name for o in m.graph.output] == ["c", "b"]
    assert "Relu" not in {n.op_type for n in m.graph.node}
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = _run(model, {"data": x})
    from netdef.export.onnx import compile_for_export, graph_weights
    graph, _ = compile_for_export(path)
    ref = _reference(path, {"data": x}, graph_weights(graph))
    for name in ("c", "b"):
        np.testing.assert_allclose(got[name], ref[name], atol=1e-5)
