"""netdef against what an SSD-derived Caffe fork computed (brocolli-caffe 9.0.2, CPU pycaffe).

tests/data/conformance/ssd_fork/<case>/ holds net.prototxt, blobs.npz (every input and every
blob after a TEST forward) and, where the layer has learned blobs, weights.caffemodel; they were
written by tools/gen/ssd_fork_cases.py run with that Caffe (see the README there). For each case
netdef's shape pass, its NumPy reference and the onnxruntime run of its ONNX export must
reproduce every stored blob: the shapes exactly, the values within 1e-4 relative error
(max |a-b| / max(1, max |b|)), as for the BVLC cases in test_reference.py and test_export.py.
The oracle is not needed to run these tests.
"""
import json

import numpy as np
import pytest
from conftest import CONFORMANCE

import netdef
from netdef.diagnostics import DiagnosticError
from netdef.export.onnx import export
from netdef.reference import forward
from netdef.weights import read_caffemodel

from test_export import run_every_value
from test_reference import rel_err

TOL = 1e-4
ROOT = CONFORMANCE / "ssd_fork"
CASES = sorted(p.parent for p in ROOT.glob("*/blobs.npz"))
# Geometries the fork does not run (tools/gen/ssd_fork_cases.py refused_cases): net.prototxt and
# caffe.json, what its `caffe time` said (whether the net loaded, the Check that failed, the top
# shapes it logged).
REFUSED = sorted(p.parent for p in ROOT.glob("*/caffe.json"))

# Cases netdef does not export on purpose: the export must refuse them with a diagnostic that
# says why (text expected in it); the NumPy reference still covers them.
EXPORT_REFUSED = {"detection_output_per_class_loc": "share_location: false"}


def _inputs(case, stored):
    parsed = netdef.load(str(case / "net.prototxt"))
    names = [l.top[0] for l in parsed.message.layer if l.type == "Input"]
    return parsed, {k: stored[k] for k in names}


def _weights(case):
    path = case / "weights.caffemodel"
    return {lw.name: lw.blobs for lw in read_caffemodel(path)} if path.exists() else {}


def _outputs(stored, inputs):
    return [k for k in stored.files if k not in inputs]


def test_cases_present():
    kinds = {c.name.split("_")[0] for c in CASES}
    assert {"priorbox", "detection", "normalize", "permute", "relu6", "hardswish", "conv"} <= kinds
    assert len(CASES) >= 25
    assert len(REFUSED) >= 4 and set(CASES).isdisjoint(REFUSED)
    assert sorted(p.parent for p in ROOT.glob("*/net.prototxt")) == sorted(CASES + REFUSED)


@pytest.mark.parametrize("case", REFUSED, ids=lambda p: p.name)
def test_refused(case):
    """Where the fork aborts while loading the net, netdef reports E402; where it loads the net
    (and its forward then aborts on an empty top), netdef accepts it with a warning and gives the
    top shapes the fork logged."""
    caffe = json.loads((case / "caffe.json").read_text())
    assert caffe["check_failed"] and not caffe["forward_ran"]
    g = netdef.compile(str(case / "net.prototxt"))
    found = {d.code for d in g.diagnostics}
    if caffe["loads"]:
        assert not g.diagnostics.has_errors and "W416" in found, found
        for name, shape in caffe["top_shapes"].items():
            assert tuple(g.blob(name).shape) == tuple(shape), name
    else:
        assert g.diagnostics.has_errors and "E402" in found, found
        assert "conv" not in caffe["top_shapes"] and g.blob("conv").shape is None


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_shapes(case):
    stored = np.load(case / "blobs.npz")
    _, inputs = _inputs(case, stored)
    g = netdef.compile(str(case / "net.prototxt"), inputs={k: v.shape for k, v in inputs.items()})
    assert not g.diagnostics.has_errors
    for name in _outputs(stored, inputs):
        shape = tuple(g.blob(name).shape)
        if name == "det":
            # The row count depends on the data: Caffe's Reshape sets one row, netdef reports that.
            assert shape == (1, 1, 1, 7), name
        else:
            assert shape == stored[name].shape, name


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_reference(case):
    stored = np.load(case / "blobs.npz")
    parsed, inputs = _inputs(case, stored)
    assert not parsed.diagnostics.has_errors
    blobs = forward(parsed.message, _weights(case), inputs, loc=parsed.loc)
    outputs = _outputs(stored, inputs)
    assert outputs
    for name in outputs:
        assert blobs[name].shape == stored[name].shape, name
        assert rel_err(blobs[name], stored[name]) < TOL, name


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "nofold"])
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_export(case, fold):
    w = case / "weights.caffemodel"
    if case.name in EXPORT_REFUSED:
        with pytest.raises(DiagnosticError, match=EXPORT_REFUSED[case.name]) as e:
            export(str(case / "net.prototxt"), str(w) if w.exists() else None, fold=fold)
        assert "E510" in str(e.value)
        return
    ex = export(str(case / "net.prototxt"), str(w) if w.exists() else None, fold=fold)
    stored = np.load(case / "blobs.npz")
    feed = {i.name: stored[i.name] for i in ex.skeleton.graph.input}
    values = run_every_value(ex, feed)
    compared = set()
    for name in stored.files:
        if values.get(name) is None:
            continue
        assert values[name].shape == stored[name].shape, name
        assert rel_err(values[name], stored[name]) < TOL, name
        compared.add(name)
    assert {o.name for o in ex.skeleton.graph.output} <= compared
    assert set(_outputs(stored, feed)) <= compared
