"""Detection nets found after zoo-wild (issue 11's hunt): the fork variants netdef had wrong,
pinned on small hand-written nets with numbers worked out by hand from the forks' sources, and
the real files kept under tests/data/zoo-more/detection/ run through check, export and verify.

RefineDet (sfzhang15/RefineDet src/caffe/layers/detection_output_layer.cpp, src/caffe/util/
bbox_util.cpp): DetectionOutput takes the anchor refinement module's scores (bottom 3) and offsets
(bottom 4). The offsets move each prior first (CasRegDecodeBBoxesAll); the ODM's offsets are
decoded against the moved priors with the priors' variances; a prior whose ARM object score is
below objectness_score (caffe.proto field 24, default 0.01) is scored 1 for class 0 and 0 for
the others (OSGetConfidenceScores).
"""
import contextlib
import csv
import io
import math

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ZOO_MORE

import netdef
from netdef.cli import main
from netdef.reference import forward


def _write(tmp_path, text, name="net.prototxt"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _export(tmp_path, path, capsys):
    out = str(tmp_path / "m.onnx")
    rc = main(["export", path, "-o", out])
    assert rc == 0, capsys.readouterr().err
    return out


def _run(model_path, feed):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    inputs = {i.name for i in sess.get_inputs()}
    return dict(zip(names, sess.run(None, {k: v for k, v in feed.items() if k in inputs})))


def _reference(path, feed):
    parsed = netdef.load(path)
    return forward(parsed.message, {}, feed, loc=parsed.loc)


# --- RefineDet's DetectionOutput --------------------------------------------------------------

REFINEDET_NET = """
name: "refinedet"
layer {{ name: "in" type: "Input" top: "odm_loc" top: "odm_conf" top: "prior" top: "arm_conf" top: "arm_loc"
        input_param {{ shape {{ dim: 1 dim: 16 }} shape {{ dim: 1 dim: 12 }} shape {{ dim: 1 dim: 2 dim: 16 }}
                       shape {{ dim: 1 dim: 8 }} shape {{ dim: 1 dim: 16 }} }} }}
layer {{ name: "det" type: "DetectionOutput" bottom: "odm_loc" bottom: "odm_conf" bottom: "prior"
        {bottoms} top: "det"
        detection_output_param {{ num_classes: 3 share_location: true background_label_id: 0
          code_type: CENTER_SIZE nms_param {{ nms_threshold: 0.5 }} confidence_threshold: 0.1 {extra} }} }}
"""
FIVE = 'bottom: "arm_conf" bottom: "arm_loc"'
PRIORS = [[0.0, 0.0, 0.4, 0.4], [0.05, 0.05, 0.45, 0.45], [0.5, 0.5, 0.9, 0.9], [0.6, 0.0, 1.0, 0.3]]
VARIANCES = [0.1, 0.1, 0.2, 0.2]
# per prior: background, class 1, class 2
CONF = [[0.1, 0.6, 0.3], [0.1, 0.7, 0.2], [0.5, 0.2, 0.28], [0.3, 0.05, 0.65]]
# per prior: ARM (background, object) scores; prior 1 is an easy negative at the default 0.01
ARM_CONF = [[0.1, 0.9], [0.995, 0.005], [0.5, 0.5], [0.3, 0.7]]
LN2 = math.log(2.0)
# ARM offsets: prior 2's centre moves right by 0.1 * 1 * 0.4 -> (0.74, 0.7); prior 3's width
# doubles (exp(0.2 * ln2 / 0.2) = 2): centre (0.8, 0.15), width 0.8.
ARM_LOC = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, LN2 / 0.2, 0]]
# ODM offsets, against the moved priors: prior 2's centre moves down by 0.1 * 1 * 0.4 -> box
# (0.54, 0.54, 0.94, 0.94); prior 3's centre moves right by 0.1 * 1 * 0.8 (the MOVED width) ->
# (0.48, 0, 1.28, 0.3).
ODM_LOC = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]]
B0, B2, B3 = PRIORS[0], [0.54, 0.54, 0.94, 0.94], [0.48, 0.0, 1.28, 0.3]
# Without the ARM offsets (four bottoms): prior 2 -> (0.5, 0.54, 0.9, 0.94), prior 3's centre
# moves by 0.1 * 0.4 -> (0.64, 0, 1.04, 0.3).
B2_PLAIN, B3_PLAIN = [0.5, 0.54, 0.9, 0.94], [0.64, 0.0, 1.04, 0.3]


