"""ONNX export against what real Caffe computed, and the model's validity.

Oracle: conformance/ blobs from BVLC Caffe with the stored weights. The exported model, run by
onnxruntime, must reproduce every stored blob that survives export within 1e-4 relative error
(max |a-b| / max(1, max |b|)), with folding on and off.
"""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import case_file, CONFORMANCE, DATA

from netdef import codes
from netdef.diagnostics import DiagnosticError
from netdef.export.onnx import export, ir_version_for
from netdef.export.verify import rel_error, with_every_value

TOL = 1e-4
LAYER_CASES = sorted(p.parent for p in CONFORMANCE.glob("layers/*/net.prototxt"))
NET_CASES = sorted(p.parent for p in CONFORMANCE.glob("nets/*/blobs.json"))


def _weights(case):
    w = case / "weights.caffemodel"
    return str(w) if w.exists() else None


def _session(model_bytes):
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def run_every_value(ex, feed):
    """blob name -> the value onnxruntime computed for the blob's final version (None if that
    value does not exist in the exported graph)."""
    model, names = with_every_value(ex)
    sess = _session(model)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
    graph = ex.exporter.graph
    result = {}
    for name in graph.blob_names:
        nm = names.get(id(graph.blob(name)))
        result[name] = outs.get(nm, feed.get(nm)) if nm is not None else None
    return result


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "nofold"])
@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda p: p.name)
def test_layer_case(case, fold):
    ex = export(str(case / "net.prototxt"), _weights(case), fold=fold)
    stored = np.load(case / "blobs.npz")
    feed = {i.name: stored[i.name] for i in ex.skeleton.graph.input}
    values = run_every_value(ex, feed)
    outputs = {o.name for o in ex.skeleton.graph.output}
    compared = set()
    for name in stored.files:
        if "_split_" in name or values.get(name) is None:
            continue
        assert values[name].shape == stored[name].shape, name
        err = rel_error(values[name], stored[name])
        assert err < TOL, f"{name}: relative error {err:.3g}"
        compared.add(name)
    assert outputs <= compared


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "nofold"])
@pytest.mark.parametrize("case", NET_CASES, ids=lambda p: p.name)
def test_net_case(case, fold):
    meta = json.loads((case / "blobs.json").read_text())
    ex = export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel")), fold=fold)
    if not fold and not any(n.type in ("BatchNorm", "Scale") for n in ex.exporter.graph.nodes):
        # Nothing to fold: both exports are the same model, which the fold run checks.
        assert ex.to_bytes() == export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel"))).to_bytes()
        return
    io = np.load(case_file(case, "io.npz"))
    feed = {k: io[k] for k in meta["inputs"]}
    values = run_every_value(ex, feed)
    for name in meta["outputs"]:
        assert rel_error(values[name], io[name]) < TOL, name
    # Intermediate blobs: Caffe recorded their L2 norms and first values.
    checked = 0
    for name, stats in meta["blobs"].items():
        v = values.get(name)
        if v is None or "_split_" in name:
            continue
        assert list(v.shape) == stats["shape"], name
        assert abs(float(np.linalg.norm(v.astype(np.float64))) - stats["l2"]) <= 1e-4 * max(1.0, stats["l2"]), name
        np.testing.assert_allclose(v.ravel()[:len(stats["first"])], stats["first"], rtol=1e-3, atol=1e-4 * max(1, abs(stats["max"])))
        checked += 1
    assert checked >= len(meta["outputs"])
    if fold and any(t in {"BatchNorm", "Scale"} for t in (n.op_type for n in ex.skeleton.graph.node)):
        pytest.fail("folding left BatchNorm/Scale nodes")


def test_folding_removes_batchnorm_and_scale():
    case = CONFORMANCE / "nets/mobilenet_v1"
    meta = json.loads((case / "blobs.json").read_text())
    ops_fold = [n.op_type for n in export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel"))).skeleton.graph.node]
    ops_keep = [n.op_type for n in export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel")),
                                          fold=False).skeleton.graph.node]
    assert "BatchNormalization" not in ops_fold and "Mul" not in ops_fold
    assert ops_keep.count("BatchNormalization") == ops_fold.count("Conv") - 1   # all but the classifier


def _inferred_shapes(model):
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        dims = vi.type.tensor_type.shape.dim
        out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
    return out


