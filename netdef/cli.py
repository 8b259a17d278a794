"""The `netdef` command line.

Exit codes: 0 success, 1 the input has errors (or an output could not be written), 2 the
command line is wrong, 3 an internal error (a bug in netdef). No traceback reaches the user
unless --debug is given.

Conventions every command shares: --format text|json (tables also table|csv|markdown; check
also github|sarif), -o where it writes, -W show|hide|error, and the global options --debug,
--max-errors, --max-file-size, --color and -q/--quiet, accepted before or after the command.

Each subcommand's arguments are declared here; its work is done by a `cmd_*` function in the
module that owns the feature (named in COMMANDS), which returns an exit code and raises
DiagnosticError / CliError / UsageError for failures.
"""
from __future__ import annotations

import argparse
import errno
import contextlib
import importlib
import json
import os
import signal
import sys

from .diagnostics import CliError, Diagnostic, DiagnosticError, UsageError
from .source import SourceError

# subcommand -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("netdef.commands", "cmd_check", "parse and analyse a definition; print its diagnostics"),
    "summary": ("netdef.commands", "cmd_summary", "one row per layer: shapes, receptive field, params, MACs, memory"),
    "rf": ("netdef.commands", "cmd_rf", "receptive field, stride and centre of every blob"),
    "sizes": ("netdef.commands", "cmd_sizes", "input sizes for which the whole net is valid"),
    "fmt": ("netdef.fmt", "cmd_fmt", "print a definition in canonical form"),
    "upgrade": ("netdef.upgrade", "cmd_upgrade", "upgrade a V0/V1 net or an old solver to the current format"),
    "draw": ("netdef.draw", "cmd_draw", "draw the network with graphviz"),
    "export": ("netdef.export.onnx", "cmd_export", "export to ONNX"),
    "init": ("netdef.weights", "cmd_init", "write filler-initialised weights as a .caffemodel"),
    "run": ("netdef.export.runtime", "cmd_run", "run a model with onnxruntime"),
    "bench": ("netdef.export.runtime", "cmd_bench", "latency and throughput with onnxruntime"),
    "verify": ("netdef.export.verify", "cmd_verify", "compare onnxruntime with an independent NumPy forward pass"),
    "solver": ("netdef.solver", "cmd_solver", "check and summarise a solver definition"),
    "lr": ("netdef.solver", "cmd_lr", "the learning rate at each iteration, as Caffe computes it"),
    "list": ("netdef.library", "cmd_list", "the bundled library of networks and solvers"),
    "lsp": ("netdef.lsp", "cmd_lsp", "a language server for editors (LSP over standard input and output)"),
    "view": ("netdef.view", "cmd_view", "one self-contained interactive HTML page of a net or solver"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


SCHEMA_VERSION = 1  # of every command's --format json output; raised when a field changes meaning

# Formats a command takes: text and json everywhere, tables where it prints one.
TABLE_FORMATS = ["text", "table", "json", "csv", "markdown"]

# The state of one run, set by main() from the global options and restored after it.
color = False          # ANSI colours on diagnostics (--color, NO_COLOR, FORCE_COLOR)
quiet = False          # -q: diagnostics and results only
warnings_mode = "show"  # -W
json_mode = False      # --format json: diagnostics are gathered for the JSON document
collected: list = []   # the diagnostics gathered in json_mode


def _global_options(p: argparse.ArgumentParser, top: bool) -> None:
    """Options accepted before and after the subcommand. On the subcommands their default is
    SUPPRESS, so that a value given before the subcommand is not reset by the subparser."""
    d = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    g = p.add_argument_group("global options (before or after the command)")
    g.add_argument("--debug", action="store_true", default=d(False), help="show Python tracebacks for internal errors")
    g.add_argument("--max-errors", type=int, default=d(100), metavar="N",
                   help="stop reporting after this many diagnostics (default 100)")
    g.add_argument("--max-file-size", type=_megabytes, default=d(None), metavar="MB",
                   help=f"refuse definitions larger than this (default {_default_max_mb()} MB)")
    g.add_argument("--color", "--colour", choices=["auto", "always", "never"], default=d("auto"),
                   help="colour diagnostics: auto (on a terminal, unless NO_COLOR is set or FORCE_COLOR "
                        "forces it), always, never")
    g.add_argument("-q", "--quiet", action="store_true", default=d(False),
                   help="print only diagnostics and results: no progress, no notes, no 'wrote' lines")


def _warnings_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-W", "--warnings", choices=["show", "hide", "error"], default="show",
                   help="show warnings, hide them, or treat them as errors (exit 1)")


