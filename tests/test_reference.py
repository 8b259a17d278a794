"""The NumPy reference forward pass against the blobs real Caffe computed.

Every conformance layer case and net: blobs.npz / io.npz hold what BVLC Caffe produced with the
stored weights; the reference must reproduce every blob within 1e-4 relative error.
"""
import json

import numpy as np
import pytest
from conftest import case_file, CONFORMANCE, DATA

import netdef
from netdef.proto import pb
from netdef.reference import ReferenceError, forward, included, trace
from netdef.weights import read_caffemodel

TOL = 1e-4
LAYER_CASES = sorted(p.parent for p in CONFORMANCE.glob("layers/*/net.prototxt"))
NET_CASES = sorted(p.parent for p in CONFORMANCE.glob("nets/*/blobs.json"))


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _weights(case):
    path = case_file(case, "weights.caffemodel") if case.parent.name == "nets" else case / "weights.caffemodel"
    return {lw.name: lw.blobs for lw in read_caffemodel(path)} if path.exists() else {}


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda p: p.name)
def test_layer_case(case):
    parsed = netdef.load(str(case / "net.prototxt"))
    assert not parsed.diagnostics.has_errors
    stored = np.load(case / "blobs.npz")
    inputs = {k: stored[k] for k in json.loads((case / "inputs.json").read_text())}
    blobs = forward(parsed.message, _weights(case), inputs)
    names = [k for k in stored.files if "_split_" not in k]
    assert names
    for name in names:
        assert blobs[name].shape == stored[name].shape, name
        assert rel_err(blobs[name], stored[name]) < TOL, name


@pytest.mark.parametrize("case", NET_CASES, ids=lambda p: p.name)
def test_net_case(case):
    meta = json.loads((case / "blobs.json").read_text())
    parsed = netdef.load(str(DATA / meta["prototxt"]))
    io = np.load(case_file(case, "io.npz"))
    # Samples are independent at TEST time: two of the batch keep the test fast and still
    # cover every layer; the stored statistics need the whole batch, so only shapes are
    # compared for the intermediate blobs.
    keep = 2
    inputs = {k: io[k][:keep] for k in meta["inputs"]}
    blobs = forward(parsed.message, _weights(case), inputs)
    for name in meta["outputs"]:
        assert rel_err(blobs[name], io[name][:keep]) < TOL, name
    for name, stats in meta["blobs"].items():
        if name in blobs and "_split_" not in name:
            assert list(blobs[name].shape[1:]) == stats["shape"][1:], name


def test_net_case_statistics_full_batch():
    # One small net run on its full batch: every intermediate blob's mean and l2 norm match the
    # statistics Caffe recorded.
    case = CONFORMANCE / "nets/bvlc_cifar10_cifar10_full"
    meta = json.loads((case / "blobs.json").read_text())
    parsed = netdef.load(str(DATA / meta["prototxt"]))
    io = np.load(case_file(case, "io.npz"))
    blobs = forward(parsed.message, _weights(case), {k: io[k] for k in meta["inputs"]})
    checked = 0
    for name, stats in meta["blobs"].items():
        if name not in blobs:
            continue
        v = blobs[name].astype(np.float64)
        assert list(v.shape) == stats["shape"]
        assert abs(np.linalg.norm(v) - stats["l2"]) <= TOL * max(1.0, stats["l2"]), name
        np.testing.assert_allclose(v.ravel()[:len(stats["first"])], stats["first"], rtol=1e-4, atol=1e-5)
        checked += 1
    assert checked >= 8


NET = """
name: "rules"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }
layer { name: "train_only" type: "ReLU" bottom: "data" top: "t" include { phase: TRAIN } }
layer { name: "staged" type: "AbsVal" bottom: "data" top: "s" include { phase: TEST stage: "deploy" } }
layer { name: "not_deploy" type: "TanH" bottom: "data" top: "n" exclude { stage: "deploy" } }
layer { name: "lvl" type: "Sigmoid" bottom: "data" top: "l" include { min_level: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "data" top: "loss" }
"""


def _parse(text):
    from netdef.parse import parse_text
    from netdef.source import Source
    return parse_text(Source(text, "rules.prototxt"), "net").message


def test_net_state_rules():
    net = _parse(NET)
    x = {"data": np.array([[-1.0, 2.0]], np.float32)}
    ran = [s.layer for s in trace(net, {}, x)]
    assert ran == ["data", "not_deploy"]                # the loss is dropped from a forward pass
    ran = [s.layer for s in trace(net, {}, x, stages=("deploy",), level=3)]
    assert ran == ["data", "staged", "lvl"]
    layers = {layer.name: layer for layer in net.layer}
    assert included(layers["train_only"], pb.TRAIN) and not included(layers["train_only"], pb.TEST)


def test_unknown_type_and_missing_input():
    net = _parse('layer { name: "data" type: "Input" top: "data" }\n'
                 'layer { name: "odd" type: "MyCustom" bottom: "data" top: "y" }\n')
    with pytest.raises(ReferenceError, match="odd"):
        forward(net, {}, {"data": np.zeros((1, 2), np.float32)})
    with pytest.raises(ReferenceError, match="no value given"):
        forward(net, {}, {})


def test_argmax_ties_go_to_the_larger_index():
    # std::partial_sort with std::greater<pair<value, index>>.
    net = _parse('layer { name: "data" type: "Input" top: "data" }\n'
                 'layer { name: "am" type: "ArgMax" bottom: "data" top: "am" argmax_param { top_k: 2 out_max_val: true } }\n')
    out = forward(net, {}, {"data": np.array([[3, 1, 3, 2]], np.float32)})["am"]
    np.testing.assert_array_equal(out.reshape(2, 2), [[2, 0], [3, 3]])
