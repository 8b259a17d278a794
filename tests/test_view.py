"""`netdef view`: the page's data, its escaping, and the command's behaviour on bad input.

What the page does in a browser is tested in tests/test_view_browser.py."""
from __future__ import annotations

import json
import re

import pytest

import netdef
from conftest import LIBRARY_NETS, ZOO
from netdef.cli import main
from netdef.view import embed_json

SCRIPT_DATA = re.compile(r'<script type="application/json" id="netdef-data">(.*?)</script>', re.S)


def page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = SCRIPT_DATA.search(text)
    assert m, "no data element"
    return json.loads(m.group(1))


def view(tmp_path, *args, name="net.html"):
    out = tmp_path / name
    code = main(["view", *map(str, args), "-o", str(out)])
    return code, out


@pytest.fixture(scope="module")
def googlenet_page(tmp_path_factory):
    """The googlenet page, written once for the tests that only read it."""
    code, out = view(tmp_path_factory.mktemp("googlenet"), "googlenet")
    assert code == 0
    return page_data(out)


def test_lenet_page_is_self_contained(tmp_path, capsys):
    code, out = view(tmp_path, "lenet")
    assert code == 0
    text = out.read_text(encoding="utf-8")
    # no external resource of any kind, and a policy that forbids loading one
    assert not re.search(r'\b(src|href)\s*=', text, re.I)
    assert "@import" not in text and "url(" not in text
    assert "default-src 'none'" in text
    assert text.count("<script") == 2 and text.count("</script>") == 2
    doc = page_data(out)
    graph = netdef.compile("lenet")
    [state] = [s for s in doc["states"] if s["label"].startswith("TEST")]
    assert [l["name"] for l in state["layers"]] == [n.name for n in graph.nodes]
    for layer, node in zip(state["layers"], graph.nodes):
        assert [state["blobs"][v]["shape"] for v in layer["outputs"]] == [list(v.meta["shape"]) for v in node.outputs]


def test_every_layer_is_in_the_layout(googlenet_page):
    """Every layer is drawn: in a box of the top level or inside exactly one folded block."""
    for state in googlenet_page["states"]:
        lay = state["layout"]
        drawn = [li for n in lay["top"]["nodes"] if n["kind"] == "box" for li in n["layers"]]
        for block in lay["blocks"].values():
            drawn += [li for n in block["nodes"] if n["kind"] == "box" for li in n["layers"]]
        assert sorted(drawn) == list(range(len(state["layers"])))
        # a folded block node lists exactly the layers its own layout holds
        for n in lay["top"]["nodes"]:
            if n["kind"] == "block":
                inner = [li for m in lay["blocks"][n["block"]]["nodes"] if m["kind"] == "box" for li in m["layers"]]
                assert sorted(inner) == sorted(n["layers"])


def test_blocks_are_the_repeated_modules(googlenet_page, tmp_path):
    blocks = {b["name"] for b in googlenet_page["states"][0]["layout"]["blocks"].values()}
    assert {"inception_3a", "inception_3b", "inception_4e", "inception_5b"} <= blocks
    code, out = view(tmp_path, "squeezenet1_0")
    blocks = {b["name"] for b in page_data(out)["states"][0]["layout"]["blocks"].values()}
    assert {f"fire{i}" for i in range(2, 10)} <= blocks


def test_edges_carry_blob_names_and_shapes(tmp_path):
    code, out = view(tmp_path, "lenet")
    state = page_data(out)["states"][0]
    labels = {tuple(e["lab"]) for e in state["layout"]["top"]["edges"] if e["lab"]}
    graph = netdef.compile("lenet")
    conv1 = graph.node("conv1").outputs[0]
    assert ("conv1", "×".join(map(str, conv1.meta["shape"]))) in labels


