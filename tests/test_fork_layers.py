"""Fork layers that are not detection layers (issue 11): each one's shape rule, its NumPy
reference against the exported model run by onnxruntime (`netdef verify`), and the values of
the reference itself against numbers worked out by hand from the fork's C++ (the comments say
which file)."""
import numpy as np
import pytest
from conftest import errors_of, shapes_of

import netdef
from netdef.cli import main
from netdef.export.verify import verify
from netdef.parse import parse_text
from netdef.reference import forward
from netdef.source import Source


def _net(shape, layers, name="fork"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'name: "{name}"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
            + layers)


def _write(tmp_path, text):
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    return str(p)


def _verify(tmp_path, text, x=None, **kw):
    report = verify(_write(tmp_path, text), inputs={"data": x} if x is not None else None, **kw)
    assert report.first_bad is None, report.first_bad
    assert report.stopped is None, report.stopped
    return report


def _ref(text, x, weights=None):
    parsed = parse_text(Source(text, "t.prototxt"), "net")
    return forward(parsed.message, weights or {}, {"data": x}, loc=parsed.loc)


RNG = np.random.default_rng(7)


# --- depthwise convolutions ---------------------------------------------------------------------

DW = _net((2, 4, 9, 8), """
layer { name: "dw" type: "DepthwiseConvolution" bottom: "data" top: "dw"
        convolution_param { num_output: 4 group: 4 kernel_size: 3 pad: 1 stride: 2 bias_term: false } }
layer { name: "cd" type: "ConvolutionDepthwise" bottom: "data" top: "cd"
        convolution_param { num_output: 99 kernel_h: 3 kernel_w: 2 stride: 1 pad: 1 dilation: 2 } }
""")


def test_depthwise_shapes_and_blobs():
    shapes, g = shapes_of(DW)
    assert shapes["dw"] == (2, 4, 5, 4)
    # ConvolutionDepthwise ignores num_output: the bottom's 4 channels; 9 + 2 - 5 + 1 = 7 rows,
    # 8 + 2 - 3 + 1 = 8 columns.
    assert shapes["cd"] == (2, 4, 7, 8)
    assert g.node("dw").meta["blobs"] == [(4, 1, 3, 3)]
    assert g.node("cd").meta["blobs"] == [(4, 1, 3, 2), (4,)]
    assert g.node("cd").meta["cost"]["macs"] == 2 * 4 * 7 * 8 * 6


def test_depthwise_rejects_a_non_depthwise_group():
    bad = _net((1, 4, 8, 8), 'layer { name: "dw" type: "DepthwiseConvolution" bottom: "data" top: "dw" '
                             'convolution_param { num_output: 8 group: 4 kernel_size: 3 } }\n')
    assert any("one output per input channel" in m for m in errors_of(bad))


def test_depthwise_export_matches_reference(tmp_path):
    report = _verify(tmp_path, DW)
    assert [c.layer for c in report.comparisons] == ["dw", "cd"]


def test_convolution_depthwise_reference_by_hand():
    # One channel, a 1x2 kernel [1, 10], no padding: out[i, j] = x[i, j] + 10 x[i, j + 1] + bias.
    text = _net((1, 1, 2, 3), 'layer { name: "cd" type: "ConvolutionDepthwise" bottom: "data" top: "cd" '
                              'convolution_param { kernel_h: 1 kernel_w: 2 } }\n')
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    out = _ref(text, x, {"cd": [np.array([[[[1, 10]]]], np.float32), np.array([0.5], np.float32)]})["cd"]
    assert out.tolist() == [[[[10.5, 21.5], [43.5, 54.5]]]]


# --- Upsample and Interp -----------------------------------------------------------------------

SEGNET = _net((2, 3, 6, 7), """
layer { name: "pool" type: "Pooling" bottom: "data" top: "pooled" top: "mask"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up" type: "Upsample" bottom: "pooled" bottom: "mask" top: "up"
        upsample_param { scale: 2 pad_out_w: true } }
layer { name: "near" type: "Upsample" bottom: "data" top: "near" upsample_param { scale: 3 } }
layer { name: "sized" type: "Upsample" bottom: "pooled" bottom: "mask" top: "sized"
        upsample_param { upsample_h: 6 upsample_w: 7 } }
""")


def test_upsample_shapes():
    shapes, _ = shapes_of(SEGNET)
    # Pooling rounds up: 6 / 2 = 3 rows, ceil(5 / 2) + 1 = 4 columns; 4 * 2 - 1 (pad_out_w).
    assert shapes["pooled"] == shapes["mask"] == (2, 3, 3, 4)
    assert shapes["up"] == (2, 3, 6, 7) and shapes["sized"] == (2, 3, 6, 7)
    assert shapes["near"] == (2, 3, 18, 21)


def test_upsample_and_pooling_mask_export_match_reference(tmp_path):
    report = _verify(tmp_path, SEGNET)
    assert [c.layer for c in report.comparisons] == ["pool", "pool", "up", "near", "sized"]


def test_unpooling_puts_each_max_back_in_place():
    # The max of each 2x2 window goes back where it was; everything else is zero (SegNet's
    # UpsampleLayer::Forward_cpu after PoolingLayer's mask).
    text = _net((1, 1, 2, 3), SEGNET.split("\n", 2)[2].split('layer { name: "near"')[0])
    # Windows: columns 0-1, then column 2 alone (rounded up); indices count in the 2 x 3 input.
    x = np.array([[[[1, 5, 2], [3, 4, 7]]]], np.float32)
    blobs = _ref(text, x)
    assert blobs["mask"].tolist() == [[[[1, 5]]]]
    assert blobs["up"].tolist() == [[[[0, 5, 0], [0, 0, 7]]]]    # 2 rows, 2 * 2 - 1 columns


