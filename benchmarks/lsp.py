"""`netdef lsp` latency over a real client connection (the server as a subprocess, JSON-RPC on
its stdio, as an editor runs it).

    python3 benchmarks/lsp.py [--edits 15] [--requests 40]

For ResNet-152's deploy file (tests/data/zoo/resnet152) and Inception-ResNet-v2's
(tests/data/zoo/inception_resnet_v2):

  diagnostics  time from sending a didChange that edits one layer (a num_output in the middle
               of the file, as a one-range incremental change) to receiving the diagnostics
               published for that version
  hover        round trip of a hover on a layer's type (the layer table and formula)
  completion   round trip of a completion of field names inside a convolution_param, and of
               blob names after `bottom: `

Each figure is the median (and 90th percentile) of its runs. The reference, measured in the
same run and alternating with the edits, is the in-process work `netdef check` does on the same
text (parse, upgrade, build, passes) in this process, the work a server without incremental
re-analysis would do for every edit: the ratio shows what re-analysing only the edit saves.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from lsp_client import Client  # noqa: E402

ZOO = ROOT / "tests" / "data" / "zoo"
FILES = {"resnet152": ZOO / "resnet152" / "deploy.prototxt",
         "inception_resnet_v2": ZOO / "inception_resnet_v2" / "deploy.prototxt"}


def _pos(text: str, at: int) -> dict:
    line = text.count("\n", 0, at)
    return {"line": line, "character": at - (text.rfind("\n", 0, at) + 1)}


def _stats(xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return f"median {statistics.median(xs) * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms  (n={len(xs)})"


def _reference(text: str, path: str) -> float:
    from netdef.pipeline import compile as compile_net
    from netdef.parse import parse_text
    from netdef.source import Source
    from netdef.upgrade import upgrade_parsed

    t0 = time.perf_counter()
    compile_net(upgrade_parsed(parse_text(Source(text, path))))
    return time.perf_counter() - t0


def bench_file(name: str, path: Path, edits: int, requests: int, reference: bool = True) -> dict:
    text = path.read_text()
    client = Client()
    uri = path.resolve().as_uri()
    client.open(uri, text)
    client.diagnostics(uri, 1, timeout=120)
    # The layer in the middle of the file with a num_output: its value is the edit.
    spots = [m for m in re.finditer(r"num_output:\s*(\d+)", text)]
    spot = spots[len(spots) // 2]
    start, end = spot.span(1)
    original = spot.group(1)
    diag_times, ref_times = [], []
    version = 1
    for i in range(edits):
        new = str(int(original) + 1) if i % 2 == 0 else original
        old_len = len(original) if i % 2 == 0 else len(str(int(original) + 1))
        edit = {"range": {"start": _pos(text, start), "end": _pos(text, start + old_len)}, "text": new}
        text = text[:start] + new + text[start + old_len:]
        version += 1
        t0 = time.perf_counter()
        client.change(uri, version, edits=[edit])
        client.diagnostics(uri, version, timeout=120)
        diag_times.append(time.perf_counter() - t0)
        if reference:
            ref_times.append(_reference(text, str(path)))  # alternating with the edits
            # A pause, as between keystrokes: measured back to back with a second of CPU work in
            # this process, the server's next answer pays for the scheduler's catching up.
            time.sleep(0.25)
    # Hover on layer types spread over the file; completion in a convolution_param and after bottom:.
    types = [m.start() + 7 for m in re.finditer(r'type: "', text)]
    conv = [m.end() for m in re.finditer(r"convolution_param\s*\{", text)]
    bottoms = [m.start() + len("bottom: ") for m in re.finditer(r'bottom: "', text)]
    hover_times, comp_times, blob_times = [], [], []
    for i in range(requests):
        at = types[(i * 7919) % len(types)]
        t0 = time.perf_counter()
        r = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": _pos(text, at)})
        hover_times.append(time.perf_counter() - t0)
        assert r is not None
        at = conv[(i * 104729) % len(conv)]
        t0 = time.perf_counter()
        r = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": _pos(text, at)})
        comp_times.append(time.perf_counter() - t0)
        assert "kernel_size" in [x["label"] for x in r["items"]]
        at = bottoms[(i * 31) % len(bottoms)]
        t0 = time.perf_counter()
        r = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": _pos(text, at)})
        blob_times.append(time.perf_counter() - t0)
    client.close()
    return {"diagnostics": diag_times, "reference": ref_times, "hover": hover_times,
            "completion (fields)": comp_times, "completion (bottom)": blob_times, "lines": text.count("\n")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edits", type=int, default=15)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--no-reference", action="store_true", help="leave out the in-process reference analysis")
    args = ap.parse_args()
    for name, path in FILES.items():
        r = bench_file(name, path, args.edits, args.requests, not args.no_reference)
        print(f"{name} ({r['lines']} lines)")
        for key in ("diagnostics", "reference", "hover", "completion (fields)", "completion (bottom)"):
            if not r[key]:
                continue
            label = "full analysis in-process (reference)" if key == "reference" else key
            print(f"  {label:36s} {_stats(r[key])}")
        if r["reference"]:
            ratio = statistics.median(r["diagnostics"]) / statistics.median(r["reference"])
            print(f"  diagnostics after an edit / full analysis: {ratio:.2f}x")


if __name__ == "__main__":
    main()