def _format_option(p: argparse.ArgumentParser, choices=("text", "json"), default="text", what="") -> None:
    p.add_argument("--format", choices=list(choices), default=default,
                   help=f"output format (default {default}){what}; json carries schema_version "
                        f"{SCHEMA_VERSION}")


def _net_options(p: argparse.ArgumentParser, phase_default: str = "TEST") -> None:
    g = p.add_argument_group("network state")
    g.add_argument("--phase", choices=["TRAIN", "TEST"], default=phase_default, type=str.upper,
                   help=f"the phase whose layers are included (default {phase_default})")
    g.add_argument("--stage", action="append", default=[], metavar="NAME", help="a NetState stage (repeatable)")
    g.add_argument("--level", type=int, default=0, help="the NetState level (default 0)")
    g.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=N,C,H,W",
                   help="the shape of an input blob whose shape the definition does not fix (repeatable)")


def _file(p: argparse.ArgumentParser, what: str = "a network definition (.prototxt) or a bundled net's name") -> None:
    p.add_argument("file", help=what + "; '-' reads standard input")


def _allow_missing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-missing-weights", action="store_true",
                   help="with --weights: use fillers for layers the file has no weights for "
                        "(an error otherwise)")


class _Unbuilt:
    """Stands for a subcommand's parser that is not built: declaring options on it does nothing."""

    def _ignore(self, *args, **kwargs):
        return self

    def __getattr__(self, name):  # add_argument, add_argument_group, set_defaults, ...
        return self._ignore


