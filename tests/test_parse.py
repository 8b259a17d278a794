"""The text format as real Caffe files write it, checked against protobuf's own text_format."""
import math

import pytest
from google.protobuf import text_format

from netdef.parse import NET, SOLVER, parse_text, sniff_kind
from netdef.proto import pb
from netdef.source import Source


def parse(text, kind=NET):
    return parse_text(Source(text, "t.prototxt"), kind)


def same_as_text_format(text, kind=NET, tf_text=None):
    p = parse(text, kind)
    assert not p.diagnostics.has_errors, [d.render() for d in p.diagnostics]
    ref = (pb.NetParameter if kind == NET else pb.SolverParameter)()
    text_format.Parse(tf_text if tf_text is not None else text, ref)
    assert p.message == ref
    return p.message


@pytest.mark.parametrize("text", [
    'name: "x" layer { name: "a" type: "ReLU" bottom: "d" top: "d" }',
    'layer: { name: "a" }',                                  # `name: {` form
    'layer < name: "a" >',                                   # angle brackets
    'layer { name: "a"; type: "b", }',                       # ; and , separators
    'layer { bottom: ["a", "b", "c"] }',                    # list shorthand
    'layer { bottom: [] }',
    'layer { param: [{lr_mult: 1}, {lr_mult: 2 decay_mult: 0}] }',
    "layer { name: 'single' type: \"dou\\\"ble\" }",
    'layer { name: "a" "b" \'c\' }',                         # adjacent strings concatenate
    'layer { name: "\\x41\\101\\n\\t\\\\" }',               # escapes: hex, octal, C
    'layer { convolution_param { num_output: 0x10 kernel_size: 3 pad: 0 } }',
    'layer { convolution_param { weight_filler { std: 1e-4 min: .5 max: 5. mean: 1f } } }',
    'layer { convolution_param { weight_filler { std: -2.5E+3 } } }',
    'layer { relu_param { negative_slope: -1 } }',           # an integer for a float field
    'layer { phase: TEST include { phase: TRAIN } }',
    'layer { phase: 1 }',                                     # enum by number
    'layer { convolution_param { bias_term: false } }',
    'layer { convolution_param { bias_term: True } }',
    'layer { convolution_param { bias_term: 0 } }',
    'layer { convolution_param { bias_term: t } }',
    '\tlayer {\r\n\tname: "tabs and crlf"\r\n}',
    'layer { name: "no final newline" }',
    '# comment\nlayer { # trailing\n name: "c" # another\n}\n# end',
    'input: "data" input_dim: 1 input_dim: 3 input_dim: 224 input_dim: 224',
])
def test_constructs_match_text_format(text):
    same_as_text_format(text)


def test_utf8_bom_is_ignored_and_columns_stay_put():
    text = '\ufefflayer { nme: "x" }'
    p = parse(text)
    d = next(iter(p.diagnostics))
    assert (d.span.line, d.span.col) == (1, 10)
    ok = parse('\ufeffname: "n"')
    assert ok.message.name == "n" and not ok.diagnostics.has_errors


def test_special_floats():
    p = parse('layer { threshold_param { threshold: inf } } layer { threshold_param { threshold: -inf } }'
              ' layer { threshold_param { threshold: nan } } layer { threshold_param { threshold: -Infinity } }')
    vals = [l.threshold_param.threshold for l in p.message.layer]
    assert vals[0] == math.inf and vals[1] == -math.inf and math.isnan(vals[2]) and vals[3] == -math.inf


def test_solver_fields_and_sniffing():
    text = 'net: "train.prototxt"\nbase_lr: 0.01\nlr_policy: "step"\nstepvalue: 1 stepvalue: 2\nsolver_mode: GPU\n'
    m = same_as_text_format(text, SOLVER)
    assert list(m.stepvalue) == [1, 2]
    assert sniff_kind(text) == SOLVER
    assert sniff_kind('name: "x"\nlayer { }') == NET
    # V1 layers carry `weight_decay` too: that must not make a net look like a solver.
    assert sniff_kind('name: "x"\nlayers {\n  weight_decay: 1\n}') == NET
    assert sniff_kind('item {\n  name: "none"\n  label: 0\n}') is None


def test_locations_of_fields():
    text = 'name: "n"\nlayer {\n  name: "a"\n  convolution_param {\n    kernel_size: 3\n    kernel_size: 5\n  }\n}\n'
    p = parse(text)
    layer = p.loc.msg("layer", 0)
    assert (layer.span.line, layer.span.col) == (2, 1)
    conv = layer.msg("convolution_param")
    assert (conv.field("kernel_size", 1).line, conv.field("kernel_size", 1).col) == (6, 18)
    assert conv.field("kernel_size", 2) is None
    assert layer.field_or_self("type") == layer.span


def test_all_schema_errors_are_reported_not_only_the_first():
    text = 'layer { nam: "a" }\nlayer { convolution_param { kernel_size: "3" } }\nlayer { pooling_param { pool: MAXX } }\n'
    p = parse(text)
    assert [d.code for d in p.diagnostics] == ["E201", "E203", "E204"]
    assert [d.span.line for d in p.diagnostics] == [1, 2, 3]
    assert "did you mean 'name'?" in p.diagnostics.items[0].render()
    assert "did you mean 'MAX'?" in p.diagnostics.items[2].render()


def test_error_limit():
    p = parse_text(Source("layer { x: 1 }\n" * 50, "t"), NET, limit=10)
    assert len(p.diagnostics) == 10 and p.diagnostics.dropped == 40


def test_deep_nesting_is_refused_without_recursion():
    text = "layer { " * 10000 + "}" * 10000
    p = parse(text)
    assert "E106" in {d.code for d in p.diagnostics}


def test_many_layers_parse_in_linear_time():
    import time
    one = 'layer { name: "r" type: "ReLU" bottom: "d" top: "d" }\n'
    t0 = time.perf_counter()
    parse(one * 2000)
    small = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = parse(one * 20000)
    big = time.perf_counter() - t0
    assert len(p.message.layer) == 20000
    assert big < 25 * max(small, 1e-3), (small, big)  # 10x the text, well under 25x the time
