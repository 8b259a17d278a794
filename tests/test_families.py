"""What each layer family file owns for the other tools (issue 12): its draw family, whether a
deploy graph drops it (one training-only flag), BatchNorm/Scale folding; and that layers lower
themselves through the lowering context `g` alone, never importing netdef.export."""
from __future__ import annotations

import ast
import inspect
import re

import numpy as np
import pytest

from conftest import REPO
from netdef import codes
from netdef.cli import main
from netdef.draw import FILLS
from netdef.export.onnx import TRAINING_ONLY, export, is_training_only
from netdef.export.verify import verify
from netdef.layers import base

LAYERS = REPO / "netdef" / "layers"


def _imports(path):
    """Every module a file imports, function-level imports included, as absolute names."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                pkg = ["netdef", "layers"][:max(0, 3 - node.level)]
                mod = ".".join(pkg + ([mod] if mod else []))
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return out


def test_layers_never_import_export():
    # layers/doc.py (the layer table) reads export and the reference: it is an L4 tool that only
    # lives in this folder until it moves to netdef/layer_table.py.
    bad = {p.name: m for p in LAYERS.glob("*.py") if p.name != "doc.py"
           for m in _imports(p) if m == "netdef.export" or m.startswith("netdef.export.")}
    assert not bad, bad


# --- one training-only set ------------------------------------------------------------------------

def test_training_only_is_the_class_flag():
    from netdef import reference
    flagged = {t for t in base.known_types() if base.get(t).training_only}
    assert TRAINING_ONLY == flagged == base.training_only_types() == reference.TRAINING_ONLY
    # Every loss is training-only (Layer.__init_subclass__), whatever its family file.
    assert {t for t in base.known_types() if base.get(t).loss} <= flagged
    # The three the reference's list lacked: two losses of the detection forks, and SSD's
    # evaluation against ground-truth boxes (a metric like Accuracy).
    assert {"SmoothL1Loss", "MultiBoxLoss", "DetectionEvaluate"} <= flagged
    assert {"Accuracy", "Silence", "HDF5Output"} <= flagged
    assert not {"Convolution", "ReLU", "Softmax", "DetectionOutput", "Python"} & flagged


SMOOTH_L1 = """name: "t"
layer { name: "data" type: "Input" top: "data" top: "target"
        input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } shape { dim: 2 dim: 5 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "l1" type: "SmoothL1Loss" bottom: "fc" bottom: "target" top: "l1" }
"""


def test_export_drops_a_fork_loss(tmp_path):
    p = tmp_path / "net.prototxt"
    p.write_text(SMOOTH_L1)
    ex = export(str(p))
    g = ex.skeleton.graph
    assert [i.name for i in g.input] == ["data"] and [o.name for o in g.output] == ["fc"]
    dropped = [d for d in ex.diagnostics if d.code == codes.EXPORT_DROPPED.id]
    assert [d.message.split("'")[1] for d in dropped] == ["l1"]
    assert [n.name for n in ex.exporter.graph.nodes if is_training_only(n)] == ["l1"]


# --- draw families ----------------------------------------------------------------------------------

# Files whose every class is of one family (detection.py holds heads, pooling, losses and
# post-processing; data.py also Filter and Python; loss.py also the sinks).
ONE_FAMILY = {"activation.py": "activation", "conv.py": "convolution", "dense.py": "dense",
              "merge.py": "merge", "norm.py": "normalisation", "pool.py": "pooling",
              "recurrent.py": "recurrent", "resize.py": "resize", "shape.py": "shape", "fork.py": "data"}


def test_each_class_says_its_family():
    for t in base.known_types():
        impl = base.get(t)
        fam = type(impl).family
        assert fam in FILLS or (t == "Python" and fam == "other"), (t, fam)
        f = inspect.getsourcefile(type(impl)).rsplit("/", 1)[-1]
        if f in ONE_FAMILY:
            assert fam == ONE_FAMILY[f], (t, f, fam)
    # The three draw's own table had put elsewhere than their files do.
    assert (base.get("ArgMax").family, base.get("Crop").family, base.get("Upsample").family) == \
        ("shape", "merge", "resize")


def test_draw_colours_by_the_class_family(tmp_path, capsys):
    p = tmp_path / "net.prototxt"
    p.write_text("""name: "d"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }
layer { name: "am" type: "ArgMax" bottom: "data" top: "am" argmax_param { axis: 1 } }
layer { name: "crop" type: "Crop" bottom: "data" bottom: "am" top: "crop" crop_param { axis: 2 } }
layer { name: "up" type: "Upsample" bottom: "crop" top: "up" upsample_param { scale: 2 } }
""")
    out = tmp_path / "net.dot"
    assert main(["draw", str(p), "-o", str(out)]) == 0
    text = out.read_text()
    by_name = {n: f for f, n in re.findall(r'BGCOLOR="(#[0-9a-f]{6})" COLOR="#555555"><TR><TD ALIGN="LEFT"><B>(\w+)</B>',
                                           text)}
    assert by_name["am"] == FILLS["shape"] and by_name["crop"] == FILLS["merge"]
    assert by_name["up"] == FILLS["resize"] and by_name["data"] == FILLS["data"]


# --- folding BatchNorm / Scale: the exporter asks the norm family ------------------------------------

def test_norm_family_answers_the_fold_questions():
    bn, scale = base.get("BatchNorm"), base.get("Scale")
    assert callable(bn.foldable) and callable(scale.foldable)
    assert getattr(base.get("BN"), "foldable", None) is None         # the forks' BN is not folded
    mean, var = bn.statistics(np.array([4.0, 6.0]), np.array([18.0, 8.0]), np.array([2.0]))
    assert mean.tolist() == [2.0, 3.0] and var.tolist() == [9.0, 4.0]
    mean, var = bn.statistics(np.array([4.0]), np.array([18.0]), np.array([0.0]))   # factor 0 means 0
    assert mean.tolist() == [0.0] and var.tolist() == [0.0]


FOLD_SYNOPSYS = """name: "f"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv"
        batch_norm_param { use_global_stats: true add_eps_before_sqrt: EPS eps: 0.5 } }
"""


@pytest.mark.parametrize("before", ["true", "false"])
def test_folding_follows_synopsys_eps_after_sqrt(tmp_path, before):
    # synopsys-caffe src/caffe/layers/batch_norm_layer.cpp: add_eps_before_sqrt false divides by
    # sqrt(var) + eps; the folded convolution must too (it used sqrt(var + eps) for both).
    p = tmp_path / "net.prototxt"
    p.write_text(FOLD_SYNOPSYS.replace("EPS", before))
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 5)).astype(np.float32)
    report = verify(str(p), inputs={"data": x}, fold=True)
    assert report.first_bad is None and report.stopped is None, report.first_bad
    ex = export(str(p))
    assert [n.op_type for n in ex.skeleton.graph.node] == ["Conv"]           # folded
