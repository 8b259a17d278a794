"""Receptive fields and cost, against independent oracles:
- published receptive field sizes (Araujo, Norris & Sim, "Computing Receptive Fields of
  Convolutional Neural Networks", Distill 2019, table of r for the final feature maps);
- a brute-force tracer below that enumerates which input positions each output reads;
- Caffe's own coord_map.py mapping for Deconvolution/Crop (FCN's crop offsets were derived
  with it, so the final FCN-8s score must sit exactly on the input grid);
- learnable parameter totals quoted in the task (published figures) and MACs recomputed with
  NumPy from the blob and parameter shapes that real Caffe recorded (zoo_shapes.json).
"""
import json
from fractions import Fraction

import numpy as np
import pytest
from conftest import CONFORMANCE, ZOO

import netdef
from netdef.parse import parse_text
from netdef.passes.cost import totals
from netdef.source import Source

ZOO_SHAPES = json.loads((CONFORMANCE / "zoo_shapes.json").read_text())


def _compile_text(text, **kw):
    return netdef.compile(parse_text(Source(text, "t.prototxt"), "net"), **kw)


@pytest.mark.parametrize("path,blob,size,stride", [
    ("bvlc_alexnet/deploy.prototxt", "pool5", 195, 32),
    ("vgg16/deploy.prototxt", "pool5", 212, 32),
    ("resnet50/deploy.prototxt", "res5c", 483, 32),
    ("mobilenet_v1/deploy.prototxt", "conv6/sep", 315, 32),
    ("inception_v3/deploy.prototxt", "inception_c2_concat", 1311, 32),
])
def test_published_receptive_fields(path, blob, size, stride):
    rf = netdef.compile(str(ZOO / path)).blob(blob).meta["rf"]
    assert rf.size == (size, size) and rf.stride == (stride, stride)


def _trace(layers, n_out=3):
    """Brute force, one axis: for output positions 0..n_out-1, the input positions (virtual
    ones in the padding included) that each depends on, by enumerating every window tap."""
    deps = [{o} for o in range(n_out)]
    for kind, k, s, p, d in reversed(layers):
        new = []
        for ds in deps:
            src = set()
            for o in ds:
                if kind == "conv":
                    src.update(o * s - p + j * d for j in range(k))
                else:  # deconv: output o receives input i wherever o == i*s - p + j*d
                    src.update((o + p - j * d) // s for j in range(k) if (o + p - j * d) % s == 0)
            new.append(src)
        deps = new
    return deps


@pytest.mark.parametrize("layers", [
    [("conv", 3, 1, 1, 1), ("conv", 3, 2, 0, 1), ("conv", 5, 1, 2, 2), ("conv", 2, 2, 0, 1)],
    [("conv", 7, 2, 3, 1), ("conv", 3, 2, 1, 1), ("conv", 1, 1, 0, 1), ("conv", 3, 1, 1, 3)],
    [("conv", 4, 4, 0, 1), ("conv", 3, 1, 0, 2), ("conv", 2, 1, 1, 1)],
])
def test_rf_matches_brute_force(layers):
    text = ['layer { name: "in" type: "Input" top: "x0" input_param { shape { dim: 1 dim: 1 dim: 200 dim: 1 } } }']
    for i, (kind, k, s, p, d) in enumerate(layers, 1):
        if i % 2:
            text.append(f'layer {{ name: "l{i}" type: "Convolution" bottom: "x{i - 1}" top: "x{i}" convolution_param {{ '
                        f'num_output: 1 kernel_h: {k} kernel_w: 1 stride_h: {s} stride_w: 1 pad_h: {p} pad_w: 0 '
                        f'dilation: {d} }} }}')
        else:  # the same window as a pooling layer (dilation 1 only)
            text.append(f'layer {{ name: "l{i}" type: "Pooling" bottom: "x{i - 1}" top: "x{i}" pooling_param {{ '
                        f'kernel_h: {k} kernel_w: 1 stride_h: {s} stride_w: 1 pad_h: {p} pad_w: 0 }} }}')
            layers[i - 1] = (kind, k, s, p, 1)
    g = _compile_text("\n".join(text))
    rf = g.blob(f"x{len(layers)}").meta["rf"]
    deps = _trace(layers)
    assert rf.size[0] == max(deps[0]) - min(deps[0]) + 1
    assert rf.center[0] == Fraction(max(deps[0]) + min(deps[0]), 2)
    assert rf.stride[0] == min(deps[1]) - min(deps[0])


def test_deconvolution_rf_follows_caffe_coord_map():
    g = _compile_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 16 dim: 16 } } }\n'
                      'layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 1 kernel_size: 3 stride: 2 } }\n'
                      'layer { name: "u" type: "Deconvolution" bottom: "c" top: "u" convolution_param { num_output: 1 kernel_size: 4 stride: 2 pad: 1 } }')
    c, u = g.blob("c").meta["rf"], g.blob("u").meta["rf"]
    # coord_map.py: a deconvolution maps input coordinate x to s*x + (k-1)/2 - p, so output 0 sits
    # at input coordinate (p - (k-1)/2)/s = -1/4 of c's grid, whose step is 2 input pixels.
    assert u.stride == (1, 1)
    assert u.center[0] == c.center[0] + Fraction(-1, 4) * c.stride[0]
    # each output reads ceil(4/2) = 2 positions of c (brute force: output 0 reads c[-1] and c[0])
    assert _trace([("deconv", 4, 2, 1, 1)], 1)[0] == {-1, 0}
    assert u.size[0] == c.size[0] + c.stride[0]


