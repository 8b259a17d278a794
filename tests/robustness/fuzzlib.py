"""Mutations of real definitions and the command line's contract, shared by the robustness
tests and benchmarks/fuzz.py (the long campaign).

The contract, for any input file:
  * the exit code is 0, 1 or 2;
  * no traceback and no "internal error" reaches the user;
  * a failure about the input (exit 1) names where: at least one `file:line:col: error[...]`
    diagnostic, the file being the input or a file it names;
  * no RecursionError or MemoryError surfaces (main() turns those into one-line failures:
    the contract counts them as violations).
"""
from __future__ import annotations

import contextlib
import io
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from netdef.cli import main

ZOO = Path(__file__).resolve().parents[1] / "data" / "zoo"

# The lexical pieces of the text format, as a mutator sees them: whitespace and comments are
# kept as tokens so that a mutated file is still a file (joined back, nothing is lost).
_TOKEN = re.compile(r'''"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|\s+|[A-Za-z_][A-Za-z0-9_]*|'''
                    r'''-?[0-9][0-9A-Za-z_.+-]*|.''', re.S)

# Values that are wrong for most fields, or right but at an edge: huge and negative numbers,
# zero, overflowing int32/int64/float, NaN, unicode, NUL, control characters, quotes.
HOSTILE = [
    "0", "-1", "1", "-2147483648", "2147483647", "2147483648", "4294967296", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "18446744073709551616", "1" + "0" * 400, "1e400",
    "-1e400", "1e-400", "nan", "-nan", "inf", "-inf", "0x7fffffff", "0xffffffffffffffff", "00", "08",
    "1.5", ".5", "5.", "1f", "true", "false", "MAX", "AVE", "TRAIN", "TEST", "CONVOLUTION",
    '""', '"x"', '"\\x00"', '"\\777"', '"\\u00e9"', '"\\ud800"', '"é"', '"\u202e"', '"\U0001F600"',
    "\x00", "\x01", "\x7f", "\u00e9", "\u2028", "\ufeff", "{", "}", "<", ">", "[", "]", ":", ";", ",",
    "-", '"', "'", "\\", "#", "layer", "layers", "bottom", "top", "name", "type", "include",
    "convolution_param", "kernel_size", "num_output", "stride", "pad", "group", "dim", "shape",
    "input", "input_dim", "net", "base_lr", "lr_policy", "max_iter", "python_param",
]

# Numbers a field can be given that keep the syntax valid: the semantic attacks.
NUMBERS = ["0", "-1", "1", "2", "3", "7", "-7", "65536", "2147483647", "2147483648", "4294967295", "4294967296",
           "9223372036854775807", "-2147483648", "1e9", "-1e-9", "0.5", "nan", "inf", "-inf", "1e400"]

# The first ten break the text; the last five keep it parseable (whitespace or comments
# between tokens change, or a value, a blob name or a field name does), so that the lexer's
# treatment of blanks and the later stages (graph, shapes, export) see the damage.
OPS = ("delete", "duplicate", "swap", "replace", "insert", "truncate", "bytes", "dup_block",
       "deep", "flip", "blanks", "comment", "number", "string", "field")
PARSEABLE = OPS[-5:]

# What the text between tokens can be: runs of each kind of blank (as long as a banner or a
# trailing run, or far longer), and comments holding what a lexer might mistake for tokens.
# Issue 11: a banner of '#' after a string took the lexer exponential time.
_RUN_LENGTHS = (1, 2, 26, 80, 1000, 10_000)
_BLANK_UNITS = (" ", "\t", "\n", "\r\n", "\r", " \t", "\f", "\v", "\n\n", "  \n")
_COMMENT_BODIES = ("", "#", " ", "\t", '"', "'", '"x"', "\\", '\\"', "{", "}", "[ ]", ":", "layer {",
                   "# # #", "\r", "\u00e9", "\ufeff", "7e-3", "-")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _block_bounds(toks: list[str], rng: random.Random) -> tuple[int, int] | None:
    """A random `name { ... }` block: the index of its name and one past its closing brace."""
    opens = [i for i, t in enumerate(toks) if t == "{"]
    if not opens:
        return None
    i = rng.choice(opens)
    depth = 0
    for j in range(i, len(toks)):
        depth += toks[j] == "{"
        depth -= toks[j] == "}"
        if depth == 0:
            k = i - 1
            while k > 0 and toks[k].isspace():
                k -= 1
            return max(k, 0), j + 1
    return None


