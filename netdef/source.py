"""A source text: offsets to line/column, and the line for a snippet.

Columns are 1-based and count characters (not bytes); tabs count as one column, and the
renderer expands them so that the caret stays under the character it points at.
"""
from __future__ import annotations

import bisect
import os

# Files larger than this are refused before they are read: a definition is text written by
# people or generators, and the biggest real one (Inception-ResNet-v2) is well under 1 MB.
MAX_SOURCE_BYTES = 256 * 1024 * 1024


class SourceError(Exception):
    """A file that cannot be read as text (missing, a directory, not UTF-8, too large)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


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
        try:
            if os.path.isdir(p):
                raise SourceError(p, "is a directory, not a file")
            size = os.path.getsize(p)
            if size > MAX_SOURCE_BYTES:
                raise SourceError(p, f"is {size} bytes; netdef reads definitions up to {MAX_SOURCE_BYTES} bytes")
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise SourceError(p, "no such file") from None
        except PermissionError:
            raise SourceError(p, "permission denied") from None
        except OSError as e:
            raise SourceError(p, e.strerror or str(e)) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise SourceError(p, f"line {line}: byte 0x{data[e.start]:02x} is not UTF-8 text "
                                 "(is this a binary file such as a .caffemodel?)") from None
        return cls(text, p)

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
