"""Issue 11, the hunt beyond zoo-wild (everything but detection): real-world files of other
repositories than tests/data/zoo and tests/data/zoo-wild (tests/data/zoo-more/other/MANIFEST.tsv),
run through `check`, `export` and `verify` like tests/test_zoo_wild.py does, and small hand-written
nets pinning each variant netdef had wrong on them, with values worked out by hand:

  - deeplab-public (DeepLab v1): convolution_param hole / hole_h + hole_w (a trous convolution,
    written as BVLC's dilation by the upgrade) and the PADDING layer (zero pad or crop);
  - C3D-v1.0's V1 VIDEO_DATA (image_data_param with C3D's new_length): its clip shapes;
  - TSN's VideoData (yjxiong/caffe video_data_param: num_segments, modality): its stacked shapes;
  - C3D-v1.1's Convolution3D / Pooling3D reading convolution3d_param / pooling3d_param, and its
    VideoData (video_data_param with use_image, show_data, ...);
  - SegNet's BN with three tops (the batch mean and variance, compute_bn_statistics.py's nets).
"""
import contextlib
import csv
import io

import numpy as np
import onnx
import pytest
from conftest import ZOO_MORE, compile_text, errors_of, shapes_of

from netdef.cli import main
from netdef.export.onnx import export
from netdef.reference import forward