def _check_and_compare_shapes(ex, with_weights=True):
    model = ex.model(with_weights=with_weights)
    onnx.checker.check_model(model, full_check=True)
    shapes = _inferred_shapes(model)
    names = ex.value_map()
    compared = 0
    for v in ex.exporter.graph.values:
        nm = names.get(id(v))
        if nm is None or nm not in shapes or v.meta.get("shape") is None:
            continue
        want = tuple("batch" if d else s for s, d in zip(v.meta["shape"], ex.exporter.dyn_of(v)))
        assert shapes[nm] == want, f"{v.label}: ONNX infers {shapes[nm]}, netdef {want}"
        compared += 1
    return compared


@pytest.mark.parametrize("case", LAYER_CASES + NET_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_checker_and_shape_inference_agree(case):
    if case.parent.name == "nets":
        meta = json.loads((case / "blobs.json").read_text())
        ex = export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel")), fold=False)
    else:
        ex = export(str(case / "net.prototxt"), _weights(case), fold=False)
    assert _check_and_compare_shapes(ex) >= len(ex.skeleton.graph.output)


def test_dynamic_batch_shapes_are_symbolic():
    case = CONFORMANCE / "layers/ip_axis2"
    ex = export(str(case / "net.prototxt"), _weights(case), batch="dynamic")
    assert _check_and_compare_shapes(ex) >= 2
    assert ex.skeleton.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("opset", [13, 15, 18, 21])
@pytest.mark.parametrize("name", ["pool_ave_pad2_k5_s3", "mvn", "reduction_sumsq_mean", "argmax_topk",
                                  "argmax_axis_maxval", "lrn_within", "slice_points", "crop_fcn", "spp", "clip"])
def test_opsets(name, opset):
    case = CONFORMANCE / "layers" / name
    ex = export(str(case / "net.prototxt"), _weights(case), opset=opset)
    model = ex.model()
    assert model.opset_import[0].version == opset and model.ir_version == ir_version_for(opset)
    onnx.checker.check_model(model, full_check=True)
    stored = np.load(case / "blobs.npz")
    sess = _session(ex.to_bytes())
    outs = sess.run(None, {i.name: stored[i.name] for i in sess.get_inputs()})
    for o, v in zip(sess.get_outputs(), outs):
        assert rel_error(v, stored[o.name]) < TOL


def test_ir_versions_load_in_onnxruntime():
    # onnx >= 1.22 stamps IR 11+, which older runtimes refuse; netdef stamps the opset's own.
    assert [ir_version_for(o) for o in (13, 14, 15, 16, 17, 18, 19, 20, 21)] == [7, 7, 8, 8, 8, 8, 9, 9, 10]


def test_deterministic_bytes(tmp_path):
    case = CONFORMANCE / "layers/inception_module"
    a = export(str(case / "net.prototxt"), _weights(case)).to_bytes()
    b = export(str(case / "net.prototxt"), _weights(case)).to_bytes()
    assert a == b
    out = tmp_path / "m.onnx"
    export(str(case / "net.prototxt"), _weights(case)).write(str(out))
    assert out.read_bytes() == a
    # Fillers are seeded: no weights, same seed, same bytes; another seed, other weights.
    c = export(str(case / "net.prototxt"), seed=3).to_bytes()
    assert c == export(str(case / "net.prototxt"), seed=3).to_bytes()
    assert c != export(str(case / "net.prototxt"), seed=4).to_bytes()


def test_names_follow_the_definition():
    case = CONFORMANCE / "layers/inplace_chain"
    ex = export(str(case / "net.prototxt"), _weights(case), fold=False)
    g = ex.skeleton.graph
    # Nodes carry their layer's name; helper nodes of a layer are "layer/op".
    assert [n.name for n in g.node] == ["conv", "relu", "drop"]
    assert [i.name for i in g.input] == ["data"] and [o.name for o in g.output] == ["conv"]
    lrn = CONFORMANCE / "layers/lrn_within"
    nodes = [n.name for n in export(str(lrn / "net.prototxt")).skeleton.graph.node]
    assert nodes[0] == "lrn" and all(n.startswith("lrn/") for n in nodes[1:])


def test_fp16(tmp_path):
    case = CONFORMANCE / "nets/squeezenet_v1.1"
    meta = json.loads((case / "blobs.json").read_text())
    io = np.load(case_file(case, "io.npz"))
    for fp16_io in (False, True):
        ex = export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel")), fp16=True, fp16_io=fp16_io,
                    batch=2)
        model = ex.model()
        onnx.checker.check_model(model, full_check=True)
        io_type = onnx.TensorProto.FLOAT16 if fp16_io else onnx.TensorProto.FLOAT
        assert model.graph.input[0].type.tensor_type.elem_type == io_type
        assert model.graph.output[0].type.tensor_type.elem_type == io_type
        assert {t.data_type for t in model.graph.initializer if t.dims and np.prod(t.dims) > 1} == {onnx.TensorProto.FLOAT16}
        sess = _session(ex.to_bytes())
        dt = np.float16 if fp16_io else np.float32
        out = sess.run(None, {"data": io["data"][:2].astype(dt)})[0]
        assert out.dtype == dt
        assert rel_error(out, io["prob"][:2]) < 5e-3


