"""Prototxt text → protobuf messages with source locations.

    parsed = parse_text(Source(text, "net.prototxt"))      # kind sniffed: net or solver
    parsed.message   # netdef_pb2.NetParameter / SolverParameter
    parsed.loc       # Loc tree: where every field was written
    parsed.diagnostics

Syntax errors stop the parse (what was filled before stays, with every schema error found
so far); schema errors (unknown fields, wrong types, ...) are collected and parsing goes on.
"""
from __future__ import annotations

import gc
import os
import re
import sys
import threading
import zlib
from dataclasses import dataclass

from . import codes
from .diagnostics import Diagnostics, Span
from .proto import pb
from .resources import GRAMMAR
from .source import Source
from .loc import Loc
from .transform import MessageFiller, Tok, _Abort

GRAMMAR_PATH = GRAMMAR

NET = "net"
SOLVER = "solver"
MESSAGE_TYPES = {NET: pb.NetParameter, SOLVER: pb.SolverParameter}

_lock = threading.Lock()
_filler = MessageFiller()


class _SyntaxError(Exception):
    def __init__(self, tok: Tok | None, pos: int, expected: set[str]):
        self.tok, self.pos, self.expected = tok, pos, expected


_PUNCTUATION = frozenset({"COLON", "SEP", "COMMA", "LSQB", "RSQB", "MINUS"})
_VALUE_GROUP = {"NUMBER": "f_num", "STRING": "f_str", "NAME": "f_id"}
_COMMENTS_PER_TOKEN = 8


