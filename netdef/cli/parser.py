"""The command line's grammar: the table of commands, the shared options every command
takes (--format, -o, -W, the network state, the global options), and each command's own.

Only the parser of the command being run is built in full (building all of them is a third of
a short command's start-up); the others are declared with their help line only.
"""
from __future__ import annotations

import argparse

from ..diagnostics import UsageError
from .output import SCHEMA_VERSION

# subcommand -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("netdef.cli.check", "cmd_check", "parse and analyse a definition; print its diagnostics"),
    "summary": ("netdef.cli.check", "cmd_summary", "one row per layer: shapes, receptive field, params, MACs, memory"),
    "rf": ("netdef.cli.check", "cmd_rf", "receptive field, stride and centre of every blob"),
    "sizes": ("netdef.cli.check", "cmd_sizes", "input sizes for which the whole net is valid"),
    "fmt": ("netdef.cli.fmt", "cmd_fmt", "print a definition in canonical form"),
    "upgrade": ("netdef.cli.upgrade", "cmd_upgrade", "upgrade a V0/V1 net or an old solver to the current format"),
    "draw": ("netdef.cli.draw", "cmd_draw", "draw the network with graphviz"),
    "export": ("netdef.cli.export", "cmd_export", "export to ONNX"),
    "init": ("netdef.cli.weights", "cmd_init", "write filler-initialised weights as a .caffemodel"),
    "run": ("netdef.cli.run", "cmd_run", "run a model with onnxruntime"),
    "bench": ("netdef.cli.run", "cmd_bench", "latency and throughput with onnxruntime"),
    "verify": ("netdef.cli.verify", "cmd_verify", "compare onnxruntime with an independent NumPy forward pass"),
    "solver": ("netdef.cli.solver", "cmd_solver", "check and summarise a solver definition"),
    "lr": ("netdef.cli.solver", "cmd_lr", "the learning rate at each iteration, as Caffe computes it"),
    "list": ("netdef.cli.library", "cmd_list", "the bundled library of networks and solvers"),
    "lsp": ("netdef.cli.lsp", "cmd_lsp", "a language server for editors (LSP over standard input and output)"),
    "view": ("netdef.cli.view", "cmd_view", "one self-contained interactive HTML page of a net or solver"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


# Formats a command takes: text and json everywhere, tables where it prints one.
TABLE_FORMATS = ["text", "table", "json", "csv", "markdown"]


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
    g.add_argument("--input", dest="inputs", action=_InputShape, default={}, metavar="NAME=N,C,H,W",
                   help="the shape of an input blob whose shape the definition does not fix (repeatable)")


def _file(p: argparse.ArgumentParser, what: str = "a network definition (.prototxt) or a bundled net's name") -> None:
    p.add_argument("file", help=what + "; '-' reads standard input")


def _seed_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--seed", type=seed, default=0, help=help)


def _batch_option(p: argparse.ArgumentParser, help: str, dynamic: bool = False) -> None:
    p.add_argument("--batch", type=batch_size(dynamic), default=None, metavar="N|dynamic" if dynamic else "N",
                   help=help)


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
    p.add_argument("more", nargs="*", default=[], metavar="FILE", help="more definitions (with --check or --diff)")
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
    _batch_option(p, "a batch size N, or 'dynamic'", dynamic=True)
    p.add_argument("--fp16", action="store_true", help="store weights and compute in float16 (inputs and outputs stay float32)")
    p.add_argument("--fp16-io", action="store_true", help="with --fp16: float16 inputs and outputs too")
    p.add_argument("--no-fold", dest="fold", action="store_false", help="keep BatchNorm/Scale as separate nodes")
    _seed_option(p, "seed for filler initialisation without --weights")
    _outputs_option(p, "export only the layers that compute these blobs, which become the model's outputs")
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
    _seed_option(p, "seed for the fillers (default 0)")
    _format_option(p, what=" of the report")

    for name in ("run", "bench"):
        p = add(name)
        _file(p, "an .onnx model, or a network definition to export first")
        _net_options(p)
        p.add_argument("--weights", help="trained weights for a network definition")
        _allow_missing(p)
        p.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="auto",
                       help="onnxruntime execution provider (default auto: CUDA when usable, else the CPU)")
        _seed_option(p, "seed for random inputs and filler weights (default 0)")
        _format_option(p)
        if name == "run":
            p.add_argument("--input-file", dest="input_files", action="append", default=[], metavar="NAME=FILE.npy",
                           help="feed this array to an input (random data otherwise)")
            p.add_argument("--top", type=int, default=5, help="top-k classes to print for classifier outputs")
            p.add_argument("--labels", metavar="FILE", help="class names for top-k, one per line (line k: class k)")
        else:
            _batch_option(p, "batch size of the random inputs")
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
    p.add_argument("--weights", help="trained weights (.caffemodel); without it, the definition's fillers, and "
                                     "random values (variance 1/fan_in) for blobs they would leave all 0, as "
                                     "Caffe's default filler does, so that every layer is exercised")
    _allow_missing(p)
    p.add_argument("--input-file", dest="input_files", action="append", default=[], metavar="NAME=FILE.npy",
                   help="feed this array to an input (random data otherwise)")
    _batch_option(p, "samples per input (default 1; the net's declared batch when --input-file is given)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest max|a-b| / max(1, max|b|) accepted per blob (default 1e-4)")
    _seed_option(p, "seed for random inputs and filler weights (default 0)")
    p.add_argument("--no-fold", dest="fold", action="store_false",
                   help="keep BatchNorm/Scale as separate nodes, so that their outputs are compared too")
    _outputs_option(p, "verify only the layers that compute these blobs (a net whose post-processing is a "
                       "Python layer or an op ONNX cannot express: the part before it)")
    p.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="cpu",
                   help="onnxruntime execution provider (default cpu)")
    _format_option(p)

    p = add("solver")
    _file(p, "a solver definition or a bundled solver's name")
    p.add_argument("--dataset-size", type=int, default=None, help="training set size, for epochs")
    _format_option(p)
    p.add_argument("--input", dest="inputs", action=_InputShape, default={}, metavar="NAME=N,C,H,W",
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


def input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """--input NAME=N,C,H,W ('x' also separates the dimensions): the one parser of it. Caffe's
    Blob::Reshape limits: at most 32 axes (kMaxBlobAxes) and INT_MAX elements; every
    dimension at least 1 (an empty input cannot be analysed, exported or run)."""
    name, sep, dims = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"--input {text}: expected NAME=N,C,H,W (e.g. --input data=1,3,224,224)")
    try:
        shape = tuple(int(p.strip()) for p in dims.replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--input {text}: dimensions must be whole numbers, separated by commas") from None
    if any(d < 1 for d in shape):
        raise UsageError(f"--input {text}: every dimension must be at least 1")
    count = 1
    for d in shape:
        count *= d
    if len(shape) > 32 or count > 2**31 - 1:
        raise UsageError(f"--input {text}: a Caffe blob has at most 32 axes and 2,147,483,647 elements")
    return name, shape


class _InputShape(argparse.Action):
    """Repeatable --input: args.inputs is {blob name: shape}, parsed once for every command."""

    def __call__(self, parser, namespace, values, option_string=None):
        name, shape = input_shape(values)
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest, None) or {}), name: shape})


