"""A convolution kernel larger than its padded input (issue 11: "Where Caffe loads a file, netdef
must not refuse it: a check Caffe does not make is a warning").

Caffe's ConvolutionLayer::compute_output_shape (and the forks' copies) computes
(size + 2 pad - extent) / stride + 1 in C++ int division, which truncates toward zero: input 3,
kernel 4, stride 2 gives (3 - 4) / 2 + 1 = 1 window, which im2col fills with zeros past the input.
Only a negative size fails (Blob::Reshape); 0 fails where setting the layer up writes a buffer of
0 elements (the bias multiplier), else the net loads. What brocolli-caffe computed and refused for
such geometries is pinned in test_ssd_fork_cases.py; these tests go through the CLI and the API.
"""
import contextlib
import io
import json

import numpy as np
import pytest
from conftest import compile_text, errors_of, shapes_of

from netdef.cli import main
from netdef.layers.convsize import caffe_div, conv_size
from netdef.reference import forward

FILLERS = 'weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 }'


def _net(shape, conv, type_="Convolution", fillers=FILLERS):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'name: "trunc"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
            f'layer {{ name: "conv" type: "{type_}" bottom: "data" top: "conv" '
            f'convolution_param {{ {conv} {fillers} }} }}\n')


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _file(tmp_path, text, name="net.prototxt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _codes(text):
    return [d.code for d in compile_text(text).diagnostics]


@pytest.mark.parametrize("a,b,want", [(7, 2, 3), (-1, 2, 0), (-2, 2, -1), (-3, 2, -1), (-4, 3, -1), (0, 5, 0)])
def test_caffe_div_truncates_toward_zero(a, b, want):
    assert caffe_div(a, b) == want


@pytest.mark.parametrize("padded,extent,stride,want", [
    (3, 4, 2, 1),     # (3 - 4) / 2 + 1 = 0 + 1
    (3, 5, 2, 0),     # (-2) / 2 + 1
    (3, 7, 2, -1),    # (-4) / 2 + 1
    (5, 7, 3, 1),     # dilation 3 of a 3-kernel: extent 7
    (3, 4, 1, 0),
    (8, 3, 2, 3),     # an ordinary geometry: floor and truncation agree
])
def test_conv_size(padded, extent, stride, want):
    assert conv_size(padded, extent, stride) == want


# --- check / summary through the CLI ----------------------------------------------------------

def test_check_warns_and_exits_0(tmp_path):
    p = _file(tmp_path, _net((1, 2, 3, 3), "num_output: 3 kernel_size: 4 stride: 2"))
    code, out, err = _cli("check", p)
    assert code == 0, err
    assert ("warning[W416]: the kernel of convolution layer 'conv' is larger than its padded input (height: kernel 4 "
            "on 3 + 2 x 0; width: kernel 4 on 3 + 2 x 0); Caffe computes 1 x 1 windows, reading zeros past the input"
            in err), err
    assert "pass the real one with --input NAME=N,C,H,W" in err
    assert "E402" not in err
    code, out, _ = _cli("check", p, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and [d["code"] for d in doc["diagnostics"]] == ["W416"]
    # -W error turns the warning into a failure, as for every warning.
    assert _cli("check", p, "-W", "error")[0] == 1


def test_check_names_dilation_and_one_axis(tmp_path):
    # Height (5 - 7) / 3 + 1 = 1, width (9 - 7) / 3 + 1 = 1: only the height is too small.
    text = _net((1, 2, 5, 9), "num_output: 2 kernel_h: 3 kernel_w: 3 dilation: 3 stride: 3")
    code, _, err = _cli("check", _file(tmp_path, text))
    assert code == 0 and "(height: kernel 3 dilated to 7 on 5 + 2 x 0); Caffe computes 1 x 1 windows" in err, err


def test_summary_gives_caffes_size_rf_and_cost(tmp_path):
    p = _file(tmp_path, _net((1, 2, 3, 3), "num_output: 3 kernel_size: 4 stride: 2"))
    code, out, err = _cli("summary", p, "--format", "json", "-q")
    assert code == 0, err
    layer = {la["name"]: la for la in json.loads(out)["layers"]}["conv"]
    assert layer["output_shapes"] == [[1, 3, 1, 1]]
    assert layer["rf"]["size"] == [4, 4] and layer["rf"]["stride"] == [2, 2]
    # Caffe's gemm multiplies the whole 2 x 4 x 4 column (zeros included) for each of 3 outputs.
    assert layer["macs"] == 3 * 2 * 4 * 4 and layer["flops"] == 2 * 96 + 3
    code, out, _ = _cli("summary", p, "-q")
    assert code == 0 and "1x3x1x1" in out


def test_negative_size_is_e402(tmp_path):
    text = _net((1, 2, 3, 3), "num_output: 2 kernel_size: 7 stride: 2 bias_term: false")
    code, _, err = _cli("check", _file(tmp_path, text))
    assert code == 1 and "error[E402]" in err and "W416" not in err
    assert "the output height would be -1 = (3 + 2 x 0 - 7) / 2 + 1" in err
    assert "Blob::Reshape refuses a negative size" in err
    out = tmp_path / "x.onnx"
    code, _, err = _cli("export", _file(tmp_path, text), "-o", out)
    assert code == 1 and "E402" in err and not out.exists()


def test_empty_with_bias_is_e402_without_bias_a_warning(tmp_path):
    # 0 windows: Caffe aborts setting the layer up when it has a bias (its bias multiplier has 0
    # elements); without one the net loads (brocolli-caffe: conv_refused_empty_*).
    msgs = errors_of(_net((1, 2, 3, 3), "num_output: 2 kernel_size: 5 stride: 2"))
    assert len(msgs) == 1 and "the output height would be 0 = (3 + 2 x 0 - 5) / 2 + 1" in msgs[0], msgs
    g = compile_text(_net((1, 2, 3, 3), "num_output: 2 kernel_size: 5 stride: 2"))
    assert any("it fills the bias multiplier (BaseConvolutionLayer::Reshape)" in n
               for d in g.diagnostics if d.is_error for n in d.notes)
    text = _net((1, 2, 3, 3), "num_output: 2 kernel_size: 5 stride: 2 bias_term: false",
                fillers='weight_filler { type: "gaussian" std: 1 }')
    shapes, g = shapes_of(text)
    assert shapes["conv"] == (1, 2, 0, 0)
    d = [d for d in g.diagnostics if d.code == "W416"]
    assert len(d) == 1 and "Caffe computes 0 x 0 windows, an empty top" in d[0].message
    assert any("its forward aborts" in n for n in d[0].notes)
    code, out, err = _cli("verify", _file(tmp_path, text), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] and [c["top"] for c in doc["comparisons"]] == ["conv"], doc


def test_deconvolution_unaffected():
    shapes, g = shapes_of(_net((1, 2, 3, 3), "num_output: 2 kernel_size: 5 stride: 2", type_="Deconvolution"))
    assert shapes["conv"] == (1, 2, 9, 9) and not [d for d in g.diagnostics if d.code == "W416"]


# --- the NumPy reference: Caffe's windows read zeros past the input ---------------------------

@pytest.mark.parametrize("conv,rows,cols", [
    ("kernel_size: 4 stride: 2", slice(0, 3), slice(0, 3)),          # window 0..3 over input 0..2
    ("kernel_size: 6 pad: 1 stride: 2", slice(1, 4), slice(1, 4)),   # window -1..4: kernel rows 1..3
    ("kernel_h: 5 kernel_w: 2 pad_h: 1 stride: 3", slice(1, 4), slice(0, 2)),
])
def test_reference_against_hand_values(conv, rows, cols):
    text = _net((1, 1, 3, 3), f"num_output: 1 bias_term: false {conv}", fillers="")
    g = compile_text(text)
    kh, kw = _kernel(conv)
    x = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    w = np.arange(1, kh * kw + 1, dtype=np.float64).reshape(kh, kw)
    out = forward(g.parsed.message, {"conv": [w.reshape(1, 1, kh, kw)]}, {"data": x.reshape(1, 1, 3, 3)},
                  loc=g.parsed.loc)["conv"]
    # One window; only its kernel cells over the input count (w[rows, cols] over x[:, :width]),
    # the others meet zeros.
    kernel_cells = w[rows, cols]
    want = (kernel_cells * x[:, :kernel_cells.shape[1]]).sum()
    assert out.shape == (1, 1, 1, 1) and np.isclose(out[0, 0, 0, 0], want)


def _kernel(conv):
    words = conv.split()
    get = lambda k: int(words[words.index(k + ":") + 1]) if k + ":" in words else None  # noqa: E731
    k = get("kernel_size")
    return (k, k) if k else (get("kernel_h"), get("kernel_w"))


# --- export + verify: onnxruntime against the reference on such nets --------------------------

VERIFY_NETS = {
    "stride": ((1, 2, 3, 3), "num_output: 3 kernel_size: 4 stride: 2", "Convolution"),
    "dilation": ((1, 2, 5, 5), "num_output: 3 kernel_size: 3 dilation: 3 stride: 3", "Convolution"),
    "pad_one_axis_groups": ((2, 4, 3, 7), "num_output: 4 group: 2 kernel_h: 6 kernel_w: 3 pad: 1 stride: 2",
                            "Convolution"),
    "synopsys_pads": ((1, 4, 3, 3), "num_output: 4 group: 2 kernel_size: 5 stride: 3 pad_t: 1 pad_b: 0 pad_l: 1 "
                                    "pad_r: 0", "Convolution"),
    "3d": ((1, 2, 3, 4, 5), "num_output: 3 kernel_size: 4 stride: 2", "Convolution"),
    "depthwise": ((1, 4, 3, 3), "num_output: 4 group: 4 kernel_size: 4 stride: 2", "DepthwiseConvolution"),
    "conv_dw": ((1, 4, 3, 3), "num_output: 4 kernel_size: 4 stride: 3", "ConvolutionDepthwise"),
    "c3d": ((1, 2, 3, 4, 4), "num_output: 3 kernel_size: 3 kernel_depth: 4 temporal_stride: 2 stride: 2",
            "Convolution3D"),
}


@pytest.mark.parametrize("name", sorted(VERIFY_NETS))
def test_export_and_verify(tmp_path, name):
    shape, conv, type_ = VERIFY_NETS[name]
    p = _file(tmp_path, _net(shape, conv, type_))
    code, _, err = _cli("check", p)
    assert code == 0 and "W416" in err, err
    onnx = tmp_path / "net.onnx"
    code, _, err = _cli("export", p, "-o", onnx)
    assert code == 0 and onnx.exists(), err
    code, out, err = _cli("verify", p, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] and [c["top"] for c in doc["comparisons"]] == ["conv"], doc


def test_conv_dw_empty_is_e402_whatever_bias_term():
    # conv_dw_layer.cpp Reshape fills weight_multiplier_ (N x out_h x out_w) in every case.
    g = compile_text(_net((1, 4, 3, 3), "num_output: 4 kernel_size: 5 stride: 2 bias_term: false",
                          "ConvolutionDepthwise", fillers=""))
    errs = [d for d in g.diagnostics if d.is_error]
    assert [d.code for d in errs] == ["E402"] and "the output height would be 0" in errs[0].message
    assert any("the weight multiplier (ConvolutionDepthwiseLayer::Reshape)" in n for n in errs[0].notes), errs[0].notes


def test_c3d_empty_loads_with_a_warning():
    shapes, g = shapes_of(_net((1, 2, 3, 4, 4), "num_output: 3 kernel_size: 3 kernel_depth: 5 temporal_stride: 2",
                               "Convolution3D"))
    assert shapes["conv"] == (1, 3, 0, 2, 2)
    assert "W416" in [d.code for d in g.diagnostics]


def test_im2col_truncates():
    shapes, g = shapes_of(_net((1, 2, 3, 3), "kernel_size: 4 stride: 2", "Im2col", fillers=""))
    assert shapes["conv"] == (1, 2 * 16, 1, 1) and "W416" in [d.code for d in g.diagnostics]


def test_ndconvolution_message_gives_caffes_size():
    # video-caffe's compute_output_shape: (3 - 4) / 2 + 1 = 1 in C++ (floor division would say 0),
    # and it keeps only axes of more than 1.
    text = _net((1, 2, 3, 6, 6), "num_output: 2 kernel_shape { dim: 4 dim: 3 dim: 3 } stride_shape { dim: 2 dim: 1 "
                                 "dim: 1 }", "NdConvolution", fillers="")
    msgs = errors_of(text)
    assert any("the output would be 1 on spatial axis 0" in m for m in msgs), msgs