class _Machine:
    """The grammar's LALR(1) tables (built by lark from netdef/data/grammar/prototxt.lark) and a tight
    driver for them. lark's own parser front end allocates a Token and runs a generic tree
    builder for every token; definitions are large and token-dense, so netdef lexes with one
    compiled pattern and calls the transformer's callbacks straight from the table loop.

    Building the tables with lark costs more than parsing a small file, so they are cached on
    disk (see _load_machine): `_Machine()` builds them, `_Machine.from_state` restores them."""

    def __init__(self, grammar_text: str | None = None):
        import lark  # only to build the tables; a cached copy needs neither lark nor its imports
        from lark.parsers.lalr_analysis import Shift

        text = GRAMMAR_PATH.read_text() if grammar_text is None else grammar_text
        grammar = lark.Lark(text, parser="lalr", lexer="basic")
        table = grammar.parser.parser.parser.parse_table
        ignore = set(grammar.ignore_tokens)
        regexps, literals = [], []
        for t in grammar.terminals:
            if t.name in ignore:
                continue
            (literals if t.pattern.type == "str" else regexps).append(f"(?P<{t.name}>{t.pattern.to_regexp()})")
        # The lexer must take time linear in the text whatever it holds (issue 11: a banner of
        # '#' after a string took exponential time). Python's regex engine backtracks, so no
        # part of the pattern may match the same text in more than one way under a repetition
        # (the grammar writes WS and COMMENT so that each has one possible end, and a string's
        # plain characters are one flat run between escapes), and no group is repeated without
        # bound: the engine keeps a backtracking record per repetition of a group, which made a
        # long run of comment lines cost more per line the longer it was.
        assert ignore == {"WS", "COMMENT"}, ignore
        rx = {n: grammar.get_terminal(n).pattern.to_regexp() for n in ("NAME", "NUMBER", "STRING", "WS", "COMMENT")}
        blank = re.match(r"\[[^]]*\]", rx["WS"]).group(0)  # WS is a run of this character class
        # The fused `name: value` token (see the grammar): a value that is a number, a name, or
        # a string that no other string follows (adjacent strings concatenate). A string that
        # blanks and then a comment follow is not fused either (the parser then reads it as
        # three tokens, with the same result): so the look-ahead is one flat run of blanks.
        fused = (f"(?P<SCALAR_FIELD>(?P<f_name>{rx['NAME']})[ \\t]*:[ \\t]*(?:(?P<f_num>{rx['NUMBER']})|"
                 f"(?P<f_str>{rx['STRING']})(?!{blank}*[\"'#])|(?P<f_id>{rx['NAME']})))")
        # Blanks and up to _COMMENTS_PER_TOKEN comments are consumed with the token that follows
        # them, so the loop sees only real tokens; a longer run of comments goes on as _SKIP
        # matches, which the loop passes over. Anything else is one bad character.
        skip = f"{blank}*(?:{rx['COMMENT']}{blank}*){{0,{_COMMENTS_PER_TOKEN}}}"
        self.pattern = re.compile(f"{skip}(?:{fused}|{'|'.join(regexps + literals)}|(?P<_SKIP>{rx['COMMENT']})|"
                                  "(?P<_END>\\Z)|(?P<_BAD>.))", re.S)
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]
        trivial = {"items", "elems", "start"}
        self.actions: dict[int, dict[str, tuple]] = {}
        self.goto: dict[int, dict[str, int]] = {}
        for state, acts in table.states.items():
            a, g = {}, {}
            for sym, (action, arg) in acts.items():
                sym = str(sym)  # lark's Token compares slowly; plain strings hash and compare fast
                if action is Shift:
                    if sym.isupper() or sym == "$END":
                        a[sym] = (True, arg)
                    else:
                        g[sym] = arg
                else:
                    name = arg.alias or arg.origin.name
                    cb = None if name in trivial else str(name)  # a callback's name until _bind
                    a[sym] = (False, (len(arg.expansion), cb, str(arg.origin.name)))
            self.actions[state] = a
            self.goto[state] = g
        self.fused_in_place = self._fused_in_place_states()
        import marshal
        self.snapshot = marshal.dumps(self._snapshot())  # what the cache stores (before _bind)
        self._bind()

    # --- the cached form: plain data (str, int, tuple, dict, frozenset) that marshal stores ----
    _STATE_FIELDS = ("pattern", "start", "end", "actions", "goto", "fused_in_place")

    def _snapshot(self) -> dict:
        return {"pattern": (self.pattern.pattern, self.pattern.flags), "start": self.start, "end": self.end,
                "actions": self.actions, "goto": self.goto, "fused_in_place": self.fused_in_place}

    def _bind(self) -> None:
        """Callback names in the reduce actions -> the filler's bound methods."""
        for acts in self.actions.values():
            for sym, (shift, arg) in acts.items():
                if not shift and arg[1] is not None:
                    acts[sym] = (False, (arg[0], getattr(_filler, arg[1]), arg[2]))

    @classmethod
    def from_state(cls, state: dict) -> "_Machine":
        """A machine from a cached snapshot; raises (KeyError, TypeError, ValueError,
        AttributeError, re.error) when the snapshot is not a well-formed one."""
        self = cls.__new__(cls)
        if not isinstance(state, dict) or set(state) != set(cls._STATE_FIELDS):
            raise ValueError("not a table snapshot")
        pattern, flags = state["pattern"]
        self.pattern = re.compile(pattern, flags)
        self.start, self.end = int(state["start"]), int(state["end"])
        self.actions = {int(s): {str(k): (bool(v[0]), (int(v[1]) if v[0] else (int(v[1][0]), v[1][1], str(v[1][2]))))
                                 for k, v in acts.items()} for s, acts in state["actions"].items()}
        self.goto = {int(s): {str(k): int(v) for k, v in g.items()} for s, g in state["goto"].items()}
        self.fused_in_place = frozenset(state["fused_in_place"])
        for acts in self.actions.values():  # every action leads to a known state
            for shift, arg in acts.values():
                if shift and arg not in self.actions or not shift and not isinstance(arg[1], (str, type(None))):
                    raise ValueError("inconsistent table snapshot")
        if self.start not in self.actions or not self.fused_in_place <= set(self.actions):
            raise ValueError("inconsistent table snapshot")
        self._bind()
        return self

    def _fused_in_place_states(self) -> frozenset:
        """States where a SCALAR_FIELD token leaves the parse stack as it found it.

        In a state s reached on `items`, shifting SCALAR_FIELD and then reducing
        `field: SCALAR_FIELD` and `items: items field` pops back to the state below s and goes
        to s again. So for the commonest token the driver can run the callback and skip the
        shift and both reductions. The tables are checked, not assumed: a state qualifies only
        if those are the only actions the two intermediate states have."""
        fast = set()
        for s, acts in self.actions.items():
            shift = acts.get("SCALAR_FIELD")
            if not shift or not shift[0]:
                continue
            t_acts = self.actions[shift[1]].values()
            if not t_acts or any(a[0] or a[1][0] != 1 or a[1][2] != "field" for a in t_acts):
                continue
            u = self.goto[s].get("field")
            u_acts = self.actions[u].values() if u is not None else ()
            if u_acts and all(not a[0] and a[1][0] == 2 and a[1][2] == "items" and a[1][1] is None
                              for a in u_acts):
                fast.add(s)
        return frozenset(fast)

    def run(self, text: str) -> None:
        actions, goto = self.actions, self.goto
        punctuation = _PUNCTUATION
        fused_in_place, filler, store = self.fused_in_place, _filler, _filler._store_scalar
        states = [self.start]
        values: list = []
        for m in self.pattern.finditer(text):
            kind = m.lastgroup
            if kind[0] == "_":
                if kind == "_SKIP":
                    continue
                if kind == "_BAD":
                    raise _SyntaxError(None, m.start(kind), set())
                break  # _END
            if kind == "SCALAR_FIELD":
                vkind = "NUMBER" if m.start("f_num") >= 0 else "STRING" if m.start("f_str") >= 0 else "NAME"
                value = Tok(vkind, m.group(_VALUE_GROUP[vkind]), m.start(_VALUE_GROUP[vkind]), m.end())
                tok = (Tok("NAME", m.group("f_name"), m.start("f_name"), m.end("f_name")),
                       [value] if vkind == "STRING" else value)
            elif kind in punctuation:
                tok = kind  # no callback reads a separator's text or place: skip the allocation
            else:
                tok = Tok(kind, m.group(kind), m.start(kind), m.end())
            while True:
                act = actions[states[-1]].get(kind)
                if act is None:
                    tok = tok[0] if kind == "SCALAR_FIELD" else Tok(kind, m.group(kind), m.start(kind), m.end())
                    raise _SyntaxError(tok, tok.start_pos, self._expected(states[-1]))
                if act[0]:
                    if kind == "SCALAR_FIELD" and states[-1] in fused_in_place:
                        store(filler.stack[-1], tok[0], tok[1], False)
                    else:
                        states.append(act[1])
                        values.append(tok)
                    break
                n, cb, origin = act[1]
                if n:
                    args = values[-n:]
                    del values[-n:]
                    del states[-n:]
                else:
                    args = []
                values.append(cb(args) if cb is not None else None)
                states.append(goto[states[-1]][origin])
        end = len(text)
        while True:
            act = actions[states[-1]].get("$END")
            if act is None:
                raise _SyntaxError(Tok("$END", "", end, end), end, self._expected(states[-1]))
            n, cb, origin = act[1]
            args = values[-n:] if n else []
            if n:
                del values[-n:]
                del states[-n:]
            values.append(cb(args) if cb is not None else None)
            states.append(goto[states[-1]][origin])
            if states[-1] == self.end:
                return

    def _expected(self, state: int) -> set[str]:
        return {s for s in self.actions[state]}


