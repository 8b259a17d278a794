"""verify and a MAX pooling's argmax mask: a near-tie that the float32 runtime and the float64
reference order differently is accepted and counted (the reference continues with onnxruntime's
index, so the Upsample that unpools with the mask agrees); a mask that differs anywhere else
still fails (netdef/export/verify.py settle_ties, netdef/reference/pool.py argmax_ties).

The tie is built, not found: the pooled blob is the Eltwise sum a + b + c. At cell (0, 1)
a = 1, b = c = 2^-24 (half an ulp of 1): onnxruntime adds in float32, (1 + 2^-24) rounds to
even, 1, and again 1; the reference sums in float64, 1 + 2^-23, which float32 holds exactly
(1 + 1 ulp). Cell (0, 0) is 1. The first window is then [1, 1 | 0, 0] for onnxruntime (first
maximum: index 0) and [1, 1+ulp | 0, 0] for the reference (index 1): a one-ulp tie.
"""
import json

import numpy as np
import pytest

from netdef.cli import main
from netdef.reference import pool as ref_pool

NET = """name: "ties"
layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 4 } } }
layer { name: "b" type: "Input" top: "b" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 4 } } }
layer { name: "c" type: "Input" top: "c" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 4 } } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "sum" }
layer { name: "pool" type: "Pooling" bottom: "sum" top: "pool" top: "pool_mask"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "unpool" type: "Upsample" bottom: "pool" bottom: "pool_mask" top: "unpool"
        upsample_param { scale: 2 } }
"""
HALF_ULP = np.float32(2.0 ** -24)
# Window 0 (columns 0-1): the tie above. Window 1 (columns 2-3): 3 is the maximum, 2 the next.
A = np.array([[[[1, 1, 3, 2], [0, 0, 1, 0]]]], np.float32)


def _inputs(tmp_path, a=A, tie=True):
    b, c = np.zeros_like(a), np.zeros_like(a)
    if tie:
        b[0, 0, 0, 1] = c[0, 0, 0, 1] = HALF_ULP
    net = tmp_path / "ties.prototxt"
    net.write_text(NET)
    args = [str(net)]
    for name, value in (("a", a), ("b", b), ("c", c)):
        np.save(tmp_path / f"{name}.npy", value)
        args += ["--input-file", f"{name}={tmp_path / (name + '.npy')}"]
    return args


def _verify(capsys, *argv):
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_data_makes_the_two_sides_disagree():
    # The premise, in NumPy: float32 addition in order gives 1, the float64 sum 1 + 1 ulp.
    one = np.float32(1)
    assert (one + HALF_ULP) + HALF_ULP == one
    assert np.float32(1.0 + 2.0 ** -24 + 2.0 ** -24) == np.nextafter(one, np.float32(2))


def test_a_one_ulp_tie_is_accepted_counted_and_the_unpooled_map_agrees(tmp_path, capsys):
    code, out, err = _verify(capsys, *_inputs(tmp_path))
    assert code == 0, out + err
    assert "pool_mask" in out and "1 argmax position differs at ties within tolerance" in out
    assert "exceeds tolerance" not in out
    unpool = next(line for line in out.splitlines() if line.startswith("unpool"))
    assert float(unpool.split()[-1]) <= 1e-4


