"""The exact rendering of the front end's diagnostics, pinned by snapshot files.

Each tests/snapshots/diagnostics/<name>.prototxt is a bad (or old) input; <name>.txt is what
netdef prints about it: the diagnostics of netdef.load (parse and upgrade) rendered by the
CLI's printer, paths relative to the snapshot folder. For inputs with errors, the CLI's own
stderr must be the same text. UPDATE_SNAPSHOTS=1 rewrites the .txt files: review them by eye.
"""
import io
import os
from pathlib import Path

import pytest

import netdef
from netdef.cli import main, print_diagnostics
from netdef.source import SourceError

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots" / "diagnostics"
CASES = sorted(p.stem for p in SNAPSHOTS.glob("*.prototxt"))
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
# A lower --max-errors for the case about the limit itself.
LIMITS = {"too_many_errors": 5}


def _render(name: str) -> tuple[str, bool]:
    """What netdef prints about snapshot `name`, and whether it has errors."""
    path = f"{name}.prototxt"
    try:
        parsed = netdef.load(path, max_errors=LIMITS.get(name, 100))
    except SourceError as e:  # as the CLI prints it
        return e.diagnostic().render() + "\n", True
    out = io.StringIO()
    n_err, _ = print_diagnostics(parsed.diagnostics, out)
    return out.getvalue(), n_err > 0


def test_there_are_enough_distinct_cases():
    assert len(CASES) >= 30
    expected = {p.stem for p in SNAPSHOTS.glob("*.txt")}
    if not UPDATE:  # new inputs get their snapshots in this run
        assert expected == set(CASES), "every input has its snapshot and every snapshot its input"


@pytest.mark.parametrize("name", CASES)
def test_snapshot(name, monkeypatch, capsys):
    monkeypatch.chdir(SNAPSHOTS)
    text, has_errors = _render(name)
    snap = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        snap.write_text(text, encoding="utf-8")
    assert text == snap.read_text(encoding="utf-8")
    assert text.strip(), "every snapshot input is reported"
    assert "Traceback" not in text
    if has_errors:
        # The command line says exactly the same, on stderr, and exits 1.
        argv = ["--max-errors", str(LIMITS.get(name, 100)), "upgrade", f"{name}.prototxt"]
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and err == text


def test_every_diagnostic_points_into_the_file(monkeypatch):
    """Line and column exist, and the caret line sits under the reported column."""
    monkeypatch.chdir(SNAPSHOTS)
    for name in CASES:
        try:
            parsed = netdef.load(f"{name}.prototxt")
        except SourceError:
            continue
        for d in parsed.diagnostics:
            if d.span is None:
                continue
            assert 1 <= d.span.line <= parsed.source.line_count, (name, d.header())
            assert d.span.start <= len(parsed.source.text)