def test_nearest_upsample_by_hand():
    text = _net((1, 1, 1, 2), 'layer { name: "up" type: "Upsample" bottom: "data" top: "up" upsample_param { scale: 2 } }\n')
    assert _ref(text, np.array([[[[1, 2]]]], np.float32))["up"].tolist() == [[[[1, 1, 2, 2], [1, 1, 2, 2]]]]


# --- Reorg, ShuffleChannel, Axpy -------------------------------------------------------------------

REORG = _net((2, 8, 4, 6), """
layer { name: "reorg" type: "Reorg" bottom: "data" top: "reorg" reorg_param { stride: 2 } }
layer { name: "back" type: "Reorg" bottom: "data" top: "back" reorg_param { stride: 2 reverse: true } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "shuffle" shuffle_channel_param { group: 4 } }
""")


def test_reorg_shapes():
    shapes, _ = shapes_of(REORG)
    assert shapes["reorg"] == (2, 32, 2, 3)
    assert shapes["back"] == (2, 2, 8, 12)
    assert shapes["shuffle"] == (2, 8, 4, 6)


def test_reorg_and_shuffle_export_match_reference(tmp_path):
    report = _verify(tmp_path, REORG)
    assert [c.layer for c in report.comparisons] == ["reorg", "back", "shuffle"]


