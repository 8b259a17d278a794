"""Hostile command-line values: every option at and past its edges exits 0, 1 or 2 with a
message, never an internal error (a negative --seed was one, from numpy)."""
import pytest

from fuzzlib import run_cli
from conftest import CONFORMANCE, ZOO

NET = str(CONFORMANCE / "layers" / "conv_basic" / "net.prototxt")
SOLVER = str(ZOO / "bvlc_alexnet" / "solver.prototxt")

CASES = [
    ["export", NET, "-o", "{tmp}/x.onnx", "--opset", "99999"], ["export", NET, "-o", "{tmp}/x.onnx", "--opset", "-1"],
    ["export", NET, "-o", "{tmp}/x.onnx", "--batch", "-5"], ["export", NET, "-o", "{tmp}/x.onnx", "--batch", "0"],
    ["export", NET, "-o", "{tmp}/x.onnx", "--batch", "99999999999999999999"],
    ["export", NET, "-o", "{tmp}/x.onnx", "--seed", "-1"], ["export", NET, "-o", "{tmp}/x.onnx", "--seed", "2e9"],
    ["init", NET, "-o", "{tmp}/x.caffemodel", "--seed", "99999999999999999999999"],
    ["verify", NET, "--seed", "-1"], ["verify", NET, "--tolerance", "nan"], ["verify", NET, "--tolerance", "-1"],
    ["run", NET, "--top", "-1"], ["run", NET, "--top", "99999999999"], ["run", NET, "--seed", "-3"],
    ["run", NET, "--input-file", "data={tmp}/missing.npy"], ["run", NET, "--input-file", "nonsense"],
    ["bench", NET, "--runs", "0", "--warmup", "0"], ["bench", NET, "--runs", "-1"],
    ["bench", NET, "--batch", "0", "--runs", "1"], ["bench", NET, "--batch", "999999999", "--runs", "1"],
    ["sizes", NET, "--range", "0:5"], ["sizes", NET, "--range", "5:1"], ["sizes", NET, "--range", "a:b"],
    ["sizes", NET, "--range", "1:99999999999999999999"],
    ["check", NET, "--level", "99999999999999999999"], ["check", NET, "--stage", "", "--stage", "x"],
    ["--max-errors", "-1", "check", NET], ["--max-errors", "0", "check", NET], ["--max-file-size", "1e-9", "check", NET],
    ["summary", NET, "--input", "data=-1,3,4,4"], ["summary", NET, "--input", "data=99999999999999999999999,3"],
    ["summary", NET, "--input", "data=" + "1" * 5000], ["summary", NET, "--input", "data=" + ",".join(["1"] * 40)],
    ["summary", NET, "--input", "data=0,3,11,13"], ["summary", NET, "--input", "nosuchblob=1,3,11,13"],
    ["export", NET, "-o", "{tmp}/x.onnx", "--input", "data=0,3,11,13"],
    ["lr", SOLVER, "--iters", "5:1"], ["lr", SOLVER, "--iters", "-1:5"], ["lr", SOLVER, "--iters", "0:5:0"],
    ["lr", SOLVER, "--iters", "0:99999999999999999999"], ["lr", SOLVER, "--iters", "0:0", "--plot", "{tmp}/x.svg"],
    ["lr", SOLVER, "--iters", "0:1", "--plot", "{tmp}/x.jpg"],
    ["solver", SOLVER, "--dataset-size", "0"], ["solver", SOLVER, "--dataset-size", "-5"],
    ["draw", NET, "-o", "{tmp}/x.dot", "--collapse", ""], ["draw", NET, "-o", "{tmp}/x.jpg"],
]


@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(x[:24] for x in a if x not in (NET, SOLVER)))
def test_option_edges(argv, tmp_path):
    r = run_cli([a.format(tmp=tmp_path) for a in argv])
    assert r.code in (0, 1, 2), r.err
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    if r.code:
        assert r.err.strip(), "a failure always says why"
    assert not list(tmp_path.glob(".netdef-*"))
