"""Definitions that parse but make no sense: each gets a clear, located diagnostic (the code,
the line of the offending layer, the layer's name) and never a crash, through `check`,
`summary` and `export`.

Expected behaviour is Caffe's: Net::Init refuses bottoms that nothing produced before and tops
produced twice (unless in place); Blob::Reshape refuses more than INT_MAX elements; the
layers' LayerSetUp/Reshape CHECKs refuse zero kernels, strides, groups and outputs,
out-of-order slice points, two -1 in a Reshape, and crops past the edge.
"""
import re

import pytest

from conftest import no_hang
from fuzzlib import cli_ok, run_cli

DATA = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 6 dim: 8 dim: 8 } } }'


def net(*layers) -> str:
    return "\n".join((DATA,) + layers) + "\n"


def conv(name, params):
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "data" top: "{name}" '
            f'convolution_param {{ {params} }} }}')


def pool(name, params):
    return f'layer {{ name: "{name}" type: "Pooling" bottom: "data" top: "{name}" pooling_param {{ {params} }} }}'


# name -> (definition, [(code, line, words the message must contain)])
CASES = {
    "cycle": (net('layer { name: "a" type: "ReLU" bottom: "b" top: "a" }',
                  'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }'),
              [("E301", 2, ["'b'", "'a'"])]),
    "in_place_on_nothing": (net('layer { name: "a" type: "ReLU" bottom: "z" top: "z" }'),
                            [("E301", 2, ["'z'", "'a'"])]),
    "in_place_on_the_wrong_bottom": (net('layer { name: "x" type: "ReLU" bottom: "data" top: "x" }',
                                         'layer { name: "c" type: "Concat" bottom: "x" bottom: "data" top: "data" }'),
                                     [("E302", 3, ["'data'", "'c'"])]),
    "swapped_in_place_tops": (net('layer { name: "s" type: "Slice" bottom: "data" top: "x" top: "y" slice_param { axis: 1 } }',
                                  'layer { name: "w" type: "Eltwise" bottom: "x" bottom: "y" top: "y" }'),
                              [("E302", 3, ["'y'", "'w'", "'s'"])]),
    "bottom_before_top": (net('layer { name: "late" type: "ReLU" bottom: "early" top: "late" }',
                              'layer { name: "early" type: "ReLU" bottom: "data" top: "early" }'),
                          [("E301", 2, ["'early'", "'late'"])]),
    "two_producers": (net('layer { name: "a" type: "ReLU" bottom: "data" top: "y" }',
                          'layer { name: "b" type: "Sigmoid" bottom: "data" top: "y" }'),
                      [("E302", 3, ["'y'", "'b'", "'a'"])]),
    "one_layer_two_equal_tops": (net('layer { name: "c" type: "Split" bottom: "data" top: "p" top: "p" }'),
                                 [("E302", 2, ["'p'"])]),
    "int64_overflow": ('layer { name: "data" type: "Input" top: "data" input_param { shape { '
                       'dim: 9223372036854775807 dim: 9223372036854775807 dim: 4 } } }\n',
                       [("E402", 1, ["elements", "2,147,483,647"])]),
    "dim_past_int64": ('layer { name: "data" type: "Input" top: "data" input_param { shape { '
                       'dim: 9223372036854775808 } } }\n', [("E205", 1, ["int64"])]),
    "int32_overflow": ('input: "data"\ninput_shape { dim: 65536 dim: 65536 }\n', [("E402", 1, ["4,294,967,296"])]),
    "negative_dim": ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: -3 dim: 4 } } }\n',
                     [("E404", 1, ["negative"])]),
    "params_past_int_max": (net('layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" '
                                'inner_product_param { num_output: 2147483647 } }'),
                            [("E402", 2, ["'fc'"])]),
    "kernel_0": (net(conv("k0", "num_output: 2 kernel_size: 0")), [("E404", 2, ["'k0'", "kernel size"])]),
    "kernel_2_31": (net(conv("kbig", "num_output: 2 kernel_size: 2147483648")), [("E404", 2, ["'kbig'", "2147483648"])]),
    "stride_0": (net(conv("s0", "num_output: 2 kernel_size: 3 stride: 0")), [("E404", 2, ["'s0'", "stride"])]),
    "stride_2_31": (net(conv("sbig", "num_output: 2 kernel_size: 3 stride: 2147483648")), [("E404", 2, ["'sbig'"])]),
    "pad_2_31": (net(conv("pbig", "num_output: 2 kernel_size: 3 pad: 2147483648")), [("E402", 2, ["'pbig'"])]),
    "group_0": (net(conv("g0", "num_output: 2 kernel_size: 3 group: 0")), [("E405", 2, ["'g0'", "group"])]),
    "group_not_dividing": (net(conv("g4", "num_output: 2 kernel_size: 3 group: 4")), [("E405", 2, ["'g4'"])]),
    "num_output_0": (net(conv("n0", "num_output: 0 kernel_size: 3"),
                         'layer { name: "ip0" type: "InnerProduct" bottom: "data" top: "ip0" '
                         'inner_product_param { num_output: 0 } }'),
                     [("E404", 2, ["'n0'", "num_output"]), ("E404", 3, ["'ip0'"])]),
    "pool_kernel_0": (net(pool("p0", "kernel_size: 0")), [("E404", 2, ["'p0'"])]),
    "pool_stride_0": (net(pool("p1", "kernel_size: 2 stride: 0")), [("E404", 2, ["'p1'", "stride"])]),
    "pool_kernel_2_31": (net(pool("p2", "kernel_size: 2147483648")), [("E402", 2, ["'p2'"])]),
    "pool_pad_2_31": (net(pool("p3", "kernel_size: 2 pad: 2147483648")), [("E402", 2, ["'p3'", "pad"])]),
    "slice_points_out_of_order": (net('layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" top: "c" '
                                      'slice_param { axis: 1 slice_point: 4 slice_point: 2 } }'),
                                  [("E406", 2, ["'s'", "4, 2"])]),
    "slice_point_past_the_end": (net('layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" '
                                     'slice_param { axis: 1 slice_point: 9 } }'), [("E406", 2, ["9"])]),
    "slice_points_for_too_few_tops": (net('layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" top: "c" '
                                          'slice_param { axis: 1 slice_point: 3 } }'), [("E406", 2, ["3 tops"])]),
    "reshape_two_minus_one": (net('layer { name: "r" type: "Reshape" bottom: "data" top: "r" '
                                  'reshape_param { shape { dim: -1 dim: -1 } } }'), [("E404", 2, ["'r'", "-1"])]),
    "reshape_not_divisible": (net('layer { name: "r" type: "Reshape" bottom: "data" top: "r" '
                                  'reshape_param { shape { dim: 5 dim: -1 } } }'), [("E409", 2, ["768"])]),
    "crop_past_the_edge": (net(pool("small", "kernel_size: 2 stride: 2"),
                               'layer { name: "c" type: "Crop" bottom: "data" bottom: "small" top: "c" '
                               'crop_param { axis: 2 offset: 5 } }'),
                           [("E407", 3, ["'c'", "offset 5"])]),
    "crop_offset_2_32": (net(pool("small", "kernel_size: 2 stride: 2"),
                             'layer { name: "c" type: "Crop" bottom: "data" bottom: "small" top: "c" '
                             'crop_param { axis: 2 offset: 4294967295 } }'), [("E407", 3, ["4294967295"])]),
    "crop_bigger_than_the_bottom": (net(pool("small", "kernel_size: 2 stride: 2"),
                                        'layer { name: "c" type: "Crop" bottom: "small" bottom: "data" top: "c" '
                                        'crop_param { axis: 2 } }'), [("E407", 3, ["'c'"])]),
    # Found by benchmarks/fuzz.py: listing num_output's divisors hung; a negative DummyData dim.
    "num_output_2_32_with_group": (net(conv("g", "num_output: 4294967295 kernel_size: 3 group: 2")),
                                   [("E405", 2, ["'g'", "4294967295"])]),
    "dummy_data_negative_dim": ('layer { name: "d" type: "DummyData" top: "d" dummy_data_param { '
                                'shape { dim: 10 dim: -2147483648 dim: 2 } } }\n', [("E402", 1, ["'d'", "negative"])]),
    "layer_without_tops": (net('layer { name: "relu" type: "ReLU" bottom: "data" }'), [("E315", 2, ["'relu'", "0"])]),
    "eltwise_coeff_count": (net('layer { name: "e" type: "Eltwise" ' + 'bottom: "data" ' * 1000 +
                                'top: "e" eltwise_param { coeff: 1 coeff: 2 } }'), [("E404", 2, ["1000"])]),
}