def test_reorg_index_map_by_hand():
    # darknet's reorg_cpu as gklz1982/caffe-yolov2 calls it (forward = 0), stride 2, on a
    # (4, 2, 2) bottom: out_c = 1; the bottom is read as (1, 4, 4), where row r, column q holds
    # r * 4 + q; top element [k, j, i] (k < 4, j < 2, i < 2) reads row 2j + k // 2, column
    # 2i + k % 2; that memory is the (16, 1, 1) top.
    text = _net((1, 4, 2, 2), 'layer { name: "r" type: "Reorg" bottom: "data" top: "r" reorg_param { stride: 2 } }\n')
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 2, 2)
    out = _ref(text, x)["r"]
    assert out.shape == (1, 16, 1, 1)
    want = [(2 * j + k // 2) * 4 + 2 * i + k % 2 for k in range(4) for j in range(2) for i in range(2)]
    assert out.ravel().tolist() == want


def test_reorg_errors():
    no_stride = _net((1, 4, 2, 2), 'layer { name: "r" type: "Reorg" bottom: "data" top: "r" }\n')
    assert any("no stride" in m for m in errors_of(no_stride))
    odd = _net((1, 4, 3, 2), 'layer { name: "r" type: "Reorg" bottom: "data" top: "r" reorg_param { stride: 2 } }\n')
    assert any("does not divide by stride 2" in m for m in errors_of(odd))


AXPY = _net((2, 5, 4, 3), """
layer { name: "gap" type: "Pooling" bottom: "data" top: "gap" pooling_param { pool: AVE global_pooling: true } }
layer { name: "sig" type: "Sigmoid" bottom: "gap" top: "sig" }
layer { name: "res" type: "ReLU" bottom: "data" top: "res" }
layer { name: "axpy" type: "Axpy" bottom: "sig" bottom: "data" bottom: "res" top: "axpy" }
""")


def test_axpy(tmp_path):
    shapes, g = shapes_of(AXPY)
    assert shapes["axpy"] == (2, 5, 4, 3)
    _verify(tmp_path, AXPY)
    x = RNG.standard_normal((2, 5, 4, 3)).astype(np.float32)
    b = _ref(AXPY, x)
    assert np.allclose(b["axpy"], b["sig"] * x + np.maximum(x, 0), atol=1e-6)
    wrong = AXPY.replace('bottom: "res" top: "axpy"', 'bottom: "gap" top: "axpy"')
    assert any("must have one shape" in m for m in errors_of(wrong))


# --- Mish, ReLU6 --------------------------------------------------------------------------------

ACT = _net((2, 3, 4, 5), """
layer { name: "mish" type: "Mish" bottom: "data" top: "mish" }
layer { name: "r6" type: "ReLU6" bottom: "data" top: "r6" }
""")


def test_mish_and_relu6(tmp_path):
    x = (RNG.standard_normal((2, 3, 4, 5)) * 10).astype(np.float32)
    x[0, 0, 0, :3] = [-30.0, 25.0, 0.0]
    _verify(tmp_path, ACT, x)
    b = _ref(ACT, x)
    # Mish(0) = 0; Mish(25) = 25 (softplus = 25, tanh(25) = 1 in float); Mish(-30) ~ -30 e^-30.
    assert b["mish"][0, 0, 0, :3].tolist() == pytest.approx([-30 * np.exp(-30.0), 25.0, 0.0], rel=1e-5, abs=1e-30)
    assert float(b["mish"][0, 0, 0, 3]) == pytest.approx(float(x[0, 0, 0, 3]) * np.tanh(np.log1p(np.exp(x[0, 0, 0, 3]))), rel=1e-5)


# --- the fork BN layer --------------------------------------------------------------------------

BN = _net((2, 3, 4, 5), """
layer { name: "learn" type: "BN" bottom: "data" top: "learn" bn_param { scale_filler { type: "constant" value: 2 } } }
layer { name: "infer" type: "BN" bottom: "data" top: "infer" bn_param { bn_mode: INFERENCE
        scale_filler { type: "constant" value: 3 } shift_filler { type: "constant" value: 1 } } }
layer { name: "psp" type: "BN" bottom: "data" top: "psp" bn_param { slope_filler { type: "constant" value: 1 }
        bias_filler { type: "constant" value: 0 } frozen: true } }
""")


def test_bn_modes(tmp_path):
    shapes, g = shapes_of(BN)
    assert g.node("learn").meta["blobs"] == [(1, 3, 1, 1)] * 2
    assert g.node("psp").meta["blobs"] == [(1, 3, 1, 1)] * 4
    _verify(tmp_path, BN)
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    c = np.ones((1, 3, 1, 1), np.float32)
    w = {"learn": [2 * c, 0 * c], "infer": [3 * c, c], "psp": [c, 0 * c, 0.5 * c, 4 * c]}
    b = _ref(BN, x, w)
    # LEARN normalises with the batch's own statistics even at test time (SegNet).
    m = x.astype(np.float64).mean(axis=(0, 2, 3), keepdims=True)
    v = x.astype(np.float64).var(axis=(0, 2, 3), keepdims=True)
    assert np.allclose(b["learn"], 2 * (x - m) / np.sqrt(v + 1e-9), atol=1e-5)
    assert np.allclose(b["infer"], 3 * x + 1, atol=1e-6)
    assert np.allclose(b["psp"], (x - 0.5) / np.sqrt(4 + 1e-5), atol=1e-6)


# --- through the command line --------------------------------------------------------------------

@pytest.mark.parametrize("text", [DW, SEGNET, REORG, AXPY, ACT, BN], ids=["dw", "segnet", "reorg", "axpy", "act", "bn"])
def test_cli_check_export_verify(tmp_path, capsys, text):
    path = _write(tmp_path, text)
    assert main(["check", path]) == 0
    assert main(["export", path, "-o", str(tmp_path / "m.onnx")]) == 0
    assert main(["verify", path]) == 0
    capsys.readouterr()


# --- C3D: Convolution3D / Pooling3D, and the V1 enum types of forks ---------------------------------

C3D = _net((1, 3, 5, 7, 6), """
layer { name: "conv" type: "Convolution3D" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 kernel_depth: 3 temporal_pad: 1 temporal_stride: 2 } }
layer { name: "pool" type: "Pooling3D" bottom: "conv" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 kernel_depth: 2 temporal_stride: 2 } }
layer { name: "ave" type: "Pooling3D" bottom: "conv" top: "ave"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 kernel_depth: 1 temporal_stride: 1 } }
""")


def test_c3d_shapes_and_blobs():
    shapes, g = shapes_of(C3D)
    # length (5 + 2 - 3) / 2 + 1 = 3; height 7, width 6 (pad 1, kernel 3).
    assert shapes["conv"] == (1, 4, 3, 7, 6)
    assert g.node("conv").meta["blobs"] == [(4, 3, 3, 3, 3), (1, 1, 1, 1, 4)]
    # ceil((3 - 2) / 2) + 1 = 2; ceil((7 - 2) / 2) + 1 = 4; ceil((6 - 2) / 2) + 1 = 3 (no clip).
    assert shapes["pool"] == (1, 4, 2, 4, 3)
    assert shapes["ave"] == (1, 4, 3, 4, 4)


def test_c3d_export_matches_reference(tmp_path):
    report = _verify(tmp_path, C3D)
    assert [c.layer for c in report.comparisons] == ["conv", "pool", "ave"]


def test_c3d_average_divisor_by_hand():
    # AVE over a length-1, 3-wide row with pad 1, kernel 3, stride 2: windows [-1, 2) and [1, 4)
    # clipped to the padded frame [-1, 4): both divide by 3 (padding counts).
    text = _net((1, 1, 1, 1, 3), 'layer { name: "p" type: "Pooling3D" bottom: "data" top: "p" '
                                 'pooling_param { pool: AVE kernel_size: 1 stride: 1 } }\n')
    assert _ref(text, np.ones((1, 1, 1, 1, 3), np.float32))["p"].shape == (1, 1, 1, 1, 3)
    text = _net((1, 1, 1, 3, 3), 'layer { name: "p" type: "Pooling3D" bottom: "data" top: "p" '
                                 'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }\n')
    out = _ref(text, np.ones((1, 1, 1, 3, 3), np.float32))["p"]
    # Window rows [-1, 2) and [1, 4)->[1, 4) clipped at 3 + 1: 2 of 3 rows real, then 2 of 3.
    assert out.ravel().tolist() == pytest.approx([4 / 9] * 4)


V1_FORKS = """name: "v1forks"
input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 8 dim: 8 }
layers { name: "conv" type: CONVOLUTION3D bottom: "data" top: "conv"
  convolution_param { num_output: 2 kernel_size: 3 pad: 1 kernel_depth: 3 temporal_pad: 1 } }
layers { name: "pool" type: POOLING3D bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 kernel_depth: 2 temporal_stride: 2 } }
"""

V1_DEEPLAB = """name: "deeplab"
layers { name: "data" type: IMAGE_SEG_DATA top: "data" top: "label" }
layers { name: "interp" type: INTERP bottom: "data" top: "up" interp_param { zoom_factor: 2 } }
layers { name: "pad" type: PADDING bottom: "up" top: "padded" }
layers { name: "acc" type: SEG_ACCURACY bottom: "up" bottom: "label" top: "acc" }
layers { name: "out" type: MAT_WRITE bottom: "up" }
layers { name: "v" type: VIDEO_DATA top: "clip" }
"""


def test_v1_fork_types_upgrade_with_a_warning(tmp_path, capsys):
    path = _write(tmp_path, V1_FORKS)
    assert main(["check", path]) == 0
    err = capsys.readouterr().err
    assert "W215" in err and "'CONVOLUTION3D' is not a BVLC Caffe V1 layer type" in err and "facebook/C3D" in err
    assert main(["upgrade", path]) == 0
    out = capsys.readouterr().out
    assert 'type: "Convolution3D"' in out and 'type: "Pooling3D"' in out and "kernel_depth: 3" in out
    shapes, _ = shapes_of(out)
    assert shapes["pool"] == (1, 2, 2, 4, 4)
    assert main(["verify", path]) == 0


def test_v1_deeplab_types(tmp_path, capsys):
    path = _write(tmp_path, V1_DEEPLAB)
    code = main(["check", path, "--input", "data=1,3,5,5", "--input", "label=1,1,9,9", "--input", "clip=1,3,2,4,4"])
    err = capsys.readouterr().err
    assert code == 0, err
    for name, v2 in [("IMAGE_SEG_DATA", "ImageSegData"), ("INTERP", "Interp"), ("PADDING", "Padding"),
                     ("SEG_ACCURACY", "SegAccuracy"), ("MAT_WRITE", "MatWrite"), ("VIDEO_DATA", "VideoData")]:
        assert f"'{name}' is not a BVLC Caffe V1 layer type" in err and f'upgraded to type "{v2}"' in err
    assert "E204" not in err
    g = netdef.compile(path, inputs={"data": (1, 3, 5, 5), "label": (1, 1, 9, 9), "clip": (1, 3, 2, 4, 4)})
    assert g.blob("up").meta["shape"] == (1, 3, 9, 9)


# --- HED: AutoCrop and ImageLabelmapData -------------------------------------------------------------

HED = _net((1, 3, 20, 22), """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 pad: 35 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "score" type: "Convolution" bottom: "pool1" top: "score" convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "up" type: "Deconvolution" bottom: "score" top: "up" convolution_param { num_output: 1 kernel_size: 4 stride: 2 bias_term: false } }
layer { name: "crop" type: "AutoCrop" bottom: "up" bottom: "data" top: "crop" }
""")


def test_auto_crop_offset_from_the_coordinate_maps(tmp_path):
    shapes, g = shapes_of(HED)
    # conv1 (pad 35): 20 + 70 - 2 = 88 x 90; pool: 44 x 45; up: (44 - 1) * 2 + 4 = 90 x 92.
    assert shapes["up"] == (1, 1, 90, 92) and shapes["crop"] == (1, 1, 20, 22)
    # Position 0 of `up` sits at input coordinate -35 (conv1's padding); the HED coordinate map
    # gives 35 (+ (3 - 1)/2 for conv1's kernel, + 1/2 for the pool, - 3/2 for the deconvolution):
    # -35 + 1 + 0.5 - 1.5 = -35, so the crop starts at row and column 35.
    assert g.node("crop").impl.offsets(g.node("crop")) == (35, 35)
    x = RNG.standard_normal((1, 3, 20, 22)).astype(np.float32)
    report = _verify(tmp_path, HED, x)
    assert [c.layer for c in report.comparisons][-1] == "crop"
    b = _ref(HED, x, {name: [np.asarray(a) for a in arrs] for name, arrs in _weights_of(tmp_path).items()})
    assert np.array_equal(b["crop"], b["up"][:, :, 35:55, 35:57])


def _weights_of(tmp_path):
    from netdef.export.onnx import compile_for_export, graph_weights
    graph, _ = compile_for_export(str(tmp_path / "net.prototxt"))
    blobs = graph_weights(graph)
    return {k: [f() if callable(f) else f for f in v] for k, v in blobs.items()}


def test_auto_crop_misaligned_is_refused(tmp_path, capsys):
    # A 3-wide deconvolution kernel puts `up`'s position 0 at -34.5: no integer crop aligns it.
    bad = HED.replace("kernel_size: 4 stride: 2", "kernel_size: 3 stride: 2")
    shapes, g = shapes_of(bad)
    why = g.node("crop").impl.offsets(g.node("crop"))
    assert isinstance(why, str)
    path = _write(tmp_path, bad)
    assert main(["export", path, "-o", str(tmp_path / "m.onnx")]) == 1
    assert "crop offset" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


LABELMAP = """name: "hed_train"
layer { name: "data" type: "ImageLabelmapData" top: "data" top: "label"
        image_data_param { source: "train_pair.lst" batch_size: 2 new_height: 32 new_width: 40 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "loss" type: "SigmoidCrossEntropyLoss" bottom: "conv" bottom: "label" top: "loss" }
"""


def test_image_labelmap_data_shapes():
    shapes, _ = shapes_of(LABELMAP)
    assert shapes["data"] == (2, 3, 32, 40) and shapes["label"] == (2, 1, 32, 40)
    no_size = LABELMAP.replace(" new_height: 32 new_width: 40", "")
    g = netdef.compile(parse_text(Source(no_size, "t.prototxt"), "net"))
    assert g.blob("data").meta.get("shape") is None and not g.diagnostics.has_errors


# --- training-only losses of forks: MarginInnerProduct, CenterLoss ----------------------------------

FACE = _net((4, 8, 3, 3), """
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 4 } } }
layer { name: "fc5" type: "InnerProduct" bottom: "data" top: "fc5" inner_product_param { num_output: 16 } }
layer { name: "fc6" type: "MarginInnerProduct" bottom: "fc5" bottom: "label" top: "fc6" top: "lambda"
        margin_inner_product_param { num_output: 10 type: QUADRUPLE weight_filler { type: "xavier" }
        base: 1000 gamma: 0.12 power: 1 lambda_min: 5 iteration: 0 } }
layer { name: "softmax_loss" type: "SoftmaxWithLoss" bottom: "fc6" bottom: "label" top: "softmax_loss" }
layer { name: "center_loss" type: "CenterLoss" bottom: "fc5" bottom: "label" top: "center_loss"
        loss_weight: 0.008 center_loss_param { num_output: 10 center_filler { type: "xavier" } } }
""")


def test_training_only_face_losses(tmp_path, capsys):
    shapes, g = shapes_of(FACE)
    assert shapes["fc6"] == (4, 10) and shapes["lambda"] == (1,) and shapes["center_loss"] == ()
    assert g.node("fc6").meta["blobs"] == [(10, 16)]
    assert g.node("center_loss").meta["blobs"] == [(10, 16)]
    assert g.node("fc6").meta["cost"]["macs"] == 4 * 10 * 16
    path = _write(tmp_path, FACE)
    assert main(["export", path, "-o", str(tmp_path / "m.onnx")]) == 0
    import onnx
    m = onnx.load(str(tmp_path / "m.onnx"))
    assert [o.name for o in m.graph.output] == ["fc5"]        # the features are the deployed output
    assert main(["verify", path]) == 0
    capsys.readouterr()
    assert any("no num_output" in e for e in errors_of(FACE.replace("num_output: 10 center_filler", "center_filler")))


def test_in_place_layer_on_the_net_input_exports(tmp_path):
    # ShuffleNet v2's first layer is a BatchNorm in place on `data`: the exported model must not
    # define `data` twice (onnxruntime refused it).
    text = _net((1, 4, 6, 6), """
layer { name: "data/bn" type: "BatchNorm" bottom: "data" top: "data" }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "out" shuffle_channel_param { group: 2 } }
""")
    _verify(tmp_path, text)


@pytest.mark.parametrize("text", [DW, SEGNET, REORG, AXPY, ACT, BN, C3D],
                         ids=["dw", "segnet", "reorg", "axpy", "act", "bn", "c3d"])
def test_dynamic_batch_export_runs_at_another_batch(tmp_path, text):
    # The lowerings keep the batch axis free: the model exported with --batch dynamic runs at
    # batch 3 and agrees with the reference at that batch.
    import onnxruntime as ort
    from netdef.export.onnx import export
    from netdef.export.verify import rel_error
    path = _write(tmp_path, text)
    ex = export(path, batch="dynamic")
    sess = ort.InferenceSession(ex.to_bytes(), providers=["CPUExecutionProvider"])
    shape = [3] + list(sess.get_inputs()[0].shape[1:])
    x = RNG.standard_normal(shape).astype(np.float32)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    ref = _ref(text, x, _weights_of(tmp_path))     # the same seeded fillers as the export's
    for name, value in outs.items():
        assert value.shape[0] == 3, name
        assert rel_error(value, ref[name]) < 1e-4, name


def test_training_only_face_losses_read_their_fork_fillers():
    # `netdef init` fills their blobs from the fork's own filler fields (weight_filler of
    # margin_inner_product_param, center_filler of center_loss_param); unwritten, constant.
    from netdef.layers.base import get
    _, g = shapes_of(FACE)
    assert [f.type for f in get("MarginInnerProduct").filler_params(g.node("fc6"))] == ["xavier"]
    assert [f.type for f in get("CenterLoss").filler_params(g.node("center_loss"))] == ["xavier"]
    _, g = shapes_of(FACE.replace('center_filler { type: "xavier" }', ""))
    assert [f.type for f in get("CenterLoss").filler_params(g.node("center_loss"))] == ["constant"]


# --- Synopsys' caffe fork (converter output): BatchNorm add_eps_before_sqrt, UpsampleDarknet ----

SYN_BN = _net((2, 3, 4, 5), """
layer { name: "after" type: "BatchNorm" bottom: "data" top: "after"
        batch_norm_param { use_global_stats: true add_eps_before_sqrt: false eps: 0.5 } }
layer { name: "before" type: "BatchNorm" bottom: "data" top: "before"
        batch_norm_param { use_global_stats: true add_eps_before_sqrt: true eps: 0.5 } }
layer { name: "batch" type: "BatchNorm" bottom: "data" top: "batch"
        batch_norm_param { use_global_stats: false add_eps_before_sqrt: false eps: 0.5 } }
layer { name: "up" type: "UpsampleDarknet" bottom: "data" top: "up" upsample_darknet_param { stride: 3 } }
""")


def test_synopsys_batchnorm_eps_after_sqrt_by_hand(tmp_path):
    # synopsys-caffe batch_norm_layer.cpp: add_eps_before_sqrt false divides by sqrt(var) + eps.
    # mean 2 and variance 9 (stored as sums 4 and 18 with factor 2): sqrt(9) + 0.5 = 3.5, while
    # sqrt(9 + 0.5) is 3.0822 (the BVLC rule, and the fork's default).
    x = np.zeros((2, 3, 4, 5), np.float32)
    x[0, 0, 0, 0] = 9.0
    c = np.ones(3, np.float32)
    w = {n: [4 * c, 18 * c, np.array([2.0], np.float32)] for n in ("after", "before", "batch")}
    b = _ref(SYN_BN, x, w)
    assert float(b["after"][0, 0, 0, 0]) == pytest.approx(2.0, rel=1e-6)            # (9 - 2) / 3.5
    assert float(b["after"][0, 1, 0, 0]) == pytest.approx(-2 / 3.5, rel=1e-6)
    assert float(b["before"][0, 0, 0, 0]) == pytest.approx(7 / 9.5 ** 0.5, rel=1e-6)
    # Batch statistics of channel 0: one 9 among 40 values, mean 0.225, variance 81/40 - 0.225^2.
    var = 81 / 40 - 0.225 ** 2
    assert float(b["batch"][0, 0, 0, 0]) == pytest.approx((9 - 0.225) / (var ** 0.5 + 0.5), rel=1e-5)
    _verify(tmp_path, SYN_BN, RNG.standard_normal((2, 3, 4, 5)).astype(np.float32) * 3)


def test_upsample_darknet_shapes_and_values():
    shapes, _ = shapes_of(SYN_BN)
    assert shapes["up"] == (2, 3, 12, 15)
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    c = np.ones(3, np.float32)
    up = _ref(SYN_BN, x, {n: [c, c, c[:1]] for n in ("after", "before", "batch")})["up"]
    # upsample_darknet_layer.cpp Forward_cpu: top (h, w) = bottom (h / 3, w / 3).
    assert up[1, 2, 7, 14] == x[1, 2, 2, 4]
    assert up[0, 1, 3, 2] == x[0, 1, 1, 0]
    assert up[0, 0, :3, :3].tolist() == [[0.0] * 3] * 3
    bad = _net((1, 1, 2, 2), 'layer { name: "u" type: "UpsampleDarknet" bottom: "data" top: "u" '
                             'upsample_darknet_param { stride: 0 } }\n')
    assert any("stride must be positive" in m for m in errors_of(bad))


SYN_CONV = _net((2, 3, 7, 6), """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad_l: 0 pad_r: 1 pad_t: 2 pad_b: 0
                            weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } } }
layer { name: "six" type: "ReLU" bottom: "conv" top: "six" relu_param { relu6: true } }
layer { name: "leaky6" type: "ReLU" bottom: "conv" top: "leaky6" relu_param { relu6: true negative_slope: 0.5 } }
""")


def test_synopsys_asymmetric_conv_shapes():
    # conv_layer.cpp compute_output_shape: (7 + 2 + 0 - 3) / 2 + 1 = 4 rows, (6 + 0 + 1 - 3) / 2 + 1 = 3 columns.
    shapes, g = shapes_of(SYN_CONV)
    assert shapes["conv"] == (2, 4, 4, 3)
    assert g.node("conv").meta["cost"]["macs"] == 2 * 4 * 4 * 3 * 3 * 9
    both = _net((1, 1, 4, 4), 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                              'convolution_param { num_output: 1 kernel_size: 1 pad: 1 pad_l: 1 } }\n')
    assert any("both pad and pad_l/pad_r/pad_t/pad_b" in m for m in errors_of(both))
    deconv = _net((1, 1, 4, 4), 'layer { name: "c" type: "Deconvolution" bottom: "data" top: "c" '
                                'convolution_param { num_output: 1 kernel_size: 2 pad_t: 1 } }\n')
    assert any("not supported" in m for m in errors_of(deconv))


def test_synopsys_asymmetric_conv_and_relu6_by_hand(tmp_path):
    # A 1x1 input, kernel 2, pad_t 1 pad_l 1 (im2col.cpp reads row -pad_t + kh, column
    # -pad_l + kw): one output = the kernel's bottom-right weight times x; the other three
    # taps read padding. With pad_b/pad_r instead, it is the top-left weight.
    def net(pads):
        return _net((1, 1, 1, 1), 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                                  f'convolution_param {{ num_output: 1 kernel_size: 2 bias_term: false {pads} }} }}\n'
                                  'layer { name: "r" type: "ReLU" bottom: "c" top: "r" relu_param { relu6: true } }\n')
    w = {"c": [np.array([[[[1, 2], [3, 4]]]], np.float32)]}
    x = np.array([[[[1.5]]]], np.float32)
    assert _ref(net("pad_t: 1 pad_l: 1"), x, w)["c"].tolist() == [[[[6.0]]]]
    assert _ref(net("pad_b: 1 pad_r: 1"), x, w)["c"].tolist() == [[[[1.5]]]]
    # relu_layer.cpp: min(max(x, 0), 6).
    assert _ref(net("pad_t: 1 pad_l: 1"), x, w)["r"].tolist() == [[[[6.0]]]]
    assert _ref(net("pad_t: 1 pad_l: 1"), 2 * x, w)["r"].tolist() == [[[[6.0]]]]
    assert _ref(net("pad_t: 1 pad_l: 1"), -x, w)["r"].tolist() == [[[[0.0]]]]
    b = _ref(SYN_CONV, (RNG.standard_normal((2, 3, 7, 6)) * 4).astype(np.float32),
             {"conv": [np.full((4, 3, 3, 3), 1.0, np.float32), np.array([0, 10, -10, 0], np.float32)]})
    assert b["six"].max() == 6.0 and b["six"].min() == 0.0
    assert np.array_equal(b["leaky6"], np.minimum(np.where(b["conv"] > 0, b["conv"], 0.5 * b["conv"]), 6))
    _verify(tmp_path, SYN_CONV, (RNG.standard_normal((2, 3, 7, 6)) * 4).astype(np.float32))


SYN_POOL = _net((2, 3, 7, 6), """
layer { name: "max" type: "Pooling" bottom: "data" top: "max"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad_t: 1 pad_l: 0 pad_b: 2 pad_r: 1 } }
layer { name: "ave" type: "Pooling" bottom: "data" top: "ave"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad_t: 1 pad_l: 0 pad_b: 2 pad_r: 1 } }
layer { name: "exc" type: "Pooling" bottom: "data" top: "exc"
        pooling_param { pool: AVE_EXC_PAD kernel_size: 3 stride: 2 pad_t: 1 pad_l: 0 pad_b: 2 pad_r: 1 } }
layer { name: "exc_sym" type: "Pooling" bottom: "data" top: "exc_sym"
        pooling_param { pool: AVE_EXC_PAD kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "se" type: "Pooling" bottom: "data" top: "se"
        pooling_param { pool: AVE_EXC_PAD kernel_h: 7 kernel_w: 6 stride_h: 1 stride_w: 1 ceil_mode: false
                        pad_l: 0 pad_r: 0 pad_t: 0 pad_b: 0 } }
layer { name: "hs" type: "HardSwish" bottom: "data" top: "hs" }
layer { name: "mul" type: "Mul" bottom: "hs" bottom: "se" top: "mul" }
""")


def test_synopsys_pooling_shapes():
    shapes, g = shapes_of(SYN_POOL)
    # pooling_layer.cpp: ceil((7 + 1 + 2 - 3) / 2) + 1 = 5 rows, then (5 - 1) * 2 = 8 >= 7 + 1: 4;
    # ceil((6 + 0 + 1 - 3) / 2) + 1 = 3 columns, (3 - 1) * 2 = 4 < 6 + 0: kept.
    assert shapes["max"] == shapes["ave"] == shapes["exc"] == (2, 3, 4, 3)
    assert shapes["exc_sym"] == (2, 3, 4, 4)
    assert shapes["se"] == (2, 3, 1, 1)
    assert shapes["hs"] == shapes["mul"] == (2, 3, 7, 6)


def test_synopsys_pooling_by_hand():
    # A 2x2 input [[1, 2], [3, 4]], kernel 2, stride 2, pad_t 1 pad_r 1 (pooling_layer.cpp):
    # rows ceil((2 + 1 - 2) / 2) + 1 = 2; columns ceil((2 + 1 - 2) / 2) + 1 = 2, clipped to 1
    # because the second window would start at 2 >= 2 + pad_l 0. Row windows cover input rows
    # {-1, 0} and {1, 2}; the column window {0, 1}.
    def net(pool):
        return _net((1, 1, 2, 2), 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                                  f'pooling_param {{ pool: {pool} kernel_size: 2 stride: 2 pad_t: 1 pad_r: 1 }} }}\n')
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    assert _ref(net("MAX"), x)["p"].tolist() == [[[[2.0], [4.0]]]]
    # AVE: the first window is clipped to [-1, min(1, 2 + pad_b 0)) x [0, min(2, 2 + 1)): 4 cells,
    # sum 3; the second to [1, 2) x [0, 2): 2 cells, sum 7.
    assert _ref(net("AVE"), x)["p"].tolist() == [[[[0.75], [3.5]]]]
    # AVE_EXC_PAD: the padding row is not counted: 3 / 2, 7 / 2.
    assert _ref(net("AVE_EXC_PAD"), x)["p"].tolist() == [[[[1.5], [3.5]]]]


def test_hard_swish_and_mul_by_hand():
    # hard_swish_layer.cpp: x * min(max(x + 3, 0), 6) / 6.
    text = _net((1, 7), 'layer { name: "hs" type: "HardSwish" bottom: "data" top: "hs" }\n'
                        'layer { name: "m" type: "Mul" bottom: "data" bottom: "hs" top: "m" }\n')
    x = np.array([[-4, -3, -1, 0, 1, 3, 4]], np.float32)
    b = _ref(text, x)
    assert b["hs"][0].tolist() == pytest.approx([0, 0, -1 / 3, 0, 2 / 3, 3, 4])
    assert b["m"][0].tolist() == pytest.approx([0, 0, 1 / 3, 0, 2 / 3, 9, 16])
    # mul_layer.cpp Reshape: axes aligned at the end, each pair equal or 1.
    # A 0-axis multiplier (Reduction over every axis) scales everything: the top is bottom 0's shape.
    scalar = _net((2, 3, 4, 5), 'layer { name: "c" type: "Reduction" bottom: "data" top: "c" reduction_param { axis: 0 } }\n'
                                'layer { name: "m" type: "Mul" bottom: "data" bottom: "c" top: "m" }\n')
    shapes, _ = shapes_of(scalar)
    assert shapes["c"] == () and shapes["m"] == (2, 3, 4, 5)
    x = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
    assert np.array_equal(_ref(scalar, x)["m"], x * 7140.0)   # the sum 0 + ... + 119
    bad = _net((2, 3, 4, 5), 'layer { name: "s" type: "Reshape" bottom: "data" top: "s" '
                             'reshape_param { shape { dim: 2 dim: 3 dim: 20 } } }\n'
                             'layer { name: "m" type: "Mul" bottom: "data" bottom: "s" top: "m" }\n')
    assert any("do not broadcast" in m for m in errors_of(bad))
    inplace = _net((2, 3), 'layer { name: "m" type: "Mul" bottom: "data" bottom: "data" top: "data" }\n')
    assert any("in-place" in m for m in errors_of(inplace))


def test_synopsys_pooling_export_matches_reference(tmp_path):
    report = _verify(tmp_path, SYN_POOL, RNG.standard_normal((2, 3, 7, 6)).astype(np.float32))
    assert {c.layer for c in report.comparisons} >= {"max", "ave", "exc", "exc_sym", "se", "hs", "mul"}


SYN_RESIZE = _net((2, 3, 5, 4), """
layer { name: "align" type: "ResizeBilinear" bottom: "data" top: "align"
        resize_bilinear_param { align_corners: true output_height: 9 output_width: 7 data_format: "NCHW" } }
layer { name: "asym" type: "ResizeBilinear" bottom: "data" top: "asym"
        resize_bilinear_param { output_height: 8 output_width: 6 data_format: "NCHW" } }
layer { name: "half" type: "ResizeBilinear" bottom: "data" top: "half"
        resize_bilinear_param { half_pixel_centers: true scale_height: 2.5 scale_width: 1.5 data_format: "NCHW" } }
layer { name: "torch" type: "ResizeBilinear" bottom: "data" top: "torch"
        resize_bilinear_param { pytorch_half_pixel: true output_height: 3 output_width: 1 data_format: "NCHW" } }
""")


def test_resize_bilinear_shapes_and_errors():
    shapes, _ = shapes_of(SYN_RESIZE)
    # resize_bilinear_layer.cpp Reshape: output_height/width, else floor(5 * 2.5) x floor(4 * 1.5).
    assert shapes["align"] == (2, 3, 9, 7) and shapes["asym"] == (2, 3, 8, 6)
    assert shapes["half"] == (2, 3, 12, 6) and shapes["torch"] == (2, 3, 3, 1)
    nhwc = _net((1, 3, 4, 4), 'layer { name: "r" type: "ResizeBilinear" bottom: "data" top: "r" '
                              'resize_bilinear_param { output_height: 8 output_width: 8 } }\n')
    assert any("NCHW" in m for m in errors_of(nhwc))
    both = _net((1, 3, 4, 4), 'layer { name: "r" type: "ResizeBilinear" bottom: "data" top: "r" resize_bilinear_param '
                              '{ align_corners: true half_pixel_centers: true output_height: 8 output_width: 8 '
                              'data_format: "NCHW" } }\n')
    assert any("sets both align_corners and half_pixel_centers" in m for m in errors_of(both))


def test_resize_bilinear_by_hand():
    # One row [0, 10] to 1 x 4 (compute_interpolation_weights): align_corners samples 0, 1/3,
    # 2/3, 1; the default i * 2 / 4 = 0, 0.5, 1, 1.5 (the last clamped to the input);
    # half_pixel_centers (i + 0.5) / 2 - 0.5 = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    def net(flag):
        return _net((1, 1, 1, 2), 'layer { name: "r" type: "ResizeBilinear" bottom: "data" top: "r" '
                                  f'resize_bilinear_param {{ {flag} output_height: 1 output_width: 4 data_format: "NCHW" }} }}\n')
    x = np.array([[[[0, 10]]]], np.float32)
    assert _ref(net("align_corners: true"), x)["r"][0, 0, 0].tolist() == pytest.approx([0, 10 / 3, 20 / 3, 10])
    assert _ref(net(""), x)["r"][0, 0, 0].tolist() == pytest.approx([0, 5, 10, 10])
    assert _ref(net("half_pixel_centers: true"), x)["r"][0, 0, 0].tolist() == pytest.approx([0, 2.5, 7.5, 10])
    assert _ref(net("pytorch_half_pixel: true"), x)["r"][0, 0, 0].tolist() == pytest.approx([0, 2.5, 7.5, 10])


def test_resize_bilinear_export_matches_reference(tmp_path):
    _verify(tmp_path, SYN_RESIZE, RNG.standard_normal((2, 3, 5, 4)).astype(np.float32))


@pytest.mark.parametrize("name", ["SYN_BN", "SYN_CONV", "SYN_POOL", "SYN_RESIZE"])
def test_synopsys_cli_check_export_verify(tmp_path, capsys, name):
    path = _write(tmp_path, globals()[name])
    assert main(["check", path]) == 0
    assert main(["export", path, "-o", str(tmp_path / "m.onnx")]) == 0
    assert main(["verify", path]) == 0
    capsys.readouterr()


def test_fork_enum_value_warns_and_survives_fmt(tmp_path, capsys):
    path = _write(tmp_path, SYN_POOL)
    assert main(["check", path]) == 0
    err = capsys.readouterr().err
    assert "warning[W217]: 'AVE_EXC_PAD' is not a BVLC Caffe value of PoolMethod" in err
    out = tmp_path / "fmt.prototxt"
    assert main(["fmt", path, "-o", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text()
    assert text.count("pool: AVE_EXC_PAD") == 3 and '"AVE_EXC_PAD"' not in text
    assert main(["verify", str(out)]) == 0
    capsys.readouterr()
