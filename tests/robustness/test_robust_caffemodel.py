""".caffemodel input that is broken or hostile: every command that takes --weights fails with
a located E50x diagnostic (`model.caffemodel:1:<byte+1>:` for a problem inside the binary file,
the prototxt layer for a mismatch with the net), or succeeds; never a crash.

Memory: a .caffemodel is read once into a buffer of its own size; lengths declared inside it
are checked against the bytes that remain before anything is allocated, so a 1 KB file that
declares 2 GB costs 1 KB (tested under a 1 GiB address-space limit).
"""
import re
import resource
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzlib import cli_ok
from conftest import CONFORMANCE

from netdef.diagnostics import DiagnosticError
from netdef.proto import pb
from netdef.weights import parse_caffemodel, read_caffemodel

CASE = CONFORMANCE / "layers" / "conv_basic"  # Convolution 3 -> 8, 3x3, with bias
NET = CASE / "net.prototxt"
GOOD = (CASE / "weights.caffemodel").read_bytes()
W = np.arange(8 * 3 * 3 * 3, dtype=np.float32) / 100
B = np.arange(8, dtype=np.float32)


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def model(layers, v1=False) -> bytes:
    """layers: (name, type, [(shape, data, legacy)]) as a serialized NetParameter."""
    net = pb.NetParameter(name="m")
    for name, typ, blobs in layers:
        layer = net.layers.add(name=name, type=typ) if v1 else net.layer.add(name=name, type=typ)
        for shape, data, legacy in blobs:
            b = layer.blobs.add()
            if legacy:
                b.num, b.channels, b.height, b.width = shape
            else:
                b.shape.dim.extend(shape)
            b.data.extend(np.asarray(data, np.float32).ravel().tolist())
    return net.SerializeToString()


def conv(blobs=None, name="conv"):
    return (name, "Convolution", blobs if blobs is not None else [((8, 3, 3, 3), W, False), ((8,), B, False)])


V1_CONV = ("conv", pb.V1LayerParameter.CONVOLUTION, [((8, 3, 3, 3), W, True), ((1, 1, 1, 8), B, True)])

# name -> (bytes, code, byte offset the diagnostic points at or None for the prototxt layer, words)
BROKEN = {
    "empty": (b"", "E502", 0, ["empty"]),
    "truncated": (GOOD[:500], "E502", None, ["truncated"]),
    "data_shorter_than_shape": (model([conv([((8, 3, 3, 3), W[:-1], False), ((8,), B, False)])]), "E502", None,
                                ["(8, 3, 3, 3)", "215 values, not 216"]),
    "data_longer_than_shape": (model([conv([((8, 3, 3, 3), np.r_[W, 1], False), ((8,), B, False)])]), "E502", None,
                               ["217 values, not 216"]),
    "claims_2GB": (varint(100 << 3 | 2) + varint(2**31) + bytes(1024), "E502", 2 + 5,  # key + length
                   ["2147483648 bytes", "1024 remain"]),
    "claims_2GB_inside_a_blob": (varint(100 << 3 | 2) + varint(20) + b"\x3a" + varint(2**31) + bytes(17), "E502",
                                 2 + 1 + 1 + 5,  # layer key + length, blob key + its length
                                 ["2147483648 bytes"]),
    "astronomic_shape_no_data": (model([conv([((2**40, 2**40), [], False)])]), "E502", None, ["holds 0 values"]),
    "negative_dims": (model([conv([((-1, -8), np.ones(8), False)])]), "E502", None, ["negative"]),
    "a_hundred_axes": (model([conv([((1,) * 100, [1.0], False)])]), "E502", None, ["100 axes", "at most 32"]),
    "v1_and_v2_mixed": (model([conv()]) + model([V1_CONV], v1=True), "E502", None, ["both 'layer'", "'layers'"]),
    "group_wire_type": (varint(100 << 3 | 3) + bytes(10), "E502", 0, ["wire type 3"]),
    "eleven_byte_varint": (varint(100 << 3 | 2) + b"\xff" * 20, "E502", 12, ["longer than ten bytes"]),
    "field_number_0": (b"\x02\x00", "E502", 0, ["field number 0"]),
    "packed_floats_not_multiple_of_4": (varint(100 << 3 | 2) + varint(9) + b"\x3a" + varint(7) + b"\x2a\x05" + bytes(5),
                                        "E502", None, ["multiple of 4"]),
    "a_prototxt": (NET.read_bytes(), "E502", 0, ["looks like text"]),
    "hdf5": (b"\x89HDF\r\n\x1a\n" + bytes(100), "E502", None, ["HDF5"]),
    "wrong_blob_shape": (model([conv([((8, 3, 9), np.zeros(216), False), ((8,), B, False)])]), "E504", "layer",
                         ["(8, 3, 9)", "(8, 3, 3, 3)"]),
    "one_blob_for_two": (model([conv([((8, 3, 3, 3), W, False)])]), "E503", "layer", ["2 parameter blob"]),
}

