"""Time and memory bounds, measured on real processes.

The stated bounds (benchmarks/RESULTS.md, "Robustness", measures them at the limit):
  * a definition is at most 8 MiB (netdef.source.MAX_SOURCE_BYTES); anything larger is refused
    before it is read, in well under a second;
  * up to that size, check / summary / fmt / upgrade take about 2 s and 45 MB per MiB of text
    on the 2-core reference machine: under 30 s and 512 MB at 8 MiB;
  * nesting is cut at 64 levels, so no stage recurses deeper, whatever the input.
CI checks a 1 MiB net against a twelfth of those (bounds scale linearly) under an address-space
limit, and the parser's iteration under a recursion limit a deep parser could not live with.
"""
import os
import subprocess
import sys
import time

import pytest

from fuzzlib import cli_ok

CHILD = """import resource, sys
from netdef.cli import main
code = main(sys.argv[1:])
sys.stderr.write("MAXRSS_KB %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def limited(argv, mem_bytes, timeout):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))

    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, *map(str, argv)], capture_output=True, text=True,
                       timeout=timeout, preexec_fn=limit)
    seconds = time.perf_counter() - t0
    rss = [int(line.split()[1]) for line in r.stderr.splitlines() if line.startswith("MAXRSS_KB")]
    return r, seconds, (rss[0] / 1024 if rss else None)


def big_net(target_bytes: int) -> str:
    """A valid chain of conv/BatchNorm/ReLU blocks, about `target_bytes` long."""
    out = ['name: "big"\nlayer { name: "data" type: "Input" top: "data" '
           'input_param { shape { dim: 1 dim: 8 dim: 32 dim: 32 } } }\n']
    size, i, prev = len(out[0]), 0, "data"
    while size < target_bytes:
        block = (f'layer {{\n  name: "conv{i}"\n  type: "Convolution"\n  bottom: "{prev}"\n  top: "conv{i}"\n'
                 f'  param {{ lr_mult: 1 decay_mult: 1 }}\n'
                 f'  convolution_param {{\n    num_output: 8\n    kernel_size: 3\n    pad: 1\n'
                 f'    weight_filler {{ type: "msra" }}\n  }}\n}}\n'
                 f'layer {{\n  name: "bn{i}"\n  type: "BatchNorm"\n  bottom: "conv{i}"\n  top: "conv{i}"\n}}\n'
                 f'layer {{\n  name: "relu{i}"\n  type: "ReLU"\n  bottom: "conv{i}"\n  top: "conv{i}"\n}}\n')
        out.append(block)
        size += len(block)
        prev = f"conv{i}"
        i += 1
    return "".join(out)


@pytest.fixture(scope="module")
def one_mib(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.prototxt"
    path.write_text(big_net(1 << 20))
    return path


@pytest.mark.parametrize("cmd", ["check", "summary", "fmt", "upgrade"])
def test_a_1_mib_definition_within_the_bounds(one_mib, cmd):
    # Memory: 45 MB per MiB on the reference machine, and the interpreter's own ~40 MB on top.
    # Time is measured by benchmarks/fuzz.py --bounds (RESULTS.md); the timeout only catches a hang.
    r, seconds, rss = limited([cmd, one_mib], mem_bytes=1 << 30, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert rss is not None and rss < 40 + 512 / 8 * 1.5, f"{cmd} used {rss:.0f} MB"


def test_past_the_limit_costs_nothing(tmp_path):
    path = tmp_path / "just_over.prototxt"
    path.write_text(big_net(8 * 2**20 + 100))
    assert path.stat().st_size > 8 * 2**20
    r, seconds, rss = limited(["check", path], mem_bytes=1 << 30, timeout=600)
    assert r.returncode == 1 and "at most 8 MiB" in r.stderr
    # The interpreter and the CLI's imports (~60-100 MB); reading the 8 MiB file would add far more.
    assert rss < 160, f"{rss:.0f} MB"


def test_the_parser_does_not_recurse(tmp_path, monkeypatch):
    """With Python's recursion limit at 150 (netdef's own call depth is far below), a 64-level
    definition and a 10,000-level one are handled: the parser is a loop, the limit keeps the
    writers shallow."""
    deep = tmp_path / "deep.prototxt"
    deep.write_text("layer { name: \"a\" type: \"ReLU\" permute_param " + "{ x " * 58 + "{ y: 1 }" + " }" * 58 + " }\n")
    deeper = tmp_path / "deeper.prototxt"
    deeper.write_text("layer { " * 10_000 + "}" * 10_000)
    cli_ok("check", deep)  # warm the imports and the parser tables first
    monkeypatch.setattr(sys, "getrecursionlimit", sys.getrecursionlimit)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(150 + _depth())
    try:
        assert cli_ok("fmt", deep).code == 0
        assert cli_ok("upgrade", deep).code == 0
        assert cli_ok("check", deeper, files=[deeper]).code == 1
    finally:
        sys.setrecursionlimit(old)


def _depth() -> int:
    import inspect
    return len(inspect.stack(0))


def test_a_long_single_line_is_shown_in_a_short_window(tmp_path):
    """A minified 1 MiB one-line file with an error near its end: the snippet is cut to a
    window around the caret, not a megabyte of terminal output."""
    text = big_net(1 << 20).replace("\n", " ") + " }"  # closes nothing: E101 at the last column
    path = tmp_path / "one_line.prototxt"
    path.write_text(text)
    r = cli_ok("check", path, files=[path])
    assert r.code == 1 and f"{path}:1:{len(text)}: error[E101]" in r.err
    assert max(len(line) for line in r.err.splitlines()) < 400
    assert len(r.err) < 4000
