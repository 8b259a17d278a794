"""The bundled library: netdef/data/prototxts/ and netdef/data/solvers/, usable by bare name."""
from __future__ import annotations

import os
from pathlib import Path

from .resources import NETS, SOLVERS


def nets() -> dict[str, Path]:
    return {p.stem: p for p in sorted(NETS.glob("*.prototxt"))}


def solvers() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SOLVERS.glob("*.prototxt"))}


def resolve(name: str) -> str:
    """A path as given when it exists; else a bundled net or solver of that name."""
    if os.path.exists(name) or os.sep in name or name.endswith((".prototxt", ".pt", ".proto", ".txt")):
        return name
    for table in (nets(), solvers()):
        if name in table:
            return str(table[name])
    return name


def description(path: Path) -> str:
    """The first comment line of a library file."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("#"):
                    text = line.lstrip("# ").strip()
                    if text:
                        return text
                elif line:
                    break
    except OSError:
        pass
    return ""
