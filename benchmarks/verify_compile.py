"""What `netdef verify` saves by compiling the net once (its batch-1 probe's graph passed on).

    python3 benchmarks/verify_compile.py [--net PATH] [--rounds N] [--verify-rounds M]

Two measurements, each alternating the two ways run by run (so both see the same load):

- the compile alone: the old way (the probe compiled the file at batch 1, then verify compiled
  it again: two compile_for_export calls on the path, each parsing it), against the new one
  (the file read and parsed once, one compile_for_export whose graph verify uses);
- the whole verify (export, onnxruntime, the NumPy reference, the comparison) both ways, as
  cli/verify.py runs it: the old `compile_for_export(path)` + `verify(path)`, the new
  `load_source` + `compile_for_export` + `verify(parsed, graph=...)`.

Reported: medians (and the spread) of wall time, the saving and its share of the whole verify.
Default net: tests/data/zoo/resnet152/deploy.prototxt (batch 1, 3x224x224).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netdef.diagnostics import Diagnostics  # noqa: E402
from netdef.export.prepare import compile_for_export, load_source  # noqa: E402
from netdef.export.verify import verify  # noqa: E402


def compile_twice(path):
    compile_for_export(path, batch=1, deploy=True)          # the probe
    return compile_for_export(path, batch=1, deploy=True)   # verify's own


def compile_once(path):
    return compile_for_export(load_source(path), batch=1, deploy=True)


def verify_old(path):
    compile_for_export(path, batch=1, deploy=True)
    return verify(path, diags=Diagnostics(), batch=1)


def verify_new(path):
    parsed = load_source(path)
    graph, _ = compile_for_export(parsed, batch=1, deploy=True)
    return verify(parsed, diags=Diagnostics(), batch=1, graph=graph)


def alternate(a, b, path, rounds):
    ta, tb = [], []
    for i in range(rounds):
        for fn, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            t0 = time.perf_counter()
            result = fn(path)
            out.append(time.perf_counter() - t0)
            if hasattr(result, "first_bad"):
                assert result.first_bad is None and result.comparisons, "verify failed"
    return ta, tb


def show(label, old, new, whole=None):
    mo, mn = statistics.median(old), statistics.median(new)
    line = (f"{label}: old {mo * 1e3:.1f} ms [{min(old) * 1e3:.1f}-{max(old) * 1e3:.1f}], "
            f"new {mn * 1e3:.1f} ms [{min(new) * 1e3:.1f}-{max(new) * 1e3:.1f}], "
            f"saved {(mo - mn) * 1e3:.1f} ms, ratio new/old {mn / mo:.3f}")
    print(line)
    return mo - mn


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default=str(ROOT / "tests" / "data" / "zoo" / "resnet152" / "deploy.prototxt"))
    ap.add_argument("--rounds", type=int, default=10, help="rounds of the compile alone")
    ap.add_argument("--verify-rounds", type=int, default=4, help="rounds of the whole verify (0: skip)")
    args = ap.parse_args()
    print(f"{args.net}; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    compile_once(args.net)                       # warm: the parser tables, imports
    show("compile (probe + verify's own)", *alternate(compile_twice, compile_once, args.net, args.rounds))
    if args.verify_rounds:
        old, new = alternate(verify_old, verify_new, args.net, args.verify_rounds)
        saved = show("whole verify", old, new)
        print(f"saving: {100 * saved / statistics.median(old):.1f}% of the whole verify")
    return 0


if __name__ == "__main__":
    sys.exit(main())
