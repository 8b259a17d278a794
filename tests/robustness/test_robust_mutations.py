"""Mutations of every zoo file, and generated inputs (hypothesis), through the command line.

Each zoo file gets three fixed mutants (deleted, duplicated, swapped or replaced tokens,
truncation, inserted random bytes, flipped bits, duplicated blocks, 10,000-level nesting;
replacement values are wrong types, huge/negative/zero numbers, unicode, NUL, ...), chosen
from the file's index so that every kind of mutation meets every kind of file. A net's mutant
goes through `check` (parse, upgrade, graph, shapes, RF, cost) and `fmt`; a solver's through
`solver` (which also compiles the nets it names, read from a copy of its directory) and `lr`.

The hypothesis tests are derandomized and bounded (CI); benchmarks/fuzz.py runs the same
mutations for as long as it is asked to.
"""
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzlib import HOSTILE, OPS, ZOO, apply, cli_ok

FILES = sorted(p for p in ZOO.rglob("*") if p.suffix in (".prototxt", ".pt", ".proto"))
SMALL = [p for p in FILES if p.stat().st_size < 12_000]
MUTANTS_PER_FILE = 3


def is_solver(path) -> bool:
    return "solver" in path.name


def mutants(index: int):
    """Three op lists for the file at `index`: one or two ops each, covering every op kind
    and every hostile value as the index runs over the zoo."""
    out = []
    for j in range(MUTANTS_PER_FILE):
        k = index * MUTANTS_PER_FILE + j
        ops = [(OPS[k % len(OPS)], 7919 * k + 1, HOSTILE[k % len(HOSTILE)])]
        if k % 2:
            ops.append((OPS[(k // len(OPS)) % len(OPS)], 104729 * k + 3, HOSTILE[(k * 7) % len(HOSTILE)]))
        out.append(ops)
    return out


def test_the_zoo_is_there_and_every_op_is_used():
    assert len(FILES) >= 150
    used = {op for i in range(len(FILES)) for ops in mutants(i) for op, _, _ in ops}
    assert used == set(OPS)
    values = {v for i in range(len(FILES)) for ops in mutants(i) for _, _, v in ops}
    assert values == set(HOSTILE)


@pytest.mark.parametrize("index", range(len(FILES)), ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_zoo_mutants(index, tmp_path):
    src = FILES[index]
    # The mutant lives in a copy of its directory, so that a solver still finds its nets.
    work = tmp_path / src.parent.name
    shutil.copytree(src.parent, work)
    text = src.read_text(encoding="utf-8")
    for n, ops in enumerate(mutants(index)):
        path = work / f"mutant{n}_{src.name}"
        path.write_bytes(apply(text, ops))
        siblings = list(work.iterdir())
        if is_solver(src):
            cli_ok("solver", path, files=siblings)
            cli_ok("lr", path, "--iters", "0:50", files=siblings)
        else:
            cli_ok("check", path, files=[path])
            cli_ok("fmt", path, files=[path])


_ops = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 2**32 - 1), st.sampled_from(HOSTILE)),
                min_size=1, max_size=4)
_bounded = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@_bounded
@given(src=st.sampled_from([p for p in SMALL if not is_solver(p)]), ops=_ops)
def test_mutated_nets_through_every_analysis_command(tmp_path_factory, src, ops):
    d = tmp_path_factory.mktemp("m")
    path = d / src.name
    path.write_bytes(apply(src.read_text(encoding="utf-8"), ops))
    for argv in (["check"], ["summary", "--format", "json"], ["rf"], ["upgrade"],
                 ["draw", "-o", str(d / "out.dot")], ["sizes", "--range", "1:40"]):
        cli_ok(argv[0], path, *argv[1:], files=[path])


@_bounded
@given(src=st.sampled_from([p for p in SMALL if not is_solver(p)]), ops=_ops)
def test_mutated_nets_through_init_and_export(tmp_path_factory, src, ops):
    d = tmp_path_factory.mktemp("m")
    path = d / src.name
    path.write_bytes(apply(src.read_text(encoding="utf-8"), ops))
    for argv in (["init", "-o", str(d / "out.caffemodel")], ["export", "-o", str(d / "out.onnx")]):
        cli_ok(argv[0], path, *argv[1:], files=[path])


# Text made of the format's own pieces in random order: what a lexer and parser meet least.
_PIECES = ["layer", "layers", "{", "}", "<", ">", "[", "]", ":", ";", ",", "-", "name", "type", "bottom",
           "top", "convolution_param", "kernel_size", "shape", "dim", "input", '"data"', '"Convolution"',
           '"x\\n"', "'q'", "0", "-1", "3", "1e9", "0x10", "nan", "inf", "true", "MAX", "\n", " ", "# c\n",
           "\t", '"', "\\", "\u00e9", "\ufeff"]


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=60))
def test_random_token_soup(tmp_path_factory, pieces):
    path = tmp_path_factory.mktemp("s") / "soup.prototxt"
    path.write_text("".join(pieces), encoding="utf-8")
    for cmd in ("check", "fmt", "lr"):
        cli_ok(cmd, path, files=[path])


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("b") / "bytes.prototxt"
    path.write_bytes(data)
    for cmd in ("check", "upgrade", "solver"):
        cli_ok(cmd, path, files=[path])


@pytest.mark.parametrize("index", range(0, len(FILES), 3), ids=[f"{p.parent.name}/{p.name}" for p in FILES[::3]])
def test_blank_and_comment_mutants_read_as_the_original(index):
    """Whitespace and comments between tokens, however long or odd, change nothing: the mutant
    parses to the same message, with the same syntax errors (none) as the original."""
    from netdef.parse import parse_text
    from netdef.source import Source

    src = FILES[index]
    text = src.read_text(encoding="utf-8")
    original = parse_text(Source(text, src.name))
    if not original.syntax_ok:
        return
    for j in range(4):
        k = index * 4 + j
        ops = [(("blanks", "comment")[(k + n) % 2], 7919 * k + 104729 * n, "") for n in range(1 + k % 4)]
        mutant = apply(text, ops).decode("utf-8")
        parsed = parse_text(Source(mutant, src.name), original.kind)
        assert parsed.syntax_ok, (ops, [d.render() for d in parsed.diagnostics][:3])
        assert parsed.message == original.message, ops
