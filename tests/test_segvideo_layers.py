"""Segmentation and video layers of Caffe forks (issue 11): video-caffe's NdConvolution and
NdPooling, Synopsys' Add and ResizeNearestNeighbor, the FCN-era forks' V1 CROP (a crop whose
offsets come from the layers' coordinate maps) and CRF-as-RNN's MultiStageMeanfield. Each one's
shape rule from the fork's source, its NumPy reference against values worked out by hand, and
`netdef verify` (onnxruntime against the reference) on small nets."""
import contextlib
import io

import numpy as np
import pytest
from conftest import ZOO_WILD, compile_text, errors_of, shapes_of

import netdef
from netdef.cli import main
from netdef.forks import v1_written
from netdef.layers.coordmap import coord_crop_offsets
from netdef.reference import forward


def _net(shape, layers, name="segvideo"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'name: "{name}"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
            + layers)


def _ref(text, x, weights=None):
    g = compile_text(text)
    parsed = g.parsed
    return forward(parsed.message, weights or {}, {"data": x}, loc=parsed.loc)


def _cli(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


def _verify_cli(tmp_path, text):
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    code, out = _cli("verify", str(p))
    assert code == 0, out[-3000:]
    assert "compared" in out
    return out


# --- video-caffe's NdConvolution / NdPooling --------------------------------------------------

def _ndconv(kernel, stride=None, pad=None, extra="num_output: 3"):
    def shape(name, dims):
        return f"{name} {{ {' '.join(f'dim: {d}' for d in dims)} }}" if dims is not None else ""
    return f"{extra} {shape('kernel_shape', kernel)} {shape('stride_shape', stride)} {shape('pad_shape', pad)}"


ND = _net((1, 2, 5, 6, 7), f"""
layer {{ name: "conv" type: "NdConvolution" bottom: "data" top: "conv"
        convolution_param {{ {_ndconv([2, 3, 3], [1, 2, 2], [0, 1, 1], "num_output: 4 group: 2")}
                            weight_filler {{ type: "gaussian" std: 0.5 }} bias_filler {{ type: "gaussian" std: 1 }} }} }}
layer {{ name: "pool" type: "NdPooling" bottom: "data" top: "pool"
        pooling_param {{ pool: MAX {_ndconv([2, 2, 2], [2, 2, 2], None, "")} }} }}
layer {{ name: "clip" type: "NdPooling" bottom: "data" top: "clip"
        pooling_param {{ pool: MAX {_ndconv([1, 2, 2], [1, 2, 2], [0, 1, 1], "")} }} }}
layer {{ name: "ave" type: "NdPooling" bottom: "data" top: "ave"
        pooling_param {{ pool: AVE {_ndconv([1, 2, 3], [1, 2, 2], [0, 0, 1], "")} }} }}
layer {{ name: "ave2" type: "NdPooling" bottom: "data" top: "ave2"
        pooling_param {{ pool: AVE {_ndconv([1, 2, 2], [1, 2, 2], [0, 1, 1], "")} }} }}
""")


def test_nd_shapes_follow_compute_output_shape():
    # cudnn_ndconv_layer.cpp: (size + 2 pad - kernel) / stride + 1: (5 - 2) / 1 + 1 = 4,
    # (6 + 2 - 3) / 2 + 1 = 3, (7 + 2 - 3) / 2 + 1 = 4. cudnn_ndpooling_layer.cpp: ceil((size +
    # 2 pad - kernel) / stride) + 1: ceil(3 / 2) + 1 = 3, ceil(4 / 2) + 1 = 3, ceil(5 / 2) + 1 = 4;
    # with pad 1, kernel 2, stride 2: ceil(6 / 2) + 1 = 4 on 6 (kept: 3 x 2 < 6 + 1), ceil(7 / 2) +
    # 1 = 5 on 7 (kept: 4 x 2 = 8 >= 7 + 1, so 4). AVE 2 / 2 on 6: 3; 3 / 2 pad 1 on 7: 4.
    shapes, g = shapes_of(ND)
    assert shapes["conv"] == (1, 4, 4, 3, 4)
    assert shapes["pool"] == (1, 2, 3, 3, 4)
    assert shapes["clip"] == (1, 2, 5, 4, 4)
    assert shapes["ave"] == (1, 2, 5, 3, 4)
    # AVE with the padding clip on 7 (as "clip"): its last window ends at 7 + 0, inside the padding.
    assert shapes["ave2"] == (1, 2, 5, 4, 4)
    # weight (num_output, C / group, *kernel_shape), bias (num_output)
    assert g.node("conv").meta["blobs"] == [(4, 1, 2, 3, 3), (4,)]


@pytest.mark.parametrize("conv,message", [
    (_ndconv(None), "kernel_shape is not set"),
    (_ndconv([3, 3], None, None), "the bottom must have 4 axes"),
    (_ndconv([3, 3, 3], [1, 1], None), "stride_shape has 2 dims but kernel_shape has 3"),
    (_ndconv([3, 3, 0]), "kernel_shape dims must be positive"),
    (_ndconv([5, 3, 3]), "the output would be 1 on spatial axis 0"),
])
def test_nd_convolution_errors(conv, message):
    text = _net((1, 2, 5, 6, 7), f'layer {{ name: "c" type: "NdConvolution" bottom: "data" top: "c" '
                                 f'convolution_param {{ {conv} }} }}')
    assert any(message in m for m in errors_of(text)), errors_of(text)


def test_nd_reference_against_hand_values():
    # A 2 x 2 x 2 kernel of ones sums each block of x[l, h, w] = 9 l + 3 h + w:
    # 8 (9 a + 3 b + c) + 4 (9 + 3 + 1) at output (a, b, c).
    text = _net((1, 1, 3, 3, 3), f"""
layer {{ name: "c" type: "NdConvolution" bottom: "data" top: "c"
        convolution_param {{ {_ndconv([2, 2, 2], None, None, "num_output: 1 bias_term: false")} }} }}
layer {{ name: "p" type: "NdPooling" bottom: "data" top: "p" pooling_param {{ pool: MAX {_ndconv([1, 2, 2], [1, 2, 2],
                                                                                                 None, "")} }} }}""")
    x = np.arange(27, dtype=np.float32).reshape(1, 1, 3, 3, 3)
    out = _ref(text, x, {"c": [np.ones((1, 1, 2, 2, 2))]})
    a, b, c = np.meshgrid(range(2), range(2), range(2), indexing="ij")
    assert np.array_equal(out["c"][0, 0], 8 * (9 * a + 3 * b + c) + 52)
    # MAX over windows clipped to the input: plane 0 is [[0 1 2] [3 4 5] [6 7 8]].
    assert out["p"].shape == (1, 1, 3, 2, 2)
    assert np.array_equal(out["p"][0, 0, 0], [[4, 5], [7, 8]])
    # AVE counts the padding (CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING): on [[0 1] [2 3]] with
    # pad 1, kernel 2, stride 2 each window holds one value, divided by 4.
    ave = _net((1, 1, 1, 2, 2), f'layer {{ name: "p" type: "NdPooling" bottom: "data" top: "p" pooling_param {{ '
                                f'pool: AVE {_ndconv([1, 2, 2], [1, 2, 2], [0, 1, 1], "")} }} }}')
    out = _ref(ave, np.arange(4, dtype=np.float32).reshape(1, 1, 1, 2, 2))
    assert np.allclose(out["p"][0, 0, 0], [[0, 0.25], [0.5, 0.75]])


def test_nd_verify(tmp_path):
    _verify_cli(tmp_path, ND)


# --- Synopsys' Add and ResizeNearestNeighbor --------------------------------------------------

def _resize(name, extra, bottom="data"):
    return (f'layer {{ name: "{name}" type: "ResizeNearestNeighbor" bottom: "{bottom}" top: "{name}" '
            f'resize_nearest_neighbor_param {{ data_format: "NCHW" {extra} }} }}\n')


RESIZE = _net((1, 2, 2, 3), _resize("plain", "scale_height: 2 scale_width: 2")
              + _resize("align", "align_corners: true output_height: 3 output_width: 5")
              + _resize("half", "half_pixel_centers: true output_height: 4 output_width: 6")
              + _resize("onnx", "half_pixel_onnx: true output_height: 3 output_width: 4")
              + 'layer { name: "b" type: "Input" top: "b" input_param { shape { dim: 3 } } }\n'
              + 'layer { name: "sum" type: "Add" bottom: "data" bottom: "b" top: "sum" }\n'
              + 'layer { name: "sum2" type: "Add" bottom: "plain" bottom: "half" top: "sum2" }\n')


def test_resize_nearest_and_add_shapes():
    shapes, _ = shapes_of(RESIZE)
    # Reshape (NCHW): floor(H * scale_height) x floor(W * scale_width), or output_height/width.
    assert shapes["plain"] == (1, 2, 4, 6) and shapes["align"] == (1, 2, 3, 5)
    assert shapes["half"] == (1, 2, 4, 6) and shapes["onnx"] == (1, 2, 3, 4)
    # add_layer.cpp: end-aligned axes, the larger of each pair.
    assert shapes["sum"] == (1, 2, 2, 3) and shapes["sum2"] == (1, 2, 4, 6)


def test_resize_nearest_and_add_reference_against_hand_values():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3).repeat(2, axis=1)
    g = compile_text(RESIZE)
    out = forward(g.parsed.message, {}, {"data": x, "b": np.array([10, 20, 30], np.float32)}, loc=g.parsed.loc)

    def pick(rows, cols):
        return x[0, 0][np.ix_(rows, cols)]
    # plain: floor(o * in / out): rows 0 0 1 1, columns 0 0 1 1 2 2
    assert np.array_equal(out["plain"][0, 0], pick([0, 0, 1, 1], [0, 0, 1, 1, 2, 2]))
    # align_corners: round(o * (in - 1) / (out - 1)), halves away from zero: rows 0, 0.5, 1 -> 0 1 1;
    # columns 0, 0.5, 1, 1.5, 2 -> 0 1 1 2 2
    assert np.array_equal(out["align"][0, 1], pick([0, 1, 1], [0, 1, 1, 2, 2]))
    # half_pixel_centers: floor((o + 0.5) in / out): rows 0 0 1 1; columns (o + .5) / 2 -> 0 0 1 1 2 2
    assert np.array_equal(out["half"][0, 0], pick([0, 0, 1, 1], [0, 0, 1, 1, 2, 2]))
    # half_pixel_onnx: floor((o + 0.5) in / out - 0.5) clamped: rows (2/3): -1/6, 1/2, 7/6 -> 0 0 1;
    # columns (3/4): -1/8, 5/8, 11/8, 17/8 -> 0 0 1 2
    assert np.array_equal(out["onnx"][0, 0], pick([0, 0, 1], [0, 0, 1, 2]))
    assert np.array_equal(out["sum"][0, 0], x[0, 0] + [10, 20, 30])
    assert np.array_equal(out["sum2"], out["plain"] + out["half"])