def test_dynamic_and_fixed_batch():
    case = CONFORMANCE / "nets/mobilenet_v1"
    meta = json.loads((case / "blobs.json").read_text())
    io = np.load(case_file(case, "io.npz"))
    x = np.concatenate([io["data"]] * 3)
    x[1] *= 0.5
    dyn = _session(export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel")), batch="dynamic").to_bytes())
    assert dyn.get_inputs()[0].shape[0] == "batch"
    three = dyn.run(None, {"data": x})[0]
    one = dyn.run(None, {"data": x[:1]})[0]
    assert rel_error(one, io["prob"]) < TOL and rel_error(three[2:], io["prob"]) < TOL
    fixed = _session(export(str(DATA / meta["prototxt"]), str(case_file(case, "weights.caffemodel")), batch=3).to_bytes())
    assert fixed.get_inputs()[0].shape == [3, 3, 224, 224]
    assert rel_error(fixed.run(None, {"data": x})[0], three) < 1e-5


def _write(tmp_path, text, name="net.prototxt"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


TRAIN_NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } shape { dim: 2 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" include { phase: TEST } }
"""


def test_training_only_layers_are_dropped(tmp_path):
    ex = export(_write(tmp_path, TRAIN_NET))
    g = ex.skeleton.graph
    assert [i.name for i in g.input] == ["data"]            # the label feeds only the loss
    assert [o.name for o in g.output] == ["fc"]
    dropped = [d for d in ex.diagnostics if d.code == codes.EXPORT_DROPPED.id]
    assert sorted(d.message.split("'")[1] for d in dropped) == ["acc", "loss"]
    assert any("'fc' becomes an output" in n for d in dropped for n in d.notes)
    assert sorted(d.span.line for d in dropped) == [6, 7]


def test_unsupported_layers_are_diagnosed(tmp_path):
    net = _write(tmp_path, """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }
layer { name: "cols" type: "Im2col" bottom: "data" top: "cols" convolution_param { kernel_size: 3 } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 } }
""")
    with pytest.raises(DiagnosticError) as e:
        export(net)
    errors = [d for d in e.value.diagnostics if d.is_error]
    assert [d.code for d in errors] == [codes.EXPORT_UNSUPPORTED.id] * 2
    assert "'cols' (Im2col)" in errors[0].message and errors[0].span.line == 3
    assert "'pool' (Pooling)" in errors[1].message and "STOCHASTIC" in errors[1].message and errors[1].span.line == 4


@pytest.mark.parametrize("batch", ["0", "x", "-2"])
def test_cli_rejects_bad_options(tmp_path, batch, capsys):
    from netdef.cli import main
    case = CONFORMANCE / "layers/relu/net.prototxt"
    assert main(["export", str(case), "-o", str(tmp_path / "m.onnx"), "--batch", batch]) == 2
    assert main(["export", str(case), "-o", str(tmp_path / "m.onnx"), "--opset", "12"]) == 2
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_and_atomic_failure(tmp_path, capsys):
    from netdef.cli import main
    case = CONFORMANCE / "layers/conv_group"
    out = tmp_path / "m.onnx"
    assert main(["export", str(case / "net.prototxt"), "--weights", str(case_file(case, "weights.caffemodel")),
                 "-o", str(out), "--opset", "15", "--batch", "dynamic"]) == 0
    assert "wrote" in capsys.readouterr().out
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 15 and model.ir_version == 8
    # A failing export leaves the previous file untouched and nothing beside it.
    out.write_bytes(b"previous")
    bad = _write(tmp_path, 'layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }\n'
                           'layer { name: "odd" type: "Im2col" bottom: "d" top: "o" convolution_param { kernel_size: 2 } }\n',
                 "bad.prototxt")
    assert main(["export", bad, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E510]" in err and "bad.prototxt:2:1" in err and "Traceback" not in err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.prototxt", "m.onnx"]
    # Mismatched weights: the layer and both shapes are named.
    other = CONFORMANCE / "layers/conv_basic/weights.caffemodel"
    assert main(["export", str(case / "net.prototxt"), "--weights", str(other), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E504]" in err and "'conv'" in err


def test_public_api(tmp_path):
    import netdef
    case = CONFORMANCE / "layers/prelu"
    out = tmp_path / "m.onnx"
    ex = netdef.export_onnx(str(case / "net.prototxt"), netdef.read_weights(str(case_file(case, "weights.caffemodel"))),
                            output=str(out), opset=18, batch="dynamic")
    model = onnx.load(str(out))
    assert model.SerializeToString() == ex.model().SerializeToString()
    assert model.opset_import[0].version == 18
    assert [n.op_type for n in model.graph.node] == ["PRelu"]


ROI_NET = """
name: "roi"
layer { name: "data" type: "Input" top: "data" top: "rois"
        input_param { shape { dim: 2 dim: 3 dim: 12 dim: 14 } shape { dim: 6 dim: 5 dim: 1 dim: 1 } } }
