"""`netdef lsp` end to end: a real client (tests/lsp_client.py) talks to `python -m netdef lsp`
over stdio, as an editor does. One server process serves the whole module."""
import re
import shutil

import pytest

from conftest import LIBRARY_NETS, LIBRARY_SOLVERS
from lsp_client import Client, position_of
from netdef.fmt import format_parsed, scan_comments
from netdef.parse import parse_text
from netdef.source import Source


@pytest.fixture(scope="module")
def client():
    c = Client()
    yield c
    assert c.close() == 0, c.stderr_text()[-3000:]
    assert "Traceback" not in c.stderr_text()
    assert not [m for m in c.log if m["type"] == 1], c.log  # no internal error was logged


_n = [0]


def open_doc(client, text, name="net.prototxt", directory=None):
    """Open a document under a fresh URI; returns (uri, its first diagnostics)."""
    _n[0] += 1
    if directory is not None:
        path = directory / name
        path.write_text(text)
        uri = path.as_uri()
    else:
        uri = f"file:///tmp/netdef-lsp-test-{_n[0]}/{name}"
    client.open(uri, text)
    return uri, client.diagnostics(uri, 1)


def apply_edits(text: str, edits) -> str:
    """Apply LSP TextEdits (ASCII text) to a string."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def off(p):
        return starts[p["line"]] + p["character"] if p["line"] < len(starts) else len(text)

    for e in sorted(edits, key=lambda e: off(e["range"]["start"]), reverse=True):
        text = text[:off(e["range"]["start"])] + e["newText"] + text[off(e["range"]["end"]):]
    return text


NET = """name: "t"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param { shape { dim: 1 dim: 1 dim: 5 dim: 5 } }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param { num_output: 4 kernel_size: 1 }
}
layer {
  name: "relu1"
  type: "ReLU"
  bottom: "conv1"
  top: "conv1"
}
layer {
  name: "scale1"
  type: "Scale"
  bottom: "conv1"
  top: "conv1"
  scale_param { bias_term: true }
}
layer {
  name: "pool1"
  type: "Pooling"
  bottom: "conv1"
  top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 }
}
"""


def test_diagnostics_at_their_ranges_then_none_once_fixed(client):
    broken = NET.replace("kernel_size: 1", "kernal_size: 1").replace('bottom: "conv1"\n  top: "pool1"',
                                                                      'bottom: "conv2"\n  top: "pool1"')
    uri, diags = open_doc(client, broken)
    by_code = {d["code"]: d for d in diags}
    assert set(by_code) == {"E201", "E301", "E403"}, diags  # E403: the kernel size is now missing
    unknown = by_code["E201"]
    line, col = position_of(broken, "kernal_size")
    assert unknown["range"] == {"start": {"line": line, "character": col},
                                "end": {"line": line, "character": col + len("kernal_size")}}
    assert unknown["severity"] == 1 and unknown["source"] == "netdef"
    assert unknown["message"] == "unknown field 'kernal_size' in ConvolutionParameter"
    assert "note: did you mean 'kernel_size'?" in [r["message"] for r in unknown["relatedInformation"]]
    missing = by_code["E301"]
    line, col = position_of(broken, '"conv2"')
    assert missing["range"]["start"] == {"line": line, "character": col}
    assert missing["range"]["end"] == {"line": line, "character": col + len('"conv2"')}
    assert "'conv2'" in missing["message"]
    # The same codes, places and messages as `netdef check`.
    from netdef.pipeline import compile as compile_net
    from netdef.upgrade import upgrade_parsed
    check = compile_net(upgrade_parsed(parse_text(Source(broken, "x.prototxt"))))
    assert sorted((d.code, d.span.line - 1, d.span.col - 1, d.message) for d in check.diagnostics) == \
        sorted((d["code"], d["range"]["start"]["line"], d["range"]["start"]["character"], d["message"]) for d in diags)

    client.change(uri, 2, NET)
    assert client.diagnostics(uri, 2) == []


def test_warnings_carry_their_codes_and_related_places(client):
    text = NET.replace('  name: "relu1"\n', '  name: "conv1"\n')  # a layer name used twice
    uri, diags = open_doc(client, text)
    assert diags and all(d["severity"] == 2 and re.fullmatch(r"W\d+", d["code"]) for d in diags), diags
    related = [r for d in diags for r in d.get("relatedInformation") or [] if not r["message"].startswith("note:")]
    assert related and all(r["location"]["uri"] == uri for r in related)


def test_a_solver_gets_its_diagnostics(client, tmp_path):
    uri, diags = open_doc(client, 'net: "missing.prototxt"\nbase_lr: 0.01\nlr_policy: "stpe"\nmax_iter: 10\n',
                          "solver.prototxt", tmp_path)
    codes = {d["code"] for d in diags}
    assert "E601" in codes or any("missing.prototxt" in d["message"] for d in diags), diags
    assert any("stpe" in d["message"] for d in diags), diags


def test_hover_on_a_pooling_layer_shows_shape_and_formula(client):
    uri, _ = open_doc(client, NET)
    line, col = position_of(NET, '"Pooling"', delta=2)
    hover = client.at("textDocument/hover", uri, line, col)
    text = hover["contents"]["value"]
    # By hand: 5x5 input, kernel 2, stride 2, pad 1: ceil((5 + 2 - 2) / 2) + 1 = 4, and with
    # padding Caffe drops the last window, which would start in the padding: (4-1)*2 = 6 >= 5+1.
    assert "out `pool1` | 1x4x3x3" in text
    assert "`height: ⌈(5 + 2×1 − 2) / 2⌉ + 1 = ⌈5 / 2⌉ + 1 = 4; (4 − 1)×2 = 6 ≥ 5 + 1 = 6 → 3`" \
        in text
    assert "rounding up" in text and "a last window may not start in the padding" in text
    # The layer's head shows the same.
    line, col = position_of(NET, "layer {", nth=4, delta=1)
    assert "1x4x3x3" in client.at("textDocument/hover", uri, line, col)["contents"]["value"]


def test_hover_on_a_convolution_a_field_and_a_blob(client):
    uri, _ = open_doc(client, NET)
    line, col = position_of(NET, '"Convolution"', delta=2)
    text = client.at("textDocument/hover", uri, line, col)["contents"]["value"]
    assert "1x4x5x5" in text and "parameters: 8 (4x1x1x1, 4)" in text
    assert "`height: (5 + 2×0 − 1) / 1 + 1 = 5`" in text
    assert "integer division (truncates toward zero)" in text
    line, col = position_of(NET, "stride: 2", delta=1)
    text = client.at("textDocument/hover", uri, line, col)["contents"]["value"]
    assert "uint32 stride = 3 [default = 1]" in text and "PoolingParameter" in text and "BVLC" in text
    line, col = position_of(NET, '"conv1"', nth=6, delta=1)  # pool1's bottom
    text = client.at("textDocument/hover", uri, line, col)["contents"]["value"]
    assert "1x4x5x5" in text and "`scale1`" in text and "`pool1`" in text


ASYM = """name: "asym"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 7 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad_t: 1 pad_b: 2 pad_r: 1 } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad_t: 1 pad_b: 2 pad_r: 1 } }
layer { name: "big" type: "Convolution" bottom: "data" top: "big"
        convolution_param { num_output: 2 kernel_h: 10 kernel_w: 3 stride: 4 } }
