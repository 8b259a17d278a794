"""What real-world files showed (issue 11's hunt): a TSN .caffemodel's (1, C) BN blobs, DeepLab's
shell-template placeholders, deploy files that keep a loss on an undefined label, and data
layers with a label top under --input."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from netdef import codes
from netdef.cli import main
from netdef.weights import write_caffemodel

C = 3
# A yjxiong/PSPNet-style BN (bn_param with slope_filler / frozen) after a 1x1 convolution.
BN_NET = """name: "tsn_bn"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "bn" type: "BN" bottom: "conv" top: "bn"
        bn_param { frozen: true slope_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0 } } }
"""


def _write(tmp_path, text, name="net.prototxt"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _bn_model(tmp_path, bn_shape, name="w.caffemodel"):
    rng = np.random.default_rng(7)
    w = rng.normal(size=(C, 2, 1, 1)).astype(np.float32)
    b = rng.normal(size=C).astype(np.float32)
    slope, bias, mean = (rng.normal(size=C).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2.0, size=C).astype(np.float32)
    path = tmp_path / name
    write_caffemodel(path, "tsn_bn", [("conv", "Convolution", [w, b]),
                                      ("bn", "BN", [a.reshape(bn_shape) for a in (slope, bias, mean, var)])])
    return str(path), (w, b, slope, bias, mean, var)


def _expected_bn(x, params):
    # yjxiong/caffe bn_layer.cpp Forward_cpu at TEST / frozen: slope * (x - mean) / sqrt(var + eps) + bias.
    w, b, slope, bias, mean, var = (p.astype(np.float64) for p in params)
    conv = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x.astype(np.float64)) + b[None, :, None, None]
    c = lambda a: a[None, :, None, None]  # noqa: E731
    return c(slope) * (conv - c(mean)) / np.sqrt(c(var) + 1e-5) + c(bias)


@pytest.mark.parametrize("bn_shape", [(1, C), (1, C, 1, 1)], ids=["tsn_1xC", "psp_1xCx1x1"])
def test_bn_blobs_of_either_fork_bind_and_export(tmp_path, bn_shape, capsys):
    net = _write(tmp_path, BN_NET)
    weights, params = _bn_model(tmp_path, bn_shape)
    out = str(tmp_path / "m.onnx")
    assert main(["export", net, "--weights", weights, "-o", out]) == 0
    x = np.random.default_rng(3).normal(size=(1, 2, 4, 4)).astype(np.float32)
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"data": x})
    np.testing.assert_allclose(y, _expected_bn(x, params), rtol=1e-4, atol=1e-5)
    capsys.readouterr()
    assert main(["verify", net, "--weights", weights]) == 0


def test_bn_other_shapes_of_same_count_are_refused(tmp_path, capsys):
    net = _write(tmp_path, BN_NET)
    for shape in [(C,), (C, 1), (1, 1, 1, C)]:
        weights, _ = _bn_model(tmp_path, shape)
        out = tmp_path / "m.onnx"
        assert main(["export", net, "--weights", weights, "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert codes.WEIGHTS_BLOB_SHAPE.id in err and "(1, 3)" in err and not out.exists()


def test_segnet_bn_keeps_its_one_shape(tmp_path, capsys):
    # SegNet's BN (alexgkendall/caffe-segnet) keeps (1, C, 1, 1) blobs only: no alternative.
    net = _write(tmp_path, BN_NET.replace(
        'bn_param { frozen: true slope_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0 } }',
        "bn_param { bn_mode: INFERENCE }"))
    path = tmp_path / "s.caffemodel"
    write_caffemodel(path, "n", [("bn", "BN", [np.ones((1, C), np.float32), np.zeros((1, C), np.float32)])])
    assert main(["export", net, "--weights", str(path), "--allow-missing-weights", "-o", str(tmp_path / "m.onnx")]) == 1
    assert codes.WEIGHTS_BLOB_SHAPE.id in capsys.readouterr().err


# --- DeepLab's shell-template placeholders -----------------------------------------------------

TEMPLATE_NET = """name: "${NET_ID}"
layer { name: "data" type: "ImageSegData" top: "data" top: "label"
        image_data_param { root_folder: "${DATA_ROOT}" source: "${LIST_DIR}/train.txt" batch_size: 1 } }
layer { name: "fc8" type: "Convolution" bottom: "data" top: "fc8"
        convolution_param { num_output: @@ kernel_size: 1 } }
