"""The command line's contract: exit codes 0/1/2, one-line failures, never a traceback."""
import subprocess
import sys

import pytest

from netdef import cli
from netdef.diagnostics import CliError


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_no_command_is_a_usage_error(capsys):
    code, out, err = run([], capsys)
    assert code == 2 and "COMMAND" in err


@pytest.mark.parametrize("argv", [["frobnicate"], ["check"], ["summary", "x", "--format", "yaml"],
                                  ["export", "x"], ["check", "x", "--phase", "VALIDATE"], ["lr", "x", "--bogus"]])
def test_usage_errors_exit_2(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert "Traceback" not in err and "netdef" in err


def test_version_and_help_exit_0(capsys):
    assert run(["--version"], capsys)[0] == 0
    assert run(["check", "--help"], capsys)[0] == 0


def test_list_shows_the_bundled_library(capsys):
    code, out, err = run(["list"], capsys)
    assert code == 0
    names = {line.split()[1] for line in out.splitlines()}
    assert {"alexnet", "lenet", "resnet50"} <= names


def _patch_handler(monkeypatch, exc):
    def handler(args):
        raise exc
    # netdef.cli.parser owns the table of commands
    monkeypatch.setitem(cli.COMMANDS, "list", ("netdef.tests_fake", "h", "x"))
    fake = type(sys)("netdef.tests_fake")
    fake.h = handler
    monkeypatch.setitem(sys.modules, "netdef.tests_fake", fake)


def test_internal_errors_are_one_line_without_traceback(monkeypatch, capsys):
    # Exit 3 (was 1 until issue 13): a script can tell a bug in netdef from errors in its input.
    _patch_handler(monkeypatch, ZeroDivisionError("boom"))
    code, out, err = run(["list"], capsys)
    assert code == 3
    assert "internal error: ZeroDivisionError: boom" in err and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        cli.main(["--debug", "list"])


@pytest.mark.parametrize("exc,needle", [(CliError("cannot write x"), "netdef: error: cannot write x"),
                                        (RecursionError(), "nested too deeply"),
                                        (MemoryError(), "out of memory")])
def test_failures_exit_1(monkeypatch, capsys, exc, needle):
    _patch_handler(monkeypatch, exc)
    code, out, err = run(["list"], capsys)
    assert code == 1 and needle in err and "Traceback" not in err


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "netdef", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("netdef ")


def test_standard_output_that_cannot_be_written_is_exit_1_not_an_internal_error():
    # /dev/full: every write fails with ENOSPC. That is "an output could not be written" (1),
    # not a bug in netdef (3).
    import subprocess
    import sys
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "netdef", "summary", "lenet"], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=600)
    assert r.returncode == 1, r.stderr
    assert "cannot write the output: No space left on device" in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


# --- one --batch parser and one --seed parser (issue 12) ---------------------------------------

def _option(command: str, flag: str):
    """The argparse action of `flag` on `command`'s subparser (None when it has none)."""
    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return next((a for a in sub._actions if flag in a.option_strings), None)


def test_every_command_parses_batch_and_seed_with_the_one_parser():
    from netdef.cli import parser
    with_batch = [c for c in cli.COMMANDS if _option(c, "--batch") is not None]
    with_seed = [c for c in cli.COMMANDS if _option(c, "--seed") is not None]
    assert sorted(with_batch) == ["bench", "export", "verify"]
    assert sorted(with_seed) == ["bench", "export", "init", "run", "verify"]
    for c in with_seed:
        assert _option(c, "--seed").type is parser.seed
    for c in with_batch:
        assert _option(c, "--batch").type.__qualname__ == "batch_size.<locals>.batch"


@pytest.mark.parametrize("command,value,want", [
    ("export", "4", 4), ("export", "dynamic", "dynamic"), ("export", "Dynamic", "dynamic"),
    ("bench", "4", 4), ("verify", "1", 1)])
def test_batch_values_accepted(command, value, want):
    args = ["-o", "m.onnx"] if command == "export" else []
    ns = cli.build_parser(command).parse_args([command, "net.prototxt", *args, "--batch", value])
    assert ns.batch == want


@pytest.mark.parametrize("command", ["export", "bench", "verify"])
@pytest.mark.parametrize("value", ["0", "-2", "x", "1.5", "dynamic"])
def test_batch_values_refused_alike(command, value, capsys, tmp_path):
    out = tmp_path / "m.onnx"
    args = ["-o", str(out)] if command == "export" else []
    code, _, err = run([command, "lenet", *args, "--batch", value], capsys)
    if command == "export" and value == "dynamic":
        assert code == 0 and out.exists()
        return
    allowed = "a whole number, at least 1" + (", or 'dynamic'" if command == "export" else "")
    assert code == 2 and f"netdef {command}: argument --batch: expected {allowed}, got '{value}'" in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["export", "init", "run", "bench", "verify"])
def test_seed_values_refused_alike(command, capsys):
    args = ["-o", "never-written"] if command in ("export", "init") else []
    for value in ("-1", "x", str(2**64)):
        code, _, err = run([command, "lenet", *args, "--seed", value], capsys)
        assert code == 2
        assert f"argument --seed: expected a whole number from 0 to 2^64 - 1, got '{value}'" in err


def test_fmt_without_a_file_names_only_the_missing_file(capsys):
    # The optional FILE... after the first was listed as required too (argparse, nargs="*").
    code, out, err = run(["fmt"], capsys)
    assert code == 2
    assert "required: file\n" in err