"""


def test_hover_formula_with_asymmetric_pads(client):
    """Synopsys' pad_t/pad_l/pad_b/pad_r: the hover adds the two pads of each axis, not 2×pad."""
    uri, _ = open_doc(client, ASYM)
    line, col = position_of(ASYM, '"Convolution"', delta=2)
    text = client.at("textDocument/hover", uri, line, col)["contents"]["value"]
    # By hand (7x6 input, kernel 3, stride 2; top 1, bottom 2, left 0, right 1):
    # rows (7 + 1 + 2 - 3) / 2 + 1 = 7 / 2 + 1 = 3 + 1 = 4; columns (6 + 0 + 1 - 3) / 2 + 1 = 3.
    assert "`out = (in + pad_begin + pad_end − kernel) / stride + 1`" in text
    assert "`height: (7 + 1 + 2 − 3) / 2 + 1 = 7 / 2 + 1 = 4`" in text
    assert "`width: (6 + 0 + 1 − 3) / 2 + 1 = 3`" in text
    assert "2×" not in text.split("Output size")[1]
    line, col = position_of(ASYM, '"Pooling"', delta=2)
    text = client.at("textDocument/hover", uri, line, col)["contents"]["value"]
    # rows ceil((7 + 1 + 2 - 3) / 2) + 1 = 5, the 5th window would start at 4 * 2 = 8 >= 7 + 1: 4;
    # columns ceil((6 + 0 + 1 - 3) / 2) + 1 = 3, (3 - 1) * 2 = 4 < 6 + 0: kept.
    assert "out `pool` | 1x1x4x3" in text
    assert "`if (out − 1)×stride ≥ in + pad_begin: out − 1`" in text
    assert "`height: ⌈(7 + 1 + 2 − 3) / 2⌉ + 1 = ⌈7 / 2⌉ + 1 = 5; (5 − 1)×2 = 8 ≥ 7 + 1 = 8 → 4`" in text
    assert "`width: ⌈(6 + 0 + 1 − 3) / 2⌉ + 1 = 3; (3 − 1)×2 = 4 < 6 + 0 = 6 → 3`" in text


