"""Writing output files atomically: a failed or interrupted run leaves any previous file intact.

Everything is written to a temporary file in the destination's directory and renamed over the
destination only once complete (rename is atomic on POSIX within one file system).
"""
from __future__ import annotations

import contextlib
import os
import tempfile

from .diagnostics import CliError


def check_writable(path: str) -> None:
    """Fail early, with a one-line diagnostic, when `path` cannot be written."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CliError(f"cannot write {path}: it is a directory")
    if not os.path.isdir(d):
        raise CliError(f"cannot write {path}: directory {d} does not exist")
    if not os.access(d, os.W_OK):
        raise CliError(f"cannot write {path}: directory {d} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"cannot write {path}: permission denied")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yields a temporary path beside `path`; renames it over `path` if the block succeeds."""
    path = os.fspath(path)
    check_writable(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".netdef-", suffix=suffix or os.path.splitext(path)[1], dir=d)
    os.close(fd)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise CliError(f"cannot write {path}: nothing was produced")
        mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str, data: bytes | str) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
        except OSError as e:
            raise CliError(f"cannot write {path}: {e.strerror or e}") from None


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
