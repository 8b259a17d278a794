"""Layer cases beyond the shared conformance set (recurrent layers, Embed, fork layers, edge
parameters), computed by the real Caffe with tests/data/export/make_cases.py. Both the NumPy
reference and the exported model (folding on and off) must reproduce every stored blob."""
import json
from pathlib import Path

import numpy as np
import pytest

import netdef
from netdef.export.onnx import export
from netdef.export.verify import rel_error, with_every_value
from netdef.reference import forward
from netdef.weights import read_caffemodel

DATA = Path(__file__).resolve().parent / "data" / "export"
CASES = sorted(p.parent for p in DATA.glob("*/blobs.npz"))
TOL = 1e-4


def _weights(case):
    w = case / "weights.caffemodel"
    return str(w) if w.exists() else None


def test_cases_are_present():
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_reference(case):
    parsed = netdef.load(str(case / "net.prototxt"))
    stored = np.load(case / "blobs.npz")
    names = json.loads((case / "inputs.json").read_text())
    w = {lw.name: lw.blobs for lw in read_caffemodel(case / "weights.caffemodel")} if _weights(case) else {}
    blobs = forward(parsed.message, w, {k: stored[k] for k in names}, loc=parsed.loc)
    for name in stored.files:
        if "_split_" in name:          # the Split layers Caffe inserts for fan-out
            continue
        assert blobs[name].shape == stored[name].shape, name
        assert rel_error(blobs[name], stored[name]) < TOL, name


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "nofold"])
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_export(case, fold):
    import onnxruntime as ort
    ex = export(str(case / "net.prototxt"), _weights(case), fold=fold)
    stored = np.load(case / "blobs.npz")
    model, names = with_every_value(ex)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = {i.name: stored[i.name] for i in sess.get_inputs()}
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
    graph = ex.exporter.graph
    compared = 0
    for name in stored.files:
        nm = names.get(id(graph.blob(name)))
        if nm is None or nm not in outs:
            continue
        assert outs[nm].shape == stored[name].shape, name
        assert rel_error(outs[nm], stored[name]) < TOL, name
        compared += 1
    assert compared >= len(ex.skeleton.graph.output)


def test_init_is_what_caffe_loaded(tmp_path):
    # The committed weights were written by `netdef init --seed 7` and loaded by Caffe to make
    # this case's blobs: netdef must still write them byte for byte.
    from netdef.cli import main
    case = DATA / "init_weights_loaded_by_caffe"
    out = tmp_path / "w.caffemodel"
    assert main(["init", str(case / "net.prototxt"), "-o", str(out), "--seed", "7"]) == 0
    assert out.read_bytes() == (case / "weights.caffemodel").read_bytes()


def test_normalize_shared_scale_has_no_axes(tmp_path):
    # SSD's NormalizeLayer keeps a shared scale as a blob with no axes (vector<int>(0)), as Caffe
    # saved it in normalize_shared: the analysis and `netdef init` say the same.
    import netdef
    from netdef.cli import main
    case = DATA / "normalize_shared"
    [stored] = read_caffemodel(case / "weights.caffemodel")["norm"].blobs
    assert stored.shape == ()
    graph = netdef.compile(str(case / "net.prototxt"))
    assert [tuple(s) for s in graph.node("norm").meta["blobs"]] == [()]
    out = tmp_path / "w.caffemodel"
    assert main(["init", str(case / "net.prototxt"), "-o", str(out)]) == 0
    [made] = read_caffemodel(out)["norm"].blobs
    assert made.shape == () and float(made) == 3.0          # its constant filler
