"""`netdef check`, `summary`, `rf` and `sizes` through the command line (main() and exit codes)."""
import csv
import io
import json

import pytest
from conftest import ZOO

import netdef
from netdef.cli import main

ALEXNET = str(ZOO / "bvlc_alexnet" / "deploy.prototxt")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bad_net(tmp_path):
    p = tmp_path / "bad.prototxt"
    p.write_text('name: "bad"\n'
                 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                 'layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 4 kernel_size: 3 } }\n'
                 'layer { name: "c2" type: "Convolution" bottom: "data" top: "c2" convolution_param { num_output: 4 kernel_size: 1 } }\n'
                 'layer { name: "sum" type: "Eltwise" bottom: "c1" bottom: "c2" top: "sum" }\n')
    return str(p)


def test_check_ok(capsys):
    code, out, err = run(capsys, "check", ALEXNET)
    assert code == 0 and "ok (24 layers in phase=TEST level=0)" in out and err == ""


def test_check_reports_errors_with_spans(capsys, bad_net):
    code, out, err = run(capsys, "check", bad_net)
    assert code == 1
    assert "bad.prototxt:5:58: error[E401]: layer 'sum': Eltwise bottoms must have the same shape" in err
    assert "(1, 4, 6, 6)" in err and "(1, 4, 8, 8)" in err and " 5 | layer {" in err
    assert "1 error(s)" in err and "Traceback" not in err


