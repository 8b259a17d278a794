"""Writing output files atomically: a failed or interrupted run leaves any previous file intact.

Everything is written to a temporary file in the destination's directory and renamed over the
destination only once complete (rename is atomic on POSIX within one file system). A failure or
an interruption (Ctrl-C, SIGTERM, SIGHUP: the CLI turns them into exceptions) removes the
temporary file; only SIGKILL, which no process survives, can leave a `.netdef-*` file behind,
and even then the destination is either the old file or the new one, never half of one.

Two kinds of destination are not replaced: a symbolic link is followed (the file it points to
is replaced, the link stays), and a device, pipe or terminal (`-o /dev/null`, `-o /dev/stdout`)
is written in place: renaming a file over it would replace the device node itself.
"""
from __future__ import annotations

import contextlib
import os
import sys
import stat

from .diagnostics import CliError

# The name of a signal (SIGINT, SIGTERM, SIGHUP) received during this run, set by the command
# line's handlers: checked before the final rename, because the exception such a signal raises
# can be swallowed by library code it lands in (a C extension's module initialisation).
interrupted: str | None = None


def _special(path: str) -> bool:
    """An existing destination that is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_writable(path: str) -> None:
    """Fail early, with a one-line diagnostic, when `path` cannot be written."""
    path = os.fspath(path)
    real = os.path.realpath(path)
    d = os.path.dirname(real)
    if os.path.isdir(real):
        raise CliError(f"cannot write {path}: it is a directory")
    if _special(real):
        if not os.access(real, os.W_OK):
            raise CliError(f"cannot write {path}: permission denied")
        return
    if not os.path.isdir(d):
        raise CliError(f"cannot write {path}: directory {d} does not exist")
    if not os.access(d, os.W_OK):
        raise CliError(f"cannot write {path}: directory {d} is not writable")
    if os.path.exists(real) and not os.access(real, os.W_OK):
        raise CliError(f"cannot write {path}: permission denied")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yields a temporary path beside `path`; renames it over `path` if the block succeeds.
    An OSError inside the block (disk full, ...) becomes a one-line CliError."""
    path = os.fspath(path)
    check_writable(path)
    real = os.path.realpath(path)
    if _special(real):
        try:
            yield real
        except OSError as e:
            raise CliError(f"cannot write {path}: {e.strerror or e}") from None
        return
    d = os.path.dirname(real)
    suffix = suffix or os.path.splitext(real)[1]
    tmp = None
    # The temporary name is chosen before the file exists, so that an interruption at any
    # moment after it is created (a signal lands between two bytecodes) still removes it.
    try:
        while True:
            tmp = os.path.join(d, f".netdef-{os.urandom(8).hex()}{suffix}")
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                break
            except FileExistsError:
                continue
        yield tmp
        if interrupted:
            raise KeyboardInterrupt(interrupted)
        if not os.path.exists(tmp):
            raise CliError(f"cannot write {path}: nothing was produced")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, real)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError):  # a directory that says it is writable and is not, a full disk
            raise CliError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def write_atomic(path: str, data: bytes | str) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def write_or_print(path: str | None, text: str) -> None:
    """Text to `path` atomically, or to standard output when no path is given."""
    if path:
        write_atomic(path, text)
    else:
        sys.stdout.write(text)
