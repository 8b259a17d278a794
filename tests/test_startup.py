"""Start-up: what the light commands import, the LALR table cache, and netdef's own ONNX
message builders (export without importing onnx)."""
import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO, ZOO

HEAVY = ("numpy", "onnx", "onnxruntime", "graphviz", "matplotlib", "ml_dtypes")


def _modules_after(argv, cache_dir, extra=""):
    code = ("import sys, json\nimport netdef.cli\n" + extra +
            f"rc = netdef.cli.main({argv!r})\n"
            "print(json.dumps([rc, sorted({m.split('.')[0] for m in sys.modules})]))\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), NETDEF_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    rc, mods = json.loads(out.stdout.strip().splitlines()[-1])
    return rc, set(mods)


def test_check_imports_nothing_heavy(tmp_path):
    rc, first = _modules_after(["check", "lenet"], tmp_path)     # builds and stores the tables
    assert rc == 0 and not first & set(HEAVY)
    assert "lark" in first
    rc, mods = _modules_after(["check", "lenet"], tmp_path)      # loads them
    assert rc == 0
    assert not mods & set(HEAVY + ("lark", "regex")), mods & set(HEAVY + ("lark", "regex"))


@pytest.mark.parametrize("argv", [["summary", "lenet"], ["fmt", "lenet"]])
def test_summary_and_fmt_import_nothing_heavy(tmp_path, argv):
    rc, mods = _modules_after(argv, tmp_path)
    assert rc == 0 and not mods & set(HEAVY)


def test_export_does_not_import_onnx(tmp_path):
    out = tmp_path / "lenet.onnx"
    rc, mods = _modules_after(["export", "lenet", "-o", str(out)], tmp_path)
    assert rc == 0 and "onnx" not in mods and "ml_dtypes" not in mods
    import onnx
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8 and model.opset_import[0].version == 17


def test_program_exit_codes(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), NETDEF_CACHE_DIR=str(tmp_path))
    ok = subprocess.run([sys.executable, "-m", "netdef", "check", "lenet"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "lenet: ok" in ok.stdout
    bad = tmp_path / "bad.prototxt"
    bad.write_text("layer { kernal: 1 }\n")
    err = subprocess.run([sys.executable, "-m", "netdef", "check", str(bad)], env=env, capture_output=True, text=True)
    assert err.returncode == 1 and "error[" in err.stderr


# --- the table cache -----------------------------------------------------------------------------

@pytest.fixture
def fresh_machine(monkeypatch, tmp_path):
    """parse's table machine forgotten, the cache in tmp_path/cache; restored afterwards."""
    from netdef import parse
    monkeypatch.setenv("NETDEF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(parse, "_machine", None)
    yield parse
    parse._machine = None


def _parse_resnet(parse):
    from netdef.source import Source
    text = (ZOO / "resnet152" / "deploy.prototxt").read_text()
    parse._machine = None
    return parse.parse_text(Source(text, "deploy.prototxt"))


def test_cached_tables_parse_like_fresh_ones(fresh_machine, tmp_path):
    parse = fresh_machine
    built = _parse_resnet(parse)                       # built by lark, stored
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].name.startswith("tables-")
    loaded = _parse_resnet(parse)                      # from the file
    assert loaded.message == built.message and not loaded.diagnostics.has_errors
    # lark numbers its states differently from run to run: compare what the tables do.
    from netdef.source import Source
    bad = Source('layer { name: "a" type: "ReLU" bottom: "x" top: "x" }\nlayer { name "b" }\n', "bad.prototxt")
    results = []
    for machine in (parse._get_machine(), parse._Machine()):
        parse._machine = machine
        diags = parse.parse_text(bad).diagnostics
        results.append(([d.render() for d in diags], [parse.parse_file(p).message for p in sorted(ZOO.glob("*/*.prototxt"))[:12]]))
    assert results[0] == results[1] and results[0][0]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_cache_is_rebuilt_silently(fresh_machine, tmp_path, monkeypatch, damage):
    parse = fresh_machine
    reference = _parse_resnet(parse)
    (path,) = (tmp_path / "cache").iterdir()
    data = path.read_bytes()
    damaged = {"truncate": data[:len(data) // 2], "flip": data[:-50] + bytes([data[-50] ^ 0xFF]) + data[-49:],
               "garbage": os.urandom(len(data)), "empty": b""}[damage]
    path.write_bytes(damaged)
    again = _parse_resnet(parse)
    assert again.message == reference.message and not again.diagnostics.has_errors
    assert path.read_bytes() != damaged               # replaced by a good copy, which now loads
    monkeypatch.setattr(parse._Machine, "__init__", lambda self, text=None: pytest.fail("tables rebuilt"))
    assert _parse_resnet(parse).message == reference.message


def test_stale_key_is_not_used(fresh_machine, tmp_path, monkeypatch):
    parse = fresh_machine
    _parse_resnet(parse)
    monkeypatch.setattr(parse, "_lark_version", lambda: "0.0-other")
    _parse_resnet(parse)
    assert len(list((tmp_path / "cache").iterdir())) == 2   # another key, another file


def test_read_only_cache_dir(fresh_machine, tmp_path, monkeypatch):
    parse = fresh_machine
    (tmp_path / "cache").mkdir()
    os.chmod(tmp_path / "cache", stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes into read-only directories: refuse the write as the OS would
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(os, "replace", refuse)
    try:
        assert not _parse_resnet(parse).diagnostics.has_errors
        assert [p.name for p in (tmp_path / "cache").iterdir()] == []   # no temporary file left either
    finally:
        os.chmod(tmp_path / "cache", stat.S_IRWXU)


def test_unusable_cache_location(fresh_machine, tmp_path, monkeypatch):
    """A cache 'directory' that is a file (or cannot be created): tables built, no error."""
    parse = fresh_machine
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("NETDEF_CACHE_DIR", str(tmp_path / "afile" / "netdef"))
    assert not _parse_resnet(parse).diagnostics.has_errors


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    from netdef import parse
    monkeypatch.delenv("NETDEF_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parse.cache_dir() == os.path.join(str(tmp_path), "netdef")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")   # ignored, as the XDG spec says
    assert parse.cache_dir() is None


# --- ONNX messages without onnx ------------------------------------------------------------------

def test_ir_versions_match_onnx_release_table():
    from onnx import helper
    from netdef.export.onnx_proto import IR_VERSION_FOR_OPSET
    for opset, ir in IR_VERSION_FOR_OPSET.items():
        assert ir == next(i for _r, i, op, *_ in helper.VERSION_TABLE if op >= opset), opset


@pytest.mark.parametrize("value", [1, True, 2.5, "linear", b"raw", [1, 2, 3], [1.5, 2], [1, 2.0], ["a", "b"]])
def test_attributes_match_onnx_helper(value):
    import numpy as np
    from onnx import helper
    from netdef.export import onnx_proto
    ours = onnx_proto.make_node("Op", ["x"], ["y"], name="n", value=value, other=np.int64(3))
    theirs = helper.make_node("Op", ["x"], ["y"], name="n", value=value, other=np.int64(3))
    assert ours.SerializeToString() == theirs.SerializeToString()


@pytest.mark.parametrize("shape", [None, [], [1, 3, 224, 224], ["batch", 3, None]])
def test_value_info_matches_onnx_helper(shape):
    from onnx import TensorProto, helper
    from netdef.export import onnx_proto
    ours = onnx_proto.make_tensor_value_info("x", onnx_proto.TensorProto.FLOAT16, shape)
    theirs = helper.make_tensor_value_info("x", TensorProto.FLOAT16, shape)
    assert ours.SerializeToString() == theirs.SerializeToString()


def test_onnx_schema_code_is_regenerated(tmp_path):
    """netdef_onnx_pb2.py is what protoc makes of netdef_onnx.proto (the command in its header)."""
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools is not installed")
    proto_dir = REPO / "netdef" / "proto"
    assert protoc.main(["grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={tmp_path}",
                        str(proto_dir / "netdef_onnx.proto")]) == 0
    assert (tmp_path / "netdef_onnx_pb2.py").read_bytes() == (proto_dir / "netdef_onnx_pb2.py").read_bytes()


def test_detection_constants_without_numpy():
    import numpy as np
    from netdef.layers import detection
    assert detection.FLT_MAX == float(np.finfo(np.float32).max)
    assert detection.np.float32 is np.float32     # the lazy stand-in hands out numpy itself