def test_hover_formula_truncates_toward_zero(client):
    """A kernel taller than the input: Caffe's int division truncates (7 - 10) / 4 to 0, not -1."""
    uri, _ = open_doc(client, ASYM)
    line, col = position_of(ASYM, '"big"', delta=2)
    text = client.at("textDocument/hover", uri, line, col)["contents"]["value"]
    # rows (7 + 0 - 10) / 4 + 1: -3 / 4 truncates to 0, so 1 (floor would give -1 + 1 = 0);
    # columns (6 + 0 - 3) / 4 + 1 = 3 / 4 + 1 = 1.
    assert "`height: (7 + 2×0 − 10) / 4 + 1 = −3 / 4 + 1 = 1`" in text
    assert "`width: (6 + 2×0 − 3) / 4 + 1 = 3 / 4 + 1 = 1`" in text


def test_hover_on_a_fork_field_names_the_fork(client):
    text = NET.replace("pad: 1 }", "pad: 1 ceil_mode: false }")
    uri, _ = open_doc(client, text)
    line, col = position_of(text, "ceil_mode", delta=1)
    value = client.at("textDocument/hover", uri, line, col)["contents"]["value"]
    assert "not a field of BVLC Caffe" in value and "forks" in value


def _labels(result):
    items = result["items"] if isinstance(result, dict) else result
    return [i["label"] for i in items], items


def test_completion_offers_the_fields_of_the_block(client):
    text = NET.replace("convolution_param { num_output: 4 kernel_size: 1 }",
                       "convolution_param {\n    \n  }")
    uri, _ = open_doc(client, text)
    line, _ = position_of(text, "convolution_param {")
    labels, items = _labels(client.at("textDocument/completion", uri, line + 1, 4))
    assert "kernel_size" in labels and "num_output" in labels and "pool" not in labels
    ks = items[labels.index("kernel_size")]
    assert ks["detail"] == "repeated uint32" and ks["insertText"] == "kernel_size: "
    bias = items[labels.index("bias_term")]
    assert bias["detail"] == "bool = true"
    # In pooling_param: pool, not kernel_h's convolution cousins such as dilation.
    line, col = position_of(text, "pool: MAX")
    labels, _ = _labels(client.at("textDocument/completion", uri, line, col))
    assert "pool" in labels and "dilation" not in labels and "ceil_mode" in labels


def test_completion_of_values(client, tmp_path):
    text = NET.replace('type: "ReLU"', 'type: ').replace("pool: MAX", "pool: ")
    uri, _ = open_doc(client, text)
    line, col = position_of(text, "type: \n", delta=6)
    labels, items = _labels(client.at("textDocument/completion", uri, line, col))
    assert {"Convolution", "Pooling", "ReLU", "PriorBox", "Interp"} <= set(labels)
    assert items[labels.index("Convolution")]["insertText"] == '"Convolution"'
    assert "weiliu89" in items[labels.index("PriorBox")]["detail"]
    line, col = position_of(text, "pool: ", delta=6)
    labels, _ = _labels(client.at("textDocument/completion", uri, line, col))
    assert labels == ["MAX", "AVE", "STOCHASTIC"]
    # bottom: the blobs written above this layer, the nearest first; none written below.
    line, col = position_of(text, 'bottom: "conv1"', nth=1, delta=8)
    labels, _ = _labels(client.at("textDocument/completion", uri, line, col))
    assert labels == ["conv1", "data"]
    # A solver's lr_policy: the names and the fields each needs.
    solver = 'net: "x.prototxt"\nbase_lr: 0.1\nlr_policy: '
    suri, _ = open_doc(client, solver, "solver.prototxt", tmp_path)
    labels, items = _labels(client.at("textDocument/completion", suri, 2, len("lr_policy: ")))
    assert {"fixed", "step", "multistep", "poly", "inv"} <= set(labels)
    assert "gamma" in items[labels.index("step")]["detail"] and "stepsize" in items[labels.index("step")]["detail"]


