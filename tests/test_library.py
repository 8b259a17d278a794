"""The bundled library (netdef/data/prototxts/, netdef/data/solvers/), through the command line, by bare name.

Every net checks clean with a pinned set of warnings, its summary table is a snapshot, its
learnable parameter count equals a published figure (or, where none is published, a count
made here from the architecture), it draws, and it exports with filler weights and runs in
onnxruntime; every solver validates and its learning rate at the schedule's change points
equals the paper's schedule computed here. UPDATE_SNAPSHOTS=1 rewrites the summary snapshots
in tests/snapshots/library/: review them by eye.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from conftest import LIBRARY_NETS, LIBRARY_SOLVERS, REPO
from netdef import layers
from netdef.cli import main

NETS = sorted(p.stem for p in LIBRARY_NETS.glob("*.prototxt"))
SOLVERS = sorted(p.stem for p in LIBRARY_SOLVERS.glob("*.prototxt"))
GENERATORS = sorted(p.name for p in (REPO / "tools" / "gen").glob("[a-z]*.py"))
SNAPSHOTS = REPO / "tests" / "snapshots" / "library"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"


def cli(*argv) -> tuple[int, str, str]:
    """Run `netdef ARGV` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def test_the_library_is_complete():
    """The nets and solvers the issue asks for, and no stray files."""
    assert NETS == sorted([
        "alexnet", "densenet121", "fcn8s", "googlenet", "inception_v3", "lenet", "lstm", "mlp",
        "mobilenet_v1", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50", "siamese",
        "squeezenet1_0", "squeezenet1_1", "unet", "vgg16", "vgg19"])
    assert {f"{n}_solver" for n in NETS} <= set(SOLVERS)
    examples = {"lenet_nesterov_solver", "lenet_adam_solver", "lenet_adadelta_solver",
                "mlp_adagrad_solver", "mlp_rmsprop_solver"}
    assert set(SOLVERS) == {f"{n}_solver" for n in NETS} | examples


# --- check ----------------------------------------------------------------------------------

# W411 (a pooling window hangs past the edge; Caffe rounds up and clips it) is the design of
# these nets: 3x3/2 pools on even sizes, as the published Caffe models have them. Each pool
# warns once, on both axes. See netdef/data/prototxts/README.md.
W411_POOLS = {
    "googlenet": ["pool1/3x3_s2", "pool2/3x3_s2", "pool3/3x3_s2", "pool4/3x3_s2"],
    "resnet18": ["pool1"], "resnet34": ["pool1"], "resnet50": ["pool1"], "resnet101": ["pool1"],
    "resnet152": ["pool1"], "densenet121": ["pool1"],
    "squeezenet1_1": ["pool3", "pool5"],
    "fcn8s": ["pool2", "pool3"],
}


@pytest.fixture(scope="module")
def checks():
    out = {}
    for net in NETS:
        rc, stdout, stderr = cli("check", net, "--format", "json")
        out[net] = (rc, json.loads(stdout), stderr)
    return out


@pytest.mark.parametrize("net", NETS)
def test_check_is_clean(checks, net):
    rc, report, _ = checks[net]
    assert rc == 0 and report["ok"] and report["errors"] == 0
    got = Counter()
    for d in report["diagnostics"]:
        m = re.search(r"pooling layer '([^']+)'", d["message"])
        got[(d["code"], m.group(1) if m else None)] += 1
    assert got == Counter({("W411", pool): 1 for pool in W411_POOLS.get(net, [])})


# Only the siamese pair database and the LSTM's HDF5 files keep their shapes to themselves
# (see netdef/data/prototxts/README.md); every other TRAIN phase is as fully known as its TEST phase.
TRAIN_SHAPE_UNKNOWN = {"siamese": ["pair_data"], "lstm": ["cont", "input_chars", "target_chars"]}


