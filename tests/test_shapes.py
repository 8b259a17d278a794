"""Shapes against real Caffe: every blob and parameter blob of every conformance case and every
zoo definition Caffe could load (tests/data/conformance), plus each shape rule's diagnostics."""
import json
import os

import numpy as np
import pytest
from conftest import CONFORMANCE, ZOO

import netdef
from netdef.parse import parse_text
from netdef.proto import pb
from netdef.source import Source

CASES = sorted(p.name for p in (CONFORMANCE / "layers").iterdir() if (p / "net.prototxt").exists())
ZOO_SHAPES = json.loads((CONFORMANCE / "zoo_shapes.json").read_text())


def _compile_text(text, **kw):
    return netdef.compile(parse_text(Source(text, "t.prototxt"), "net"), **kw)


def _blob_shape(bp) -> tuple:
    legacy = (bp.num, bp.channels, bp.height, bp.width)
    if bp.HasField("shape") or not any(legacy):
        return tuple(bp.shape.dim)  # an absent shape is a 0-axis (scalar) blob
    return legacy


@pytest.mark.parametrize("case", CASES)
def test_conformance_layer_case(case):
    d = CONFORMANCE / "layers" / case
    g = netdef.compile(str(d / "net.prototxt"))
    if (d / "caffe_error.txt").exists():
        assert g.diagnostics.has_errors, f"Caffe rejected {case} but netdef accepts it"
        return
    assert not g.diagnostics.has_errors, [x.header() for x in g.diagnostics]
    blobs = np.load(d / "blobs.npz")
    compared = 0
    for name in blobs.files:
        if "_split_" in name:
            continue
        v = g.blob(name)
        assert v is not None, f"{case}: netdef has no blob {name}"
        assert v.meta.get("shape") == tuple(blobs[name].shape), (case, name)
        compared += 1
    assert compared >= 2
    if (d / "weights.caffemodel").exists():
        net = pb.NetParameter.FromString((d / "weights.caffemodel").read_bytes())
        for lp in net.layer:
            if not lp.blobs:
                continue
            node = g.node(lp.name)
            assert node is not None, (case, lp.name)
            assert node.meta["blobs"] == [_blob_shape(b) for b in lp.blobs], (case, lp.name)


@pytest.mark.parametrize("path", sorted(ZOO_SHAPES))
def test_zoo_shapes_match_caffe(path):
    info = ZOO_SHAPES[path]
    g = netdef.compile(str(ZOO / path))
    assert not g.diagnostics.has_errors, [x.header() for x in g.diagnostics if x.is_error]
    for name, shape in info["blobs"].items():
        if "_split_" in name:
            continue
        v = g.blob(name)
        assert v is not None and v.meta.get("shape") == tuple(shape), (name, v and v.meta.get("shape"), shape)
    for layer, shapes in info["params"].items():
        node = g.node(layer)
        assert node is not None and node.meta["blobs"] == [tuple(s) for s in shapes], layer
    assert {v.name for v in g.outputs} == set(info["outputs"])
    assert {v.name for v in g.inputs} == set(info["inputs"])


NET = """name: "t"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: {shape} }} }} }}
{layers}
"""


def _net(layers, shape="1 dim: 3 dim: 8 dim: 8"):
    return _compile_text(NET.format(shape=shape, layers=layers))


def _codes(g):
    return [d.code for d in g.diagnostics]


# --- independent checks of the shape rules (arithmetic written out by hand) -------------------

