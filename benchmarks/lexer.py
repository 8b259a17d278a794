"""Parse time of the text that is hardest for the lexer, against plain layers of the same size.

    python3 benchmarks/lexer.py [--repeat N] [--max-mb M]

Issue 11: a quoted value followed by a banner of '#' (or by trailing spaces) took time
exponential in the run's length. This measures, first, every run of one character class (and
the runs of pieces: comment lines, escapes, CRLF line ends) after each kind of token at one
size, as a ratio to a definition of the same size made of plain layers; then the worst runs
and the plain layers at doubling sizes, to show that time grows in proportion to the size.

Times are CPU time of the parsing thread (`time.thread_time`: the time the process waits for a
busy CPU is not counted), best of N runs, the cases of one size run in turn. What is timed is
what `netdef check` does with the text before analysis: sniffing net or solver, lexing, parsing
into messages, and rendering the diagnostics (a syntax error stops the parse, as in use).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

from netdef.parse import parse_text
from netdef.source import Source

TOKENS = {
    "start": "", "string_field": 'name: "x"', "int_field": "dim: 1", "enum_field": "pool: MAX",
    "open": "layer {", "list_open": "dim: [", "comment": "# c", "open_string": 'name: "',
}
RUNS = {
    "hash": "#", "space": " ", "tab": "\t", "double_quote": '"', "single_quote": "'", "backslash": "\\",
    "digit": "7", "sign": "-", "letter": "a", "newline": "\n", "cr": "\r", "dot": ".",
    "comment_lines": "\n#", "crlf": "\r\n", "escaped_quote": '\\"',
}
SUFFIX = '\nlayer { name: "d" type: "Input" top: "data" }\n'
LAYER = 'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n'


def case(token: str, run: str, size: int) -> str:
    unit = RUNS[run]
    return TOKENS[token] + unit * (size // len(unit)) + SUFFIX


def reference(size: int) -> str:
    return LAYER * max(1, size // len(LAYER))


def work(text: str) -> None:
    parsed = parse_text(Source(text, "bench.prototxt"))
    for d in parsed.diagnostics:
        d.render()


def best_times(texts: list[str], repeat: int) -> list[float]:
    best = [float("inf")] * len(texts)
    for _ in range(repeat):
        for i, text in enumerate(texts):
            t0 = time.thread_time()
            work(text)
            best[i] = min(best[i], time.thread_time() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size-kb", type=int, default=256, help="size of the survey's texts")
    ap.add_argument("--max-mb", type=float, default=2.0, help="largest size of the doubling series")
    ap.add_argument("--worst", type=int, default=3, help="how many of the worst cases to follow")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}; CPU time, best of {args.repeat}")
    size = args.size_kb * 1024
    ref, = best_times([reference(size)], args.repeat)
    print(f"\nsurvey at {args.size_kb} KB: plain layers {ref * 1e3:.1f} ms")
    rows = []
    for run in RUNS:
        names = list(TOKENS)
        times = best_times([case(token, run, size) for token in names], args.repeat)
        t, token = max(zip(times, names))
        rows.append((t, token, run))
        print(f"  {run:<14} worst after {token:<13} {t * 1e3:8.1f} ms  {t / ref:6.2f}x plain layers", flush=True)
    rows.sort(reverse=True)
    worst = rows[:args.worst]
    print("\ndoubling sizes (ms; x = time / plain layers of the same size; growth = time / time at half the size)")
    sizes = []
    s = 128 * 1024
    while s <= args.max_mb * 2**20:
        sizes.append(s)
        s *= 2
    header = "  " + f"{'case':<34}" + "".join(f"{n // 1024:>9} KB" for n in sizes)
    print(header)
    series = {"plain layers": [reference(n) for n in sizes]}
    for _, token, run in worst:
        series[f"{run} after {token}"] = [case(token, run, n) for n in sizes]
    results = {name: [] for name in series}
    for k in range(len(sizes)):
        names = list(series)
        for name, t in zip(names, best_times([series[name][k] for name in names], args.repeat)):
            results[name].append(t)
    for name, times in results.items():
        print("  " + f"{name:<34}" + "".join(f"{t * 1e3:>12.1f}" for t in times))
        if name != "plain layers":
            print("  " + f"{'  x plain layers':<34}" + "".join(f"{t / r:>12.2f}" for t, r in
                                                             zip(times, results["plain layers"])))
        print("  " + f"{'  growth per doubling':<34}" + f"{'':>12}" +
              "".join(f"{b / a:>12.2f}" for a, b in zip(times, times[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
