"""netdef.progress: nothing on a pipe or under --quiet, a redrawn line on a terminal, erased."""
import io

from netdef import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_silent_when_not_a_terminal():
    s = io.StringIO()
    with progress.Progress("work", 3, stream=s, delay=0, interval=0) as p:
        p.update()
    assert s.getvalue() == ""


def test_terminal_line_is_drawn_and_erased(monkeypatch):
    s = _Tty()
    with progress.Progress("work", 3, stream=s, delay=0, interval=0) as p:
        p.update(detail="conv1")
        p.update(detail="pool1\nx")
    out = s.getvalue()
    assert "\rwork: 1/3" in out and "conv1" in out and "work: 2/3" in out and "pool1 x" in out
    assert out.endswith("\r") and "\n" not in out


def test_quiet_and_delay(monkeypatch):
    s = _Tty()
    monkeypatch.setattr(progress, "quiet", True)
    with progress.Progress("work", stream=s, delay=0, interval=0) as p:
        p.update()
    monkeypatch.setattr(progress, "quiet", False)
    with progress.Progress("work", stream=s, delay=60, interval=0) as p:
        p.update()
    assert s.getvalue() == ""