@pytest.mark.parametrize("h,k,s,p,ceil,want", [
    # Caffe: ceil((H + 2p - k) / s) + 1, then drop a last window starting in the padding.
    (7, 3, 2, 0, True, 3), (8, 3, 2, 0, True, 4), (8, 3, 2, 1, True, 5), (9, 3, 2, 1, True, 5), (10, 3, 2, 1, True, 6), (6, 3, 2, 1, True, 4),
    (5, 2, 2, 1, True, 3), (112, 3, 2, 0, True, 56), (8, 3, 2, 0, False, 3), (9, 3, 2, 1, False, 5),
])
def test_pooling_rounding(h, k, s, p, ceil, want):
    mode = "" if ceil else "round_mode: FLOOR"
    g = _net(f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param {{ pool: MAX '
             f'kernel_size: {k} stride: {s} pad: {p} {mode} }} }}', shape=f"1 dim: 1 dim: {h} dim: {h}")
    assert g.blob("p").meta["shape"] == (1, 1, want, want)


def test_fork_ceil_mode_false_rounds_down():
    g = _net('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: MAX '
             'kernel_size: 3 stride: 2 ceil_mode: false } }', shape="1 dim: 1 dim: 8 dim: 8")
    assert g.blob("p").meta["shape"] == (1, 1, 3, 3)
    assert "W216" in _codes(g)  # the fork field is still reported as not BVLC, and as read


def test_global_pooling_and_rectangular_conv():
    g = _net('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 '
             'kernel_h: 3 kernel_w: 1 pad_h: 1 stride_w: 2 stride_h: 1 dilation: 2 } }\n'
             'layer { name: "g" type: "Pooling" bottom: "c" top: "g" pooling_param { pool: AVE global_pooling: true } }',
             shape="2 dim: 3 dim: 10 dim: 9")
    # height: (10 + 2 - (2*(3-1)+1)) / 1 + 1 = 8; width: (9 - 1) / 2 + 1 = 5
    assert g.blob("c").meta["shape"] == (2, 4, 8, 5)
    assert g.blob("g").meta["shape"] == (2, 4, 1, 1)


def test_nd_convolution_and_deconvolution():
    g = _net('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 '
             'kernel_size: 3 kernel_size: 1 kernel_size: 2 stride: 2 } }\n'
             'layer { name: "d" type: "Deconvolution" bottom: "c" top: "d" convolution_param { num_output: 3 '
             'kernel_size: 4 stride: 2 pad: 1 group: 1 } }', shape="1 dim: 1 dim: 9 dim: 6 dim: 7")
    assert g.blob("c").meta["shape"] == (1, 2, 4, 3, 3)
    # deconv: s(H-1) + k - 2p = 2*3 + 4 - 2 = 8; 2*2 + 4 - 2 = 6
    assert g.blob("d").meta["shape"] == (1, 3, 8, 6, 6)
    assert g.node("d").meta["blobs"] == [(2, 3, 4, 4, 4), (3,)]


@pytest.mark.parametrize("layer,want", [
    ('type: "InnerProduct" inner_product_param { num_output: 5 axis: 2 }', (1, 3, 5)),
    ('type: "Flatten" flatten_param { axis: 2 }', (1, 3, 64)),
    ('type: "Reshape" reshape_param { shape { dim: 0 dim: -1 dim: 4 } }', (1, 48, 4)),
    ('type: "Reshape" reshape_param { shape { dim: 2 dim: 4 } axis: 2 num_axes: 1 }', (1, 3, 2, 4, 8)),
    ('type: "Reduction" reduction_param { axis: 2 }', (1, 3)),
    ('type: "Tile" tile_param { axis: -1 tiles: 3 }', (1, 3, 8, 24)),
    ('type: "ArgMax" argmax_param { top_k: 2 out_max_val: true }', (1, 2, 2, 1)),
    ('type: "Softmax" softmax_param { axis: -1 }', (1, 3, 8, 8)),
    ('type: "SPP" spp_param { pyramid_height: 2 }', (1, 15)),
    ('type: "Embed" embed_param { num_output: 4 input_dim: 10 }', (1, 3, 8, 8, 4)),
])
def test_single_layer_rules(layer, want):
    g = _net(f'layer {{ name: "x" bottom: "data" top: "x" {layer} }}')
    assert g.blob("x").meta.get("shape") == want, [d.header() for d in g.diagnostics]


def test_slice_concat_crop_eltwise():
    g = _net('layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" top: "c" slice_param { axis: 1 slice_point: 1 slice_point: 2 } }\n'
             'layer { name: "cat" type: "Concat" bottom: "c" bottom: "a" top: "cat" concat_param { concat_dim: 1 } }\n'
             'layer { name: "cr" type: "Crop" bottom: "data" bottom: "cat" top: "cr" crop_param { axis: 1 offset: 1 offset: 0 offset: 0 } }\n'
             'layer { name: "e" type: "Eltwise" bottom: "cat" bottom: "cat" top: "e" }')
    assert [g.blob(n).meta["shape"] for n in "abc"] == [(1, 1, 8, 8)] * 3
    assert g.blob("cat").meta["shape"] == (1, 2, 8, 8)
    assert g.blob("cr").meta["shape"] == (1, 2, 8, 8)
    assert g.blob("e").meta["shape"] == (1, 2, 8, 8)


def test_scale_bias_and_batchnorm_params():
    g = _net('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data" }\n'
             'layer { name: "sc" type: "Scale" bottom: "data" top: "data" scale_param { bias_term: true } }\n'
             'layer { name: "sc2" type: "Scale" bottom: "data" top: "s2" scale_param { axis: 2 num_axes: -1 } }\n'
             'layer { name: "b" type: "Bias" bottom: "data" top: "b" bias_param { num_axes: 0 } }')
    assert g.node("bn").meta["stat_params"] == [(3,), (3,), (1,)] and g.node("bn").meta["params"] == []
    assert g.node("sc").meta["params"] == [(3,), (3,)]
    assert g.node("sc2").meta["params"] == [(8, 8)]
    assert g.node("b").meta["params"] == [()]
    assert [f.value for f in g.node("sc").impl.filler_params(g.node("sc"))] == [1.0, 0.0]


def test_recurrent_shapes_and_blob_order():
    g = _compile_text('layer { name: "in" type: "Input" top: "x" top: "c" input_param { shape { dim: 5 dim: 2 dim: 3 } '
                      'shape { dim: 5 dim: 2 } } }\n'
                      'layer { name: "l" type: "LSTM" bottom: "x" bottom: "c" top: "h" recurrent_param { num_output: 7 } }\n'
                      'layer { name: "r" type: "RNN" bottom: "x" bottom: "c" top: "o" recurrent_param { num_output: 4 } }')
    assert g.blob("h").meta["shape"] == (5, 2, 7)
    assert g.node("l").meta["blobs"] == [(28, 3), (28,), (28, 7)]
    assert g.node("r").meta["blobs"] == [(4, 3), (4,), (4, 4), (4, 4), (4,)]


def test_losses_are_scalars():
    g = _compile_text('layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 4 dim: 10 } '
                      'shape { dim: 4 } } }\n'
                      'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "loss" top: "prob" }\n'
                      'layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "y" top: "acc" top: "per_class" '
                      'accuracy_param { top_k: 5 } }')
    assert g.blob("loss").meta["shape"] == () and g.blob("prob").meta["shape"] == (4, 10)
    assert g.blob("acc").meta["shape"] == () and g.blob("per_class").meta["shape"] == (10,)


def test_fork_layers():
    g = _compile_text('layer { name: "in" type: "Input" top: "f" top: "img" input_param { shape { dim: 1 dim: 8 dim: 5 dim: 6 } '
                      'shape { dim: 1 dim: 3 dim: 300 dim: 300 } } }\n'
                      'layer { name: "perm" type: "Permute" bottom: "f" top: "perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }\n'
                      'layer { name: "pb" type: "PriorBox" bottom: "f" bottom: "img" top: "pb" prior_box_param { min_size: 30 '
                      'max_size: 60 aspect_ratio: 2 aspect_ratio: 3 flip: true } }\n'
                      'layer { name: "up" type: "Interp" bottom: "f" top: "up" interp_param { zoom_factor: 2 } }\n'
                      'layer { name: "dn" type: "Interp" bottom: "f" top: "dn" interp_param { shrink_factor: 2 } }\n'
                      'layer { name: "u6" type: "ReLU6" bottom: "f" top: "u6" }\n'
                      'layer { name: "n" type: "Normalize" bottom: "f" top: "n" norm_param { channel_shared: false } }\n'
                      'layer { name: "us" type: "Upsample" bottom: "f" top: "us" upsample_param { scale: 2 } }')
    assert g.blob("perm").meta["shape"] == (1, 5, 6, 8)
    # priors per cell: ratios {1, 2, 1/2, 3, 1/3} x 1 min size + 1 max size = 6
    assert g.blob("pb").meta["shape"] == (1, 2, 5 * 6 * 6 * 4)
    assert g.blob("up").meta["shape"] == (1, 8, 9, 11)
    assert g.blob("dn").meta["shape"] == (1, 8, 3, 3)
    assert g.blob("u6").meta["shape"] == (1, 8, 5, 6)
    assert g.node("n").meta["params"] == [(8,)]
    assert g.blob("us").meta["shape"] == (1, 8, 10, 12)


# --- diagnostics ------------------------------------------------------------------------------

def _one(g, code):
    found = [d for d in g.diagnostics if d.code == code]
    assert found, [d.header() for d in g.diagnostics]
    return found[0]


def test_eltwise_mismatch_shows_both_shapes_and_producers():
    g = _net('layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 4 kernel_size: 3 } }\n'
             'layer { name: "c2" type: "Convolution" bottom: "data" top: "c2" convolution_param { num_output: 4 kernel_size: 1 } }\n'
             'layer { name: "sum" type: "Eltwise" bottom: "c1" bottom: "c2" top: "sum" }\n'
             'layer { name: "after" type: "ReLU" bottom: "sum" top: "after" }')
    d = _one(g, "E401")
    assert "(1, 4, 6, 6)" in d.message and "(1, 4, 8, 8)" in d.message and "'c1'" in d.message
    assert d.span.line == 5
    assert [label for _, label in d.related] and all("made here" in label for _, label in d.related)
    assert {s.line for s, _ in d.related} == {3, 4}
    assert "shape" in g.blob("c1").meta and "shape" not in g.blob("after").meta


def test_concat_mismatch():
    g = _net('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
             'layer { name: "cat" type: "Concat" bottom: "data" bottom: "p" top: "cat" }')
    d = _one(g, "E401")
    assert "(1, 3, 8, 8)" in d.message and "(1, 3, 4, 4)" in d.message and "axis 2" in d.notes[0]


@pytest.mark.parametrize("layer,code,words", [
    ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 11 }', "E402", "output height would be -2"),
    ('type: "Convolution" convolution_param { kernel_size: 3 }', "E403", "num_output"),
    ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 group: 2 }', "E405", "does not divide the 3 input channels"),
    ('type: "Pooling" pooling_param { kernel_size: 2 pad: 2 }', "E402", "must be smaller than the kernel"),
    ('type: "Pooling" pooling_param { kernel_size: 12 }', "E402", "output height would be -3"),
    ('type: "Slice" top: "y" slice_param { slice_point: 3 }', "E406", "not inside axis 1"),
    ('type: "Reshape" reshape_param { shape { dim: 5 dim: -1 } }', "E409", "not a multiple of 5"),
    ('type: "InnerProduct" inner_product_param { num_output: 2 axis: 4 }', "E408", "out of range"),
    ('type: "LRN" lrn_param { local_size: 4 }', "E404", "even"),
    ('type: "Crop" bottom: "data" crop_param { offset: 1 }', "E407", "out of bounds"),
])
def test_geometry_errors_point_at_the_layer(layer, code, words):
    g = _net(f'layer {{ name: "x" bottom: "data" top: "x" {layer} }}')
    d = _one(g, code)
    assert words in d.message, d.message
    assert d.span is not None and d.span.line == 3
    assert "shape" not in g.blob("x").meta