layer { name: "roi_pool" type: "ROIPooling" bottom: "data" bottom: "rois" top: "pool"
        roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 } }
"""


def test_roi_pooling_matches_the_reference(tmp_path):
    # Corners that land on halves after scaling (C's round goes away from zero), boxes past the
    # edges, a one-pixel box, both batch items.
    from netdef.export.verify import verify
    rois = np.array([[0, 0, 0, 27, 23], [1, 3, 5, 9, 9], [0, 5, 3, 5, 3], [1, 20, 16, 40, 30],
                     [0, -4, -4, 3, 3], [1, 1, 1, 7, 11]], np.float32).reshape(6, 5, 1, 1)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 14)).astype(np.float32)
    report = verify(_write(tmp_path, ROI_NET), inputs={"data": x, "rois": rois})
    assert [c.layer for c in report.comparisons] == ["roi_pool"]
    assert report.first_bad is None and report.comparisons[0].error < 1e-6


INTERP_NET = """
name: "interp"
layer { name: "data" type: "Input" top: "data" top: "ref"
        input_param { shape { dim: 2 dim: 3 dim: 7 dim: 9 } shape { dim: 1 dim: 1 dim: 5 dim: 4 } } }
layer { name: "zoom" type: "Interp" bottom: "data" top: "zoom" interp_param { zoom_factor: 3 } }
layer { name: "shrink" type: "Interp" bottom: "data" top: "shrink" interp_param { shrink_factor: 2 pad_beg: -1 pad_end: -1 } }
layer { name: "hw" type: "Interp" bottom: "data" top: "hw" interp_param { height: 11 width: 1 } }
layer { name: "like" type: "Interp" bottom: "data" bottom: "ref" top: "like" }
"""


def test_interp_matches_the_reference(tmp_path):
    # PSPNet's Interp (no conformance data: the oracle lacks it): the export's Resize against
    # the reference's caffe_cpu_interp2, for every way of giving the size, a crop, a 1-wide output.
    from netdef.export.verify import verify
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 9)).astype(np.float32)
    report = verify(_write(tmp_path, INTERP_NET), inputs={"data": x})
    assert [(c.layer, c.shape) for c in report.comparisons] == [
        ("zoom", (2, 3, 19, 25)), ("shrink", (2, 3, 3, 4)), ("hw", (2, 3, 11, 1)), ("like", (2, 3, 5, 4))]
    assert report.first_bad is None


# --- the bundled library without weights --------------------------------------------------------

def _bundled_nets():
    import contextlib
    import io
    from netdef.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["list"]) == 0
    return [line.split()[1] for line in out.getvalue().splitlines() if line.startswith("net ")]


def _with_batchnorm():
    import netdef
    return [n for n in _bundled_nets() if any(layer.type == "BatchNorm" for layer in netdef.load(n).message.layer)]


BN_NETS = _with_batchnorm()


def test_the_library_has_batchnorm_nets():
    assert {"resnet18", "resnet152", "mobilenet_v1", "inception_v3", "densenet121"} <= set(BN_NETS)


@pytest.mark.parametrize("net", BN_NETS)
def test_batchnorm_nets_run_finite_without_weights(tmp_path, net, capsys):
    # Caffe's zero statistics would divide by sqrt(eps) at every BatchNorm and overflow; the
    # neutral ones netdef fills keep every output finite.
    from netdef.cli import main
    from netdef.export.runtime import Session, random_inputs
    model = tmp_path / f"{net}.onnx"
    try:
        assert main(["export", net, "-o", str(model), "--batch", "1"]) == 0
        sess = Session(str(model), "cpu")
        outs = sess.run(random_inputs(sess, seed=0))
        for name, arr in outs.items():
            assert np.isfinite(arr).all(), f"{net}: output {name} has {np.count_nonzero(~np.isfinite(arr))} non-finite values"
        capsys.readouterr()
        assert main(["run", str(model), "--provider", "cpu"]) == 0
        assert "nan" not in capsys.readouterr().out
    finally:
        model.unlink(missing_ok=True)


# --- which diagnostics the model commands show --------------------------------------------------

NOISY_NET = """name: "noisy"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } shape { dim: 2 } } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""


