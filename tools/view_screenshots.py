"""Screenshots of `netdef view` pages for docs/view/ (headless Chromium through Playwright).

    python3 tools/view_screenshots.py [OUTDIR]

Writes googlenet.png (an Inception module unfolded, a layer selected), resnet50.png (a search,
a layer of a folded stage selected from the table), squeezenet1_1.png (the whole net fitted,
fire modules folded, a fire module's details) and resnet50_solver.png (the learning-rate plot
with the pointer on it), each 1280x800.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from netdef.cli import main

REPO = Path(__file__).resolve().parent.parent


def shoot(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp())
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        for name in ("googlenet", "resnet50", "squeezenet1_1", "resnet50_solver"):
            assert main(["view", name, "-o", str(tmp / f"{name}.html")]) == 0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 800})

            page.goto((tmp / "googlenet.html").as_uri())
            page.wait_for_selector("body[data-ready]")
            page.fill("#table-filter", "inception_3a/5x5")
            page.locator("#layer-table tbody tr[data-layer]").first.click()
            page.fill("#table-filter", "")
            page.screenshot(path=str(out / "googlenet.png"))

            page.goto((tmp / "resnet50.html").as_uri())
            page.wait_for_selector("body[data-ready]")
            page.fill("#search", "res3")
            page.press("#search", "Enter")
            page.screenshot(path=str(out / "resnet50.png"))

            page.goto((tmp / "squeezenet1_1.html").as_uri())
            page.wait_for_selector("body[data-ready]")
            page.fill("#table-filter", "fire5/expand3x3")
            page.locator("#layer-table tbody tr[data-layer]").first.click()
            page.fill("#table-filter", "")
            page.screenshot(path=str(out / "squeezenet1_1.png"))

            page.goto((tmp / "resnet50_solver.html").as_uri())
            page.wait_for_selector("body[data-ready]")
            box = page.locator("#lr-hit").bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.62, box["y"] + box["height"] / 2)
            page.screenshot(path=str(out / "resnet50_solver.png"))
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "view"
    target.mkdir(parents=True, exist_ok=True)
    shoot(target)