def test_resize_nearest_and_add_verify(tmp_path):
    _verify_cli(tmp_path, RESIZE)


def test_add_and_resize_refuse_in_place_and_nhwc():
    assert any("Add does not allow in-place" in m for m in errors_of(
        _net((1, 2, 3, 3), 'layer { name: "a" type: "Add" bottom: "data" bottom: "data" top: "data" }')))
    assert any("implements \"NCHW\" only" in m for m in errors_of(_net((1, 2, 3, 3), (
        'layer { name: "r" type: "ResizeNearestNeighbor" bottom: "data" top: "r" '
        'resize_nearest_neighbor_param { scale_height: 2 scale_width: 2 } }'))))


# --- the FCN-era forks' V1 CROP ---------------------------------------------------------------

def _v1_unet(crop_bottoms="'c1' bottom: 'up'"):
    return f"""name: 'v1crop'
input: 'data' input_dim: 1 input_dim: 1 input_dim: 12 input_dim: 12
layers {{ bottom: 'data' top: 'c1' name: 'c1' type: CONVOLUTION convolution_param {{ num_output: 2 kernel_size: 3
          weight_filler {{ type: 'gaussian' std: 0.5 }} }} }}
layers {{ bottom: 'c1' top: 'c1' name: 'r1' type: RELU }}
layers {{ bottom: 'c1' top: 'p1' name: 'p1' type: POOLING pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layers {{ bottom: 'p1' top: 'c2' name: 'c2' type: CONVOLUTION convolution_param {{ num_output: 2 kernel_size: 3
          weight_filler {{ type: 'gaussian' std: 0.5 }} }} }}
layers {{ bottom: 'c2' top: 'up' name: 'up' type: DECONVOLUTION convolution_param {{ num_output: 2 kernel_size: 2
          stride: 2 weight_filler {{ type: 'gaussian' std: 0.5 }} }} }}
layers {{ bottom: {crop_bottoms} top: 'crop' name: 'crop' type: CROP }}
"""


