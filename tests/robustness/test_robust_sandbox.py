"""A definition is data, never code, and names no files netdef touches except the outputs the
user names (and, for a solver, the nets it names, read relative to the solver).

Watched with a Python audit hook (sys.addaudithook) while the command line runs in-process:
every file opened, every module imported, every process started. A Python layer whose module
is planted next to the definition (and on sys.path) must never be imported; a module "os" /
layer "system" must never run; data sources, mean files, HDF5 outputs and snapshot prefixes
named in a definition are never opened, read or written.
"""
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from fuzzlib import cli_ok

_EVENTS = None  # a list while recording; the hook cannot be removed, so it checks this
_WATCHED = ("open", "import", "os.system", "subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn",
            "os.fork", "os.startfile", "exec", "ctypes.dlopen")


def _hook(event, args):
    if _EVENTS is not None and event in _WATCHED:
        _EVENTS.append((event, args))


sys.addaudithook(_hook)


@contextmanager
def audit():
    global _EVENTS
    _EVENTS = events = []
    try:
        yield events
    finally:
        _EVENTS = None


def opened(events):
    out = []
    for event, args in events:
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            out.append(os.path.abspath(os.fsdecode(args[0])))
    return out


def imported(events):
    return [args[0] for event, args in events if event == "import"]


EVIL = '''
import pathlib
pathlib.Path(__file__).with_name("IMPORTED").write_text("netdef imported a Python layer's module")
class Evil:
    def setup(self, bottom, top):
        pathlib.Path(__file__).with_name("SETUP").write_text("and ran it")
'''


def plant(tmp: Path) -> dict:
    """A definition with Python layers and every field that names a file, and the files."""
    (tmp / "evil.py").write_text(EVIL)
    files = {name: tmp / name for name in ("train_lmdb", "mean.binaryproto", "images.txt", "h5list.txt",
                                           "windows.txt", "infogain.binaryproto")}
    for p in files.values():
        p.write_text("secret\n")
    net = f'''name: "sandbox"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: 3 dim: 8 dim: 8 }} }} }}
layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ dim: 1 dim: 1 dim: 8 dim: 8 }} }} }}
layer {{ name: "lmdb" type: "Data" top: "d1" top: "l1" include {{ phase: TRAIN }}
  data_param {{ source: "{files['train_lmdb']}" batch_size: 2 backend: LMDB }}
  transform_param {{ mean_file: "{files['mean.binaryproto']}" crop_size: 8 }} }}
layer {{ name: "img" type: "ImageData" top: "d2" top: "l2" include {{ phase: TRAIN }}
  image_data_param {{ source: "{files['images.txt']}" batch_size: 2 new_height: 8 new_width: 8 }} }}
layer {{ name: "h5" type: "HDF5Data" top: "d3" include {{ phase: TRAIN }} hdf5_data_param {{ source: "{files['h5list.txt']}" batch_size: 2 }} }}
layer {{ name: "win" type: "WindowData" top: "d4" top: "l4" include {{ phase: TRAIN }}
  window_data_param {{ source: "{files['windows.txt']}" batch_size: 2 }} transform_param {{ crop_size: 8 }} }}
layer {{ name: "py" type: "Python" bottom: "data" top: "py" python_param {{ module: "evil" layer: "Evil" param_str: "x" }} }}
layer {{ name: "sys" type: "Python" bottom: "data" top: "sys"
  python_param {{ module: "os" layer: "system" param_str: "touch {tmp / 'SYSTEM_RAN'}" }} }}
layer {{ name: "relu" type: "ReLU" bottom: "data" top: "relu" }}
layer {{ name: "out" type: "HDF5Output" bottom: "relu" bottom: "data" hdf5_output_param {{ file_name: "{tmp / 'written.h5'}" }} }}
layer {{ name: "loss" type: "InfogainLoss" bottom: "relu" bottom: "label" top: "loss" include {{ phase: TRAIN }}
  infogain_loss_param {{ source: "{files['infogain.binaryproto']}" }} }}
'''
    (tmp / "net.prototxt").write_text(net)
    return files