def test_json_counts_the_ties(tmp_path, capsys):
    code, out, _ = _verify(capsys, *_inputs(tmp_path), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["argmax_ties"] == 1
    by_top = {c["top"]: c for c in doc["comparisons"]}
    assert by_top["pool_mask"]["argmax_ties"] == 1 and by_top["unpool"]["argmax_ties"] == 0
    assert by_top["unpool"]["ok"]


# Window 0 is then [1, 1 | 0, 0] on both sides, an exact tie: both keep the first maximum.
def test_without_the_data_tie_no_position_is_counted(tmp_path, capsys):
    code, out, _ = _verify(capsys, *_inputs(tmp_path, tie=False), "--format", "json")
    assert code == 0 and json.loads(out)["argmax_ties"] == 0


def test_without_the_allowance_the_tie_fails(tmp_path, capsys, monkeypatch):
    # The tie is a real disagreement: with no allowance the mask, then the unpooled map, differ.
    monkeypatch.setattr(ref_pool, "argmax_ties", lambda x, mask, *rest: np.zeros(mask.shape, bool))
    code, out, err = _verify(capsys, *_inputs(tmp_path))
    assert code == 1
    assert "error[E514]: layer 'pool' (Pooling)" in err and "'pool_mask'" in err
    assert "unpool" in out and out.count("exceeds tolerance") == 2


def _corrupt_reference_mask(monkeypatch, window, index):
    original = ref_pool.max_pool_mask

    def corrupted(*args, **kwargs):
        mask = original(*args, **kwargs)
        mask[0, 0, 0, window] = index
        return mask
    monkeypatch.setattr(ref_pool, "max_pool_mask", corrupted)


def test_an_index_at_a_smaller_value_fails(tmp_path, capsys, monkeypatch):
    # Window 1 holds 3 at index 2 and 2 at index 3: pointing at the 2 is a wrong argmax, not a tie.
    _corrupt_reference_mask(monkeypatch, 1, 3)
    code, out, err = _verify(capsys, *_inputs(tmp_path, tie=False))
    assert code == 1
    assert "error[E514]: layer 'pool' (Pooling)" in err and "'pool_mask'" in err
    assert "argmax position" not in out


def test_an_index_outside_the_window_fails_even_at_an_equal_value(tmp_path, capsys, monkeypatch):
    # All zeros: every cell holds the window's maximum. Index 2 lies in window 1, not window 0 (a
    # layout error, say), so it is no tie; index 5 (row 1, column 1) lies in window 0 and is one.
    zeros = np.zeros_like(A)
    _corrupt_reference_mask(monkeypatch, 0, 2)
    code, _, err = _verify(capsys, *_inputs(tmp_path, a=zeros, tie=False))
    assert code == 1 and "'pool_mask'" in err
    _corrupt_reference_mask(monkeypatch, 0, 5)
    code, out, err = _verify(capsys, *_inputs(tmp_path, a=zeros, tie=False))
    assert code == 0, out + err
    assert "1 argmax position differs at ties within tolerance" in out


@pytest.mark.parametrize("other,expected", [
    ([[0, 2]], [[False, False]]),        # the same indices: nothing to accept
    ([[1, 2]], [[True, False]]),         # index 1 holds 1 + 1e-7: a tie
    ([[4, 2]], [[True, False]]),         # row 1 of window 0 holds 1 as well: a tie
    ([[0, 3]], [[False, False]]),        # 2.5 against 3: no tie
    ([[2, 2]], [[False, False]]),        # index 2 is window 1's
    ([[-1, 2]], [[False, False]]),       # no index at all
])
def test_argmax_ties(other, expected):
    x = np.array([[[[1, 1 + 1e-7, 3, 2.5], [1, 0, 0, 0]]]])
    mask = np.array([[[[0, 2]]]], np.float32)
    tie = ref_pool.argmax_ties(x, mask, np.array([[other]], np.float32), [2, 2], [2, 2], [0, 0], 1e-4)
    assert tie.tolist() == [[expected]]


# segnet_train's masks differed at more near-ties than its inference twins', and its decoder
# drifted to ~1e-4: its BN layers (LEARN mode) normalise with the batch's own mean and E[x^2]
# over N, H, W, and onnxruntime's ReduceMean over a 360 x 480 plane adds one value after another
# in float32. The export takes the mean over W, then over N and H (layers/norm.py _plane_mean).
BN_NET = """name: "bn"
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 360 dim: 480 } } }
layer { name: "bn" type: "BN" bottom: "x" top: "y"
        bn_param { scale_filler { type: "constant" value: 1 } shift_filler { type: "constant" value: 0 } } }
"""


def test_segnet_bn_batch_statistics_over_a_large_plane_agree(tmp_path, capsys):
    # ReLU-like data (half the plane at 0.3, the rest above): one float32 sum over the plane
    # puts the output 1.2e-3 off (relative); the two-step mean 4.5e-7.
    x = np.random.default_rng(0).standard_normal((1, 1, 360, 480))
    np.save(tmp_path / "x.npy", (np.maximum(x, 0) * 2 + 0.3).astype(np.float32))
    (tmp_path / "bn.prototxt").write_text(BN_NET)
    code, out, _ = _verify(capsys, str(tmp_path / "bn.prototxt"), "--input-file", f"x={tmp_path / 'x.npy'}",
                           "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"], out
    assert doc["max_error"] < 1e-5


# The same two-step mean serves every layer that normalises with statistics of the data itself:
# BVLC BatchNorm with use_global_stats: false, MVN (with and without variance, across channels).
PLANE_NETS = {
    "batchnorm": 'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" batch_norm_param { use_global_stats: false } }',
    "mvn": 'layer { name: "mvn" type: "MVN" bottom: "x" top: "y" }',
    "mvn_mean_only": 'layer { name: "mvn" type: "MVN" bottom: "x" top: "y" mvn_param { normalize_variance: false } }',
    "mvn_across": 'layer { name: "mvn" type: "MVN" bottom: "x" top: "y" mvn_param { across_channels: true } }',
}


@pytest.mark.parametrize("kind", sorted(PLANE_NETS))
def test_batch_statistics_over_a_large_plane_agree(tmp_path, capsys, kind):
    # The data of the SegNet BN test; one float32 ReduceMean over the plane is 1e-4 to 1e-3 off.
    x = np.random.default_rng(0).standard_normal((1, 1, 360, 480))
    np.save(tmp_path / "x.npy", (np.maximum(x, 0) * 2 + 0.3).astype(np.float32))
    (tmp_path / "n.prototxt").write_text(
        'name: "n"\nlayer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 360 '
        'dim: 480 } } }\n' + PLANE_NETS[kind] + "\n")
    code, out, _ = _verify(capsys, str(tmp_path / "n.prototxt"), "--input-file", f"x={tmp_path / 'x.npy'}",
                           "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"], out
    assert doc["max_error"] < 1e-5, doc["max_error"]
