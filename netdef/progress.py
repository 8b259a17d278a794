"""Progress lines on standard error for work that can run longer than about a second.

Shown only when standard error is a terminal, only once the work has run for `delay` seconds
(short runs print nothing), and never when `quiet` is set (the CLI's -q/--quiet sets it). The
line is redrawn in place with a carriage return and erased when the work ends, so nothing of it
remains in the terminal's scrollback or in a log.

    with Progress("verify", total=len(layers)) as p:
        for layer in layers:
            ...
            p.update(detail=layer.name)
"""
from __future__ import annotations

import sys
import time

quiet = False          # set by the CLI (-q/--quiet)
force = False          # tests: draw even when standard error is not a terminal


class Progress:
    def __init__(self, label: str, total: int | None = None, *, stream=None, delay: float = 1.0,
                 interval: float = 0.1):
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.delay, self.interval = delay, interval
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._width = 0
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.enabled = not quiet and (tty or force)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, detail: str = "") -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self._last < self.interval:
            return
        self._last = now
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        text = f"{self.label}: {count} ({now - self.start:.0f} s)" + (f" {detail}" if detail else "")
        text = text.replace("\r", " ").replace("\n", " ")[:200]
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
