"""The `netdef` command line.

Exit codes: 0 success, 1 the input has errors (or an output could not be written), 2 the
command line is wrong. No traceback reaches the user unless --debug is given.

Each subcommand's arguments are declared here; its work is done by a `cmd_*` function in the
module that owns the feature (named in COMMANDS), which returns an exit code and raises
DiagnosticError / CliError / UsageError for failures.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
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
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _net_options(p: argparse.ArgumentParser, phase_default: str = "TEST") -> None:
    g = p.add_argument_group("network state")
    g.add_argument("--phase", choices=["TRAIN", "TEST"], default=phase_default, type=str.upper,
                   help=f"the phase whose layers are included (default {phase_default})")
    g.add_argument("--stage", action="append", default=[], metavar="NAME", help="a NetState stage (repeatable)")
    g.add_argument("--level", type=int, default=0, help="the NetState level (default 0)")
    g.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=N,C,H,W",
                   help="the shape of an input blob whose shape the definition does not fix (repeatable)")


def _file(p: argparse.ArgumentParser, what: str = "a network definition (.prototxt) or a bundled net's name") -> None:
    p.add_argument("file", help=what)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="netdef", description="A compiler for Caffe network and solver definitions.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    parser.add_argument("--version", action="version", version=f"netdef {_version()}")
    parser.add_argument("--max-errors", type=int, default=100, help="stop reporting after this many diagnostics")
    parser.add_argument("--max-file-size", type=_megabytes, default=None, metavar="MB",
                        help=f"refuse definitions larger than this (default {_default_max_mb()} MB)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name):
        return sub.add_parser(name, help=COMMANDS[name][2], description=COMMANDS[name][2])

    p = add("check")
    _file(p)
    _net_options(p)
    p.add_argument("--format", choices=["text", "json"], default="text", help="diagnostics as text or JSON")
    p.add_argument("-W", "--warnings", choices=["show", "hide", "error"], default="show",
                   help="show warnings, hide them, or treat them as errors")

    p = add("summary")
    _file(p)
    _net_options(p)
    p.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")

    p = add("rf")
    _file(p)
    _net_options(p)
    p.add_argument("--format", choices=["table", "json"], default="table")

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

    p = add("fmt")
    _file(p, "a network or solver definition")
    p.add_argument("-o", "--output", help="write here instead of standard output")

    p = add("upgrade")
    _file(p, "a V0/V1 network definition or an old solver")
    p.add_argument("-o", "--output", help="write here instead of standard output")

    p = add("draw")
    _file(p)
    _net_options(p)
    p.add_argument("-o", "--output", required=True, help="OUT.svg, .png, .pdf or .dot")
    p.add_argument("--rankdir", choices=["TB", "LR", "BT", "RL"], default="TB", type=str.upper)
    p.add_argument("--shapes", action=argparse.BooleanOptionalAction, default=True, help="label edges with blob shapes")
    p.add_argument("--rf", action="store_true", help="show each blob's receptive field")
    p.add_argument("--params", action="store_true", help="show parameter counts per layer")
    p.add_argument("--collapse", metavar="PREFIX|auto", action="append", default=[],
                   help="group layers whose names share a prefix into clusters ('auto' finds repeated blocks)")

    p = add("export")
    _file(p)
    _net_options(p)
    p.add_argument("--weights", help="trained weights (.caffemodel); fillers are used without it")
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

    for name in ("run", "bench"):
        p = add(name)
        _file(p, "an .onnx model, or a network definition to export first")
        _net_options(p)
        p.add_argument("--weights", help="trained weights for a network definition")
        p.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="auto")
        p.add_argument("--seed", type=_seed, default=0)
        if name == "run":
            p.add_argument("--input-file", dest="input_files", action="append", default=[], metavar="NAME=FILE.npy",
                           help="feed this array to an input (random data otherwise)")
            p.add_argument("--top", type=int, default=5, help="top-k classes to print for classifier outputs")
        else:
            p.add_argument("--batch", type=int, default=None)
            p.add_argument("--runs", type=int, default=50)
            p.add_argument("--warmup", type=int, default=5)

    p = add("verify")
    _file(p)
    _net_options(p)
    p.add_argument("--weights", help="trained weights (.caffemodel); fillers are used without it")
    p.add_argument("--input-file", dest="input_files", action="append", default=[], metavar="NAME=FILE.npy",
                   help="feed this array to an input (random data otherwise)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest max|a-b| / max(1, max|b|) accepted per blob (default 1e-4)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--no-fold", dest="fold", action="store_false",
                   help="keep BatchNorm/Scale as separate nodes, so that their outputs are compared too")
    p.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="cpu")

    p = add("solver")
    _file(p, "a solver definition or a bundled solver's name")
    p.add_argument("--dataset-size", type=int, default=None, help="training set size, for epochs")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=N,C,H,W",
                   help="the shape of a net input the definition does not fix, e.g. a Data layer's "
                        "(needed for the parameter table; repeatable)")

    p = add("lr")
    _file(p, "a solver definition or a bundled solver's name")
    p.add_argument("--iters", default=None, metavar="START:STOP[:STEP]", help="iterations (default 0:max_iter)")
    p.add_argument("--format", choices=["tsv", "json"], default="tsv")
    p.add_argument("--plot", metavar="OUT.png|svg", help="also draw the schedule")

    add("list")
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


def print_diagnostics(diags, stream=None, warnings: str = "show") -> tuple[int, int]:
    """Render diagnostics to stderr; returns (errors, warnings) counted."""
    stream = stream or sys.stderr
    n_err = n_warn = 0
    for d in diags:
        if d.severity == "warning":
            n_warn += 1
            if warnings == "hide":
                continue
        elif d.is_error:
            n_err += 1
        stream.write(d.render() + "\n")
    dropped = getattr(diags, "dropped", 0)
    if dropped:
        stream.write(f"note: {dropped} more diagnostics not shown (--max-errors)\n")
    return n_err, n_warn


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `netdef summary x | head` ends quietly
    except (AttributeError, ValueError):
        pass
    previous = _catch_termination()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return 2
        module, func, _ = COMMANDS[args.command]
        handler = getattr(importlib.import_module(module), func)
        from . import source
        saved = source.MAX_SOURCE_BYTES
        if args.max_file_size is not None:
            source.MAX_SOURCE_BYTES = args.max_file_size
        try:
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
    except DiagnosticError as e:
        print_diagnostics(e.diagnostics)
        if e.dropped:
            sys.stderr.write(f"note: {e.dropped} more diagnostics not shown (--max-errors)\n")
        return 1
    except SourceError as e:
        print_diagnostics([e.diagnostic()])
        return 1
    except CliError as e:
        sys.stderr.write(f"netdef: error: {e}\n")
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
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        sys.stderr.write(f"netdef: internal error: {type(e).__name__}: {e}\n"
                         "This is a bug in netdef; run with --debug for the traceback and report it.\n")
        return 1
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError, OSError):
                signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
