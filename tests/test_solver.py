"""Solver checks (E6xx) with spans, the nets a solver trains and tests, and `netdef solver`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import LIBRARY_SOLVERS, REPO, ZOO
from netdef.cli import main
from netdef.diagnostics import Diagnostics
from netdef.solver import check_fields, load_solver, plan_nets

NET = """name: "tiny"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 8 dim: 3 dim: 4 dim: 4 } shape { dim: 8 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        inner_product_param { num_output: 5 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
BASE = 'net: "net.prototxt"\ntest_iter: 10\ntest_interval: 100\nbase_lr: 0.01\nmax_iter: 1000\n'


def _write(tmp_path: Path, body: str, base: str = BASE) -> Path:
    (tmp_path / "net.prototxt").write_text(NET)
    p = tmp_path / "solver.prototxt"
    p.write_text(base + body)
    return p


def _diags(path) -> list:
    parsed = load_solver(str(path))
    check_fields(parsed.message, parsed.loc, parsed.diagnostics)
    plan_nets(parsed, parsed.diagnostics)
    return [d for d in parsed.diagnostics if d.span is None or d.span.path == str(path)]


def _codes(path) -> list[str]:
    return sorted(d.code for d in _diags(path))


def _where(diag) -> tuple[int, int]:
    return diag.span.line, diag.span.col


# --- learning-rate policies ---------------------------------------------------------------

POLICY_NEEDS = {
    "step": {"gamma": "0.1", "stepsize": "100"},
    "multistep": {"gamma": "0.1", "stepvalue": "100"},
    "exp": {"gamma": "0.99"},
    "inv": {"gamma": "0.0001", "power": "0.75"},
    "poly": {"power": "1.0"},   # max_iter is in BASE
    "sigmoid": {"gamma": "0.1", "stepsize": "100"},
}


@pytest.mark.parametrize("policy,missing", [(p, f) for p, fields in POLICY_NEEDS.items() for f in fields]
                         + [("poly", "max_iter")])
def test_each_policy_needs_its_parameters(tmp_path, policy, missing):
    fields = {k: v for k, v in POLICY_NEEDS[policy].items() if k != missing}
    base = BASE if missing != "max_iter" else BASE.replace("max_iter: 1000\n", "")
    path = _write(tmp_path, f'lr_policy: "{policy}"\n' + "".join(f"{k}: {v}\n" for k, v in fields.items()), base)
    diags = [d for d in _diags(path) if d.is_error]
    assert [d.code for d in diags] == ["E603"]
    assert diags[0].message == f"lr_policy '{policy}' needs '{missing}'"
    line = path.read_text().splitlines().index(f'lr_policy: "{policy}"') + 1
    assert _where(diags[0]) == (line, 12)  # the policy's value


@pytest.mark.parametrize("policy", sorted(POLICY_NEEDS) + ["fixed"])
def test_complete_policies_are_clean(tmp_path, policy):
    path = _write(tmp_path, f'lr_policy: "{policy}"\n' + "".join(f"{k}: {v}\n" for k, v in POLICY_NEEDS.get(policy, {}).items()))
    assert _codes(path) == []


@pytest.mark.parametrize("body,code,fragment", [
    ('lr_policy: "step"\ngamma: 0.1\nstepsize: 0\n', "E604", "stepsize must be positive for lr_policy 'step', got 0"),
    ('lr_policy: "exp"\ngamma: -0.5\n', "E604", "gamma must be 0 or more for lr_policy 'exp', got -0.5"),
    ('lr_policy: "sigmoid"\ngamma: -0.1\nstepsize: 10\n', "E604", "gamma must be 0 or more"),
    ('lr_policy: "Step"\ngamma: 0.1\nstepsize: 10\n', "E602", "unknown lr_policy 'Step'"),
    ('lr_policy: "stepearly"\n', "E602", "unknown lr_policy 'stepearly'"),
    ('gamma: 0.1\n', "E601", "the solver has no lr_policy"),
])
def test_policy_errors(tmp_path, body, code, fragment):
    diags = [d for d in _diags(_write(tmp_path, body)) if d.is_error]
    assert [d.code for d in diags] == [code]
    assert fragment in diags[0].message


def test_policy_error_notes(tmp_path):
    d = [d for d in _diags(_write(tmp_path, 'lr_policy: "Step"\n')) if d.is_error][0]
    assert "did you mean 'step'?" in d.notes
    d = [d for d in _diags(_write(tmp_path, 'lr_policy: "sigmoid"\ngamma: -1\nstepsize: 5\n')) if d.is_error][0]
    assert any("BVLC Caffe checks gamma >= 0" in n for n in d.notes)


@pytest.mark.parametrize("body,code,fragment", [
    ('lr_policy: "exp"\ngamma: 0.9\nstepsize: 10\n', "W605", "'stepsize' has no effect with lr_policy 'exp'"),
    ('lr_policy: "fixed"\npower: 2\n', "W605", "'power' has no effect with lr_policy 'fixed'"),
    ('lr_policy: "step"\ngamma: 1\nstepsize: 10\n', "W606", "gamma is 1: the rate never changes"),
    ('lr_policy: "step"\ngamma: 0.1\nstepsize: 5000\n', "W606", "stepsize 5000 is not below max_iter (1000)"),
    ('lr_policy: "multistep"\ngamma: 0.1\nstepvalue: 500\nstepvalue: 2000\n', "W606",
     "stepvalue 2000 is not reached before max_iter (1000)"),
    ('lr_policy: "poly"\npower: -1\n', "W606", "power is negative"),
])
def test_policy_warnings(tmp_path, body, code, fragment):
    diags = _diags(_write(tmp_path, body))
    assert [d.code for d in diags] == [code]
    assert fragment in diags[0].message


def test_unsorted_stepvalue_says_when_the_step_happens(tmp_path):
    path = _write(tmp_path, 'lr_policy: "multistep"\ngamma: 0.5\nstepvalue: 10\nstepvalue: 4\nstepvalue: 4\n')
    diags = _diags(path)
    assert [d.code for d in diags] == ["W607", "W607"]
    assert "happens at iteration 11" in diags[0].message and "happens at iteration 12" in diags[1].message
    lines = path.read_text().splitlines()
    assert [d.span.line for d in diags] == [len(lines) - 1, len(lines)]  # the second and third stepvalue


# --- solver types ----------------------------------------------------------------------------

@pytest.mark.parametrize("body,code,fragment", [
    ('type: "AdaGrad"\nmomentum: 0.9\n', "E610", "momentum must be 0 for the AdaGrad solver, got 0.9"),
    ('type: "RMSProp"\nmomentum: 0.9\n', "E610", "momentum must be 0 for the RMSProp solver, got 0.9"),
    ('type: "RMSProp"\nrms_decay: 1\n', "E610", "rms_decay must be at least 0 and below 1 for the RMSProp solver, got 1"),
    ('type: "RMSProp"\nrms_decay: -0.5\n', "E610", "rms_decay must be at least 0 and below 1"),
    ('type: "Adam"\nmomentum: 0.9\nmomentum2: 1.0\n', "E610", "momentum2 must be at least 0 and below 1 for the Adam solver"),
    ('type: "Adam"\nmomentum: 1\n', "E610", "momentum must be at least 0 and below 1 for the Adam solver"),
    ('type: "sgd"\n', "E608", "unknown solver type 'sgd'"),
])
def test_solver_type_errors(tmp_path, body, code, fragment):
    path = _write(tmp_path, 'lr_policy: "fixed"\n' + body)
    diags = [d for d in _diags(path) if d.is_error]
    assert [d.code for d in diags] == [code]
    assert fragment in diags[0].message
    # the span is the offending value
    field = re.match(r"(\w+) must", diags[0].message)
    if field:
        text = path.read_text().splitlines()[diags[0].span.line - 1]
        assert text.startswith(field.group(1) + ":")


def test_unknown_type_suggests(tmp_path):
    d = [d for d in _diags(_write(tmp_path, 'lr_policy: "fixed"\ntype: "sgd"\n')) if d.is_error][0]
    assert "did you mean 'SGD'?" in d.notes
    assert any("AdaDelta" in n and "Nesterov" in n for n in d.notes)


@pytest.mark.parametrize("body,code,fragment", [
    ('type: "SGD"\nmomentum: 0.9\ndelta: 1e-6\n', "W611", "'delta' has no effect with the SGD solver"),
    ('type: "AdaGrad"\nrms_decay: 0.9\n', "W611", "'rms_decay' has no effect with the AdaGrad solver"),
    ('type: "Nesterov"\nmomentum: 1.0\n', "W612", "momentum = 1 with the Nesterov solver"),
    ('type: "AdaDelta"\n', "W612", "momentum = 0 with the AdaDelta solver"),
    ('type: "Adam"\nmomentum: 0.9\ndelta: 0\n', "W612", "delta = 0 with the Adam solver"),
])
def test_solver_type_warnings(tmp_path, body, code, fragment):
    diags = _diags(_write(tmp_path, 'lr_policy: "fixed"\n' + body))
    assert [d.code for d in diags] == [code]
    assert fragment in diags[0].message


@pytest.mark.parametrize("name", ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"])
def test_every_type_with_its_usual_settings_is_clean(tmp_path, name):
    hyper = {"SGD": "momentum: 0.9\n", "Nesterov": "momentum: 0.95\n", "AdaGrad": "delta: 1e-8\n",
             "RMSProp": "rms_decay: 0.98\n", "AdaDelta": "momentum: 0.95\ndelta: 1e-6\n",
             "Adam": "momentum: 0.9\nmomentum2: 0.999\ndelta: 1e-8\n"}[name]
    assert _codes(_write(tmp_path, f'lr_policy: "fixed"\ntype: "{name}"\n' + hyper)) == []


def test_deprecated_solver_type_is_upgraded(capsys):
    # enet's solver says solver_type: ADAM (with momentum2): it is the Adam solver.
    path = ZOO / "enet" / "enet_solver_encoder.prototxt"
    assert main(["lr", str(path), "--iters", "0:1", "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["type"] == "Adam"
    # with --format json the diagnostics are in the document (issue 13), not on stderr
    assert any(d["code"] == "W213" and "'solver_type' enum" in d["message"] for d in doc["diagnostics"])
    assert not any(d["code"] == "W611" for d in doc["diagnostics"])  # momentum2 is Adam's


def test_solver_type_and_type_together(tmp_path):
    path = _write(tmp_path, 'lr_policy: "fixed"\nsolver_type: ADAM\ntype: "SGD"\n')
    assert main(["lr", str(path)]) == 1


# --- other fields ----------------------------------------------------------------------------

@pytest.mark.parametrize("body,code,fragment", [
    ('regularization_type: "L3"\nweight_decay: 0.0005\n', "E613", "unknown regularization_type 'L3'"),
    ('average_loss: 0\n', "E614", "average_loss must be at least 1, got 0"),
    ('iter_size: 0\n', "E614", "iter_size must be at least 1, got 0"),
    ('snapshot: 1000\n', "E624", "snapshot is 1000 but snapshot_prefix is not set"),
])
def test_field_errors(tmp_path, body, code, fragment):
    diags = [d for d in _diags(_write(tmp_path, 'lr_policy: "fixed"\n' + body)) if d.is_error]
    assert [d.code for d in diags] == [code]
    assert fragment in diags[0].message


@pytest.mark.parametrize("body,fragment", [
    ('regularization_type: "L3"\n', "Caffe knows only 'L1' and 'L2'"),
    ('clip_gradients: 0\n', "every non-zero gradient is scaled to zero"),
    ('weight_decay: -0.1\n', "a negative decay"),
])
def test_field_warnings(tmp_path, body, fragment):
    diags = _diags(_write(tmp_path, 'lr_policy: "fixed"\n' + body))
    assert [d.code for d in diags] == ["W615"]
    assert fragment in diags[0].message


def test_missing_base_lr_and_max_iter(tmp_path):
    diags = _diags(_write(tmp_path, 'lr_policy: "fixed"\n', 'net: "net.prototxt"\n'))
    assert sorted(d.message for d in diags) == ["base_lr = 0: every update is zero (base_lr is not set)",
                                                "max_iter = 0: Caffe runs no training iteration"]


# --- the nets -----------------------------------------------------------------------------

def test_no_train_net(tmp_path):
    path = _write(tmp_path, 'lr_policy: "fixed"\n', "base_lr: 0.01\nmax_iter: 10\n")
    assert _codes(path) == ["E616"]


def test_two_train_nets(tmp_path):
    path = _write(tmp_path, 'lr_policy: "fixed"\ntrain_net: "net.prototxt"\n')
    diags = _diags(path)
    assert [d.code for d in diags] == ["E617"]
    assert _where(diags[0]) == (1, 6) and diags[0].related[0][0].line == 7


def test_test_iter_without_test_nets(tmp_path):
    # train_net + test_iter but no test_net: Caffe's CHECK_EQ(test_iter_size, num_test_nets) fails.
    path = _write(tmp_path, 'lr_policy: "fixed"\n', 'train_net: "net.prototxt"\ntest_iter: 10\ntest_interval: 5\n'
                  'base_lr: 0.01\nmax_iter: 10\n')
    diags = _diags(path)
    assert [d.code for d in diags] == ["E618"]
    assert _where(diags[0]) == (2, 12)


def test_test_state_count(tmp_path):
    path = _write(tmp_path, 'lr_policy: "fixed"\ntest_state { stage: "a" }\ntest_state { stage: "b" }\n')
    assert _codes(path) == ["E619"]


def test_test_interval_pairing(tmp_path):
    path = _write(tmp_path, 'lr_policy: "fixed"\n', 'net: "net.prototxt"\ntest_iter: 10\nbase_lr: 0.01\nmax_iter: 10\n')
    assert _codes(path) == ["E620"]
    path = _write(tmp_path, 'lr_policy: "fixed"\n', 'net: "net.prototxt"\ntest_interval: 10\nbase_lr: 0.01\nmax_iter: 10\n')
    assert _codes(path) == ["W621"]


def test_test_nets_in_caffes_order(tmp_path):
    (tmp_path / "t.prototxt").write_text(NET)
    path = _write(tmp_path, 'lr_policy: "fixed"\ntest_net: "t.prototxt"\ntest_iter: 20\ntest_iter: 30\n'
                  'test_state { stage: "x" }\ntest_state { stage: "y" }\ntest_state { stage: "z" }\n')
    parsed = load_solver(str(path))
    uses = plan_nets(parsed, Diagnostics())
    # test_net files first, then the generic net once per remaining test_iter
    assert [(u.role, u.field, u.test_iter, list(u.state.stage)) for u in uses] == [
        ("train", "net", None, []), ("test #0", "test_net", 10, ["x"]),
        ("test #1", "net", 20, ["y"]), ("test #2", "net", 30, ["z"])]
    assert [u.state.phase for u in uses] == [0, 1, 1, 1]  # TRAIN, TEST...


def test_missing_net_file_points_at_the_field(tmp_path):
    path = _write(tmp_path, 'lr_policy: "fixed"\n', 'net: "nowhere/x.prototxt"\nbase_lr: 0.01\nmax_iter: 10\n')
    diags = _diags(path)
    assert [d.code for d in diags] == ["E622"]
    assert _where(diags[0]) == (1, 6) and "no such file" in diags[0].message


def test_net_found_by_the_tail_of_its_path(tmp_path):
    # A solver copied out of a Caffe checkout names its net from Caffe's root.
    path = _write(tmp_path, 'lr_policy: "fixed"\n', 'net: "examples/tiny/net.prototxt"\nbase_lr: 0.01\nmax_iter: 10\n')
    diags = _diags(path)
    assert [d.code for d in diags] == ["W623"]
    assert "using 'net.prototxt' found there" in diags[0].message


# --- the zoo and the bundled solvers ------------------------------------------------------

ZOO_SOLVERS = sorted(p for p in ZOO.rglob("*") if p.is_file() and "solver" in p.name)
# The diagnostics each zoo solver gets for its own text (the nets' own diagnostics aside):
# missing net files are the zoo's (it keeps solvers without every net they name).
ZOO_EXPECTED = {
    "bvlc_cifar10/cifar10_full_sigmoid_solver.prototxt": ["W606", "W623"],
    "bvlc_cifar10/cifar10_full_sigmoid_solver_bn.prototxt": ["W606", "W623"],
    "bvlc_mnist/lenet_auto_solver.prototxt": ["E622", "E622"],
    "bvlc_mnist/lenet_consolidated_solver.prototxt": ["W213"],      # its inline V1 net
    "bvlc_v0_format/imagenet_solver.prototxt": ["E622"],
    "bvlc_v0_format/lenet_solver.prototxt": [],
    "bvlc_v1_format/hdf5_solver.prototxt": ["E622"],          # one net: file for train and test
    "bvlc_v1_format/lenet_stepearly_solver.prototxt": ["E201", "E602", "E622", "E622"],
    "bvlc_v1_format/mnist_autoencoder_solver_adagrad.prototxt": ["W213", "W623"],
    "bvlc_v1_format/mnist_autoencoder_solver_nesterov.prototxt": ["W213", "W623"],
    "caffe2dml/lenet_solver.proto": [],
    "caffe2dml/vgg19_solver.proto": ["E622", "W605"],
    "enet/enet_solver_encoder.prototxt": ["E622", "W213"],
    "faster_rcnn_vgg16/solver.prototxt": ["W615", "W623"],
    "faster_rcnn_zf/solver.prototxt": ["E622", "W615"],
    "fcn32s_voc/solver.prototxt": [],
    "fcn8s_voc/solver.prototxt": [],
    "lstm_lrcn_activity/lstm_solver_RGB.prototxt": [],
    "mobilenet_ssd/solver_train.prototxt": ["E622", "E622", "W202", "W202"],
    "segnet/segnet_solver.prototxt": ["E622", "W606", "W606"],
    "squeezenet_v1.0/solver.prototxt": [],
    "squeezenet_v1.1/solver.prototxt": [],
    "ssd300_vgg16_voc/solver.prototxt": ["W202", "W202", "W606", "W623", "W623"],
    "unet_nerve/solver.prototxt": ["W623", "W623"],
}


def test_zoo_solver_table_is_current():
    assert len(ZOO_SOLVERS) >= 45
    for name in ZOO_EXPECTED:
        assert (ZOO / name).is_file(), name


@pytest.mark.parametrize("path", ZOO_SOLVERS, ids=lambda p: str(p.relative_to(ZOO)))
def test_zoo_solvers(path):
    name = str(path.relative_to(ZOO))
    # everything not listed finds its net beside the solver by the tail of a Caffe-root path
    assert _codes(path) == ZOO_EXPECTED.get(name, ["W623"])


BUNDLED = sorted(LIBRARY_SOLVERS.glob("*.prototxt"))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_solvers_are_clean(path):
    parsed = load_solver(str(path))
    check_fields(parsed.message, parsed.loc, parsed.diagnostics)
    uses = plan_nets(parsed, parsed.diagnostics)
    assert [d.render() for d in parsed.diagnostics] == []
    assert uses[0].role == "train" and uses[0].parsed is not None and any(u.phase == "TEST" for u in uses)


# --- `netdef solver` ------------------------------------------------------------------------

@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_solvers_summarise(path, capsys):
    """Every bundled solver, its nets compiled in TRAIN and TEST: no errors, a summary."""
    assert main(["solver", str(path)]) == 0
    captured = capsys.readouterr()
    assert "error[" not in captured.err
    assert captured.out.startswith("solver   ") and "\nnets\n" in captured.out


def test_summary_alexnet(capsys):
    path = ZOO / "bvlc_alexnet" / "solver.prototxt"
    assert main(["solver", str(path), "--input", "data=256,3,227,227", "--dataset-size", "1281167"]) == 0
    out = capsys.readouterr().out
    assert "  optimizer       SGD (momentum 0.9)\n" in out
    assert 'lr_policy "step": gamma 0.1, stepsize 100,000' in out
    assert "  weight decay    0.0005 (L2)\n" in out
    # the rate divides by 10 every 100,000 iterations: four changes before max_iter 450,000
    for row in ("        0  0.01", "  100,000  0.001", "  200,000  0.0001", "  300,000  1e-05",
                "  400,000  1e-06", "  449,999  1e-06  (last iteration)"):
        assert row in out
    # batch sizes from the data layers: 256 (train), 50 × test_iter 1000 (test)
    assert "batch 256 per iteration" in out
    assert "test_iter 1000 × batch 50 = 50,000 samples, every 1,000 iterations" in out
    # 1,281,167 / 256 = 5,004.56 iterations per epoch; 450,000 of them = 89.92 epochs
    assert "5,004.6 iterations per epoch; max_iter = 89.92 epochs" in out
    assert "the rate changes at epochs 19.98, 39.96, 59.95, 79.93" in out
    rows = {tuple(line.split()[:2]): line.split() for line in out.splitlines() if line.startswith("  conv1 ")}
    assert rows[("conv1", "0")][2:8] == ["96×3×11×11", "34,848", "1", "0.01", "1", "0.0005"]
    assert rows[("conv1", "1")][2:8] == ["96", "96", "2", "0.02", "0", "0"]
    assert "  60,965,224 learnable values in 16 blob(s)" in out  # AlexNet's published count


def test_summary_json(capsys):
    path = ZOO / "bvlc_alexnet" / "solver.prototxt"
    assert main(["solver", str(path), "--input", "data=256,3,227,227", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["optimizer"]["type"] == "SGD" and doc["learning_rate"]["lr_policy"] == "step"
    assert [p["iter"] for p in doc["schedule"]["points"]] == [0, 100000, 200000, 300000, 400000]
    assert [n["role"] for n in doc["nets"]] == ["train", "test #0"]
    assert [n["batch"] for n in doc["nets"]] == [256, 50]
    assert doc["param_totals"] == {"learnable": 60965224, "frozen": 0, "blobs": 16}
    fc8 = [p for p in doc["params"] if p["layer"] == "fc8"]
    assert [(p["shape"], p["lr"], p["decay"]) for p in fc8] == [([1000, 4096], 0.01, 0.0005), ([1000], 0.02, 0.0)]


def test_summary_shared_params(capsys):
    path = ZOO / "bvlc_siamese" / "mnist_siamese_solver.prototxt"
    assert main(["solver", str(path), "--input", "pair_data=64,2,28,28"]) == 0
    out = capsys.readouterr().out
    assert "shared with conv1[0]" in out and "shared with feat[1]" in out
    # the two towers share every blob: LeNet's 431,080 plus feat's 2×10 + 2, counted once
    assert "431,102 learnable values in 10 blob(s)" in out


def test_summary_inline_nets_and_test_states(capsys):
    path = ZOO / "bvlc_mnist" / "lenet_consolidated_solver.prototxt"
    assert main(["solver", str(path), "--input", "data=64,1,28,28", "--dataset-size", "60000"]) == 0
    out = capsys.readouterr().out
    assert "train    inline net_param (phase TRAIN): batch 64 per iteration" in out
    assert "test #0  inline net_param (phase TEST, stages test-on-test-set): test_iter 100 × batch 100" in out
    assert "test #1  inline net_param (phase TEST, stages test-on-train-set): test_iter 600 × batch 100" in out
    assert "937.5 iterations per epoch" in out  # 60,000 / 64
    assert "431,080 learnable values in 8 blob(s)" in out  # LeNet


def test_summary_continuous_schedule(capsys):
    path = ZOO / "bvlc_mnist" / "lenet_solver.prototxt"  # inv: gamma 1e-4, power 0.75
    assert main(["solver", str(path)]) == 0
    out = capsys.readouterr().out
    assert "schedule: continuous; the rate at" in out
    # base_lr (1 + gamma·iter)^-power at the last iteration, 9,999: independent float64 value
    last = 0.01 * (1 + 0.0001 * 9999) ** -0.75
    row = [line for line in out.splitlines() if line.strip().startswith("9,999")][0]
    assert abs(float(row.split()[1]) / last - 1) < 1e-5


def test_summary_with_errors_still_reports(capsys):
    path = ZOO / "bvlc_mnist" / "lenet_auto_solver.prototxt"   # its nets are generated by pycaffe
    assert main(["solver", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("error[E622]") == 2
    assert "lr_policy \"inv\"" in captured.out and "[not compiled]" in captured.out


def test_invalid_solver_has_no_summary(capsys):
    path = ZOO / "bvlc_v1_format" / "lenet_stepearly_solver.prototxt"
    assert main(["solver", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error[E602]: unknown lr_policy 'stepearly'" in captured.err


def test_bad_input_option(capsys):
    assert main(["solver", str(LIBRARY_SOLVERS / "lenet_solver.prototxt"), "--input", "data=a,b"]) == 2
    assert "--input data=a,b: dimensions must be whole numbers" in capsys.readouterr().err


def test_epochs_need_a_batch_size(capsys):
    path = ZOO / "fcn32s_voc" / "solver.prototxt"  # a Python data layer: no batch_size parameter
    assert main(["solver", str(path), "--dataset-size", "1464"]) == 0
    assert "epochs: the training net's batch size is not known" in capsys.readouterr().out
    assert main(["solver", str(path), "--dataset-size", "1464", "--input", "data=1,3,500,500",
                 "--input", "label=1,1,500,500"]) == 0
    out = capsys.readouterr().out
    # iter_size 1, batch 1: 1,464 iterations per epoch; max_iter 100,000 → 68.31 epochs
    assert "1,464.0 iterations per epoch; max_iter = 68.31 epochs" in out
    assert main(["solver", str(path), "--dataset-size", "0"]) == 2


def test_evaluation_only_poly_solver_is_not_an_error(tmp_path, capsys):
    """`max_iter: 0` with lr_policy "poly" (issue 11): Caffe only divides by max_iter in
    GetLearningRate, once per iteration, and runs none; it loads the solver and evaluates."""
    from netdef.cli import main
    (tmp_path / "net.prototxt").write_text(
        'name: "n"\nlayer { name: "d" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n')
    path = tmp_path / "solver.prototxt"
    path.write_text('net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "poly"\npower: 0.9\nmax_iter: 0\n'
                    'test_iter: 10\ntest_interval: 1\n')
    assert main(["solver", str(path)]) == 0
    err = capsys.readouterr().err
    assert "E604" not in err and "warning[W615]: max_iter = 0: Caffe runs no training iteration" in err
