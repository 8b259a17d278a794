""".caffemodel reading and writing, matching blobs to layers, and Caffe's fillers.

Oracles: the protobuf runtime decoding the same files (an independent decoder), the weights
real Caffe saved in conformance/, and expectations computed from filler.hpp's formulas.
"""
import math

import numpy as np
import pytest
from conftest import CONFORMANCE, large_file

from netdef import codes
from netdef.diagnostics import DiagnosticError, Diagnostics
from netdef.proto import pb
from netdef.weights import (ParamSpec, bind, fill, init_layer, blob_rng, parse_caffemodel,
                            read_caffemodel, resolve_weights, write_caffemodel)

MODELS = sorted(CONFORMANCE.glob("*/*/weights.caffemodel"))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.parent.name)
def test_reads_what_caffe_saved(path):
    ws = read_caffemodel(path)
    msg = pb.NetParameter()
    msg.ParseFromString(path.read_bytes())
    with_blobs = [layer for layer in msg.layer if layer.blobs]
    assert [lw.name for lw in ws if lw.blobs] == [layer.name for layer in with_blobs]
    for layer in with_blobs:
        lw = ws[layer.name]
        assert lw.type == layer.type
        assert len(lw.blobs) == len(layer.blobs)
        for arr, blob in zip(lw.blobs, layer.blobs):
            assert arr.dtype == np.float32
            assert arr.shape == tuple(blob.shape.dim)
            np.testing.assert_array_equal(arr.ravel(), np.asarray(blob.data, np.float32))


def test_blobs_are_views_of_one_buffer():
    ws = read_caffemodel(large_file("nets/squeezenet_v1.1/weights.caffemodel"))
    bases = {id(b.base if b.base is not None else b) for lw in ws for b in lw.blobs}
    # numpy wraps the bytearray once per frombuffer call; what matters is that no blob owns data.
    assert all(not b.flags.owndata for lw in ws for b in lw.blobs)
    assert bases


def _v1_model(legacy=True, double=False):
    net = pb.NetParameter(name="old")
    layer = net.layers.add(name="fc", type=pb.V1LayerParameter.INNER_PRODUCT)
    w = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    b = np.array([0.5, -1.5])
    for arr in (w, b):
        blob = layer.blobs.add()
        if legacy:
            blob.num, blob.channels = 1, 1
            blob.height, blob.width = (arr.shape if arr.ndim == 2 else (1, arr.shape[0]))
        else:
            blob.shape.dim.extend(arr.shape)
        (blob.double_data if double else blob.data).extend(arr.ravel().tolist())
    return net.SerializeToString(), w, b


@pytest.mark.parametrize("double", [False, True])
def test_v1_layers_with_legacy_4d_shapes(double):
    data, w, b = _v1_model(legacy=True, double=double)
    ws = parse_caffemodel(data, "old.caffemodel")
    lw = ws["fc"]
    assert lw.type == "InnerProduct"
    assert lw.blobs[0].shape == (1, 1, 2, 3) and lw.legacy == [True, True]
    diags = Diagnostics()
    spec = ParamSpec("fc", "InnerProduct", None, [(2, 3), (2,)])
    out = bind([spec], ws, diags)
    assert not diags.has_errors
    np.testing.assert_allclose(out["fc"][0], w.astype(np.float32))
    np.testing.assert_allclose(out["fc"][1], b.astype(np.float32))


def test_legacy_shape_mismatch_names_both_shapes():
    data, _, _ = _v1_model(legacy=True)
    diags = Diagnostics()
    bind([ParamSpec("fc", "InnerProduct", None, [(3, 2), (2,)])], parse_caffemodel(data, "old.caffemodel"), diags)
    [d] = diags.errors
    assert d.code == codes.WEIGHTS_BLOB_SHAPE.id
    assert "(1, 1, 2, 3)" in d.message and "(3, 2)" in d.message and "'fc'" in d.message
    assert any("legacy" in n for n in d.notes)


