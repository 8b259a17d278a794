"""`netdef draw`: graphviz drawings of nets."""
from __future__ import annotations

import os
import re
import xml.dom.minidom
from pathlib import Path

import pytest

from conftest import LIBRARY_NETS, LIBRARY_SOLVERS, no_hang, ZOO
from netdef.cli import main
from netdef.parse import NET, parse_file, sniff_kind
from netdef.source import Source

ALEXNET = ZOO / "bvlc_alexnet" / "deploy.prototxt"     # Input layer: 10x3x227x227
RESNET152 = ZOO / "resnet152" / "deploy.prototxt"


def _zoo_nets() -> list[Path]:
    out = []
    for p in sorted(ZOO.rglob("*")):
        if not p.is_file() or p.suffix in (".md", ".tsv") or "solver" in p.name:
            continue
        if sniff_kind(Source.from_path(p).text) == NET:
            out.append(p)
    return out


ZOO_NETS = _zoo_nets()


def test_zoo_has_nets():
    assert len(ZOO_NETS) >= 100


@pytest.mark.parametrize("path", ZOO_NETS, ids=lambda p: str(p.relative_to(ZOO)))
def test_every_zoo_net_that_parses_draws(path, tmp_path, capsys):
    out = tmp_path / "net.dot"
    parsed = parse_file(path)
    # --force: since issue 13 a net with errors is drawn only when asked (layers in error outlined)
    code = main(["draw", str(path), "-o", str(out), "--collapse", "auto", "--params", "--rf", "--force"])
    if not parsed.syntax_ok:
        assert code == 1 and not out.exists()
        return
    text = out.read_text()
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    from netdef.pipeline import compile
    graph = compile(str(path))
    assert code == (1 if graph.diagnostics.has_errors else 0)
    unknown = [n for n in graph.nodes if n.meta.get("unknown")]
    for n in unknown:  # fork layers are boxes marked unknown
        assert f"{n.type} (unknown)" in text
    # every layer is in the picture: as a box of its own or a row of its producer's box
    for n in graph.nodes:
        assert f">{_html(n.name)}<" in text or f"  {_html(n.name)}" in text, n.name


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def test_svg_tooltips_and_labels(tmp_path):
    out = tmp_path / "alexnet.svg"
    assert main(["draw", str(ALEXNET), "-o", str(out), "--rf", "--params"]) == 0
    text = out.read_text()
    xml.dom.minidom.parseString(text)
    titles = re.findall(r'xlink:title="([^"]*)"', text)
    conv1 = [t for t in titles if 'name: &quot;conv1&quot;' in t]
    assert conv1 and "kernel_size: 11" in conv1[0] and "stride: 4" in conv1[0] and "num_output: 96" in conv1[0]
    # the in-place ReLU is in the same tooltip (and box) as conv1
    assert 'name: &quot;relu1&quot;' in conv1[0]
    assert "+ ReLU" in text
    # geometry, shapes, receptive field and parameter count (96·3·11·11 + 96)
    assert "96 k11 s4" in text
    assert "10×96×55×55" in text and "RF 11, jump 4" in text
    assert "34,944 params" in text
    # conv2 of AlexNet is grouped; pooling states its window
    assert "256 k5 s1 p2 g2" in text and "MAX k3 s2" in text


def test_folding_keeps_one_box_per_chain(tmp_path):
    out = tmp_path / "r50.dot"
    assert main(["draw", str(ZOO / "resnet50" / "deploy.prototxt"), "-o", str(out)]) == 0
    text = out.read_text()
    boxes = re.findall(r"^\s*n\d+ \[label=<", text, re.M)
    # conv+BN+Scale(+ReLU) chains fold: 53 convolutions, 16 Eltwise, pooling, fc, prob, input
    assert 70 <= len(boxes) <= 80
    assert "+ BatchNorm  bn_conv1" in text and "+ Scale  scale_conv1" in text


def test_no_shapes_and_rankdir(tmp_path):
    out = tmp_path / "a.dot"
    assert main(["draw", str(ALEXNET), "-o", str(out), "--no-shapes", "--rankdir", "LR"]) == 0
    text = out.read_text()
    assert "rankdir=LR" in text and "×" not in text


