"""The command line's shared conventions (issue 13), through netdef.cli.main:

global options anywhere on the line, help on every option, colour (--color, NO_COLOR,
FORCE_COLOR), -q, -W on every command, '-' for standard input, exit code 3 for internal
errors, JSON from every command checked against a schema, check's github and sarif formats,
weights that do not match the net, draw's refusal to picture a broken net, and the exported
model's value_info and metadata.
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import sys

import pytest

from conftest import CONFORMANCE, ZOO
from netdef import cli, progress

CONV = str(CONFORMANCE / "layers" / "conv_basic" / "net.prototxt")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# A net with one error (a kernel larger than its input) in layer 'big' (line 4), after a valid layer.
BROKEN = """name: "broken"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "ok" type: "Convolution" bottom: "data" top: "ok" convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "big" type: "Convolution" bottom: "ok" top: "big" convolution_param { num_output: 2 kernel_size: 30 } }
"""

# A net with one warning (W311: Split's top 's2' is never used) and no error.
WARNS = """name: "warns"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "s" type: "Split" bottom: "c" top: "s1" top: "s2" }
layer { name: "r" type: "ReLU" bottom: "s1" top: "r" }
"""


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def plain_env(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture
def broken(tmp_path):
    p = tmp_path / "broken.prototxt"
    p.write_text(BROKEN)
    return p


# --- the argument parser ----------------------------------------------------------------------

def _parsers(parser, seen=None):
    seen = seen if seen is not None else set()
    if id(parser) in seen:
        return
    seen.add(id(parser))
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub, seen)


def test_every_option_has_help():
    parsers = list(_parsers(cli.build_parser()))
    assert len(parsers) == len(cli.COMMANDS) + 1
    missing = []
    for p in parsers:
        for action in p._actions:
            if action.help == argparse.SUPPRESS:
                continue
            if not (action.help or "").strip():
                missing.append(f"{p.prog}: {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


# The commands that print a result or a report, each with --format text|json.
REPORTING = {"check", "summary", "rf", "sizes", "fmt", "upgrade", "draw", "export", "init", "run", "bench",
             "verify", "solver", "lr", "list"}


def test_every_command_takes_the_shared_options():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"--debug", "--max-errors", "--max-file-size", "--color", "-q", "--quiet"} <= opts, name
        if name != "list":
            assert {"-W", "--warnings"} <= opts, name
        if name in REPORTING:
            fmt = next(a for a in p._actions if "--format" in a.option_strings)
            assert {"text", "json"} <= set(fmt.choices), name
    assert REPORTING <= set(sub.choices)


@pytest.mark.parametrize("argv", [
    ["check", CONV, "--max-errors", "5", "--debug", "--color", "never", "-q"],
    ["--max-errors", "5", "check", CONV, "--quiet"],
    ["check", "--color=always", CONV, "--max-file-size", "2"],
])
def test_global_options_before_or_after_the_command(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 0, err


def test_global_option_after_the_command_takes_effect(capsys, tmp_path):
    big = tmp_path / "big.prototxt"
    big.write_text(open(CONV).read() + "\n" + "# padding\n" * 200_000)  # about 2 MB
    code, _, err = run(capsys, "check", big, "--max-file-size", "1")
    assert code == 1 and "E100" in err and "at most 1 MiB" in err
    # the value given before the command is not reset by the subcommand's default
    code, _, err = run(capsys, "--max-file-size", "1", "check", big)
    assert code == 1 and "E100" in err
    code, _, err = run(capsys, "--max-file-size", "1", "check", big, "--max-file-size", "4")
    assert code == 0, err


def test_max_errors_after_the_command(capsys, tmp_path):
    p = tmp_path / "many.prototxt"
    p.write_text('name: "x"\n' + "".join(f"bogus_{i}: 1\n" for i in range(20)))
    code, _, err = run(capsys, "check", p, "--max-errors", "3")
    assert code == 1 and err.count("error[E201]") == 3 and "more diagnostics not shown" in err


# --- colour -----------------------------------------------------------------------------------

def test_no_colour_when_not_a_terminal(capsys, broken, plain_env):
    code, _, err = run(capsys, "check", broken)
    assert code == 1 and "error[E402]" in err and not ANSI.search(err)


@pytest.mark.parametrize("env,flag,coloured", [
    ({"FORCE_COLOR": "1"}, None, True),
    ({"FORCE_COLOR": "0"}, None, False),
    ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, None, False),   # NO_COLOR wins
    ({"NO_COLOR": "1"}, "always", True),                     # the option wins over the environment
    ({"FORCE_COLOR": "1"}, "never", False),
    ({}, "always", True),
    ({"NO_COLOR": ""}, "always", True),
])
def test_colour_switches(capsys, broken, monkeypatch, plain_env, env, flag, coloured):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    argv = ["check", broken] + (["--color", flag] if flag else [])
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert bool(ANSI.search(err)) == coloured, err
    plain = ANSI.sub("", err)
    assert re.search(r"broken\.prototxt:4:\d+: error\[E402\]: layer 'big'", plain)
    if coloured:
        assert "\x1b[1;31merror[E402]\x1b[0m" in err          # severity and code in red
        assert re.search(r"\x1b\[1;31m\^~*\x1b\[0m", err)        # the caret too
        assert "\x1b[1;36mnote\x1b[0m:" in err


def test_colour_of_a_one_line_failure(capsys, tmp_path, plain_env):
    target = tmp_path / "missing" / "x.onnx"
    code, _, err = run(capsys, "export", "lenet", "-o", target, "--color", "always")
    assert code == 1 and err.startswith("netdef: \x1b[1;31merror\x1b[0m: cannot write")
    code, _, err = run(capsys, "export", "lenet", "-o", target)
    assert code == 1 and err.startswith("netdef: error: cannot write")


def test_colour_of_a_warning_is_yellow(capsys, tmp_path, monkeypatch, plain_env):
    p = tmp_path / "w.prototxt"
    p.write_text(WARNS)
    code, _, err = run(capsys, "check", p, "--color", "always")
    assert code == 0 and "\x1b[1;33mwarning[W311]\x1b[0m" in err


# --- -q, -W -----------------------------------------------------------------------------------

def test_quiet_silences_everything_but_results_and_diagnostics(capsys, tmp_path, monkeypatch):
    seen = {}
    from netdef.cli import export as export_onnx
    real = export_onnx.cmd_export

    def spy(args):
        seen["progress_quiet"] = progress.quiet
        return real(args)
    monkeypatch.setattr(export_onnx, "cmd_export", spy)
    out_path = tmp_path / "m.onnx"
    code, out, err = run(capsys, "export", "lenet", "-o", out_path)
    assert code == 0 and out.startswith("wrote ") and "W511" in err
    assert seen["progress_quiet"] is False
    code, out, err = run(capsys, "export", "lenet", "-o", out_path, "-q")
    assert code == 0 and out == "" and out_path.exists()
    assert "W511" in err  # diagnostics stay
    assert seen["progress_quiet"] is True
    assert progress.quiet is False  # restored after the run
    code, out, err = run(capsys, "check", "lenet", "-q")
    assert code == 0 and out == "" and err == ""
    code, out, err = run(capsys, "summary", "googlenet")
    assert "more warning(s); run 'netdef check googlenet'" in err
    code, out2, err = run(capsys, "summary", "googlenet", "-q")
    assert code == 0 and err == "" and out2 == out  # the notes go, the result stays


def test_warnings_option_on_other_commands(capsys, tmp_path):
    p = tmp_path / "w.prototxt"
    p.write_text(WARNS)
    target = tmp_path / "w.onnx"
    code, out, err = run(capsys, "export", p, "-o", target, "-W", "hide")
    assert code == 0 and "warning[" not in err and target.exists()
    target.unlink()
    code, out, err = run(capsys, "export", p, "-o", target, "-W", "error")
    # W311 is an analysis warning export does not show; its own W5xx are shown. This net has
    # none of those, so -W error has nothing to fail on:
    assert code == 0, err
    target.unlink()
    code, out, err = run(capsys, "export", "lenet", "-o", target, "-W", "error")
    assert code == 1 and "warning[W511]" in err and "treated as errors (-W error)" in err
    assert not target.exists()  # refused before anything is written
    code, out, err = run(capsys, "summary", "googlenet", "-W", "hide")
    assert code == 0


# --- standard input, exit codes ---------------------------------------------------------------

def _stdin(monkeypatch, text: str):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))


def test_dash_reads_standard_input(capsys, monkeypatch):
    _stdin(monkeypatch, BROKEN)
    code, _, err = run(capsys, "check", "-")
    assert code == 1 and re.search(r"^<stdin>:4:\d+: error\[E402\]", err, re.M)
    _stdin(monkeypatch, open(CONV).read())
    code, out, _ = run(capsys, "summary", "-", "--format", "json")
    assert code == 0 and json.loads(out)["layers"][-1]["type"] == "Convolution"
    _stdin(monkeypatch, open(CONV).read())
    code, out, _ = run(capsys, "check", "-")
    assert code == 0 and out.startswith("<stdin>: ok")


def test_internal_error_in_a_real_command_exits_3(capsys, monkeypatch):
    from netdef import commands

    def boom(args):
        raise KeyError("injected")
    monkeypatch.setattr(commands, "cmd_summary", boom)
    code, out, err = run(capsys, "summary", "lenet")
    assert code == 3 and "internal error: KeyError" in err and "Traceback" not in err
    code, out, err = run(capsys, "summary", "lenet", "--format", "json")
    doc = json.loads(out)
    assert code == 3 and doc["exit_code"] == 3 and doc["error"] == "internal error: KeyError: 'injected'"
    # errors in the input stay 1, command-line mistakes 2
    assert run(capsys, "check", "/nonexistent.prototxt")[0] == 1
    assert run(capsys, "check", "lenet", "--color", "sometimes")[0] == 2


# --- JSON from every command ------------------------------------------------------------------

def validate(doc, schema, where="$"):
    """A small JSON-schema subset: type (str or list), properties, required, items, enum,
    minimum. Returns the list of violations."""
    bad = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        py = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
              "integer": int, "number": (int, float)}
        ok = any(isinstance(doc, py[t]) and not (t in ("integer", "number") and isinstance(doc, bool)) for t in types)
        if not ok:
            return [f"{where}: {type(doc).__name__} is not {types}"]
    if "enum" in schema and doc not in schema["enum"]:
        bad.append(f"{where}: {doc!r} not in {schema['enum']}")
    if "minimum" in schema and isinstance(doc, (int, float)) and doc < schema["minimum"]:
        bad.append(f"{where}: {doc} < {schema['minimum']}")
    if isinstance(doc, dict):
        for key in schema.get("required", []):
            if key not in doc:
                bad.append(f"{where}: missing '{key}'")
        for key, sub in schema.get("properties", {}).items():
            if key in doc:
                bad += validate(doc[key], sub, f"{where}.{key}")
    if isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            bad += validate(item, schema["items"], f"{where}[{i}]")
    return bad


INT = {"type": "integer", "minimum": 0}
NUM = {"type": "number"}
SHAPE = {"type": ["array", "null"], "items": INT}
LOCATED = {"file": {"type": "string"}, "line": {"type": "integer", "minimum": 1},
           "col": {"type": "integer", "minimum": 1}, "end_line": {"type": "integer", "minimum": 1},
           "end_col": {"type": "integer", "minimum": 1}}
NOTE = {"type": "object", "required": ["message"], "properties": dict(LOCATED, message={"type": "string"})}
DIAG = {"type": "object", "required": ["code", "severity", "message", "notes"],
        "properties": dict(LOCATED, code={"type": "string"}, severity={"enum": ["error", "warning", "note"]},
                           message={"type": "string"}, notes={"type": "array", "items": NOTE})}


def doc_schema(command, required=(), **properties):
    return {"type": "object", "required": ["schema_version", "command", "diagnostics", *required],
            "properties": dict(schema_version={"enum": [cli.SCHEMA_VERSION]}, command={"enum": [command]},
                               diagnostics={"type": "array", "items": DIAG}, ok={"type": "boolean"}, **properties)}


LAYER = {"type": "object", "required": ["name", "type", "outputs", "output_shapes", "param_count", "param_bytes",
                                        "macs", "flops", "activation_bytes"],
         "properties": {"name": {"type": "string"}, "output_shapes": {"type": "array", "items": SHAPE},
                        "outputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape"],
                                                               "properties": {"shape": SHAPE}}},
                        "param_count": {"type": ["integer", "null"], "minimum": 0}, "param_bytes": INT,
                        "macs": {"type": ["integer", "null"]}, "flops": {"type": ["integer", "null"]},
                        "activation_bytes": {"type": ["integer", "null"]}}}
RF = {"type": "object", "required": ["size", "stride", "center"],
      "properties": {"size": {"type": "array", "items": NUM}, "stride": {"type": "array", "items": NUM}}}

SCHEMAS = {
    "check": doc_schema("check", ["file", "ok", "errors", "warnings", "layers"], errors=INT, warnings=INT, layers=INT),
    "summary": doc_schema("summary", ["layers", "totals", "inputs", "blobs", "units"],
                          layers={"type": "array", "items": LAYER},
                          totals={"type": "object", "required": ["params", "macs", "flops", "param_bytes"],
                                  "properties": {k: INT for k in ("params", "stat_params", "macs", "flops",
                                                                  "activation_bytes", "param_bytes")}}),
    "rf": doc_schema("rf", ["blobs"], blobs={"type": "object"}),
    "sizes": doc_schema("sizes", ["inputs", "declared", "valid"], declared={"type": "array", "items": INT},
                        valid={"type": "object", "required": ["height", "width", "square"],
                               "properties": {m: {"type": "array", "items": {"type": "array", "items": INT}}
                                              for m in ("height", "width", "square")}}),
    "solver": doc_schema("solver", ["file"]),
    "lr": doc_schema("lr", ["points", "change_points", "max_iter"],
                     points={"type": "array", "items": {"type": "object", "required": ["iter", "lr"],
                                                        "properties": {"iter": INT, "lr": NUM}}}),
    "run": doc_schema("run", ["model", "provider", "inputs", "outputs", "latency_s"], latency_s=NUM,
                      outputs={"type": "array", "items": {"type": "object", "required": ["name", "shape", "dtype"],
                                                          "properties": {"shape": {"type": "array", "items": INT}}}}),
    "bench": doc_schema("bench", ["runs", "batch", "mean", "p50", "p90", "p99", "throughput"], runs=INT, batch=INT,
                        mean=NUM, p50=NUM, throughput=NUM),
    "verify": doc_schema("verify", ["ok", "comparisons", "tolerance", "max_error"],
                         comparisons={"type": "array", "items": {"type": "object",
                                                                 "required": ["layer", "top", "shape", "error", "ok"],
                                                                 "properties": {"error": NUM, "shape": SHAPE}}}),
    "list": doc_schema("list", ["nets", "solvers"], nets={"type": "array", "items": {
        "type": "object", "required": ["name", "path", "description"]}}),
    "export": doc_schema("export", ["wrote", "bytes", "opset", "nodes"], bytes=INT, nodes=INT),
    "init": doc_schema("init", ["wrote", "bytes", "values"], bytes=INT, values=INT),
    "draw": doc_schema("draw", ["wrote", "format", "layers", "layers_in_error"], layers=INT),
    "fmt": doc_schema("fmt", ["file", "text", "wrote"], text={"type": ["string", "null"]}),
    "upgrade": doc_schema("upgrade", ["file", "text", "wrote"], text={"type": ["string", "null"]}),
}


@pytest.mark.parametrize("command,argv", [
    ("check", ["check", "lenet"]),
    ("summary", ["summary", "lenet"]),
    ("rf", ["rf", "lenet"]),
    ("sizes", ["sizes", "lenet", "--range", "20:40"]),
    ("solver", ["solver", "lenet_solver"]),
    ("lr", ["lr", "lenet_solver", "--iters", "0:30:10"]),
    ("run", ["run", "lenet", "--top", "2"]),
    ("bench", ["bench", CONV, "--runs", "2", "--warmup", "0"]),
    ("verify", ["verify", CONV]),
    ("list", ["list"]),
    ("export", ["export", CONV, "-o", "{tmp}/m.onnx"]),
    ("init", ["init", CONV, "-o", "{tmp}/w.caffemodel"]),
    ("draw", ["draw", CONV, "-o", "{tmp}/d.dot"]),
    ("fmt", ["fmt", CONV]),
    ("upgrade", ["upgrade", str(ZOO / "bvlc_v1_format" / "lenet.prototxt")]),
])
def test_json_of_every_command_follows_its_schema(capsys, tmp_path, command, argv):
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc)[:2] == ["schema_version", "command"]
    bad = validate(doc, SCHEMAS[command])
    assert not bad, bad
    assert "warning[" not in err and "error[" not in err  # diagnostics are in the document


def test_fmt_json_holds_the_text(capsys, tmp_path):
    code, text, _ = run(capsys, "fmt", CONV)
    code, out, _ = run(capsys, "fmt", CONV, "--format", "json")
    assert code == 0 and json.loads(out)["text"] == text
    target = tmp_path / "up.prototxt"
    code, out, _ = run(capsys, "upgrade", ZOO / "bvlc_v1_format" / "lenet.prototxt", "-o", target, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["wrote"] == str(target) and doc["text"] is None
    assert target.read_text().startswith('name: "LeNet"\nlayer {')


def test_json_numbers_not_prose(capsys):
    doc = json.loads(run(capsys, "summary", "lenet", "--format", "json")[1])
    conv1 = next(layer for layer in doc["layers"] if layer["name"] == "conv1")
    assert conv1["output_shapes"] == [[100, 20, 24, 24]] and conv1["outputs"][0]["name"] == "conv1"
    assert conv1["param_count"] == 20 * 25 + 20 and conv1["param_bytes"] == 4 * 520
    assert conv1["macs"] == 100 * 20 * 24 * 24 * 25
    assert conv1["rf"]["size"] == [5, 5]


def test_json_diagnostics_carry_start_end_and_located_notes(capsys, tmp_path):
    p = tmp_path / "dup.prototxt"
    # a non-repeated field given twice: the diagnostic has a second place, the first definition
    p.write_text('name: "a"\nname: "b"\nlayer { name: "r" type: "ReLU" bottom: "nothing" top: "r" }\n')
    code, out, _ = run(capsys, "check", p, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and not validate(doc, SCHEMAS["check"])
    dup = next(d for d in doc["diagnostics"] if d["code"] == "E206")
    assert (dup["line"], dup["col"], dup["end_line"]) == (2, 1, 2) and dup["end_col"] > dup["col"]
    located = [n for n in dup["notes"] if "line" in n]
    assert located and located[0]["line"] == 1 and located[0]["end_col"] > located[0]["col"]
    bottom = next(d for d in doc["diagnostics"] if d["code"] == "E301")
    # the span is the quoted blob name: columns of '"nothing"' on line 3
    line3 = p.read_text().splitlines()[2]
    assert bottom["col"] == line3.index('"nothing"') + 1 and bottom["end_col"] == bottom["col"] + len('"nothing"')


def test_json_failure_is_still_one_document(capsys, tmp_path):
    code, out, err = run(capsys, "summary", "/nonexistent.prototxt", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["diagnostics"][0]["code"] == "E100" and err == ""
    code, out, err = run(capsys, "export", "lenet", "-o", tmp_path / "missing" / "x.onnx", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and "does not exist" in doc["error"]


# --- check for CI systems ---------------------------------------------------------------------

def test_check_github_annotations(capsys, tmp_path):
    p = tmp_path / "a,b.prototxt"  # a comma in the path must be escaped in a property
    p.write_text(BROKEN)
    code, out, _ = run(capsys, "check", p, "--format", "github")
    lines = out.splitlines()
    assert code == 1 and len(lines) == 1
    m = re.fullmatch(r"::error file=([^,]*),line=(\d+),col=(\d+),endLine=(\d+),endColumn=(\d+),title=(E\d+)::(.*)",
                     lines[0])
    assert m, lines[0]
    assert m.group(1) == str(p).replace(",", "%2C") and m.group(2) == "4" and m.group(6) == "E402"
    assert "%0Anote: the input is too small" in m.group(7) and "\n" not in m.group(7)
    w = tmp_path / "w.prototxt"
    w.write_text(WARNS)
    code, out, _ = run(capsys, "check", w, "--format", "github")
    assert code == 0 and out.startswith("::warning file=") and "title=W311" in out


def test_check_sarif(capsys, broken, tmp_path):
    target = tmp_path / "report.sarif"
    code, out, _ = run(capsys, "check", broken, "--format", "sarif", "-o", target)
    assert code == 1 and out == ""
    log = json.loads(target.read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    run0 = log["runs"][0]
    assert run0["tool"]["driver"]["name"] == "netdef"
    assert [r["id"] for r in run0["tool"]["driver"]["rules"]] == ["E402"]
    (result,) = run0["results"]
    assert result["ruleId"] == "E402" and result["level"] == "error" and result["ruleIndex"] == 0
    region = result["locations"][0]["physicalLocation"]["region"]
    text = broken.read_text().splitlines()[3]
    assert region["startLine"] == 4 and region["startColumn"] == text.index("30") + 1
    assert region["endLine"] == 4 and region["endColumn"] == region["startColumn"] + 2  # exclusive
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("broken.prototxt")


# --- summary ----------------------------------------------------------------------------------

def test_summary_fits_the_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: os.terminal_size((90, 40)))
    code, out, _ = run(capsys, "summary", "googlenet")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 90
    assert "left out to fit 90 columns" in out and "units: rf = receptive field" in out
    header = next(line for line in out.splitlines() if line.startswith("layer "))
    assert "macs" in header and "params" in header and "bottoms -> tops" not in header
    # --wide: every column, whatever the terminal
    code, wide, _ = run(capsys, "summary", "googlenet", "--wide")
    assert "bottoms -> tops" in wide and "param mem" in wide and max(len(x) for x in wide.splitlines()) > 90


def test_summary_not_a_terminal_is_full_width(capsys):
    code, out, _ = run(capsys, "summary", "googlenet")
    header = next(line for line in out.splitlines() if line.startswith("layer "))
    assert "bottoms -> tops" in header and "param mem" in header
    concat = next(line for line in out.splitlines() if line.startswith("inception_3a/output "))
    assert "inception_3a/1x1, inception_3a/3x3, inception_3a/5x5, inception_3a/pool_proj" in concat


def test_summary_param_memory_column_and_csv_without_totals(capsys):
    code, out, _ = run(capsys, "summary", "lenet")
    ip1 = next(line for line in out.splitlines() if line.startswith("ip1 "))
    assert "400,500" in ip1 and "1.5 MiB" in ip1  # 400,500 x 4 bytes
    code, out, _ = run(capsys, "summary", "lenet", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["layer"] for r in rows][-1] == "loss" and "TOTAL" not in out


# --- weights ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_weights(tmp_path_factory):
    """Weights of another net (GoogLeNet's fillers: no layer name in common with LeNet) and
    weights of LeNet with conv1 widened."""
    d = tmp_path_factory.mktemp("w")
    assert cli.main(["-q", "init", "googlenet", "-o", str(d / "other.caffemodel")]) == 0
    wide = d / "lenet_wide.prototxt"
    from conftest import LIBRARY_NETS
    wide.write_text((LIBRARY_NETS / "lenet.prototxt").read_text().replace("num_output: 20", "num_output: 21", 1))
    assert cli.main(["-q", "init", str(wide), "-o", str(d / "wide.caffemodel")]) == 0
    return d


@pytest.mark.parametrize("command", [["verify"], ["run"], ["export", "-o", "{tmp}/x.onnx"]])
def test_weights_of_another_net_are_refused(capsys, tmp_path, other_weights, command):
    argv = [command[0], "lenet", "--weights", other_weights / "other.caffemodel"] + \
        [a.format(tmp=tmp_path) for a in command[1:]]
    code, out, err = run(capsys, *argv)
    assert code == 1 and "error[E505]: layer 'conv1' has parameters" in err
    assert "weights of another net" in err and "--allow-missing-weights" in err
    assert not (tmp_path / "x.onnx").exists()
    code, out, err = run(capsys, *argv, "--allow-missing-weights")
    assert code == 0 and "warning[W505]" in err


def test_weights_of_the_wrong_shape_are_refused(capsys, other_weights):
    code, _, err = run(capsys, "verify", "lenet", "--weights", other_weights / "wide.caffemodel",
                       "--allow-missing-weights")
    assert code == 1 and "error[E504]" in err and "conv1" in err


# --- draw -------------------------------------------------------------------------------------

def test_draw_of_a_broken_net_leaves_no_file(capsys, broken, tmp_path):
    target = tmp_path / "net.svg"
    code, out, err = run(capsys, "draw", broken, "-o", target)
    assert code == 1 and not target.exists() and "not written" in err and "--force" in err
    assert not list(tmp_path.glob(".netdef-*"))
    target.write_text("previous")
    assert run(capsys, "draw", broken, "-o", target)[0] == 1 and target.read_text() == "previous"


def test_forced_draw_outlines_the_layers_in_error(capsys, broken, tmp_path):
    target = tmp_path / "net.dot"
    code, out, err = run(capsys, "draw", broken, "-o", target, "--force")
    assert code == 1 and out.startswith(f"wrote {target}") and "1 layer(s) in error" in out
    text = target.read_text()
    big = text[text.index("<B>big</B>") - 300:text.index("<B>big</B>")]
    ok = text[text.index("<B>ok</B>") - 300:text.index("<B>ok</B>")]
    assert 'COLOR="#cc0000"' in big and "(error)" in text and 'COLOR="#cc0000"' not in ok
    code, out, _ = run(capsys, "draw", broken, "-o", target, "--force", "--format", "json")
    doc = json.loads(out)
    assert doc["layers_in_error"] == ["big"] and doc["wrote"] == str(target) and doc["ok"] is False


# --- the exported model -----------------------------------------------------------------------

def test_exported_model_has_value_info_and_metadata(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    target = tmp_path / "lenet.onnx"
    assert run(capsys, "export", "lenet", "-o", target, "--batch", "dynamic")[0] == 0
    m = onnx.load(str(target))
    onnx.checker.check_model(m, full_check=True)  # value_info agrees with ONNX's own inference
    info = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in m.graph.value_info}
    assert info["conv1"] == ["batch", 20, 24, 24] and info["pool1"] == ["batch", 20, 12, 12]
    assert info["conv2"] == ["batch", 50, 8, 8] and info["pool2"] == ["batch", 50, 4, 4]
    assert info["ip1"] == ["batch", 500]
    assert "data" not in info and "ip2" not in info  # graph inputs and outputs have their own entries
    meta = {p.key: p.value for p in m.metadata_props}
    from netdef import __version__
    assert meta["netdef.version"] == __version__ and meta["netdef.source"].endswith("lenet.prototxt")
    assert meta["caffe.net"] == "LeNet" and meta["caffe.phase"] == "TEST"
    assert json.loads(meta["caffe.inputs"]) == [{"name": "data", "shape": ["batch", 1, 28, 28]}]
    # lenet.prototxt: transform_param { scale: 0.00390625 } on its data layer
    assert json.loads(meta["caffe.transform_param"]) == {"mnist": {"scale": 0.00390625, "tops": ["data", "label"]}}


def test_exported_metadata_carries_mean_and_crop(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    target = tmp_path / "alexnet.onnx"
    assert run(capsys, "export", "alexnet", "-o", target, "--batch", "1")[0] == 0
    m = onnx.load(str(target), load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    tp = json.loads(meta["caffe.transform_param"])
    (layer,) = tp.values()
    from conftest import LIBRARY_NETS
    text = (LIBRARY_NETS / "alexnet.prototxt").read_text()
    block = text[text.index("phase: TEST"):]
    block = block[block.index("transform_param"):]
    block = block[:block.index("}")]
    assert layer["crop_size"] == int(re.search(r"crop_size: (\d+)", block).group(1)) == 227
    assert layer["mean_value"] == [float(v) for v in re.findall(r"mean_value: ([\d.]+)", block)] == [104, 117, 123]
    assert layer["mirror"] is False and layer["scale"] == 1.0
