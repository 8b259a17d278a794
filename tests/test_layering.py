"""netdef's import layering, checked on the source (docs/ARCHITECTURE.md, "Layers").

Every import counts, those inside functions too: an import hidden in a function is still a
dependency, only a later one. A module may import modules of its own layer and of the layers
below it, never above; the import graph has no cycles; nothing inside the package imports the
package facade (netdef/__init__.py); command handlers (`cmd_*`) live in netdef/cli/ only; and no
hand-written module grows past the size one can read in a sitting.
"""
from __future__ import annotations

import ast
import os

import pytest
from conftest import REPO

# Lowest first. A module belongs to the first entry that is its name or a package above it.
LAYERS = [
    ("base", ["netdef.version", "netdef.source", "netdef.diagnostics", "netdef.codes", "netdef.outputs",
              "netdef.progress", "netdef.resources", "netdef.wire", "netdef.proto", "netdef.loc"]),
    ("text", ["netdef.parse", "netdef.literals", "netdef.transform", "netdef.upgrade", "netdef.upgrade_tables",
              "netdef.forks", "netdef.library", "netdef.fmt"]),
    ("graph", ["netdef.ir", "netdef.layers", "netdef.passes", "netdef.build"]),
    ("pipeline", ["netdef.pipeline", "netdef.sizes"]),
    ("consumers", ["netdef.export", "netdef.draw", "netdef.view", "netdef.solver", "netdef.weights",
                   "netdef.reference", "netdef.layer_table", "netdef.formula"]),
    ("editor", ["netdef.lsp"]),
    ("cli", ["netdef.cli", "netdef.__main__"]),
]
FACADE = "netdef"
MAX_LINES = 600
GENERATED = ("_pb2.py",)


def modules(root: str) -> dict[str, str]:
    """{dotted module name: path} of every Python file of the package under `root`."""
    out = {}
    base = os.path.join(root, "netdef")
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
            if dotted.endswith(".__init__"):
                dotted = dotted[: -len(".__init__")]
            out[dotted] = path
    return out


def imports(mods: dict[str, str]) -> dict[str, dict[str, int]]:
    """{module: {imported module: first line}}: every import statement, at any depth, resolved
    to the most specific module of the package it names (`from . import codes` is
    netdef.codes; `from .diagnostics import Span` is netdef.diagnostics)."""
    edges: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        found: dict[str, int] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    target = ".".join(parts + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:  # `import netdef.export.onnx as x` when only the package is known
                    t = t.rpartition(".")[0]
                if t and t != name:
                    found.setdefault(t, node.lineno)
        edges[name] = found
    return edges


def layer_of(module: str) -> int | None:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def violations(mods: dict[str, str], edges) -> list[str]:
    out = []
    for name in sorted(edges):
        if name == FACADE:
            continue
        mine = layer_of(name)
        if mine is None:
            out.append(f"{mods[name]}: module {name} is in no layer; add it to LAYERS and docs/ARCHITECTURE.md")
            continue
        for target, line in sorted(edges[name].items()):
            if target == FACADE:
                out.append(f"{mods[name]}:{line}: {name} imports the package facade 'netdef'")
                continue
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                out.append(f"{mods[name]}:{line}: {name} ({LAYERS[mine][0]}) imports {target} "
                           f"({LAYERS[theirs][0]}), a layer above it")
    return out


def cycles(edges) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in edges:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def handlers_outside_cli(mods: dict[str, str]) -> list[str]:
    out = []
    for name, path in mods.items():
        if name == "netdef.cli" or name.startswith("netdef.cli."):
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        out += [f"{path}:{n.lineno}: {n.name}" for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("cmd_")]
    return out


def long_modules(mods: dict[str, str]) -> list[str]:
    out = []
    for path in mods.values():
        if path.endswith(GENERATED):
            continue
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            out.append(f"{path}: {n} lines")
    return out


# --- the repository ------------------------------------------------------------------------

MODS = modules(str(REPO))
EDGES = imports(MODS)


def test_no_import_cycles():
    assert cycles(EDGES) == []


def test_imports_go_down_the_layers():
    assert violations(MODS, EDGES) == []


def test_command_handlers_live_in_the_cli_package():
    assert handlers_outside_cli(MODS) == []


def test_no_library_module_imports_the_cli():
    bad = [f"{MODS[m]}:{line}: {m} imports {t}" for m, targets in EDGES.items() for t, line in targets.items()
           if (t == "netdef.cli" or t.startswith("netdef.cli.")) and not m.startswith(("netdef.cli", "netdef.__main__"))]
    assert bad == []


def test_modules_stay_readable():
    assert long_modules(MODS) == []


# --- the checker itself, on a package made up for it ---------------------------------------

def _package(tmp_path, files: dict[str, str]) -> dict[str, str]:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return modules(str(tmp_path))


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    mods = _package(tmp_path, {
        "netdef/__init__.py": "",
        "netdef/parse.py": "from . import transform\n",
        "netdef/transform.py": "def f():\n    from .parse import x\n",
        "netdef/source.py": "",
    })
    assert cycles(imports(mods)) == [["netdef.parse", "netdef.transform"]]


def test_checker_finds_an_upward_import_and_the_facade(tmp_path):
    mods = _package(tmp_path, {
        "netdef/__init__.py": "from .version import v\n",
        "netdef/version.py": "",
        "netdef/layers/__init__.py": "",
        "netdef/layers/conv.py": "def to_onnx():\n    from ..export import lower\n",
        "netdef/export/__init__.py": "",
        "netdef/export/lower.py": "from .. import version\nfrom netdef import load\n",
        "netdef/stray.py": "",
    })
    found = violations(mods, imports(mods))
    assert any("netdef.layers.conv (graph) imports netdef.export.lower (consumers)" in v for v in found)
    assert any("netdef.export.lower imports the package facade" in v for v in found)
    assert any("module netdef.stray is in no layer" in v for v in found)
    assert not any("netdef.version" in v and "facade" not in v for v in found)


def test_checker_finds_handlers_and_long_modules(tmp_path):
    mods = _package(tmp_path, {
        "netdef/__init__.py": "",
        "netdef/draw.py": "def cmd_draw(args):\n    pass\n",
        "netdef/cli/__init__.py": "def cmd_ok(args):\n    pass\n",
        "netdef/big.py": "x = 1\n" * (MAX_LINES + 1),
        "netdef/proto/big_pb2.py": "x = 1\n" * (MAX_LINES + 1),
    })
    assert [h.rsplit(": ", 1)[1] for h in handlers_outside_cli(mods)] == ["cmd_draw"]
    assert [os.path.basename(p.split(":")[0]) for p in long_modules(mods)] == ["big.py"]


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_every_layer_names_modules_that_exist(layer):
    prefixes = dict(LAYERS)[layer]
    assert [p for p in prefixes if not any(m == p or m.startswith(p + ".") for m in MODS)] == []
