"""The cost of building the command line's parser (part of every command's start-up).

`main()` builds the full parser only for `netdef --help`; for a command it declares the other
subcommands without their options (netdef.cli.build_parser(only=...)). This script times both,
alternating, in one process, and prints the ratio. Run from the repository root:

    python3 benchmarks/cli_parser.py [--runs 30]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netdef import cli  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="timed builds of each kind (default 30)")
    ns = ap.parse_args()
    cli.build_parser()  # warm: imports, gettext lookups
    full, one = [], []
    for _ in range(ns.runs):
        t = time.perf_counter()
        cli.build_parser()
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        cli.build_parser(cli._command_in(["check", "lenet"]))
        one.append(time.perf_counter() - t)
    f, o = statistics.median(full), statistics.median(one)
    print(f"full parser {f * 1e3:.1f} ms, 'check' only {o * 1e3:.1f} ms (median of {ns.runs}); ratio {o / f:.2f}")


if __name__ == "__main__":
    main()
