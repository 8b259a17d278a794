"""`netdef lr`: Caffe's learning rate per iteration, its output formats and the plot."""
from __future__ import annotations

import json
import math
import os
import xml.dom.minidom
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFORMANCE
from netdef.cli import main

LR = CONFORMANCE / "lr"
CASES = sorted(p.stem[len("solver_"):] for p in LR.glob("solver_*.prototxt"))


def _tsv(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def test_every_policy_has_a_case():
    assert {c for c in CASES if not c.endswith("_unsorted")} == \
        {"fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"}


@pytest.mark.parametrize("case", CASES)
def test_matches_caffe(case, capsys):
    """Every row Caffe printed (6 significant digits), over the TSV's iterations."""
    expected = _tsv(LR / f"{case}.tsv")
    first, last = int(expected[0].split("\t")[0]), int(expected[-1].split("\t")[0])
    assert main(["lr", str(LR / f"solver_{case}.prototxt"), "--iters", f"{first}:{last + 1}"]) == 0
    got = _tsv_lines(capsys.readouterr().out)
    assert got == expected


def _tsv_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def test_all_is_zero_to_max_iter(capsys):
    assert main(["lr", str(LR / "solver_step.prototxt"), "--all"]) == 0
    assert _tsv_lines(capsys.readouterr().out) == _tsv(LR / "step.tsv")  # max_iter 40: iterations 0..39


def test_default_is_short_change_points_and_sample(capsys):
    # stepsize 7 over max_iter 40: changes at 7, 14, 21, 28, 35; samples at 0, 4, 8, ..., 36 and 39
    assert main(["lr", str(LR / "solver_step.prototxt")]) == 0
    captured = capsys.readouterr()
    rows = _tsv_lines(captured.out)
    caffe = dict(line.split("\t") for line in _tsv(LR / "step.tsv"))
    its = [int(r.split("\t")[0]) for r in rows]
    assert its == sorted({0, 39, 7, 14, 21, 28, 35} | set(range(0, 40, 4)))
    assert all(caffe[r.split("\t")[0]] == r.split("\t")[1] for r in rows)
    assert "15 of 40 iterations" in captured.err and "--all" in captured.err and "--iters" in captured.err


def test_default_stays_short_for_long_schedules(tmp_path, capsys):
    # stepsize 1 over 2^31 - 1 iterations: a few dozen lines, not two billion
    path = _solver(tmp_path, 'lr_policy: "step"\ngamma: 0.999\nstepsize: 1\n')
    text = Path(path).read_text().replace("max_iter: 40", "max_iter: 2147483647")
    Path(path).write_text(text)
    assert main(["lr", path]) == 0
    captured = capsys.readouterr()
    rows = _tsv_lines(captured.out)
    assert 20 <= len(rows) <= 40 and rows[0] == "0\t0.05" and rows[-1].startswith("2147483646\t")
    assert [int(r.split("\t")[0]) for r in rows[1:21]] == list(range(1, 21))   # the first 20 changes
    assert "the first 20 of its" in captured.err
    assert main(["lr", path, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sampled"] is True and len(doc["points"]) == len(rows)


def test_all_and_iters_together_is_a_usage_error(capsys):
    assert main(["lr", str(LR / "solver_step.prototxt"), "--all", "--iters", "0:5"]) == 2
    assert main(["lr", str(LR / "solver_step.prototxt"), "--log"]) == 2
    assert "--log applies to --plot" in capsys.readouterr().err


def test_a_net_given_for_a_solver_is_one_error(capsys):
    assert main(["lr", "lenet"]) == 1
    err = capsys.readouterr().err
    assert err.count("error[") == 1 and "error[E630]" in err and "is a network definition, not a solver" in err
    assert "E201" not in err and ":17:1:" in err   # lenet.prototxt's first line is a comment block
    assert main(["solver", "googlenet"]) == 1
    assert capsys.readouterr().err.count("error[") == 1


def test_multistep_advances_one_step_per_iteration(capsys):
    # stepvalue 10, 4, 4: Caffe steps at iterations 10, 11 and 12 (not three times at 10).
    assert main(["lr", str(LR / "solver_multistep_unsorted.prototxt"), "--iters", "9:14"]) == 0
    captured = capsys.readouterr()
    assert _tsv_lines(captured.out) == ["9\t0.05", "10\t0.025", "11\t0.0125", "12\t0.00625", "13\t0.00625"]
    assert "W607" in captured.err and "iteration 11" in captured.err and "iteration 12" in captured.err


def test_iters_step_and_json(capsys):
    assert main(["lr", str(LR / "solver_exp.prototxt"), "--iters", "0:40:5", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    expected = dict(line.split("\t") for line in _tsv(LR / "exp.tsv"))
    assert [p["iter"] for p in doc["points"]] == list(range(0, 40, 5))
    for p in doc["points"]:
        assert "%.6g" % p["lr"] == expected[str(p["iter"])]
    assert doc["lr_policy"] == "exp" and doc["change_points"] == []


def test_json_change_points(capsys):
    assert main(["lr", str(LR / "solver_step.prototxt"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # stepsize 7, gamma 0.5, base_lr 0.05: the rate halves at 7, 14, 21, 28, 35
    assert [(c["iter"], c["lr"]) for c in doc["change_points"]] == \
        [(7 * k, 0.05 * 0.5 ** k) for k in range(1, 6)]


def _solver(tmp_path, body: str) -> str:
    p = tmp_path / "solver.prototxt"
    p.write_text('net: "net.prototxt"\nbase_lr: 0.05\nmax_iter: 40\n' + body)
    return str(p)


def test_poly_is_not_clamped_past_max_iter(tmp_path, capsys):
    # An integer power keeps the base's sign meaningful: (1 - it/40)^2 rises again after 40.
    path = _solver(tmp_path, 'lr_policy: "poly"\npower: 2\n')
    assert main(["lr", path, "--iters", "0:81:10"]) == 0
    rows = [line.split("\t") for line in _tsv_lines(capsys.readouterr().out)]
    its = np.arange(0, 81, 10)
    expect = 0.05 * (1 - its / 40.0) ** 2  # independent float64 evaluation
    assert [int(r[0]) for r in rows] == its.tolist()
    np.testing.assert_allclose([float(r[1]) for r in rows], expect, rtol=1e-5, atol=1e-12)
    # A fractional power of a negative base is NaN, as C's pow gives it.
    assert main(["lr", str(LR / "solver_poly.prototxt"), "--iters", "41:43"]) == 0
    assert _tsv_lines(capsys.readouterr().out) == ["41\tnan", "42\tnan"]


def test_large_ranges_are_streamed(tmp_path, capsys):
    path = _solver(tmp_path, 'lr_policy: "inv"\ngamma: 0.0001\npower: 0.75\n')
    assert main(["lr", path, "--iters", "0:300000:1000"]) == 0
    rows = _tsv_lines(capsys.readouterr().out)
    assert len(rows) == 300
    it, r = rows[-1].split("\t")
    assert math.isclose(float(r), 0.05 * (1 + 0.0001 * int(it)) ** -0.75, rel_tol=1e-5)


@pytest.mark.parametrize("iters", ["5", "a:b", "10:5", "0:10:0", "-1:5", "0:99999999999"])
def test_bad_iters_is_a_usage_error(iters, capsys):
    assert main(["lr", str(LR / "solver_step.prototxt"), "--iters", iters]) == 2
    assert "--iters" in capsys.readouterr().err


def test_invalid_solver_has_no_schedule(tmp_path, capsys):
    path = _solver(tmp_path, 'lr_policy: "step"\ngamma: 0.1\n')
    assert main(["lr", path]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error[E603]: lr_policy 'step' needs 'stepsize'" in captured.err


# --- the plot ------------------------------------------------------------------------------

def test_plot_svg(tmp_path, capsys):
    out = tmp_path / "lr.svg"
    assert main(["lr", str(LR / "solver_multistep.prototxt"), "--plot", str(out)]) == 0
    text = out.read_text()
    xml.dom.minidom.parseString(text)  # well-formed
    assert "matplotlib" in text and "iteration" in text and "learning rate" in text and "log scale" not in text
    # the three change points are labelled: 5 → 0.015, 6 → 0.0045, 20 → 0.00135
    for label in ("5 → 0.015", "6 → 0.0045", "20 → 0.00135"):
        assert label in text
    assert "solver_multistep.prototxt" in text
    assert _tsv_lines(capsys.readouterr().out)[0] == "0\t0.05"
    # the same schedule gives the same bytes (no date, no random ids)
    again = tmp_path / "again.svg"
    assert main(["lr", str(LR / "solver_multistep.prototxt"), "--plot", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_plot_log_axis(tmp_path, capsys):
    out = tmp_path / "lr.svg"
    assert main(["lr", str(LR / "solver_step.prototxt"), "--plot", str(out), "--log"]) == 0
    assert "learning rate (log scale)" in out.read_text()
    from netdef.solver import Schedule, load_solver, schedule_figure
    parsed = load_solver(str(LR / "solver_step.prototxt"))
    fig = schedule_figure(parsed, Schedule(parsed.message), 0, 40, log=True)
    assert fig.axes[0].get_yscale() == "log"
    assert schedule_figure(parsed, Schedule(parsed.message), 0, 40).axes[0].get_yscale() == "linear"


def test_plot_text_from_the_file_is_literal(tmp_path, capsys):
    src = tmp_path / "a$x^2$<b>&.prototxt"
    src.write_text((LR / "solver_step.prototxt").read_text())
    out = tmp_path / "lr.svg"
    assert main(["lr", str(src), "--plot", str(out)]) == 0
    text = out.read_text()
    xml.dom.minidom.parseString(text)
    assert "a$x^2$&lt;b&gt;&amp;.prototxt" in text


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF")])
@pytest.mark.parametrize("log", [False, True])
def test_plot_png_pdf(fmt, magic, log, tmp_path):
    out = tmp_path / f"lr.{fmt}"
    assert main(["lr", str(LR / "solver_poly.prototxt"), "--plot", str(out)] + ["--log"] * log) == 0
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 5000


def test_plot_unknown_format(tmp_path, capsys):
    out = tmp_path / "lr.jpg"
    assert main(["lr", str(LR / "solver_step.prototxt"), "--plot", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown format 'jpg'" in err and ".svg, .png or .pdf" in err
    assert not out.exists()


def test_plot_needs_no_graphviz(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "lr.png"
    assert main(["lr", str(LR / "solver_step.prototxt"), "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_plot_without_matplotlib(tmp_path, monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib raises ImportError
    out = tmp_path / "lr.png"
    assert main(["lr", str(LR / "solver_step.prototxt"), "--plot", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib is not installed" in err
    assert not out.exists() and os.listdir(tmp_path) == []


def test_plot_unwritable(tmp_path, capsys):
    out = tmp_path / "missing-dir" / "lr.svg"
    assert main(["lr", str(LR / "solver_step.prototxt"), "--plot", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_public_api():
    import netdef
    from netdef.diagnostics import DiagnosticError

    expected = dict(line.split("\t") for line in _tsv(LR / "sigmoid.tsv"))
    rates = netdef.learning_rates(LR / "solver_sigmoid.prototxt", range(40))
    assert rates.dtype == np.float32
    assert ["%.6g" % r for r in rates] == [expected[str(i)] for i in range(40)]
    with pytest.raises(DiagnosticError):
        netdef.learning_rates(CONFORMANCE.parent / "zoo" / "bvlc_v1_format" / "lenet_stepearly_solver.prototxt", [0])