def test_missing_extra_and_miscounted_blobs():
    ws = read_caffemodel(CONFORMANCE / "layers/conv_basic/weights.caffemodel")
    conv = ws["conv"]
    w_shape, b_shape = conv.blobs[0].shape, conv.blobs[1].shape
    diags = Diagnostics()
    specs = [ParamSpec("conv", "Convolution", None, [w_shape]),            # bias_term: false
             ParamSpec("fc_new", "InnerProduct", None, [(4, 5), (4,)])]
    out = bind(specs, ws, diags)
    assert out == {}
    by_code = {d.code: d for d in diags}
    count = by_code[codes.WEIGHTS_BLOB_COUNT.id]
    assert "'conv'" in count.message and str(w_shape).replace(",)", ")") in count.message
    assert str(b_shape).replace(",)", ")") in count.message
    assert codes.WEIGHTS_MISSING.id in by_code and "'fc_new'" in by_code[codes.WEIGHTS_MISSING.id].message
    diags = Diagnostics()
    bind([], ws, diags)
    assert [d.code for d in diags] == [codes.WEIGHTS_EXTRA.id]


def test_missing_layers_fall_back_to_fillers():
    ws = read_caffemodel(CONFORMANCE / "layers/conv_basic/weights.caffemodel")
    w_shape = ws["conv"].blobs[0].shape
    fp = pb.FillerParameter(type="constant", value=3)
    specs = [ParamSpec("conv", "Convolution", None, [w_shape, (w_shape[0],)]),
             ParamSpec("extra", "InnerProduct", None, [(2, 2)], [fp])]
    diags = Diagnostics()
    out = resolve_weights(specs, ws, 0, diags)
    assert out["conv"][0] is ws["conv"].blobs[0]
    np.testing.assert_array_equal(out["extra"][0], np.full((2, 2), 3, np.float32))
    assert [d.code for d in diags] == [codes.WEIGHTS_MISSING.id]




@pytest.mark.parametrize("cut", [1, 7, 100, 1000, 123457, -5, -1])
def test_truncated_files_are_diagnosed(tmp_path, cut):
    data = large_file("nets/bvlc_googlenet/weights.caffemodel").read_bytes()
    bad = tmp_path / "cut.caffemodel"
    bad.write_bytes(data[:cut] if cut > 0 else data[:len(data) + cut])
    with pytest.raises(DiagnosticError) as e:
        read_caffemodel(bad)
    [d] = e.value.diagnostics
    assert d.code == codes.WEIGHTS_CORRUPT.id and "cut.caffemodel" in d.message


def test_random_bytes_never_escape_as_exceptions():
    rng = np.random.default_rng(0)
    for n in range(200):
        data = rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
        try:
            parse_caffemodel(data, "junk")
        except DiagnosticError as e:
            assert e.diagnostics[0].code == codes.WEIGHTS_CORRUPT.id


def test_text_and_missing_files(tmp_path):
    text = tmp_path / "net.caffemodel"
    text.write_text('name: "x"\nlayer { name: "a" type: "ReLU" }\n')
    with pytest.raises(DiagnosticError) as e:
        read_caffemodel(text)
    assert "looks like text" in e.value.diagnostics[0].message
    with pytest.raises(DiagnosticError) as e:
        read_caffemodel(tmp_path / "nope.caffemodel")
    assert e.value.diagnostics[0].code == codes.WEIGHTS_UNREADABLE.id
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(DiagnosticError, match="empty"):
        read_caffemodel(empty)