@pytest.mark.parametrize("argv", [["export", "-o", "{tmp}/m.onnx"], ["init", "-o", "{tmp}/w.caffemodel"],
                                  ["run", "--provider", "cpu"], ["bench", "--runs", "1", "--provider", "cpu"],
                                  ["verify"]], ids=lambda a: a[0])
def test_model_commands_leave_analysis_warnings_to_check(tmp_path, capsys, argv):
    from netdef.cli import main
    net = _write(tmp_path, NOISY_NET)
    assert main(["check", net]) == 0
    assert capsys.readouterr().err.count("warning[W411]") == 1       # pool1's window overhangs
    assert main([argv[0], net] + [a.format(tmp=tmp_path) for a in argv[1:]]) == 0
    err = capsys.readouterr().err
    assert "W411" not in err
    assert err.endswith(f"note: 1 analysis warning not shown; 'netdef check {net}' lists them\n")
    if argv[0] != "init":                                 # the export's own warning stays
        assert "net.prototxt:6:1: warning[W511]: layer 'loss' (SoftmaxWithLoss) is for training only" in err


def test_failures_leave_analysis_warnings_to_check(tmp_path, capsys):
    from netdef.cli import main
    net = _write(tmp_path, NOISY_NET + 'layer { name: "cols" type: "Im2col" bottom: "data" top: "cols" '
                                       'convolution_param { kernel_size: 3 } }\n')
    assert main(["export", net, "-o", str(tmp_path / "m.onnx"), "--phase", "TRAIN", "--input", "data=2,3,6,6"]) == 1
    err = capsys.readouterr().err
    assert "net.prototxt:7:1: error[E510]: layer 'cols' (Im2col)" in err and "W411" not in err
    assert err.endswith("note: 1 analysis warning not shown; "
                        f"'netdef check {net} --phase TRAIN --input data=2,3,6,6' lists them\n")
    assert not (tmp_path / "m.onnx").exists()
    # An analysis error: shown, with the warnings that matter and the count of the others.
    bad = _write(tmp_path, NOISY_NET.replace('bottom: "pool" top: "fc"', 'bottom: "pool5" top: "fc"'), "bad.prototxt")
    assert main(["verify", bad]) == 1
    err = capsys.readouterr().err
    assert "bad.prototxt:5:" in err and "error[E301]" in err and "W411" not in err
    assert err.endswith(f"note: 1 analysis warning not shown; 'netdef check {bad}' lists them\n")


def test_warnings_that_bear_on_the_model_are_shown(tmp_path, capsys):
    # A fork field the export reads (W216) and a layer name used twice (W310: weights are
    # matched by name) are shown; the overhang Caffe clips (W411) is not.
    from netdef.cli import main
    net = _write(tmp_path, NOISY_NET.replace("stride: 2 }", "stride: 2 ceil_mode: true }")
                 + 'layer { name: "fc" type: "ReLU" bottom: "fc" top: "fc" }\n')
    assert main(["export", net, "-o", str(tmp_path / "m.onnx")]) == 0
    err = capsys.readouterr().err
    assert "net.prototxt:4:" in err and "warning[W216]: 'ceil_mode' is not a BVLC Caffe field" in err
    assert "warning[W310]: layer name 'fc' is used more than once" in err
    assert "W411" not in err and err.endswith("note: 1 analysis warning not shown; "
                                              f"'netdef check {net}' lists them\n")