OTHER = ZOO_MORE / "other"
MANIFEST = list(csv.DictReader((OTHER / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))

# --input for each kept file (batch 1) where the definition does not fix it, or fixes a size that
# takes long in the NumPy reference: these nets are fully convolutional.
INPUTS = {
    # DeepLab v1's crop_size 514 = 16 k + 2 (k = 32); k = 4 gives 66 and the same alignment.
    "deeplab_v1_largefov/test.prototxt": ["--input", "data=1,3,66,66"],
    # C3D's 16 x 112 x 112 clips take long in the reference: 32 x 32 frames reach pool5 at 1 x 1.
    "c3d_ucf101_v1/conv3d_ucf101_test.prototxt": ["--input", "data=1,3,16,32,32", "--input", "label=1,1,1,1,1"],
    # Its TEST data layers are chosen by stage; the clip shrunk as above.
    "c3d_ucf101_v11/train_simple.prototxt": ["--stage", "test-on-val", "--input", "data=1,3,16,32,32",
                                             "--input", "label=1"],
    # SegNet's DenseImageData reads its sizes from the images; 64 x 64 passes its five poolings.
    "segnet_bn_stats/__for_calculating_BN_stats_segnet_train.prototxt": ["--input", "data=1,3,64,64",
                                                                         "--input", "label=1,1,64,64"],
}
# export --outputs / verify --outputs where the net ends in a layer without public semantics.
OUTPUTS: dict[str, list[str]] = {}


def _cli(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_manifest_lists_every_kept_file():
    files = {r["file"] for r in MANIFEST}
    on_disk = {p.relative_to(OTHER).as_posix() for p in OTHER.glob("*/*") if p.is_file()}
    assert files == on_disk
    assert len(files) <= 15
    for r in MANIFEST:
        assert r["source_repo"] and r["source_path"] and len(r["commit"]) == 40 and r["license"]
    assert set(INPUTS) <= files and set(OUTPUTS) <= files


@pytest.mark.parametrize("rel", sorted(r["file"] for r in MANIFEST))
def test_check_export_verify(rel, tmp_path):
    path = str(OTHER / rel)
    args = INPUTS.get(rel, [])
    code, text = _cli("check", path, *args)
    assert code == 0, text[-3000:]
    outs = ["--outputs", ",".join(OUTPUTS[rel])] if rel in OUTPUTS else []
    onnx_path = tmp_path / "net.onnx"
    code, text = _cli("export", path, "-o", str(onnx_path), *args, *outs)
    assert code == 0, text[-3000:]
    onnx.checker.check_model(onnx.load(str(onnx_path)), full_check=True)
    code, text = _cli("verify", path, *args, *outs)
    assert code == 0, text[-3000:]
    assert "compared" in text and "compared 0 blobs" not in text


# --- deeplab-public: hole (a trous convolution) -------------------------------------------------

def _v1(layers, size=(1, 1, 9, 9)):
    dims = " ".join(f"input_dim: {d}" for d in size)
    return f"name: 'deeplab_v1'\ninput: 'data' {dims}\n" + layers


def _hole_conv(fields, kernel=3, pad=0):
    return _v1(f"""layers {{ bottom: 'data' top: 'c' name: 'c' type: CONVOLUTION
  convolution_param {{ num_output: 1 kernel_size: {kernel} pad: {pad} {fields} bias_term: false }} }}""")


def test_hole_is_dilation_for_shapes():
    # deeplab-public conv_layer.cpp: kernel_eff = k + (k - 1) (hole - 1); out = (H + 2 pad - kernel_eff) / stride + 1.
    # k 3, hole 2: kernel_eff 5, 9 - 5 + 1 = 5; hole 4, pad 4: kernel_eff 9, 9 + 8 - 9 + 1 = 9.
    assert shapes_of(_hole_conv("hole: 2"))[0]["c"] == (1, 1, 5, 5)
    assert shapes_of(_hole_conv("hole: 4", pad=4))[0]["c"] == (1, 1, 9, 9)
    # hole_h 1 (kernel_eff 3: 7 rows), hole_w 3 (kernel_eff 7: 3 columns).
    shapes, g = shapes_of(_hole_conv("hole_h: 1 hole_w: 3"))
    assert shapes["c"] == (1, 1, 7, 3)
    assert list(g.node("c").param.convolution_param.dilation) == [1, 3]


def test_hole_reference_reads_taps_hole_apart():
    # im2col_cpu: tap (i, j) reads the input at (h + i * hole, w + j * hole). With a kernel of ones
    # and hole 2, output (0, 0) sums x[0, 0], x[0, 2], x[0, 4], x[2, 0], ... x[4, 4].
    g = compile_text(_hole_conv("hole: 2"))
    x = np.arange(81, dtype=np.float32).reshape(1, 1, 9, 9)
    out = forward(g.parsed.message, {"c": [np.ones((1, 1, 3, 3), np.float32)]}, {"data": x}, loc=g.parsed.loc)
    by_hand = sum(9 * r + c for r in (0, 2, 4) for c in (0, 2, 4))
    assert out["c"][0, 0, 0, 0] == by_hand == 180
    # output (1, 2): each of the 9 taps moves 1 row down (+9) and 2 columns right (+2).
    assert out["c"][0, 0, 1, 2] == by_hand + 9 * (9 + 2) == 279


@pytest.mark.parametrize("fields,message", [
    ("hole: 2 hole_h: 2 hole_w: 2", "give 'hole' alone, or 'hole_h' and 'hole_w' together"),
    ("hole_h: 2", "give 'hole' alone, or 'hole_h' and 'hole_w' together"),
    ("hole: 0", "'hole' is 0: deeplab-public's hole is a whole number >= 1"),
    ("hole: 2 dilation: 2", "both deeplab-public's 'hole' and BVLC's 'dilation' are given"),
])
def test_hole_errors(fields, message):
    assert any(message in m for m in errors_of(_hole_conv(fields)))


def test_hole_warns_and_upgrade_writes_dilation(tmp_path):
    p = tmp_path / "net.prototxt"
    p.write_text(_hole_conv("hole: 2"))
    code, out = _cli("check", str(p))
    assert code == 0 and "W216" in out and "'hole'" in out and "dilation" in out, out
    code, out = _cli("upgrade", str(p))
    assert code == 0, out
    assert "dilation: 2" in out and "hole" not in out.split("layer {", 1)[1], out


def test_upgraded_deeplab_v1_file_reads_back(tmp_path):
    # `netdef upgrade` writes hole as dilation and keeps the fork's other fields, which read back
    # with their warnings; the shapes are the same.
    out = tmp_path / "up.prototxt"
    src = OTHER / "deeplab_v1_largefov/test.prototxt"
    code, text = _cli("upgrade", str(src), "-o", str(out))
    assert code == 0, text
    code, text = _cli("check", str(out), "--input", "data=1,3,66,66")
    assert code == 0, text[-3000:]
    a = compile_text(src.read_text()).blob("fc8_crop").meta["shape"]
    b = compile_text(out.read_text()).blob("fc8_crop").meta["shape"]
    assert a == b == (1, 21, 514, 514)


def test_hole_in_a_current_format_layer():
    text = """name: "v2" layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 9 dim: 9 } } }
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 3 hole: 3 } }"""
    assert shapes_of(text)[0]["c"] == (1, 1, 3, 3)      # kernel_eff 7


# --- deeplab-public: PADDING --------------------------------------------------------------------

def _padding(beg, end, size=(1, 2, 4, 5)):
    return _v1(f"layers {{ bottom: 'data' top: 'p' name: 'p' type: PADDING "
               f"padding_param {{ pad_beg: {beg} pad_end: {end} }} }}", size)


def test_padding_shapes_and_values_by_hand():
    x = np.arange(40, dtype=np.float32).reshape(1, 2, 4, 5) + 1
    # pad_beg 2, pad_end 1: (4 + 3) x (5 + 3); top[h, w] = x[h - 2, w - 2], zeros around.
    shapes, g = shapes_of(_padding(2, 1))
    assert shapes["p"] == (1, 2, 7, 8)
    out = forward(g.parsed.message, {}, {"data": x}, loc=g.parsed.loc)["p"]
    assert out[0, 1, 2, 2] == x[0, 1, 0, 0] == 21 and out[0, 1, 5, 6] == x[0, 1, 3, 4] == 40
    assert out[0, :, :2].sum() == 0 and out[0, :, 6].sum() == 0 and out[0, :, :, :2].sum() == 0
    assert out[0, :, :, 7].sum() == 0 and out.sum() == x.sum()
    # pad_beg -1, pad_end -2: a crop of rows 1..1 (4 - 3 = 1) and columns 1..2 (5 - 3 = 2).
    shapes, g = shapes_of(_padding(-1, -2))
    assert shapes["p"] == (1, 2, 1, 2)
    out = forward(g.parsed.message, {}, {"data": x}, loc=g.parsed.loc)["p"]
    assert out[0, 0].tolist() == [[7.0, 8.0]] and out[0, 1].tolist() == [[27.0, 28.0]]


def test_padding_moves_the_receptive_field():
    # top position 0 is bottom position -pad_beg: the centre moves by -pad_beg input pixels.
    _, g = shapes_of(_padding(3, 0))
    assert g.blob("p").meta["rf"].center[:2] == (-3, -3)


@pytest.mark.parametrize("beg,end,message", [
    (2, -1, "have different signs"),
    (-2, -2, "leave nothing of 'data'"),
])
def test_padding_errors(beg, end, message):
    assert any(message in m for m in errors_of(_padding(beg, end)))


@pytest.mark.parametrize("beg,end", [(2, 1), (-1, -2), (0, 0)])
def test_padding_verify(tmp_path, beg, end):
    p = tmp_path / "net.prototxt"
    p.write_text(_padding(beg, end))
    code, out = _cli("verify", str(p))
    assert code == 0 and "compared" in out, out[-3000:]


# --- C3D-v1.0's VIDEO_DATA and TSN's VideoData -----------------------------------------------------

def _c3d_data(fields):
    return f"""name: 'c3d'
layers {{ name: 'data' type: VIDEO_DATA top: 'data' top: 'label'
  image_data_param {{ source: 'list.txt' use_image: true batch_size: 4 {fields} }} }}"""


def test_c3d_video_data_shapes():
    # video_data_layer.cpp: (batch, 3, new_length, crop, crop), else (batch, 3, new_length, new_h, new_w);
    # the label (batch, 1, 1, 1, 1).
    shapes, _ = shapes_of(_c3d_data("new_length: 16 crop_size: 112 new_height: 128 new_width: 171"))
    assert shapes["data"] == (4, 3, 16, 112, 112) and shapes["label"] == (4, 1, 1, 1, 1)
    shapes, _ = shapes_of(_c3d_data("new_length: 8 new_height: 64 new_width: 80"))
    assert shapes["data"] == (4, 3, 8, 64, 80)


@pytest.mark.parametrize("fields,message", [
    ("crop_size: 112", "new_length must be a positive integer, got None"),
    ("new_length: 16 crop_size: 128 new_height: 128 new_width: 171", "crop_size 128 must be smaller"),
    ("new_length: 16 new_height: 128", "new_height and new_width must be set together"),
])
def test_c3d_video_data_errors(fields, message):
    assert any(message in m for m in errors_of(_c3d_data(fields)))


def _tsn_data(fields, crop="crop_size: 224"):
    return f"""name: "tsn"
layer {{ name: "data" type: "VideoData" top: "data" top: "label"
  video_data_param {{ source: "list.txt" batch_size: 2 {fields} }} transform_param {{ {crop} }} }}"""


def test_tsn_video_data_shapes():
    # io.cpp: 3 channels a frame (RGB), 1 (grayscale), 2 (FLOW, the default modality), times new_length
    # times num_segments.
    assert shapes_of(_tsn_data("new_length: 1 num_segments: 3 modality: RGB"))[0]["data"] == (2, 9, 224, 224)
    assert shapes_of(_tsn_data("new_length: 5 num_segments: 3"))[0]["data"] == (2, 30, 224, 224)
    shapes, _ = shapes_of(_tsn_data("num_segments: 2 modality: RGB grayscale: true new_height: 20 new_width: 30", ""))
    assert shapes["data"] == (2, 2, 20, 30) and shapes["label"] == (2, 1, 1, 1)


def test_ssd_video_data_still_needs_its_input():
    # SSD's VideoData (video_type, no TSN field) keeps reading its shapes from --input.
    g = compile_text(_tsn_data("video_type: WEBCAM"))
    assert g.blob("data").meta.get("shape") is None


# --- DeepLab v2's ImageSegData: crop_height / crop_width, the image-size top ------------------------

def _seg_data(transform, tops=("data", "label", "data_dim")):
    tops_text = " ".join(f'top: "{t}"' for t in tops)
    return f"""name: "deeplab_v2"
layer {{ name: "data" type: "ImageSegData" {tops_text}
  transform_param {{ {transform} }} image_data_param {{ source: "list.txt" batch_size: 2 label_type: PIXEL }} }}"""


def test_image_seg_data_crop_height_width_and_size_top():
    # deeplab-public-ver2 image_seg_data_layer.cpp: (batch, 3, crop_height, crop_width), labels
    # (batch, 1, crop_height, crop_width), top[2] (batch, 1, 1, 2).
    shapes, _ = shapes_of(_seg_data("crop_height: 321 crop_width: 513 scale_factors: 0.5 scale_factors: 1"))
    assert shapes["data"] == (2, 3, 321, 513) and shapes["label"] == (2, 1, 321, 513)
    assert shapes["data_dim"] == (2, 1, 1, 2)
    shapes, _ = shapes_of(_seg_data("crop_size: 65"))
    assert shapes["data"] == (2, 3, 65, 65) and shapes["data_dim"] == (2, 1, 1, 2)


@pytest.mark.parametrize("transform", ["crop_height: 321", "crop_size: 65 crop_height: 3 crop_width: 3"])
def test_image_seg_data_crop_errors(transform):
    assert any("give crop_size, or crop_height and crop_width together" in m for m in errors_of(_seg_data(transform)))


# --- C3D-v1.1: convolution3d_param, pooling3d_param, its VideoData ------------------------------------

def _c3d11(conv="num_output: 2 kernel_size: 3 kernel_depth: 3 pad: 1 temporal_pad: 1",
           pool="pool: MAX kernel_size: 2 kernel_depth: 2 stride: 2 temporal_stride: 2", shape=(1, 1, 4, 5, 5)):
    dims = " ".join(f"dim: {d}" for d in shape)
    return f"""name: "c3d11"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}
layer {{ name: "conv" type: "Convolution3D" bottom: "data" top: "conv"
  convolution3d_param {{ {conv} weight_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "pool" type: "Pooling3D" bottom: "conv" top: "pool" pooling3d_param {{ {pool} }} }}"""


def test_c3d11_shapes_blobs():
    # convolution3d_layer.cpp: (4 + 2 - 3) / 1 + 1 = 4 frames, (5 + 2 - 3) / 1 + 1 = 5; pool3d_layer.cpp:
    # ceil((4 - 2) / 2) + 1 = 2, ceil((5 - 2) / 2) + 1 = 3 (the last window clipped).
    shapes, g = shapes_of(_c3d11())
    assert shapes["conv"] == (1, 2, 4, 5, 5) and shapes["pool"] == (1, 2, 2, 3, 3)
    assert g.node("conv").meta["blobs"] == [(2, 1, 3, 3, 3), (1, 1, 1, 1, 2)]
    shapes, g = shapes_of(_c3d11(conv="num_output: 4 kernel_size: 1 kernel_depth: 2 temporal_stride: 2 bias_term: false"))
    assert shapes["conv"] == (1, 4, 2, 5, 5) and g.node("conv").meta["blobs"] == [(4, 1, 2, 1, 1)]


def test_c3d11_reference_by_hand():
    # A 1 x 1 x 2 (depth 2) kernel of ones, temporal_stride 2: each output frame is the sum of two
    # input frames; MAX pooling 2 x 2 x 2 (stride 2) then takes the largest such sum of its window.
    text = _c3d11(conv="num_output: 1 kernel_size: 1 kernel_depth: 2 temporal_stride: 2 bias_term: false",
                  pool="pool: MAX kernel_size: 2 kernel_depth: 1 stride: 2", shape=(1, 1, 2, 2, 2))
    g = compile_text(text)
    x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)       # frame 0: 0..3, frame 1: 4..7
    out = forward(g.parsed.message, {"conv": [np.ones((1, 1, 2, 1, 1), np.float32)]}, {"data": x}, loc=g.parsed.loc)
    assert out["conv"].reshape(-1).tolist() == [4.0, 6.0, 8.0, 10.0]
    assert out["pool"].reshape(-1).tolist() == [10.0]
    # AVE with pad 1: windows clipped to the padded frame divide by their padded size.
    text = _c3d11(conv="num_output: 1 kernel_size: 1 kernel_depth: 1 bias_term: false",
                  pool="pool: AVE kernel_size: 2 kernel_depth: 1 stride: 2 pad: 1", shape=(1, 1, 1, 2, 2))
    g = compile_text(text)
    x = np.array([1, 2, 3, 4], np.float32).reshape(1, 1, 1, 2, 2)
    out = forward(g.parsed.message, {"conv": [np.ones((1, 1, 1, 1, 1), np.float32)]}, {"data": x}, loc=g.parsed.loc)
    # output 2 x 2, each window holds one input pixel and three pads: x / 4.
    assert out["pool"].reshape(-1).tolist() == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("conv,pool,message", [
    ("num_output: 2 kernel_size: 3", "pool: MAX kernel_size: 2 kernel_depth: 2", "convolution3d_param has no kernel_depth"),
    ("num_output: 3 kernel_size: 1 kernel_depth: 1 filter_group: 2", "pool: MAX kernel_size: 1 kernel_depth: 1",
     "num_output 3 must be positive and a multiple of filter_group 2"),
    ("num_output: 2 kernel_size: 1 kernel_depth: 1", "pool: MAX kernel_size: 2 kernel_depth: 1 pad: 1",
     "C3D pads only average pooling"),
])
def test_c3d11_errors(conv, pool, message):
    assert any(message in m for m in errors_of(_c3d11(conv=conv, pool=pool)))


@pytest.mark.parametrize("pool", ["pool: MAX kernel_size: 2 kernel_depth: 2 stride: 2 temporal_stride: 2",
                                  "pool: AVE kernel_size: 3 kernel_depth: 2 stride: 2 pad: 1"])
def test_c3d11_verify(tmp_path, pool):
    p = tmp_path / "net.prototxt"
    p.write_text(_c3d11(pool=pool))
    code, out = _cli("verify", str(p))
    assert code == 0 and "compared" in out, out[-3000:]


def test_c3d11_video_data_shapes():
    text = """name: "c3d11"
layer { name: "data" type: "VideoData" top: "data" top: "label" transform_param { crop_size: 112 }
  video_data_param { source: "l.txt" new_length: 16 new_height: 128 new_width: 171 use_image: true batch_size: 10 } }"""
    shapes, _ = shapes_of(text)
    assert shapes["data"] == (10, 3, 16, 112, 112) and shapes["label"] == (10,)
    text = text.replace("use_image: true", "use_multiple_label: true num_of_labels: 5").replace("crop_size: 112", "")
    shapes, _ = shapes_of(text)
    assert shapes["data"] == (10, 3, 16, 128, 171) and shapes["label"] == (10, 5)


# --- SegNet's BN with the batch mean and variance as tops -----------------------------------------

def _segnet_bn(mode="", tops=("y", "m", "v"), extra=""):
    tops_text = " ".join(f'top: "{t}"' for t in tops)
    return f"""name: "bnstats"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 2 dim: 2 dim: 1 dim: 2 }} }} }}
layer {{ name: "bn" type: "BN" bottom: "data" {tops_text} bn_param {{ {mode} {extra} }} }}"""


def test_segnet_bn_mean_and_variance_tops_by_hand():
    # caffe-segnet bn_layer.cpp LEARN: top[1] = the mean over N, H, W; top[2] = E[x^2] - E[x]^2.
    shapes, g = shapes_of(_segnet_bn())
    assert shapes["y"] == (2, 2, 1, 2) and shapes["m"] == shapes["v"] == (1, 2, 1, 1)
    x = np.array([1, 3, 10, 20, 5, 7, 30, 50], np.float32).reshape(2, 2, 1, 2)
    blobs = [np.ones((1, 2, 1, 1), np.float32), np.zeros((1, 2, 1, 1), np.float32)]
    out = forward(g.parsed.message, {"bn": blobs}, {"data": x}, loc=g.parsed.loc)
    # channel 0 holds 1, 3, 5, 7: mean 4, E[x^2] = 21, variance 5; channel 1: 10, 20, 30, 50: mean 27.5,
    # E[x^2] = (100 + 400 + 900 + 2500) / 4 = 975, variance 975 - 756.25 = 218.75.
    assert out["m"].reshape(-1).tolist() == [4.0, 27.5]
    assert np.allclose(out["v"].reshape(-1), [5.0, 218.75])


def test_segnet_bn_inference_mode_tops_stay_zero(tmp_path):
    text = _segnet_bn("bn_mode: INFERENCE")
    g = compile_text(text)
    assert any(d.code == "W413" and "does not write" in d.message for d in g.diagnostics)
    x = np.ones((2, 2, 1, 2), np.float32)
    out = forward(g.parsed.message, {"bn": [np.ones((1, 2, 1, 1)), np.zeros((1, 2, 1, 1))]}, {"data": x},
                  loc=g.parsed.loc)
    assert not out["m"].any() and not out["v"].any()


@pytest.mark.parametrize("mode", ["", "bn_mode: INFERENCE"])
def test_segnet_bn_tops_verify(tmp_path, mode):
    p = tmp_path / "net.prototxt"
    p.write_text(_segnet_bn(mode))
    code, out = _cli("verify", str(p))
    assert code == 0 and "compared" in out, out[-3000:]


def test_pspnet_bn_takes_one_top():
    assert any("takes 1 top, got 3" in m for m in errors_of(_segnet_bn(extra="frozen: true")))