def test_definition_follows_an_in_place_chain(client):
    uri, _ = open_doc(client, NET)
    line, col = position_of(NET, 'bottom: "conv1"', nth=2, delta=9)  # pool1 reads conv1
    [loc] = client.at("textDocument/definition", uri, line, col)
    tline, tcol = position_of(NET, 'top: "conv1"', nth=2, delta=5)  # written last by scale1
    assert loc["uri"] == uri and loc["range"]["start"] == {"line": tline, "character": tcol}
    # relu1 reads the version conv1 wrote.
    line, col = position_of(NET, 'bottom: "conv1"', nth=0, delta=9)
    [loc] = client.at("textDocument/definition", uri, line, col)
    assert loc["range"]["start"]["line"] == position_of(NET, 'top: "conv1"', nth=0)[0]
    # The net's input.
    line, col = position_of(NET, 'bottom: "data"', delta=9)
    [loc] = client.at("textDocument/definition", uri, line, col)
    assert loc["range"]["start"]["line"] == position_of(NET, 'top: "data"')[0]


def test_references_symbols_and_inlay_hints(client):
    uri, _ = open_doc(client, NET)
    line, col = position_of(NET, '"conv1"', nth=1, delta=1)
    refs = client.at("textDocument/references", uri, line, col, context={"includeDeclaration": True})
    assert len(refs) == NET.count('"conv1"') - 1  # not the layer's own name
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert [(s["name"], s["detail"]) for s in symbols] == [("data", "Input -> 1x1x5x5"),
        ("conv1", "Convolution -> 1x4x5x5"), ("relu1", "ReLU -> 1x4x5x5"), ("scale1", "Scale -> 1x4x5x5"),
        ("pool1", "Pooling -> 1x4x3x3")]
    hints = client.request("textDocument/inlayHint", {"textDocument": {"uri": uri}, "range": {
        "start": {"line": 0, "character": 0}, "end": {"line": 100, "character": 0}}})
    assert [h["label"] for h in hints] == ["1x1x5x5"] + ["1x4x5x5"] * 3 + ["1x4x3x3"]
    line, col = position_of(NET, 'top: "pool1"', delta=len('top: "pool1"'))
    assert hints[-1]["position"] == {"line": line, "character": col}


def test_rename_changes_every_use(client):
    uri, _ = open_doc(client, NET)
    line, col = position_of(NET, 'top: "conv1"', nth=1, delta=7)
    prep = client.at("textDocument/prepareRename", uri, line, col)
    assert prep["placeholder"] == "conv1"
    edit = client.at("textDocument/rename", uri, line, col, newName="features")
    renamed = apply_edits(NET, edit["changes"][uri])
    assert renamed == NET.replace('bottom: "conv1"', 'bottom: "features"').replace('top: "conv1"', 'top: "features"')
    # A layer's name: its name only.
    line, col = position_of(NET, 'name: "pool1"', delta=8)
    edit = client.at("textDocument/rename", uri, line, col, newName="p1")
    assert apply_edits(NET, edit["changes"][uri]) == NET.replace('name: "pool1"', 'name: "p1"')


def test_quick_fix_for_did_you_mean(client):
    text = NET.replace("kernel_size: 1", "kernal_size: 1").replace('type: "ReLU"', 'type: "Relu"')
    uri, diags = open_doc(client, text)
    d = [d for d in diags if d["code"] == "E201"][0]
    actions = client.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": d["range"],
                                                          "context": {"diagnostics": [d]}})
    [fix] = [a for a in actions if a["title"] == "Replace with 'kernel_size'"]
    assert fix["kind"] == "quickfix"
    fixed = apply_edits(text, fix["edit"]["changes"][uri])
    assert "kernel_size: 1" in fixed and "kernal" not in fixed
    # After the fixed file has only the type left, whose fix keeps the quotes.
    client.change(uri, 2, fixed)
    [d] = client.diagnostics(uri, 2)
    actions = client.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": d["range"],
                                                          "context": {"diagnostics": [d]}})
    assert apply_edits(fixed, actions[0]["edit"]["changes"][uri]) == NET


COMMENTED = """# a small net
name: "t"  # its name
input: "data"
input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }
layer {
  # the only layer
  name: "relu"
  type: "ReLU"
  bottom: "data"  # in place
  top: "data"
}
# the end
"""


def test_formatting_keeps_comments(client):
    uri, _ = open_doc(client, COMMENTED)
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                       "options": {"tabSize": 2, "insertSpaces": True}})
    formatted = apply_edits(COMMENTED, edits)
    assert formatted == format_parsed(parse_text(Source(COMMENTED, "x")))
    assert [c for _, c in scan_comments(formatted)] == [c for _, c in scan_comments(COMMENTED)]
    assert "input_shape {\n  dim: 1\n" in formatted and "  bottom: \"data\"  # in place\n" in formatted
    # Formatting the formatted text changes nothing; a file with errors is left alone.
    client.change(uri, 2, formatted)
    assert client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                      "options": {"tabSize": 2, "insertSpaces": True}}) == []
    client.change(uri, 3, formatted.replace("dim: 5", "dim: x"))
    assert client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                      "options": {"tabSize": 2, "insertSpaces": True}}) is None


