"""V0/V1 nets and old solvers upgrade exactly as Caffe's upgrade tools do.

Oracles: tests/data/conformance/upgrade (upgrade_net_proto_text / upgrade_solver_proto_text
output for the zoo's old files), tests/data/conformance/zoo_shapes.json (the layer list Caffe
built after its own upgrade), and, for the padding layer no zoo file has, the behaviour
Caffe's own test_upgrade_proto.cpp (PaddingLayerUpgradeTest.TestTwoTops) pins down.
"""
import json
import os
import re

import pytest
from google.protobuf import text_format

import netdef
from conftest import CONFORMANCE, ZOO
from netdef.cli import main
from netdef.diagnostics import Diagnostics
from netdef.fmt import format_message
from netdef.parse import Parsed, parse_file, parse_text
from netdef.proto import pb
from netdef.source import Source
from netdef.upgrade import upgrade_parsed

UPGRADE = CONFORMANCE / "upgrade"
CASES = sorted(p.relative_to(UPGRADE) for p in UPGRADE.rglob("*") if p.is_file())


def _caffe(rel):
    text = (UPGRADE / rel).read_text()
    kind = pb.SolverParameter if "solver" in rel.name else pb.NetParameter
    return text_format.Parse(text, kind()), text


def test_every_case_has_its_zoo_original():
    assert len(CASES) >= 60
    assert all((ZOO / rel).is_file() for rel in CASES)


@pytest.mark.parametrize("rel", CASES, ids=str)
def test_upgrade_matches_caffe(rel):
    parsed = netdef.load(ZOO / rel)
    expected, _ = _caffe(rel)
    assert parsed.message == expected
    assert not parsed.diagnostics.has_errors
    # One W213 exactly when Caffe changed something.
    raw = parse_file(ZOO / rel)
    w213 = [d for d in parsed.diagnostics if d.code == "W213"]
    assert len(w213) == (raw.message != expected)


@pytest.mark.parametrize("rel", [c for c in CASES if c.parts[0].startswith("bvlc_v")], ids=str)
def test_a_message_without_locations_upgrades_the_same(rel):
    """Other stages upgrade messages they build themselves (a solver's inline net): no Loc."""
    raw = parse_file(ZOO / rel)
    bare = Parsed(raw.kind, raw.message, None, Source("", "inline"), Diagnostics())
    up = upgrade_parsed(bare)
    assert up.message == _caffe(rel)[0]
    assert format_message(up.message, up.loc) == format_message(up.message)


_NUMBER_LINE = re.compile(r"^(\s*\w+): (-?[0-9.]+(?:e[-+]?\d+)?)$")


def _same_text_but_float_spelling(ours: str, caffe: str) -> bool:
    """Caffe writes a float32 that %.6g does not round-trip with 9 digits (0.00392156839);
    netdef writes the shortest spelling (0.0039215684). Everything else must be identical."""
    a, b = ours.splitlines(), caffe.splitlines()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        mx, my = _NUMBER_LINE.match(x), _NUMBER_LINE.match(y)
        if not (mx and my and mx.group(1) == my.group(1)):
            return False
        import struct
        f32 = lambda s: struct.unpack("<f", struct.pack("<f", float(s)))[0]
        if f32(mx.group(2)) != f32(my.group(2)):
            return False
    return True


@pytest.mark.parametrize("rel", [c for c in CASES if c.parts[0].startswith("bvlc_v")], ids=str)
def test_cli_upgrade_writes_caffes_text(rel, capsys):
    assert main(["upgrade", str(ZOO / rel)]) == 0
    out, err = capsys.readouterr()
    assert _same_text_but_float_spelling(out, _caffe(rel)[1])
    assert "W213" not in err  # the warning is about what this command is doing


def _in_test_phase(layer) -> bool:
    """NetState(phase TEST, level 0, no stages) against a layer's rules (Caffe's StateMeetsRule)."""
    def meets(rule):
        return ((not rule.HasField("phase") or rule.phase == pb.TEST) and not rule.stage and
                (not rule.HasField("min_level") or rule.min_level <= 0) and
                (not rule.HasField("max_level") or rule.max_level >= 0))
    if layer.include:
        return any(meets(r) for r in layer.include)
    return not any(meets(r) for r in layer.exclude)