"""
PLACEHOLDER_NOTE = "this looks like a template placeholder ({}); substitute it"


@pytest.mark.parametrize("placeholder", ["${NUM_LABELS}", "$NUM_LABELS"])
def test_template_placeholder_is_e107_with_a_note(tmp_path, capsys, placeholder):
    net = _write(tmp_path, TEMPLATE_NET.replace("@@", placeholder))
    assert main(["check", net]) == 1
    err = capsys.readouterr().err
    assert "error[E107]: unexpected character '$'" in err
    assert PLACEHOLDER_NOTE.format(placeholder) in err and "envsubst" in err
    # The diagnostic covers the placeholder, and JSON carries the note.
    assert main(["check", net, "--format", "json"]) == 1
    import json
    d = json.loads(capsys.readouterr().out)["diagnostics"][0]
    assert d["code"] == "E107" and d["end_col"] - d["col"] == len(placeholder)
    assert PLACEHOLDER_NOTE.format(placeholder) in d["notes"][0]["message"]


def test_placeholders_inside_strings_are_data(tmp_path, capsys):
    # Only the number: the strings keep their ${...} text (Caffe would read it literally).
    net = _write(tmp_path, TEMPLATE_NET.replace("@@", "21"))
    main(["check", net])
    err = capsys.readouterr().err
    assert "E107" not in err and "template placeholder" not in err


def test_a_lone_dollar_gets_no_placeholder_note(tmp_path, capsys):
    net = _write(tmp_path, TEMPLATE_NET.replace("@@", "$ 21"))
    assert main(["check", net]) == 1
    err = capsys.readouterr().err
    assert "error[E107]: unexpected character '$'" in err and "template placeholder" not in err


# --- a deploy file that kept its loss on a 'label' nothing produces ---------------------------
# (farmingyard/caffe-mobilenet_v2's deploy: Caffe refuses it, Unknown bottom blob 'label'.)

LOSS_ON_NO_LABEL = """name: "deploy_with_loss"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "fc1000" type: "InnerProduct" bottom: "conv1" top: "fc1000"
        inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc1000" bottom: "label" top: "loss" }
"""


def test_undefined_label_is_e301_for_check_and_a_whole_export(tmp_path, capsys):
    net = _write(tmp_path, LOSS_ON_NO_LABEL)
    assert main(["check", net]) == 1
    assert "error[E301]: bottom 'label' of layer 'loss'" in capsys.readouterr().err
    out = tmp_path / "m.onnx"
    assert main(["export", net, "-o", str(out)]) == 1
    assert "error[E301]" in capsys.readouterr().err and not out.exists()


def test_outputs_export_the_sub_graph_past_a_layer_outside_it(tmp_path, capsys):
    net = _write(tmp_path, LOSS_ON_NO_LABEL)
    out = tmp_path / "m.onnx"
    assert main(["export", net, "--outputs", "fc1000", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "error[" not in err
    assert "warning[W529]: layer 'loss' (SoftmaxWithLoss) is outside the sub-graph that computes fc1000" in err
    assert "E301: bottom 'label' of layer 'loss' is not produced" in err
    model = onnx.load(str(out))
    assert [o.name for o in model.graph.output] == ["fc1000"]
    assert [i.name for i in model.graph.input] == ["data"]
    (y,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"data": np.zeros((1, 3, 6, 6), np.float32)})
    assert y.shape == (1, 5)


@pytest.mark.parametrize("extra", [[], ["--batch", "2"]], ids=["probe", "batch"])
def test_outputs_verify_the_sub_graph_past_a_layer_outside_it(tmp_path, capsys, extra):
    net = _write(tmp_path, LOSS_ON_NO_LABEL)
    assert main(["verify", net, "--outputs", "fc1000", *extra]) == 0
    cap = capsys.readouterr()
    assert "compared 2 blobs" in cap.out and "W529" in cap.err and "error[" not in cap.err
    assert main(["verify", net]) == 1
    assert "error[E301]" in capsys.readouterr().err


def test_an_error_inside_the_sub_graph_still_stops_the_export(tmp_path, capsys):
    # The undefined bottom is read on the way to the requested blob: still E301, no file.
    net = _write(tmp_path, LOSS_ON_NO_LABEL.replace('bottom: "conv1" top: "fc1000"',
                                                    'bottom: "conv1" bottom: "label" top: "fc1000"'))
    out = tmp_path / "m.onnx"
    assert main(["export", net, "--outputs", "fc1000", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E301]: bottom 'label' of layer 'fc1000'" in err and not out.exists()


def test_outputs_naming_no_blob_is_still_a_usage_error(tmp_path, capsys):
    net = _write(tmp_path, LOSS_ON_NO_LABEL)
    assert main(["export", net, "--outputs", "fc100", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "--outputs: the net has no blob 'fc100'" in capsys.readouterr().err


# --- --input on a data layer with a label top ---------------------------------------------------

DATA_NET = """name: "with_label"
layer { name: "data" type: "@TYPE@" top: "data" top: "label" @PARAM@ }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc"
        inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" include { phase: TEST } }
