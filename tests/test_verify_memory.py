"""verify's memory on big nets (issue 11): the NumPy reference lets a blob go once the last
layer that reads it has run, verify drops onnxruntime's value of a blob once it is compared, and
onnxruntime's values come in runs of at most SEGMENT_BYTES each; none of it changes what is
compared or the numbers (netdef/export/verify.py, netdef/reference/net.py; measured in
benchmarks/verify_memory.py). Live arrays are counted with weak references: no timing, no RSS."""
import json
import weakref

import numpy as np
import pytest

import netdef.reference as reference
from netdef.cli import main
from netdef.diagnostics import Diagnostics
from netdef.export import runtime
from netdef.export import verify as V
from netdef.export.verify import rel_error, verify
from netdef.parse import parse_text
from netdef.source import Source

DEPTH = 10


def _chain(depth=DEPTH) -> str:
    """Input -> (Convolution -> ReLU in place) x depth -> Pooling: 2 * depth + 2 values."""
    layers = ['layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 12 dim: 12 } } }']
    bottom = "data"
    for i in range(depth):
        layers.append(f'layer {{ name: "c{i}" type: "Convolution" bottom: "{bottom}" top: "c{i}" '
                      f'convolution_param {{ num_output: 4 kernel_size: 3 pad: 1 '
                      f'weight_filler {{ type: "gaussian" std: 0.3 }} }} }}')
        layers.append(f'layer {{ name: "r{i}" type: "ReLU" bottom: "c{i}" top: "c{i}" }}')
        bottom = f"c{i}"
    layers.append(f'layer {{ name: "pool" type: "Pooling" bottom: "{bottom}" top: "pool" '
                  f'pooling_param {{ pool: AVE kernel_size: 2 stride: 2 }} }}')
    return 'name: "chain"\n' + "\n".join(layers) + "\n"


@pytest.fixture
def chain(tmp_path):
    p = tmp_path / "chain.prototxt"
    p.write_text(_chain())
    return p


def test_the_reference_lets_a_blob_go_after_its_last_reader():
    net = parse_text(Source(_chain(), "chain.prototxt"), "net").message
    rng = np.random.default_rng(0)
    weights = {f"c{i}": [rng.standard_normal((4, 4, 3, 3)).astype(np.float32), np.zeros(4, np.float32)]
               for i in range(DEPTH)}
    data = rng.standard_normal((1, 4, 12, 12)).astype(np.float32)
    refs, steps = [], 0
    for step in reference.trace(net, weights, {"data": data}):
        refs += [weakref.ref(v) for v in step.values]
        assert len(step.inputs or []) == len(step.bottoms)
        # Alive: the caller's input, this step's values and the bottoms it read (Step.inputs);
        # every earlier value is gone once its last reader has run.
        allowed = {id(data)} | {id(v) for v in step.values} | {id(v) for v in step.inputs or []}
        alive = [r() for r in refs if r() is not None]
        assert {id(v) for v in alive} <= allowed, (step.layer, len(alive))
        del alive, step
        steps += 1
    assert steps == 2 * DEPTH + 2 and len(refs) == steps


def test_forward_still_returns_every_blob():
    net = parse_text(Source(_chain(3), "chain.prototxt"), "net").message
    weights = {f"c{i}": [np.ones((4, 4, 3, 3), np.float32), np.zeros(4, np.float32)] for i in range(3)}
    blobs = reference.forward(net, weights, {"data": np.ones((1, 4, 12, 12), np.float32)})
    assert set(blobs) == {"data", "c0", "c1", "c2", "pool"}
    # Independent: ones through a 3x3x4 all-ones kernel with pad 1 give 36 inside, 16 at corners.
    assert blobs["c0"][0, 0, 5, 5] == 36 and blobs["c0"][0, 0, 0, 0] == 16