def blob_names(text: str) -> list[str]:
    """--outputs BLOB[,BLOB...]: the names, in order."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected blob names separated by commas, got '{text}'")
    return names


class _BlobNames(argparse.Action):
    """Repeatable --outputs: args.outputs is the blob names in order, without repeats (None
    when the option is not given)."""

    def __call__(self, parser, namespace, values, option_string=None):
        names = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, names + [n for n in values if n not in names])


def _outputs_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--outputs", action=_BlobNames, type=blob_names, default=None, metavar="BLOB[,BLOB...]",
                   help=what + " (repeatable)")


def seed(text: str) -> int:
    """--seed: the one parser of it. numpy's SeedSequence takes non-negative integers only
    (-1 was an internal error)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 2^64 - 1, got '{text}'")
    return value


def batch_size(dynamic: bool = False):
    """The --batch parser (argparse `type=`): a number of samples, at least 1; with `dynamic`
    (export) also 'dynamic', a batch left symbolic in the model."""
    def batch(text: str):
        if dynamic and text.strip().lower() == "dynamic":
            return "dynamic"
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            allowed = "a whole number, at least 1, or 'dynamic'" if dynamic else "a whole number, at least 1"
            raise argparse.ArgumentTypeError(f"expected {allowed}, got '{text}'")
        return n
    return batch


def _megabytes(text: str) -> int:
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not 0 < mb <= 1 << 20:
        raise argparse.ArgumentTypeError(f"expected a size in MB (a positive number), got '{text}'")
    return int(mb * 2**20)


def _default_max_mb() -> str:
    from .. import source
    return f"{source.MAX_SOURCE_BYTES / 2**20:g}"


def _version() -> str:
    from ..version import __version__
    return __version__
