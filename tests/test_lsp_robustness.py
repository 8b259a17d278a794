"""The server never crashes on any content: the robustness suite's mutations of zoo files
(tests/robustness/fuzzlib.py: deleted, swapped and replaced tokens, hostile values, truncation,
random bytes, 10,000-level nesting, ...) are sent as edits to one open document, and after
each one every kind of request gets an answer (a result, possibly null, never an error) and
diagnostics arrive for that version. Bounded: a fixed sample of small files and mutants."""
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "robustness"))

from fuzzlib import HOSTILE, OPS, ZOO, apply  # noqa: E402
from lsp_client import Client  # noqa: E402

FILES = sorted(p for p in ZOO.rglob("*") if p.suffix in (".prototxt", ".pt", ".proto") and p.stat().st_size < 12_000)
EDITS = 48


def _mutants():
    rng = random.Random(20261203)
    files = rng.sample(FILES, min(len(FILES), EDITS // 2))
    out = []
    for k in range(EDITS):
        path = files[k % len(files)]
        ops = [(OPS[k % len(OPS)], rng.randrange(2**32), HOSTILE[(k * 7) % len(HOSTILE)])]
        if k % 3 == 0:
            ops.append((rng.choice(OPS), rng.randrange(2**32), rng.choice(HOSTILE)))
        text = apply(path.read_text(errors="replace"), ops).decode("utf-8", "replace")
        out.append((path, ops, text))
    return out


def _positions(text: str, rng: random.Random, n: int = 3):
    lines = text.split("\n")
    out = []
    for _ in range(n):
        line = rng.randrange(len(lines))
        out.append((line, rng.randrange(len(lines[line]) + 2)))  # one past the end too
    return out


def test_every_request_is_answered_on_mutated_files(tmp_path):
    assert len(FILES) > 20
    rng = random.Random(7)
    client = Client()
    uri = (tmp_path / "mutant.prototxt").as_uri()
    try:
        client.open(uri, FILES[0].read_text())
        client.diagnostics(uri, 1)
        for version, (path, ops, text) in enumerate(_mutants(), start=2):
            where = f"{path.relative_to(ZOO)} {ops}"
            client.change(uri, version, text)
            for line, col in _positions(text, rng):
                pos = {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}
                for method, extra in (("textDocument/hover", {}), ("textDocument/completion", {}),
                                      ("textDocument/definition", {}),
                                      ("textDocument/references", {"context": {"includeDeclaration": True}}),
                                      ("textDocument/prepareRename", {}),
                                      ("textDocument/rename", {"newName": "renamed"})):
                    client.request(method, {**pos, **extra}, timeout=60)  # raises on an error answer
            doc = {"textDocument": {"uri": uri}}
            whole = {"start": {"line": 0, "character": 0}, "end": {"line": text.count("\n") + 1, "character": 0}}
            client.request("textDocument/documentSymbol", doc)
            client.request("textDocument/documentLink", doc)
            client.request("textDocument/inlayHint", {**doc, "range": whole})
            client.request("textDocument/codeAction", {**doc, "range": whole, "context": {"diagnostics": []}})
            client.request("textDocument/formatting", {**doc, "options": {"tabSize": 2, "insertSpaces": True}})
            client.diagnostics(uri, version, timeout=60)
            assert client.proc.poll() is None, where
            errors = [m["message"] for m in client.log if m["type"] == 1]
            assert not errors, f"{where}: {errors[0][-1500:]}"
    finally:
        code = client.close()
    assert code == 0
    assert "Traceback" not in client.stderr_text(), client.stderr_text()[-3000:]
