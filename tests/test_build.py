"""Graph building: NetState filtering as Caffe's FilterNet/StateMeetsRule, in-place versions,
fan-out, inputs, outputs, bottoms before tops, duplicate tops."""
import pytest
from conftest import no_hang, ZOO

import netdef
from netdef.build import build, layer_included, net_state
from netdef.ir import NetState
from netdef.parse import parse_text
from netdef.proto import pb
from netdef.source import Source


def _parse(text):
    return parse_text(Source(text, "t.prototxt"), "net")


def _compile(text, **kw):
    return netdef.compile(_parse(text), **kw)


def _rule(text):
    lp = pb.LayerParameter()
    from google.protobuf import text_format
    text_format.Parse(text, lp)
    return lp


# Each row: a layer's rules, the state, and whether Caffe keeps the layer (StateMeetsRule:
# phase equal; level >= min_level and <= max_level; all stages present; no not_stage present;
# include: any rule met; exclude: no rule met).
@pytest.mark.parametrize("rules,state,kept", [
    ("", NetState("TEST"), True),
    ("include { phase: TRAIN }", NetState("TEST"), False),
    ("include { phase: TRAIN }", NetState("TRAIN"), True),
    ("exclude { phase: TEST }", NetState("TEST"), False),
    ("exclude { phase: TEST }", NetState("TRAIN"), True),
    ("include { min_level: 2 }", NetState("TEST", 1), False),
    ("include { min_level: 2 }", NetState("TEST", 2), True),
    ("include { max_level: 2 }", NetState("TEST", 3), False),
    ("include { max_level: -1 }", NetState("TEST", 0), False),
    ("include { stage: 'a' stage: 'b' }", NetState("TEST", 0, ("a",)), False),
    ("include { stage: 'a' stage: 'b' }", NetState("TEST", 0, ("b", "a")), True),
    ("include { not_stage: 'a' }", NetState("TEST", 0, ("a",)), False),
    ("include { not_stage: 'a' }", NetState("TEST", 0, ("c",)), True),
    ("include { phase: TRAIN } include { stage: 's' }", NetState("TEST", 0, ("s",)), True),
    ("exclude { stage: 'x' } exclude { phase: TRAIN }", NetState("TRAIN"), False),
    ("include { phase: TEST stage: 'val' }", NetState("TEST"), False),
])
def test_state_meets_rule_table(rules, state, kept):
    assert layer_included(state, _rule(rules)) is kept


def test_state_from_file_and_options():
    msg = _parse('state { stage: "deploy" level: 5 }\nlayer { name: "a" type: "ReLU" }').message
    s = net_state(msg, "train", ["extra"], 2)
    assert s == NetState("TRAIN", 2, ("deploy", "extra"))


def test_phase_filtering_on_a_zoo_train_val():
    path = str(ZOO / "bvlc_googlenet" / "train_val.prototxt")
    train = netdef.compile(path, phase="TRAIN", inputs={"data": (32, 3, 224, 224)})
    test = netdef.compile(path, phase="TEST", inputs={"data": (50, 3, 224, 224)})
    assert train.node("loss1/loss") is not None and train.node("loss1/top-1") is None
    assert test.node("loss1/top-1") is not None
    assert {v.name for v in train.outputs} == {"loss1/loss1", "loss2/loss2", "loss3/loss3"}
    assert test.blob("loss3/top-5").meta["shape"] == ()
    assert train.node("data").param.data_param.batch_size == 32


def test_stages_select_layers():
    path = str(ZOO / "bvlc_mnist" / "mnist_autoencoder.prototxt")
    g = netdef.compile(path, phase="TEST", stages=["test-on-test"], inputs={"data": (100, 1, 28, 28)})
    names = [n.name for n in g.nodes]
    assert names.count("data") == 1
    assert g.node("data").param.data_param.source.endswith("mnist_test_lmdb")