def _expect(r, path, expected):
    for code, line, words in expected:
        pat = rf"^{re.escape(str(path))}:{line}:\d+: error\[{code}\]: (.*)$"
        found = [m.group(1) for m in re.finditer(pat, r.err, re.M)]
        assert found, f"no {code} at line {line}:\n{r.err}"
        assert any(all(w in msg for w in words) for msg in found), (words, found)


@pytest.mark.parametrize("name", sorted(CASES))
def test_semantic_attack_is_reported_where_it_is(name, tmp_path):
    text, expected = CASES[name]
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text)
    r = cli_ok("check", path, files=[path])
    assert r.code == 1
    _expect(r, path, expected)
    # The same problems stop every command that needs a sound net, with the same words.
    for argv in (["summary"], ["export", "-o", str(tmp_path / "x.onnx")], ["init", "-o", str(tmp_path / "x.caffemodel")]):
        r2 = cli_ok(argv[0], path, *argv[1:], files=[path])
        assert r2.code == 1
        _expect(r2, path, expected[:1])
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob(".netdef-*"))


@pytest.mark.parametrize("max_errors", [1, 2, 3])
def test_invalid_layers_stay_invalid_past_max_errors(tmp_path, max_errors):
    """Layers found invalid after --max-errors was reached are still kept out of the shape and
    cost formulas (this crashed with ZeroDivisionError / IndexError)."""
    path = tmp_path / "many.prototxt"
    path.write_text(net(conv("n0", "num_output: 0 kernel_size: 3"), conv("g0", "num_output: 2 kernel_size: 3 group: 0"),
                        conv("s0", "num_output: 2 kernel_size: 3 stride: 0"),
                        'layer { name: "relu" type: "ReLU" bottom: "data" }', pool("p0", "kernel_size: 0")))
    for cmd in ("check", "summary", "rf"):
        r = cli_ok("--max-errors", str(max_errors), cmd, path, files=[path])
        assert r.code == 1 and "more diagnostics not shown" in r.err