def apply(text: str, ops) -> bytes:
    """Apply mutation ops — (name, seed, hostile value) — to a definition; returns bytes
    (some mutations make text that is not UTF-8)."""
    toks = tokens(text)
    raw: bytes | None = None
    for name, seed, value in ops:
        rng = random.Random(seed)
        if raw is not None:  # a byte-level mutation happened: continue on bytes
            data = bytearray(raw)
            if not data:
                break
            p = rng.randrange(len(data))
            data[p] = rng.randrange(256)
            raw = bytes(data)
            continue
        n = len(toks)
        i = rng.randrange(n) if n else 0
        if name == "delete" and n:
            del toks[i]
        elif name == "duplicate" and n:
            toks.insert(i, toks[i])
        elif name == "swap" and n:
            j = rng.randrange(n)
            toks[i], toks[j] = toks[j], toks[i]
        elif name == "replace" and n:
            toks[i] = value
        elif name == "insert":
            toks.insert(i, value)
        elif name == "truncate":
            toks = toks[:i]
        elif name == "dup_block":
            b = _block_bounds(toks, rng)
            if b:
                lo, hi = b
                toks[hi:hi] = ["\n"] + toks[lo:hi] * rng.choice((1, 2, 10))
        elif name in ("number", "string", "field"):
            want = {"number": lambda t: t[:1].isdigit() or t[:2] in ("-0", "-1", "-2", "-3", "-4", "-5", "-6", "-7",
                                                                         "-8", "-9"),
                    "string": lambda t: t[:1] in "\"'" and len(t) > 1,
                    "field": lambda t: t[:1].isalpha() or t[:1] == "_"}[name]
            where = [k for k, t in enumerate(toks) if want(t)]
            if where:
                k = rng.choice(where)
                if name == "number":
                    toks[k] = rng.choice(NUMBERS)
                else:  # another string or name of the same file: blob names, types, fields mixed up
                    toks[k] = toks[rng.choice(where)]
        elif name == "blanks":
            # Replace the blanks between two tokens (or put some where there were none).
            unit, length = rng.choice(_BLANK_UNITS), rng.choice(_RUN_LENGTHS)
            gaps = [k for k, t in enumerate(toks) if t.isspace()]
            if gaps and rng.random() < 0.8:
                k = rng.choice(gaps)
                # The line end that closes a comment stays, or the next line joins the comment.
                toks[k] = ("\n" if k and toks[k - 1][:1] == "#" else "") + unit * length
            else:
                toks.insert(i, unit * length)
        elif name == "comment":
            # A comment after a token (a string value most often: the case of issue 11), as a
            # banner, a trailing remark or the file's last line, with or without its line end.
            length = rng.choice(_RUN_LENGTHS)
            body = rng.choice(_COMMENT_BODIES) * (length if rng.random() < 0.5 else 1)
            text = rng.choice(("#", "#" * length, "# ")) + body
            lead = rng.choice(("", " ", "\n", " " * length, "\t" * length))
            end = rng.choice(("\n", "\r\n", "\n" + "#" * length + "\n", ""))
            strings = [k for k, t in enumerate(toks) if t[:1] in "\"'"]
            k = rng.choice(strings) + 1 if strings and rng.random() < 0.6 else i
            toks.insert(k, lead + text + end)
            if not end and k + 1 < len(toks):
                toks.insert(k + 1, "\n")  # a comment ends at its line's end: keep the next token
        elif name == "deep":
            depth = rng.choice((65, 200, 10_000))
            toks.insert(i, "x {" * depth + "}" * depth)
        elif name in ("bytes", "flip"):
            data = bytearray("".join(toks).encode("utf-8"))
            if name == "bytes":
                p = rng.randrange(len(data) + 1)
                data[p:p] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
            elif data:
                p = rng.randrange(len(data))
                data[p] ^= 1 << rng.randrange(8)
            raw = bytes(data)
    return raw if raw is not None else "".join(toks).encode("utf-8")


def random_ops(rng: random.Random, k: int | None = None):
    """One to four mutations; half the time only the kinds that keep the text parseable, so
    that the graph, shape and export stages get as much damage to chew on as the parser."""
    k = k or rng.choice((1, 1, 1, 2, 2, 3, 4))
    pool = PARSEABLE if rng.random() < 0.5 else OPS
    return [(rng.choice(pool), rng.randrange(2**32), rng.choice(HOSTILE)) for _ in range(k)]


# --- running the command line in-process ------------------------------------------------------

@dataclass
class Result:
    argv: list
    code: int
    out: str
    err: str
    seconds: float


def run_cli(argv) -> Result:
    """netdef.cli.main with stdout/stderr captured (no fixture needed: usable under hypothesis)."""
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return Result(list(argv), code, out.getvalue(), err.getvalue(), time.perf_counter() - t0)


_LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): error\[E\d{3}\]", re.M)
_INTERNAL = ("Traceback", "internal error", "nested too deeply", "out of memory")


def _located_in_json(out: str) -> list[tuple]:
    """With --format json the diagnostics are in the document on standard output (issue 13):
    (file, line, col, ...) of each located error there."""
    if not out.lstrip().startswith("{"):
        return []
    try:
        doc = json.loads(out)
    except ValueError:
        return []
    diags = doc.get("diagnostics", []) if isinstance(doc, dict) else []
    return [(d["file"], d["line"], d["col"]) for d in diags
            if isinstance(d, dict) and d.get("severity") == "error" and "file" in d and "line" in d]


def violations(r: Result, files=()) -> list[str]:
    """What is wrong with a run, by the contract above; [] when it behaved."""
    bad = []
    if r.code not in (0, 1, 2):
        bad.append(f"exit code {r.code}")
    for needle in _INTERNAL:
        if needle in r.err or needle in r.out:
            bad.append(f"'{needle}' in the output")
    if r.code == 1:
        located = _LOCATED.findall(r.err) + _located_in_json(r.out)
        if not located:
            bad.append("exit 1 without a located error diagnostic (file:line:col: error[E...])")
        elif files:
            names = {str(f) for f in files} | {Path(f).name for f in files}
            if not any(m[0] in names or Path(m[0]).name in names for m in located):
                bad.append(f"no located diagnostic names the input ({sorted(names)})")
    return bad


def describe(r: Result) -> str:
    return f"netdef {' '.join(map(str, r.argv))} -> {r.code} in {r.seconds:.2f}s\n{r.err[-3000:]}"


def cli_ok(*argv, files=()) -> Result:
    """Run `netdef ARGV...` in-process and assert the contract (see the module docstring)."""
    r = run_cli(argv)
    bad = violations(r, files)
    assert not bad, f"netdef {' '.join(map(str, argv))}: {bad}\n{r.err[-3000:]}"
    return r