def test_in_place_versions_fan_out_and_outputs():
    g = _compile('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }\n'
                 'layer { name: "r1" type: "ReLU" bottom: "x" top: "x" }\n'
                 'layer { name: "r2" type: "TanH" bottom: "x" top: "x" }\n'
                 'layer { name: "a" type: "Sigmoid" bottom: "x" top: "a" }\n'
                 'layer { name: "b" type: "AbsVal" bottom: "x" top: "b" }')
    versions = [v for v in g.values if v.name == "x"]
    assert [v.version for v in versions] == [0, 1, 2]
    assert [v.producer.name for v in versions] == ["in", "r1", "r2"]
    assert g.blob("x") is versions[2]
    assert [c.name for c in versions[2].consumers] == ["a", "b"]  # explicit fan-out
    assert g.node("r1").meta["in_place"] == [True]
    assert [v.name for v in g.outputs] == ["a", "b"]
    assert [v.name for v in g.inputs] == ["x"]
    assert str(g) == """graph t (phase=TEST level=0) {
  %x:(1,2) = Input[in]()
  %x@1:(1,2) = ReLU[r1](%x)
  %x@2:(1,2) = TanH[r2](%x@1)
  %a:(1,2) = Sigmoid[a](%x@2)
  %b:(1,2) = AbsVal[b](%x@2)
  return %a, %b
}""".replace("graph t", "graph <unnamed>")
    # the in-place write costs no activation memory
    assert g.node("r1").meta["cost"]["activation_bytes"] == 0
    assert g.node("a").meta["cost"]["activation_bytes"] == 8


def test_undefined_bottom_did_you_mean_and_later_layer():
    g = _compile('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
                 'layer { name: "a" type: "ReLU" bottom: "dat" top: "a" }\n'
                 'layer { name: "b" type: "ReLU" bottom: "c" top: "b" }\n'
                 'layer { name: "c" type: "ReLU" bottom: "data" top: "c" }')
    errs = [d for d in g.diagnostics if d.code == "E301"]
    assert len(errs) == 2
    assert "'dat'" in errs[0].message and "did you mean 'data'?" in errs[0].notes
    assert errs[0].span.line == 2 and errs[0].span.col == 40
    assert "produced later, by layer 'c'" in errs[1].notes[0]
    assert errs[1].related[0][0].line == 4


def test_bottom_from_excluded_layer_is_explained():
    g = _compile('layer { name: "d" type: "Input" top: "x" include { phase: TRAIN } input_param { shape { dim: 1 } } }\n'
                 'layer { name: "r" type: "ReLU" bottom: "x" top: "y" }', phase="TEST")
    (err,) = [d for d in g.diagnostics if d.code == "E301"]
    assert "not part of the net in phase=TEST" in err.notes[0]


def test_duplicate_top_and_in_place_index():
    g = _compile('layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 1 dim: 2 } } }\n'
                 'layer { name: "a" type: "ReLU" bottom: "x" top: "y" }\n'
                 'layer { name: "e" type: "Eltwise" bottom: "x" bottom: "y" top: "y" }\n'
                 'layer { name: "s" type: "Slice" bottom: "x" top: "x" top: "z" slice_param { axis: 1 } }')
    dups = [d for d in g.diagnostics if d.code == "E302"]
    assert [d.message for d in dups] == [
        "top 'y' of layer 'a' is already produced by layer 'in'",
        "top 'y' of layer 'e' is already produced by layer 'a'"]
    assert "top 0 to repeat bottom 0; here 'y' is bottom 1" in dups[1].notes[0]
    assert dups[0].related and dups[0].related[0][0].line == 1
    assert g.node("s").meta["in_place"] == [True, False]


def test_include_and_exclude_together():
    g = _compile('layer { name: "r" type: "ReLU" bottom: "x" top: "x" include { phase: TEST } exclude { phase: TRAIN } }')
    assert "E303" in [d.code for d in g.diagnostics]


def test_blob_counts_checked():
    g = _compile('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }\n'
                 'layer { name: "e" type: "Eltwise" bottom: "x" top: "e" }\n'
                 'layer { name: "l" type: "SoftmaxWithLoss" bottom: "x" top: "l" }')
    msgs = [d.message for d in g.diagnostics if d.code == "E315"]
    assert msgs == ["a Eltwise layer takes at least 2 bottoms, but layer 'e' has 1",
                    "a SoftmaxWithLoss layer takes 2 bottoms, but layer 'l' has 1"]


def test_legacy_inputs_without_upgrade():
    parsed = _parse('input: "data" input_dim: 1 input_dim: 3 input_dim: 5 input_dim: 5\ninput: "im_info"\n'
                    'input_shape { dim: 1 }\n'
                    'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }')
    g = build(parsed)
    assert "E307" in [d.code for d in g.diagnostics]  # both input_dim and input_shape
    parsed = _parse('input: "data" input_dim: 1 input_dim: 3 input_dim: 5 input_dim: 5\n'
                    'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }')
    g = build(parsed)
    from netdef.passes import run_all
    run_all(g)
    assert g.inputs[0].producer is None and g.blob("r").meta["shape"] == (1, 3, 5, 5)


