"""Which fork fields netdef's code reads, found by reading the code (ast), for test_fork_fields.py.

A fork field is kept by the parser as a plain value in a Loc's `extra` (netdef/transform.py):
a fork message of the layer (`interp_param { ... }`) in the layer Loc's extra, a fork field of a
BVLC message (C3D's `kernel_depth` in convolution_param) in that block's extra. Code reads them
through a few accessors, each recognised here:

- `ForkParams(node, MESSAGE, ...)` (netdef/layers/fork.py): a message of the layer;
- `ctx.fork_param / fork_given / fork_all / fork_has(MESSAGE, name)` (netdef/reference/base.py);
- `ctx.sub_field(MESSAGE, NAME, ...)`, `c3d_field(node, MESSAGE, NAME)`: a field of a BVLC block;
- `X.extra.get(NAME)`, `X.extra[NAME]`, `NAME in X.extra` (also through a variable bound to an
  extra): of the layer, unless X is bound to a sub-block (`loc.msg(M)`, `loc.fields.get(M)`),
  then a field of block M.

An argument that is not a string literal is followed: a local variable to the values assigned to
it (literals, `a if c else b`, the items a `for` walks), a function parameter to the arguments of
every call of that function. Anything the scan cannot follow is returned as unresolved, so that a
new way of reading a fork field fails the test instead of going unseen.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from itertools import product
from pathlib import Path

LAYER = None   # the message of a read: None for a field of the layer itself


@dataclass(frozen=True)
class Read:
    block: str | None      # the layer's field holding the block (e.g. "convolution_param"); None: the layer
    field: str
    where: str             # file:line of the access


@dataclass(frozen=True)
class _Param:
    """A value that is a parameter of a function: known only per call of it."""
    func: ast.AST
    name: str


@dataclass(frozen=True)
class Unresolved:
    what: str
    where: str


_LAYER_ACCESSORS = {"fork_param", "fork_given", "fork_all", "fork_has"}   # (MESSAGE, name)
_BLOCK_ACCESSORS = {"sub_field": 0, "c3d_field": 1}                    # (.., MESSAGE, NAME): MESSAGE index


class _Module:
    def __init__(self, path: Path, root: Path):
        self.path = path
        self.rel = path.relative_to(root).as_posix()
        self.tree = ast.parse(path.read_text(), str(path))
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node

    def where(self, node) -> str:
        return f"{self.rel}:{node.lineno}"

    def scopes(self, node):
        """The enclosing functions (innermost first), then the module."""
        p = self.parent.get(node)
        while p is not None:
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield p
            p = self.parent.get(p)
        yield self.tree


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return None


def _own_nodes(scope):
    """The nodes of a scope, not descending into nested functions (they have their own)."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        n = stack.pop()
        yield n
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(n))


