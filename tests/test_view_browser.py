"""`netdef view` pages in a real headless Chromium (Debian's `chromium`, driven by Playwright).

One browser for the module, one page per net. Skipped, with the reason, where Chromium or
Playwright is missing (an error instead under NETDEF_REQUIRE_BROWSER=1); `bash setup.sh --test` installs both.
"""
from __future__ import annotations

import os
import shutil

import pytest

import netdef
from netdef.cli import main

CHROMIUM = shutil.which(os.environ.get("NETDEF_CHROMIUM") or "chromium") or shutil.which("chromium-browser")

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

_MISSING = ("Playwright for Python is not installed (pip install playwright)" if sync_playwright is None else
            "no chromium executable (apt-get install chromium)" if CHROMIUM is None else None)
if _MISSING and os.environ.get("NETDEF_REQUIRE_BROWSER") == "1":  # a CI that installed them must not skip
    raise RuntimeError(f"NETDEF_REQUIRE_BROWSER=1 but {_MISSING}")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """name → path of the page written by the command line."""
    d = tmp_path_factory.mktemp("view")
    out = {}
    hostile = d / "hostile.prototxt"
    hostile.write_text('name: "</script><script>window.pwned=1</script>"\n'
                       'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                       'layer { name: "c\\"<img src=x onerror=window.pwned=2>\'" type: "ReLU" bottom: "data" top: "r" }\n')
    for name, src in (("googlenet", "googlenet"), ("resnet50_solver", "resnet50_solver"), ("hostile", str(hostile))):
        path = d / f"{name}.html"
        code = main(["view", src, "-o", str(path)])
        assert code == 0
        out[name] = path
    return out


class Opened:
    def __init__(self, page, requests, errors):
        self.page, self.requests, self.errors = page, requests, errors


def open_page(browser, path) -> Opened:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    requests, errors = [], []
    url = path.as_uri()

    def route(r):
        requests.append(r.request.url)
        if r.request.url == url:
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=20000)
    return Opened(page, requests, errors)


@pytest.fixture(scope="module")
def googlenet(browser, pages):
    opened = open_page(browser, pages["googlenet"])
    yield opened
    opened.page.close()


def test_no_errors_and_no_network(googlenet, pages):
    assert googlenet.errors == []
    assert googlenet.requests == [pages["googlenet"].as_uri()]


def test_every_layer_appears(googlenet):
    page = googlenet.page
    graph = netdef.compile("googlenet")
    names = [n.name for n in graph.nodes]
    assert page.get_attribute("#tablebar [data-rows]", "data-rows") == str(len(names))
    page.click("#expand-all")
    drawn = page.eval_on_selector_all("#viewport text[data-layer]", "els => els.map(e => e.textContent)")
    for name in names:
        assert any(t == name or t.endswith("  " + name) or ("  " + name + "  (") in t for t in drawn), name
    page.click("#fold-all")
    assert page.locator("#viewport [data-frame]").count() == 0


def test_clicking_a_layer_shows_its_shapes(googlenet):
    page = googlenet.page
    page.click("#fold-all")
    node = netdef.compile("googlenet").node("conv2/3x3")
    # conv2/3x3 is inside the folded block "conv2": open it, then click the layer's box
    page.locator('#viewport [data-block]').filter(has_text="conv2").first.dispatch_event("click")
    page.locator('#viewport g.node[data-layer]').filter(has_text="conv2/3x3").filter(has_text="Convolution 192").first \
        .dispatch_event("click")
    assert page.inner_text("#panel-title") == "conv2/3x3"
    dims = lambda s: "×".join(map(str, s))  # noqa: E731
    assert dims(node.inputs[0].meta["shape"]) in page.inner_text("#panel-inputs")
    assert dims(node.outputs[0].meta["shape"]) in page.inner_text("#panel-outputs")
    assert "(56 + 2×1 − 3) / 1 + 1 = 56" in page.inner_text("#panel")
    # the box has draw's colour for its family, which the page reads from its data
    from netdef.draw import FILLS
    box = page.locator('#viewport g.node[data-layer]').filter(has_text="conv2/3x3").filter(has_text="Convolution 192")
    assert box.first.locator("rect").first.get_attribute("fill") == FILLS["convolution"]
    assert netdef.compile("googlenet").nodes[0].impl.family == "data"
    assert page.locator('#viewport g.node[data-layer="0"] rect').first.get_attribute("fill") == FILLS["data"]
    assert "conv2/3x3" in page.locator("#layer-table tbody tr.sel").inner_text()


def test_table_row_selects_the_layer(googlenet):
    page = googlenet.page
    page.click("#fold-all")
    page.fill("#table-filter", "4c/5x5")
    assert page.locator("#layer-table tbody tr[data-layer]").count() == 2  # 5x5_reduce and 5x5
    page.locator("#layer-table tbody tr", has_text="inception_4c/5x5_reduce").first.click()
    page.fill("#table-filter", "")
    assert page.inner_text("#panel-title") == "inception_4c/5x5_reduce"
    # its block was unfolded and the box is marked selected
    assert page.locator("#viewport [data-frame]").count() == 1
    assert page.locator("#viewport g.node.sel").filter(has_text="inception_4c/5x5_reduce").count() == 1


