"""Pooling's rounding has one meaning in analysis, the NumPy reference and the ONNX export.

The forks' `ceil_mode: false` (netdef/forks.py: the field of BVLC/caffe pull request 3057 that
the DenseNet and ResNeXt ports use) rounds the pooled size down, as BVLC's `round_mode: FLOOR`.
"""
import numpy as np
import pytest

from netdef.cli import main
from netdef.parse import parse_text
from netdef.reference import forward
from netdef.source import Source

NET = '''name: "p"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: 2 dim: 10 dim: 10 }} }} }}
layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param {{ pool: {pool} kernel_size: 3 stride: 2 {extra} }} }}
'''


@pytest.mark.parametrize("extra,side", [
    ("ceil_mode: false", 4),      # (10 - 3) / 2 = 3.5: floor 3 + 1
    ("ceil_mode: False", 4),      # protobuf's text format spells a bool several ways
    ("ceil_mode: 0", 4),
    ("ceil_mode: true", 5),       # ceil 4 + 1, BVLC's default
    ("round_mode: FLOOR", 4),
    ("", 5),
])
@pytest.mark.parametrize("pool", ["MAX", "AVE"])
def test_analysis_reference_and_export_agree(tmp_path, capsys, extra, side, pool):
    text = NET.format(pool=pool, extra=extra)
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    parsed = parse_text(Source(text, "net.prototxt"))
    x = np.arange(200, dtype=np.float32).reshape(1, 2, 10, 10)
    y = forward(parsed.message, {}, {"data": x}, loc=parsed.loc)["pool"]
    assert y.shape == (1, 2, side, side)
    # Independent: the windows start at 0, 2, 4, ...; MAX of an increasing ramp is the window's
    # last element (clipped to the input), AVE its mean over the clipped window.
    for i in range(side):
        for j in range(side):
            win = x[0, :, 2 * i:min(2 * i + 3, 10), 2 * j:min(2 * j + 3, 10)]
            want = win.max(axis=(1, 2)) if pool == "MAX" else win.mean(axis=(1, 2))
            np.testing.assert_allclose(y[0, :, i, j], want, rtol=1e-6)
    # verify: export, run with onnxruntime, compare every blob with the reference.
    assert main(["verify", str(path)]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    if "ceil_mode" in extra:
        assert "warning[W216]: 'ceil_mode' is not a BVLC Caffe field" in err and "ignores" not in err


def test_summary_shape_follows_ceil_mode(tmp_path, capsys):
    import json
    path = tmp_path / "net.prototxt"
    path.write_text(NET.format(pool="MAX", extra="ceil_mode: false"))
    assert main(["summary", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    text = json.dumps(doc)
    assert "[1, 2, 4, 4]" in text and "[1, 2, 5, 5]" not in text


def test_ceil_mode_that_is_not_a_bool_is_an_error(tmp_path, capsys):
    path = tmp_path / "net.prototxt"
    path.write_text(NET.format(pool="MAX", extra="ceil_mode: maybe"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "ceil_mode must be true or false, got maybe" in err


@pytest.mark.parametrize("name", ["densenet121", "resnext50_32x4d"])
def test_zoo_nets_with_ceil_mode_false(name):
    """Both zoo ports pool 112x112 with 3x3/2 pad 1 and ceil_mode: false: 56x56, as the
    PyTorch originals they were converted from (rounding up would give 57x57)."""
    import netdef
    from conftest import ZOO
    graph = netdef.compile(str(ZOO / name / "deploy.prototxt"))
    pool = next(n for n in graph.nodes if n.type == "Pooling")
    assert pool.outputs[0].meta["shape"][2:] == (56, 56)


# Windows wholly past the input: a kernel smaller than the stride, no padding, rounding up.
# Caffe (BVLC src/caffe/layers/pooling_layer.cpp, Forward_cpu) clips each window to the input:
# an empty one leaves MAX at its initial -FLT_MAX, and AVE divides a zero sum by
# min(start + k, H + pad) - start, which is negative past the end (a zero of either sign).
PAST = '''name: "past"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: 2 dim: {h} dim: 7 }} }} }}
layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param {{ pool: {pool} kernel_h: 1 kernel_w: 2 stride_h: {sh} stride_w: 4 }} }}
'''


# Rows: 5 with stride 3 start at 0, 3, 6 (6 past 5: size 5 - 6 = -1); 4 with stride 2 start at
# 0, 2, 4 (4 is the end: size 0, Caffe's AVE is 0 / 0). Columns: 7 with stride 4 start at 0, 4,
# 8 (past 7). ceil((H - k) / s) + 1 = 3 either way.
@pytest.mark.parametrize("h,sh", [(5, 3), (4, 2)])
@pytest.mark.parametrize("pool", ["MAX", "AVE"])
def test_windows_wholly_past_the_input(tmp_path, capsys, pool, h, sh):
    text = PAST.format(pool=pool, h=h, sh=sh)
    parsed = parse_text(Source(text, "net.prototxt"))
    x = np.random.default_rng(0).standard_normal((1, 2, h, 7)).astype(np.float32)
    y = forward(parsed.message, {}, {"data": x}, loc=parsed.loc)["pool"]
    assert y.shape == (1, 2, 3, 3)
    for i in range(3):
        for j in range(3):
            win = x[0, :, sh * i:sh * i + 1, 4 * j:4 * j + 2]
            if win.size == 0 and pool == "MAX":
                np.testing.assert_array_equal(y[0, :, i, j], -np.finfo(np.float32).max)
            elif win.size == 0:
                with np.errstate(invalid="ignore"):
                    want = np.float32(0.0) / np.float32((min(sh * i + 1, h) - sh * i) * (min(4 * j + 2, 7) - 4 * j))
                np.testing.assert_array_equal(y[0, :, i, j], want)
            else:
                want = win.max(axis=(1, 2)) if pool == "MAX" else win.mean(axis=(1, 2))
                np.testing.assert_allclose(y[0, :, i, j], want, rtol=1e-6)
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(path), "-o", str(onnx_path)]) == 0, capsys.readouterr().err
    import onnxruntime as ort
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"data": x})
    np.testing.assert_allclose(out, y, rtol=1e-6)
    assert main(["verify", str(path)]) == 0, capsys.readouterr().err


def test_padding_on_one_axis_clips_both(tmp_path, capsys):
    # BVLC pooling_layer.cpp Reshape clips the last window of BOTH axes when pad_h OR pad_w is
    # set. Rows: pad 1, kernel 2, stride 3 on 5: ceil(5 / 3) + 1 = 3, the third window would
    # start at 6 - 1 = 5, in the padding: 2. Columns: no pad, kernel 1: ceil(4 / 3) + 1 = 3, the
    # third window starts at 6 >= 5 + 0: clipped too, 2. Windows: rows {0} and {2, 3}, columns
    # {0} and {3} of a 5 x 5 ramp: [[0, 3], [15, 18]], which the SSD-fork Caffe also gives.
    text = ('name: "p"\nlayer { name: "d" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 5 '
            'dim: 5 } } }\nlayer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: MAX '
            'kernel_h: 2 kernel_w: 1 stride: 3 pad_h: 1 pad_w: 0 } }\n')
    parsed = parse_text(Source(text, "net.prototxt"))
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    y = forward(parsed.message, {}, {"data": x}, loc=parsed.loc)["p"]
    np.testing.assert_array_equal(y, [[[[0, 3], [15, 18]]]])
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    assert main(["verify", str(path)]) == 0, capsys.readouterr().err


def test_a_pooling_top_of_no_windows_says_the_forward_aborts(tmp_path, capsys):
    # ceil((4 - 9) / 4) + 1 = -1 + 1 = 0 windows: Caffe loads the net (Blob::Reshape takes 0) and
    # its forward aborts on the top of 0 elements; a warning, as every size Caffe loads.
    path = tmp_path / "net.prototxt"
    path.write_text('layer { name: "d" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 '
                    'dim: 4 } } }\nlayer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param '
                    '{ pool: MAX kernel_size: 9 stride: 4 } }\n')
    assert main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning[W414]" in err and "Caffe computes 0 x 0 windows, an empty top" in err
    assert "its forward aborts on the empty top" in err