def test_write_then_read_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    layers = [("conv1", "Convolution", [rng.normal(size=(4, 3, 3, 3)).astype(np.float32), np.ones(4, np.float32)]),
              ("slope", "PReLU", [np.array(0.25, np.float32)]),
              ("relu", "ReLU", [])]
    path = tmp_path / "w.caffemodel"
    n = write_caffemodel(path, "net", layers)
    data = path.read_bytes()
    assert n == len(data)
    msg = pb.NetParameter()
    msg.ParseFromString(data)
    # The protobuf runtime writes the same bytes for the same message: the file is canonical.
    assert msg.SerializeToString() == data
    assert [layer.name for layer in msg.layer] == ["conv1", "slope", "relu"]
    ws = read_caffemodel(path)
    for name, _, arrays in layers:
        for a, b in zip(arrays, ws[name].blobs):
            np.testing.assert_array_equal(a, b)
            assert a.shape == b.shape


def test_write_is_atomic(tmp_path):
    path = tmp_path / "w.caffemodel"
    path.write_bytes(b"previous")

    def bad_layers():
        yield ("a", "ReLU", [])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_caffemodel(path, "net", bad_layers())
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["w.caffemodel"]


# --- fillers: expectations from filler.hpp ---------------------------------------------------

def _filler(**kw):
    return pb.FillerParameter(**kw)


def _rng():
    return np.random.default_rng(1234)


def test_constant_and_positive_unitball():
    np.testing.assert_array_equal(fill((2, 3), _filler(type="constant", value=0.5), _rng()), np.full((2, 3), 0.5))
    np.testing.assert_array_equal(fill((4,), _filler(), _rng()), np.zeros(4))   # default: constant 0
    u = fill((5, 2, 3, 3), _filler(type="positive_unitball"), _rng())
    assert u.min() >= 0 and u.max() <= 1
    np.testing.assert_allclose(u.reshape(5, -1).sum(axis=1), 1, rtol=1e-6)


def test_uniform_bounds_and_mean():
    x = fill((400, 250), _filler(type="uniform", min=-2, max=6), _rng()).astype(np.float64)
    assert x.min() >= -2 and x.max() <= 6
    sd = 8 / math.sqrt(12)
    assert abs(x.mean() - 2) < 5 * sd / math.sqrt(x.size)
    assert abs(x.std() - sd) < 0.01 * sd


def test_gaussian_and_sparse():
    x = fill((500, 200), _filler(type="gaussian", mean=1, std=0.5), _rng()).astype(np.float64)
    assert abs(x.mean() - 1) < 5 * 0.5 / math.sqrt(x.size)
    assert abs(x.std() - 0.5) < 0.01
    # sparse: each value survives with probability sparse / shape[0].
    s = fill((50, 1000), _filler(type="gaussian", std=1, sparse=10), _rng())
    p = 10 / 50
    frac = np.count_nonzero(s) / s.size
    assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / s.size)


