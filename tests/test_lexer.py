"""The lexer takes time linear in its input, whatever the input holds (issue 11).

A quoted value followed by a banner of '#' or by trailing spaces used to take time exponential
in the run's length (Python's regex engine backtracked through every way of splitting the run
into comments and blanks). Here every token class is followed by long runs of every character
class, at doubling sizes, through the public parse (sniffing, lexing, parsing and rendering the
diagnostics), and the time must grow in proportion to the size.

The check is of complexity, not speed: it compares a size with four times that size in the same
process, uses CPU time (which does not count the time the process waits for a busy CPU) and the
best of several alternating runs, and allows 12x where linear is 4x (quadratic is 16x; the old
exponential lexer took seconds at 26 characters). A run that takes more than a minute of CPU is
a failure too, so a regression fails instead of hanging.
"""
import signal
import threading
import time
from contextlib import contextmanager

import pytest
from google.protobuf import text_format

from netdef.cli import main
from netdef.parse import NET, parse_text
from netdef.proto import pb
from netdef.source import Source

# The text before the run: each token class of the grammar, and the fused `name: value` token
# with each kind of value, where the parser expects it.
TOKENS = {
    "start": "",
    "string_field": 'name: "x"',
    "single_quoted_field": "name: 'x'",
    "int_field": "dim: 1",
    "float_field": "lr: 1.5e-3",
    "hex_field": "x: 0x1F",
    "enum_field": "pool: MAX",
    "name": "layer",
    "colon": "name:",
    "open": "layer {",
    "open_angle": "layer <",
    "close": "layer { }",
    "semicolon": 'name: "x";',
    "comma": "dim: 1,",
    "list_open": "dim: [",
    "list_close": "dim: [1]",
    "list_string": 'bottom: ["a"',
    "minus": "x: -",
    "negative_name": "x: -inf",
    "adjacent_strings": 'name: "x" "y"',
    "comment": "# c",
    "open_string": 'name: "',
    "open_escape": 'name: "\\',
}

# The runs: one unit repeated, and the characters in the 1x run. Sizes are large enough to be
# well above timer noise, and smaller where each unit is a token of its own (a run of quotes is
# a run of empty strings) or a line (the source keeps where every line starts), so that each
# run costs about the same. Besides each character class: the pairs that make a run of pieces,
# comments one per line and escapes inside a string.
RUNS = {
    "hash": ("#", 8192), "space": (" ", 8192), "tab": ("\t", 8192), "double_quote": ('"', 1024),
    "single_quote": ("'", 1024), "backslash": ("\\", 4096), "digit": ("7", 8192), "minus": ("-", 8192),
    "plus": ("+", 8192), "letter": ("a", 8192), "newline": ("\n", 2048), "cr": ("\r", 8192),
    "dot": (".", 8192), "hash_space": ("# ", 8192), "comment_lines": ("\n#", 2048), "crlf": ("\r\n", 2048),
    "escaped_quote": ('\\"', 2048),
}

# After the run: a layer (the look-ahead for another string fails) or, after a token that a
# string may continue, a string (it succeeds).
SUFFIXES = {"layer": '\nlayer { name: "d" type: "Input" top: "data" }\n', "string": ' "y"\n'}
CONTINUED = {"start", "string_field", "single_quoted_field", "colon", "list_string", "adjacent_strings",
             "open_string", "open_escape", "comment"}

REPEATS = 2
RATIO = 12.0        # linear is 4; quadratic 16


class _TooSlow(BaseException):  # not an Exception: netdef.cli.main must not catch it
    pass