COMMANDS = [["check"], ["check", "--phase", "TRAIN"], ["summary"], ["summary", "--phase", "TRAIN"], ["rf"],
            ["sizes", "--range", "1:12"], ["fmt"], ["upgrade"], ["draw", "-o", "{tmp}/d.dot"],
            ["draw", "-o", "{tmp}/d.dot", "--phase", "TRAIN"], ["export", "-o", "{tmp}/m.onnx"],
            ["init", "-o", "{tmp}/m.caffemodel"], ["verify"], ["run"],
            ["export", "-o", "{tmp}/m.onnx", "--input", "py=1,3,8,8", "--input", "sys=1,3,8,8"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: "-".join(x.split("/")[-1] for x in a))
def test_python_layers_are_never_imported_and_named_files_never_touched(argv, tmp_path, monkeypatch):
    files = plant(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # an import of 'evil' would succeed
    monkeypatch.chdir(tmp_path)
    net = tmp_path / "net.prototxt"
    argv = [a.format(tmp=tmp_path) for a in argv]
    before = set(os.listdir(tmp_path))
    with audit() as events:
        r = cli_ok(argv[0], net, *argv[1:], files=[net])
    assert "evil" not in sys.modules and "evil" not in imported(events)
    assert not any(e in ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork") for e, _ in events)
    assert not any(e == "subprocess.Popen" for e, _ in events), "no command here needs a program"
    touched = set(opened(events))
    assert str(net) in touched, "the hook sees the definition being read"
    for p in files.values():
        assert str(p) not in touched, f"{p.name} was opened"
    outputs = {a for a in argv if a.startswith(str(tmp_path))}
    for p in touched:
        if p.startswith(str(tmp_path)):
            name = os.path.basename(p)
            assert p == str(net) or p in outputs or name.startswith(".netdef-"), f"opened {p}"
    new = set(os.listdir(tmp_path)) - before
    assert new <= {os.path.basename(o) for o in outputs}, new
    assert not {"IMPORTED", "SETUP", "SYSTEM_RAN", "written.h5"} & set(os.listdir(tmp_path))
    if argv[0] == "summary":
        # Totals over part of the net are an error since issue 11 (E415); still nothing imported.
        assert r.code == 1 and "never imports" in r.err and "error[E415]" in r.err
    elif argv[0] in ("check", "draw"):
        assert r.code == 0 and "never imports" in r.err


def test_a_python_layer_in_a_subprocess_with_the_module_importable(tmp_path):
    """The same through `python -m netdef`, with the planted module on PYTHONPATH and as the
    working directory, for the commands that describe and draw: the marker never appears."""
    plant(tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for argv in (["check"], ["draw", "-o", str(tmp_path / "d.svg")], ["export", "-o", str(tmp_path / "m.onnx")]):
        r = subprocess.run([sys.executable, "-m", "netdef", argv[0], "net.prototxt", *argv[1:]], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    assert not {"IMPORTED", "SETUP", "SYSTEM_RAN", "written.h5"} & set(os.listdir(tmp_path))
    svg = (tmp_path / "d.svg").read_text()
    assert "evil" in svg and "Evil" in svg, "the Python layer is drawn, named by its module and class"


SOLVER = '''net: "{net}"
base_lr: 0.01
lr_policy: "step"
stepsize: 100
gamma: 0.1
max_iter: 200
snapshot: 50
snapshot_prefix: "{snap}"
test_iter: 1
test_interval: 100
'''


def test_solver_nets_are_read_relative_to_the_solver(tmp_path, monkeypatch):
    (tmp_path / "solvers" / "nets").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # Caffe would look here; netdef looks beside the solver
    net = tmp_path / "solvers" / "nets" / "train.prototxt"
    net.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }\n'
                   'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }\n')
    solver = tmp_path / "solvers" / "solver.prototxt"
    solver.write_text(SOLVER.format(net="nets/train.prototxt", snap=tmp_path / "snap" / "iter"))
    with audit() as events:
        r = cli_ok("solver", solver, files=[solver, net])
        r2 = cli_ok("lr", solver, "--iters", "0:10")
    assert r.code == 0 and r2.code == 0, r.err
    assert str(net) in opened(events)
    assert not (tmp_path / "snap").exists() and os.listdir(elsewhere) == []
    assert not any(p.startswith(str(tmp_path / "snap")) for p in opened(events))


@pytest.mark.parametrize("name", ["missing.prototxt", "../../nowhere/net.prototxt", "/nonexistent/dir/net.prototxt"])
def test_missing_solver_nets_are_reported_at_the_net_field(name, tmp_path):
    solver = tmp_path / "solver.prototxt"
    solver.write_text(SOLVER.format(net=name, snap="snap"))
    r = cli_ok("solver", solver, files=[solver])
    assert r.code == 1
    assert f"{solver}:1:6: error[E622]" in r.err and name in r.err
    assert "relative to the solver" in r.err
    assert sorted(os.listdir(tmp_path)) == ["solver.prototxt"]