def test_states_and_differing_layers(googlenet_page, tmp_path):
    doc = googlenet_page
    labels = [s["label"] for s in doc["states"]]
    assert labels[0].startswith("TEST") and any(l.startswith("TRAIN") for l in labels)
    test, train = doc["states"][0], next(s for s in doc["states"] if s["label"].startswith("TRAIN"))
    # a layer is the definition (the `layer {` block): TRAIN's "data" is another block than TEST's
    train_defs = {tuple(l["lines"]) for l in train["layers"]}
    for l in test["layers"]:
        # marked as differing exactly when the other state lacks the layer
        assert (len(l["states"]) < len(doc["states"])) == (tuple(l["lines"]) not in train_defs), l["name"]
    differing = {l["name"] for l in test["layers"] if len(l["states"]) < len(doc["states"])}
    assert {"data", "loss3/top-1", "loss3/top-5"} <= differing
    # --phase TRAIN puts TRAIN first
    code, out = view(tmp_path, "googlenet", "--phase", "TRAIN", name="train.html")
    assert page_data(out)["states"][0]["label"].startswith("TRAIN")


def test_one_state_without_rules(tmp_path):
    code, out = view(tmp_path, ZOO / "resnet50" / "deploy.prototxt")
    assert code == 0
    assert [s["label"] for s in page_data(out)["states"]] == ["TEST"]


def test_layer_details(tmp_path):
    code, out = view(tmp_path, "lenet")
    state = page_data(out)["states"][0]
    conv1 = next(l for l in state["layers"] if l["name"] == "conv1")
    fields = {f["name"]: f for f in conv1["fields"] if f["group"] == "convolution_param"}
    assert fields["num_output"] == {"group": "convolution_param", "name": "num_output", "value": "20", "default": False}
    assert fields["kernel_size"]["value"] == "5" and not fields["kernel_size"]["default"]
    assert fields["bias_term"]["default"] and fields["bias_term"]["value"] == "true"
    assert fields["group"]["default"] and fields["group"]["value"] == "1"
    assert fields["pad"]["default"] and fields["pad"]["value"] == "0"  # BaseConvolutionLayer default
    assert fields["dilation"]["default"] and fields["dilation"]["value"] == "1"
    assert not fields["stride"]["default"] and fields["stride"]["value"] == "1"  # written
    assert fields["weight_filler"]["value"] == '{ type: "xavier" }' and not fields["weight_filler"]["default"]
    # the definition's lines: the block that defines conv1
    source = (LIBRARY_NETS / "lenet.prototxt").read_text().split("\n")
    first, last = conv1["lines"]
    assert source[first - 1].strip().startswith("layer") and 'name: "conv1"' in "\n".join(source[first - 1:last])
    assert source[last - 1].strip() == "}"
    # parameters and cost as the analysis has them
    node = netdef.compile("lenet").node("conv1")
    assert conv1["params"] == 20 * 1 * 5 * 5 + 20
    assert conv1["param_bytes"] == (20 * 25 + 20) * 4
    assert conv1["macs"] == node.meta["cost"]["macs"]
    assert conv1["rf"]["size"] == "5×5"


def _out_of(line: str) -> int:
    """The size a formula line ends in (after the padding clip, when there is one)."""
    return int(re.findall(r"\d+", line)[-1])


@pytest.mark.parametrize("net", ["googlenet", "alexnet", "resnet18", "fcn8s"])
def test_formulas_end_in_the_computed_sizes(net, tmp_path):
    graph = netdef.compile(net)
    from netdef.view.formula import formula
    checked = 0
    for node in graph.nodes:
        if node.type not in ("Convolution", "Deconvolution", "Pooling") or not node.outputs:
            continue
        shape = node.outputs[0].meta.get("shape")
        lines = formula(node)
        if shape is None:
            continue
        axes = [l for l in lines if l.startswith(("height", "width"))]
        if not axes:
            assert lines and lines[0].startswith("global pooling")
            continue
        assert [_out_of(l) for l in axes] == list(shape[-2:]), (node.name, lines)
        checked += 1
    assert checked >= 5


def test_formula_fills_in_the_numbers():
    from netdef.view.formula import formula
    graph = netdef.compile("alexnet")
    # conv1: 11x11 stride 4 on 227: (227 + 0 - 11) / 4 + 1 = 55
    conv1 = formula(graph.node("conv1"))
    assert "height: (227 + 2×0 − 11) / 4 + 1 = 55" in conv1
    assert "/ is integer division (truncates toward zero), as in Caffe's C++" in conv1
    # pool1: 3x3 stride 2 rounding up on 55: ceil(52 / 2) + 1 = 27
    assert "height: ⌈(55 + 2×0 − 3) / 2⌉ + 1 = 27" in formula(graph.node("pool1"))
    fc6 = formula(graph.node("fc6"))
    assert fc6[0] == "input flattened from axis 1: 256×6×6 = 9216 values"