@contextmanager
def cpu_budget(seconds: float):
    """Raise _TooSlow when the process has used `seconds` of CPU (a regression must fail, not
    hang). The regex engine checks for signals as it runs, so this interrupts a match."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise _TooSlow()

    old = signal.signal(signal.SIGVTALRM, expired)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old)


def parse_and_render(text: str) -> None:
    parsed = parse_text(Source(text, "t.prototxt"))
    for d in parsed.diagnostics:
        d.render()


def cpu_times(texts, repeats=REPEATS) -> list[float]:
    """Best CPU time of each text, the texts run in turn (so that a busy spell hits all)."""
    best = [float("inf")] * len(texts)
    for _ in range(repeats):
        for i, text in enumerate(texts):
            t0 = time.thread_time()
            parse_and_render(text)
            best[i] = min(best[i], time.thread_time() - t0)
    return best


def text_of(token: str, run: str, suffix: str, scale: int) -> str:
    unit, chars = RUNS[run]
    return TOKENS[token] + unit * (scale * chars // len(unit)) + SUFFIXES[suffix]


@pytest.mark.parametrize("run", list(RUNS))
def test_time_grows_linearly_with_any_run_after_any_token(run):
    slow = []
    for token in TOKENS:
        for suffix in SUFFIXES if token in CONTINUED else ["layer"]:
            texts = [text_of(token, run, suffix, k) for k in (1, 2, 4)]
            try:
                with cpu_budget(20):
                    t1, t2, t4 = cpu_times(texts)
                    if t4 > RATIO * t1:
                        # Measured again before failing: a complexity check must not fail on a
                        # busy spell (cache contention) that only some of the runs met.
                        t1, t2, t4 = cpu_times(texts, REPEATS + 2)
            except _TooSlow:
                pytest.fail(f"{token}+{run}+{suffix}: more than 20 s of CPU for {len(texts[-1])} characters")
            if t4 > RATIO * t1:
                chars = RUNS[run][1]
                slow.append(f"{token}+{run}+{suffix}: {t1 * 1e3:.2f} / {t2 * 1e3:.2f} / {t4 * 1e3:.2f} ms "
                            f"at {chars} / {2 * chars} / {4 * chars} characters")
    assert not slow, "time grows faster than the input:\n" + "\n".join(slow)


def test_the_issue_repro_is_instant(tmp_path, capsys):
    """The repro of issue 11: 26 '#' after `name: "x"` (the old lexer took minutes; 40 here)."""
    path = tmp_path / "h.prototxt"
    path.write_text('name: "x"\n' + "#" * 40 + '\n' + " " * 40 + "\n"
                    'layer { name: "d" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                    + "\t" * 40 + "\n")
    with cpu_budget(20):
        assert main(["check", str(path)]) == 0
    capsys.readouterr()


# What the restructured patterns must still read as protobuf's text_format does: comments and
# blanks anywhere between tokens, strings continued across comments, long comment runs (more
# than the lexer takes with one token), comments at the very end.
@pytest.mark.parametrize("text", [
    'name: "a" # c\n "b"',
    'name: "a" #\n#\n "b" \'c\'',
    'name: "a"   # trailing\nlayer { name: "b" }',
    'name: "a"\t\r\n' + "#" * 30 + "\n" + " " * 30 + '\nlayer { name: "b" }',
    "".join(f"# line {i}\n" for i in range(40)) + 'name: "a"' + "".join(f"\n  # {i}" for i in range(25)),
    'layer {' + "\n#\n" * 20 + ' name: "b" # x\n}' + "# end",
    'layer { bottom: [ # a\n "x", # b\n "y" # c\n ] }',
    'name: "\\"#\\"" # a "quoted" comment',
    "name: 'it''s' # two strings",
    'input_dim: 1 # n\ninput_dim: 3#c\ninput_dim:5',
    'name:"a"#c',
    "#",
    "",
])
def test_blanks_and_comments_read_as_text_format_does(text):
    parsed = parse_text(Source(text, "t.prototxt"), NET)
    assert not parsed.diagnostics.has_errors, [d.render() for d in parsed.diagnostics]
    ref = pb.NetParameter()
    text_format.Parse(text, ref)
    assert parsed.message == ref


def test_an_unterminated_string_after_a_long_run_is_reported_at_its_quote():
    text = 'name: "x"' + " " * 5000 + '\nlayer { name: "d\n}\n'
    parsed = parse_text(Source(text, "t.prototxt"))
    (d,) = list(parsed.diagnostics)
    assert d.code == "E102" and d.span.line == 2 and d.span.col == 15