def _target_names(target) -> set[str]:
    """The names an assignment target binds (not those it only reads, as in `a[i] = ...`)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_target_names(t) for t in target.elts))
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()


class Scanner:
    def __init__(self, package: Path):
        root = package.parent
        self.modules = [_Module(p, root) for p in sorted(package.rglob("*.py"))]
        self.module_of: dict[ast.AST, _Module] = {}
        self.calls: dict[str, list[tuple[_Module, ast.Call]]] = {}
        for m in self.modules:
            for n in ast.walk(m.tree):
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.module_of[n] = m
                elif isinstance(n, ast.Call) and _call_name(n):
                    self.calls.setdefault(_call_name(n), []).append((m, n))
        self.reads: set[Read] = set()
        self.unresolved: list[Unresolved] = []

    # -- the values of an expression -----------------------------------------------------
    def alternatives(self, m: _Module, expr, seen=frozenset()) -> list | None:
        """The values `expr` can have: strings, and _Param for a parameter of an enclosing
        function (resolved per call by `tuples`); None when the scan cannot tell."""
        if isinstance(expr, ast.Constant):
            return [expr.value] if isinstance(expr.value, str) else []
        if isinstance(expr, ast.IfExp):
            a, b = self.alternatives(m, expr.body, seen), self.alternatives(m, expr.orelse, seen)
            return None if a is None or b is None else a + b
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            out = []
            for e in expr.elts:
                v = self.alternatives(m, e, seen)
                if v is None:
                    return None
                out += v
            return out
        if isinstance(expr, ast.Name):
            for scope in m.scopes(expr):
                key = (id(scope), expr.id)
                if key in seen:
                    return []
                bound = _bindings(scope, expr.id)
                if bound:
                    out = []
                    for value in bound:
                        v = self.alternatives(m, value, seen | {key})
                        if v is None:
                            return None
                        out += v
                    return out
                if not isinstance(scope, ast.Module) and expr.id in _params(scope):
                    return [_Param(scope, expr.id)]
        return None

    def tuples(self, items: list, depth: int = 0) -> set[tuple] | None:
        """The values a tuple of expressions [(module, expr)] takes together: parameters of
        one function are replaced by the arguments of each of its calls, all at once."""
        if depth > 12:
            return None
        alts = []
        for m, expr in items:
            a = self.alternatives(m, expr)
            if a is None:
                return None
            alts.append(sorted(set(a), key=repr))
        out: set[tuple] = set()
        for combo in product(*alts):
            params = [a for a in combo if isinstance(a, _Param)]
            if not params:
                out.add(combo)
                continue
            func = params[0].func
            calls = self._calls_of(func)
            if not calls:
                return None
            for cm, call in calls:
                new = []
                for (m, expr), a in zip(items, combo):
                    if isinstance(a, str):
                        new.append((m, ast.Constant(a)))
                    elif a.func is not func:
                        new.append((m, expr))
                    else:
                        arg = self._argument(func, call, a.name)
                        if arg is None:
                            return None
                        new.append(arg if isinstance(arg, tuple) else (cm, arg))
                got = self.tuples(new, depth + 1)
                if got is None:
                    return None
                out |= got
        return out

    def _calls_of(self, func) -> list[tuple[_Module, ast.Call]]:
        fm = self.module_of[func]
        parent = fm.parent.get(func)
        if isinstance(parent, ast.ClassDef):        # a method: every call of that name; __init__: the class
            name = parent.name if func.name == "__init__" else func.name
            return [(m, c) for m, c in self.calls.get(name, [])
                    if func.name == "__init__" or isinstance(c.func, ast.Attribute)]
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):   # nested: calls in its parent
            return [(m, c) for m, c in self.calls.get(func.name, [])
                    if m is fm and isinstance(c.func, ast.Name) and _inside(m, c, parent)]
        # A module function: calls in its module and in the modules that import it by name.
        return [(m, c) for m, c in self.calls.get(func.name, [])
                if isinstance(c.func, ast.Name) and (m is fm or _imports(m, fm, func.name))]

    def _argument(self, func, call: ast.Call, name: str):
        args = [a.arg for a in func.args.posonlyargs + func.args.args]
        for k in call.keywords:
            if k.arg == name:
                return k.value
        if name in args:
            i = args.index(name)
            bound_self = args and args[0] in ("self", "cls") and (
                func.name == "__init__" or isinstance(call.func, ast.Attribute))
            i -= 1 if bound_self else 0
            if 0 <= i < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[:i + 1]):
                return call.args[i]
        default = _default(func, name)
        return (self.module_of[func], default) if default is not None else None

    # -- what an `extra` belongs to -----------------------------------------------------
    def _is_extra(self, m: _Module, expr, seen=frozenset()) -> bool:
        """Whether `expr` is an extra dict itself (not a value taken out of one)."""
        if isinstance(expr, ast.Attribute) and expr.attr == "extra":
            return True
        if isinstance(expr, ast.Call) and _call_name(expr) == "getattr" and len(expr.args) > 1 \
                and isinstance(expr.args[1], ast.Constant) and expr.args[1].value == "extra":
            return True
        if isinstance(expr, ast.IfExp):
            return self._is_extra(m, expr.body, seen) or self._is_extra(m, expr.orelse, seen)
        if isinstance(expr, ast.BoolOp):
            return any(self._is_extra(m, v, seen) for v in expr.values)
        if isinstance(expr, ast.Name):
            if expr.id == "extra":
                return True
            for scope in m.scopes(expr):
                bound = _bindings(scope, expr.id)
                if bound:
                    key = (id(scope), expr.id)
                    return key not in seen and all(self._is_extra(m, v, seen | {key}) for v in bound)
        return False

    def _blocks_of(self, m: _Module, expr, seen=frozenset()) -> list | None:
        """The block names (as expressions) whose extra `expr` is: [] for the layer's own."""
        if isinstance(expr, ast.Attribute) and expr.attr == "extra":
            return self._blocks_of(m, expr.value, seen)
        if isinstance(expr, (ast.IfExp, ast.BoolOp)):
            parts = [expr.body, expr.orelse] if isinstance(expr, ast.IfExp) else expr.values
            out = []
            for p in parts:
                got = self._blocks_of(m, p, seen)
                if got is None:
                    return None
                out += got
            return out
        if isinstance(expr, ast.Name):
            for scope in m.scopes(expr):
                bound = _bindings(scope, expr.id)
                if bound:
                    key = (id(scope), expr.id)
                    if key in seen:
                        return []
                    out = []
                    for value in bound:
                        for call in (c for c in ast.walk(value) if isinstance(c, ast.Call)):
                            if _sub_block_call(call):
                                if not call.args:
                                    return None
                                out.append(call.args[0])
                        for attr in (a for a in ast.walk(value) if isinstance(a, ast.Attribute) and a.attr == "extra"):
                            got = self._blocks_of(m, attr.value, seen | {key})
                            if got is None:
                                return None
                            out += got
                    return out
        return []

    # -- the scan ------------------------------------------------------------------------
    def _record(self, m, node, block_exprs: list, field_expr, what: str):
        for block in (block_exprs or [None]):
            got = self.tuples(([(m, block)] if block is not None else []) + [(m, field_expr)])
            if got is None:
                self.unresolved.append(Unresolved(what, m.where(node)))
                continue
            for t in got:
                self.reads.add(Read(t[0] if block is not None else LAYER, t[-1], m.where(node)))

    def _extra_access(self, m, node, receiver, key):
        """A read of `key` from `receiver`, if it is an extra."""
        if not self._is_extra(m, receiver):
            return
        blocks = self._blocks_of(m, receiver)
        if blocks is None:
            self.unresolved.append(Unresolved(f"the block of {ast.unparse(receiver)}", m.where(node)))
            return
        self._record(m, node, blocks, key, f"a key of {ast.unparse(receiver)}")

    def scan(self) -> "Scanner":
        for m in self.modules:
            for node in ast.walk(m.tree):
                if isinstance(node, ast.Call):
                    self._scan_call(m, node)
                elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                    self._extra_access(m, node, node.value, node.slice)
                elif isinstance(node, ast.Compare):
                    for op, right in zip(node.ops, node.comparators):
                        if isinstance(op, (ast.In, ast.NotIn)):
                            self._extra_access(m, node, right, node.left)
        return self

    def _scan_call(self, m, call: ast.Call):
        name = _call_name(call)
        if name == "ForkParams":
            arg = next((k.value for k in call.keywords if k.arg == "field"), None)
            if arg is None and len(call.args) > 1:
                arg = call.args[1]
            if arg is not None:
                self._record(m, call, [], arg, "ForkParams' message")
        elif name in _LAYER_ACCESSORS and isinstance(call.func, ast.Attribute) and call.args:
            self._record(m, call, [], call.args[0], f"{name}'s message")
        elif name in _BLOCK_ACCESSORS and len(call.args) >= _BLOCK_ACCESSORS[name] + 2:
            i = _BLOCK_ACCESSORS[name]
            self._record(m, call, [call.args[i]], call.args[i + 1], f"{name}'s block and field")
        elif name == "get" and isinstance(call.func, ast.Attribute) and call.args:
            self._extra_access(m, call, call.func.value, call.args[0])