def test_check_json_and_warning_modes(capsys):
    path = str(ZOO / "resnet50" / "deploy.prototxt")
    code, out, _ = run(capsys, "check", path, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["errors"] == 0 and doc["warnings"] >= 2
    assert {d["code"] for d in doc["diagnostics"]} >= {"W411"}
    code, _, err = run(capsys, "check", path, "-W", "error")
    assert code == 1 and "treated as errors" in err
    code, _, err = run(capsys, "check", path, "-W", "hide")
    assert code == 0 and "W411" not in err


def test_check_phase_stage_level_and_input(capsys):
    path = str(ZOO / "bvlc_mnist" / "mnist_autoencoder.prototxt")
    code, out, err = run(capsys, "check", path, "--phase", "test", "--stage", "test-on-train")
    assert code == 0 and "W308" in err and "--input data=" in err
    code, out, err = run(capsys, "check", path, "--phase", "TEST", "--stage", "test-on-train",
                         "--input", "data=100,1,28,28")
    assert code == 0 and "W308" not in err
    code, out, err = run(capsys, "check", path, "--input", "data=1,x")
    assert code == 2 and "--input data=1,x" in err
    code, out, err = run(capsys, "check", path, "--phase", "TEST", "--stage", "test-on-train", "--input", "nope=1,2")
    assert code == 1 and "E309" in err


def test_summary_table(capsys):
    code, out, err = run(capsys, "summary", ALEXNET)
    assert code == 0
    lines = out.splitlines()
    conv1 = next(line for line in lines if line.startswith("conv1 "))
    assert "10x96x55x55" in conv1 and "11/4" in conv1 and "34,944" in conv1
    assert "parameters: 60,965,224 learnable" in out
    assert "per sample: 724.41M MACs" in out


def test_summary_json_contract(capsys):
    code, out, _ = run(capsys, "summary", ALEXNET, "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert {"name", "inputs", "outputs", "blobs", "layers", "totals"} <= set(doc)
    assert doc["name"] == "AlexNet" and doc["inputs"] == {"data": [10, 3, 227, 227]} and doc["outputs"] == ["prob"]
    assert doc["blobs"]["pool5"] == {"shape": [10, 256, 6, 6],
                                     "rf": {"size": [195, 195], "stride": [32, 32], "center": [33, 33]}}
    assert doc["blobs"]["conv1"]["shape"] == [10, 96, 55, 55]  # the value after the in-place ReLU
    conv2 = next(layer for layer in doc["layers"] if layer["name"] == "conv2")
    assert {"name", "type", "bottoms", "tops", "params", "param_count", "macs", "flops"} <= set(conv2)
    assert conv2["params"] == [[256, 48, 5, 5], [256]] and conv2["param_count"] == 307_456
    assert conv2["param_blobs"][1] == {"shape": [256], "count": 256, "bytes": 1024, "learnable": True}
    assert conv2["macs"] == 10 * 256 * 27 * 27 * 48 * 25
    t = doc["totals"]
    assert set(t) == {"params", "stat_params", "macs", "flops", "activation_bytes", "param_bytes"}
    assert t["param_bytes"] == 4 * (t["params"] + t["stat_params"])
    assert t["params"] == 60_965_224 and t["macs"] == sum(layer["macs"] or 0 for layer in doc["layers"])


def test_summary_csv_markdown_and_output_file(capsys, tmp_path):
    code, out, _ = run(capsys, "summary", "resnet18", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    # One row per layer and no TOTAL row (issue 13: totals mixed into the data broke tools).
    g = netdef.compile("resnet18")
    assert code == 0 and [r["layer"] for r in rows] == [n.name for n in g.nodes]
    doc = json.loads(run(capsys, "summary", "resnet18", "--format", "json")[1])
    assert doc["totals"]["params"] == sum(int(r["params"] or 0) for r in rows)
    bn = next(r for r in rows if r["type"] == "BatchNorm")
    assert bn["params"] == "0" and int(bn["stat_params"]) == 2 * 64 + 1 and int(bn["param_bytes"]) == 4 * 129
    code, out, _ = run(capsys, "summary", "resnet18", "--format", "markdown")
    assert out.splitlines()[2].startswith("| layer | type |") and "- parameters:" in out
    target = tmp_path / "s.json"
    code, out, _ = run(capsys, "summary", ALEXNET, "--format", "json", "-o", str(target))
    assert code == 0 and out == "" and json.loads(target.read_text())["totals"]["params"] == 60_965_224
    code, _, err = run(capsys, "summary", ALEXNET, "-o", str(tmp_path / "missing" / "x.txt"))
    assert code == 1 and "does not exist" in err


def test_summary_stops_at_unknown_layer_but_prints_what_came_before(capsys, tmp_path):
    p = tmp_path / "fork.prototxt"
    p.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }\n'
                 'layer { name: "r" type: "Upsample2" bottom: "c" top: "r" }\n'
                 'layer { name: "after" type: "ReLU" bottom: "r" top: "after" }\n')
    code, out, err = run(capsys, "summary", str(p))
    # Still printed, but an error now (issue 11: totals over part of a net): E415, exit 1.
    assert code == 1 and "W306" in err and "YOLO" in err and "error[E415]" in err
    assert "1x2x6x6" in out and "incomplete: 2 layer(s)" in out


def test_rf_table_and_json(capsys):
    code, out, _ = run(capsys, "rf", ALEXNET)
    assert code == 0
    pool5 = next(line for line in out.splitlines() if line.startswith("pool5"))
    assert pool5.split() == ["pool5", "10x256x6x6", "195", "x", "195", "32", "x", "32", "(33,", "33)"]
    code, out, _ = run(capsys, "rf", str(ZOO / "vgg16" / "deploy.prototxt"), "--format", "json")
    doc = json.loads(out)["blobs"]  # wrapped in {schema_version, command, blobs, ...} since issue 13
    assert doc["pool5"]["size"] == [212, 212] and doc["pool5"]["center"] == [15.5, 15.5]


def test_sizes_ranges_and_fixed_layers(capsys, tmp_path):
    code, out, _ = run(capsys, "sizes", ALEXNET, "--range", "190:260")
    assert code == 0 and "square (H = W):     199-230" in out and "fc6 (InnerProduct)" in out
    # independently: the boundaries agree with the ordinary shape pass
    base = netdef.compile(ALEXNET)
    for size, ok in ((198, False), (199, True), (230, True), (231, False)):
        g = netdef.compile(ALEXNET, inputs={"data": (10, 3, size, size)})
        same = g.node("fc6").meta.get("blobs") == base.node("fc6").meta["blobs"]
        assert (not g.diagnostics.has_errors and same) is ok
    # a conv (k2 s2, rounds down) beside a pooling (k2 s2, rounds up) agree only on even sizes,
    # and on 1, where each kernel is larger than the input and Caffe computes one window for both
    # ((1 - 2) / 2 + 1 = 1 in C++'s truncating division; ceil(-1 / 2) + 1 = 1)
    p = tmp_path / "even.prototxt"
    p.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }\n'
                 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 2 stride: 2 } }\n'
                 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 2 stride: 2 } }\n'
                 'layer { name: "s" type: "Eltwise" bottom: "c" bottom: "p" top: "s" }\n')
    code, out, _ = run(capsys, "sizes", str(p), "--range", "1:9")
    assert code == 0 and "square (H = W):     1-2, 4, 6, 8" in out and "height (width 8): 1-2, 4, 6, 8" in out
    code, _, err = run(capsys, "sizes", str(p), "--range", "9:1")
    assert code == 2