def test_an_error_after_a_hundred_warnings_still_fails(tmp_path):
    """The collector keeps 100 diagnostics; an error that arrives after 100 warnings must
    still fail the run (fmt used to drop the bad value silently and exit 0)."""
    layers = [pool(f"p{i}", "kernel_size: 2 ceil_mode: false") for i in range(101)]  # W202 each
    layers.append('layer { name: "bad" type: "ReLU" bottom: "data" top: "bad" relu_param { negative_slope: "x" } }')
    path = tmp_path / "warnings.prototxt"
    path.write_text(net(*layers))
    out = tmp_path / "out.prototxt"
    for argv in (["fmt", path, "-o", out], ["check", path], ["upgrade", path]):
        r = cli_ok(*argv, files=[path])
        assert r.code == 1, argv
        assert re.search(rf"{re.escape(str(path))}:103:\d+: error\[E203\]", r.err)
    assert not out.exists()


def test_a_thousand_bottoms_are_fine_and_fast(tmp_path):
    path = tmp_path / "wide.prototxt"
    path.write_text(net('layer { name: "e" type: "Eltwise" ' + 'bottom: "data" ' * 1000 + 'top: "e" }',
                        'layer { name: "c" type: "Concat" ' + 'bottom: "data" ' * 1000 + 'top: "c" }'))
    with no_hang(300):
        assert cli_ok("check", path).code == 0
        r = cli_ok("summary", path, "--format", "csv")
    rows = {line.split(",")[0]: line.split(",") for line in r.out.splitlines()}
    assert r.code == 0 and rows["c"][4] == "2x6000x8x8" and rows["e"][4] == "2x6x8x8"
    assert cli_ok("draw", path, "-o", tmp_path / "wide.dot").code == 0


def test_deep_nesting_is_cut_off_early(tmp_path):
    """10,000 levels of blocks (named, anonymous list elements, unknown fields) are refused
    at level 64 with a located E106: no RecursionError anywhere."""
    deep = {
        "blocks": "layer { " * 10_000 + "}" * 10_000,
        "lists": "layer { name: " + "[ { x: " * 10_000 + "1" + " } ]" * 10_000 + " }",
        "unknown": "layer { bogus { " + "x { " * 10_000 + "}" * 10_001 + " }",
        "angle": "layer < " * 10_000 + ">" * 10_000,
    }
    for name, text in deep.items():
        path = tmp_path / f"{name}.prototxt"
        path.write_text(text)
        for cmd in ("check", "fmt", "upgrade", "solver"):
            with no_hang(120):
                r = cli_ok(cmd, path, files=[path])
            assert r.code == 1 and "E106" in r.err and "64 levels" in r.err, (name, cmd, r.err[-500:])