def test_unknown_type_stops_inference_and_keeps_earlier_shapes():
    g = _net('layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n'
             'layer { name: "x" type: "Convolutoin" bottom: "r" top: "x" }\n'
             'layer { name: "y" type: "ReLU" bottom: "x" top: "y" }')
    d = _one(g, "E305")
    assert "Convolutoin" in d.message and "'Convolution'" in d.notes[0]
    assert g.blob("r").meta["shape"] == (1, 3, 8, 8)
    assert "shape" not in g.blob("y").meta


def test_python_layer_is_described_and_input_option_continues():
    text = ('layer { name: "data" type: "Python" top: "data" python_param { module: "os" layer: "system" } }\n'
            'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }')
    g = _compile_text(text)
    assert _one(g, "W306").message.count("os.system") == 1
    assert "shape" not in g.blob("c").meta
    g = _compile_text(text, inputs={"data": (1, 3, 10, 10)})
    assert g.blob("c").meta["shape"] == (1, 2, 8, 8)
    assert not g.diagnostics.has_errors


def test_pool_overhang_warning():
    # 8 -> ceil((8 - 3) / 2) + 1 = 4 outputs; the last window starts at 3 * 2 = 6 and covers 6..8,
    # one past the last input row 7. One warning per layer, naming the axes.
    g = _net('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }')
    assert _codes(g) == ["W411"] and not g.diagnostics.has_errors
    assert next(iter(g.diagnostics)).message == (
        "the last window of pooling layer 'p' runs past the input edge on both axes (it covers 6..8 but the input "
        "ends at 7); Caffe clips it")
    # 8 x 9: only the height overhangs (the width's last window covers 6..8 of 0..8).
    g = _net('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }',
             shape="1 dim: 3 dim: 8 dim: 9")
    (d,) = [x for x in g.diagnostics if x.code == "W411"]
    assert "on the height axis (it covers 6..8 but the input ends at 7)" in d.message
    # 8 x 10 with kernel 3x4: both axes, each with its own coordinates.
    g = _net('layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
             'pooling_param { pool: MAX kernel_h: 3 kernel_w: 4 stride: 2 } }', shape="1 dim: 3 dim: 8 dim: 11")
    (d,) = [x for x in g.diagnostics if x.code == "W411"]
    assert "on both axes (height: it covers 6..8 but the input ends at 7; width: it covers 8..11 but the input " \
           "ends at 10)" in d.message, d.message