ASYM = """name: "asym"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 7 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad_t: 1 pad_b: 2 pad_r: 1 } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
        pooling_param { pool: AVE kernel_size: 2 stride: 3 pad_l: 1 round_mode: FLOOR } }
layer { name: "dil" type: "Convolution" bottom: "data" top: "dil"
        convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 dilation: 2 } }
"""


def test_page_formula_with_asymmetric_pads(tmp_path):
    """The page's "Output size" lines (through `netdef view`) add each axis's two pads where
    Synopsys' pad_t/pad_l/pad_b/pad_r make them differ."""
    src = tmp_path / "asym.prototxt"
    src.write_text(ASYM)
    code, out = view(tmp_path, src)
    assert code == 0
    [state] = page_data(out)["states"]
    by_name = {l["name"]: l["formula"] for l in state["layers"]}
    # conv (top 1, bottom 2, left 0, right 1): rows (7 + 1 + 2 - 3) / 2 + 1 = 3 + 1 = 4 (7 / 2
    # truncated), columns (6 + 0 + 1 - 3) / 2 + 1 = 3.
    assert by_name["conv"] == ["out = (in + pad_begin + pad_end − kernel) / stride + 1",
                               "/ is integer division (truncates toward zero), as in Caffe's C++",
                               "channels: num_output = 2",
                               "height: (7 + 1 + 2 − 3) / 2 + 1 = 7 / 2 + 1 = 4",
                               "width: (6 + 0 + 1 − 3) / 2 + 1 = 3"]
    # pool (left 1 only), rounding down: rows floor((7 + 0 + 0 - 2) / 3) + 1 = 1 + 1 = 2, and
    # (2 - 1) * 3 = 3 < 7 + 0: kept; columns floor((6 + 1 + 0 - 2) / 3) + 1 = 2, (2 - 1) * 3 = 3
    # < 6 + 1: kept.
    assert by_name["pool"][1:] == [
        "if (out − 1)×stride ≥ in + pad_begin: out − 1 (with padding, a last window may not start in the padding)",
        "height: ⌊(7 + 0 + 0 − 2) / 3⌋ + 1 = ⌊5 / 3⌋ + 1 = 2; (2 − 1)×3 = 3 < 7 + 0 = 7 → 2",
        "width: ⌊(6 + 1 + 0 − 2) / 3⌋ + 1 = ⌊5 / 3⌋ + 1 = 2; (2 − 1)×3 = 3 < 6 + 1 = 7 → 2"]
    assert by_name["pool"][0].startswith("out = ⌊(in + pad_begin + pad_end − kernel) / stride⌋ + 1 (rounding down")
    # dilation 2 makes the kernel 2 x (3 - 1) + 1 = 5: rows (7 + 2 - 5) / 2 + 1 = 3, columns
    # (6 + 2 - 5) / 2 + 1 = 3 / 2 + 1 = 2.
    assert by_name["dil"][0] == "out = (in + 2×pad − (dilation×(kernel − 1) + 1)) / stride + 1"
    assert by_name["dil"][3:] == ["height: (7 + 2×1 − (2×(3 − 1) + 1)) / 2 + 1 = 3",
                                  "width: (6 + 2×1 − (2×(3 − 1) + 1)) / 2 + 1 = 3 / 2 + 1 = 2"]
    assert [state["blobs"][l["outputs"][0]]["shape"][2:] for l in state["layers"][1:]] == [[4, 3], [2, 2], [3, 2]]


def test_page_colours_come_from_draw(googlenet_page):
    """One table of family colours: draw's FILLS, embedded in the page's data; view.js has no copy."""
    from netdef.draw import FILLS, OTHER_FILL, UNKNOWN_FILL
    from netdef.view import asset
    assert googlenet_page["fills"] == {**FILLS, "other": OTHER_FILL, "unknown": UNKNOWN_FILL}
    script = asset("view.js").lower()
    assert not [c for c in googlenet_page["fills"].values() if c.lower() in script and c != "#ffffff"]
    families = {l["family"] for state in googlenet_page["states"] for l in state["layers"]}
    assert families <= set(googlenet_page["fills"]) and {"convolution", "pooling"} <= families


