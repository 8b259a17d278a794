"""`netdef fmt`: canonical text that parses back to equal messages (and equal fork fields),
and formatting it again changes nothing. Checked over every definition in the zoo and the
bundled library."""
import math
import os
import struct

import numpy as np
import pytest

import netdef
from conftest import LIBRARY_NETS, LIBRARY_SOLVERS, REPO, ZOO
from netdef.cli import main
from netdef.fmt import format_double, format_float32, format_message
from netdef.parse import parse_file, parse_text
from netdef.proto import pb
from netdef.source import Source

ZOO_FILES = sorted(p for p in ZOO.glob("*/*") if p.suffix in (".prototxt", ".pt", ".proto", ".txt"))
LIBRARY = sorted(LIBRARY_NETS.glob("*.prototxt")) + sorted(LIBRARY_SOLVERS.glob("*.prototxt"))
# Files that are not valid definitions, and what netdef says about them: fmt refuses them.
NOT_FORMATTABLE = {"labelmap_voc.prototxt": "E209", "lenet_stepearly_solver.prototxt": "E201"}


def _extras(msg, loc, path=()):
    """Every Loc.extra in a tree, keyed by where its block is in the message."""
    out = {path: loc.extra} if loc is not None and loc.extra else {}
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        subs = value if fd.is_repeated else [value]
        entries = loc.fields.get(fd.name, []) if loc is not None else []
        for i, sub in enumerate(subs):
            sub_loc = entries[i] if i < len(entries) and hasattr(entries[i], "extra") else None
            out.update(_extras(sub, sub_loc, path + ((fd.name, i),)))
    return out


def _check_round_trip(parsed):
    text = format_message(parsed.message, extras=parsed.loc)
    again = parse_text(Source(text, "formatted"), parsed.kind)
    assert not again.diagnostics.has_errors, [d.render() for d in again.diagnostics.errors][:3]
    assert again.message == parsed.message
    assert _extras(again.message, again.loc) == _extras(parsed.message, parsed.loc)
    assert format_message(again.message, extras=again.loc) == text  # idempotent
    return text


def test_the_corpus_is_all_there():
    assert len(ZOO_FILES) > 150 and len(LIBRARY) > 40


@pytest.mark.parametrize("path", ZOO_FILES + LIBRARY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_round_trip(path):
    raw = parse_file(path)         # what `netdef fmt` formats: the file as written
    loaded = netdef.load(path)     # upgraded: what `netdef upgrade` formats
    if path.name in NOT_FORMATTABLE:
        assert NOT_FORMATTABLE[path.name] in [d.code for d in raw.diagnostics.errors]
        return
    assert not loaded.diagnostics.has_errors
    _check_round_trip(raw)
    if loaded is not raw:
        _check_round_trip(loaded)


@pytest.mark.parametrize("name", sorted(NOT_FORMATTABLE))
def test_fmt_refuses_files_with_errors(name, capsys, tmp_path):
    [path] = [p for p in ZOO_FILES if p.name == name]
    out = tmp_path / "out.prototxt"
    assert main(["fmt", str(path), "-o", str(out)]) == 1
    o, err = capsys.readouterr()
    assert o == "" and f"error[{NOT_FORMATTABLE[name]}]" in err and "Traceback" not in err
    assert not out.exists() and os.listdir(tmp_path) == []


def test_labelmap_is_reported_as_not_a_definition(capsys):
    assert main(["fmt", str(ZOO / "ssd300_vgg16_voc" / "labelmap_voc.prototxt")]) == 1
    err = capsys.readouterr().err
    assert "is not a Caffe network or solver definition" in err


# --- layout -------------------------------------------------------------------------------


def test_layout_is_caffes(capsys):
    text = ('layer{top:"b" name:"c" type:"Convolution" bottom:"a" convolution_param{kernel_size:[3,1] '
            'num_output:8 weight_filler{std:0.1 type:"gaussian"}} param{lr_mult:1}} name:"n"')
    parsed = parse_text(Source(text), "net")
    assert format_message(parsed.message, parsed.loc) == (
        'name: "n"\n'
        'layer {\n'
        '  name: "c"\n'
        '  type: "Convolution"\n'
        '  bottom: "a"\n'
        '  top: "b"\n'
        '  param {\n'
        '    lr_mult: 1\n'
        '  }\n'
        '  convolution_param {\n'
        '    num_output: 8\n'
        '    kernel_size: 3\n'
        '    kernel_size: 1\n'
        '    weight_filler {\n'
        '      type: "gaussian"\n'
        '      std: 0.1\n'
        '    }\n'
        '  }\n'
        '}\n')


def test_enums_bools_and_explicit_defaults():
    parsed = parse_text(Source('layer { pooling_param { pool: MAX global_pooling: false } }\n'
                               'force_backward: false'), "net")
    text = format_message(parsed.message, parsed.loc)
    # A field written with its default value is kept: presence is part of the message.
    assert "force_backward: false\n" in text and "pool: MAX\n" in text and "global_pooling: false" in text


def _f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


@pytest.mark.parametrize("value", [0.1, 1e-05, 0.0005, 0.00392156862745098, 1.0, 10.0, 1e10, 3.4028234663852886e38,
                                   1e-45, 0.9, 123456.7, -2.5, 0.0, 1 / 3])
def test_float32_is_the_shortest_spelling(value):
    stored = _f32(value)
    s = format_float32(stored)
    assert _f32(float(s)) == stored
    # numpy's shortest round-trip repr of the float32, as an independent oracle for the digits.
    ref = np.format_float_scientific(np.float32(stored), unique=True, trim="-")
    digits = lambda t: len(t.lower().split("e")[0].replace("-", "").replace(".", "").strip("0")) or 1
    assert digits(s) == digits(ref), (s, ref)


def test_float32_examples():
    assert [format_float32(_f32(v)) for v in (0.1, 1.0, 10.0, 1e-05, 0.0039215684)] == \
        ["0.1", "1", "10", "1e-05", "0.0039215684"]
    assert [format_float32(v) for v in (math.inf, -math.inf)] == ["inf", "-inf"]
    assert format_float32(math.nan) == "nan"


def test_random_float32_values_round_trip():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=3000, dtype=np.uint64).astype(np.uint32)
    values = [float(v) for v in bits.view(np.float32) if np.isfinite(v)]
    for v in values:
        assert _f32(float(format_float32(v))) == v