def _refinedet_feed():
    prior = np.array([np.reshape(PRIORS, -1), np.tile(VARIANCES, 4)], np.float32)[None]
    return {"odm_loc": np.array(ODM_LOC, np.float32).reshape(1, 16),
            "odm_conf": np.array(CONF, np.float32).reshape(1, 12), "prior": prior,
            "arm_conf": np.array(ARM_CONF, np.float32).reshape(1, 8),
            "arm_loc": np.array(ARM_LOC, np.float32).reshape(1, 16)}


# By hand (ApplyNMSFast at 0.5, scores above 0.1): prior 1 (an easy negative) scores 0 for both
# classes, so it never appears; the kept boxes are pairwise disjoint, so NMS removes none.
#   class 1: prior 0 (0.6), prior 2 (0.2); prior 3's 0.05 is below the threshold
#   class 2: prior 3 (0.65), prior 0 (0.3), prior 2 (0.28)
REFINEDET_CASES = {
    "five_bottoms": (FIVE, "", [[0, 1, 0.6, *B0], [0, 1, 0.2, *B2], [0, 2, 0.65, *B3], [0, 2, 0.3, *B0],
                                [0, 2, 0.28, *B2]]),
    # objectness_score 0.6: priors 1 and 2 (object scores 0.005, 0.5) are easy negatives.
    "objectness_0.6": (FIVE, "objectness_score: 0.6", [[0, 1, 0.6, *B0], [0, 2, 0.65, *B3], [0, 2, 0.3, *B0]]),
    # Four bottoms with objectness_score written: the ARM scores only, the priors as given.
    "arm_conf_only": ('bottom: "arm_conf"', "objectness_score: 0.01",
                      [[0, 1, 0.6, *B0], [0, 1, 0.2, *B2_PLAIN], [0, 2, 0.65, *B3_PLAIN], [0, 2, 0.3, *B0],
                       [0, 2, 0.28, *B2_PLAIN]]),
}


@pytest.mark.parametrize("case", sorted(REFINEDET_CASES))
def test_refinedet_detection_output_by_hand(tmp_path, capsys, case):
    bottoms, extra, rows = REFINEDET_CASES[case]
    path = _write(tmp_path, REFINEDET_NET.format(bottoms=bottoms, extra=extra))
    assert main(["check", path]) == 0, capsys.readouterr().err
    feed = _refinedet_feed()       # with four bottoms, arm_loc is an unused input
    expected = np.array(rows, np.float32).reshape(1, 1, -1, 7)
    out = _run(_export(tmp_path, path, capsys), feed)["det"]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(_reference(path, feed)["det"], expected, atol=1e-6)


def test_refinedet_verify_cli(tmp_path, capsys):
    path = _write(tmp_path, REFINEDET_NET.format(bottoms=FIVE, extra=""))
    args = []
    for name, arr in _refinedet_feed().items():
        np.save(tmp_path / f"{name}.npy", arr)
        args += ["--input-file", f"{name}={tmp_path / (name + '.npy')}"]
    assert main(["verify", path, *args]) == 0, capsys.readouterr().err
    assert "det " in capsys.readouterr().out


def test_ssd_four_bottoms_stay_ssd(tmp_path, capsys):
    # SSD's 4th bottom is the image `visualize` draws on: without objectness_score the scores are
    # the ODM's own, so prior 1 (class 1, 0.7) is detected and suppresses prior 0 (IoU 0.1225 /
    # 0.1975 = 0.62); in class 2, prior 0 (0.3) suppresses prior 1 (0.2).
    path = _write(tmp_path, REFINEDET_NET.format(bottoms='bottom: "arm_conf"', extra=""))
    feed = _refinedet_feed()
    expected = np.array([[0, 1, 0.7, *PRIORS[1]], [0, 1, 0.2, *B2_PLAIN], [0, 2, 0.65, *B3_PLAIN],
                         [0, 2, 0.3, *B0], [0, 2, 0.28, *B2_PLAIN]], np.float32).reshape(1, 1, -1, 7)
    np.testing.assert_allclose(_run(_export(tmp_path, path, capsys), feed)["det"], expected, atol=1e-6)
    np.testing.assert_allclose(_reference(path, feed)["det"], expected, atol=1e-6)