def test_v1_crop_offsets_from_the_coordinate_maps():
    # coords.hpp: conv 3 maps x -> x - 1, pool 2/2 x -> (x - 0.5) / 2, deconv 2/2 y -> 2 y + 0.5;
    # from c1 to 'up': 2 ((x - 0.5) / 2 - 1) + 0.5 = x - 2, so the crop starts at 2 (on 10 x 10
    # to 6 x 6: 12 - 2 = 10, pool 5, conv 3, deconv 6).
    shapes, g = shapes_of(_v1_unet())
    assert shapes["crop"] == (1, 2, 6, 6)
    assert coord_crop_offsets(g.node("crop")) == (2, 2)
    x = np.random.default_rng(1).standard_normal((1, 1, 12, 12)).astype(np.float32)
    parsed = g.parsed
    w = {"c1": [np.ones((2, 1, 3, 3)), np.zeros(2)], "c2": [np.ones((2, 2, 3, 3)), np.zeros(2)],
         "up": [np.ones((2, 2, 2, 2)), np.zeros(2)]}
    out = forward(parsed.message, w, {"data": x}, loc=parsed.loc)
    assert np.array_equal(out["crop"], out["c1"][:, :, 2:8, 2:8])


def test_v1_crop_errors():
    # 'p1' against 'c1': the pooling halves the scale, which CropLayer refuses.
    assert any("differ in scale" in m for m in errors_of(_v1_unet("'c1' bottom: 'p1'")))
    # 'up' cropped to 'c1' would need a negative offset.
    assert any("crop offset on the height axis would be -2" in m for m in errors_of(_v1_unet("'up' bottom: 'c1'")))