def _command_in(argv) -> str | None:
    """The subcommand named on a command line (the first word that is one, skipping the
    values of the global options that take one); None when there is none."""
    takes_value = {"--max-errors", "--max-file-size", "--color", "--colour"}
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in takes_value:
            skip = True
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line's parser; with `only`, the other subcommands are declared
    without their options (building all of them is a third of a short command's start-up)."""
    parser = _Parser(prog="netdef", description="A compiler for Caffe network and solver definitions.",
                     epilog="Exit codes: 0 success, 1 the input has errors (or an output could not be written), "
                            "2 the command line is wrong, 3 internal error (a bug in netdef).")
    parser.add_argument("--version", action="version", version=f"netdef {_version()}",
                        help="print netdef's version and exit")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                help="one of the commands below ('netdef COMMAND --help' for its options)")

    def add(name):
        p = sub.add_parser(name, help=COMMANDS[name][2], description=COMMANDS[name][2])
        if only is not None and name != only:
            return _Unbuilt()
        _global_options(p, top=False)
        if name != "list":
            _warnings_option(p)
        return p

    p = add("check")
    _file(p)
    _net_options(p)
    _format_option(p, ["text", "json", "github", "sarif"],
                   what="; github: workflow commands that annotate the lines, sarif: SARIF 2.1.0")
    p.add_argument("-o", "--output", help="write the report here instead of standard output")

    p = add("summary")
    _file(p)
    _net_options(p)
    _format_option(p, TABLE_FORMATS, what="; text and table are the same")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.add_argument("--wide", action="store_true",
                   help="every column at full width, even when the table is wider than the terminal")

    p = add("rf")
    _file(p)
    _net_options(p)
    _format_option(p, TABLE_FORMATS, what="; text and table are the same")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")

    p = add("sizes")
    p.description = (
        "The input heights and widths for which the whole net is valid: every layer sets up (Concat, Eltwise "
        "and Crop line up, no window is larger than its input) and layers with size-dependent parameters "
        "(InnerProduct) keep their shapes. The inputs the net's layers compute on are varied together (those "
        "declared at the first one's size; others are held at theirs). Inputs read only by loss and Accuracy "
        "layers, such as label maps, are derived: not varied, since their size must follow the prediction's, "
        "and the layers comparing them are not checked.")
    _file(p)
    _net_options(p)
    p.add_argument("--range", default="1:1024", metavar="MIN:MAX", help="input heights/widths to try (default 1:1024)")
    _format_option(p)
    p.add_argument("-o", "--output", help="write to this file instead of standard output")

    p = add("fmt")
    _file(p, "a network or solver definition")
    p.add_argument("more", nargs="*", metavar="FILE", help="more definitions (with --check or --diff)")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    p.add_argument("--check", action="store_true", help="write nothing; list the files that would change, exit 1 if any")
    p.add_argument("--diff", action="store_true", help="write nothing; show the changes as a unified diff, exit 1 if any")
    _format_option(p, what="; json: the text in a document")

    p = add("upgrade")
    _file(p, "a V0/V1 network definition or an old solver")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    _format_option(p, what="; json: the text in a document")

    p = add("draw")
    _file(p)
    _net_options(p)
    p.add_argument("-o", "--output", required=True, help="OUT.svg, .png, .pdf or .dot")
    p.add_argument("--rankdir", choices=["TB", "LR", "BT", "RL"], default="TB", type=str.upper,
                   help="direction of the layout: top to bottom (default), left to right, ...")
    p.add_argument("--shapes", action=argparse.BooleanOptionalAction, default=True, help="label edges with blob shapes")
    p.add_argument("--rf", action="store_true", help="show each blob's receptive field")
    p.add_argument("--params", action="store_true", help="show parameter counts per layer")
    p.add_argument("--collapse", metavar="PREFIX|auto", action="append", default=[],
                   help="group layers whose names share a prefix into clusters ('auto' finds repeated blocks)")
    p.add_argument("--force", action="store_true",
                   help="draw a net with errors too (its layers in error outlined in red); without it "
                        "nothing is written")
    _format_option(p, what=" of the report")

    p = add("export")
    _file(p)
    _net_options(p)
    p.add_argument("--weights", help="trained weights (.caffemodel); fillers are used without it")
    _allow_missing(p)
    p.add_argument("-o", "--output", required=True, help="OUT.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 13 to 21 (default 17)")
    p.add_argument("--batch", default=None, help="a batch size N, or 'dynamic'")
    p.add_argument("--fp16", action="store_true", help="store weights and compute in float16 (inputs and outputs stay float32)")
    p.add_argument("--fp16-io", action="store_true", help="with --fp16: float16 inputs and outputs too")
    p.add_argument("--no-fold", dest="fold", action="store_false", help="keep BatchNorm/Scale as separate nodes")
    p.add_argument("--seed", type=_seed, default=0, help="seed for filler initialisation without --weights")
    p.add_argument("--outputs", action="append", default=[], metavar="BLOB[,BLOB...]",
                   help="export only the layers that compute these blobs, which become the model's outputs")
    p.add_argument("--custom-ops", action="store_true",
                   help="export layers ONNX cannot express (Python layers, fork ops) as nodes of the custom "
                        "domain 'netdef.caffe' carrying their parameters, for runtime plugins")
    _format_option(p, what=" of the report")

    p = add("init")
    p.description = (
        "Weights for a net as a freshly constructed Caffe net would have them, each blob from its layer's "
        "filler (the values are drawn from NumPy's generator, seeded by --seed and the layer's name: Caffe's "
        "distributions, not Caffe's numbers), written as a .caffemodel Caffe loads. One difference: BatchNorm's "
        "statistics, which Caffe zero-fills (making every BatchNorm divide by sqrt(eps) and deep nets overflow to "
        "NaN), start neutral: mean 0, variance 1, moving-average factor 1. Export without --weights uses the same "
        "values.")
    _file(p)
    _net_options(p)
    p.add_argument("-o", "--output", required=True, help="OUT.caffemodel")
    p.add_argument("--seed", type=_seed, default=0, help="seed for the fillers (default 0)")
    _format_option(p, what=" of the report")

    for name in ("run", "bench"):
        p = add(name)
        _file(p, "an .onnx model, or a network definition to export first")
        _net_options(p)
        p.add_argument("--weights", help="trained weights for a network definition")
        _allow_missing(p)
        p.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="auto",
                       help="onnxruntime execution provider (default auto: CUDA when usable, else the CPU)")
        p.add_argument("--seed", type=_seed, default=0, help="seed for random inputs and filler weights (default 0)")
        _format_option(p)
        if name == "run":
            p.add_argument("--input-file", dest="input_files", action="append", default=[], metavar="NAME=FILE.npy",
                           help="feed this array to an input (random data otherwise)")
            p.add_argument("--top", type=int, default=5, help="top-k classes to print for classifier outputs")
            p.add_argument("--labels", metavar="FILE", help="class names for top-k, one per line (line k: class k)")
        else:
            p.add_argument("--batch", type=int, default=None, help="batch size of the random inputs")
            p.add_argument("--runs", type=int, default=50, help="at most this many timed runs (default 50)")
            p.add_argument("--duration", type=float, default=10.0, metavar="SECONDS",
                           help="stop the warm-up, and the timed runs, after this long (default 10; "
                                "at least one timed run)")
            p.add_argument("--warmup", type=int, default=5, help="untimed runs first, reported apart (default 5)")
            p.add_argument("--threads", type=int, default=None, metavar="N",
                           help="onnxruntime's intra-op threads (default: its own choice)")

    p = add("verify")
    _file(p)
    _net_options(p)
    p.add_argument("--weights", help="trained weights (.caffemodel); fillers are used without it")
    _allow_missing(p)
    p.add_argument("--input-file", dest="input_files", action="append", default=[], metavar="NAME=FILE.npy",
                   help="feed this array to an input (random data otherwise)")
    p.add_argument("--batch", type=int, default=None,
                   help="samples per input (default 1; the net's declared batch when --input-file is given)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest max|a-b| / max(1, max|b|) accepted per blob (default 1e-4)")
    p.add_argument("--seed", type=_seed, default=0, help="seed for random inputs and filler weights (default 0)")
    p.add_argument("--no-fold", dest="fold", action="store_false",
                   help="keep BatchNorm/Scale as separate nodes, so that their outputs are compared too")
    p.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="cpu",
                   help="onnxruntime execution provider (default cpu)")
    _format_option(p)

    p = add("solver")
    _file(p, "a solver definition or a bundled solver's name")
    p.add_argument("--dataset-size", type=int, default=None, help="training set size, for epochs")
    _format_option(p)
    p.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=N,C,H,W",
                   help="the shape of a net input the definition does not fix, e.g. a Data layer's "
                        "(needed for the parameter table; repeatable)")

    p = add("lr")
    _file(p, "a solver definition or a bundled solver's name")
    p.add_argument("--iters", default=None, metavar="START:STOP[:STEP]",
                   help="every iteration in this range (default: the change points and a sample of 0:max_iter)")
    p.add_argument("--all", action="store_true", help="every iteration from 0 to max_iter")
    _format_option(p, ["text", "tsv", "json"], what="; text and tsv are the same")
    p.add_argument("--plot", metavar="OUT.svg|png|pdf", help="also draw the schedule (with matplotlib)")
    p.add_argument("--log", action="store_true", help="with --plot: a logarithmic learning-rate axis")

    p = add("list")
    _format_option(p)

    add("lsp")

    p = add("view")
    _file(p, "a network or solver definition, or a bundled name")
    _net_options(p)
    p.add_argument("-o", "--output", required=True, help="OUT.html")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    _format_option(p, what=" of the report")
    return parser