@pytest.mark.parametrize("which, dim, message", [
    ("arm_conf", "dim: 8 }", "the ARM confidences (1, 6) need 1 x 8 values (2 per prior, 4 priors)"),
    ("arm_loc", "dim: 16 } } }", "the ARM locations (1, 12) need 1 x 16 values (4 per prior, 4 priors)"),
])
def test_refinedet_checks_the_arm_shapes(tmp_path, capsys, which, dim, message):
    net = REFINEDET_NET.format(bottoms=FIVE, extra="")
    net = net.replace(dim, dim.replace("8", "6") if which == "arm_conf" else dim.replace("16", "12"))
    assert main(["check", _write(tmp_path, net)]) == 1
    err = capsys.readouterr().err
    assert message in err and "'det'" in err


def test_refinedet_needs_shared_locations(tmp_path, capsys):
    net = REFINEDET_NET.format(bottoms=FIVE, extra="").replace("share_location: true", "share_location: false")
    assert main(["check", _write(tmp_path, net)]) == 1
    assert "RefineDet's DetectionOutput (5 bottoms) needs share_location: true" in capsys.readouterr().err


def test_detection_output_rows_compare_in_one_order():
    # verify's view of the rows: two boxes of one class whose scores differ in the last bit come
    # out in either order from two computations; within such a run the export's rows are put in
    # the reference's order (nearest row), elsewhere the order is kept.
    from netdef.layers.detection import DetectionOutput
    want = np.array([[0, 1, 0.5, 0.6, 0.1, 0.9, 0.4], [0, 1, 0.5000001, 0.1, 0.1, 0.4, 0.4],
                     [0, 1, 0.3, 0.0, 0.0, 1.0, 1.0], [0, 2, 0.3, 0.5, 0.5, 0.6, 0.6]], np.float32)
    got = want[[1, 0, 2, 3]] + np.float32(1e-7)
    np.testing.assert_allclose(DetectionOutput.comparable(got[None, None], want[None, None]), want[None, None],
                               atol=1e-6)
    # rows whose scores differ, or whose labels differ, keep their order
    swapped = want[[0, 1, 3, 2]]
    np.testing.assert_array_equal(DetectionOutput.comparable(swapped, want), swapped)


# --- the real files ---------------------------------------------------------------------------