def test_doubles_and_specials_round_trip_through_the_parser():
    net = pb.NetParameter()
    blob = net.layer.add().blobs.add()
    blob.double_data.extend([0.1, 1 / 3, 1e300, -0.0, 5e-324])
    blob.data.extend([math.inf, -math.inf, 0.1])
    text = format_message(net)
    back = parse_text(Source(text), "net").message
    assert back == net
    assert format_double(0.1) == "0.1" and format_double(2.0) == "2"


def test_strings_escape_and_parse_back():
    net = pb.NetParameter()
    odd = ['quote " and \\ backslash', "tab\tnew\nline\r", "caf\u00e9 \u4e2d", "\x01\x7f ctl", "", "'single'"]
    for s in odd:
        net.layer.add().name = s
    text = format_message(net)
    assert parse_text(Source(text), "net").message == net
    assert '"caf\u00e9 \u4e2d"' in text  # UTF-8 text is kept readable


FORK = '''layer {
  name: "det"
  type: "DetectionOutput"
  detection_output_param {
    code_type: CENTER_SIZE
    save_output_param { output_format: "VOC" label_map_file: 'a "quoted" name' }
    nms_param { nms_threshold: 0.45 top_k: 400 }
    order: [0, 2]
    empty: []
    neg: -inf
    big: 1e5
  }
  permute_param { order: 0 order: 2 }
  include { phase: TEST }
}
'''


def test_fork_fields_are_written_back_at_the_end_of_their_block():
    parsed = parse_text(Source(FORK), "net")
    text = _check_round_trip(parsed)
    assert "    code_type: CENTER_SIZE\n" in text          # a bare word stays bare
    assert '      output_format: "VOC"\n' in text         # a string stays quoted
    assert "label_map_file: 'a \"quoted\" name'" in text
    assert "    empty: []\n" in text and "    order: 0\n    order: 2\n" in text
    # After the schema's fields of the layer (include), in the order written.
    assert text.index("include {") < text.index("detection_output_param {") < text.index("permute_param {")


# --- the command --------------------------------------------------------------------------


def test_cli_fmt_stdout_and_note_about_fork_fields(capsys):
    path = ZOO / "ssd300_vgg16_voc" / "deploy.prototxt"
    assert main(["fmt", str(path)]) == 0
    out, err = capsys.readouterr()
    parsed = parse_file(path)
    assert out == format_message(parsed.message, parsed.loc)
    assert "netdef fmt: kept 20 field(s) that BVLC Caffe does not define" in err
    assert "W202" not in err


def test_cli_fmt_keeps_the_old_format(capsys):
    assert main(["fmt", str(ZOO / "bvlc_v1_format" / "lenet.prototxt")]) == 0
    out = capsys.readouterr().out
    assert "layers {\n" in out and "type: CONVOLUTION\n" in out


def test_cli_fmt_output_file_is_atomic(tmp_path, capsys):
    out = tmp_path / "lenet.prototxt"
    out.write_text("old\n")
    assert main(["fmt", "lenet", "-o", str(out)]) == 0  # a bundled name works too
    assert capsys.readouterr().out == ""
    assert parse_file(out).message == netdef.load("lenet").message
    assert os.listdir(tmp_path) == ["lenet.prototxt"]