def test_v1_crop_verify(tmp_path):
    _verify_cli(tmp_path, _v1_unet())


def test_v2_crop_keeps_bvlc_semantics():
    text = _net((1, 1, 8, 8), """
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 3 } }
layer { name: "crop" type: "Crop" bottom: "data" bottom: "c" top: "crop" }""")
    shapes, g = shapes_of(text)
    assert not v1_written(g.node("crop").loc)
    x = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)
    out = forward(g.parsed.message, {"c": [np.ones((1, 1, 3, 3)), np.zeros(1)]}, {"data": x}, loc=g.parsed.loc)
    assert np.array_equal(out["crop"], x[:, :, :6, :6])     # BVLC: offset 0 without crop_param


def test_fcn_crops_of_crfasrnn_are_the_fcn8s_offsets():
    # FCN-8s (pad 100): score-pool4 cropped at 5, score-pool3 at 9, the upscored score at 31.
    g = netdef.compile(str(ZOO_WILD / "crfasrnn/TVG_CRFRNN_COCO_VOC.prototxt"))
    assert [coord_crop_offsets(n) for n in g.nodes if n.type == "Crop"] == [(5, 5), (9, 9), (31, 31)]
    # U-Net phseg_v5: the classic (big - small) / 2 centre crops.
    g = netdef.compile(str(ZOO_WILD / "unet_phseg_v5/tmp-test.prototxt"))
    assert [coord_crop_offsets(n) for n in g.nodes if n.type == "Crop"] == [(4, 4), (16, 16), (40, 40), (88, 88)]


# --- CRF-as-RNN's MultiStageMeanfield ---------------------------------------------------------

def _crf(iterations=3, image=(1, 3, 5, 6), unary=(1, 4, 5, 6)):
    dims = " ".join(f"dim: {d}" for d in image)
    return _net(unary, f"""
layer {{ name: "img" type: "Input" top: "img" input_param {{ shape {{ {dims} }} }} }}
layer {{ name: "crf" type: "MultiStageMeanfield" bottom: "data" bottom: "data" bottom: "img" top: "crf"
        multi_stage_meanfield_param {{ num_iterations: {iterations} theta_alpha: 160 theta_beta: 3 theta_gamma: 3 }} }}
""")


