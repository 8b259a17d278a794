"""Parse time of netdef against google.protobuf.text_format on the same text, same messages.

    python3 benchmarks/parse.py [--repeat N]

Prints, for ResNet-152's deploy definition and for a file ten times its size (its layers
repeated), the best-of-N wall time of each and the ratio netdef / text_format (lower is better;
the target is <= 1.0). Both produce a netdef NetParameter; the check that they are equal runs
first, so the comparison is like for like.
"""
from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from pathlib import Path

from google.protobuf import __version__ as pb_version
from google.protobuf import text_format
from google.protobuf.internal import api_implementation

from netdef.parse import NET, parse_text
from netdef.proto import pb
from netdef.source import Source

ZOO = Path(__file__).resolve().parent.parent / "tests" / "data" / "zoo"


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(label: str, text: str, repeat: int) -> tuple[float, float]:
    ours = parse_text(Source(text, label), NET)
    ref = pb.NetParameter()
    text_format.Parse(text, ref)
    assert ours.message == ref and not ours.diagnostics.has_errors, "netdef and text_format disagree"
    t_ours = best_of(lambda: parse_text(Source(text, label), NET), repeat)
    t_ref = best_of(lambda: text_format.Parse(text, pb.NetParameter()), repeat)
    print(f"{label:<28} {len(text) / 1e6:7.2f} MB  {len(ref.layer):6d} layers  netdef {t_ours * 1e3:8.1f} ms  "
          f"text_format {t_ref * 1e3:8.1f} ms  ratio {t_ours / t_ref:5.2f}")
    return t_ours, t_ref


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--file", default=str(ZOO / "resnet152" / "deploy.prototxt"))
    args = ap.parse_args()
    text = Path(args.file).read_text(encoding="utf-8")
    head, sep, rest = text.partition("layer {")
    big = head + (sep + rest) * 10
    print(f"python {platform.python_version()}, protobuf {pb_version} ({api_implementation.Type()}), "
          f"{platform.machine()}")
    bench(Path(args.file).parent.name + "/" + Path(args.file).name, text, args.repeat)
    bench("same, layers x10", big, max(2, args.repeat // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
