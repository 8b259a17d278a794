"""Outputs are written atomically: for every command that writes a file, a failing run (bad
input, an unwritable destination, a disk that fails, Ctrl-C, SIGTERM, SIGKILL) leaves a previous
output byte-identical, and leaves no temporary file behind (SIGKILL, which no process can
clean up after, may leave one `.netdef-*` file; never a half-written output)."""
import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from fuzzlib import cli_ok, run_cli

from netdef import outputs

GOOD_NET = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n' \
           'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }\n'
BAD_NET = GOOD_NET + 'layer { name: "oops" type: "ReLU" bottom: "conv" top: "conv" relu_param { negative_slope: } }\n'
GOOD_SOLVER = 'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "step"\nstepsize: 10\ngamma: 0.5\nmax_iter: 40\n'
BAD_SOLVER = 'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "stepp"\nmax_iter: 40\n'

# command -> (argv before the output path, output name, whether the input is a solver)
WRITERS = {
    "summary": (["summary", "{input}", "-o"], "summary.txt", False),
    "fmt": (["fmt", "{input}", "-o"], "fmt.prototxt", False),
    "upgrade": (["upgrade", "{input}", "-o"], "upgraded.prototxt", False),
    "draw-dot": (["draw", "{input}", "-o"], "net.dot", False),
    "draw-svg": (["draw", "{input}", "-o"], "net.svg", False),
    "export": (["export", "{input}", "-o"], "net.onnx", False),
    "init": (["init", "{input}", "-o"], "net.caffemodel", False),
    "lr-plot": (["lr", "{input}", "--iters", "0:40", "--plot"], "lr.svg", True),
}
PREVIOUS = b"previous output \x00\xff\n" * 100


def setup(tmp_path, kind, good=True):
    (tmp_path / "net.prototxt").write_text(GOOD_NET if good or WRITERS[kind][2] else BAD_NET)
    (tmp_path / "solver.prototxt").write_text(GOOD_SOLVER if good else BAD_SOLVER)
    argv, name, solver = WRITERS[kind]
    src = tmp_path / ("solver.prototxt" if solver else "net.prototxt")
    out = tmp_path / "out" / name
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(PREVIOUS)
    return [a.format(input=src) for a in argv], out


def listing(d):
    return sorted(os.listdir(d))


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_success_replaces_and_failure_keeps(kind, tmp_path):
    argv, out = setup(tmp_path, kind, good=False)
    r = cli_ok(*argv, out, files=[tmp_path / "net.prototxt", tmp_path / "solver.prototxt"])
    assert r.code == 1
    assert out.read_bytes() == PREVIOUS and listing(out.parent) == [out.name]
    argv, out = setup(tmp_path, kind, good=True)
    r = cli_ok(*argv, out)
    assert r.code == 0, r.err
    assert out.read_bytes() != PREVIOUS and listing(out.parent) == [out.name]
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def output_failure(r):
    """A failure to write: exit 1, the one line that says so, nothing else broken."""
    assert r.code == 1 and "Traceback" not in r.err and "internal error" not in r.err, r.err
    assert r.err.rstrip().splitlines()[-1].startswith("netdef: error: cannot write"), r.err


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_unwritable_destinations_fail_in_one_line(kind, tmp_path):
    argv, out = setup(tmp_path, kind)
    isdir = tmp_path / f"a_directory{out.suffix}"
    isdir.mkdir()
    for dest in (tmp_path / "no" / "such" / "dir" / out.name, isdir, f"/proc/netdef-test-output{out.suffix}"):
        output_failure(run_cli(argv + [str(dest)]))
    assert out.read_bytes() == PREVIOUS and listing(out.parent) == [out.name]


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_failing_disk_leaves_the_previous_file(kind, tmp_path, monkeypatch):
    """The rename at the end fails (ENOSPC, EIO, ...): one-line error, no temporary left."""
    argv, out = setup(tmp_path, kind)

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "replace", full)
    r = run_cli(argv + [str(out)])
    output_failure(r)
    assert "No space left" in r.err
    assert out.read_bytes() == PREVIOUS and listing(out.parent) == [out.name]


