"""Reference cases for the SSD-fork layers netdef implements, computed by a real fork of Caffe.

Run with the oracle's Python (brocolli-caffe 9.0.2, an SSD-derived fork, CPU-only pycaffe):

  source /opt/caffe-oracle/env.sh
  /opt/caffe-oracle/venv/bin/python tools/gen/ssd_fork_cases.py [OUT_DIR]

OUT_DIR defaults to tests/data/conformance/ssd_fork. `--check` (no Caffe needed, any Python with
NumPy) rebuilds every case's net.prototxt and inputs and fails if the stored ones differ or a
case is missing or extra; the blobs Caffe computed are then the tests' business. Each case becomes
OUT_DIR/<case>/{net.prototxt, blobs.npz[, weights.caffemodel]}: blobs.npz holds every input and
every blob after one TEST-phase forward pass; the inputs are the Input layers' tops. Inputs are
seeded and deterministic; the DetectionOutput cases build their inputs so that boxes overlap
(NMS has work to do) and no two scores tie. The conv_kernel_larger_* cases are convolutions whose
kernel is larger than the padded input (Caffe's truncating division gives one window). Geometries
this Caffe aborts on (refused_cases) become OUT_DIR/<case>/{net.prototxt, caffe.json}: what the
oracle's `caffe time` tool logged (loaded or not, the failed Check, the top shapes).
"""
import os
import sys

os.environ.setdefault("GLOG_minloglevel", "2")
import numpy as np


def inp(name, shape):
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ {dims} }} }} }}\n'


