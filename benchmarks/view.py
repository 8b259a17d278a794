"""`netdef view`: how long the page takes to write, and to become interactive in a browser.

    python3 benchmarks/view.py [--repeat N] [--net PATH]

For Inception-ResNet-v2 (about 1,000 layers, tests/data/zoo/inception_resnet_v2) by default:

  write:        `netdef view NET -o page.html`, the whole command in a fresh process, against
                `netdef draw NET --collapse auto -o net.svg` (the same analysis and a Graphviz
                layout of the whole net) as the reference, runs alternated;
  interactive:  in headless Chromium (Debian's `chromium`, driven by Playwright), from the start
                of navigation to the moment view.js has built the graph, the table and the panel
                (window.netdefReadyMs), against loading the drawn SVG in the same browser (its
                load event), alternated; then the time to unfold every block (`Expand all`).

Prints the median of N runs and the ratio to the reference; for the commands also their CPU
time (the process and its children, Graphviz included), which a busy machine disturbs less.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NET = REPO / "tests" / "data" / "zoo" / "inception_resnet_v2" / "deploy.prototxt"


def run_cli(*args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children, Graphviz included)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "netdef", *args], check=True, env=env, cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--net", default=str(NET))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="netdef-view-bench-"))
    page, svg = tmp / "page.html", tmp / "net.svg"
    try:
        views, draws = [], []
        for _ in range(args.repeat):
            views.append(run_cli("view", args.net, "-o", str(page)))
            draws.append(run_cli("draw", args.net, "--collapse", "auto", "-o", str(svg)))
        layers = len(__import__("json").loads(
            page.read_text().split('id="netdef-data">', 1)[1].split("</script>", 1)[0])["states"][0]["layers"])
        v, d = statistics.median(w for w, _ in views), statistics.median(w for w, _ in draws)
        vc, dc = statistics.median(c for _, c in views), statistics.median(c for _, c in draws)
        print(f"net: {args.net} ({layers} layers); page {page.stat().st_size / 1e6:.2f} MB, svg {svg.stat().st_size / 1e6:.2f} MB")
        print(f"write    netdef view  {v:6.2f} s wall, {vc:5.2f} s CPU   (medians of {args.repeat}; wall "
              f"{', '.join(f'{w:.2f}' for w, _ in views)})")
        print(f"         netdef draw  {d:6.2f} s wall, {dc:5.2f} s CPU   reference (--collapse auto, SVG)")
        print(f"         ratio view/draw {v / d:.2f} wall, {vc / dc:.2f} CPU")

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            sync_playwright = None
        if chromium is None or sync_playwright is None:
            print("interactive: skipped (needs chromium and Playwright)")
            return
        ready, loads, expand = [], [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            for _ in range(args.repeat):
                pg = browser.new_page(viewport={"width": 1280, "height": 800})
                pg.goto(page.as_uri())
                pg.wait_for_selector("body[data-ready]", timeout=60000)
                ready.append(pg.evaluate("window.netdefReadyMs") / 1000)
                t = pg.evaluate("() => { const t = performance.now(); document.getElementById('expand-all').click();"
                                " return performance.now() - t; }")
                expand.append(t / 1000)
                pg.close()
                pg = browser.new_page(viewport={"width": 1280, "height": 800})
                pg.goto(svg.as_uri(), wait_until="load")
                loads.append(pg.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000)
                pg.close()
            browser.close()
        r, s, e = statistics.median(ready), statistics.median(loads), statistics.median(expand)
        print(f"interactive  page ready    {r:6.2f} s   (median; runs {', '.join(f'{x:.2f}' for x in ready)})")
        print(f"             drawn SVG     {s:6.2f} s   reference (load event of the static picture)")
        print(f"             ratio page/svg {r / s:.2f}")
        print(f"expand all   {e:6.2f} s   (every block unfolded and redrawn)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