@pytest.mark.parametrize("norm,expect_n", [("FAN_IN", 3 * 5 * 5), ("FAN_OUT", 64 * 5 * 5), ("AVERAGE", (75 + 1600) / 2)])
def test_xavier_bound(norm, expect_n):
    # fan_in = count / num, fan_out = count / channels; bound = sqrt(3 / n).
    fp = _filler(type="xavier", variance_norm=pb.FillerParameter.VarianceNorm.Value(norm))
    x = fill((64, 3, 5, 5), fp, _rng()).astype(np.float64)
    bound = math.sqrt(3 / expect_n)
    assert np.abs(x).max() <= bound * (1 + 1e-6)
    assert np.abs(x).max() > 0.99 * bound
    assert abs(x.var() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3


@pytest.mark.parametrize("norm,expect_n", [("FAN_IN", 32 * 9), ("FAN_OUT", 128 * 9), ("AVERAGE", (288 + 1152) / 2)])
def test_msra_std(norm, expect_n):
    fp = _filler(type="msra", variance_norm=pb.FillerParameter.VarianceNorm.Value(norm))
    x = fill((128, 32, 3, 3), fp, _rng()).astype(np.float64)
    std = math.sqrt(2 / expect_n)
    assert abs(x.std() - std) < 0.02 * std
    assert abs(x.mean()) < 5 * std / math.sqrt(x.size)


def test_inner_product_fans_use_legacy_num_and_channels():
    # A (10, 20) IP weight: num = 10, channels = 20; fan_in = 200 / 10 = 20.
    x = fill((10, 20), _filler(type="xavier"), _rng())
    assert np.abs(x).max() <= math.sqrt(3 / 20) + 1e-7
    # A 1-D blob has channels 1, so fan_out = count.
    y = fill((4000,), _filler(type="msra", variance_norm=pb.FillerParameter.FAN_OUT), _rng()).astype(np.float64)
    assert abs(y.std() - math.sqrt(2 / 4000)) < 0.05 * math.sqrt(2 / 4000)


def test_bilinear_matches_the_upsampling_kernel():
    # Factor 2 upsampling (kernel 4): the well-known [1/4, 3/4, 3/4, 1/4] outer product.
    k4 = fill((3, 1, 4, 4), _filler(type="bilinear"), _rng())
    line = np.array([0.25, 0.75, 0.75, 0.25])
    for c in range(3):
        np.testing.assert_allclose(k4[c, 0], np.outer(line, line), rtol=1e-6)
    # Factor 3 (kernel 5): [1/3, 2/3, 1, 2/3, 1/3].
    k5 = fill((1, 1, 5, 5), _filler(type="bilinear"), _rng())
    line = np.array([1, 2, 3, 2, 1]) / 3
    np.testing.assert_allclose(k5[0, 0], np.outer(line, line), rtol=1e-6)


def _init_diags(shape, **kw):
    diags = Diagnostics()
    spec = ParamSpec("l", "Convolution", None, [shape], [_filler(**kw)])
    return init_layer(spec, 0, diags), diags


@pytest.mark.parametrize("shape,kw,code,text", [
    ((2, 3), dict(type="xavir"), codes.FILLER_UNKNOWN, "xavir"),
    ((2, 3), dict(type="xavier", sparse=2), codes.FILLER_INVALID, "gaussian filler only"),
    ((2, 1, 3, 4), dict(type="bilinear"), codes.FILLER_INVALID, "square"),
    ((2, 3), dict(type="bilinear"), codes.FILLER_INVALID, "4-axis"),
    ((2, 3), dict(type="gaussian", std=0), codes.FILLER_INVALID, "positive"),
    ((2, 3), dict(type="gaussian", sparse=5), codes.FILLER_INVALID, "outputs"),
    ((2, 3), dict(type="uniform", min=1, max=0), codes.FILLER_INVALID, "greater"),
    ((1, 2, 3, 4, 5), dict(type="msra"), codes.FILLER_INVALID, "5 axes"),
])
def test_filler_errors(shape, kw, code, text):
    arrays, diags = _init_diags(shape, **kw)
    assert arrays is None
    [d] = diags.errors
    assert d.code == code.id and text in d.message + " ".join(d.notes)


def test_fillers_are_deterministic_per_layer():
    fp = _filler(type="gaussian", std=1)
    a = fill((3, 4), fp, blob_rng(7, "conv1", 0))
    b = fill((3, 4), fp, blob_rng(7, "conv1", 0))
    c = fill((3, 4), fp, blob_rng(8, "conv1", 0))
    d = fill((3, 4), fp, blob_rng(7, "conv2", 0))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert not np.array_equal(a, fill((3, 4), fp, blob_rng(7, "conv1", 1)))
    # Lazy blobs are the same values, made on demand.
    spec = ParamSpec("conv1", "Convolution", None, [(3, 4)], [fp])
    lazy = init_layer(spec, 7, Diagnostics(), lazy=True)
    assert lazy[0].shape == (3, 4)
    np.testing.assert_array_equal(lazy[0](), a)
    # A blob with no filler that is not a statistic starts at zero.
    arrays = init_layer(ParamSpec("x", "BN", None, [(1, 3, 1, 1)] * 2, [None, None]), 0, Diagnostics())
    assert all(not a.any() for a in arrays)


BN_NET = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 } } }
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { eps: 0.01 } }
layer { name: "fork_bn" type: "BN" bottom: "data" top: "fork_bn"
        bn_param { slope_filler { type: "constant" value: 2 } bias_filler { type: "constant" value: 0.5 } momentum: 0.9 } }