def layer(name, type_, bottoms, tops, body=""):
    b = "".join(f' bottom: "{x}"' for x in bottoms)
    t = "".join(f' top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{type_}"{b}{t} {body} }}\n'


def rnd(rng, shape, scale=1.0):
    return (rng.normal(0, 1, shape) * scale).astype(np.float32)


def priorbox_net(params, feat=(1, 4, 4, 4), image=(1, 1, 32, 32)):
    text = inp("data", image) + inp("feat", feat)
    text += layer("pb", "PriorBox", ["feat", "data"], ["pb"], f"prior_box_param {{ {params} }}")
    return text


def detection_case(rng, det_params, num_classes=3, loc_classes=1):
    """Image 32x32, a 4x4 feature map, 4 priors a cell (64 priors). Only the shapes of the
    image and the feature map matter (PriorBox reads nothing else): they are zeros."""
    pb = "min_size: 8 max_size: 16 aspect_ratio: 2 flip: true clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2"
    num_priors = 4 * 4 * 4
    text = inp("data", (1, 1, 32, 32)) + inp("feat", (1, 4, 4, 4))
    text += inp("loc", (1, num_priors * loc_classes * 4)) + inp("conf", (1, num_priors * num_classes))
    text += layer("pb", "PriorBox", ["feat", "data"], ["pb"], f"prior_box_param {{ {pb} }}")
    text += layer("det", "DetectionOutput", ["loc", "conf", "pb"], ["det"],
                  f"detection_output_param {{ num_classes: {num_classes} {det_params} }}")
    logits = rng.normal(0, 2, (num_priors, num_classes))
    conf = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    inputs = {"data": np.zeros((1, 1, 32, 32), np.float32), "feat": np.zeros((1, 4, 4, 4), np.float32),
              "loc": rnd(rng, (1, num_priors * loc_classes * 4), 0.5),
              "conf": conf.astype(np.float32).reshape(1, -1)}
    return text, inputs


def cases(rng):
    out = {}

    def pb(name, params, **kw):
        text = priorbox_net(params, **kw)
        shapes = dict(data=kw.get("image", (1, 1, 32, 32)), feat=kw.get("feat", (1, 4, 4, 4)))
        out[name] = (text, {k: np.zeros(s, np.float32) for k, s in shapes.items()})

    # clip is always given: this fork's caffe.proto defaults it to true, weiliu89/caffe's (which
    # netdef follows) to false; the cases pin the computation, not the default.
    pb("priorbox_min_max", "min_size: 8 max_size: 16 clip: false")
    pb("priorbox_aspect_flip", "min_size: 8 max_size: 16 aspect_ratio: 2 aspect_ratio: 3 flip: true clip: false "
       "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2")
    pb("priorbox_noflip_clip", "min_size: 12 aspect_ratio: 2 flip: false clip: true variance: 0.1")
    pb("priorbox_step_offset", "min_size: 6 min_size: 10 max_size: 12 max_size: 20 aspect_ratio: 2 "
       "flip: true clip: true step: 6 offset: 0.25 variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2",
       feat=(1, 2, 5, 6))
    pb("priorbox_img_size_step_hw", "min_size: 9 aspect_ratio: 3 flip: true img_h: 40 img_w: 30 clip: false "
       "step_h: 7 step_w: 5 offset: 0.5 variance: 0.1 variance: 0.2 variance: 0.3 variance: 0.4",
       feat=(1, 2, 5, 6))
    pb("priorbox_img_size", "min_size: 9 max_size: 18 img_size: 36 clip: true", feat=(1, 2, 3, 3))

    out["detection_output_basic"] = detection_case(
        rng, "share_location: true background_label_id: 0 "
             "nms_param { nms_threshold: 0.45 top_k: 40 } keep_top_k: 20 confidence_threshold: 0.1")
    out["detection_output_tight"] = detection_case(
        rng, "share_location: true background_label_id: 0 "
             "nms_param { nms_threshold: 0.3 top_k: 10 } keep_top_k: 5 confidence_threshold: 0.3")
    # background_label_id: -1 with share_location aborts Caffe (DecodeBBoxesAll skips the shared
    # label -1 as background, then "Could not find location predictions for label -1"): the
    # background is the last class here instead.
    out["detection_output_last_background"] = detection_case(
        rng, "share_location: true background_label_id: 2 "
             "nms_param { nms_threshold: 0.5 } keep_top_k: 30 confidence_threshold: 0.2")
    out["detection_output_cxcy_encoded"] = detection_case(
        rng, "share_location: true background_label_id: 0 code_type: CENTER_SIZE "
             "nms_param { nms_threshold: 0.45 top_k: 40 } keep_top_k: 20 confidence_threshold: 0.1")
    out["detection_output_per_class_loc"] = detection_case(
        rng, "share_location: false background_label_id: 0 "
             "nms_param { nms_threshold: 0.45 top_k: 30 } keep_top_k: 15 confidence_threshold: 0.1",
        loc_classes=3)
    out["detection_output_variance_in_target"] = detection_case(
        rng, "share_location: true background_label_id: 1 code_type: CORNER_SIZE "
             "variance_encoded_in_target: true "
             "nms_param { nms_threshold: 0.4 } keep_top_k: 25 confidence_threshold: 0.05")
    # The row count decided by the threshold and NMS, not by keep_top_k; then nothing kept
    # (Caffe writes one row of -1 per image).
    out["detection_output_threshold_bound"] = detection_case(
        rng, "share_location: true background_label_id: 0 "
             "nms_param { nms_threshold: 0.45 top_k: 100 } keep_top_k: 100 confidence_threshold: 0.9")
    out["detection_output_none_kept"] = detection_case(
        rng, "share_location: true background_label_id: 0 "
             "nms_param { nms_threshold: 0.45 } keep_top_k: 10 confidence_threshold: 0.99999")
    # Not a case: without nms_param this fork keeps every box of every class (need_nms_ is
    # has_nms_param(), and the confidence threshold is then not applied either); weiliu89/caffe
    # applies NMS with the default threshold 0.3.

    def norm(name, params, shape=(2, 4, 3, 5)):
        text = inp("data", shape) + layer("norm", "Normalize", ["data"], ["norm"],
                                          f"norm_param {{ {params} scale_filler {{ type: \"gaussian\" mean: 5 std: 2 }} }}")
        out[name] = (text, {"data": rnd(rng, shape)})

    norm("normalize_spatial_shared", "across_spatial: true channel_shared: true")
    norm("normalize_spatial_channels", "across_spatial: true channel_shared: false")
    norm("normalize_perpixel_shared", "across_spatial: false channel_shared: true")
    norm("normalize_perpixel_channels", "across_spatial: false channel_shared: false eps: 0.001")

    def unary(name, type_, body, shape):
        out[name] = (inp("data", shape) + layer("op", type_, ["data"], ["op"], body),
                     {"data": rnd(rng, shape, 5.0)})

    unary("permute_0231", "Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }", (2, 3, 4, 5))
    unary("permute_0312", "Permute", "permute_param { order: 0 order: 3 order: 1 order: 2 }", (2, 3, 4, 5))
    unary("permute_partial", "Permute", "permute_param { order: 0 order: 2 }", (2, 3, 4, 5))
    unary("relu6", "ReLU6", "", (2, 3, 4, 5))
    unary("relu6_param", "ReLU6", "relu6_param { negative_slope: 0.25 threshold: 4 }", (2, 3, 4, 5))
    unary("relu6_threshold", "ReLU6", "relu6_param { threshold: 3.5 }", (2, 3, 4, 5))
    unary("hardswish", "HardSwish", "", (2, 3, 4, 5))

    # PSROIPooling is not a case: the oracle's psroi_pooling_layer.cpp has no CPU forward
    # (Forward_cpu is NOT_IMPLEMENTED; only the .cu computes) and the oracle is CPU-only.

    # A convolution kernel larger than its padded input: (size + 2 pad - extent) / stride + 1
    # in C++ int division (truncating toward zero) gives one window that reads zeros past the
    # input. This fork has no pad_t/pad_b/pad_l/pad_r, nor the depthwise layer types.
    for name, shape, params in CONV_CASES:
        out[name] = (inp("data", shape) + layer("conv", "Convolution", ["data"], ["conv"],
                                               f"convolution_param {{ {params} {CONV_FILLERS} }}"),
                     {"data": rnd(rng, shape)})
    return out


CONV_FILLERS = 'weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 }'
CONV_CASES = [
    ("conv_kernel_larger_stride", (1, 2, 3, 3), "num_output: 3 kernel_size: 4 stride: 2"),
    ("conv_kernel_larger_dilation", (1, 2, 5, 5), "num_output: 3 kernel_size: 3 dilation: 3 stride: 3"),
    ("conv_kernel_larger_pad", (1, 2, 3, 3), "num_output: 3 kernel_size: 6 pad: 1 stride: 2"),
    ("conv_kernel_larger_one_axis", (2, 4, 3, 7),
     "num_output: 4 group: 2 kernel_h: 6 kernel_w: 3 pad_h: 1 pad_w: 1 stride_h: 2 stride_w: 2"),
    ("conv_kernel_larger_depthwise", (1, 3, 4, 4), "num_output: 3 group: 3 kernel_size: 5 stride: 3 pad: 0"),
    ("conv_kernel_larger_3d", (1, 2, 3, 4, 5), "num_output: 3 kernel_size: 4 stride: 2"),
]


def refused_cases():
    """Geometries this Caffe does not run: {case: net text}. Each gets net.prototxt and caffe.json
    (whether the net loads, the Check that failed, the top shapes Caffe logged), from the
    `caffe time` tool: a failed Check aborts the process, so they cannot share one pycaffe run."""
    def conv(shape, params):
        body = f'convolution_param {{ {params} weight_filler {{ type: "gaussian" std: 1 }} }}'
        return inp("data", shape) + layer("conv", "Convolution", ["data"], ["conv"], body)
    return {
        # (3 - 5) / 2 + 1 = 0 windows: Reshape fills a bias multiplier of 0 elements.
        "conv_refused_empty_bias": conv((1, 2, 3, 3), "num_output: 2 kernel_size: 5 stride: 2"),
        # The same without a bias: the net loads; the forward writes the empty top.
        "conv_refused_empty_nobias": conv((1, 2, 3, 3), "num_output: 2 kernel_size: 5 stride: 2 bias_term: false"),
        # (3 - 7) / 2 + 1 = -1: Blob::Reshape's CHECK_GE(shape[i], 0).
        "conv_refused_negative": conv((1, 2, 3, 3), "num_output: 2 kernel_size: 7 stride: 2 bias_term: false"),
        # Stride 1: (3 - 4) / 1 + 1 = 0, with a bias.
        "conv_refused_stride1": conv((1, 2, 3, 3), "num_output: 2 kernel_size: 4"),
    }


def run_refused(path):
    """What `caffe time` (one forward and backward) says of the net at `path`."""
    import re
    import subprocess
    env = dict(os.environ, GLOG_minloglevel="0", GLOG_logtostderr="1")
    tool = os.path.join(os.environ.get("CAFFE_ORACLE", ""), "bin", "caffe")
    p = subprocess.run([tool, "time", "-model", path, "-iterations", "1"], env=env, capture_output=True,
                       text=True, timeout=120)
    log = p.stdout + p.stderr
    failed = re.search(r"\] (Check failed: .*?)\s*$", log, re.M)
    where = re.search(r"^F\S+ \S+ +\d+ (\S+?):\d+\]", log, re.M)
    shapes, layer_name = {}, None
    for line in log.splitlines():
        m = re.search(r"Setting up (\S+)", line)
        if m:
            layer_name = m.group(1)
        m = re.search(r"Top shape: ([\d ]+) \(", line)
        if m and layer_name:
            shapes[layer_name] = [int(v) for v in m.group(1).split()]
    return {"loads": "Network initialization done." in log,
            "forward_ran": "Forward pass" in log and p.returncode == 0,
            "exit_status": p.returncode, "check_failed": failed.group(1) if failed else None,
            "in": where.group(1) if where else None, "top_shapes": shapes}


def _text(name, text):
    return f'name: "{name}"\n' + text


def check(out_dir):
    """Every case's prototxt and inputs as this script makes them; returns the differences."""
    made = cases(np.random.default_rng(11))
    problems = []
    stored = {d for d in os.listdir(out_dir) if os.path.isdir(os.path.join(out_dir, d))}
    refused = refused_cases()
    problems += [f"{d}: a case directory this script does not make" for d in sorted(stored - set(made) - set(refused))]
    for name, text in refused.items():
        d = os.path.join(out_dir, name)
        if name not in stored or not os.path.exists(os.path.join(d, "caffe.json")):
            problems.append(f"{name}: missing")
            continue
        with open(os.path.join(d, "net.prototxt")) as f:
            if f.read() != _text(name, text):
                problems.append(f"{name}: net.prototxt differs")
    for name, (text, inputs) in made.items():
        d = os.path.join(out_dir, name)
        if name not in stored:
            problems.append(f"{name}: missing")
            continue
        with open(os.path.join(d, "net.prototxt")) as f:
            if f.read() != _text(name, text):
                problems.append(f"{name}: net.prototxt differs")
        blobs = np.load(os.path.join(d, "blobs.npz"))
        for k, v in inputs.items():
            if k not in blobs.files or blobs[k].shape != v.shape or not np.array_equal(blobs[k], v):
                problems.append(f"{name}: input {k} differs")
    return problems


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checking = "--check" in argv
    argv = [a for a in argv if a != "--check"]
    out_dir = argv[0] if argv else os.path.join(root, "tests", "data", "conformance", "ssd_fork")
    if checking:
        problems = check(out_dir)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("regenerate with the oracle's Python (see this script's docstring)", file=sys.stderr)
        return 1 if problems else 0
    import caffe
    caffe.set_mode_cpu()
    rng = np.random.default_rng(11)
    caffe.set_random_seed(11)
    for name, (text, inputs) in cases(rng).items():
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "net.prototxt")
        with open(path, "w") as f:
            f.write(_text(name, text))
        net = caffe.Net(path, caffe.TEST)
        for k, v in inputs.items():
            net.blobs[k].reshape(*v.shape)
            net.blobs[k].data[...] = v
        net.forward()
        if net.params:
            net.save(os.path.join(d, "weights.caffemodel"))
        np.savez_compressed(os.path.join(d, "blobs.npz"),
                            **{k: b.data.copy() for k, b in net.blobs.items()})
        print(name, {k: b.data.shape for k, b in net.blobs.items()})
    import json
    for name, text in refused_cases().items():
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "net.prototxt")
        with open(path, "w") as f:
            f.write(_text(name, text))
        result = run_refused(path)
        with open(os.path.join(d, "caffe.json"), "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
            f.write("\n")
        print(name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