def test_missing_file_and_solver(capsys):
    code, _, err = run(capsys, "summary", "/nonexistent.prototxt")
    assert code == 1 and "E100" in err
    code, _, err = run(capsys, "check", str(ZOO / "bvlc_alexnet" / "solver.prototxt"))
    assert code == 1 and "E300" in err


def _unet_accepts(s: int) -> bool:
    """U-Net's size arithmetic written out by hand with Caffe's rules: an unpadded 3x3
    convolution takes 2 pixels (the kernel must fit), a 2x2/2 max pool rounds up
    (ceil((s - 2) / 2) + 1 = ceil(s / 2), no clipping without padding), a 2x2/2 up-convolution
    doubles, and Crop needs offset + the expanded size <= the contracting map."""
    def two_convs(x):
        for _ in range(2):
            if x is None or x < 3:
                return None
            x -= 2
        return x
    skips, x = [], s
    for _ in range(4):
        x = two_convs(x)
        if x is None or x < 2:
            return False
        skips.append(x)
        x = -(-x // 2)
    x = two_convs(x)
    for offset, skip in zip((4, 16, 40, 88), reversed(skips)):
        if x is None or offset + 2 * x > skip:
            return False
        x = two_convs(2 * x)
    return x is not None


def test_sizes_unet_varies_the_image_and_derives_the_label(capsys):
    # The 388x388 label map is read only by the loss and Accuracy: its size follows the net's
    # output, so the scan varies the 572x572 tile alone and leaves those two layers unchecked.
    code, out, _ = run(capsys, "sizes", "unet", "--range", "1:700")
    assert code == 0
    want = [s for s in range(1, 701) if _unet_accepts(s)]
    # Caffe's rounding-up pools and fixed-offset crops accept every tile from 173 up, not only
    # the paper's seamless sizes (572, 556, ...): the crops then cut off-centre.
    assert 572 in want and 172 not in want and 173 in want
    ranges = []
    for s in want:
        if ranges and ranges[-1][1] == s - 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)
    lines = out.splitlines()
    assert lines[0] == "inputs data: declared 572x572; sizes tried 1-700"
    assert f"square (H = W):     {text}" in lines
    assert f"height (width 572): {text}" in lines and f"width (height 572): {text}" in lines
    assert any(line.startswith("derived: label (read only by loss and Accuracy layers 'loss', 'accuracy')")
               for line in lines), out
    code, out, _ = run(capsys, "sizes", "--help")
    assert code == 0 and "read only by loss and" in " ".join(out.split())


