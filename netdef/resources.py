"""Files netdef reads at run time, inside the installed package (netdef/data/).

Found with importlib.resources, so a wheel installed anywhere finds them; no path is built
from the repository layout.
"""
from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path

_stack = contextlib.ExitStack()
atexit.register(_stack.close)


def _data_root() -> Path:
    ref = resources.files("netdef").joinpath("data")
    if isinstance(ref, Path):
        return ref
    # A zipped install: extract once for the life of the process.
    return _stack.enter_context(resources.as_file(ref))  # pragma: no cover


DATA = _data_root()
GRAMMAR = DATA / "grammar" / "prototxt.lark"
NETS = DATA / "prototxts"
SOLVERS = DATA / "solvers"