SHAPES = json.loads((CONFORMANCE / "zoo_shapes.json").read_text())


@pytest.mark.parametrize("rel", sorted(SHAPES), ids=str)
def test_layer_list_and_inputs_match_caffe(rel):
    """Legacy input fields become an Input layer named 'input', placed first, as in the net
    Caffe built; its shapes are the input blob shapes Caffe recorded."""
    parsed = netdef.load(ZOO / rel)
    ours = [[l.name, l.type] for l in parsed.message.layer if _in_test_phase(l)]
    theirs = [l for l in SHAPES[rel]["layers"] if l[1] != "Split"]
    assert ours == theirs
    for layer in parsed.message.layer:
        if layer.type == "Input":
            for top, shape in zip(layer.top, layer.input_param.shape):
                assert list(shape.dim) == SHAPES[rel]["blobs"][top]
    assert not parsed.message.input and not parsed.message.input_dim and not parsed.message.input_shape


# --- locations ---------------------------------------------------------------------------


def _where(span):
    return (span.line, span.source.text[span.start:span.end])


def test_v0_fields_keep_their_spans():
    parsed = netdef.load(ZOO / "bvlc_v0_format" / "lenet.prototxt")
    text = parsed.source.text
    conv1 = parsed.loc.msg("layer", 1)
    assert parsed.message.layer[1].name == "conv1"
    assert text[conv1.name_start:conv1.head_end] == "layers {"
    assert _where(conv1.field("type")) == (11, '"conv"')
    assert _where(conv1.msg("convolution_param").field("kernel_size")) == (13, "5")
    assert _where(conv1.msg("convolution_param").field("num_output")) == (12, "20")
    assert _where(conv1.msg("param", 1).field("lr_mult")) == (22, "2.")
    assert conv1.msg("param", 1).field("decay_mult") is None
    # The Input layer made from `input:`/`input_dim:` points at them.
    inp = parsed.loc.msg("layer", 0)
    assert _where(inp.field("top")) == (2, '"data"')
    assert _where(inp.msg("input_param").msg("shape").field("dim", 3)) == (6, "28")
    assert inp.field_or_self("name").line == 2


def test_v1_fields_keep_their_spans():
    parsed = netdef.load(ZOO / "bvlc_v1_format" / "caffenet_train_val.prototxt")
    data = parsed.loc.msg("layer", 0)
    # mean_file moved from data_param into transform_param, with its span.
    assert _where(data.msg("transform_param").field("mean_file"))[1] == '"data/ilsvrc12/imagenet_mean.binaryproto"'
    conv = next(i for i, l in enumerate(parsed.message.layer) if l.name == "conv1")
    loc = parsed.loc.msg("layer", conv)
    assert _where(loc.field("type"))[1] == "CONVOLUTION"
    assert parsed.source.text[loc.msg("param", 1).span.start:].startswith("blobs_lr: 2")
    assert parsed.source.text[loc.msg("param", 1).field("decay_mult").start:].startswith("0")
    assert _where(loc.msg("convolution_param").field("kernel_size"))[1] == "11"


def test_solver_type_becomes_type_with_its_span():
    parsed = netdef.load(ZOO / "enet" / "enet_solver_encoder.prototxt")
    assert parsed.message.type == "Adam" and not parsed.message.HasField("solver_type")
    assert _where(parsed.loc.field("type")) == (18, "ADAM")
    [w] = [d for d in parsed.diagnostics if d.code == "W213"]
    assert "'solver_type' enum" in w.message and w.span.line == 18


# --- cases no zoo file has -----------------------------------------------------------------


def _load_text(text, kind="net"):
    return upgrade_parsed(parse_text(Source(text, "t.prototxt"), kind))


def _codes(parsed):
    return [d.code for d in parsed.diagnostics]


V0_PADDING = """
name: "padded"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 32 input_dim: 32
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 8 kernelsize: 5 stride: 1 } bottom: "pad1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 3 stride: 2 } bottom: "pad1" top: "pool1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
"""


