"""Files that are not definitions at all: every command that reads a definition fails the same
way, with exit 1 and an E100/E209 diagnostic at a place in the file, and writes nothing.

Bounds: a definition larger than netdef.source.MAX_SOURCE_BYTES (8 MiB) is refused after a
stat() or, for pipes and devices that have no size, after reading one byte past the limit."""
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import no_hang
from fuzzlib import cli_ok, run_cli

from netdef import source

# Every command that reads a definition, with what it needs to run (outputs go to tmp).
COMMANDS = {
    "check": [], "summary": [], "rf": [], "sizes": ["--range", "1:8"], "fmt": [], "upgrade": [],
    "draw": ["-o", "{tmp}/out.dot"], "export": ["-o", "{tmp}/out.onnx"], "init": ["-o", "{tmp}/out.caffemodel"],
    "run": [], "bench": ["--runs", "1", "--warmup", "0"], "verify": [], "solver": [], "lr": [],
    "view": ["-o", "{tmp}/out.html"],
}

# name -> (bytes, line, col, what the message says)
HOSTILE = {
    "not_utf8": (b'layer {\n  name: "caf\xe9"\n}\n', 2, 13, "byte 0xe9 is not UTF-8 text"),
    "nul_in_string": (b'layer {\n  name: "a\x00b"\n}\n', 2, 11, "NUL character"),
    "nul_in_comment": (b'# \x00\nlayer { name: "a" }\n', 1, 3, "NUL character"),
    "binary": (bytes(range(256)) * 8, 2, 118, "byte 0x80 is not UTF-8 text"),  # 0x0a ends line 1
    "utf16": ('layer { name: "a" }\n'.encode("utf-16"), 1, 1, "byte 0xff is not UTF-8 text"),
}


def argv_for(cmd, path, tmp):
    return [cmd, str(path)] + [a.format(tmp=tmp) for a in COMMANDS[cmd]]


def located(err, path, line, col):
    return re.search(rf"^{re.escape(str(path))}:{line}:{col}: error\[E\d+\]", err, re.M)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_unreadable_text_is_located(tmp_path, cmd, kind):
    data, line, col, what = HOSTILE[kind]
    path = tmp_path / f"{kind}.prototxt"
    path.write_bytes(data)
    r = cli_ok(*argv_for(cmd, path, tmp_path), files=[path])
    assert r.code == 1
    assert located(r.err, path, line, col), r.err
    assert what in r.err and "E100" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "nothing is written"


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_missing_directory_and_empty_files(tmp_path, cmd):
    (tmp_path / "dir.prototxt").mkdir()
    (tmp_path / "empty.prototxt").write_text("")
    (tmp_path / "comments.prototxt").write_text("# nothing\n\n   # at all\n")
    for name, needle in [("missing.prototxt", "no such file"), ("dir.prototxt", "is a directory"),
                         ("empty.prototxt", None), ("comments.prototxt", None)]:
        path = tmp_path / name
        r = cli_ok(*argv_for(cmd, path, tmp_path), files=[path])
        assert r.code == 1, (name, r.err)
        assert located(r.err, path, 1, 1), r.err
        if needle:
            assert needle in r.err
    assert not list(tmp_path.glob("out.*")) and not list(tmp_path.glob(".netdef-*"))


def test_the_size_limit_says_what_it_is_and_how_to_raise_it(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "MAX_SOURCE_BYTES", 4096)
    layer = 'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n'
    text = 'input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n' + layer * 100
    path = tmp_path / "big.prototxt"
    path.write_text(text)
    assert len(text) > 4096
    for cmd in ("check", "fmt", "solver", "export"):
        r = cli_ok(*argv_for(cmd, path, tmp_path), files=[path])
        assert r.code == 1
        assert located(r.err, path, 1, 1)
        assert f"the file is {len(text)} bytes" in r.err and "at most 4096 bytes" in r.err
        assert "--max-file-size" in r.err
    # The option raises the limit for one run, then the default is back.
    assert cli_ok("--max-file-size", "1", "check", path).code == 0
    assert source.MAX_SOURCE_BYTES == 4096
    assert run_cli(["--max-file-size", "0", "check", path]).code == 2
    assert run_cli(["--max-file-size", "lots", "check", path]).code == 2


def test_devices_without_a_size_are_read_up_to_the_limit_only(monkeypatch):
    # /dev/zero stats as 0 bytes and never ends: the read stops one byte past the limit.
    monkeypatch.setattr(source, "MAX_SOURCE_BYTES", 1 << 20)
    with no_hang(120):
        r = cli_ok("fmt", "/dev/zero", files=["/dev/zero"])
    assert r.code == 1 and "the input is more than 1 MiB" in r.err


def test_default_limit_is_stated():
    assert source.MAX_SOURCE_BYTES == 8 * 2**20
    r = run_cli(["--help"])
    assert "--max-file-size" in r.out and "default 8 MB" in r.out


def test_a_100_mb_file_is_refused_at_once_in_bounded_memory(tmp_path):
    """The real thing, in a subprocess under a 1 GiB address-space limit: a 100 MB file of
    repeated layers is refused at once, never read into memory."""
    path = tmp_path / "huge.prototxt"
    layer = b'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n'
    with open(path, "wb") as f:
        block = layer * (1 << 14)
        while f.tell() < 100 * 2**20:
            f.write(block)
    r = _limited([sys.executable, "-m", "netdef", "check", str(path)], mem=1 << 30, timeout=600)
    assert r.returncode == 1, r.stderr
    assert located(r.stderr, path, 1, 1) and "at most 8 MiB" in r.stderr
    assert "Traceback" not in r.stderr


def _limited(argv, mem, timeout):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))

    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
                       env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    r.seconds = time.perf_counter() - t0
    return r