@pytest.mark.parametrize("net", NETS)
def test_train_phase_checks(net):
    rc, out, err = cli("check", net, "--phase", "TRAIN", "--format", "json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["errors"] == 0
    w308 = sorted(re.search(r"shape of '([^']+)'", d["message"]).group(1)
                  for d in report["diagnostics"] if d["code"] == "W308")
    assert w308 == sorted(TRAIN_SHAPE_UNKNOWN.get(net, []))
    assert {d["code"] for d in report["diagnostics"]} <= {"W308", "W411"}


# --- summary ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def summaries():
    out = {}
    for net in NETS:
        rc, stdout, stderr = cli("summary", net, "--format", "json")
        assert rc == 0, stderr
        out[net] = json.loads(stdout)
    return out


@pytest.mark.parametrize("net", NETS)
def test_summary_snapshot(net):
    rc, table, err = cli("summary", net)
    assert rc == 0, err
    path = SNAPSHOTS / f"{net}.txt"
    if UPDATE or not path.exists():
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(table)
        if not UPDATE:
            pytest.fail(f"wrote the missing snapshot {path.name}; review it and run again")
    assert table == path.read_text()


@pytest.mark.parametrize("net", NETS)
def test_test_phase_needs_no_input(summaries, net):
    """The TEST phase is the deploy graph: every blob has a shape without --input."""
    s = summaries[net]
    assert s["inputs"] and all(s["inputs"].values())
    assert all(blob["shape"] is not None for blob in s["blobs"].values())
    assert s["totals"]["params"] > 0 and s["totals"]["macs"] > 0


def test_summary_by_bare_name_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["summary", "alexnet"]) == 0
    out = capsys.readouterr().out
    assert "inputs: data 50x3x227x227, label 50" in out
    assert f"parameters: {alexnet():,} learnable" in out
    assert main(["check", "vgg16"]) == 0
    assert main(["draw", "lenet", "-o", "lenet.dot"]) == 0 and (tmp_path / "lenet.dot").exists()
    assert main(["solver", "vgg16_solver"]) == 0
    assert main(["lr", "vgg16_solver", "--iters", "0:1"]) == 0


# --- parameter counts: published figures, or counted here from the architecture ---------------