COMMANDS = {
    "export": lambda tmp: ["export", NET, "-o", tmp / "out.onnx"],
    "verify": lambda tmp: ["verify", NET],
    "run": lambda tmp: ["run", NET],
    "bench": lambda tmp: ["bench", NET, "--runs", "1", "--warmup", "0"],
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_weights_are_located(name, tmp_path):
    data, code, at, words = BROKEN[name]
    path = tmp_path / f"{name}.caffemodel"
    path.write_bytes(data)
    for cmd in ("export", "verify") if name in ("truncated", "a_hundred_axes") else ("export",):
        r = cli_ok(*COMMANDS[cmd](tmp_path), "--weights", path, files=[path, NET])
        assert r.code == 1
        if at == "layer":
            pat = rf"^{re.escape(str(NET))}:3:1: error\[{code}\]: (.*)$"
        elif at is None:
            pat = rf"^{re.escape(str(path))}:1:\d+: error\[{code}\]: (.*)$"
        else:
            pat = rf"^{re.escape(str(path))}:1:{at + 1}: error\[{code}\]: (.*)$"
        m = re.search(pat, r.err, re.M)
        assert m, r.err
        assert all(w in m.group(1) for w in words), m.group(1)
        byte = re.search(r"at byte (\d+)", m.group(1))
        if byte:  # the column is the byte the message names, counted from 1
            assert f"{path}:1:{int(byte.group(1)) + 1}:" in r.err
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("cmd", ["run", "bench", "verify"])
def test_every_weights_command_reports_the_same(cmd, tmp_path):
    path = tmp_path / "w.caffemodel"
    path.write_bytes(GOOD[:700])
    r = cli_ok(*COMMANDS[cmd](tmp_path), "--weights", path, files=[path])
    assert r.code == 1 and re.search(rf"^{re.escape(str(path))}:1:\d+: error\[E502\]", r.err, re.M)


def test_missing_and_directory_weights(tmp_path):
    for path, words in ((tmp_path / "nope.caffemodel", "No such file"), (tmp_path, "directory")):
        r = cli_ok("export", NET, "-o", tmp_path / "o.onnx", "--weights", path, files=[path])
        assert r.code == 1 and re.search(rf"^{re.escape(str(path))}:1:1: error\[E501\]", r.err, re.M)
        assert words in r.err


def test_every_truncation_point_of_a_real_file():
    """Cut Caffe's own file at every byte: each prefix is either a smaller valid file (cut
    between layers) or a located E502; never another exception."""
    ok = 0
    for n in range(len(GOOD)):
        try:
            parse_caffemodel(GOOD[:n], "cut.caffemodel")
            ok += 1
        except DiagnosticError as e:
            (d,) = e.diagnostics
            assert d.code == "E502" and d.span is not None and d.span.line == 1
            assert 1 <= d.span.col <= n + 1
    assert ok <= 2  # the empty prefix's layer-less parse and a cut right after the net name


def test_v1_weights_load_like_v2(tmp_path):
    """A V1 `layers` file with legacy num/channels/height/width blobs gives the same arrays
    (Blob::ShapeEquals pads the net's shape with leading 1s) and the same export."""
    v1 = tmp_path / "v1.caffemodel"
    v2 = tmp_path / "v2.caffemodel"
    v1.write_bytes(model([V1_CONV], v1=True))
    v2.write_bytes(model([conv()]))
    a, b = read_caffemodel(v1)["conv"], read_caffemodel(v2)["conv"]
    assert a.type == b.type == "Convolution" and a.legacy == [True, True]
    for x, y in zip(a.blobs, b.blobs):
        assert np.array_equal(x.reshape(-1), y.reshape(-1))
    out1, out2 = tmp_path / "1.onnx", tmp_path / "2.onnx"
    assert cli_ok("export", NET, "--weights", v1, "-o", out1).code == 0
    assert cli_ok("export", NET, "--weights", v2, "-o", out2).code == 0
    assert out1.read_bytes() == out2.read_bytes()
    assert cli_ok("verify", NET, "--weights", v1).code == 0


def test_weights_for_layers_that_do_not_exist(tmp_path):
    path = tmp_path / "ghosts.caffemodel"
    path.write_bytes(model([conv(), ("ghost", "InnerProduct", [((2, 2), np.zeros(4), False)])]))
    r = cli_ok("export", NET, "--weights", path, "-o", tmp_path / "o.onnx")
    assert r.code == 0
    assert re.search(rf"^{re.escape(str(path))}:1:1: warning\[W506\]: .*'ghost'", r.err, re.M)
    # Nothing for the net's layer at all: an error since issue 13 (weights of another net gave
    # random filters and exit 0); with --allow-missing-weights its fillers are used, and the
    # user is told where.
    only = tmp_path / "only_ghosts.caffemodel"
    only.write_bytes(model([("ghost", "InnerProduct", [((2, 2), np.zeros(4), False)])]))
    r = cli_ok("export", NET, "--weights", only, "-o", tmp_path / "refused.onnx")
    assert r.code == 1 and re.search(rf"^{re.escape(str(NET))}:3:1: error\[E505\]: .*'conv'", r.err, re.M)
    assert not (tmp_path / "refused.onnx").exists()
    r = cli_ok("export", NET, "--weights", only, "--allow-missing-weights", "-o", tmp_path / "o.onnx")
    assert r.code == 0 and re.search(rf"^{re.escape(str(NET))}:3:1: warning\[W505\]: .*'conv'", r.err, re.M)


def test_a_2gb_claim_in_a_small_file_costs_nothing(tmp_path):
    path = tmp_path / "claim.caffemodel"
    path.write_bytes(varint(100 << 3 | 2) + varint(2**31) + bytes(1024))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    r = subprocess.run([sys.executable, "-m", "netdef", "export", str(NET), "--weights", str(path), "-o",
                        str(tmp_path / "o.onnx")], capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert r.returncode == 1 and "E502" in r.stderr and "Traceback" not in r.stderr, r.stderr


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300),
                      st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255), st.integers(0, len(GOOD)))
                      .map(lambda t: GOOD[:t[0]] + bytes([t[1]]) + GOOD[t[0] + 1:t[2]])))