_machine: _Machine | None = None

# --- the table cache ----------------------------------------------------------------------------
#
# Where: $NETDEF_CACHE_DIR, else $XDG_CACHE_HOME/netdef, else ~/.cache/netdef. What: one file per
# (grammar text, this module's source, lark version, Python version), named after a hash of
# them; the file repeats them in full and is used only when they match exactly, so an edited
# grammar or driver, another lark or another Python never sees stale tables. A file that cannot
# be read, is corrupt (checksum) or does not match is replaced; a directory that cannot be
# written just means the tables are built each time. Nothing here ever fails a parse.

_CACHE_MAGIC = b"netdef-lalr-tables 1\n"


def cache_dir() -> str | None:
    if os.environ.get("NETDEF_CACHE_DIR"):
        return os.environ["NETDEF_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "netdef") if os.path.isabs(base) else None


def _lark_version() -> str:
    """lark's version, read from its package without importing it (importing lark costs more
    than loading the cached tables)."""
    import importlib.util
    spec = importlib.util.find_spec("lark")
    if spec is None or not spec.origin:
        return "none"
    try:
        with open(spec.origin, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return "unreadable"
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.partition("=")[2].strip().strip("'\"")
    return "unknown"


def _cache_key(grammar_text: str) -> bytes:
    try:
        with open(__file__, "rb") as f:
            driver = f.read()
    except OSError:  # pragma: no cover - a frozen install: the netdef version stands for the driver
        from .version import __version__
        driver = __version__.encode()
    return b"\0".join([grammar_text.encode(), driver, _lark_version().encode(), sys.version.encode()])


def _load_machine() -> _Machine:
    import marshal
    grammar_text = GRAMMAR_PATH.read_text()
    directory = cache_dir()
    if directory is None:
        return _Machine(grammar_text)
    key = _cache_key(grammar_text)
    path = os.path.join(directory, f"tables-{zlib.crc32(key):08x}{zlib.adler32(key):08x}.bin")
    try:
        with open(path, "rb") as f:
            data = f.read()
        head, stored_key, checksum, payload = data[:len(_CACHE_MAGIC)], *_split(data[len(_CACHE_MAGIC):])
        if head == _CACHE_MAGIC and stored_key == key and checksum == zlib.crc32(payload):
            return _Machine.from_state(marshal.loads(payload))
    except Exception:  # noqa: BLE001 - missing, unreadable or corrupt: rebuilt below
        pass
    machine = _Machine(grammar_text)
    payload = machine.snapshot
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(_CACHE_MAGIC + len(key).to_bytes(8, "little") + key +
                    zlib.crc32(payload).to_bytes(4, "little") + payload)
        os.replace(tmp, path)
    except OSError:  # read-only or full: the tables are simply built again next time
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return machine


def _split(rest: bytes) -> tuple[bytes, int, bytes]:
    n = int.from_bytes(rest[:8], "little")
    key = rest[8:8 + n]
    checksum = int.from_bytes(rest[8 + n:12 + n], "little")
    return key, checksum, rest[12 + n:]


def _get_machine() -> _Machine:
    global _machine
    if _machine is None:
        _machine = _load_machine()
    return _machine


@dataclass
class Parsed:
    kind: str                 # NET or SOLVER
    message: object           # pb.NetParameter or pb.SolverParameter
    loc: Loc
    source: Source
    diagnostics: Diagnostics
    syntax_ok: bool = True
    # The whole net when `message` is a view with layers removed (export's deploy_view): a fork
    # recognised by the net's layers (layers.base.register_variant) is recognised from it.
    whole: object = None

    @property
    def ok(self) -> bool:
        return not self.diagnostics.has_errors


# --- deciding what a file is ------------------------------------------------------------------

# Fields that only one of the two messages has. `momentum` and `weight_decay` are left out:
# V0/V1 layers have fields of those names too.
_SOLVER_KEYS = re.compile(r"^[ \t]*(base_lr|lr_policy|max_iter|solver_type|solver_mode|train_net|"
                          r"test_net|test_iter|test_interval|snapshot_prefix|net|net_param|display|"
                          r"stepsize|stepvalue|iter_size|regularization_type|average_loss|snapshot)\s*[:{<]",
                          re.M)
_NET_KEYS = re.compile(r"^[ \t]*(layer|layers|input|input_dim|input_shape|force_backward|state|"
                       r"debug_info)\s*[:{<]|^name\s*:", re.M)
_ANY_KEY = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)\s*[:{<]", re.M)
_BLANKS = re.compile(r"\s*(?:#[^\n]*(?![^\n])\s*){0,64}")  # bounded: see _Machine


def _first_not_blank(text: str) -> int:
    """Where the first thing that is neither blank nor a comment starts (len(text) if none)."""
    at = 0
    while True:
        end = _BLANKS.match(text, at).end()
        if end == at:
            return at
        at = end


def sniff_kind(text: str) -> str | None:
    """Net or solver from the first field name that only one of them has; None when neither."""
    s, n = _SOLVER_KEYS.search(text), _NET_KEYS.search(text)
    if s and (not n or s.start() < n.start()):
        return SOLVER
    return NET if n else None


# --- syntax errors ------------------------------------------------------------------------

_TERMINALS = {
    "NAME": "a field name", "NUMBER": "a number", "STRING": "a string", "OPEN": "'{'",
    "CLOSE": "'}'", "SEP": "';'", "COLON": "':'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "MINUS": "'-'", "$END": "the end of the file",
}


def _expected(names) -> str:
    words = sorted({_TERMINALS.get(n, n) for n in names})
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


# A shell-template placeholder (${NUM_LABELS}, $LIST_DIR): DeepLab's released configs hold them,
# substituted by the project's scripts before Caffe reads the file. Anchored at the '$', one pass.
_PLACEHOLDER = re.compile(r"\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def _syntax_diagnostic(err: _SyntaxError, source: Source, stack) -> object:
    if err.tok is None:
        pos = err.pos
        ch = source.text[pos] if pos < len(source.text) else ""
        span = Span(source, pos, pos + 1)
        if ch in "\"'":
            return codes.UNTERMINATED_STRING.at(span, notes=["a string ends on the line it starts; "
                                                             "write a line break as \\n"])
        if ch == "\\":
            return codes.BAD_CHARACTER.at(span, notes=["a backslash belongs inside a quoted string"], char="'\\'")
        m = _PLACEHOLDER.match(source.text, pos) if ch == "$" else None
        if m:
            return codes.BAD_CHARACTER.at(Span(source, pos, m.end()), char="'$'", notes=[
                f"this looks like a template placeholder ({m.group()}); substitute it (e.g. with envsubst "
                "or the project's script) before using the file"])
        return codes.BAD_CHARACTER.at(span, char=f"'{ch}'" if ch.isprintable() else repr(ch))
    tok = err.tok
    expected = set(err.expected)
    if tok.type == "$END":
        end = len(source.text)
        span = Span(source, end, end)
        if len(stack) > 1:
            top = stack[-1].loc
            line = top.span.line
            return codes.UNEXPECTED_EOF.at(span, related=[(top.span, "this block is not closed")],
                                           notes=[f"add '}}' to close the block opened on line {line}"],
                                           what=f"the block '{source.text[top.name_start:top.head_end]}'")
        return codes.UNEXPECTED_EOF.at(span, what="a field", notes=[f"expected {_expected(expected)}"])
    span = Span(source, tok.start_pos, tok.end_pos)
    v = tok.value
    found = {"NAME": f"'{v}'", "NUMBER": f"the number {v}", "STRING": "a string"}.get(tok.type, f"'{v}'")
    if tok.type == "CLOSE" and len(stack) == 1:
        return codes.SYNTAX.at(span, message=f"'{v}' closes nothing: no block is open here")
    notes = []
    if "COLON" in expected and tok.type in ("NUMBER", "STRING", "NAME"):
        notes.append("write a field as 'name: value' or 'name { ... }'")
        return codes.SYNTAX.at(span, notes=notes, message=f"expected ':' or '{{' after the field name, found {found}")
    return codes.SYNTAX.at(span, notes=notes, message=f"expected {_expected(expected)}, found {found}")


# --- entry points -------------------------------------------------------------------------


def parse_into(source: Source, message, diags: Diagnostics) -> tuple[Loc, bool]:
    """Fill `message` from `source`; returns the root Loc and whether the syntax was valid."""
    with _lock:
        machine = _get_machine()
        _filler.begin(source, message, diags)
        ok = True
        # The parse allocates many small objects that live until it ends (locations, tokens)
        # and makes no reference cycles: the cyclic collector would only rescan them again
        # and again (most of the time on large files), so it pauses for the duration.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            machine.run(source.text)
        except _SyntaxError as e:
            diags.add(_syntax_diagnostic(e, source, _filler.stack))
            ok = False
        except _Abort:
            ok = False
        finally:
            if gc_was_enabled:
                gc.enable()
        loc = _filler.root_loc
        loc.end = len(source.text)
        _filler.stack = []
        return loc, ok


def parse_text(source: Source, kind: str | None = None, limit: int = 100) -> Parsed:
    """Parse a definition; kind is NET, SOLVER or None to decide from the text."""
    diags = Diagnostics(limit=limit)
    if kind is None:
        kind = sniff_kind(source.text)
        if kind is None:
            m = _ANY_KEY.search(source.text)
            why = (f"it starts with '{m.group(1)}', which is neither a NetParameter nor a SolverParameter field"
                   if m else "it has no fields")
            if m:
                span = Span(source, m.start(1), m.end(1))
            else:  # no field at all: point at the first thing that is not blank or a comment
                at = _first_not_blank(source.text)
                at = at if at < len(source.text) else 0
                span = Span(source, at, at + (at < len(source.text)))
            diags.add(codes.NOT_A_DEFINITION.at(span, path=source.path, why=why,
                                                notes=["a network has 'layer { ... }' blocks; a solver has "
                                                       "'base_lr', 'lr_policy', 'net', ..."]))
            return Parsed(NET, pb.NetParameter(), Loc(source, 0, 0), source, diags, syntax_ok=False)
    message = MESSAGE_TYPES[kind]()
    loc, ok = parse_into(source, message, diags)
    return Parsed(kind, message, loc, source, diags, syntax_ok=ok)


def parse_file(path, kind: str | None = None, limit: int = 100) -> Parsed:
    """Parse a file (raises SourceError when it cannot be read as text)."""
    return parse_text(Source.from_path(path), kind, limit)