"""


def test_statistics_start_neutral(tmp_path, capsys):
    # Caffe zero-fills BatchNorm's statistics (mean, variance, factor), and with factor 0 its
    # forward divides by sqrt(eps). netdef init writes mean 0, variance 1, factor 1 instead;
    # the PSPNet fork's BN gets running mean 0, variance 1 after its filled slope and bias.
    from netdef.cli import main
    net = tmp_path / "bn.prototxt"
    net.write_text(BN_NET)
    out = tmp_path / "w.caffemodel"
    assert main(["init", str(net), "-o", str(out)]) == 0
    ws = read_caffemodel(out)
    mean, var, factor = ws["bn"].blobs
    assert mean.tolist() == [0, 0, 0] and var.tolist() == [1, 1, 1] and factor.tolist() == [1]
    slope, bias, rmean, rvar = (b.ravel().tolist() for b in ws["fork_bn"].blobs)
    assert (slope, bias, rmean, rvar) == ([2] * 3, [0.5] * 3, [0] * 3, [1] * 3)
    # What the export computes with them, without a .caffemodel: x / sqrt(1 + eps).
    import onnxruntime as ort
    from netdef.export.onnx import export
    net.write_text(BN_NET.split('layer { name: "fork_bn"')[0])
    sess = ort.InferenceSession(export(str(net)).to_bytes(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"data": x})[0], x / np.sqrt(1.01), rtol=1e-6)


def test_neutral_statistics_are_the_layer_classes(monkeypatch):
    # init_layer asks the layer class (layers/norm.py) which value each statistics blob starts
    # from; a blob that is not a statistic keeps its filler even where the class names a value.
    from netdef import layers
    spec = ParamSpec("bn", "BatchNorm", None, [(3,), (3,), (1,)], [None] * 3, stats=frozenset({0, 1, 2}))
    mean, var, factor = init_layer(spec, 0, Diagnostics())
    assert mean.tolist() == [0] * 3 and var.tolist() == [1] * 3 and factor.tolist() == [1]
    monkeypatch.setattr(type(layers.get("BatchNorm")), "neutral_statistics", {1: 2.0, 2: 3.0})
    spec = ParamSpec("bn", "BatchNorm", None, [(3,), (3,), (1,)], [None] * 3, stats=frozenset({0, 1}))
    mean, var, factor = init_layer(spec, 0, Diagnostics())
    assert mean.tolist() == [0] * 3 and var.tolist() == [2] * 3 and factor.tolist() == [0]


def test_init_help_documents_the_statistics(capsys):
    from netdef.cli import main
    assert main(["init", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "BatchNorm's statistics" in text and "start neutral: mean 0, variance 1" in text


@pytest.mark.parametrize("kw", [dict(type="gaussian", std=0.01), dict(type="msra"), dict(type="xavier"),
                                dict(type="uniform", min=-1, max=1)])
def test_fillers_draw_in_float32(kw):
    # Caffe's fillers draw float values; drawing float64 and casting down held three times the
    # blob (VGG-16's fc6: 1.2 GB for a 411 MB blob). The peak is now the blob itself.
    import tracemalloc
    shape = (1000, 1000)
    tracemalloc.start()
    try:
        x = fill(shape, _filler(**kw), _rng())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.dtype == np.float32 and x.shape == shape
    assert peak < 1.25 * x.nbytes, f"peak {peak / 1e6:.1f} MB for a {x.nbytes / 1e6:.1f} MB blob"