def test_fcn8s_crops_align_with_the_input():
    g = netdef.compile(str(ZOO / "fcn8s_voc" / "deploy.prototxt"))
    rf = g.blob("score").meta["rf"]
    assert rf.stride == (1, 1) and rf.center == (0, 0)
    assert not [d for d in g.diagnostics if d.code == "W412"]


def test_branches_that_disagree_warn():
    g = _compile_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 9 dim: 9 } } }\n'
                      'layer { name: "a" type: "Convolution" bottom: "x" top: "a" convolution_param { num_output: 1 kernel_size: 3 pad: 1 } }\n'
                      'layer { name: "b" type: "Convolution" bottom: "x" top: "b" convolution_param { num_output: 1 kernel_size: 3 pad: 0 } }\n'
                      'layer { name: "bp" type: "Pooling" bottom: "b" top: "bp" pooling_param { kernel_size: 1 pad: 0 } }\n'
                      'layer { name: "cat" type: "Concat" bottom: "a" bottom: "x" top: "cat" }\n'
                      'layer { name: "crop" type: "Crop" bottom: "a" bottom: "b" top: "ac" crop_param { offset: 1 } }\n'
                      'layer { name: "sum" type: "Eltwise" bottom: "ac" bottom: "b" top: "sum" }\n'
                      'layer { name: "bad" type: "Concat" bottom: "a" bottom: "a" bottom: "x" top: "bad" concat_param { axis: 1 } }\n'
                      'layer { name: "w" type: "Crop" bottom: "a" bottom: "b" top: "wc" crop_param { offset: 0 } }\n'
                      'layer { name: "mis" type: "Eltwise" bottom: "wc" bottom: "b" top: "mis" }')
    assert g.blob("cat").meta["rf"].size == (3, 3)  # the largest branch
    warned = {d.message.split("'")[1] for d in g.diagnostics if d.code == "W412"}
    assert warned == {"mis"}  # crop offset 1 realigns 'a' with 'b'; offset 0 does not


def test_global_pooling_and_inner_product_see_everything():
    g = netdef.compile(str(ZOO / "bvlc_googlenet" / "deploy.prototxt"))
    assert not g.blob("inception_5b/output").meta["rf"].whole
    assert g.blob("loss3/classifier").meta["rf"].whole
    g = netdef.compile(str(ZOO / "squeezenet_v1.1" / "deploy.prototxt"))
    assert g.blob("pool10").meta["rf"].whole


# --- cost ----------------------------------------------------------------------------------

PARAMS = {  # learnable parameters, as quoted for each network
    "bvlc_alexnet/deploy.prototxt": 60_965_224,
    "vgg16/deploy.prototxt": 138_357_544,
    "bvlc_googlenet/deploy.prototxt": 6_998_552,
    "squeezenet_v1.1/deploy.prototxt": 1_235_496,
    "mobilenet_v1/deploy.prototxt": 4_231_976,
    "densenet121/deploy.prototxt": 7_978_856,
    "resnet50/deploy.prototxt": 25_557_096,
}


def _numpy_macs(info, g):
    """MACs from Caffe's recorded shapes: a convolution does prod(output) x prod(weight[1:])
    multiply-accumulates (weight (O, C/g, k...) already divides by the group), an
    InnerProduct N x prod(weight)."""
    total = 0
    for layer, shapes in info["params"].items():
        node = g.node(layer)
        w = np.array(shapes[0], dtype=np.int64)
        top = np.array(info["blobs"][node.param.top[0]], dtype=np.int64)
        if node.type == "Convolution":
            total += int(np.prod(top)) * int(np.prod(w[1:]))
        elif node.type == "InnerProduct":
            total += int(top[0]) * int(np.prod(w))
    return total