def test_legacy_inputs_through_compile():
    g = netdef.compile(str(ZOO / "bvlc_alexnet" / "deploy_input_shape_2015.prototxt"))
    assert g.blob("data").meta["shape"] == (10, 3, 227, 227)
    assert g.blob("prob").meta["shape"] == (10, 1000)


def test_warnings_unused_top_and_dead_layer():
    g = _compile('layer { name: "in" type: "Input" top: "x" top: "lbl" input_param { shape { dim: 2 dim: 4 } } }\n'
                 'layer { name: "a" type: "ReLU" bottom: "x" top: "a" }\n'
                 'layer { name: "b" type: "ReLU" bottom: "x" top: "b" }\n'
                 'layer { name: "quiet" type: "Silence" bottom: "b" }')
    codes = {d.code: d for d in g.diagnostics}
    assert "top 'lbl' of layer 'in' is never used" in codes["W311"].message
    assert codes["W312"].message == "the results of layer 'b' reach no net output (only Silence layer 'quiet' reads them)"
    assert not g.diagnostics.has_errors


def test_compile_never_raises():
    g = netdef.compile("/nonexistent/net.prototxt")
    assert [d.code for d in g.diagnostics] == ["E100"]
    g = netdef.compile(_parse("layer { name: 'a' type: 'ReLU' "))
    assert g.diagnostics.has_errors and g.nodes == []
    g = netdef.compile(str(ZOO / "bvlc_alexnet" / "solver.prototxt"))
    assert [d.code for d in g.diagnostics][-1] == "E300"


def test_large_net_analysis():
    # Its speed is measured in benchmarks/analysis.py (RESULTS.md), not asserted here.
    parsed = netdef.load(str(ZOO / "inception_resnet_v2" / "deploy.prototxt"))
    with no_hang(120):
        g = netdef.compile(parsed)
    assert len(g.nodes) > 900 and not g.diagnostics.has_errors


def test_loss_layers_get_an_automatic_top(capsys):
    # Caffe's LossLayer::AutoTopBlobs: a loss written without a top gets one anonymous
    # "(automatic)" top (Net::Init's AppendTop with no name map), which holds the loss but is
    # neither a net output nor readable by later layers. Accuracy is no LossLayer: it needs a top.
    text = ('layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" }\n'
            'layer { name: "e" type: "EuclideanLoss" bottom: "x" bottom: "x" }\n'
            'layer { name: "r" type: "ReLU" bottom: "x" top: "r" }\n')
    g = _compile(text)
    assert not g.diagnostics.has_errors, [d.render() for d in g.diagnostics]
    for name in ("loss", "e"):
        (top,) = g.node(name).outputs
        assert top.name == "(automatic)" and top.meta["shape"] == () and top.meta.get("automatic")
    assert [v.name for v in g.outputs] == ["r"]  # anonymous tops are no net outputs
    assert g.blob("(automatic)") is None
    g = _compile(text + 'layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "y" }\n')
    assert [d.message for d in g.diagnostics if d.code == "E315"] == \
        ["a Accuracy layer takes 1 to 2 tops, but layer 'acc' has 0"]
    # A later layer cannot read the anonymous top.
    g = _compile(text + 'layer { name: "s" type: "Silence" bottom: "(automatic)" }\n')
    assert [d.code for d in g.diagnostics if d.is_error] == ["E301"]


@pytest.mark.parametrize("solver", ["bvlc_v0_format/lenet_solver.prototxt",
                                    "bvlc_finetune_pascal_detection/pascal_finetune_solver.prototxt"])
def test_zoo_solvers_with_topless_losses(capsys, solver):
    from netdef.cli import main
    code = main(["solver", str(ZOO / solver)])
    out, err = capsys.readouterr()
    assert code == 0 and "E315" not in err and "error[" not in err and "Traceback" not in err


def test_fork_losses_are_loss_layers_too():
    # py-faster-rcnn's SmoothL1LossLayer and SSD's MultiBoxLossLayer derive from LossLayer, so
    # they inherit AutoTopBlobs: written without a top, they still get their scalar.
    g = _compile('layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 4 dim: 8 } } }\n'
                 'layer { name: "l1" type: "SmoothL1Loss" bottom: "x" bottom: "y" }\n')
    assert [d.code for d in g.diagnostics if d.is_error] == []
    (top,) = g.node("l1").outputs
    assert top.name == "(automatic)" and top.meta["shape"] == ()
