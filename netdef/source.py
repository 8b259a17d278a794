"""A source text: offsets to line/column, and the line for a snippet.

Columns are 1-based and count characters (not bytes); tabs count as one column, and the
renderer expands them so that the caret stays under the character it points at.
"""
from __future__ import annotations

import bisect
import os
import stat

from . import codes
from .diagnostics import Span

# Files larger than this are refused before they are read. A definition is text written by
# people or generators: the biggest real one (Inception-ResNet-v2) is 0.23 MB. netdef's
# commands cost about 2 s and 40 MB of memory per MB of text, so 8 MiB (35 times the biggest
# real net; check/summary/fmt under 30 s and 512 MB, benchmarks/RESULTS.md) is generous for
# real files and refuses hostile ones before they cost minutes and gigabytes. The command
# line raises it with --max-file-size.
MAX_SOURCE_BYTES = 8 * 1024 * 1024


class SourceError(Exception):
    """A file that cannot be read as text (missing, a directory, not UTF-8, NUL bytes, too large).

    `offset` is the character offset of the offending byte in `text` (the file decoded with
    replacement characters, up to what was read), so the failure renders like any other
    diagnostic: `file:line:col: error[E100]: ...` with the line and a caret. Problems with the
    whole file point at line 1, column 1."""

    def __init__(self, path: str, message: str, offset: int = 0, text: str = "", notes=()):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        self.offset = offset
        self.text = text
        self.notes = list(notes)

    @property
    def source(self) -> "Source":
        return Source(self.text, self.path)

    def diagnostic(self):
        """The failure as an E100 diagnostic with a location."""
        src = self.source
        return codes.UNREADABLE.at(Span(src, self.offset, self.offset + (self.offset < len(src.text))),
                                   notes=self.notes, message=self.message)


def _limit_text(limit: int) -> str:
    return f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit} bytes"


_BINARY_NOTE = "is this a binary file, such as a .caffemodel? Definitions are UTF-8 text"
_LIMIT_NOTES = ["the biggest real definitions are under 1 MB; raise the limit with "
                "'netdef --max-file-size MB ...' if this file is genuine"]


STDIN = "<stdin>"  # the name standard input goes by in diagnostics ('-' on the command line)
_stdin_cache: dict = {}


class Source:
    __slots__ = ("text", "path", "_starts")

    def __init__(self, text: str, path: str = "<string>"):
        if text.startswith("\ufeff"):
            # A UTF-8 byte order mark is not content. Replacing it by a space keeps every
            # offset (and so every column) where the user's editor shows it.
            text = " " + text[1:]
        self.text = text
        self.path = path
        self._starts: list[int] | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> "Source":
        p = os.fspath(path)
        limit = MAX_SOURCE_BYTES
        if p in ("-", STDIN):
            return cls._stdin(limit)
        try:
            st = os.stat(p)
            if stat.S_ISDIR(st.st_mode):
                raise SourceError(p, "is a directory, not a file")
            if st.st_size > limit:
                raise SourceError(p, f"the file is {st.st_size} bytes; netdef reads definitions of at most "
                                     f"{_limit_text(limit)}", notes=_LIMIT_NOTES)
            with open(p, "rb") as f:
                # One byte past the limit: pipes and devices (/dev/zero) report no size.
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise SourceError(p, "no such file") from None
        except PermissionError:
            raise SourceError(p, "permission denied") from None
        except OSError as e:
            raise SourceError(p, e.strerror or str(e)) from None
        if len(data) > limit:
            raise SourceError(p, f"the input is more than {_limit_text(limit)}; netdef reads definitions of at "
                                 f"most {_limit_text(limit)}", notes=_LIMIT_NOTES)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SourceError(p, f"byte 0x{data[e.start]:02x} is not UTF-8 text", len(data[:e.start].decode("utf-8")),
                              data.decode("utf-8", "replace"), notes=[_BINARY_NOTE]) from None
        nul = text.find("\0")
        if nul >= 0:
            # protobuf's text tokenizer (and so Caffe) stops at a NUL anywhere, strings and
            # comments included; a NUL in a definition is almost always a binary file.
            raise SourceError(p, "a NUL character (byte 0x00) is not allowed in a definition", nul, text,
                              notes=["Caffe's text parser rejects it, inside strings too; write it as \\0 "
                                     "inside a string", _BINARY_NOTE])
        return cls(text, p)

    @classmethod
    def _stdin(cls, limit: int) -> "Source":
        """Standard input, read once per process (a command may load its file twice)."""
        import sys
        stream = sys.stdin
        cached = _stdin_cache.get(id(stream))
        if cached is not None and cached[0] is stream:
            return cls(cached[1], STDIN)
        try:
            raw = getattr(stream, "buffer", None)
            data = raw.read(limit + 1) if raw is not None else stream.read(limit + 1).encode("utf-8")
        except OSError as e:
            raise SourceError(STDIN, e.strerror or str(e)) from None
        if len(data) > limit:
            raise SourceError(STDIN, f"the input is more than {_limit_text(limit)}; netdef reads definitions of at "
                                     f"most {_limit_text(limit)}", notes=_LIMIT_NOTES)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SourceError(STDIN, f"byte 0x{data[e.start]:02x} is not UTF-8 text",
                              len(data[:e.start].decode("utf-8")), data.decode("utf-8", "replace"),
                              notes=[_BINARY_NOTE]) from None
        if "\0" in text:
            raise SourceError(STDIN, "a NUL character (byte 0x00) is not allowed in a definition", text.find("\0"),
                              text, notes=[_BINARY_NOTE])
        _stdin_cache.clear()
        _stdin_cache[id(stream)] = (stream, text)
        return cls(text, STDIN)

    def _line_starts(self) -> list[int]:
        if self._starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._starts = starts
        return self._starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        starts = self._line_starts()
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line ending."""
        starts = self._line_starts()
        if not 1 <= line <= len(starts):
            return ""
        start = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    @property
    def line_count(self) -> int:
        return len(self._line_starts())