HOSTILE = '''name: "</script><script>window.pwned=1</script>"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "c\\"<img src=x onerror=window.pwned=2>'&amp;" type: "Convolution" bottom: "data"
        top: "</script><b>" convolution_param { num_output: 2 kernel_size: 3 } }
# a comment with </script> and <!-- and ]]> in it
'''


def test_definition_text_is_escaped(tmp_path):
    src = tmp_path / "hostile.prototxt"
    src.write_text(HOSTILE)
    code, out = view(tmp_path, src)
    assert code == 0
    text = out.read_text(encoding="utf-8")
    # nothing from the definition can close the data element or open markup
    assert text.count("</script") == 2 and text.count("<script") == 2
    assert "<img" not in text and "<b>" not in text and "<!--" not in text
    data = SCRIPT_DATA.search(text).group(1)
    assert "<" not in data and ">" not in data and "&" not in data
    doc = json.loads(data)
    names = [l["name"] for l in doc["states"][0]["layers"]]
    assert names[1] == "c\"<img src=x onerror=window.pwned=2>'&amp;"
    assert doc["name"] == "</script><script>window.pwned=1</script>"
    # the title is escaped HTML text
    assert "<title>&lt;/script&gt;&lt;script&gt;window.pwned=1&lt;/script&gt; · netdef view</title>" in text


def test_embed_json_escapes():
    assert embed_json({"a": "</script>&\u2028"}) == '{"a":"\\u003c/script\\u003e\\u0026\\u2028"}'
    assert json.loads(embed_json({"a": "</script>&"})) == {"a": "</script>&"}


def test_diagnostics_are_tied_to_layers(tmp_path, capsys):
    src = tmp_path / "bad.prototxt"
    src.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                   'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
                   '        convolution_param { num_output: 4 kernel_size: 11 } }\n'
                   'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n')
    code, out = view(tmp_path, src)
    assert code == 1  # the page is written, and the exit code says the net has errors
    captured = capsys.readouterr()
    assert "error[E" in captured.err and "the definition has errors" in captured.out
    state = page_data(out)["states"][0]
    errors = [d for d in state["diagnostics"] if d["severity"] == "error"]
    assert errors and errors[0]["line"] == 3  # kernel_size: 11
    assert state["layers"][errors[0]["layer"]]["name"] == "conv"
    assert state["layers"][1]["diags"]
    assert [l["name"] for l in state["layers"]] == ["data", "conv", "relu"]
    assert 1 in state["incomplete"]


def test_a_syntax_error_keeps_the_layers_before_it(tmp_path, capsys):
    src = tmp_path / "cut.prototxt"
    src.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                   'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n'
                   'layer { name: "broken" type: "ReLU" bottom: "r" top: "x" \n')
    code, out = view(tmp_path, src)
    assert code == 1
    state = page_data(out)["states"][0]
    assert [l["name"] for l in state["layers"]][:2] == ["data", "r"]
    assert any(d["severity"] == "error" and d["line"] == 4 for d in state["diagnostics"])


@pytest.mark.parametrize("text", ["layer { name: ", "\x00binary", "this is not a definition {"])
def test_nothing_to_show_writes_nothing(text, tmp_path, capsys):
    src = tmp_path / "bad.prototxt"
    src.write_text(text)
    out = tmp_path / "page.html"
    out.write_text("previous")
    code = main(["view", str(src), "-o", str(out)])
    assert code == 1
    assert out.read_text() == "previous"
    assert "error" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".netdef-")]