def test_nesting_just_under_the_limit_formats(tmp_path):
    """63 levels of an unknown block are kept, formatted and read back the same (the writers
    recurse; the parser's limit is what keeps them safe)."""
    # permute_param is an SSD-fork field: kept with a warning, its contents as plain values.
    text = "layer { name: \"a\" type: \"ReLU\" permute_param " + "{ x " * 61 + "{ y: 1 }" + " }" * 61 + " }\n"
    path = tmp_path / "deep63.prototxt"
    path.write_text(text)
    r = cli_ok("fmt", path)
    assert r.code == 0, r.err
    again = tmp_path / "again.prototxt"
    again.write_text(r.out)
    assert cli_ok("fmt", again).out == r.out
    assert run_cli(["fmt", str(tmp_path / "deep63.prototxt")]).code == 0


def test_layers_with_parameters_sharing_a_name(tmp_path):
    """Weights are matched by layer name: two layers with parameters and one name would get
    each other's blobs (a BatchNorm received a Convolution's and crashed folding)."""
    path = tmp_path / "twins.prototxt"
    path.write_text(net(conv("twin", "num_output: 6 kernel_size: 1"),
                        'layer { name: "twin" type: "BatchNorm" bottom: "twin" top: "twin" }'))
    assert cli_ok("check", path).code == 0  # W310 only: Caffe builds this net
    for argv in (["export", "-o", tmp_path / "x.onnx"], ["init", "-o", tmp_path / "x.caffemodel"], ["verify"]):
        r = cli_ok(argv[0], path, *argv[1:], files=[path])
        assert r.code == 1 and re.search(rf"^{re.escape(str(path))}:3:1: error\[E520\]: layer 'twin' \(BatchNorm\)",
                                         r.err, re.M), r.err


def test_non_finite_solver_values_are_shown(tmp_path):
    (tmp_path / "net.prototxt").write_text(net(conv("c", "num_output: 2 kernel_size: 1")))
    solver = tmp_path / "solver.prototxt"
    solver.write_text('net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: 10\n'
                      'momentum: -inf\nweight_decay: 1e400\n')
    for fmt in ("text", "json"):
        r = cli_ok("solver", solver, "--format", fmt)
        # with --format json the diagnostics are in the document (issue 13)
        assert r.code == 0 and "W612" in (r.out if fmt == "json" else r.err)
    assert "non-finite" in cli_ok("solver", solver).out


def test_huge_iteration_counts_stay_bounded(tmp_path):
    """stepsize 1 with max_iter 2^31 - 1: the change points and the JSON points are not
    materialised (they were: 16 GiB, then out of memory)."""
    solver = tmp_path / "solver.prototxt"
    solver.write_text('net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "step"\nstepsize: 1\ngamma: 0.99\n'
                      'max_iter: 2147483647\n')
    (tmp_path / "net.prototxt").write_text(net(conv("c", "num_output: 2 kernel_size: 1")))
    with no_hang(300):
        assert cli_ok("solver", solver).code == 0
        r = cli_ok("lr", solver, "--format", "json", "--iters", "0:2147483647:100000000")
    assert r.code == 0 and '"iter": 2100000000' in r.out


def test_fork_layer_values_that_are_not_numbers(tmp_path):
    """An Upsample (fork) scale of -inf: a located error in check, and the size scan rules
    sizes out instead of crashing on int(-inf)."""
    path = tmp_path / "up.prototxt"
    path.write_text(net('layer { name: "up" type: "Upsample" bottom: "data" top: "up" upsample_param { scale: -inf } }'))
    for argv in (["check"], ["sizes", "--range", "1:16"], ["summary"]):
        r = cli_ok(argv[0], path, *argv[1:], files=[path])
        assert r.code == 1 and re.search(rf"{re.escape(str(path))}:2:1: error\[E404\]: .*must be an integer, got -inf",
                                         r.err), r.err