def test_v0_padding_layer_is_folded_into_every_layer_it_feeds():
    parsed = _load_text(V0_PADDING)
    net = parsed.message
    assert [l.name for l in net.layer] == ["input", "conv1", "pool1", "relu1"]
    conv, pool = net.layer[1], net.layer[2]
    assert list(conv.bottom) == ["data"] and list(conv.convolution_param.pad) == [2]
    assert list(conv.convolution_param.kernel_size) == [5] and list(conv.convolution_param.stride) == [1]
    assert list(pool.bottom) == ["data"] and pool.pooling_param.pad == 2
    assert pool.pooling_param.pool == pb.PoolingParameter.AVE and pool.pooling_param.kernel_size == 3
    # The pad points at the padding layer's `pad: 2`.
    pad = parsed.loc.msg("layer", 1).msg("convolution_param").field("pad")
    assert (pad.line, pad.source.text[pad.start:pad.end]) == (5, "2")
    assert _codes(parsed) == ["W213"]


def test_padding_into_a_layer_that_cannot_pad_is_an_error():
    text = V0_PADDING.replace('name: "relu1" type: "relu" } bottom: "conv1"', 'name: "relu1" type: "relu" } bottom: "pad1"')
    parsed = _load_text(text)
    [e] = [d for d in parsed.diagnostics if d.code == "E212"]
    assert "'relu' layer" in e.message and e.span.line == 8 and e.related


def test_v0_field_on_a_layer_type_that_lacks_it():
    parsed = _load_text('layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "y" }\n'
                        'input: "x" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1\n')
    [e] = [d for d in parsed.diagnostics if d.code == "E211"]
    assert "num_output" in e.message and "'relu'" in e.message and e.span.col == 41
    assert "conv, innerproduct" in e.notes[0]


def test_unknown_v0_type_and_dropped_fields():
    parsed = _load_text('layers { layer { name: "c" type: "innerprod" } top: "y" }\n'
                        'layers { layer { name: "d" type: "data" new_num: 3 source: "s" } top: "z" }\n')
    e = [d for d in parsed.diagnostics if d.code == "E212"]
    assert len(e) == 1 and "'innerprod' is not a V0 layer type" in e[0].message
    assert "did you mean 'innerproduct'?" in e[0].notes
    [w] = [d for d in parsed.diagnostics if d.code == "W214"]
    assert "new_num" in w.message
    assert parsed.message.layer[1].data_param.source == "s"


def test_fields_outside_the_v0_layer_block_are_dropped_with_a_warning():
    parsed = _load_text('input: "a" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1\n'
                        'layers { name: "outer" layer { name: "inner" type: "relu" } bottom: "a" top: "b" }\n')
    assert [l.name for l in parsed.message.layer] == ["input", "inner"]  # as Caffe: the outer name is lost
    [w] = [d for d in parsed.diagnostics if d.code == "W214"]
    assert "'name'" in w.message and (w.span.line, w.span.col) == (2, 10)
    assert not parsed.diagnostics.has_errors


def test_a_v0_file_with_a_layers_block_lacking_layer_is_an_error():
    parsed = _load_text('layers { layer { name: "a" type: "data" source: "s" } top: "x" }\n'
                        'layers { name: "b" type: RELU bottom: "x" top: "x" }\n')
    [e] = parsed.diagnostics.errors
    assert e.code == "E212" and e.span.line == 2 and "no V0 'layer { ... }'" in e.message


def test_mixing_layer_and_layers_is_refused():
    parsed = _load_text('layer { name: "a" type: "ReLU" bottom: "x" top: "x" }\n'
                        'layers { name: "b" type: RELU bottom: "x" top: "x" }\n')
    [e] = parsed.diagnostics.errors
    assert e.code == "E210" and e.span.line == 2 and e.related[0][0].line == 1


@pytest.mark.parametrize("dims, line", [(3, 1), (5, 1)])
def test_input_dim_count_must_be_four_per_input(dims, line):
    text = 'input: "data"\n' + "".join(f"input_dim: {i + 1}\n" for i in range(dims)) + \
        'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n'
    parsed = _load_text(text)
    [e] = parsed.diagnostics.errors
    assert e.code == "E212" and "need 4 'input_dim' values, but " + str(dims) in e.message
    # The span is the last value given (too few) or the first one too many.
    assert e.span.line == 1 + min(dims, 4 + (dims > 4) * 1)


