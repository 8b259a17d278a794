"""W202 ("netdef ignores its value here") or W216 ("netdef reads it: ...") for a fork field, true by
construction: the fork fields netdef's code reads are found by reading the code (tests/fork_reads.py),
and each must have its reading in netdef/forks.py `_READ`; each `_READ` row must name a field some
code reads. Then, through `netdef check`, a read field gets W216 with its reading and an ignored
one keeps W202.
"""
import json
import textwrap

import pytest

from conftest import REPO
from fork_reads import LAYER, scan
from netdef import forks
from netdef.cli import main
from netdef.proto import pb

_LAYER_DESCRIPTORS = (pb.LayerParameter.DESCRIPTOR, pb.V1LayerParameter.DESCRIPTOR)

# What the scan over-approximates, with why (it does not evaluate conditions).
_NOT_READ = {
    ("pooling_param", "temporal_pad"): "netdef/layers/conv.py c3d_geometry reads temporal_pad only when "
                                       "message == 'convolution_param'",
}


@pytest.fixture(scope="module")
def scanned():
    return scan(REPO / "netdef")


def _messages(read) -> list[str]:
    """The protobuf messages a read's field belongs to (a field of the layer: both layer formats,
    since the V1 upgrade keeps the layer's fork fields)."""
    if read.block is LAYER:
        return [d.name for d in _LAYER_DESCRIPTORS]
    return [d.fields_by_name[read.block].message_type.name for d in _LAYER_DESCRIPTORS
            if read.block in d.fields_by_name and d.fields_by_name[read.block].message_type is not None]


def _read_pairs(scanned) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in scanned.reads:
        for m in _messages(r):
            out.setdefault((m, r.field), set()).add(r.where)
    return out


def test_the_scan_follows_every_access(scanned):
    # A fork field read in a way the scan cannot follow would go unchecked: teach the scan.
    assert not scanned.unresolved, "\n".join(f"{u.where}: {u.what}" for u in scanned.unresolved)
    # It sees the accessors the layers use (not an empty scan that passes everything).
    pairs = _read_pairs(scanned)
    for key in [("LayerParameter", "interp_param"), ("ConvolutionParameter", "kernel_depth"),
                ("ConvolutionParameter", "filter_group"), ("PoolingParameter", "ceil_mode"),
                ("DataParameter", "side"), ("LayerParameter", "yolov3_detection_output_param"),
                ("LayerParameter", "prior_box_param"), ("ReLUParameter", "relu6")]:
        assert key in pairs, key


def test_every_fork_field_the_code_reads_has_its_reading(scanned):
    missing = {k: sorted(w) for k, w in _read_pairs(scanned).items()
               if k in forks._FIELDS and k not in forks._READ}
    assert not missing, ("fork fields netdef reads but whose W202 says it ignores them (add a forks._READ row): "
                         + json.dumps({f"{m}.{f}": w for (m, f), w in missing.items()}, indent=1))


def test_every_reading_names_a_field_some_code_reads(scanned):
    pairs = _read_pairs(scanned)
    stale = [k for k in forks._READ if k not in pairs]
    assert not stale, f"forks._READ rows for fields no code reads (they should say W202): {stale}"
    assert all(k in forks._FIELDS for k in forks._READ), "a _READ row for a field forks.py does not know"


def test_every_read_is_a_known_fork_field(scanned):
    # A read is of a fork field forks.py knows, or of a BVLC field whose fork-only enum values
    # the parser keeps by name (pooling_param.pool: AVE_EXC_PAD; a V1 layer's type: INTERP).
    unknown = []
    for r in scanned.reads:
        if (r.block, r.field) in _NOT_READ:
            continue
        known = any((m, r.field) in forks._FIELDS for m in _messages(r))
        bvlc = any(r.field in getattr(pb, m).DESCRIPTOR.fields_by_name for m in _messages(r))
        if not known and not bvlc:
            unknown.append((r.block, r.field, r.where))
    assert not unknown, unknown