def test_sizes_fcn8s_derives_the_label(capsys):
    code, out, _ = run(capsys, "sizes", "fcn8s", "--range", "1:64")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "inputs data: declared 500x500; sizes tried 1-64"
    assert any(line.startswith("derived: label ") for line in lines), out
    square = next(line for line in lines if line.startswith("square"))
    # independently of the scan: the ordinary shape pass at sizes the scan accepts and refuses
    # sets up every layer before the loss (whose label is a separate, fixed-size input)
    for size in (1, 17, 64):
        g = netdef.compile("fcn8s", inputs={"data": (1, 3, size, size), "label": (1, 1, size, size)})
        assert not g.diagnostics.has_errors and g.blob("score").meta["shape"] == (1, 21, size, size)
    assert square == "square (H = W):     1-64"


def test_per_sample_of_a_time_major_net(capsys):
    # Caffe's LSTM reads (T, N, ...) blobs: the CharLSTM's 50x32 inputs are 50 time steps of 32
    # streams, so a sample is one 50-step sequence and the totals divide by 32, not by 50.
    code, out, _ = run(capsys, "summary", "lstm", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["inputs"]["input_chars"] == [50, 32]
    assert doc["batch_size"] == 32 and doc["batch_axis"] == 1
    macs = sum(layer["macs"] or 0 for layer in doc["layers"])
    assert doc["totals"]["macs"] == macs and doc["per_sample"]["macs"] == macs // 32
    assert "sequence" in doc["per_sample_is"] and "axis 1" in doc["per_sample_is"]
    code, out, _ = run(capsys, "summary", "lstm")
    lines = out.splitlines()
    per = next(line for line in lines if line.startswith("per sample"))
    assert per.startswith("per sample (one sequence of 50 time steps; N = 32 is axis 1 of the time-major blobs "
                          "LSTM 'lstm1' reads):"), per
    assert f"{macs / 32 / 1e6:.2f}M MACs" in per
    assert any(line.startswith("batch 32 sequences x 50 time steps: ") for line in lines)
    # a net without recurrent layers keeps axis 0
    code, out, _ = run(capsys, "summary", ALEXNET, "--format", "json")
    doc = json.loads(out)
    assert doc["batch_size"] == 10 and doc["batch_axis"] == 0 and "axis 0" in doc["per_sample_is"]


PARTIAL_NET = '''name: "u"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "py" type: "Python" bottom: "conv" top: "m" python_param { module: "m" layer: "L" } }
layer { name: "fc" type: "InnerProduct" bottom: "m" top: "fc" inner_product_param { num_output: 10 } }
'''


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_summary_of_a_stopped_analysis_is_an_error(tmp_path, capsys, fmt):
    """Issue 11: totals over part of a net were reported with exit 0 (only the table said
    'incomplete'). Now E415 at the first layer not analysed, exit 1, and in JSON
    "complete": false with the layers not analysed."""
    import json
    from netdef.cli import main
    path = tmp_path / "net.prototxt"
    path.write_text(PARTIAL_NET)
    assert main(["summary", str(path), "--format", fmt]) == 1
    captured = capsys.readouterr()
    if fmt == "json":
        doc = json.loads(captured.out)
        assert doc["complete"] is False and doc["not_analysed"] == ["py", "fc"] and doc["ok"] is False
        assert [d["code"] for d in doc["diagnostics"] if d["severity"] == "error"] == ["E415"]
    else:
        assert "net.prototxt:4:1: error[E415]: the totals are incomplete: 2 layer(s) could not be analysed, " \
               "starting at layer 'py'" in captured.err
    out = tmp_path / "s.txt"
    assert main(["summary", str(path), "-o", str(out)]) == 1 and not out.exists()


def test_summary_of_a_complete_analysis_says_so(tmp_path, capsys):
    import json
    from netdef.cli import main
    path = tmp_path / "net.prototxt"
    path.write_text(PARTIAL_NET.replace('type: "Python" bottom: "conv" top: "m" python_param { module: "m" layer: "L" }',
                                        'type: "ReLU" bottom: "conv" top: "m"'))
    assert main(["summary", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] is True and doc["not_analysed"] == []