def test_collapse_auto_nests_stages(tmp_path):
    out = tmp_path / "r152.dot"
    assert main(["draw", str(RESNET152), "-o", str(out), "--collapse", "auto"]) == 0
    text = out.read_text()
    stages = re.findall(r'label="stage (res\d)"', text)
    assert stages == ["res2", "res3", "res4", "res5"]
    blocks = re.findall(r"subgraph cluster_\d+_\d+", text)
    assert len(blocks) == 3 + 8 + 36 + 3  # ResNet-152's residual blocks


def test_collapse_by_prefix(tmp_path):
    out = tmp_path / "g.dot"
    net = ZOO / "bvlc_googlenet" / "deploy.prototxt"
    assert main(["draw", str(net), "-o", str(out), "--collapse", "inception_4"]) == 0
    text = out.read_text()
    assert len(re.findall(r"subgraph cluster", text)) == 1 and 'label=inception_4' in text


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_rendered_formats(fmt, magic, tmp_path):
    out = tmp_path / f"lenet.{fmt}"
    assert main(["draw", str(LIBRARY_NETS / "lenet.prototxt"), "-o", str(out)]) in (0, 1)
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 1000


def test_resnet152_draws(tmp_path):
    out = tmp_path / "r152.svg"
    with no_hang(300):
        assert main(["draw", str(RESNET152), "-o", str(out), "--collapse", "auto", "--params", "--rf"]) == 0
    assert out.stat().st_size > 100_000


# --- failures: one line, exit 1, no file --------------------------------------------------

def test_missing_dot(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "a.svg"
    assert main(["draw", str(ALEXNET), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not installed or not on PATH" in err
    assert sorted(os.listdir(tmp_path)) == ["bin"]
    # DOT text needs no Graphviz program
    assert main(["draw", str(ALEXNET), "-o", str(tmp_path / "a.dot")]) == 0


def test_unwritable_output(tmp_path, capsys):
    out = tmp_path / "nope" / "a.svg"
    assert main(["draw", str(ALEXNET), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert main(["draw", str(ALEXNET), "-o", str(ro / "a.png")]) == 1
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o700)


def test_unknown_format(tmp_path, capsys):
    out = tmp_path / "a.jpg"
    assert main(["draw", str(ALEXNET), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown format 'jpg'" in err and ".svg, .png, .pdf or .dot" in err
    assert not out.exists()


def test_not_a_net(tmp_path, capsys):
    out = tmp_path / "a.svg"
    assert main(["draw", str(LIBRARY_SOLVERS / "lenet_solver.prototxt"), "-o", str(out)]) == 1
    assert "E300" in capsys.readouterr().err and not out.exists()


def test_broken_syntax_draws_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('name: "x"\nlayer { name: "a" type: "ReLU" \n')
    out = tmp_path / "a.dot"
    assert main(["draw", str(bad), "-o", str(out)]) == 1
    assert "E105" in capsys.readouterr().err and not out.exists()


def test_public_api(tmp_path):
    import netdef

    graph = netdef.compile(str(ALEXNET))
    import netdef.draw  # noqa: F401 - the submodule must not shadow the function
    netdef.draw_net(graph, str(tmp_path / "a.dot"), rankdir="LR", params=True)
    text = (tmp_path / "a.dot").read_text()
    assert "rankdir=LR" in text and "34,944 params" in text


def test_python_layer_is_described_not_run(tmp_path):
    out = tmp_path / "frcnn.dot"
    assert main(["draw", str(ZOO / "faster_rcnn_zf" / "test.prototxt"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "Python (unknown)" in text and "rpn.proposal_layer.ProposalLayer" in text
    assert 'STYLE="rounded,dashed"' in text


def test_asymmetric_pads_in_the_label(tmp_path):
    """Synopsys' pad_t/pad_l/pad_b/pad_r: the box shows begin+end per axis where they differ."""
    src = tmp_path / "asym.prototxt"
    src.write_text('''name: "asym"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 7 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad_t: 1 pad_b: 2 pad_r: 1 } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad_l: 1 pad_r: 1 } }
layer { name: "sym" type: "Convolution" bottom: "data" top: "sym"
        convolution_param { num_output: 2 kernel_size: 3 pad_h: 1 pad_w: 2 } }
''')
    out = tmp_path / "asym.dot"
    assert main(["draw", str(src), "-o", str(out)]) == 0
    text = out.read_text()
    # conv: height 1 above + 2 below, width 0 left + 1 right
    assert "2 k3 s2 p1+2×0+1<" in text
    # pool: no padding on height, 1 on both sides of width: each axis is symmetric
    assert "MAX k3 s2 p0×1<" in text
    assert "2 k3 s1 p1×2<" in text