@pytest.mark.parametrize("path", sorted(PARAMS))
def test_parameter_and_mac_totals(path):
    g = netdef.compile(str(ZOO / path))
    t = totals(g)
    assert t["params"] == PARAMS[path]
    assert t["macs"] == _numpy_macs(ZOO_SHAPES[path], g)


def test_known_mac_counts():
    per_image = {}
    for path in ("vgg16/deploy.prototxt", "resnet50/deploy.prototxt"):
        g = netdef.compile(str(ZOO / path))
        per_image[path] = totals(g)["macs"] / g.batch_size
    assert per_image["vgg16/deploy.prototxt"] == pytest.approx(15.5e9, rel=0.01)
    # KaimingHe's ResNet-50 strides in the first 1x1 convolution of a stage: 3.86 G
    # (the paper's "3.8 x 10^9 FLOPs" counts multiply-adds).
    assert per_image["resnet50/deploy.prototxt"] == pytest.approx(3.86e9, rel=0.01)


def test_batchnorm_statistics_reported_apart():
    g = netdef.compile(str(ZOO / "resnet50" / "deploy.prototxt"))
    t = totals(g)
    bn = [n for n in g.nodes if n.type == "BatchNorm"]
    assert t["stat_params"] == sum(2 * n.outputs[0].meta["shape"][1] + 1 for n in bn)
    assert all(n.meta["params"] == [] for n in bn)


def test_group_and_dilation_aware_macs_and_memory():
    g = _compile_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 8 dim: 10 dim: 10 } } }\n'
                      'layer { name: "dw" type: "Convolution" bottom: "x" top: "dw" convolution_param { num_output: 8 '
                      'kernel_size: 3 group: 8 dilation: 2 bias_term: false } }\n'
                      'layer { name: "r" type: "ReLU" bottom: "dw" top: "dw" }\n'
                      'layer { name: "up" type: "Deconvolution" bottom: "dw" top: "up" convolution_param { num_output: 4 '
                      'kernel_size: 2 stride: 2 group: 2 } }')
    dw, up, r = g.node("dw"), g.node("up"), g.node("r")
    # dilated 3x3 (extent 5) on 10x10: 6x6 outputs; each reads 1 channel x 9 taps
    assert g.blob("dw").meta["shape"] == (2, 8, 6, 6)
    assert dw.meta["cost"]["macs"] == 2 * 8 * 6 * 6 * 9
    # deconvolution scatters every input element through (4/2) x 2x2 taps
    assert up.meta["cost"]["macs"] == 2 * 8 * 6 * 6 * 2 * 4
    assert up.meta["cost"]["flops"] == 2 * up.meta["cost"]["macs"] + 2 * 4 * 12 * 12
    assert r.meta["cost"]["activation_bytes"] == 0  # in place
    assert dw.meta["cost"]["activation_bytes"] == 2 * 8 * 6 * 6 * 4
    assert totals(g)["activation_bytes"] == 4 * (2 * 8 * 10 * 10 + 2 * 8 * 6 * 6 + 2 * 4 * 12 * 12)


def test_shared_parameters_counted_once():
    g = netdef.compile(str(ZOO / "bvlc_siamese" / "mnist_siamese_train_test.prototxt"), phase="TRAIN",
                       inputs={"pair_data": (64, 2, 28, 28), "sim": (64,)})
    one_branch = netdef.compile(str(ZOO / "bvlc_siamese" / "mnist_siamese.prototxt"))
    assert totals(g)["params"] == totals(one_branch)["params"]


BUNDLED_PUBLISHED = {  # published learnable-parameter counts cited in each bundled file's header
    "lenet": 431_080, "mlp": 669_706, "alexnet": 60_965_224, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "googlenet": 6_998_552, "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_096,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "densenet121": 7_978_856, "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496, "mobilenet_v1": 4_231_976,
}


@pytest.mark.parametrize("name", sorted(BUNDLED_PUBLISHED))
def test_bundled_nets_match_published_counts(name):
    g = netdef.compile(name)
    assert not g.diagnostics.has_errors
    assert all("shape" in v.meta for v in g.values)
    assert totals(g)["params"] == BUNDLED_PUBLISHED[name]


def test_inception_v3_train_graph_with_auxiliary_head():
    # torchvision's Inception-v3 count (27,161,264) includes the auxiliary classifier.
    assert totals(netdef.compile("inception_v3", phase="TRAIN"))["params"] == 27_161_264