def test_meanfield_shape_blobs_rf_cost():
    shapes, g = shapes_of(_crf())
    # LayerSetUp: top (N, C, H, W) of the unary; blobs (1, 1, C, C) x 3.
    assert shapes["crf"] == (1, 4, 5, 6)
    node = g.node("crf")
    assert node.meta["blobs"] == [(1, 1, 4, 4)] * 3
    assert g.blob("crf").meta["rf"].whole
    # 3 stages x 30 pixels x 3 C x C products; filtering (3 + 6) x 5 + 2 and 4 more per value.
    assert node.meta["cost"]["macs"] == 3 * 30 * 3 * 16
    assert node.meta["cost"]["flops"] == 2 * 3 * 30 * 48 + 3 * 30 * 4 * (15 + 30 + 2) + 3 * 30 * 4 * 4


@pytest.mark.parametrize("text,message", [
    (_crf(iterations=1), "num_iterations must be greater than 1"),
    (_crf(image=(1, 2, 5, 6)), "must hold 3 planes of 5 x 6 values"),
])
def test_meanfield_errors(text, message):
    assert any(message in m for m in errors_of(text)), errors_of(text)


def test_meanfield_is_not_exported_and_names_outputs():
    path = str(ZOO_WILD / "crfasrnn/TVG_CRFRNN_new_deploy.prototxt")
    code, out = _cli("export", path, "-o", "/dev/null")
    assert code != 0 and "MultiStageMeanfield" in out


def test_fork_warnings_name_the_forks():
    code, out = _cli("check", str(ZOO_WILD / "c3d_ucf101_ndconv/c3d_ucf101_deploy.prototxt"))
    assert code == 0 and "video-caffe" in out and "kernel_shape" in out
    code, out = _cli("check", str(ZOO_WILD / "crfasrnn/TVG_CRFRNN_COCO_VOC.prototxt"))
    assert code == 0 and "'CROP' is not a BVLC Caffe V1 layer type" in out and "torrvision/caffe" in out


def _crf_weights(c, rng):
    return [rng.standard_normal((1, 1, c, c)) for _ in range(3)]


def test_meanfield_reference_with_flat_kernels_is_the_mean_field_by_hand():
    """With theta huge every pixel's features are ~0: each lattice filter, normalised, returns
    the mean over the pixels, so each stage is X = U - K (Ws + Wb) mean(softmax(X))."""
    text = _crf(iterations=3).replace("theta_alpha: 160 theta_beta: 3 theta_gamma: 3",
                                      "theta_alpha: 1e9 theta_beta: 1e9 theta_gamma: 1e9")
    g = compile_text(text)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((1, 4, 5, 6))
    blobs = _crf_weights(4, rng)
    out = forward(g.parsed.message, {"crf": blobs}, {"data": u, "img": np.zeros((1, 3, 5, 6))}, loc=g.parsed.loc)
    ws, wb, k = (b.reshape(4, 4) for b in blobs)
    x = unary = u.reshape(4, 30)
    for _ in range(3):
        q = np.exp(x - x.max(axis=0)) / np.exp(x - x.max(axis=0)).sum(axis=0)
        x = unary - k @ (ws + wb) @ np.repeat(q.mean(axis=1, keepdims=True), 30, axis=1)
    assert np.abs(out["crf"].reshape(4, 30) - x).max() < 1e-5


