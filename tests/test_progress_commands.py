"""Progress lines from the long-running commands (export's weights, sizes, bench): drawn on a
terminal after a delay, silenced by progress.quiet; here forced on, with no delay."""
import pytest

from netdef import progress
from netdef.cli import main


@pytest.fixture
def shown(monkeypatch, capsys):
    monkeypatch.setattr(progress, "force", True)
    original = progress.Progress.__init__

    def immediate(self, *args, **kwargs):
        kwargs.update(delay=0, interval=0)
        original(self, *args, **kwargs)
    monkeypatch.setattr(progress.Progress, "__init__", immediate)
    return capsys


def test_export_reports_weights(shown, tmp_path):
    assert main(["export", "lenet", "-o", str(tmp_path / "l.onnx")]) == 0
    err = shown.readouterr().err
    assert "\rexport: weights: 8/8 (0 s) ip2.bias" in err
    assert err.rstrip(" ").endswith("\r")            # the line is erased at the end


def test_sizes_reports_layers(shown):
    assert main(["sizes", "lenet", "--range", "1:40"]) == 0
    assert "\rsizes: 27/27 (0 s) loss" in shown.readouterr().err


def test_quiet_silences_them(shown, tmp_path):
    assert main(["export", "lenet", "-o", str(tmp_path / "l.onnx"), "-q"]) == 0
    assert main(["sizes", "lenet", "--range", "1:40", "--quiet"]) == 0
    assert "\r" not in shown.readouterr().err
