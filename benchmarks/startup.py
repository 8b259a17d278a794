"""Whole-process start-up cost of the netdef command line, against plain Python references.

    python3 benchmarks/startup.py [--rounds N]

Each case is a fresh process, timed from spawn to exit (wall time, and the CPU time the child
used, from os.wait4); the command and its reference alternate run by run so that both see the
same machine load. Reported: the median of each over N rounds, and their ratio (the target
is the figure after '<='):

- `netdef check lenet` against `python -c pass`                                     <= 3
- `netdef export lenet -o x.onnx` against `python -c pass`                          <= 8
- `netdef fmt` of ResNet-152's deploy file with its layers repeated x10 (the file
  benchmarks/parse.py builds) against a `python` process that parses the same file with
  protobuf's `text_format` into the same message type                               <= 1

netdef runs as `python -m netdef` from this checkout, compiled to bytecode first (as `pip install`
does; a checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module on
every run), with the lark table cache warm (a first run fills it; the script uses a cache
directory of its own, so the user's is not touched). The cold-cache cost (tables built by
lark, then stored) is reported apart.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESNET152 = ROOT / "tests" / "data" / "zoo" / "resnet152" / "deploy.prototxt"

TEXT_FORMAT = ("import sys\n"
               "from google.protobuf import text_format\n"
               "from netdef.proto import netdef_pb2\n"
               "m = text_format.Parse(open(sys.argv[1], encoding='utf-8').read(), netdef_pb2.NetParameter())\n"
               "print(len(m.layer))\n")


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run; fails loudly on a non-zero exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def compare(label: str, cmd: list[str], ref: list[str], env: dict, rounds: int, target: float) -> None:
    timed(cmd, env), timed(ref, env)  # page cache, lazily built caches
    walls, cpus, rwalls, rcpus = [], [], [], []
    for i in range(rounds):
        order = [(cmd, walls, cpus), (ref, rwalls, rcpus)]
        for argv, w, c in (order if i % 2 == 0 else order[::-1]):
            wall, cpu = timed(argv, env)
            w.append(wall)
            c.append(cpu)
    mw, mc = statistics.median(walls), statistics.median(cpus)
    rw, rc = statistics.median(rwalls), statistics.median(rcpus)
    print(f"{label:<34} wall {mw * 1e3:7.1f} ms vs {rw * 1e3:7.1f} ms  ratio {mw / rw:5.2f}   "
          f"cpu {mc * 1e3:7.1f} ms vs {rc * 1e3:7.1f} ms  ratio {mc / rc:5.2f}   (target <= {target:g})",
          flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    subprocess.run([py, "-m", "compileall", "-q", str(ROOT / "netdef")], check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=os.path.join(tmp, "cache"),
                   NETDEF_CACHE_DIR=os.path.join(tmp, "cache", "netdef"))
        text = RESNET152.read_text(encoding="utf-8")
        head, sep, rest = text.partition("layer {")
        big = os.path.join(tmp, "resnet152x10.prototxt")
        Path(big).write_text(head + (sep + rest) * 10, encoding="utf-8")
        onnx_out = os.path.join(tmp, "x.onnx")
        netdef = [py, "-m", "netdef"]
        print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}; medians of {args.rounds} alternating rounds")
        cold_env = dict(env, NETDEF_CACHE_DIR=os.path.join(tmp, "cold"))
        cold = timed(netdef + ["check", "lenet"], cold_env)
        warm = timed(netdef + ["check", "lenet"], cold_env)
        print(f"{'check lenet, cache cold then warm':<34} wall {cold[0] * 1e3:7.1f} ms then {warm[0] * 1e3:7.1f} ms")
        compare("check lenet / python -c pass", netdef + ["check", "lenet"], [py, "-c", "pass"], env, args.rounds, 3)
        compare("export lenet / python -c pass", netdef + ["export", "lenet", "-o", onnx_out], [py, "-c", "pass"],
                env, args.rounds, 8)
        compare("fmt resnet152 x10 / text_format", netdef + ["fmt", big, "-o", os.path.join(tmp, "out.prototxt")],
                [py, "-c", TEXT_FORMAT, big], env, max(5, args.rounds // 2), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