def conv(cin, cout, k, bias=True, group=1):
    kh, kw = (k, k) if isinstance(k, int) else k
    return cout * (cin // group) * kh * kw + (cout if bias else 0)


def fc(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def scale(c):
    """Scale's gamma and beta after a BatchNorm (BatchNorm's own blobs are statistics)."""
    return 2 * c


def lenet_tower(n_out=10):
    return conv(1, 20, 5) + conv(20, 50, 5) + fc(50 * 4 * 4, 500) + fc(500, n_out)


def alexnet():
    # Krizhevsky et al. 2012, section 3.5 and figure 2: conv2, conv4 and conv5 see only the
    # maps of their own GPU (group 2).
    return (conv(3, 96, 11) + conv(96, 256, 5, group=2) + conv(256, 384, 3)
            + conv(384, 384, 3, group=2) + conv(384, 256, 3, group=2)
            + fc(256 * 6 * 6, 4096) + fc(4096, 4096) + fc(4096, 1000))


VGG_STAGES = {16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}  # Simonyan & Zisserman, table 1 D, E


def vgg_convs(depth):
    total, cin = 0, 3
    for n, width in zip(VGG_STAGES[depth], [64, 128, 256, 512, 512]):
        for _ in range(n):
            total += conv(cin, width, 3)
            cin = width
    return total


def vgg(depth):
    return vgg_convs(depth) + fc(512 * 7 * 7, 4096) + fc(4096, 4096) + fc(4096, 1000)


# Szegedy et al. 2015, table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_TABLE = [
    ("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64), ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128), ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
]


def googlenet():
    """(TEST graph, the two auxiliary classifiers of the TRAIN graph)."""
    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    aux, cin = 0, 192
    for name, a, b_red, b, c_red, c, proj in GOOGLENET_TABLE:
        total += (conv(cin, a, 1) + conv(cin, b_red, 1) + conv(b_red, b, 3)
                  + conv(cin, c_red, 1) + conv(c_red, c, 5) + conv(cin, proj, 1))
        cin = a + b + c + proj
        if name in ("4a", "4d"):
            # section 5: 1x1 conv 128, fc 1024 on the 4x4 map, fc 1000
            aux += conv(cin, 128, 1) + fc(128 * 4 * 4, 1024) + fc(1024, 1000)
    return total + fc(cin, 1000), aux


def inception_v3_aux():
    # torchvision's InceptionAux: 1x1 conv 128 and 5x5 conv 768 with BatchNorm, fc 768 -> 1000
    return conv(768, 128, 1, bias=False) + scale(128) + conv(128, 768, 5, bias=False) + scale(768) + fc(768, 1000)


MOBILENET_LAYERS = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
                    (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]


def mobilenet_v1():
    # Howard et al. 2017, table 1: depthwise 3x3 + pointwise 1x1, each with BatchNorm
    total = conv(3, 32, 3, bias=False) + scale(32)
    for cin, cout, _ in MOBILENET_LAYERS:
        total += conv(cin, cin, 3, bias=False, group=cin) + scale(cin)
        total += conv(cin, cout, 1, bias=False) + scale(cout)
    return total + fc(1024, 1000)


def fcn8s():
    classes = 21
    up = lambda k: conv(classes, classes, k, bias=False, group=classes)  # noqa: E731 - per-class bilinear
    return (vgg_convs(16) + conv(512, 4096, 7) + conv(4096, 4096, 1) + conv(4096, classes, 1)
            + up(4) + conv(512, classes, 1) + up(4) + conv(256, classes, 1) + up(16))


def unet():
    # Ronneberger et al. 2015, figure 1
    w = [64, 128, 256, 512, 1024]
    total = conv(1, w[0], 3) + conv(w[0], w[0], 3)
    for lo, hi in zip(w, w[1:]):
        total += conv(lo, hi, 3) + conv(hi, hi, 3)
    for lo, hi in zip(w, w[1:]):
        total += conv(hi, lo, 2) + conv(2 * lo, lo, 3) + conv(lo, lo, 3)
    return total + conv(w[0], 2, 1)


def lstm():
    def cell(n_in, h):  # Caffe's LSTM: W_xc (4H x I), b_c (4H), W_hc (4H x H)
        return 4 * h * n_in + 4 * h + 4 * h * h
    return 256 * 128 + cell(128, 512) + cell(512, 512) + fc(512, 256)


GOOGLENET_TEST, GOOGLENET_AUX = googlenet()

# (TEST-phase count, TRAIN-phase count)
PARAMS = {
    # counted from the BVLC LeNet architecture (examples/mnist/lenet_train_test.prototxt)
    "lenet": (lenet_tower(),) * 2,
    # 784-512-512-10; Keras' mnist_mlp example prints "Total params: 669,706"
    "mlp": (669_706,) * 2,
    # one LeNet tower and a 10 -> 2 embedding; the second branch shares its blobs by name
    "siamese": (lenet_tower() + fc(10, 2), None),
    "lstm": (lstm(), None),
    "alexnet": (alexnet(),) * 2,
    # torchvision docs, VGG16_Weights.IMAGENET1K_V1 / VGG19_Weights.IMAGENET1K_V1: num_params
    "vgg16": (138_357_544,) * 2,
    "vgg19": (143_667_240,) * 2,
    "googlenet": (GOOGLENET_TEST, GOOGLENET_TEST + GOOGLENET_AUX),
    # torchvision docs, Inception_V3_Weights.IMAGENET1K_V1: num_params 27161264, with the
    # auxiliary classifier, which exists only in our TRAIN phase
    "inception_v3": (27_161_264 - inception_v3_aux(), 27_161_264),
    # torchvision docs, ResNet{18,34,50,101,152}_Weights.IMAGENET1K_V1: num_params (BatchNorm's
    # gamma and beta are Caffe's Scale blobs). ResNet-50's conv1 keeps its bias, as in Kaiming
    # He's released Caffe model: 64 more.
    "resnet18": (11_689_512,) * 2,
    "resnet34": (21_797_672,) * 2,
    "resnet50": (25_557_032 + 64,) * 2,
    "resnet101": (44_549_160,) * 2,
    "resnet152": (60_192_808,) * 2,
    # torchvision docs, DenseNet121_Weights / SqueezeNet1_0_Weights / SqueezeNet1_1_Weights
    "densenet121": (7_978_856,) * 2,
    "squeezenet1_0": (1_248_424,) * 2,
    "squeezenet1_1": (1_235_496,) * 2,
    "mobilenet_v1": (mobilenet_v1(),) * 2,
    # includes upscore8's 5,376 bilinear weights, which stay fixed (lr_mult 0)
    "fcn8s": (fcn8s(),) * 2,
    "unet": (unet(),) * 2,
}


@pytest.mark.parametrize("net", NETS)
def test_parameter_count(summaries, net):
    test_count, train_count = PARAMS[net]
    assert summaries[net]["totals"]["params"] == test_count
    if train_count is not None:
        rc, out, err = cli("summary", net, "--phase", "TRAIN", "--format", "json")
        assert rc == 0, err
        assert json.loads(out)["totals"]["params"] == train_count


def test_counts_made_here_agree_with_published_ones():
    """The architecture counts above, against the figures their papers give, and the
    published counts against the architectures."""
    assert 60e6 <= alexnet() < 61e6               # Krizhevsky et al., section 1: "60 million"
    assert round(mobilenet_v1() / 1e5) == 42      # Howard et al., table 8: 4.2 million
    assert round(GOOGLENET_TEST / 1e6) == 7       # Szegedy et al., section 5: about 7 million
    assert round(GOOGLENET_AUX / 1e6) == 6        # ... while the two auxiliary heads hold 6.4M
    assert vgg(16) == PARAMS["vgg16"][0] and vgg(19) == PARAMS["vgg19"][0]
    assert fc(784, 512) + fc(512, 512) + fc(512, 10) == PARAMS["mlp"][0]


def resnet_macs(blocks, bottleneck: bool) -> int:
    """Multiply-adds of the convolutions and fc1000 at 224x224, Kaiming He's Caffe layout: a
    bottleneck block strides its first 1x1 convolution (torchvision's v1.5 strides the 3x3)."""
    macs = 64 * 3 * 7 * 7 * 112 * 112
    cin, size = 64, 56
    for stage, n in enumerate(blocks):
        width = 64 << stage
        cout = width * (4 if bottleneck else 1)
        for i in range(n):
            stride = 2 if i == 0 and stage > 0 else 1
            size //= stride
            area = size * size
            if bottleneck:
                macs += (cin * width + width * width * 9 + width * cout) * area
            else:
                macs += (cin * width * 9 + width * width * 9) * area
            if i == 0 and (stride != 1 or cin != cout):
                macs += cin * cout * area
            cin = cout
    return macs + cin * 1000


@pytest.mark.parametrize("net, published_gmacs", [
    ("vgg16", 15.47),          # torchvision docs, VGG16_Weights.IMAGENET1K_V1: GFLOPS 15.47
    ("resnet18", 1.81),        # torchvision docs, ResNet18_Weights.IMAGENET1K_V1: GFLOPS 1.81
    ("resnet34", 3.66),        # torchvision docs, ResNet34_Weights.IMAGENET1K_V1: GFLOPS 3.66
    ("inception_v3", 5.71),    # torchvision docs, Inception_V3_Weights.IMAGENET1K_V1: GFLOPS 5.71
    ("mobilenet_v1", 0.569),   # Howard et al. 2017, table 8: 569 million mult-adds
])
def test_macs_match_published_figures(summaries, net, published_gmacs):
    # netdef counts a multiply-add as one MAC, the convention of these figures
    macs = summaries[net]["per_sample"]["macs"]
    assert macs == pytest.approx(published_gmacs * 1e9, rel=0.01)


def test_resnet_macs_match_a_count_made_here(summaries):
    # He et al. 2016, table 1, give 1.8, 3.6, 3.8, 7.6 and 11.3 x 10^9 "FLOPs" (multiply-adds)
    # to two digits; ResNet-50's 3.86 is shown as 3.8 there. The exact count is made here.
    for net, blocks, bottleneck, paper in [("resnet18", [2, 2, 2, 2], False, 1.8),
                                           ("resnet34", [3, 4, 6, 3], False, 3.6),
                                           ("resnet50", [3, 4, 6, 3], True, 3.8),
                                           ("resnet101", [3, 4, 23, 3], True, 7.6),
                                           ("resnet152", [3, 8, 36, 3], True, 11.3)]:
        macs = summaries[net]["per_sample"]["macs"]
        assert macs == resnet_macs(blocks, bottleneck), net
        assert abs(macs / 1e9 - paper) < 0.07, net


# --- draw ---------------------------------------------------------------------------------

@pytest.mark.parametrize("net", NETS)
def test_draws_as_dot(tmp_path, net):
    out = tmp_path / f"{net}.dot"
    rc, _, err = cli("draw", net, "-o", out)
    assert rc == 0, err
    text = out.read_text()
    assert text.startswith(("digraph", "strict digraph")) and "data" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
@pytest.mark.parametrize("net, extra", [("lenet", []), ("googlenet", ["--collapse", "auto"])])
def test_draws_as_svg(tmp_path, net, extra):
    out = tmp_path / f"{net}.svg"
    rc, _, err = cli("draw", net, "-o", out, *extra)
    assert rc == 0, err
    assert "<svg" in out.read_text()


# --- export and run -------------------------------------------------------------------------

# The segmentation nets run on a smaller input than their 500x500 and 572x572 tiles (181 and
# 150 GMACs per sample) to keep the suite fast; their full-size shapes are covered above.
SMALL_INPUTS = {
    "fcn8s": ["--input", "data=1,3,96,96", "--input", "label=1,1,96,96"],
    "unet": ["--input", "data=1,1,188,188", "--input", "label=1,1,4,4"],
}

def _has_lowering(layer_type: str) -> bool:
    return callable(getattr(layers.get(layer_type), "to_onnx", None))


# Until Caffe's LSTM has an ONNX lowering, exporting the LSTM net must fail (with E510);
# once it has one, the net must export and run like the others.
LSTM_MARK = pytest.mark.xfail(not _has_lowering("LSTM"), strict=True,
                              reason="netdef has no ONNX lowering for Caffe's LSTM layer (E510)")


@pytest.mark.parametrize("net", [pytest.param(n, marks=LSTM_MARK) if n == "lstm" else n for n in NETS])
def test_exports_and_runs(tmp_path, net):
    model = tmp_path / f"{net}.onnx"
    try:
        rc, _, err = cli("export", net, "-o", model, "--batch", "1", *SMALL_INPUTS.get(net, []))
        assert rc == 0, err
        rc, out, err = cli("run", model, "--provider", "cpu")
        assert rc == 0, err
        assert re.search(r"^output +\S+: \(1, ", out, re.M), out
    finally:
        # removed at once: the VGG-sized files (over 500 MB) are then never written back to disk
        model.unlink(missing_ok=True)


# --- generators -------------------------------------------------------------------------------

@pytest.mark.parametrize("script", GENERATORS)
def test_generator_reproduces_its_files(script):
    done = subprocess.run([sys.executable, str(REPO / "tools" / "gen" / script), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- solvers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_validates(solver):
    rc, out, err = cli("solver", solver)
    assert rc == 0, err
    assert "error[" not in err and "nets" in out


# Each paper's schedule, written here from the paper (and, where it gives no fixed schedule,
# from the fixed form the solver's comment names), with the iterations where it changes.
def step(base, gamma, size, max_iter):
    """The first three changes, and the last iteration."""
    points = sorted({p for k in (1, 2, 3) for p in (k * size - 1, k * size) if p < max_iter}
                    | {0, max_iter - 1})
    return [(i, base * gamma ** (i // size)) for i in points]


def multistep(base, gamma, values, max_iter):
    points = sorted({0, max_iter - 1} | {p for v in values for p in (v - 1, v)})
    return [(i, base * gamma ** sum(i >= v for v in values)) for i in points]


def curve(f, max_iter):
    return [(i, f(i)) for i in (0, 1, max_iter // 4, max_iter // 2, 3 * max_iter // 4, max_iter - 1)]


def fixed(base, max_iter):
    return curve(lambda i: base, max_iter)


def inv(base, gamma, power, max_iter):
    return curve(lambda i: base * (1 + gamma * i) ** -power, max_iter)


def poly(base, power, max_iter):
    # Caffe forms 1 - iter/max_iter in float (Dtype): near max_iter the cancellation leaves
    # only a few significant bits, so the reference has to round the same way
    f32 = np.float32
    return curve(lambda i: float(f32(base) * (f32(1) - f32(i) / f32(max_iter)) ** f32(power)), max_iter)


EPOCH = 5005  # 1,281,167 ImageNet training images at batch 256
RESNET = multistep(0.1, 0.1, [150_000, 300_000, 450_000], 600_000)

SCHEDULES = {
    # Krizhevsky et al. 2012, section 5: 0.01, divided by 10 three times, ~90 epochs
    "alexnet_solver": step(0.01, 0.1, 100_000, 450_000),
    # Simonyan & Zisserman 2015, section 3.1: 0.01, divided by 10 three times, 370K iterations
    "vgg16_solver": step(0.01, 0.1, 100_000, 370_000),
    "vgg19_solver": step(0.01, 0.1, 100_000, 370_000),
    # Szegedy et al. 2015, section 6: decreased by 4% every 8 epochs (40,000 iterations of 32)
    "googlenet_solver": step(0.01, 0.96, 8 * 40_000, 10_000_000),
    # Szegedy et al. 2016, section 8: 0.045, decayed every two epochs by 0.94
    "inception_v3_solver": step(0.045, 0.94, 2 * 40_000, 4_000_000),
    "mobilenet_v1_solver": step(0.045, 0.94, 2 * 20_000, 2_000_000),
    # He et al. 2016, section 3.4: 0.1, divided by 10 (at 150K, 300K, 450K), up to 600K
    "resnet18_solver": RESNET, "resnet34_solver": RESNET, "resnet50_solver": RESNET,
    "resnet101_solver": RESNET, "resnet152_solver": RESNET,
    # Huang et al. 2017, section 4.2: 0.1, divided by 10 at epochs 30 and 60 of 90
    "densenet121_solver": multistep(0.1, 0.1, [30 * EPOCH, 60 * EPOCH], 90 * EPOCH),
    # SqueezeNet's released solver: 0.04 falling linearly to 0 over 170K iterations
    "squeezenet1_0_solver": poly(0.04, 1.0, 170_000),
    "squeezenet1_1_solver": poly(0.04, 1.0, 170_000),
    # BVLC examples/mnist and examples/siamese: inv, gamma 1e-4, power 0.75
    "lenet_solver": inv(0.01, 1e-4, 0.75, 10_000),
    "siamese_solver": inv(0.01, 1e-4, 0.75, 50_000),
    "lenet_nesterov_solver": step(0.01, 0.1, 4_000, 10_000),
    # the adaptive methods' papers use a fixed step size: Adam alpha 0.001, AdaDelta 1.0
    "lenet_adam_solver": fixed(0.001, 10_000),
    "lenet_adadelta_solver": fixed(1.0, 10_000),
    "mlp_adagrad_solver": fixed(0.01, 20_000),
    "mlp_rmsprop_solver": fixed(0.001, 20 * 469),
    "mlp_solver": step(0.01, 0.1, 10_000, 20_000),
    # fcn.berkeleyvision.org voc-fcn8s solver: fixed 1e-14 on the summed loss
    "fcn8s_solver": fixed(1e-14, 100_000),
    "unet_solver": fixed(1e-4, 20_000),
    # LRCN-style language model: halved every 20,000 iterations
    "lstm_solver": step(0.1, 0.5, 20_000, 100_000),
}


def test_every_solver_has_a_schedule():
    assert sorted(SCHEDULES) == SOLVERS


@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_schedule(solver):
    for it, expected in SCHEDULES[solver]:
        rc, out, err = cli("lr", solver, "--iters", f"{it}:{it + 1}", "--format", "json")
        assert rc == 0, err
        points = json.loads(out)["points"]
        assert [p["iter"] for p in points] == [it]
        # Caffe computes the rate in float: agreement to float precision
        assert math.isclose(points[0]["lr"], expected, rel_tol=2e-6), (solver, it)


# --- list ---------------------------------------------------------------------------------------

def test_list_shows_every_net_and_solver_with_its_title():
    rc, out, _ = cli("list")
    assert rc == 0
    rows = {}
    for line in out.splitlines():
        kind, name, title = line.split(None, 2)
        rows[name] = (kind, title)
    assert {n for n, (k, _) in rows.items() if k == "net"} == set(NETS)
    assert {n for n, (k, _) in rows.items() if k == "solver"} == set(SOLVERS)
    # each file opens with a one-line title, set off from the rest of its header
    for kind, folder, names in (("net", LIBRARY_NETS, NETS), ("solver", LIBRARY_SOLVERS, SOLVERS)):
        for name in names:
            first, second = (folder / f"{name}.prototxt").read_text().splitlines()[:2]
            assert first == f"# {rows[name][1]}" and len(first) <= 80 and second == "#", name