def _seed(text: str) -> int:
    # numpy's SeedSequence takes non-negative integers only (-1 was an internal error).
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**64:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 2^64 - 1, got '{text}'")
    return seed


def _megabytes(text: str) -> int:
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not 0 < mb <= 1 << 20:
        raise argparse.ArgumentTypeError(f"expected a size in MB (a positive number), got '{text}'")
    return int(mb * 2**20)


def _default_max_mb() -> str:
    from . import source
    return f"{source.MAX_SOURCE_BYTES / 2**20:g}"


def _version() -> str:
    from . import __version__
    return __version__


def use_color(choice: str = "auto", stream=None) -> bool:
    """--color: never, always, or auto: NO_COLOR (set and not empty) turns colour off,
    FORCE_COLOR (set, not empty and not 0) turns it on, and otherwise the stream must be a
    terminal (https://no-color.org; pytest and Node read FORCE_COLOR the same way)."""
    if choice == "never":
        return False
    if choice == "always":
        return True
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force and force.lower() not in ("0", "false", "no"):
        return True
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def print_diagnostics(diags, stream=None, warnings: str | None = None) -> tuple[int, int]:
    """Render diagnostics to stderr (in colour when the run has it; gathered for the JSON
    document instead with --format json); returns (errors, warnings) counted. Warnings follow
    -W: hidden with -W hide, counted for the exit code with -W error."""
    stream = stream or sys.stderr
    explicit = warnings is not None
    warnings = warnings or warnings_mode
    n_err = n_warn = 0
    for d in diags:
        if d.severity == "warning":
            n_warn += 1
            if warnings == "hide":
                continue
        elif d.is_error:
            n_err += 1
        if json_mode:
            collected.append(d)
        else:
            stream.write(d.render(color=color) + "\n")
    dropped = getattr(diags, "dropped", 0)
    if dropped:
        note("note: {dropped} more diagnostics not shown (--max-errors)".format(dropped=dropped), stream)
    if n_warn and warnings == "error" and not explicit:
        # Stop here, before the command writes anything: -W error makes a warning fatal.
        raise WarningsAsErrors(n_warn)
    return n_err, n_warn