def test_bare_input_without_shape_is_dropped():
    parsed = _load_text('input: "data"\nlayer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    assert not parsed.message.input and [l.name for l in parsed.message.layer] == ["r"]


def test_v1_param_names_share_modes_and_lrs():
    parsed = _load_text('layers { name: "ip" type: INNER_PRODUCT bottom: "x" top: "y"\n'
                        '  param: "w" param: "b" blob_share_mode: PERMISSIVE blobs_lr: 1 blobs_lr: 2 weight_decay: 1\n'
                        '  inner_product_param { num_output: 10 } include { phase: TRAIN } }\n')
    l = parsed.message.layer[0]
    assert l.type == "InnerProduct" and l.include[0].phase == pb.TRAIN
    assert [(p.name, p.lr_mult) for p in l.param] == [("w", 1), ("b", 2)]
    assert l.param[0].share_mode == pb.ParamSpec.PERMISSIVE and not l.param[1].HasField("share_mode")
    assert l.param[0].decay_mult == 1 and not l.param[1].HasField("decay_mult")
    assert parsed.loc.msg("layer").msg("param", 1).field("name").col == 21


def test_batch_norm_with_three_params_is_frozen():
    layer = 'layer {{ name: "bn" type: "BatchNorm" bottom: "x" top: "x" {p} }}\n'
    learned = _load_text(layer.format(p="param { lr_mult: 1 } " * 3))
    assert all(p.lr_mult == 0 and p.decay_mult == 0 for p in learned.message.layer[0].param)
    assert _codes(learned) == ["W213"]
    frozen = _load_text(layer.format(p="param { lr_mult: 0 } " * 3))
    assert all(p.HasField("decay_mult") and p.decay_mult == 0 for p in frozen.message.layer[0].param)
    assert _codes(frozen) == []  # nothing changes in meaning: no warning
    two = _load_text(layer.format(p="param { lr_mult: 1 } " * 2))
    assert [p.lr_mult for p in two.message.layer[0].param] == [1, 1]


def test_solver_type_and_type_together_is_an_error():
    parsed = _load_text('base_lr: 0.1\nsolver_type: ADAM\ntype: "Adam"\n', "solver")
    [e] = parsed.diagnostics.errors
    assert e.code == "E212" and e.span.line == 2 and e.related[0][0].line == 3


def test_current_files_come_back_unchanged():
    raw = parse_file(ZOO / "resnet18" / "deploy.prototxt")
    assert upgrade_parsed(raw) is raw


# --- the command -------------------------------------------------------------------------


def test_upgrade_output_file(tmp_path, capsys):
    out = tmp_path / "lenet_v2.prototxt"
    assert main(["upgrade", str(ZOO / "bvlc_v0_format" / "lenet.prototxt"), "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    again = netdef.load(out)
    assert again.message == _caffe(UPGRADE.relative_to(UPGRADE) / "bvlc_v0_format" / "lenet.prototxt")[0]
    assert _codes(again) == []  # the written file is current
    assert sorted(os.listdir(tmp_path)) == ["lenet_v2.prototxt"]  # no temporary left behind


def test_upgrade_failure_leaves_the_output_alone(tmp_path, capsys):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "a" type: "ReLU" }\nlayers { name: "b" type: RELU }\n')
    out = tmp_path / "out.prototxt"
    out.write_text("previous contents\n")
    assert main(["upgrade", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E210]" in err and "Traceback" not in err
    assert out.read_text() == "previous contents\n"
    assert sorted(os.listdir(tmp_path)) == ["bad.prototxt", "out.prototxt"]


def test_upgrade_into_a_missing_directory(tmp_path, capsys):
    code = main(["upgrade", str(ZOO / "bvlc_v1_format" / "lenet.prototxt"), "-o", str(tmp_path / "no" / "x")])
    assert code == 1 and "does not exist" in capsys.readouterr().err


def test_upgrade_of_a_current_file_says_so(capsys):
    assert main(["upgrade", str(ZOO / "resnet18" / "deploy.prototxt")]) == 0
    out, err = capsys.readouterr()
    assert "already in the current format" in err
    assert parse_text(Source(out), "net").message == parse_file(ZOO / "resnet18" / "deploy.prototxt").message