def test_symlinks_are_followed_and_kept(tmp_path):
    argv, out = setup(tmp_path, "fmt")
    link = tmp_path / "out" / "link.prototxt"
    link.symlink_to(out.name)
    assert cli_ok(*argv, link).code == 0
    assert link.is_symlink() and b"convolution_param" in out.read_bytes()


def test_pipes_and_devices_are_written_in_place(tmp_path):
    """`-o` naming a FIFO (as /dev/stdout or /dev/null would be): written into, never
    replaced by a regular file (as root, a rename over /dev/null replaced the device)."""
    argv, out = setup(tmp_path, "fmt")
    fifo = tmp_path / "out" / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    r = cli_ok(*argv, fifo)
    reader.join(10)
    assert r.code == 0 and b"convolution_param" in got[0]
    assert fifo.is_fifo()


BIG_NET = ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4096 } } }\n'
           'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 24000 '
           'weight_filler { type: "gaussian" std: 0.01 } } }\n')  # 98 M weights: 393 MB written


# The child's final rename waits a minute, so that the signal surely arrives before it (on a
# loaded machine the test could otherwise lose the race): it lands while the output is being
# written, or at worst between the last byte and the rename.
CHILD = """import os, sys, time
from netdef.cli import main
rename = os.replace
def late(a, b):
    time.sleep(60)
    rename(a, b)
os.replace = late
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("cmd,sig", [("export", signal.SIGINT), ("export", signal.SIGTERM), ("init", signal.SIGINT),
                                     ("init", signal.SIGHUP), ("export", signal.SIGKILL)])
def test_killed_mid_write(cmd, sig, tmp_path):
    """A real run is interrupted once its temporary output exists (it is being written)."""
    net = tmp_path / "big.prototxt"
    net.write_text(BIG_NET)
    d = tmp_path / "out"
    d.mkdir()
    out = d / ("m.onnx" if cmd == "export" else "m.caffemodel")
    out.write_bytes(PREVIOUS)
    p = subprocess.Popen([sys.executable, "-c", CHILD, cmd, str(net), "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    while not any(n.startswith(".netdef-") for n in os.listdir(d)):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    status = open(f"/proc/{p.pid}/status").read()
    masks = [line for line in status.splitlines() if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert out.read_bytes() == PREVIOUS, (p.returncode, err, masks)
    if sig == signal.SIGKILL:
        assert p.returncode == -signal.SIGKILL
        assert all(n == out.name or n.startswith(".netdef-") for n in listing(d))
    else:
        assert p.returncode == 1 and "Traceback" not in err
        assert ("interrupted" if sig == signal.SIGINT else f"terminated by {sig.name}") in err
        assert listing(d) == [out.name]


def test_interrupted_while_graphviz_renders(tmp_path):
    """Ctrl-C while `dot` lays out a big graph: nothing written, no `dot` left running."""
    d = tmp_path / "out"
    d.mkdir()
    out = d / "big.svg"
    out.write_bytes(PREVIOUS)
    p = subprocess.Popen([sys.executable, "-m", "netdef", "draw", "inception_resnet_v2", "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode in (0, 1) and "Traceback" not in err
    if p.returncode == 1:
        assert out.read_bytes() == PREVIOUS
    assert listing(d) == [out.name]


def test_in_process_interruption_cleans_up(tmp_path, monkeypatch):
    """KeyboardInterrupt raised inside the writer (as SIGINT/SIGTERM do) removes the temp."""
    argv, out = setup(tmp_path, "export")
    real = outputs.os.replace

    def interrupted(src, dst):
        assert os.path.basename(src).startswith(".netdef-") and os.path.getsize(src) > 0
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs.os, "replace", interrupted)
    r = run_cli(argv + [str(out)])
    assert r.code == 1 and "interrupted" in r.err
    assert out.read_bytes() == PREVIOUS and listing(out.parent) == [out.name]
    monkeypatch.setattr(outputs.os, "replace", real)


def _default_sigint():
    # A background job inherits SIGINT ignored, and Python then leaves it ignored: restore the
    # default so the child behaves as under a terminal's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m
