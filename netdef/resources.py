"""Files netdef reads at run time, inside the installed package (netdef/data/).

Found beside this module, inside the installed package (importlib.resources for a zipped
install), so a wheel installed anywhere finds them; no path is built from the repository layout.
"""
from __future__ import annotations

from pathlib import Path


def _data_root() -> Path:
    # The usual install, a directory: its data folder directly (importlib.resources and the
    # zipfile machinery it imports cost more at start-up than the rest of a small `check`).
    here = Path(__file__).parent / "data"
    if here.is_dir():
        return here
    import atexit
    import contextlib
    from importlib import resources
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    ref = resources.files("netdef").joinpath("data")
    if isinstance(ref, Path):
        return ref
    # A zipped install: extract once for the life of the process.
    return stack.enter_context(resources.as_file(ref))  # pragma: no cover


DATA = _data_root()
GRAMMAR = DATA / "grammar" / "prototxt.lark"
NETS = DATA / "prototxts"
SOLVERS = DATA / "solvers"