def test_random_and_corrupted_bytes(data):
    try:
        ws = parse_caffemodel(data, "x.caffemodel")
    except DiagnosticError as e:
        assert [d.code for d in e.diagnostics] == ["E502"] and e.diagnostics[0].span is not None
        return
    for lw in ws:
        for b in lw.blobs:
            assert b.dtype == np.float32 and b.ndim <= 32


def test_hostile_npy_and_onnx_inputs(tmp_path):
    """`run` reads .onnx models and .npy arrays: garbage is a one-line failure, a pickle is
    never unpickled, and a header declaring petabytes is never allocated."""
    import struct

    model = tmp_path / "m.onnx"
    assert cli_ok("export", NET, "-o", model).code == 0
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 3, 11, 13), np.float32))
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"run": "me"}], dtype=object), allow_pickle=True)
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000), }"
    header += " " * (118 - len(header)) + "\n"
    huge = tmp_path / "huge.npy"
    huge.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64))
    assert cli_ok("run", model, "--input-file", f"data={good}").code == 0
    for path, words in ((pickled, "Python objects"), (huge, "greater than file size")):
        r = run_cli_plain(["run", str(model), "--input-file", f"data={path}"])
        assert r.code == 1 and r.err.startswith(f"netdef: error: cannot read {path}") and words in r.err, r.err
    for data in (b"", model.read_bytes()[:300], bytes(range(256)) * 4):
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(data)
        r = run_cli_plain(["run", str(bad)])
        assert r.code == 1 and r.err.startswith("netdef: error: onnxruntime cannot load the model"), r.err


def run_cli_plain(argv):
    from fuzzlib import run_cli
    return run_cli(argv)
