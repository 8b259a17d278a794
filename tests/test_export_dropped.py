"""Layers that read what a training-only layer computes are left out of the export with it
(W518), transitively; the "becomes an output" notes name only blobs the model computes; and a
model whose wiring onnx.checker rejects is never written (an internal error, exit 3, no file).
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import ZOO_WILD

from netdef import codes
from netdef.cli import main

# TRAIN phase: ip -> CosinAddm (training-only, xialuxi/arcface-caffe) -> Scale -> Eltwise with a
# kept branch -> SoftmaxWithLoss. Only ip and side can be computed without the labels.
MARGIN_NET = """name: "margin"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 8 } shape { dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "side" type: "InnerProduct" bottom: "data" top: "side"
        inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "arc" type: "CosinAddm" bottom: "ip" bottom: "label" top: "margin" cosin_add_m_param { m: 0.5 } }
layer { name: "s" type: "Scale" bottom: "margin" top: "scaled" scale_param { filler { value: 64 } } }
layer { name: "mix" type: "Eltwise" bottom: "scaled" bottom: "side" top: "mixed" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "mixed" bottom: "label" top: "loss" }
"""

# Accuracy in the TRAIN phase, a Power on its top, and a loss on that: only ip stays.
ACCURACY_NET = """name: "acc"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 3 dim: 5 } shape { dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 6 weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.5 } } }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" include { phase: TRAIN } }
layer { name: "neg" type: "Power" bottom: "acc" top: "err" power_param { scale: -1 shift: 1 } }
layer { name: "err_loss" type: "EuclideanLoss" bottom: "err" bottom: "err" top: "err_loss" }
"""

# Nothing but the training-only chain: no output is left.
EMPTY_NET = """name: "empty"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 4 } shape { dim: 2 } } }
layer { name: "arc" type: "CosinAddm" bottom: "data" bottom: "label" top: "margin" cosin_add_m_param { m: 0.5 } }
layer { name: "s" type: "Scale" bottom: "margin" top: "scaled" scale_param { filler { value: 64 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "scaled" bottom: "label" top: "loss" }
"""


def _write(tmp_path, text):
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    return str(p)


def _codes_and_notes(err):
    """{layer name: (code, [notes])} from the text diagnostics of W511/W518."""
    found, last = {}, None
    for line in err.splitlines():
        for code in ("W511", "W518"):
            if f"warning[{code}]: layer '" in line:
                last = line.split("layer '")[1].split("'")[0]
                found[last] = (code, [], line)
        if line.startswith("note: ") and last is not None:
            found[last][1].append(line[len("note: "):])
        elif not line.startswith(" ") and "warning[" not in line:
            last = None
    return found


def test_dependents_of_a_training_only_layer_are_left_out(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", _write(tmp_path, MARGIN_NET), "--phase", "TRAIN", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    found = _codes_and_notes(err)
    assert {k: v[0] for k, v in found.items()} == {"arc": "W511", "s": "W518", "mix": "W518", "loss": "W511"}
    assert "layer 's' (Scale) is left out of the exported graph: its input 'margin' comes from the " \
           "training-only layer 'arc' (CosinAddm)" in found["s"][2]
    assert "layer 'mix' (Eltwise) is left out of the exported graph: its input 'scaled' comes from 's' " \
           "(Scale), itself left out: it depends on the training-only layer 'arc' (CosinAddm)" in found["mix"][2]
    # The notes name the blobs the model really outputs, nothing a left-out layer computes.
    assert found["arc"][1] == ["'ip' becomes an output of the exported graph"]
    assert found["mix"][1] == ["'side' becomes an output of the exported graph"]
    assert found["s"][1] == [] and found["loss"][1] == []
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] == ["ip", "side"]
    assert sorted(n.op_type for n in model.graph.node) == ["Gemm", "Gemm"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    ip, side = sess.run(None, {"data": x})
    # Each output is data @ W^T + b with the model's own weights (bias filler: constant 0).
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node, got in zip(model.graph.node, (ip, side)):
        w, b = inits[node.input[1]], inits[node.input[2]]
        assert node.attribute[0].name == "transB" and node.attribute[0].i == 1
        np.testing.assert_allclose(got, x @ w.T + b, rtol=1e-5, atol=1e-6)
        assert not b.any()


def test_verify_compares_what_the_model_computes(tmp_path, capsys):
    # verify analyses the deploy view (the left-out layers removed before analysis): the
    # reference runs only what the model computes, and every blob of it is compared.
    import json
    assert main(["verify", _write(tmp_path, MARGIN_NET), "--phase", "TRAIN", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and sorted(c["layer"] for c in doc["comparisons"]) == ["ip", "side"]
    assert sorted(d["code"] for d in doc["diagnostics"] if d["code"] in ("W511", "W518")) == \
        ["W511", "W511", "W518", "W518"]


def test_accuracy_chain_in_train(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", _write(tmp_path, ACCURACY_NET), "--phase", "TRAIN", "-o", str(out)]) == 0
    found = _codes_and_notes(capsys.readouterr().err)
    assert {k: v[0] for k, v in found.items()} == {"acc": "W511", "neg": "W518", "err_loss": "W511"}
    assert "its input 'acc' comes from the training-only layer 'acc' (Accuracy)" in found["neg"][2]
    assert found["acc"][1] == ["'ip' becomes an output of the exported graph"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["ip"] and [i.name for i in sess.get_inputs()] == ["data"]
    (y,) = sess.run(None, {"data": np.zeros((3, 5), np.float32)})
    np.testing.assert_array_equal(y, np.full((3, 6), 0.5, np.float32))      # zero input: the bias
    # In the TEST phase Accuracy is excluded by its rule, so Power reads a blob nothing computes.
    assert main(["export", _write(tmp_path, ACCURACY_NET), "-o", str(out)]) == 1


def test_nothing_left_is_an_error(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", _write(tmp_path, EMPTY_NET), "--phase", "TRAIN", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E512]: empty has no layer left to export" in err
    assert "warning[W518]: layer 's' (Scale)" in err and "becomes an output" not in err
    assert not out.exists()


def test_outputs_naming_a_left_out_blob_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", _write(tmp_path, MARGIN_NET), "--phase", "TRAIN", "--outputs", "scaled",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--outputs: 'scaled' is computed by 's' (Scale), which the export leaves out: it depends on the " \
           "training-only layer 'arc' (CosinAddm)" in err
    assert not out.exists()
    assert main(["export", _write(tmp_path, MARGIN_NET), "--phase", "TRAIN", "--outputs", "side",
                 "-o", str(out)]) == 0
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["side"]


def test_arcface_train_net_without_outputs(tmp_path, capsys):
    # The real net: CosinAddm -> Scale (fc6_margin_scale) -> FocalLoss, and two Accuracy layers.
    # Before, the Scale was exported as a Mul reading 'fc6_margin', which nothing produced.
    out = tmp_path / "arc.onnx"
    net = ZOO_WILD / "arcface_cosinaddm" / "cosin_add_m.prototxt"
    assert main(["export", str(net), "--phase", "TRAIN", "--input", "data=1,3,112,96", "--input", "label=1",
                 "-o", str(out)]) == 0
    found = _codes_and_notes(capsys.readouterr().err)
    assert {k: v[0] for k, v in found.items()} == {"cosin_add_m": "W511", "fc6_margin_scale": "W518",
                                                   "focal_loss": "W511", "accuracy-t": "W511", "accuracy": "W511"}
    assert "its input 'fc6_margin' comes from the training-only layer 'cosin_add_m'" in found["fc6_margin_scale"][2]
    notes = [n for _, ns, _ in found.values() for n in ns]
    assert set(notes) == {"'fc6' becomes an output of the exported graph"}
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["fc6"] and sess.get_outputs()[0].shape == [1, 10575]   # fc6: num_output 10575
    assert [i.name for i in sess.get_inputs()] == ["data"]


def test_a_model_the_checker_rejects_is_not_written(tmp_path, capsys, monkeypatch):
    # An internal-consistency guard: a lowering that reads a value nothing defines (as the Scale
    # above did) is a bug in netdef: exit 3, the checker's reason, and no file.
    from netdef.layers.activation import ReLU
    net = _write(tmp_path, """layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }
""")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous")
    monkeypatch.setattr(ReLU, "to_onnx", lambda self, node, g: g.op("Relu", ["nowhere"], g.y(0)), raising=False)
    assert main(["export", net, "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "internal error: InvalidModel: the exported model is not valid ONNX, so it was not written: node " \
           "'relu' (Relu) reads 'nowhere', which no graph input, initializer or earlier node defines" in err
    assert "Traceback" not in err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "net.prototxt"]
    # onnx.checker rejects the same model (netdef's guard checks what it checks, without onnx).
    from netdef.export.model import InvalidModel
    from netdef.export.onnx import export
    ex = export(net)
    with pytest.raises(InvalidModel):
        ex.check()
    with pytest.raises(onnx.checker.ValidationError, match="nowhere"):
        onnx.checker.check_model(ex.model(with_weights=False))
    # run and verify hand onnxruntime the same bytes: checked as well.
    with pytest.raises(InvalidModel):
        ex.to_bytes()
    monkeypatch.undo()
    assert main(["export", net, "-o", str(out)]) == 0
    onnx.checker.check_model(onnx.load(str(out)))


def test_the_guard_catches_what_the_checker_does(tmp_path):
    # A value written twice, a graph output nothing computes: both onnx.checker and the guard say no.
    from netdef.export.model import InvalidModel
    from netdef.export.onnx import export
    for breaks, why in [(lambda g: g.node[1].output.__setitem__(0, g.node[0].output[0]), "is defined twice"),
                        (lambda g: g.output[0].__setattr__("name", "ghost"), "graph output 'ghost' is computed by no node")]:
        ex = export("lenet")
        breaks(ex.skeleton.graph)
        with pytest.raises(InvalidModel, match=why):
            ex.write(str(tmp_path / "m.onnx"))
        with pytest.raises(onnx.checker.ValidationError):
            onnx.checker.check_model(ex.model(with_weights=False))
        assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("extra", [[], ["--fp16"], ["--batch", "dynamic"]])
def test_the_guard_passes_valid_models(tmp_path, extra, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "lenet", "-o", str(out)] + extra) == 0
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)


# --- netdef verify reads and compiles the net once ---------------------------------------------

def test_verify_compiles_once(tmp_path, capsys, monkeypatch):
    # Its batch-1 probe's graph is the one verify runs; before, verify parsed and analysed again.
    import netdef.pipeline as pipeline
    calls = {"load": 0, "compile": 0}
    load, compile_net = pipeline.load, pipeline.compile

    def counted(name, fn):
        def run(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return run
    monkeypatch.setattr(pipeline, "load", counted("load", load))
    monkeypatch.setattr(pipeline, "compile", counted("compile", compile_net))
    net = _write(tmp_path, MARGIN_NET.replace("dim: 2 dim: 8 } shape { dim: 2 }", "dim: 1 dim: 8 } shape { dim: 1 }"))
    assert main(["verify", net, "--phase", "TRAIN"]) == 0
    assert "compared 2 blobs" in capsys.readouterr().out
    assert calls == {"load": 1, "compile": 1}
    # A net declared at another batch is analysed at it, then at batch 1 (the probe), once each.
    calls.update(load=0, compile=0)
    assert main(["verify", _write(tmp_path, MARGIN_NET), "--phase", "TRAIN"]) == 0
    assert calls == {"load": 1, "compile": 2}