def test_search_finds_a_layer(googlenet):
    page = googlenet.page
    page.click("#fold-all")
    page.fill("#search", "inception_4d/pool_proj")
    page.press("#search", "Enter")
    assert page.inner_text("#panel-title") == "inception_4d/pool_proj"
    assert page.locator("#layer-table tbody tr.match").all_text_contents()[0].find("inception_4d/pool_proj") >= 0
    assert page.locator("#viewport g.node.match").count() >= 1
    page.fill("#search", "")
    page.press("#search", "Enter")
    assert page.locator("#viewport .match").count() == 0


def test_folding_and_unfolding_a_block(googlenet):
    page = googlenet.page
    page.click("#fold-all")
    before = page.locator("#viewport g.node.box").count()
    block = page.locator("#viewport g.node.block").filter(has_text="inception_3a").first
    block.dispatch_event("click")
    assert page.locator("#viewport [data-frame]").count() == 1
    inside = page.locator("#viewport g.node.box").count() - before
    state = netdef.compile("googlenet")
    members = [n for n in state.nodes if n.name.startswith("inception_3a/")]
    assert 0 < inside < len(members)  # one box per layer, ReLUs folded into their convolution
    page.locator("#viewport [data-fold]").first.dispatch_event("click")
    assert page.locator("#viewport [data-frame]").count() == 0
    assert page.locator("#viewport g.node.box").count() == before


def test_table_sorts(googlenet):
    page = googlenet.page
    graph = netdef.compile("googlenet")
    page.click('#layer-table th[data-col="MACs"]')
    first = page.locator("#layer-table tbody tr[data-layer]").first.locator("td").nth(1).inner_text()
    top = max(graph.nodes, key=lambda n: (n.meta.get("cost") or {}).get("macs") or 0)
    assert (graph.node(first).meta["cost"]["macs"]) == top.meta["cost"]["macs"]
    page.click('#layer-table th[data-col="MACs"]')  # ascending: zeros first
    first = page.locator("#layer-table tbody tr[data-layer]").first.locator("td").nth(1).inner_text()
    assert (graph.node(first).meta.get("cost") or {}).get("macs") == 0
    page.click('#layer-table th[data-col="#"]')
    assert page.locator("#layer-table tbody tr[data-layer]").first.locator("td").nth(1).inner_text() == graph.nodes[0].name


def test_states_switch(googlenet):
    page = googlenet.page
    page.click('[data-state="1"]')
    train = netdef.compile("googlenet", phase="TRAIN")
    assert page.get_attribute("#tablebar [data-rows]", "data-rows") == str(len(train.nodes))
    page.click('[data-state="0"]')
    assert page.get_attribute("#tablebar [data-rows]", "data-rows") == str(len(netdef.compile("googlenet").nodes))


def test_escaped_text_stays_text(browser, pages):
    opened = open_page(browser, pages["hostile"])
    page = opened.page
    try:
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert opened.errors == []
        assert page.title().startswith("</script><script>window.pwned=1</script>")
        names = page.locator("#layer-table tbody tr[data-layer] td:nth-child(2)").all_text_contents()
        assert names == ["data", "c\"<img src=x onerror=window.pwned=2>'"]
        assert page.locator("img").count() == 0
        assert opened.requests == [pages["hostile"].as_uri()]
    finally:
        page.close()


def test_solver_plot_hover(browser, pages):
    opened = open_page(browser, pages["resnet50_solver"])
    page = opened.page
    try:
        assert opened.errors == []
        box = page.locator("#lr-hit").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
        tip = page.inner_text("#tip")
        it = int(tip.split("iteration ")[1].split(" ")[0].replace(",", ""))
        rate = float(tip.split("rate ")[1])
        expect = float(netdef.learning_rates("resnet50_solver", [it])[0])
        assert rate == pytest.approx(expect, rel=1e-5)
        assert abs(it - 0.6 * 599_999) < 600_000 / 200
    finally:
        page.close()


def test_blob_and_diagnostics(googlenet):
    page = googlenet.page
    page.click("#fold-all")
    # an edge: its blob's producer and consumers
    page.locator("#viewport g.edge").filter(has_text="pool1/norm1").first.dispatch_event("click")
    assert page.inner_text("#panel-title") == "pool1/norm1"
    text = page.inner_text("#panel")
    assert "producer\tpool1/norm1" in text and "consumers\tconv2/3x3_reduce" in text
    # the W411 warnings (pooling windows clipped at the edge) mark their layers and link to them
    warned = [d.span.line for d in netdef.compile("googlenet").diagnostics if d.code == "W411"]
    assert warned
    assert page.locator("#viewport g.node.warn").filter(has_text="pool1/3x3_s2").count() == 1
    page.click("#overview")
    assert page.locator("#diagnostics li").count() == len(list(netdef.compile("googlenet").diagnostics))
    page.locator("#diagnostics li").first.click()
    assert page.inner_text("#panel-title") == "pool1/3x3_s2"
