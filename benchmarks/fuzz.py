"""The long fuzz campaign: mutants of every zoo file and of Caffe's own .caffemodel files, run
through the command line in-process, checked against the contract of tests/robustness.

    python3 benchmarks/fuzz.py --minutes 30 [--workers 2] [--seed 1] [--out /tmp/fuzz]
    python3 benchmarks/fuzz.py --bounds          # the time/memory bounds at the size limit

Each worker draws a zoo file (or a conformance .caffemodel), applies one to four mutations
(tests/robustness/fuzzlib.py: token deletions, duplications, swaps, hostile replacements,
truncation, random bytes, bit flips, duplicated blocks, 10,000-level nesting, and the blanks
and comments between tokens: runs of every kind of whitespace up to 10,000 long, banners of
'#' after string values, comments holding quotes, backslashes and brackets) and runs every
command that reads that kind of input. A run breaks the contract when it exits with anything
but 0/1/2, shows a traceback or an internal error, fails without a located diagnostic, runs
out of memory (each worker runs under a 4 GiB address-space limit) or takes longer than the
time limit (SIGALRM, default 60 s). Violations are grouped by command and message; the first
input of each group is saved under --out with the mutations that made it. Prints a summary and
writes --out/summary.json (runs per command, exit codes, slowest runs, peak memory).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import resource
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "robustness"))

from fuzzlib import ZOO, apply, random_ops, run_cli, violations  # noqa: E402

CONFORMANCE = ZOO.parent / "conformance"

NET_COMMANDS = [["check"], ["summary", "--format", "json"], ["rf"], ["fmt"], ["upgrade"], ["sizes", "--range", "1:64"],
                ["draw", "-o", "{tmp}/out.dot"], ["init", "-o", "{tmp}/out.caffemodel"], ["export", "-o", "{tmp}/out.onnx"]]
SOLVER_COMMANDS = [["solver"], ["lr", "--iters", "0:200"], ["lr", "--format", "json", "--iters", "0:50:7"],
                   ["fmt"], ["upgrade"]]
WEIGHT_COMMANDS = [["export", "-o", "{tmp}/out.onnx"], ["verify"]]


class Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise Timeout()


def _signature(r) -> str:
    """What a violation looks like, numbers and paths left out, for grouping."""
    lines = [line for line in r.err.splitlines() if "error" in line or "Traceback" in line or "internal" in line]
    text = " | ".join(lines[-2:])
    text = re.sub(r"/\S+", "PATH", text)
    return re.sub(r"\d+", "N", text)[:200]


def worker(args) -> dict:
    seed, deadline, time_limit, out_dir = args
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(seed)
    texts = sorted(p for p in ZOO.rglob("*") if p.suffix in (".prototxt", ".pt", ".proto"))
    weights = sorted(CONFORMANCE.glob("layers/*/weights.caffemodel"))
    runs, codes, slowest = Counter(), defaultdict(Counter), []
    found: dict[str, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix=f"fuzz{seed}-"))
    while time.time() < deadline:
        kind = rng.random()
        if kind < 0.15 and weights:
            src = rng.choice(weights)
            data = bytearray(src.read_bytes())
            for _ in range(rng.randint(1, 4)):
                op = rng.choice(("flip", "truncate", "insert", "delete"))
                p = rng.randrange(len(data) or 1)
                if op == "flip" and data:
                    data[p] ^= 1 << rng.randrange(8)
                elif op == "truncate":
                    del data[p:]
                elif op == "insert":
                    data[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
                elif data:
                    del data[p:p + rng.randint(1, 16)]
            mutant = tmp / "w.caffemodel"
            mutant.write_bytes(bytes(data))
            inputs, commands, ops = [src.parent / "net.prototxt"], WEIGHT_COMMANDS, ["caffemodel", str(src)]
            argv_tail = ["--weights", str(mutant)]
        else:
            src = rng.choice(texts)
            if src.stat().st_size > 130_000 and rng.random() < 0.8:
                continue  # the biggest files are slow to analyse: visit them less often
            ops = random_ops(rng)
            work = tmp / src.parent.name
            if not work.exists():
                import shutil
                shutil.copytree(src.parent, work)  # solvers find their nets beside them
            mutant = work / f"mutant_{src.name}"
            mutant.write_bytes(apply(src.read_text(encoding="utf-8"), ops))
            inputs = [mutant]
            commands = SOLVER_COMMANDS if "solver" in src.name else NET_COMMANDS
            argv_tail = []
        for cmd in commands:
            argv = [cmd[0], str(inputs[0])] + [a.format(tmp=tmp) for a in cmd[1:]] + argv_tail
            signal.alarm(time_limit)
            t0 = time.perf_counter()
            try:
                r = run_cli(argv)
                bad = violations(r, list(mutant.parent.iterdir()) + inputs)
            except Timeout:
                r = None
                bad = [f"took more than {time_limit} s"]
            finally:
                signal.alarm(0)
            seconds = time.perf_counter() - t0
            name = cmd[0] if cmd[0] != "lr" or "json" not in cmd else "lr-json"
            runs[name] += 1
            codes[name][r.code if r else "timeout"] += 1
            slowest.append((seconds, name, str(src.relative_to(ZOO.parent))))
            slowest = sorted(slowest, reverse=True)[:10]
            if bad:
                key = f"{name}: {'; '.join(bad)}: {_signature(r) if r else ''}"
                if key not in found:
                    saved = out_dir / f"case{seed}_{len(found)}{mutant.suffix}"
                    saved.write_bytes(mutant.read_bytes())
                    found[key] = {"command": argv[:1] + ["INPUT"] + argv[2:], "source": str(src), "ops": ops,
                                  "saved": str(saved), "stderr": (r.err[-2000:] if r else ""), "count": 0}
                found[key]["count"] += 1
    return {"runs": dict(runs), "codes": {k: dict(v) for k, v in codes.items()}, "slowest": slowest,
            "violations": found, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


BOUNDS_CHILD = """import resource, sys, time
from netdef.cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
sys.stderr.write("BOUNDS %.3f %d\\n" % (time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(code)
"""


def bounds(out: Path) -> int:
    """The stated bounds, measured: each command on a valid net just under the 8 MiB limit
    (and at 1 MiB), in a fresh process under a 2 GiB address-space limit; a 100 MB file."""
    import subprocess

    sys.path.insert(0, str(HERE.parent / "tests" / "robustness"))
    from test_robust_limits import big_net

    from netdef.source import MAX_SOURCE_BYTES

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    rows = []
    for label, size in (("1 MiB", 1 << 20), ("8 MiB", MAX_SOURCE_BYTES - 4096)):
        path = out / f"bounds_{size}.prototxt"
        path.write_text(big_net(size))
        layers = path.read_text().count("layer {")
        for cmd in (["check"], ["summary"], ["rf"], ["fmt"], ["upgrade"], ["draw", "-o", str(out / "b.dot")],
                    ["init", "-o", str(out / "b.caffemodel")], ["export", "-o", str(out / "b.onnx")]):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", BOUNDS_CHILD, cmd[0], str(path), *cmd[1:]],
                               capture_output=True, text=True, preexec_fn=limit, timeout=600)
            wall = time.perf_counter() - t0
            m = re.search(r"BOUNDS ([\d.]+) (\d+)", r.stderr)
            rows.append((label, layers, cmd[0], r.returncode, wall, float(m.group(1)) if m else None,
                         int(m.group(2)) / 1024 if m else None))
            print(f"{label:>6} {layers:>6} layers  {cmd[0]:<8} exit {r.returncode}  {wall:6.1f} s wall "
                  f"(in main {rows[-1][5] or 0:6.1f} s)  peak {rows[-1][6] or 0:6.0f} MB", flush=True)
    huge = out / "huge.prototxt"
    with open(huge, "wb") as f:
        block = b'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n' * (1 << 14)
        while f.tell() < 100 * 2**20:
            f.write(block)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", BOUNDS_CHILD, "check", str(huge)], capture_output=True, text=True,
                       preexec_fn=limit, timeout=600)
    m = re.search(r"BOUNDS ([\d.]+) (\d+)", r.stderr)
    print(f"100 MB file: exit {r.returncode} in {time.perf_counter() - t0:.2f} s wall, peak {int(m.group(2)) / 1024:.0f} MB; "
          + r.stderr.splitlines()[0])
    huge.unlink()
    (out / "bounds.json").write_text(json.dumps(rows, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bounds", action="store_true", help="measure the time/memory bounds instead of fuzzing")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=int, default=60, help="seconds one command may take")
    ap.add_argument("--out", default=None, help="where to save violating inputs and summary.json")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="netdef-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.bounds:
        return bounds(out)
    deadline = time.time() + args.minutes * 60
    t0 = time.time()
    jobs = [(args.seed * 1000 + i, deadline, args.time_limit, out) for i in range(args.workers)]
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(worker, jobs)
    runs, codes, found = Counter(), defaultdict(Counter), {}
    slowest = []
    for res in results:
        runs.update(res["runs"])
        for k, v in res["codes"].items():
            codes[k].update(v)
        slowest += res["slowest"]
        for key, v in res["violations"].items():
            if key in found:
                found[key]["count"] += v["count"]
            else:
                found[key] = v
    summary = {"minutes": round((time.time() - t0) / 60, 1), "workers": args.workers, "seed": args.seed,
               "runs": dict(runs), "total_runs": sum(runs.values()),
               "exit_codes": {k: dict(v) for k, v in codes.items()},
               "slowest": sorted(slowest, reverse=True)[:10],
               "peak_rss_mb": max(r["peak_rss_mb"] for r in results), "violations": found}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"{summary['total_runs']} runs in {summary['minutes']} min ({args.workers} workers, seed {args.seed}); "
          f"peak RSS {summary['peak_rss_mb']:.0f} MB per worker")
    for name in sorted(runs):
        print(f"  {name:<10} {runs[name]:>7} runs  exit codes {dict(sorted(codes[name].items(), key=str))}")
    print("slowest:", ", ".join(f"{n} {s:.1f}s ({f})" for s, n, f in summary["slowest"][:5]))
    print(f"{len(found)} distinct violation(s)")
    for key, v in found.items():
        print(f"- {key}  [{v['count']}x] e.g. {v['saved']} from {v['source']} {v['ops']}")
    print(f"details: {out / 'summary.json'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