def test_googlenet_pool_overhang_once_per_layer(capsys):
    from netdef.cli import main
    assert main(["check", "googlenet"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning[W411]") == 4 and err.count("on both axes") == 4


def test_shared_param_shapes_must_agree():
    g = _net('layer { name: "a" type: "InnerProduct" bottom: "data" top: "a" param { name: "w" } inner_product_param { num_output: 4 } }\n'
             'layer { name: "b" type: "InnerProduct" bottom: "data" top: "b" param { name: "w" } inner_product_param { num_output: 4 } }\n'
             'layer { name: "c" type: "InnerProduct" bottom: "a" top: "c" param { name: "w" } inner_product_param { num_output: 4 } }')
    d = _one(g, "E313")
    assert "layer 'c'" in d.message and "(4, 4)" in d.message and "(4, 192)" in d.message
    assert [x.code for x in g.diagnostics].count("E313") == 1


def test_siamese_shares_parameters_without_errors():
    g = netdef.compile(str(ZOO / "bvlc_siamese" / "mnist_siamese_train_test.prototxt"), phase="TRAIN",
                       inputs={"pair_data": (64, 2, 28, 28), "sim": (64,)})
    assert not g.diagnostics.has_errors, [d.header() for d in g.diagnostics]
    assert g.node("conv1_p").meta["blobs"] == g.node("conv1").meta["blobs"] == [(20, 1, 5, 5), (20,)]
    assert g.blob("loss").meta["shape"] == ()


@pytest.mark.skipif(not os.path.exists(ZOO / "bvlc_mnist" / "lenet_train_test.prototxt"), reason="zoo")
def test_data_layer_needs_input_option():
    path = str(ZOO / "bvlc_mnist" / "lenet_train_test.prototxt")
    g = netdef.compile(path, phase="TRAIN")
    d = _one(g, "W308")
    assert "--input data=" in d.message and "database" in d.message
    assert g.blob("label").meta["shape"] == (64,)
    g = netdef.compile(path, phase="TRAIN", inputs={"data": (64, 1, 28, 28)})
    assert g.blob("loss").meta["shape"] == () and g.blob("ip2").meta["shape"] == (64, 10)


# Data layers against their Caffe setup code. ImageData (image_data_layer.cpp): exactly 2 tops;
# ReadImageToCVMat(..., is_color) decides the channels (force_color/force_gray only reach
# encoded Datum entries in data_transformer.cpp); new_height and new_width together or not at
# all; batch_size > 0; InferBlobShape's CHECK_GE(img_height, crop_size). BaseDataLayer builds a
# DataTransformer, whose constructor refuses mean_file with mean_value. WindowData:
# CHECK_GT(crop_size, 0), 2 tops. DummyData: 0, 1 or one data_filler per top. Data: load_batch's
# CHECK(batch->data_.count()) needs a batch_size.
_IMG = 'layer { name: "d" type: "ImageData" top: "data" top: "label" %s image_data_param { source: "l.txt" %s } }'


@pytest.mark.parametrize("transform,image,want", [
    ("", "new_height: 32 new_width: 48", (1, 3, 32, 48)),
    ("", "is_color: false batch_size: 8 new_height: 32 new_width: 48", (8, 1, 32, 48)),
    ("transform_param { force_color: true }", "is_color: false new_height: 5 new_width: 5", (1, 1, 5, 5)),
    ("transform_param { force_gray: true crop_size: 4 }", "new_height: 5 new_width: 5", (1, 3, 4, 4)),
    ("transform_param { crop_size: 7 }", "batch_size: 2", (2, 3, 7, 7)),
    ("transform_param { crop_size: 5 mean_value: 1 mean_value: 2 mean_value: 3 }", "new_height: 5 new_width: 5",
     (1, 3, 5, 5)),
])
def test_image_data_shapes(transform, image, want):
    g = _compile_text(_IMG % (transform, image))
    assert not g.diagnostics.has_errors, [d.render() for d in g.diagnostics]
    assert g.blob("data").meta["shape"] == want and g.blob("label").meta["shape"] == (want[0],)
    forced = [d for d in g.diagnostics if d.code == "W413"]
    if "force_" in transform:
        (d,) = forced
        assert "is_color" in d.message
        assert (_IMG % (transform, image))[:d.span.start].endswith(transform[transform.index("force_"):].split()[0] + " ")
    else:
        assert not forced


@pytest.mark.parametrize("text,code,words,at", [
    (_IMG % ("", "new_height: 32"), "E404", "new_height and new_width", "new_height"),
    (_IMG % ("", "new_width: 32"), "E404", "new_height and new_width", "new_width"),
    (_IMG % ("", "batch_size: 0 new_height: 4 new_width: 4"), "E404", "batch_size must be positive", "batch_size"),
    (_IMG % ("transform_param { crop_size: 33 }", "new_height: 32 new_width: 40"), "E404",
     "crop_size 33 is larger than the 32x40 image", "crop_size"),
    (_IMG % ("transform_param { mean_value: 1 mean_value: 2 }", "new_height: 4 new_width: 4"), "E404",
     "2 mean_value(s) for 3 channels", "mean_value"),
    (_IMG % ('transform_param { mean_file: "m.binaryproto" mean_value: 1 }', "new_height: 4 new_width: 4"), "E404",
     "mean_file and mean_value", "mean_value"),
    ('layer { name: "d" type: "ImageData" top: "data" image_data_param { source: "l.txt" } }', "E315",
     "takes 2 tops", "layer"),
    ('layer { name: "d" type: "Data" top: "data" top: "label" transform_param { mean_file: "m" mean_value: 1 } '
     'data_param { source: "db" batch_size: 4 } }', "E404", "mean_file and mean_value", "mean_value"),
    ('layer { name: "d" type: "Data" top: "data" top: "label" data_param { source: "db" } }', "E403",
     "batch_size of layer 'd' is not set", "data_param"),
    ('layer { name: "w" type: "WindowData" top: "data" top: "label" window_data_param { source: "w.txt" batch_size: 2 } }',
     "E403", "crop_size of layer 'w' is not set", "layer"),
    ('layer { name: "w" type: "WindowData" top: "data" transform_param { crop_size: 227 } '
     'window_data_param { source: "w.txt" batch_size: 2 } }', "E315", "takes 2 tops", "layer"),
    ('layer { name: "x" type: "DummyData" top: "a" top: "b" top: "c" dummy_data_param { shape { dim: 2 } '
     'data_filler { type: "constant" } data_filler { type: "gaussian" } } }', "E404", "2 data_filler", "data_filler"),
])
def test_data_layer_setup_checks(text, code, words, at):
    g = _compile_text(text)
    d = _one(g, code)
    assert words in d.message, d.message
    # A block's span starts at its name, a scalar's at its value.
    here, before = text[d.span.start:], text[:d.span.start].rstrip()
    assert here.startswith(at) or before.endswith(at + ":"), (here[:20], at)


def test_data_layer_both_force_flags_warn():
    g = _compile_text('layer { name: "d" type: "Data" top: "data" top: "label" transform_param { force_color: true '
                      'force_gray: true } data_param { source: "db" batch_size: 4 } }', inputs={"data": (4, 3, 8, 8)})
    d = _one(g, "W413")
    assert "force_color and force_gray" in d.message and not g.diagnostics.has_errors


def test_a_pooling_kernel_larger_than_a_placeholder_input_is_a_warning(tmp_path, capsys):
    """A deploy file whose input is a 1x1 placeholder set at run time (issue 11): Caffe's
    PoolingLayer checks no size against the kernel, so the file loads; 0 windows is a size Caffe
    accepts (only a negative one fails Blob::Reshape). netdef warns (W414) and goes on."""
    from netdef.cli import main
    path = tmp_path / "deploy.prototxt"
    path.write_text('''name: "placeholder"
input: "data"
input_shape { dim: 1 dim: 3 dim: 1 dim: 1 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 7 stride: 2 pad: 3 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "pool1" top: "pool2" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool2" top: "fc" inner_product_param { num_output: 10 } }
''')
    assert main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning[W414]: the kernel of pooling layer 'pool1' is larger than its padded input" in err
    assert "Caffe computes 0 x 0 windows" in err and "error" not in err
    # Caffe's sizes: conv1 (1 + 6 - 7) / 2 + 1 = 1; pool1 ceil((1 - 3) / 2) + 1 = 0; pool2
    # ceil((0 - 2) / 2) + 1 = 0; fc sees 8 x 0 x 0 = 0 inputs.
    assert main(["summary", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [doc["blobs"][b]["shape"] for b in ("conv1", "pool1", "pool2", "fc")] == \
        [[1, 8, 1, 1], [1, 8, 0, 0], [1, 8, 0, 0], [1, 10]]
    # With the real size given, no warning.
    assert main(["check", str(path), "--input", "data=1,3,224,224"]) == 0
    assert "W414" not in capsys.readouterr().err
