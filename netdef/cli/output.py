"""What a command prints besides its result: diagnostics (as text, or gathered for the JSON
document), notes and 'wrote' lines, the JSON document itself, GitHub and SARIF renderings.

It also holds the state of one run, which `cli.main` sets from the global options (--color,
-q, -W, --format) and restores afterwards; command handlers read it as `output.quiet` and so on.
"""
from __future__ import annotations

import json
import os
import sys

from ..version import __version__

SCHEMA_VERSION = 1  # of every command's --format json output; raised when a field changes meaning

# The state of one run, set by main() from the global options and restored after it.
color = False          # ANSI colours on diagnostics (--color, NO_COLOR, FORCE_COLOR)
quiet = False          # -q: diagnostics and results only
warnings_mode = "show"  # -W
json_mode = False      # --format json: diagnostics are gathered for the JSON document
collected: list = []   # the diagnostics gathered in json_mode


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
        from ..outputs import write_atomic
        write_atomic(path, text)
    else:
        sys.stdout.write(text)


def render_ci(fmt: str, diags) -> str:
    """Diagnostics as GitHub workflow commands or as a SARIF 2.1.0 log."""
    from ..diagnostics import github_annotation, sarif_log
    if fmt == "github":
        return "".join(github_annotation(d) + "\n" for d in diags)
    return json.dumps(sarif_log(diags, __version__), indent=2, ensure_ascii=False) + "\n"


def _finite(obj):
    """NaN and infinities are not JSON: they become null."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def failure_json(args, diags=(), error: str | None = None, code: int = 1) -> None:
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




def set_state(**values) -> dict:
    """Set the run state (and netdef.progress.quiet); returns the previous values."""
    from .. import progress
    g = globals()
    before = {k: g[k] for k in values if k != "progress_quiet"}
    before["progress_quiet"] = progress.quiet
    for k, v in values.items():
        if k == "progress_quiet":
            progress.quiet = v
        else:
            g[k] = v
    return before