def _params(func) -> list[str]:
    a = func.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]


def _default(func, name):
    args = func.args.posonlyargs + func.args.args
    defaults = dict(zip([a.arg for a in args][len(args) - len(func.args.defaults):], func.args.defaults))
    defaults.update({a.arg: d for a, d in zip(func.args.kwonlyargs, func.args.kw_defaults) if d is not None})
    return defaults.get(name)


_BINDINGS: dict[int, tuple[ast.AST, dict[str, list]]] = {}


def _bindings(scope, name: str) -> list:
    """The expressions `name` is bound to in `scope`: assignments, and the iterables of `for`
    loops and comprehensions (their items)."""
    cached = _BINDINGS.get(id(scope))
    if cached is None or cached[0] is not scope:
        table: dict[str, list] = {}
        for n in _own_nodes(scope):
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    for name_ in _target_names(t):
                        table.setdefault(name_, []).append(n.value)
            elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and n.value is not None:
                for name_ in _target_names(n.target):
                    table.setdefault(name_, []).append(n.value)
            elif isinstance(n, (ast.For, ast.comprehension)):
                for name_ in _target_names(n.target):
                    table.setdefault(name_, []).append(n.iter)
            elif isinstance(n, ast.NamedExpr):
                table.setdefault(n.target.id, []).append(n.value)
        cached = _BINDINGS[id(scope)] = (scope, table)
    return cached[1].get(name, [])


def _sub_block_call(call: ast.Call) -> bool:
    """`loc.msg(M)` or `loc.fields.get(M)`: the Loc(s) of the layer's block M."""
    f = call.func
    if not isinstance(f, ast.Attribute):
        return False
    return f.attr == "msg" or (f.attr == "get" and isinstance(f.value, ast.Attribute) and f.value.attr == "fields")


def _inside(m: _Module, node, ancestor) -> bool:
    p = m.parent.get(node)
    while p is not None:
        if p is ancestor:
            return True
        p = m.parent.get(p)
    return False


def _dotted(m: _Module) -> list[str]:
    parts = m.rel[:-3].split("/")
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(m: _Module, source: _Module, name: str) -> bool:
    """Whether module m does `from <source> import name` (absolute or relative)."""
    for n in ast.walk(m.tree):
        if isinstance(n, ast.ImportFrom) and any(a.name == name and a.asname is None for a in n.names):
            package = _dotted(m)[:-1] if not m.rel.endswith("__init__.py") else _dotted(m)
            base = package[:len(package) - (n.level - 1)] if n.level else []
            if base + (n.module.split(".") if n.module else []) == _dotted(source):
                return True
    return False


def scan(package: Path) -> Scanner:
    return Scanner(package).scan()