def test_bad_command_lines(tmp_path, capsys):
    assert main(["view", str(tmp_path / "missing.prototxt"), "-o", str(tmp_path / "x.html")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["view", "lenet", "-o", str(tmp_path / "x.svg")]) == 1
    assert "HTML" in capsys.readouterr().err
    assert main(["view", "lenet", "-o", str(tmp_path / "nodir" / "x.html")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["view", "lenet"]) == 2
    assert not list(tmp_path.iterdir())


def test_open_starts_a_browser(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    out = tmp_path / "lenet.html"
    assert main(["view", "lenet", "-o", str(out), "--open"]) == 0
    assert opened == [out.resolve().as_uri()]


def test_solver_page(tmp_path):
    code, out = view(tmp_path, "resnet50_solver")
    assert code == 0
    doc = page_data(out)
    assert doc["kind"] == "solver"
    sch = doc["schedule"]
    assert sch["stepped"] and sch["policy"] == "multistep"
    # every change point is in the plotted points, with the rate before it too
    its = {p[0]: p[1] for p in sch["points"]}
    rates = netdef.learning_rates("resnet50_solver", [t for t, _ in sch["changes"]])
    for (t, r), expect in zip(sch["changes"], rates):
        assert t in its and t - 1 in its and its[t] == pytest.approx(float(expect))
    assert "learning rate" in doc["text"]


def test_solver_with_errors_writes_nothing(tmp_path, capsys):
    src = tmp_path / "solver.prototxt"
    src.write_text('net: "x.prototxt"\nbase_lr: 0.1\nlr_policy: "step"\nmax_iter: 100\n')  # step needs gamma, stepsize
    code, out = view(tmp_path, src)
    assert code == 1
    assert not out.exists()
    assert "stepsize" in capsys.readouterr().err


def test_folded_graph_stays_acyclic(tmp_path):
    """DenseNet's concat_N_M layers share a prefix but interleave with the conv_N_M blocks:
    folding them would make the top-level graph cyclic, so they stay unfolded."""
    code, out = view(tmp_path, "densenet121")
    assert code == 0
    lay = page_data(out)["states"][0]["layout"]
    names = {b["name"] for b in lay["blocks"].values()}
    assert "conv2_1" in names and "conv4_24" in names
    assert not any(n.startswith("concat") for n in names)
    succ = {}
    for e in lay["top"]["edges"]:
        succ.setdefault(e["t"], set()).add(e["h"])
    seen, done = set(), set()

    def visit(u):  # depth-first search for a back edge
        seen.add(u)
        for w in succ.get(u, ()):
            assert w not in seen or w in done, f"cycle through {w}"
            if w not in seen:
                visit(w)
        done.add(u)

    for u in list(succ):
        if u not in seen:
            visit(u)


@pytest.mark.parametrize("net", [ZOO / "bvlc_v1_format" / "lenet.prototxt", ZOO / "ssd300_vgg16_voc" / "deploy.prototxt",
                                 "lstm", "siamese", ZOO / "squeezenet_v1.0" / "deploy.prototxt"],
                         ids=lambda p: str(p).split("/zoo/")[-1])
def test_assorted_nets(net, tmp_path, capsys):
    """V1 format, fork layers, recurrent layers, shared weights: a page with every layer."""
    code, out = view(tmp_path, net)
    doc = page_data(out)
    graph = netdef.compile(str(net))
    assert code == (1 if graph.diagnostics.has_errors else 0)
    assert [l["name"] for l in doc["states"][0]["layers"]] == [n.name for n in graph.nodes]


def test_report_as_json_and_warnings_as_errors(tmp_path, capsys):
    out = tmp_path / "g.html"
    assert main(["view", "googlenet", "-o", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "view" and doc["ok"] and doc["wrote"] == str(out)
    assert doc["bytes"] == out.stat().st_size
    # an input whose shape must be given is a warning that bears on the page (as for draw):
    # -W error makes it fatal before anything is written; --input supplies the shape
    src = tmp_path / "data.prototxt"
    src.write_text('layer { name: "d" type: "Data" top: "data" top: "label" data_param { source: "x" batch_size: 4 } }\n'
                   'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                   'convolution_param { num_output: 2 kernel_size: 3 } }\n')
    other = tmp_path / "w.html"
    assert main(["view", str(src), "-o", str(other)]) == 0
    assert "warning[W" in capsys.readouterr().err
    other.unlink()
    assert main(["view", str(src), "-o", str(other), "-W", "error"]) == 1
    assert not other.exists()
    assert main(["view", str(src), "-o", str(other), "--input", "data=4,3,8,8"]) == 0
    [conv] = [l for l in page_data(other)["states"][0]["layers"] if l["name"] == "c"]
    assert page_data(other)["states"][0]["blobs"][conv["outputs"][0]]["shape"] == [4, 2, 6, 6]