def test_a_solvers_net_resolves(client, tmp_path):
    shutil.copy(LIBRARY_NETS / "lenet.prototxt", tmp_path / "lenet_train_test.prototxt")
    text = (LIBRARY_SOLVERS / "lenet_solver.prototxt").read_text()
    m = re.search(r'^net: "([^"]*)"', text, re.M)
    text = text.replace(m.group(0), 'net: "examples/mnist/lenet_train_test.prototxt"')
    uri, diags = open_doc(client, text, "lenet_solver.prototxt", tmp_path)
    assert [d["code"] for d in diags if d["severity"] == 1] == []
    line, col = position_of(text, 'net: "examples/mnist', delta=9)
    [loc] = client.at("textDocument/definition", uri, line, col)
    assert loc["uri"] == (tmp_path / "lenet_train_test.prototxt").as_uri()
    [link] = client.request("textDocument/documentLink", {"textDocument": {"uri": uri}})
    assert link["target"] == loc["uri"] and link["range"]["start"]["line"] == line
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert "base_lr" in [s["name"] for s in symbols]


def test_positions_count_utf16_units(client):
    text = NET.replace('name: "t"', 'name: "\U0001F600é"')
    text = text.replace("kernel_size: 1 }", "kernel_size: 1 } # \U0001F600").replace(
        'top: "conv1"\n  convolution_param { num_output: 4 kernel_size: 1 }',
        'top: "conv1"\n  convolution_param { num_output: 4 kernel_size: 1 }')
    bad = text.replace('name: "\U0001F600é"', 'name: "\U0001F600é" bogus: 1')
    uri, diags = open_doc(client, bad)
    [d] = diags
    # "name: " (6) + quote (1) + the emoji (2 UTF-16 units) + é (1) + quote (1) + space (1) = 12
    assert d["range"]["start"] == {"line": 0, "character": 12}
    assert d["range"]["end"] == {"line": 0, "character": 17}


def test_other_commands_do_not_import_the_server():
    import subprocess
    import sys
    from conftest import REPO
    code = ("import sys; from netdef.cli import main; main(['check', 'lenet']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol') or m == 'netdef.lsp'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.splitlines()[-1] == "[]", out.stderr


def test_the_command_line_lists_lsp(capsys):
    from netdef.cli import main
    assert main(["--help"]) == 0
    assert "lsp" in capsys.readouterr().out


def test_edits_inside_a_layer_update_diagnostics_and_hovers(client):
    """Edits inside one layer take the incremental path (netdef/lsp/incremental.py): the
    results must be what a fresh analysis gives."""
    uri, diags = open_doc(client, NET)
    assert diags == []
    line, col = position_of(NET, "kernel_size: 2", delta=len("kernel_size: "))
    edit = {"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + 1}},
            "text": "9"}
    client.change(uri, 2, edits=[edit])
    [d] = client.diagnostics(uri, 2)
    # ceil((5 + 2 x 1 - 9) / 2) + 1 = 0 windows: Caffe loads it (only a negative size fails its
    # Blob::Reshape), so a kernel larger than the padded input is a warning (W414), not E402.
    assert d["code"] == "W414" and "(height: kernel 9 on 5 + 2 x 1; width: kernel 9 on 5 + 2 x 1)" in d["message"], d
    hline, hcol = position_of(NET, '"Pooling"', delta=2)
    assert "out `pool1` | 1x4x0x0" in client.at("textDocument/hover", uri, hline, hcol)["contents"]["value"]
    # Two changes in one notification, applied in order: text typed, then taken back.
    client.change(uri, 3, edits=[{"range": edit["range"], "text": "2 stride_h: 2 stride_w: 1"},
                                 {"range": {"start": {"line": line, "character": col + 1},
                                            "end": {"line": line, "character": col + len("2 stride_h: 2 stride_w: 1")}},
                                  "text": ""}])
    assert client.diagnostics(uri, 3) == []
    value = client.at("textDocument/hover", uri, hline, hcol)["contents"]["value"]
    assert "out `pool1` | 1x4x3x3" in value
    client.change(uri, 4, edits=[{"range": {"start": {"line": line, "character": col + 1},
                                            "end": {"line": line, "character": col + 1}},
                                  "text": " pad_h: 0 pad_w: 0"}])
    [d] = client.diagnostics(uri, 4)  # pad and pad_h/pad_w together
    assert d["code"].startswith("E") and "pad" in d["message"]