DETECTION = ZOO_MORE / "detection"
# verify's options: a smaller input than declared where the net is fully convolutional (the
# reference is the slow part). With random weights, RefineDet's (at 128 x 128) and FaceBoxes'
# scores all come out within 1e-5 of each other: they verify because DetectionOutput is compared
# on the export's own bottoms (`selects`) and rows of (nearly) equal score are matched whatever
# their order (`comparable`); both failed before.
VERIFY_INPUT = {"refinedet_vovnet39_320/deploy.prototxt": ["--input", "data=1,3,128,128"],
                "pelee_voc/deploy_merged.prototxt": [],
                "faceboxes/deploy.prototxt": [],
                "mtcnn_v2/det1.prototxt": [], "mtcnn_v2/det4.prototxt": [],
                "mobilenet_yolov2_lite/mobilenet_yolo_lite_deploy.prototxt": [],
                "mobilenet_yolov3_lite_bn/mobilenet_yolov3_lite_bn_deploy.prototxt": ["--input", "data=1,3,224,224"],
                # Yolov3DetectionOutput's scores tie too (failed before, as RefineDet's)
                "mobilenet_yolov3_cityscapes/mobilenet_yolov3_deploy.prototxt": ["--input", "data=1,3,224,224"]}


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def test_manifest_lists_every_file():
    with open(DETECTION / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert sorted(r["file"] for r in rows) == sorted(VERIFY_INPUT)
    assert set(VERIFY_INPUT) == {str(p.relative_to(DETECTION)) for p in DETECTION.glob("*/*") if p.is_file()}
    assert all(len(r["commit"]) == 40 and r["license"] and r["source_repo"] for r in rows)


@pytest.mark.parametrize("name", sorted(VERIFY_INPUT))
def test_real_detection_net(tmp_path, name):
    path = str(DETECTION / name)
    code, text = _cli("check", path)
    assert code == 0, text
    out = str(tmp_path / "m.onnx")
    code, text = _cli("export", path, "-o", out)
    assert code == 0, text
    code, text = _cli("verify", path, *VERIFY_INPUT[name])
    assert code == 0, text
    assert "max relative error" in text


# --- FaceBoxes' PriorBox ----------------------------------------------------------------------

FACEBOXES_NET = """
name: "faceboxes_priors"
layer {{ name: "in" type: "Input" top: "feat" top: "img"
        input_param {{ shape {{ dim: 1 dim: 1 dim: 1 dim: 1 }} shape {{ dim: 1 dim: 3 dim: 64 dim: 64 }} }} }}
layer {{ name: "pb" type: "PriorBox" bottom: "feat" bottom: "img" top: "pb"
        prior_box_param {{ {sizes} clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 }} }}
"""


def test_faceboxes_prior_box_by_hand(tmp_path, capsys):
    # sfzhang15/FaceBoxes prior_box_layer.cpp: one position of a 64 x 64 image, centre (32, 32)
    # (step 64, offset 0.5). min_size 32: 4 x 4 boxes, centres 8 apart from (16, 16), corners at
    # centre -+ 15.5 (rows of y, then x); 64: 2 x 2 centred at 16 and 32 (shifts -16, 0), -+ 31.5;
    # 128: one box, -+ 63.5.
    path = _write(tmp_path, FACEBOXES_NET.format(sizes="min_size: 32 min_size: 64 min_size: 128"))
    assert main(["check", path]) == 0
    assert "W218" in capsys.readouterr().err     # the fork's meaning is chosen, and said
    out = _run(_export(tmp_path, path, capsys), {"feat": np.zeros((1, 1, 1, 1), np.float32),
                                                  "img": np.zeros((1, 3, 64, 64), np.float32)})["pb"]
    assert out.shape == (1, 2, 21 * 4)
    boxes = out[0, 0].reshape(21, 4) * 64
    by_hand = {0: [0.5, 0.5, 31.5, 31.5], 1: [8.5, 0.5, 39.5, 31.5], 4: [0.5, 8.5, 31.5, 39.5],
               15: [24.5, 24.5, 55.5, 55.5], 16: [-15.5, -15.5, 47.5, 47.5], 19: [0.5, 0.5, 63.5, 63.5],
               20: [-31.5, -31.5, 95.5, 95.5]}
    for i, box in by_hand.items():
        np.testing.assert_allclose(boxes[i], box, atol=1e-5)
    np.testing.assert_allclose(out[0, 1].reshape(21, 4), np.tile([0.1, 0.1, 0.2, 0.2], (21, 1)), atol=1e-7)
    assert main(["verify", path]) == 0, capsys.readouterr().err


def test_three_other_min_sizes_stay_ssd(tmp_path, capsys):
    # Three sizes without 32 and 64: SSD's PriorBox, one prior per size.
    path = _write(tmp_path, FACEBOXES_NET.format(sizes="min_size: 30 min_size: 60 min_size: 90"))
    assert main(["check", path]) == 0
    assert "W218" not in capsys.readouterr().err
    g = netdef.compile(path)
    assert tuple(g.blob("pb").meta["shape"]) == (1, 2, 12)


def test_equal_scores_visit_the_lower_prior_first(tmp_path, capsys):
    # ApplyNMSFast's stable sort visits equal scores by ascending prior. Eight boxes of one score
    # in a chain, each 0.1 right of the last (width 0.4): neighbours overlap by 0.3 / 0.5 = 0.6 >
    # 0.5, every second by 0.2 / 0.6 = 0.33. Visited 0, 1, 2, ...: priors 0, 2, 4, 6 are kept.
    net = """
name: "tie"
layer { name: "in" type: "Input" top: "loc" top: "conf" top: "prior"
        input_param { shape { dim: 1 dim: 32 } shape { dim: 1 dim: 16 } shape { dim: 1 dim: 2 dim: 32 } } }
layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" top: "det"
        detection_output_param { num_classes: 2 share_location: true background_label_id: 0
          code_type: CENTER_SIZE nms_param { nms_threshold: 0.5 } confidence_threshold: 0.1 } }
"""
    path = _write(tmp_path, net)
    priors = np.array([[0.1 * k, 0.0, 0.1 * k + 0.4, 0.4] for k in range(8)], np.float32)
    feed = {"loc": np.zeros((1, 32), np.float32), "conf": np.tile([0.4, 0.6], 8)[None].astype(np.float32),
            "prior": np.array([priors.reshape(-1), np.tile(VARIANCES, 8)], np.float32)[None]}
    expected = np.array([[0, 1, 0.6, *priors[k]] for k in (0, 2, 4, 6)], np.float32).reshape(1, 1, 4, 7)
    np.testing.assert_allclose(_run(_export(tmp_path, path, capsys), feed)["det"], expected, atol=1e-6)
    np.testing.assert_allclose(_reference(path, feed)["det"], expected, atol=1e-6)