def test_the_scan_catches_each_accessor(tmp_path):
    # The scan itself, on a small package written here: each way of reading a fork field is
    # found, with its block, and a message it cannot follow is reported, not skipped.
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text(textwrap.dedent('''
        def block_field(node, message, name):
            sub = node.loc.msg(message) if node.loc is not None else None
            vals = sub.extra.get(name) if sub is not None else None
            return vals

        def layer_message(node, message):
            return ForkParams(node, message)
    '''))
    (pkg / "user.py").write_text(textwrap.dedent('''
        from .helpers import block_field, layer_message

        def a(node, ctx, v3):
            ForkParams(node, "a_param")
            mp = "b_param"
            ctx.fork_param(mp, "x")
            block_field(node, "convolution_param", "kernel_depth")
            block_field(node, "pooling_param", "kernel_depth")
            layer_message(node, "c_param" if v3 else "d_param")
            raw = (node.extra.get("e_param") or [{}])[-1]
            return "f_param" in node.extra, raw

        def b(node):
            ForkParams(node, compute())
    '''))
    s = scan(pkg)
    got = {(r.block, r.field) for r in s.reads}
    assert got == {(None, "a_param"), (None, "b_param"), ("convolution_param", "kernel_depth"),
                   ("pooling_param", "kernel_depth"), (None, "c_param"), (None, "d_param"), (None, "e_param"),
                   (None, "f_param")}
    assert [u.where for u in s.unresolved] == ["pkg/user.py:15"]


# --- through the CLI -----------------------------------------------------------------------------

def _check(tmp_path, capsys, text, *extra):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    code = main(["check", str(path), *extra])
    out = capsys.readouterr()
    return code, out.err, out.out


INTERP = '''name: "n"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 5 dim: 5 } } }
layer { name: "up" type: "Interp" bottom: "data" top: "up" interp_param { zoom_factor: 2 } }
'''


def test_check_says_interp_param_is_read(tmp_path, capsys):
    code, err, _ = _check(tmp_path, capsys, INTERP)
    assert code == 0, err
    assert ("warning[W216]: 'interp_param' is not a BVLC Caffe field of LayerParameter: it comes from "
            f"{forks.PSPNET}; {forks.reading_of_field('LayerParameter', 'interp_param')}") in err
    assert "netdef reads it for Interp: zoom_factor" in err
    assert "W202" not in err and "ignores" not in err


def test_check_json_carries_the_reading(tmp_path, capsys):
    code, _, out = _check(tmp_path, capsys, INTERP, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    text = json.dumps(doc)
    assert "W216" in text and "netdef reads it for Interp" in text and "W202" not in text


def test_v1_interp_param_is_read(tmp_path, capsys):
    # A V1 'layers' block: its fork fields stay with the layer through the upgrade, and are read.
    v1 = '''name: "n"
input: "data" input_dim: 1 input_dim: 2 input_dim: 5 input_dim: 5
layers { name: "up" type: INTERP bottom: "data" top: "up" interp_param { zoom_factor: 2 } }
'''
    code, err, _ = _check(tmp_path, capsys, v1)
    assert code == 0, err
    assert "warning[W216]: 'interp_param' is not a BVLC Caffe field of V1LayerParameter" in err
    assert "netdef reads it for Interp" in err


C3D = '''name: "c3d"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 16 dim: 16 } } }
layer { name: "conv" type: "Convolution3D" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 kernel_depth: 3 temporal_pad: 1 temporal_stride: 2 } }
'''


def test_check_says_c3d_fields_are_read(tmp_path, capsys):
    code, err, _ = _check(tmp_path, capsys, C3D)
    assert code == 0, err
    for field in ("kernel_depth", "temporal_pad", "temporal_stride"):
        assert f"warning[W216]: '{field}' is not a BVLC Caffe field of ConvolutionParameter" in err, field
    assert "netdef reads it for Convolution3D: the kernel's length" in err
    assert "W202" not in err


def test_an_ignored_fork_field_keeps_w202(tmp_path, capsys):
    # SegNet's class_weighting weighs a loss netdef does not compute: still "ignores its value".
    net = '''name: "n"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "loss"
  loss_param { weight_by_label_freqs: true class_weighting: 0.5 class_weighting: 1 class_weighting: 2 } }
'''
    code, err, _ = _check(tmp_path, capsys, net)
    assert code == 0, err
    assert ("warning[W202]: 'weight_by_label_freqs' is not a BVLC Caffe field of LossParameter: it comes from "
            f"{forks.SEGNET}; netdef ignores its value here") in err
    assert "warning[W202]: 'class_weighting'" in err
    assert "W216" not in err


def test_every_reading_reads_as_one_sentence():
    # W216 is "...; {reading}": each reading says what netdef does, in its own words.
    for key, text in forks._READ.items():
        assert text.startswith("netdef reads "), key
        assert not text.endswith((".", ";", " ")), key