def _count_live(monkeypatch):
    """Weak references to every array onnxruntime returns and every value the reference
    computes; `live` collects, at each reference step, how many of them are still alive."""
    theirs, ours, live, runs = [], [], [], []
    run = runtime.Session.run

    def counting_run(self, feed, outputs=None):
        out = run(self, feed, outputs)
        runs.append(len(out))
        theirs.extend(weakref.ref(v) for v in out.values())
        return out
    trace = reference.trace

    def counting_trace(*a, **k):
        for step in trace(*a, **k):
            ours.extend(weakref.ref(v) for v in step.values)
            yield step
            live.append((sum(r() is not None for r in theirs), sum(r() is not None for r in ours)))
    monkeypatch.setattr(runtime.Session, "run", counting_run)
    monkeypatch.setattr(reference, "trace", counting_trace)
    return live, runs


def test_verify_compares_as_it_goes_and_holds_few_values(chain, monkeypatch):
    live, runs = _count_live(monkeypatch)
    report = verify(str(chain), diags=Diagnostics(), segment_bytes=0)
    assert report.first_bad is None and len(report.comparisons) == DEPTH * 2 + 1
    assert runs == [2 * DEPTH + 1]            # one run: every value an output, as before
    # onnxruntime's values go as they are compared (21 at first, then one fewer per step); the
    # reference's values go after their last reader: never more than a few at once.
    theirs = [t for t, _ in live]
    assert theirs[-1] == 0 and all(b < a for a, b in zip(theirs[1:], theirs[2:])), theirs
    assert max(o for _, o in live) <= 3, live


def test_segments_run_the_model_in_parts_with_the_same_numbers(chain, monkeypatch):
    whole = verify(str(chain), diags=Diagnostics(), segment_bytes=0)
    live, runs = _count_live(monkeypatch)
    # Each value of the chain is 4x12x12 float32 (2304 bytes; the pooling's 576): three per run.
    parts = verify(str(chain), diags=Diagnostics(), segment_bytes=3 * 2304)
    assert len(runs) == 7
    assert [(c.layer, c.top, c.error, c.shape) for c in parts.comparisons] == \
           [(c.layer, c.top, c.error, c.shape) for c in whole.comparisons]
    assert parts.provider == whole.provider and parts.skipped == whole.skipped
    # At most one segment's values (3) and the model's own output are held at any step.
    assert max(t for t, _ in live) <= 4, live


def test_a_net_that_decides_is_verified_in_one_run(tmp_path, capsys, monkeypatch):
    # Two runs of different models need not round alike in the last bit, so a tie adopted from
    # one run could be picked the other way in the run that computes the unpooling (SegNet's
    # pool2/upsample2 did): a net with a mask top runs once, whatever SEGMENT_BYTES says.
    from test_verify_ties import _inputs
    monkeypatch.setattr(V, "SEGMENT_BYTES", 1)
    _, runs = _count_live(monkeypatch)
    code = main(["verify", *_inputs(tmp_path), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["ok"] and doc["argmax_ties"] == 1
    assert len(runs) == 1, runs
    by_top = {c["top"]: c for c in doc["comparisons"]}
    assert by_top["pool_mask"]["argmax_ties"] == 1 and by_top["unpool"]["ok"]


def test_rel_error_in_chunks():
    # Computed by hand: differences 0, 0.5, 0 (NaN on both sides), 0 (the same infinity), 3;
    # the largest finite |b| is 4, so the error is 3 / 4.
    a = np.array([1, 2, np.nan, np.inf, 1], np.float32)
    b = np.array([1, 2.5, np.nan, np.inf, 4], np.float32)
    for chunk in (1, 2, 3, 1 << 20):
        assert rel_error(a, b, chunk=chunk) == 0.75
        assert rel_error(a[:2], b[:2], chunk=chunk) == 0.2          # 0.5 / max(1, 2.5)
        assert rel_error(np.array([np.nan, 1], np.float32), np.array([1, 1], np.float32), chunk=chunk) == np.inf
        assert rel_error(np.array([-np.inf, 1]), np.array([np.inf, 1]), chunk=chunk) == np.inf
    assert rel_error(np.zeros((2, 3)), np.zeros((3, 2))) == np.inf
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0