class WarningsAsErrors(Exception):
    """-W error and a warning was shown: the run fails (exit 1) before writing its output."""


def note(text: str, stream=None) -> None:
    """An informational line on stderr, which -q silences."""
    if not quiet:
        (stream or sys.stderr).write(text.rstrip("\n") + "\n")


def info(text: str) -> None:
    """An informational line on standard output ('wrote X', 'ok'), which -q and --format json
    silence."""
    if not quiet and not json_mode:
        sys.stdout.write(text.rstrip("\n") + "\n")


def emit_json(args, doc: dict, path: str | None = None) -> None:
    """Print (or write to `path`) one command's JSON document: schema_version and command
    first, then the document, then the diagnostics the run printed (with --format json,
    print_diagnostics gathers them instead of writing them to stderr)."""
    out = {"schema_version": SCHEMA_VERSION, "command": args.command}
    out.update(doc)
    if "diagnostics" not in doc:
        out["diagnostics"] = [d.to_json() for d in collected]
    text = json.dumps(_finite(out), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if path:
        from .outputs import write_atomic
        write_atomic(path, text)
    else:
        sys.stdout.write(text)


def render_ci(fmt: str, diags) -> str:
    """Diagnostics as GitHub workflow commands or as a SARIF 2.1.0 log."""
    from .diagnostics import github_annotation, sarif_log
    if fmt == "github":
        return "".join(github_annotation(d) + "\n" for d in diags)
    return json.dumps(sarif_log(diags, _version()), indent=2, ensure_ascii=False) + "\n"


def _finite(obj):
    """NaN and infinities are not JSON: they become null."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _failure_json(args, diags=(), error: str | None = None, code: int = 1) -> None:
    """With --format json, a failed run still prints one JSON document (check's github and
    sarif formats: their own form of the diagnostics)."""
    all_diags = list(collected) + [d for d in diags if d not in collected]
    if getattr(args, "format", None) in ("github", "sarif"):
        sys.stdout.write(render_ci(args.format, all_diags))
        return
    doc = {"ok": False, "exit_code": code}
    if error is not None:
        doc["error"] = error
    doc["diagnostics"] = [d.to_json() for d in all_diags]
    emit_json(args, doc)


class _Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the program is, so that a half-written output's
    temporary file is removed on the way out (netdef.outputs)."""


def _terminate(signum, frame):
    from . import outputs
    name = signal.Signals(signum).name
    # Recorded as well as raised: an exception raised while a C extension module initialises
    # (numpy.random is imported lazily) can be swallowed, and the rename must still not happen.
    outputs.interrupted = name
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise _Terminated(name)


def _catch_termination() -> dict:
    from . import outputs
    outputs.interrupted = None
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        try:
            if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
                continue  # ignored (a background job) or handled by whoever called main()
            previous[sig] = signal.signal(sig, _terminate)
        except (TypeError, ValueError, OSError):  # not the main thread, or not POSIX
            pass
    return previous


def _stopped_by(name: str) -> str:
    return "netdef: interrupted\n" if name == "SIGINT" else f"netdef: terminated by {name}\n"


def _interrupted() -> str | None:
    from . import outputs
    return outputs.interrupted


_PRINTS_TEXT = {"fmt", "upgrade"}  # commands whose result is a definition's text


def _text_as_json(handler, args) -> int:
    """fmt and upgrade with --format json: what they print, in a document."""
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = int(handler(args) or 0)
    output = getattr(args, "output", None)
    emit_json(args, {"ok": code == 0, "file": "<stdin>" if args.file == "-" else args.file,
                     "wrote": output if output and code == 0 else None,
                     "text": buf.getvalue() if not output else None})
    return code


def _set_state(**values) -> dict:
    """Set this module's run state (and netdef.progress.quiet); returns the previous values."""
    from . import progress
    g = globals()
    before = {k: g[k] for k in values if k != "progress_quiet"}
    before["progress_quiet"] = progress.quiet
    for k, v in values.items():
        if k == "progress_quiet":
            progress.quiet = v
        else:
            g[k] = v
    return before


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `netdef summary x | head` ends quietly
    except (AttributeError, ValueError):
        pass
    previous = _catch_termination()
    saved_state = _set_state(color=False, quiet=False, warnings_mode="show", json_mode=False, collected=[],
                             progress_quiet=False)
    args = None
    try:
        parser = build_parser(_command_in(argv))
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return 2
        debug = args.debug
        _set_state(color=use_color(args.color), quiet=args.quiet, warnings_mode=getattr(args, "warnings", "show"),
                   json_mode=getattr(args, "format", None) in ("json", "sarif", "github"))
        if args.quiet:
            _set_state(progress_quiet=True)
        module, func, _ = COMMANDS[args.command]
        handler = getattr(importlib.import_module(module), func)
        from . import source
        saved = source.MAX_SOURCE_BYTES
        if args.max_file_size is not None:
            source.MAX_SOURCE_BYTES = args.max_file_size
        try:
            if json_mode and args.command in _PRINTS_TEXT:
                code = _text_as_json(handler, args)
            else:
                code = int(handler(args) or 0)
        finally:
            source.MAX_SOURCE_BYTES = saved
        if _interrupted():  # a signal whose exception a library swallowed
            sys.stderr.write(_stopped_by(_interrupted()))
            return 1
        return code
    except UsageError as e:
        sys.stderr.write(f"{e}\nTry 'netdef --help'.\n")
        return 2
    except WarningsAsErrors as e:
        if json_mode and args is not None:
            _failure_json(args)
        sys.stderr.write(f"netdef {args.command}: {e.args[0]} warning(s) treated as errors (-W error)\n")
        return 1
    except DiagnosticError as e:
        if json_mode and args is not None:
            _failure_json(args, e.diagnostics)
        else:
            print_diagnostics(e.diagnostics)
        if e.dropped:
            note(f"note: {e.dropped} more diagnostics not shown (--max-errors)")
        return 1
    except SourceError as e:
        if json_mode and args is not None:
            _failure_json(args, [e.diagnostic()])
        else:
            print_diagnostics([e.diagnostic()])
        return 1
    except CliError as e:
        if json_mode and args is not None:
            _failure_json(args, error=str(e))
        label = "\x1b[1;31merror\x1b[0m" if color else "error"
        sys.stderr.write(f"netdef: {label}: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(_stopped_by(_interrupted() or "SIGINT"))
        return 1
    except _Terminated as e:
        sys.stderr.write(_stopped_by(e.args[0]))
        return 1
    except RecursionError:
        if debug:
            raise
        sys.stderr.write("netdef: error: the input is nested too deeply to process\n")
        return 1
    except MemoryError:
        if debug:
            raise
        sys.stderr.write("netdef: error: out of memory\n")
        return 1
    except SystemExit as e:  # argparse's --help / --version
        return int(e.code or 0) if isinstance(e.code, int) else 0
    except OSError as e:
        # Standard output that cannot take the result (a full disk, /dev/full, a closed pipe) is
        # "an output could not be written" (exit 1), not a bug in netdef.
        if debug:
            raise
        if e.errno not in _WRITE_ERRNOS:
            return _internal_error(e, json_mode, args)
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"netdef: error: cannot write the output: {e.strerror or e}\n")
        return 1
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        return _internal_error(e, json_mode, args)
    finally:
        _set_state(**saved_state)
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError, OSError):
                signal.signal(sig, handler)


_WRITE_ERRNOS = {errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EDQUOT, errno.EFBIG}


def _internal_error(e: BaseException, json_mode: bool, args) -> int:
    # Exit 3, not 1: a script must be able to tell "the input has errors" from "netdef broke".
    if json_mode and args is not None:
        with contextlib.suppress(Exception):
            _failure_json(args, error=f"internal error: {type(e).__name__}: {e}", code=3)
    sys.stderr.write(f"netdef: internal error: {type(e).__name__}: {e}\n"
                     "This is a bug in netdef; run with --debug for the traceback and report it.\n")
    return 3


def entry() -> None:
    """The `netdef` program (console script and `python -m netdef`): main(), then an exit that
    skips freeing every object one by one. After `fmt` of a large file that teardown took a
    quarter of the run (a parse leaves a million small objects); mypy exits the same way.
    Standard streams are flushed and atexit handlers run first."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except ValueError:  # already closed (the language server closes its streams at exit)
            pass
        except OSError as e:  # standard output on a full disk, say
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"netdef: error: cannot write the output: {e.strerror or e}\n")
                sys.stderr.flush()
            code = code or 1
    import atexit
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