def test_cli_fmt_missing_file(capsys):
    assert main(["fmt", "/nonexistent/net.prototxt"]) == 1
    assert "error[E100]" in capsys.readouterr().err


# --- comments, --check, --diff ------------------------------------------------------------------

from collections import Counter  # noqa: E402

from conftest import ZOO_WILD  # noqa: E402
from netdef.fmt import format_parsed, scan_comments  # noqa: E402

ALL_ZOO = sorted(p for root in (ZOO, ZOO_WILD) for p in root.glob("*/*")
                 if p.suffix in (".prototxt", ".pt", ".proto", ".txt"))


@pytest.mark.parametrize("path", ALL_ZOO, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_comments_are_kept(path):
    """Every comment of every zoo file is in fmt's output, each on a line of its own text, and
    the output still parses to the same message and formats to itself."""
    parsed = parse_file(path)
    if parsed.diagnostics.has_errors:
        return  # fmt refuses it (test_fmt_refuses_files_with_errors)
    text = format_parsed(parsed)
    assert Counter(t for _, t in scan_comments(text)) == Counter(t for _, t in scan_comments(parsed.source.text))
    again = parse_text(Source(text, "formatted"), parsed.kind)
    assert not again.diagnostics.has_errors and again.message == parsed.message
    assert _extras(again.message, again.loc) == _extras(parsed.message, parsed.loc)
    assert format_parsed(again) == text


def test_zoo_has_comments():
    assert sum(len(scan_comments(p.read_text(errors="replace"))) for p in ALL_ZOO) > 500


COMMENTED = """# header
name: "x"  # the name
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer {  # head
  name: "c"
  type: "Convolution"
  bottom: "data"
  top: "c"
  convolution_param {
    # about the kernel
    kernel_size: 3  # k
    num_output: 4
    # last in conv
  }  # closes conv
  # last in layer
}
# end of file
"""


def test_comments_stay_with_their_fields(tmp_path, capsys):
    src = tmp_path / "net.prototxt"
    src.write_text(COMMENTED)
    assert main(["fmt", str(src)]) == 0
    out = capsys.readouterr().out
    assert out == """# header
name: "x"  # the name
input: "data"
input_shape {
  dim: 1
  dim: 3
  dim: 8
  dim: 8
}
layer {  # head
  name: "c"
  type: "Convolution"
  bottom: "data"
  top: "c"
  convolution_param {
    num_output: 4
    # about the kernel
    kernel_size: 3  # k
    # last in conv
  }  # closes conv
  # last in layer
}
# end of file
"""


def test_a_hash_inside_a_string_is_not_a_comment(tmp_path, capsys):
    src = tmp_path / "net.prototxt"
    src.write_text('name: "a#b"  # real\nlayer { name: \'it#s\' type: "ReLU" bottom: "x" top: "x" }\n')
    assert main(["fmt", str(src)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == 'name: "a#b"  # real' and out.count("#") == 3


def test_check_and_diff(tmp_path, capsys):
    messy, clean = tmp_path / "messy.prototxt", tmp_path / "clean.prototxt"
    messy.write_text(COMMENTED)
    assert main(["fmt", str(messy), "-o", str(clean)]) == 0
    capsys.readouterr()
    assert main(["fmt", "--check", str(clean)]) == 0
    o, err = capsys.readouterr()
    assert o == "" and "1 file(s) already formatted" in err
    assert main(["fmt", "--check", str(clean), str(messy)]) == 1
    o, err = capsys.readouterr()
    assert o == f"would reformat: {messy}\n" and "1 file(s) would be reformatted, 1 already formatted" in err
    assert messy.read_text() == COMMENTED  # --check writes nothing
    assert main(["fmt", "--diff", str(messy)]) == 1
    o, _ = capsys.readouterr()
    lines = o.splitlines()
    assert lines[0] == f"--- {messy}" and lines[1] == f"+++ {messy} (formatted)"
    assert "-input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }" in lines and "+input_shape {" in lines
    assert "-    num_output: 4" in lines and "+    num_output: 4" in lines
    # The diff applied to the file gives the formatted text.
    import subprocess
    import shutil
    if shutil.which("patch"):
        subprocess.run(["patch", "-s", str(messy)], input=o, text=True, check=True)
        assert messy.read_text() == clean.read_text()
    assert main(["fmt", "--diff", str(clean)]) == 0
    assert capsys.readouterr().out == ""


def test_several_files_need_check_or_diff(tmp_path, capsys):
    a = tmp_path / "a.prototxt"
    a.write_text(COMMENTED)
    assert main(["fmt", str(a), str(a)]) == 2
    assert "--check or --diff" in capsys.readouterr().err