def _lattice_by_loops(features, values):
    """modified_permutohedral.cpp read loop by loop (init with the SSE rounding, then
    seqCompute), with a dict for the hash table: an independent reading to compare with the
    vectorised reference."""
    f32 = np.float32
    n, d = features.shape
    inv_std = f32(np.sqrt(2.0 / 3.0) * (d + 1))
    scale = [f32(1.0 / np.sqrt((i + 2) * (i + 1)) * float(inv_std)) for i in range(d)]
    canonical = [[i if j <= d - i else i - (d + 1) for j in range(d + 1)] for i in range(d + 1)]
    table, offset, bary_all = {}, [], []
    for k in range(n):
        f = [f32(v) for v in features[k]]
        elevated = [f32(0)] * (d + 1)
        sm = f32(0)
        for j in range(d, 0, -1):
            cf = f32(f[j - 1] * scale[j - 1])
            elevated[j] = f32(sm - f32(j) * cf)
            sm = f32(sm + cf)
        elevated[0] = sm
        rem0, total = [], 0
        for i in range(d + 1):
            v = float(np.rint(f32(f32(1.0 / (d + 1)) * elevated[i])))
            rem0.append(f32(v * (d + 1)))
            total += int(v)
        rank = [0] * (d + 1)
        for i in range(d):
            for j in range(i + 1, d + 1):
                if f32(elevated[i] - rem0[i]) < f32(elevated[j] - rem0[j]):
                    rank[i] += 1
                else:
                    rank[j] += 1
        for i in range(d + 1):
            rank[i] += total
            if rank[i] < 0:
                rank[i] += d + 1
                rem0[i] += d + 1
            elif rank[i] >= d + 1:
                rank[i] -= d + 1
                rem0[i] -= d + 1
        bary = [f32(0)] * (d + 2)
        for i in range(d + 1):
            v = f32(f32(elevated[i] - rem0[i]) * f32(1.0 / (d + 1)))
            bary[d - rank[i]] = f32(bary[d - rank[i]] + v)
            bary[d - rank[i] + 1] = f32(bary[d - rank[i] + 1] - v)
        bary[0] = f32(bary[0] + f32(1 + bary[d + 1]))
        for r in range(d + 1):
            key = tuple(int(rem0[i]) + canonical[r][rank[i]] for i in range(d))
            offset.append(table.setdefault(key, len(table)))
            bary_all.append(float(bary[r]))
    keys = {v: k for k, v in table.items()}
    m = len(table)
    vals = np.zeros((m + 1, values.shape[0]))
    for i in range(n):
        for j in range(d + 1):
            vals[offset[i * (d + 1) + j] + 1] += bary_all[i * (d + 1) + j] * values[:, i]
    for j in range(d + 1):
        new = vals.copy()
        for i in range(m):
            key = keys[i]
            n1 = [x - 1 for x in key]
            n2 = [x + 1 for x in key]
            if j < d:
                n1[j], n2[j] = key[j] + d, key[j] - d
            a, b = table.get(tuple(n1), -1) + 1, table.get(tuple(n2), -1) + 1
            new[i + 1] = vals[i + 1] + 0.5 * (vals[a] + vals[b])
        vals = new
    alpha = 1.0 / (1.0 + 2.0 ** -d)
    out = np.zeros_like(values, dtype=np.float64)
    for i in range(n):
        for j in range(d + 1):
            out[:, i] += bary_all[i * (d + 1) + j] * vals[offset[i * (d + 1) + j] + 1] * alpha
    return out


@pytest.mark.parametrize("d", [2, 5])
def test_lattice_matches_the_forks_loops(d):
    from netdef.reference.crf import Lattice
    rng = np.random.default_rng(d)
    px = 30
    ys, xs = np.divmod(np.arange(px), 6)
    feats = np.stack([xs / 3.0, ys / 3.0] + [rng.uniform(0, 255, px) / 7.0 for _ in range(d - 2)], axis=1)
    values = rng.standard_normal((4, px))
    got = Lattice(None, feats.astype(np.float32)).filter(values)
    want = _lattice_by_loops(feats.astype(np.float32), values)
    assert np.abs(got - want).max() < 1e-9 * max(1.0, np.abs(want).max())

def test_lattice_of_one_point_by_hand():
    """d = 2, one point at 0: elevated 0, rank (0, 1, 2), barycentric (1, 0, 0); keys A = (0, 0)
    with the mass 1, B = (1, 1), C = (2, -1). Axis 0: A's neighbours (2, -1) = C and (-2, 1):
    A = 1, B = 0, C = 0 + A / 2 = 0.5. Axis 1: B's neighbours (0, 3) and (2, -1) = C: B = 0.25,
    A's are absent, C's (1, 1) = B (0 then) and (3, -3): C = 0.5. Axis 2 (key - 1, key + 1):
    A = 1 + B / 2 = 1.125. Slice: 2 x 1.125 x alpha (1 / (1 + 1/4)) = 1.8."""
    from netdef.reference.crf import Lattice
    one = Lattice(None, np.zeros((1, 2), np.float32)).filter(np.array([[2.0]]))
    assert np.isclose(one[0, 0], 1.8)


def test_meanfield_reference_runs_on_real_kernels():
    g = compile_text(_crf(iterations=2))
    rng = np.random.default_rng(5)
    u = rng.standard_normal((1, 4, 5, 6))
    out = forward(g.parsed.message, {"crf": _crf_weights(4, rng)},
                  {"data": u, "img": rng.uniform(0, 255, (1, 3, 5, 6))}, loc=g.parsed.loc)
    assert out["crf"].shape == (1, 4, 5, 6) and np.isfinite(out["crf"]).all()
    assert not np.allclose(out["crf"], u)
