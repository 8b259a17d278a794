"""netdef run / bench / verify / init through the CLI: outputs, top-k, latency, providers."""
import json
import re

import numpy as np
import pytest
from conftest import case_file, CONFORMANCE

from netdef.cli import main
from netdef.export.runtime import cuda_status
from netdef.weights import read_caffemodel

SOFTMAX_NET = """
name: "cls"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 12 } } }
layer { name: "prob" type: "Softmax" bottom: "data" top: "prob" }
"""


@pytest.fixture()
def softmax_model(tmp_path):
    net = tmp_path / "cls.prototxt"
    net.write_text(SOFTMAX_NET)
    out = tmp_path / "cls.onnx"
    assert main(["export", str(net), "-o", str(out)]) == 0
    return net, out


def test_run_prints_shapes_topk_and_latency(tmp_path, softmax_model, capsys):
    _, model = softmax_model
    capsys.readouterr()
    x = np.random.default_rng(5).standard_normal((2, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(model), "--input-file", f"data={tmp_path / 'x.npy'}", "--provider", "cpu", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "output prob: (2, 12) float32" in out and "(random)" not in out
    assert re.search(r"latency: [0-9.]+ ms", out)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    for i in range(2):
        line = re.search(rf"top-3 \[{i}\]: (.*)", out).group(1)
        got = [int(t.split(":")[0]) for t in line.split(", ")]
        assert got == list(np.argsort(-p[i])[:3])


def test_run_random_inputs_and_definitions(softmax_model, capsys):
    net, model = softmax_model
    capsys.readouterr()
    assert main(["run", str(model), "--provider", "cpu"]) == 0
    assert "input  data: (2, 12) float32 (random)" in capsys.readouterr().out
    # A definition is exported in memory first.
    assert main(["run", str(net), "--provider", "cpu", "--seed", "3"]) == 0
    assert "output prob: (2, 12)" in capsys.readouterr().out


@pytest.mark.parametrize("spec,code,text", [
    ("nope={x}", 1, "no input 'nope'"),
    ("data={bad}", 1, "needs (2, 12)"),
    ("data", 2, "NAME=FILE.npy"),
    ("data={missing}", 1, "cannot read"),
])
def test_run_input_errors(tmp_path, softmax_model, capsys, spec, code, text):
    _, model = softmax_model
    np.save(tmp_path / "x.npy", np.zeros((2, 12), np.float32))
    np.save(tmp_path / "bad.npy", np.zeros((3, 12), np.float32))
    spec = spec.format(x=tmp_path / "x.npy", bad=tmp_path / "bad.npy", missing=tmp_path / "missing.npy")
    capsys.readouterr()
    assert main(["run", str(model), "--input-file", spec, "--provider", "cpu"]) == code
    assert text in capsys.readouterr().err


def test_pickled_arrays_are_refused(tmp_path, softmax_model, capsys):
    _, model = softmax_model
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["run", str(model), "--input-file", f"data={tmp_path / 'obj.npy'}", "--provider", "cpu"]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_bench(tmp_path, softmax_model, capsys):
    net, model = softmax_model
    capsys.readouterr()
    assert main(["bench", str(model), "--runs", "4", "--warmup", "1", "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"latency ms: mean [0-9.]+ +min [0-9.]+ +p50 [0-9.]+ +p90 [0-9.]+ +p99", out)
    assert "batch 2, 4 runs after 1 warm-up" in out and "samples/s" in out
    # The model's batch is fixed at 2: another batch needs a dynamic export.
    assert main(["bench", str(model), "--batch", "4", "--runs", "2", "--provider", "cpu"]) == 1
    assert "--batch dynamic" in capsys.readouterr().err
    dyn = tmp_path / "dyn.onnx"
    assert main(["export", str(net), "-o", str(dyn), "--batch", "dynamic"]) == 0
    assert main(["bench", str(dyn), "--batch", "4", "--runs", "2", "--provider", "cpu"]) == 0
    assert "batch 4," in capsys.readouterr().out


def test_bench_runs_duration_threads_and_warmup(softmax_model, capsys, monkeypatch):
    _, model = softmax_model
    capsys.readouterr()
    assert main(["bench", str(model), "--runs", "3", "--warmup", "2", "--duration", "60", "--provider", "cpu",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "batch 2, 3 runs after 2 warm-up\n" in out and "1 thread(s)" in out
    assert re.search(r"warm-up \(not in the statistics\): first run [0-9.]+ ms, 2 more: mean [0-9.]+ ms", out)
    # --duration stops the timed runs (and the warm-up) early; one timed run at least
    assert main(["bench", str(model), "--runs", "1000", "--warmup", "1000", "--duration", "1e-9",
                 "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "batch 2, 1 runs after 1 warm-up (--duration 1e-09 s reached; 1000 asked)" in out
    assert "stopped at --duration" in out
    for bad in (["--duration", "0"], ["--duration", "nan"], ["--threads", "0"]):
        assert main(["bench", str(model), "--runs", "1", "--provider", "cpu"] + bad) == 2, bad
    # progress lines come from netdef.progress (silenced by -q, shown on a terminal only)
    from netdef import progress
    seen = []

    class Recorder(progress.Progress):
        def update(self, n=1, detail=""):
            seen.append(self.label)
            super().update(n, detail)
    monkeypatch.setattr(progress, "Progress", Recorder)
    assert main(["bench", str(model), "--runs", "2", "--warmup", "1", "--provider", "cpu"]) == 0
    assert seen == ["bench: warm-up", "bench", "bench"]


def test_run_latency_is_from_warm_runs(softmax_model, capsys):
    _, model = softmax_model
    capsys.readouterr()
    assert main(["run", str(model), "--provider", "cpu"]) == 0
    assert re.search(r"latency: [0-9.]+ ms \(median of 10 warm run\(s\); the first, cold run: [0-9.]+ ms\)",
                     capsys.readouterr().out)


def test_providers_without_error_spam(softmax_model, capfd):
    _, model = softmax_model
    capfd.readouterr()
    usable, why = cuda_status()
    code = main(["run", str(model), "--provider", "cuda"])
    out, err = capfd.readouterr()
    if usable:
        assert code == 0 and "provider: cuda" in out
    else:
        assert code == 1 and "CUDA provider is not usable" in err and why in err
    assert "[E:onnxruntime" not in err and "[W:onnxruntime" not in err
    assert main(["run", str(model), "--provider", "auto"]) == 0
    out, err = capfd.readouterr()
    assert f"provider: {'cuda' if usable else 'cpu'}" in out
    assert "[E:onnxruntime" not in err
    if not usable:
        # 'auto' falling back to the CPU is the ordinary case there: nothing about CUDA is said.
        assert "cuda" not in (out + err).lower()


def test_weights_option_needs_a_definition(softmax_model, capsys):
    _, model = softmax_model
    assert main(["run", str(model), "--weights", "w.caffemodel"]) == 2


# --- verify ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,fold", [("inception_module", True), ("bn_scale_resnet", False), ("lrn_within", True),
                                       ("pool_ave_ceil_overhang", True), ("argmax_topk", True)])
def test_verify_agrees(name, fold, capsys):
    case = CONFORMANCE / "layers" / name
    argv = ["verify", str(case / "net.prototxt")]
    if (case / "weights.caffemodel").exists():
        argv += ["--weights", str(case_file(case, "weights.caffemodel"))]
    assert main(argv + ([] if fold else ["--no-fold"])) == 0
    out = capsys.readouterr().out
    n = int(re.search(r"compared (\d+) blobs", out).group(1))
    assert n >= 1
    if name == "bn_scale_resnet":
        assert re.search(r"^bn\s+BatchNorm", out, re.M) and n == 2


BROKEN_NET = """
name: "broken"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "sig" type: "Sigmoid" bottom: "conv" top: "sig" }
layer { name: "fc" type: "InnerProduct" bottom: "sig" top: "fc" inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
"""


def test_verify_reports_the_first_divergent_layer(tmp_path, monkeypatch, capsys):
    from netdef.layers import base

    def wrong(self, node, g):            # Tanh instead of Sigmoid
        g.op("Tanh", [g.x(0)], g.y(0))

    monkeypatch.setattr(type(base.get("Sigmoid")), "to_onnx", wrong)
    net = tmp_path / "broken.prototxt"
    net.write_text(BROKEN_NET)
    assert main(["verify", str(net), "--seed", "2"]) == 1
    captured = capsys.readouterr()
    assert re.search(r"^conv\s+Convolution\s+conv\s+\S+$", captured.out, re.M)
    assert "broken.prototxt:6:1: error[E514]: layer 'sig' (Sigmoid)" in captured.err


# --- init --------------------------------------------------------------------------------------

def test_init_writes_a_caffemodel_that_export_reads(tmp_path, capsys):
    from netdef.export.onnx import export
    case = CONFORMANCE / "layers/residual_block"
    out = tmp_path / "w.caffemodel"
    assert main(["init", str(case / "net.prototxt"), "-o", str(out), "--seed", "9"]) == 0
    assert "wrote" in capsys.readouterr().out
    ws = read_caffemodel(out)
    caffe = read_caffemodel(case / "weights.caffemodel")      # what Caffe saved for this net
    assert {lw.name: [b.shape for b in lw.blobs] for lw in ws if lw.blobs} == \
           {lw.name: [b.shape for b in lw.blobs] for lw in caffe if lw.blobs}
    # The file's weights are the fillers export uses for the same seed: identical models.
    a = export(str(case / "net.prototxt"), str(out)).to_bytes()
    b = export(str(case / "net.prototxt"), seed=9).to_bytes()
    assert a == b
    again = tmp_path / "w2.caffemodel"
    assert main(["init", str(case / "net.prototxt"), "-o", str(again), "--seed", "9"]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_init_errors(tmp_path, capsys):
    net = tmp_path / "n.prototxt"
    net.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 } } }\n'
                   'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"\n'
                   '        inner_product_param { num_output: 2 weight_filler { type: "xavir" } } }\n')
    out = tmp_path / "w.caffemodel"
    assert main(["init", str(net), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E507]: unknown filler type 'xavir'" in err and "n.prototxt:2:1" in err
    assert not out.exists()
    data = tmp_path / "d.prototxt"
    data.write_text('layer { name: "data" type: "Data" top: "data" data_param { source: "x" batch_size: 2 } }\n'
                    'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }\n')
    assert main(["init", str(data), "-o", str(out)]) == 1
    assert "error[E516]" in capsys.readouterr().err
    assert main(["init", str(data), "-o", str(out), "--input", "data=2,3"]) == 0


# --- NaN and Inf in the outputs --------------------------------------------------------------

NAN_NET = """
name: "nan"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 12 } } }
layer { name: "log" type: "Log" bottom: "data" top: "log" }
layer { name: "prob" type: "Softmax" bottom: "log" top: "prob" }
layer { name: "inf" type: "Exp" bottom: "data" top: "inf" exp_param { scale: 1000 } }
"""


def _counts(x):
    """NaN and Inf counts of what the net computes, in NumPy."""
    with np.errstate(all="ignore"):
        logs = np.log(x)
        e = np.exp(logs - logs.max(axis=1, keepdims=True))
        prob = e / e.sum(axis=1, keepdims=True)
        inf = np.exp(np.float32(1000) * x)
    return int(np.isnan(prob).sum()), int(np.isinf(inf).sum())


def test_run_warns_about_nan_and_inf_instead_of_printing_them(tmp_path, capsys):
    net = tmp_path / "nan.prototxt"
    net.write_text(NAN_NET)
    x = np.random.default_rng(3).standard_normal((2, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    nan, inf = _counts(x)
    assert 0 < nan <= 24 and 0 < inf < 24
    assert main(["run", str(net), "--input-file", f"data={tmp_path / 'x.npy'}", "--provider", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "output prob: (2, 12) float32" in out and "top-" not in out and not re.search(r": -?(nan|inf)\b", out)
    assert f"nan.prototxt:5:1: warning[W517]: output 'prob' holds {nan:,} NaN of its 24 values" in err
    assert f"nan.prototxt:6:1: warning[W517]: output 'inf' holds {inf:,} Inf of its 24 values" in err
    assert err.count("note: its top-k scores are not shown") == 2      # both look like (N, K) scores
    # An .onnx model: the warning names the file; finite outputs still get their top-k.
    model = tmp_path / "nan.onnx"
    assert main(["export", str(net), "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["run", str(model), "--input-file", f"data={tmp_path / 'x.npy'}", "--provider", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert f"nan.onnx:1:1: warning[W517]: output 'prob' holds {nan:,} NaN of its 24 values" in err
    np.save(tmp_path / "pos.npy", (np.abs(x) + 0.5) / 100)          # log and exp stay finite
    assert main(["run", str(model), "--input-file", f"data={tmp_path / 'pos.npy'}", "--provider", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "top-5 [1]:" in out and "W517" not in err


def test_bench_and_verify_warn_about_nan(tmp_path, capsys):
    net = tmp_path / "nan.prototxt"
    net.write_text(NAN_NET)
    assert main(["bench", str(net), "--runs", "2", "--warmup", "0", "--provider", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "throughput" in out and "warning[W517]: output 'prob' holds" in err and "output 'inf' holds" in err
    # verify: both sides compute the same NaN, so they agree, but the outputs are still flagged.
    assert main(["verify", str(net)]) == 0
    out, err = capsys.readouterr()
    assert "nan.prototxt:5:1: warning[W517]: output 'prob'" in err and "nan.prototxt:6:1: warning[W517]: output 'inf'" in err


BATCH_NET = """
name: "batched"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 10 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
"""


@pytest.mark.parametrize("extra,want", [([], 1), (["--batch", "3"], 3)])
def test_verify_runs_one_sample_unless_told(tmp_path, monkeypatch, capsys, extra, want):
    """Issue 11: verify ran the declared batch (10 or 50) through the NumPy reference, minutes
    on a big net; it now runs 1 sample by default, `--batch N` to choose."""
    from netdef.export import runtime
    seen = []
    real_run = runtime.Session.run

    def run(self, feed):
        seen.append({k: v.shape for k, v in feed.items()})
        return real_run(self, feed)

    monkeypatch.setattr(runtime.Session, "run", run)
    path = tmp_path / "net.prototxt"
    path.write_text(BATCH_NET)
    assert main(["verify", str(path), *extra]) == 0
    assert seen and all(shapes["data"] == (want, 3, 6, 6) for shapes in seen), seen
    assert "compared 2 blobs" in capsys.readouterr().out


def test_verify_keeps_the_declared_batch_when_the_net_fixes_it(tmp_path, capsys):
    # The Reshape fixes the batch at 10: batch 1 cannot be analysed, so the net runs as declared.
    path = tmp_path / "net.prototxt"
    path.write_text(BATCH_NET + 'layer { name: "r" type: "Reshape" bottom: "fc" top: "r" '
                                'reshape_param { shape { dim: 10 dim: 3 } } }\n')
    assert main(["verify", str(path)]) == 0, capsys.readouterr().err
    assert main(["verify", str(path), "--batch", "0"]) == 2


def test_verify_names_the_layer_and_size_when_the_reference_runs_out_of_memory(tmp_path, monkeypatch, capsys):
    import netdef.reference as reference

    def hungry(ctx, layer, bottoms, params):
        # What numpy raises when an allocation fails (its message gives the size).
        raise MemoryError("Unable to allocate 7.45 GiB for an array with shape (1000000000,) and data type float64")

    monkeypatch.setitem(reference._OPS, "InnerProduct", hungry)
    path = tmp_path / "net.prototxt"
    path.write_text(BATCH_NET)
    # The layers before it are compared; the stop is reported (W515, as any incomplete comparison).
    assert main(["verify", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning[W515]" in err and "layer 'fc' (InnerProduct): out of memory in the NumPy reference: Unable to allocate 7.45 GiB" in err


def test_verify_shows_progress_through_the_reference(tmp_path, monkeypatch, capsys):
    import netdef.progress as progress

    class Eager(progress.Progress):
        def __init__(self, *a, **k):
            super().__init__(*a, **{**k, "delay": 0.0, "interval": 0.0})

    monkeypatch.setattr(progress, "force", True)
    monkeypatch.setattr(progress, "Progress", Eager)
    path = tmp_path / "net.prototxt"
    path.write_text(BATCH_NET)
    assert main(["verify", str(path)]) == 0
    err = capsys.readouterr().err
    # One line redrawn in place per layer, naming it, then erased.
    assert "\rverify: NumPy reference: 2/3 (0 s) conv" in err and "\rverify: NumPy reference: 3/3 (0 s) fc" in err


# --- one real input through a bundled net -----------------------------------------------------

@pytest.fixture()
def one_digit(tmp_path):
    x = np.random.default_rng(11).random((1, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "digit.npy", x)
    return tmp_path / "digit.npy"


def test_run_one_image_through_lenet_with_one_flag(one_digit, capsys):
    # lenet declares a batch of 100 (its data layer) and a loss reading 'label': the array's
    # batch is the one analysed, and the loss and accuracy are left out before the analysis.
    assert main(["run", "lenet", "--input-file", f"data={one_digit}", "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "input  data: (1, 1, 28, 28) float32\n" in out and "output ip2: (1, 10) float32" in out
    assert "label" not in out and re.search(r"top-5 \[0\]: \d: ", out)


def test_run_analyses_the_deploy_view(capsys):
    # Before: SoftmaxWithLoss compared ip2 (1, 10) with label (100,) and the run failed.
    assert main(["run", "lenet", "--input", "data=1,1,28,28", "--provider", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "input  data: (1, 1, 28, 28) float32 (random)" in captured.out
    assert "W511" in captured.err and "'loss' (SoftmaxWithLoss)" in captured.err and "error" not in captured.err


def test_run_labels_name_the_top_k(one_digit, tmp_path, capsys):
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(names) + "\n\n")
    assert main(["run", "lenet", "--input-file", f"data={one_digit}", "--labels", str(labels), "--top", "3",
                 "--provider", "cpu"]) == 0
    line = re.search(r"top-3 \[0\]: (.*)", capsys.readouterr().out).group(1)
    picks = [t.split(":")[0].split(" ") for t in line.split(", ")]
    assert len(picks) == 3 and all(names[int(k)] == name for k, name in picks)
    labels.write_text("a\nb\n")
    assert main(["run", "lenet", "--input-file", f"data={one_digit}", "--labels", str(labels), "--provider", "cpu"]) == 1
    assert "has 2 class name(s), but output 'ip2' scores 10 classes" in capsys.readouterr().err
    assert main(["run", "lenet", "--labels", str(tmp_path / "missing.txt"), "--provider", "cpu"]) == 1
    assert "cannot read the labels file" in capsys.readouterr().err


def test_label_names_are_text(tmp_path, capsys, softmax_model):
    _, model = softmax_model
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"c{k}\x1b[31m" for k in range(12)) + "\n")
    assert main(["run", str(model), "--labels", str(labels), "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "c0\\x1b[31m" in out


def test_input_arrays_must_agree_on_the_batch(tmp_path, capsys):
    net = tmp_path / "two.prototxt"
    net.write_text('layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 dim: 3 } } }\n'
                   'layer { name: "b" type: "Input" top: "b" input_param { shape { dim: 1 dim: 3 } } }\n'
                   'layer { name: "s" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }\n')
    np.save(tmp_path / "a.npy", np.zeros((2, 3), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((3, 3), np.float32))
    assert main(["run", str(net), "--input-file", f"a={tmp_path / 'a.npy'}", "--input-file",
                 f"b={tmp_path / 'b.npy'}", "--provider", "cpu"]) == 1
    assert "disagree on the batch" in capsys.readouterr().err
    np.save(tmp_path / "b.npy", np.ones((2, 3), np.float32))
    assert main(["run", str(net), "--input-file", f"a={tmp_path / 'a.npy'}", "--input-file",
                 f"b={tmp_path / 'b.npy'}", "--provider", "cpu"]) == 0
    assert "output s: (2, 3)" in capsys.readouterr().out


def test_verify_takes_the_batch_from_the_arrays(one_digit, capsys):
    assert main(["verify", "lenet", "--input-file", f"data={one_digit}"]) == 0
    out = capsys.readouterr().out
    assert "compared 7 blobs" in out


PYTHON_TAIL_NET = """
name: "python_tail"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "side" type: "Convolution" bottom: "data" top: "side"
        convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "proposal" type: "Python" bottom: "conv1" top: "rois"
        python_param { module: "rpn.proposal_layer" layer: "ProposalLayer" } }
"""


def test_verify_outputs_checks_the_part_before_a_python_layer(tmp_path, capsys):
    # Issue 11: a net whose post-processing is a Python layer is verified up to it, as it is
    # exported (--outputs); only the layers computing the named blobs run on both sides.
    p = tmp_path / "net.prototxt"
    p.write_text(PYTHON_TAIL_NET)
    assert main(["verify", str(p)]) == 1
    assert "--outputs" in capsys.readouterr().err     # the Python layer cannot be exported
    assert main(["verify", str(p), "--outputs", "conv1", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and [c["layer"] for c in doc["comparisons"]] == ["conv1", "relu1"]
    assert main(["verify", str(p), "--outputs", "conv1", "--outputs", "side,conv1"]) == 0
    assert "compared 3 blobs" in capsys.readouterr().out
    assert main(["verify", str(p), "--outputs", "rios"]) == 2
    assert "did you mean 'rois'" in capsys.readouterr().err


EMBED_NET = """
name: "words"
input: "word" input_shape { dim: 4 dim: 1 }
layer { name: "embed" type: "Embed" bottom: "word" top: "embed"
        embed_param { num_output: 3 input_dim: 5 weight_filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "embed" top: "fc"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 1 } } }
"""


def test_verify_feeds_word_indices_to_an_embed_layer(tmp_path, capsys):
    # Random normal data is no index: the reference (as Caffe's EmbedLayer) refused it and
    # nothing was compared (W515). Inputs an Embed reads get whole numbers below input_dim.
    p = tmp_path / "net.prototxt"
    p.write_text(EMBED_NET)
    assert main(["verify", str(p), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and [c["layer"] for c in doc["comparisons"]] == ["embed", "fc"]


TWICE_NAMED_NET = """
name: "twice"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "a" pooling_param { pool: MAX kernel_size: 3 } }
layer { name: "pool" type: "Pooling" bottom: "a" top: "b" pooling_param { pool: AVE kernel_size: 2 } }
"""


def test_verify_compares_layers_that_share_a_name(tmp_path, capsys):
    # A name used twice (W310, as CRF-as-RNN's two 'crop' layers) matched every step to the last
    # layer of that name: the first pool's top was compared with the second's, "differing by inf".
    p = tmp_path / "net.prototxt"
    p.write_text(TWICE_NAMED_NET)
    assert main(["verify", str(p), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(c["top"], c["shape"]) for c in doc["comparisons"]] == [("a", [1, 2, 4, 4]), ("b", [1, 2, 3, 3])]
