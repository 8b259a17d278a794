"""Layer cases the shared conformance set lacks, computed by the real Caffe (the oracle).

    bash ../shared/tools/caffe-oracle/build.sh          # once, about ten minutes
    /opt/caffe-oracle/venv/bin/python tests/data/export/make_cases.py [CASE...]

Each case becomes tests/data/export/<case>/ with net.prototxt, inputs.json (shape and kind of
each input: normal values, 0/1 sequence-continuation flags, or integer indices),
weights.caffemodel (what Caffe's fillers made, absent without parameters) and blobs.npz (every
blob after one TEST-phase forward pass, inputs included). Tests never run this: the files are
committed. The oracle is the SSD-fork build the shared conformance data also used for fork
layers (Permute, Normalize, ReLU6); it has no Clip or Swish.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
U = 'weight_filler { type: "uniform" min: -0.5 max: 0.5 } bias_filler { type: "uniform" min: -0.3 max: 0.3 }'
G = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "uniform" min: -0.5 max: 0.5 }'


def inputs(*specs):
    """(name, shape, kind) -> an Input layer per blob and the inputs.json entries."""
    text = ""
    meta = {}
    for name, shape, kind in specs:
        dims = " ".join(f"dim: {d}" for d in shape)
        text += f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ {dims} }} }} }}\n'
        meta[name] = {"shape": list(shape), "kind": kind}
    return text, meta


def layer(name, kind, bottoms, tops, params=""):
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{kind}" {b} {t} {params} }}\n'


def case_list():
    cases = []

    def add(name, ins, layers):
        head, meta = inputs(*ins)
        cases.append((name, head + "".join(layers), meta))

    seq = [("x", (4, 3, 5), "normal"), ("cont", (4, 3), "cont")]
    add("lstm", seq, [layer("lstm", "LSTM", ["x", "cont"], ["h"], f"recurrent_param {{ num_output: 6 {U} }}")])
    add("lstm_static_expose", [("x", (3, 2, 4), "normal"), ("cont", (3, 2), "cont"), ("xs", (2, 3), "normal"),
                               ("h0", (1, 2, 5), "normal"), ("c0", (1, 2, 5), "normal")],
        [layer("lstm", "LSTM", ["x", "cont", "xs", "h0", "c0"], ["h", "hT", "cT"],
               f"recurrent_param {{ num_output: 5 expose_hidden: true {U} }}")])
    add("rnn", [("x", (5, 2, 3, 2), "normal"), ("cont", (5, 2), "cont")],
        [layer("rnn", "RNN", ["x", "cont"], ["o"], f"recurrent_param {{ num_output: 4 {U} }}")])
    add("rnn_static_expose", [("x", (3, 2, 4), "normal"), ("cont", (3, 2), "cont"), ("xs", (2, 2), "normal"),
                              ("h0", (1, 2, 3), "normal")],
        [layer("rnn", "RNN", ["x", "cont", "xs", "h0"], ["o", "hT"],
               f"recurrent_param {{ num_output: 3 expose_hidden: true {U} }}")])
    add("embed", [("idx", (4, 3), "index:10")],
        [layer("embed", "Embed", ["idx"], ["e"], f"embed_param {{ input_dim: 10 num_output: 5 {U} }}")])
    add("batchnorm_batch_stats", [("data", (3, 4, 2, 3), "normal")],
        [layer("bn", "BatchNorm", ["data"], ["bn"], "batch_norm_param { use_global_stats: false eps: 0.01 }")])
    add("argmax_axis_topk", [("data", (2, 5, 3), "normal")],
        [layer("am", "ArgMax", ["data"], ["am"], "argmax_param { axis: 1 top_k: 2 }"),
         layer("amv", "ArgMax", ["data"], ["amv"], "argmax_param { axis: -1 top_k: 2 out_max_val: true }")])
    add("argmax_maxval_noaxis", [("data", (2, 4, 3, 3), "normal")],
        [layer("am", "ArgMax", ["data"], ["am"], "argmax_param { top_k: 3 out_max_val: true }")])
    add("scale_scalar_bias", [("data", (2, 3, 4), "normal")],
        [layer("s", "Scale", ["data"], ["s"], 'scale_param { axis: 0 num_axes: 0 bias_term: true '
               'filler { type: "uniform" min: 0.5 max: 2 } bias_filler { type: "uniform" min: -1 max: 1 } }')])
    add("bias_two_bottoms", [("data", (2, 3, 4, 5), "normal"), ("data2", (3, 4), "normal")],
        [layer("b", "Bias", ["data", "data2"], ["b"], "bias_param { axis: 1 }")])
    add("crop_three_offsets", [("data", (2, 6, 7, 8), "normal"), ("data2", (2, 3, 4, 2), "normal")],
        [layer("crop", "Crop", ["data", "data2"], ["crop"], "crop_param { axis: 1 offset: 1 offset: 2 offset: 3 }")])
    add("power_exp_log", [("data", (2, 3, 4), "normal")],
        [layer("pow", "Power", ["data"], ["pow"], "power_param { power: 2 scale: 0.5 shift: 1 }"),
         layer("exp", "Exp", ["data"], ["exp"], "exp_param { base: 2 scale: 0.5 shift: -1 }"),
         layer("log", "Log", ["pow"], ["log"], "log_param { base: 10 scale: 2 shift: 0.5 }")])
    add("softmax_reduction_negative_axes", [("data", (2, 3, 4), "normal")],
        [layer("prob", "Softmax", ["data"], ["prob"], "softmax_param { axis: -1 }"),
         layer("red", "Reduction", ["data"], ["red"], "reduction_param { operation: MEAN axis: -1 coeff: 2 }"),
         layer("tile", "Tile", ["data"], ["tile"], "tile_param { axis: -1 tiles: 2 }")])
    add("mvn_across_eps", [("data", (2, 3, 4, 5), "normal")],
        [layer("mvn", "MVN", ["data"], ["mvn"], "mvn_param { across_channels: true eps: 0.001 }")])
    add("deconv_nobias_group", [("data", (1, 4, 5, 4), "normal")],
        [layer("deconv", "Deconvolution", ["data"], ["deconv"],
               'convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 bias_term: false '
               'weight_filler { type: "gaussian" std: 0.3 } }')])
    add("spp_single_level_ave", [("data", (1, 2, 7, 9), "normal")],
        [layer("spp1", "SPP", ["data"], ["spp1"], "spp_param { pyramid_height: 1 pool: MAX }"),
         layer("spp2", "SPP", ["data"], ["spp2"], "spp_param { pyramid_height: 2 pool: AVE }")])
    add("activations_params", [("data", (2, 3, 4), "normal")],
        [layer("elu", "ELU", ["data"], ["elu"], "elu_param { alpha: 0.5 }"),
         layer("relu6", "ReLU6", ["data"], ["relu6"]),
         layer("thr", "Threshold", ["data"], ["thr"], "threshold_param { threshold: 0.5 }"),
         layer("prelu", "PReLU", ["data"], ["prelu"], 'prelu_param { filler { type: "uniform" min: -1 max: 1 } }')])
    add("ip_axis0_transpose", [("data", (3, 2, 4), "normal")],
        [layer("ip", "InnerProduct", ["data"], ["ip"], f"inner_product_param {{ num_output: 5 axis: 0 transpose: true {G} }}")])
    add("pool_stride_over_kernel", [("data", (1, 2, 9, 8), "normal")],
        [layer("max", "Pooling", ["data"], ["max"], "pooling_param { pool: MAX kernel_size: 2 stride: 3 }"),
         layer("ave", "Pooling", ["data"], ["ave"], "pooling_param { pool: AVE kernel_size: 3 stride: 4 pad: 2 }")])
    # Layers of the SSD fork the oracle is built from.
    add("permute", [("data", (2, 3, 4, 5), "normal")],
        [layer("perm", "Permute", ["data"], ["perm"], "permute_param { order: 0 order: 2 order: 3 order: 1 }"),
         layer("perm2", "Permute", ["data"], ["perm2"], "permute_param { order: 0 order: 3 }")])
    add("normalize", [("data", (2, 3, 4, 5), "normal")],
        [layer("norm", "Normalize", ["data"], ["norm"],
               'norm_param { across_spatial: false channel_shared: false scale_filler { type: "uniform" min: 1 max: 20 } }')])
    # channel_shared: the scale blob has no axes (vector<int>(0)), like PReLU's shared slope.
    add("normalize_shared", [("data", (2, 3, 4, 5), "normal")],
        [layer("norm", "Normalize", ["data"], ["norm"],
               'norm_param { across_spatial: true channel_shared: true eps: 0.001 scale_filler { type: "constant" value: 3 } }')])
    # Weights written by `netdef init` (not by Caffe's fillers): Caffe must load the file and
    # the blobs it computes with it are what netdef's export must reproduce.
    add("init_weights_loaded_by_caffe", [("data", (2, 3, 9, 9), "normal")],
        [layer("conv", "Convolution", ["data"], ["conv"],
               'convolution_param { num_output: 4 kernel_size: 3 stride: 2 weight_filler { type: "msra" } '
               'bias_filler { type: "uniform" min: -0.2 max: 0.2 } }'),
         layer("bn", "BatchNorm", ["conv"], ["conv"]),
         layer("scale", "Scale", ["conv"], ["conv"], 'scale_param { bias_term: true filler { type: "uniform" min: 0.5 max: 1.5 } }'),
         layer("relu", "PReLU", ["conv"], ["conv"]),
         layer("up", "Deconvolution", ["conv"], ["up"],
               'convolution_param { num_output: 4 group: 4 kernel_size: 4 stride: 2 pad: 1 bias_term: false '
               'weight_filler { type: "bilinear" } }'),
         layer("fc", "InnerProduct", ["up"], ["fc"],
               'inner_product_param { num_output: 3 weight_filler { type: "xavier" variance_norm: AVERAGE } '
               'bias_filler { type: "constant" value: 0.1 } }')])
    return cases


def make_inputs(meta, rng):
    import numpy as np
    out = {}
    for name, spec in meta.items():
        shape, kind = spec["shape"], spec["kind"]
        if kind == "cont":
            v = (rng.random(shape) > 0.3).astype(np.float32)
            v[0] = 0                                   # every stream starts a sequence
        elif kind.startswith("index:"):
            v = rng.integers(0, int(kind.split(":")[1]), shape).astype(np.float32)
        else:
            v = rng.normal(0, 1, shape).astype(np.float32)
        out[name] = v
    return out


def run_case(d, seed):
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe
    import numpy as np
    caffe.set_mode_cpu()
    caffe.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    meta = json.load(open(os.path.join(d, "inputs.json")))
    given = os.path.join(d, "weights.caffemodel")
    if os.path.basename(d).startswith("init_"):
        net = caffe.Net(os.path.join(d, "net.prototxt"), given, caffe.TEST)
    else:
        net = caffe.Net(os.path.join(d, "net.prototxt"), caffe.TEST)
    for name, v in make_inputs(meta, rng).items():
        net.blobs[name].data[...] = v
    net.forward()
    if net.params and not os.path.basename(d).startswith("init_"):
        net.save(given)
    np.savez(os.path.join(d, "blobs.npz"), **{k: v.data.copy() for k, v in net.blobs.items()})
    print({k: v.data.shape for k, v in net.blobs.items()})


def main(names):
    for i, (name, text, meta) in enumerate(case_list()):
        if names and name not in names:
            continue
        d = os.path.join(HERE, name)
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "net.prototxt"), "w").write(f'name: "{name}"\n' + text)
        json.dump(meta, open(os.path.join(d, "inputs.json"), "w"), indent=1)
        if name.startswith("init_"):
            # netdef itself (the interpreter it is installed for, not the oracle's venv).
            subprocess.run([os.environ.get("NETDEF_PYTHON", "python3"), "-m", "netdef", "init",
                            os.path.join(d, "net.prototxt"), "-o", os.path.join(d, "weights.caffemodel"),
                            "--seed", "7"], check=True, env={k: v for k, v in os.environ.items()
                                                               if not k.startswith("PYTHON")})
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", d, str(1000 + i)],
                           capture_output=True, text=True)
        if p.returncode:
            why = [ln for ln in p.stderr.splitlines() if "Check failed" in ln or "Error" in ln or "error" in ln]
            print("REJECTED", name, (why or p.stderr.splitlines()[-1:] or ["?"])[-1][-200:], flush=True)
        else:
            print("case", name, p.stdout.strip()[-160:], flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--case"]:
        run_case(sys.argv[2], int(sys.argv[3]))
    else:
        main(sys.argv[1:])
