"""The server's incremental re-analysis (netdef/lsp/incremental.py) gives what a full analysis
of the edited text gives: diagnostics (code, place, message, notes, related places), every
layer's shapes, receptive fields, cost and parameters, and every location. Random edits inside
layers of zoo nets (numbers replaced with hostile ones, enum values, fields added and removed),
each compared with a from-scratch analysis, in sequence (each edit starts from the previous
incremental result, as in an editor)."""
import random
import re

import pytest

from conftest import ZOO
from netdef.lsp.document import Document
from netdef.lsp.incremental import reanalyse

NETS = ["resnet18/deploy.prototxt", "bvlc_googlenet/train_val.prototxt", "ssd300_vgg16_voc/deploy.prototxt",
        "squeezenet_v1.0/deploy.prototxt", "enet/enet_train_val.prototxt", "bvlc_alexnet/deploy.prototxt"]
NUMBERS = ["0", "1", "2", "3", "7", "-1", "65536", "2147483648", "0.5", "nan", "1e400"]
EDITS = 8


def _paths():
    out = []
    for rel in NETS:
        p = ZOO / rel
        if not p.exists():
            p = next(iter(sorted((ZOO / rel.split("/")[0]).glob("*.prototxt"))), None)
        if p is not None:
            out.append(p)
    return out


def _key(d):
    return (d.code, d.severity, d.span.start if d.span else None, d.span.end if d.span else None, d.message,
            tuple(d.notes), tuple((s.start, s.end, label) for s, label in d.related))


def _facts(doc):
    nodes = [(n.name, n.loc.name_start, n.loc.end, [v.meta.get("shape") for v in n.outputs],
              [v.meta.get("rf") for v in n.outputs], n.meta.get("cost"), n.meta.get("params"),
              n.meta.get("invalid"), n.meta.get("unknown")) for n in doc.graph.nodes]
    return (sorted(map(_key, doc.diagnostics)), nodes, [(u.start, u.end, u.name, u.role) for u in doc.blobs],
            [(r.loc.name_start, r.loc.head_end, r.loc.end) for r in doc.layers])


def _edit(text: str, doc: Document, rng: random.Random) -> str:
    """One edit inside a random layer's block."""
    ref = rng.choice([r for r in doc.layers if r.loc.end > r.loc.head_end + 2])
    start, end = ref.loc.head_end, ref.loc.end - 1
    body = text[start:end]
    kind = rng.randrange(4)
    numbers = [m for m in re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])", body)]
    if kind == 0 and numbers:
        m = rng.choice(numbers)
        return text[:start + m.start()] + rng.choice(NUMBERS) + text[start + m.end():]
    if kind == 1:  # a field the schema lacks (E201), or a fork's
        field = rng.choice(["kernal_size: 3", "ceil_mode: false", "bogus { x: 1 }", "num_output: 8"])
        return text[:start] + f"\n  {field}\n" + text[start:]
    enums = [m for m in re.finditer(r"\b(pool|operation|norm_region):\s*(\w+)", body)]
    if kind == 2 and enums:
        m = rng.choice(enums)
        return text[:start + m.start(2)] + rng.choice(["MAX", "AVE", "SUM", "PROD", "WITHIN_CHANNEL", "BOGUS"]) + \
            text[start + m.end(2):]
    lines = [m for m in re.finditer(r"\n[ \t]*(?!bottom|top|name|type)\w+:[^\n{}]*(?=\n)", body)]
    if lines:  # a whole scalar field removed
        m = rng.choice(lines)
        return text[:start + m.start()] + text[start + m.end():]
    return text[:start] + " " + text[start:]


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.parent.name)
def test_incremental_equals_full(path):
    rng = random.Random(path.name + path.parent.name)
    text = path.read_text()
    doc = Document("file:///x", str(path), text, 1)
    used = 0
    for version in range(2, 2 + EDITS):
        new = _edit(text, doc, rng)
        inc = reanalyse(doc, new, version)
        full = Document("file:///x", str(path), new, version)
        if inc is None:
            doc = full
        else:
            used += 1
            assert inc.text == new and inc.version == version
            assert _facts(inc) == _facts(full), f"edit {version - 1} of {path}"
            doc = inc
        text = new
    assert used >= EDITS // 2


def test_edits_that_change_the_graph_are_analysed_from_scratch():
    text = 'layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n' \
           'layer { name: "r" type: "ReLU" bottom: "d" top: "d" }\n'
    doc = Document("file:///x", "x.prototxt", text, 1)
    assert reanalyse(doc, text.replace('bottom: "d" top: "d"', 'bottom: "d" top: "e"'), 2) is None  # a new top
    assert reanalyse(doc, text.replace("ReLU", "TanH"), 2) is None                               # a new type
    assert reanalyse(doc, text + "layer {", 2) is None                                            # syntax
    assert reanalyse(doc, "# c\n" + text, 2) is None                                              # outside layers
    again = reanalyse(doc, text.replace("dim: 8 }", "dim: 9 }"), 2)                               # a value
    assert again is not None and again.graph.nodes[1].outputs[0].meta["shape"] == (1, 3, 8, 9)
