"""Shared test fixtures: where the repository, the bundled library and the test data live.

Everything the suite reads is in the repository (tests/data/: the real-world definitions and
Caffe's reference results), except the few large Caffe-made weight files of
conformance/nets/{bvlc_googlenet,mobilenet_v1,squeezenet_v1.1}. Those are looked for in
$NETDEF_LARGE_DATA (a directory laid out like Caffe's conformance folder: nets/<net>/...), then
in ../shared/conformance beside the checkout; the tests that need them skip, with the reason,
when neither has them. CI sets NETDEF_REQUIRE_LARGE_DATA=1, which turns such a skip into a failure.
"""
import contextlib
import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
ZOO = DATA / "zoo"
ZOO_WILD = DATA / "zoo-wild"
# Real-world files found after zoo-wild, one folder per kind (detection, other), each with its
# MANIFEST.tsv (source repository, path, commit, license), byte-for-byte as found.
ZOO_MORE = DATA / "zoo-more"
CONFORMANCE = DATA / "conformance"
LIBRARY_NETS = REPO / "netdef" / "data" / "prototxts"
LIBRARY_SOLVERS = REPO / "netdef" / "data" / "solvers"


def _large_roots() -> list[Path]:
    roots = []
    if os.environ.get("NETDEF_LARGE_DATA"):
        roots.append(Path(os.environ["NETDEF_LARGE_DATA"]))
    roots.append(REPO.parent / "shared" / "conformance")
    return roots


def large_file(relative: str) -> Path:
    """A file of the conformance data (relative to conformance/) that may be too large for the
    repository: from the repository when it is there, else from the large-data directory; skips
    the calling test when it is nowhere (fails instead under NETDEF_REQUIRE_LARGE_DATA=1)."""
    here = CONFORMANCE / relative
    if here.exists():
        return here
    for root in _large_roots():
        if (root / relative).exists():
            return root / relative
    reason = (f"large reference file conformance/{relative} not found "
              f"(set NETDEF_LARGE_DATA or place ../shared beside the checkout)")
    if os.environ.get("NETDEF_REQUIRE_LARGE_DATA") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def case_file(case: Path, name: str) -> Path:
    """A file of a conformance case directory (tests/data/conformance/...), large or not."""
    if (case / name).exists():
        return case / name
    return large_file(str((case / name).relative_to(CONFORMANCE)))


class Hang(AssertionError):
    pass


@contextlib.contextmanager
def no_hang(seconds: int = 300):
    """Fail (instead of waiting forever) when the block runs past `seconds`: a bound that only a
    real hang reaches, never a speed requirement (speed is measured in benchmarks/, not here)."""
    def _raise(signum, frame):
        raise Hang(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def compile_text(text: str):
    """A definition given as text, parsed, upgraded (V1 layers too) and analysed: an ir.Graph."""
    import netdef
    from netdef.parse import parse_text
    from netdef.source import Source
    from netdef.upgrade import upgrade_parsed
    return netdef.compile(upgrade_parsed(parse_text(Source(text, "t.prototxt"), "net")))


def shapes_of(text: str):
    """({blob name: shape}, graph) of a definition that must have no errors."""
    g = compile_text(text)
    assert not g.diagnostics.has_errors, [d.header() for d in g.diagnostics if d.is_error]
    return {v.name: v.meta.get("shape") for v in g.values}, g


def errors_of(text: str) -> list[str]:
    """The messages of a definition's errors."""
    return [d.message for d in compile_text(text).diagnostics if d.is_error]
