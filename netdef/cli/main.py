"""The `netdef` program: runs one command and turns what happens into an exit code.

Exit codes: 0 success, 1 the input has errors (or an output could not be written), 2 the
command line is wrong, 3 an internal error (a bug in netdef). No traceback reaches the user
unless --debug is given. SIGINT, SIGTERM and SIGHUP stop a run without leaving a partial output.
"""
from __future__ import annotations

import contextlib
import errno
import importlib
import os
import signal
import sys

from ..diagnostics import CliError, DiagnosticError, UsageError
from ..source import SourceError
from . import output
from .output import WarningsAsErrors, emit_json, failure_json, print_diagnostics, set_state
from .parser import COMMANDS, _command_in, build_parser


class _Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the program is, so that a half-written output's
    temporary file is removed on the way out (netdef.outputs)."""


def _terminate(signum, frame):
    from .. import outputs
    name = signal.Signals(signum).name
    # Recorded as well as raised: an exception raised while a C extension module initialises
    # (numpy.random is imported lazily) can be swallowed, and the rename must still not happen.
    outputs.interrupted = name
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise _Terminated(name)


def _catch_termination() -> dict:
    from .. import outputs
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
    from .. import outputs
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `netdef summary x | head` ends quietly
    except (AttributeError, ValueError):
        pass
    previous = _catch_termination()
    saved_state = set_state(color=False, quiet=False, warnings_mode="show", json_mode=False, collected=[],
                             progress_quiet=False)
    args = None
    try:
        parser = build_parser(_command_in(argv))
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return 2
        debug = args.debug
        set_state(color=output.use_color(args.color), quiet=args.quiet, warnings_mode=getattr(args, "warnings", "show"),
                   json_mode=getattr(args, "format", None) in ("json", "sarif", "github"))
        if args.quiet:
            set_state(progress_quiet=True)
        module, func, _ = COMMANDS[args.command]
        handler = getattr(importlib.import_module(module), func)
        from .. import source
        saved = source.MAX_SOURCE_BYTES
        if args.max_file_size is not None:
            source.MAX_SOURCE_BYTES = args.max_file_size
        try:
            if output.json_mode and args.command in _PRINTS_TEXT:
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
        if output.json_mode and args is not None:
            failure_json(args)
        sys.stderr.write(f"netdef {args.command}: {e.args[0]} warning(s) treated as errors (-W error)\n")
        return 1
    except DiagnosticError as e:
        if output.json_mode and args is not None:
            failure_json(args, e.diagnostics)
        else:
            print_diagnostics(e.diagnostics)
        output.note_dropped(e.dropped)
        return 1
    except SourceError as e:
        if output.json_mode and args is not None:
            failure_json(args, [e.diagnostic()])
        else:
            print_diagnostics([e.diagnostic()])
        return 1
    except CliError as e:
        if output.json_mode and args is not None:
            failure_json(args, error=str(e))
        label = "\x1b[1;31merror\x1b[0m" if output.color else "error"
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
            return _internal_error(e, output.json_mode, args)
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"netdef: error: cannot write the output: {e.strerror or e}\n")
        return 1
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        return _internal_error(e, output.json_mode, args)
    finally:
        set_state(**saved_state)
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError, OSError):
                signal.signal(sig, handler)


_WRITE_ERRNOS = {errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EDQUOT, errno.EFBIG}


def _internal_error(e: BaseException, json_mode: bool, args) -> int:
    # Exit 3, not 1: a script must be able to tell "the input has errors" from "netdef broke".
    if json_mode and args is not None:
        with contextlib.suppress(Exception):
            failure_json(args, error=f"internal error: {type(e).__name__}: {e}", code=3)
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
