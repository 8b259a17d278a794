"""Peak memory (and time) of `netdef verify` on big nets.

    python3 benchmarks/verify_memory.py [--old DIR] [--rounds N] [--net KEY ...]

Each measurement is one `netdef verify` (the CLI, in-process, batch 1) in a fresh Python
process; its peak resident set comes from getrusage(RUSAGE_CHILDREN) - the kernel's high-water
mark, not a sampled guess - and its time from the wall clock around the command. Ways measured,
alternating their order round by round so that each sees the same load:

- new:      this tree as it is (onnxruntime's values in segments of SEGMENT_BYTES, blobs let
            go once compared and no longer read);
- one-run:  this tree with every value in one onnxruntime run (segment_bytes 0): what the
            segments save and what they cost in time;
- old:      with --old DIR, a netdef package tree to compare with (e.g. the code before this
            change: `git archive 49abc0a netdef | tar -x -C DIR`).

Printed per net: the median peak RSS and time of each way and their ratios to `new`. Nets:
tests/data/zoo pspnet50_ade20k (473x473), segnet_inference (360x480), resnet152 (224x224).
One verify of PSPNet-50 takes about a minute here: keep --rounds small.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "tests" / "data" / "zoo"
NETS = {
    "pspnet50": (ZOO / "pspnet50_ade20k" / "deploy.prototxt", []),
    "segnet": (ZOO / "segnet" / "segnet_inference.prototxt",
               ["--input", "data=1,3,360,480", "--input", "label=1,1,360,480"]),
    "resnet152": (ZOO / "resnet152" / "deploy.prototxt", []),
}

CHILD = r"""
import contextlib, io, json, sys, time
sys.path.insert(0, sys.argv[1])
segment = sys.argv[2]
import netdef.export.verify as V
if segment == "0":
    V.SEGMENT_BYTES = None            # every value in one run (the trees without segments ignore it)
from netdef.cli import main
out = io.StringIO()
t = time.perf_counter()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    rc = main(["verify", *sys.argv[3:]])
wall = time.perf_counter() - t
last = [ln for ln in out.getvalue().splitlines() if ln.startswith("compared")]
print(json.dumps({"rc": rc, "wall": wall, "summary": last[-1] if last else ""}))
"""


def measure(tree: Path, segment: str, argv: list[str]) -> dict:
    """Run in a process with no other child (measure_fresh): RUSAGE_CHILDREN's maxrss is the
    largest child's peak so far, so only the first child's reads true."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    p = subprocess.run([sys.executable, "-c", CHILD, str(tree), segment, *argv], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode != 0:
        raise SystemExit(f"child failed: {p.stderr[-2000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["peak_mib"] = peak / 1024     # KiB on Linux
    return r


def measure_fresh(tree: Path, segment: str, argv: list[str]) -> dict:
    """One measurement in a process of its own, whose RUSAGE_CHILDREN is that child alone."""
    code = ("import json,sys;sys.argv=sys.argv[1:];"
            "import benchmarks.verify_memory as b;"
            "r=b.measure(__import__('pathlib').Path(sys.argv[0]),sys.argv[1],sys.argv[2:]);print(json.dumps(r))")
    p = subprocess.run([sys.executable, "-c", code, str(tree), segment, *argv], capture_output=True, text=True,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if p.returncode != 0:
        raise SystemExit(p.stderr[-2000:] or p.stdout[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, help="a tree holding the netdef package to compare with")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--net", action="append", choices=sorted(NETS), help="default: all three")
    args = ap.parse_args()
    ways = [("new", ROOT, ""), ("one-run", ROOT, "0")]
    if args.old:
        ways.append(("old", args.old.resolve(), ""))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; {args.rounds} rounds, alternating")
    for key in args.net or sorted(NETS):
        path, extra = NETS[key]
        argv = [str(path), *extra]
        results: dict[str, list[dict]] = {w: [] for w, _, _ in ways}
        for i in range(args.rounds):
            order = ways if i % 2 == 0 else list(reversed(ways))
            for name, tree, segment in order:
                r = measure_fresh(tree, segment, argv)
                results[name].append(r)
                print(f"  {key} {name:8} round {i + 1}: peak {r['peak_mib']:.0f} MiB, {r['wall']:.1f} s, rc {r['rc']}; "
                      f"{r['summary']}", flush=True)
        peak = {w: statistics.median(r["peak_mib"] for r in rs) for w, rs in results.items()}
        wall = {w: statistics.median(r["wall"] for r in rs) for w, rs in results.items()}
        print(f"{key}: " + "; ".join(f"{w} {peak[w]:.0f} MiB {wall[w]:.1f} s" for w in peak))
        for w in peak:
            if w != "new":
                print(f"  {w}/new: peak x{peak[w] / peak['new']:.2f}, time x{wall[w] / wall['new']:.2f}")


if __name__ == "__main__":
    main()