"""


def _data_net(tmp_path, typ, param):
    return _write(tmp_path, DATA_NET.replace("@TYPE@", typ).replace("@PARAM@", param))


def _shapes(path, inputs):
    from netdef.pipeline import compile as compile_net, load
    g = compile_net(load(path), inputs=inputs)
    return {v.name: v.meta.get("shape") for v in g.inputs}, g


@pytest.mark.parametrize("typ,param", [("Data", 'data_param { source: "db" batch_size: 2 }'),
                                       ("ImageData", 'image_data_param { source: "list.txt" batch_size: 2 }')])
def test_the_label_follows_the_batch_given_to_data(tmp_path, capsys, typ, param):
    # Caffe's Data and ImageData layers give label (batch_size,): with --input data=1,... the
    # label is (1,), as Caffe would make it with batch_size 1, not (2,) against a (1, 5) prediction.
    net = _data_net(tmp_path, typ, param)
    shapes, g = _shapes(net, {"data": (1, 3, 8, 8)})
    assert shapes == {"data": (1, 3, 8, 8), "label": (1,)} and not g.diagnostics.has_errors
    assert main(["check", net, "--input", "data=1,3,8,8"]) == 0
    assert main(["export", net, "--input", "data=1,3,8,8", "-o", str(tmp_path / "m.onnx")]) == 0
    err = capsys.readouterr().err
    assert "error[" not in err and "W308" not in err and "--input label" not in err
    # A label given explicitly is taken as given (and here disagrees with the batch: E401).
    shapes, g = _shapes(net, {"data": (1, 3, 8, 8), "label": (3,)})
    assert shapes["label"] == (3,) and {d.code for d in g.diagnostics if d.is_error} == {"E401"}


def test_dummy_data_tops_keep_their_own_shapes(tmp_path):
    # DummyData has no batch_size: each top's shape is its own (dummy_data_param.shape).
    net = _data_net(tmp_path, "DummyData", "dummy_data_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 } }")
    shapes, g = _shapes(net, {"data": (1, 3, 8, 8)})
    assert shapes["label"] == (2,) and codes.SHAPE_MISMATCH.id in {d.code for d in g.diagnostics}


VIDEO = 'video_data_param { source: "list.txt" batch_size: 2 }'   # a fork's layer: shapes from the data


def test_an_unknown_label_read_only_by_losses_is_not_asked_for(tmp_path, capsys):
    net = _data_net(tmp_path, "VideoData", VIDEO)
    main(["check", net, "--input", "data=1,3,8,8"])
    assert "W308" in capsys.readouterr().err        # check looks at the whole net, losses too
    for argv in (["export", net, "--input", "data=1,3,8,8", "-o", str(tmp_path / "m.onnx")],
                 ["verify", net, "--input", "data=1,3,8,8"]):
        assert main(argv) == 0
        cap = capsys.readouterr()
        assert "W308" not in cap.err and "--input label" not in cap.err


def test_a_label_the_export_reads_is_named_in_e516(tmp_path, capsys):
    net = _write(tmp_path, DATA_NET.replace("@TYPE@", "VideoData").replace("@PARAM@", VIDEO).replace(
        'name: "loss" type: "SoftmaxWithLoss"', 'name: "mix" type: "Eltwise"'))
    out = tmp_path / "m.onnx"
    assert main(["export", net, "--input", "data=1,3,8,8", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E516]: the shape of 'label' is unknown" in err
    assert "the exported graph reads it: add --input label=N,C,H,W" in err and not out.exists()
    assert main(["export", net, "-o", str(out)]) == 1
    assert "add --input data=N,C,H,W --input label=N,C,H,W" in capsys.readouterr().err
