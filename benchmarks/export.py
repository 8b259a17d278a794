"""Export cost for ResNet-152 with weights and for VGG-16 with filler weights, and
onnxruntime latency of netdef's ResNet-50 against a reference converter's model of the same files.

    python3 benchmarks/export.py [--runs N] [--fill-runs N] [--reference-dir DIR] [--keep DIR]

1. `netdef init` writes ResNet-152 weights from the bundled library definition (the same layer
   names as tests/data/zoo/resnet152/deploy.prototxt, which is what gets exported, but with
   fillers: the zoo's deploy files have none, so their weights would all be 0). BatchNorm
   statistics come out neutral (mean 0, variance 1, factor 1; Caffe would zero-fill them and
   the net would overflow), so both converters see a well-defined net.
2. A fresh process exports it (`netdef.export.onnx.export(...).write`), reporting wall time,
   its resident memory after imports and its peak (VmHWM), against the weights' size.
   Then `netdef export vgg16 -o OUT` without weights (138M filler values, 553 MB written),
   --fill-runs times in fresh processes: wall time of the whole command and peak memory.
3. ResNet-50 (the zoo's deploy definition, weights made the same way) is exported by netdef and
   by caffe2onnx 2.0.1 from PyPI (installed with `pip install --target`, run with the
   pure-Python protobuf because its generated code predates protobuf 4); both models run in
   onnxruntime on the CPU with the same session options, inputs and thread settings, after a
   check that they compute the same outputs. Latency: p50 and mean over --runs runs after 5
   warm-up runs, batch 1, alternating the two models run by run to share any machine noise.
   With a usable CUDA provider the same is done on CUDA.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "tests" / "data" / "zoo"
sys.path.insert(0, str(ROOT))


def init_weights(name: str, out: str) -> float:
    """`netdef init` on the bundled library net `name` (same layer names as the zoo's deploy
    file, but with fillers: the deploy files have none, which would make every weight 0)."""
    from netdef.cli import main
    if main(["init", name, "-o", out, "--seed", "0", "--input", "data=1,3,224,224", "--input", "label=1"]) != 0:
        raise SystemExit(f"netdef init failed for {name}")
    return os.path.getsize(out)


_CHILD = r"""
import json, os, sys, time
def rss(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
import numpy, onnx
from netdef.export.onnx import export
import netdef.pipeline
base = rss('VmRSS:')
t = time.perf_counter()
ex = export(sys.argv[1], sys.argv[2])
n = ex.write(sys.argv[3])
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "rss_after_imports": base, "peak": rss('VmHWM:'), "bytes": n}))
"""


_CHILD_CLI = r"""
import sys
from netdef.cli import main
code = main(sys.argv[1:])
peak = next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:'))
print(peak, file=sys.stderr)
sys.exit(code)
"""


def measure_cli(argv: list[str]) -> dict:
    """One netdef command in a fresh process: wall time (interpreter start included), peak RSS."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _CHILD_CLI, *argv], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    dt = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(r.stderr)
    return {"seconds": dt, "peak": int(r.stderr.strip().splitlines()[-1])}


def measure_export(prototxt: str, weights: str, out: str) -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, prototxt, weights, out], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def caffe2onnx_export(prototxt: str, weights: str, out: str, target: str) -> str | None:
    """caffe2onnx's model of the same files, or None (with the reason printed) if unavailable."""
    if not (Path(target) / "caffe2onnx").is_dir():
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target,
                            "caffe2onnx==2.0.1"], capture_output=True, text=True)
        if r.returncode:
            print(f"caffe2onnx unavailable: {r.stderr.strip().splitlines()[-1:]}")
            return None
    code = ("import sys\n"
            "from caffe2onnx.src.load_save_model import loadcaffemodel, saveonnxmodel\n"
            "from caffe2onnx.src.caffe2onnx import Caffe2Onnx\n"
            "g, p = loadcaffemodel(sys.argv[1], sys.argv[2])\n"
            "saveonnxmodel(Caffe2Onnx(g, p, sys.argv[3]).createOnnxModel(), sys.argv[3])\n")
    env = {**os.environ, "PYTHONPATH": target, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, prototxt, weights, out], capture_output=True, text=True, env=env)
    if r.returncode or not os.path.exists(out):
        print(f"caffe2onnx failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        return None
    print(f"caffe2onnx export: {time.perf_counter() - t:.1f} s (pure-Python protobuf)")
    # caffe2onnx stamps the installed onnx's newest opset and IR (28 and 14 with onnx 1.23),
    # which onnxruntime 1.31 refuses. Its nodes (Conv, BatchNormalization, Relu, Add, Pad,
    # MaxPool, AveragePool, Reshape, Gemm, Softmax on a 2-D input) mean the same at opset 21,
    # so the benchmark re-stamps opset 21 / IR 10 and leaves the graph as caffe2onnx made it.
    import onnx
    model = onnx.load(out)
    made = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"Conv", "BatchNormalization", "Relu", "Add", "Pad", "MaxPool", "AveragePool", "Reshape",
                   "Gemm", "Softmax", "Mul", "Flatten"}, ops
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = min(o.version, 21)
    opset = 21
    model.ir_version = 10
    onnx.save(model, out)
    print(f"caffe2onnx model: made at opset {made}, run at opset {opset} / IR {model.ir_version}")
    return out


def _run_with_output(path: str, feed: dict, name: str, providers) -> np.ndarray:
    import onnx
    import onnxruntime as ort

    from netdef.export.runtime import _options
    model = onnx.load(path)
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), _options(ort), providers=providers)
    return sess.run([name], feed)[0]


def latency(models: dict[str, str], provider: str, runs: int, batch: int = 1, check_output: str = "pool5") -> dict:
    import onnxruntime as ort

    from netdef.export.runtime import PROVIDERS, _options
    sessions = {}
    for name, path in models.items():
        providers = [PROVIDERS[provider]] + ([PROVIDERS["cpu"]] if provider != "cpu" else [])
        sessions[name] = ort.InferenceSession(path, _options(ort), providers=providers)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    feeds = {n: {s.get_inputs()[0].name: x} for n, s in sessions.items()}
    # Agreement on the pooled features: the zoo definition gives fc1000 no filler (zeros), so
    # its logits and probabilities are constant and would hide any difference.
    outs = {n: _run_with_output(path, feeds[n], check_output, providers) for n, path in models.items()}
    ref = next(iter(outs.values()))
    agree = {n: float(np.max(np.abs(o.reshape(ref.shape) - ref)) / max(1.0, float(np.max(np.abs(ref)))))
             for n, o in outs.items()}
    for _ in range(5):
        for n, s in sessions.items():
            s.run(None, feeds[n])
    times = {n: [] for n in sessions}
    for _ in range(runs):
        for n, s in sessions.items():
            t = time.perf_counter()
            s.run(None, feeds[n])
            times[n].append(time.perf_counter() - t)
    return {n: {"p50_ms": float(np.percentile(t, 50)) * 1e3, "mean_ms": float(np.mean(t)) * 1e3,
                "nodes": len(__import__("onnx").load(models[n], load_external_data=False).graph.node),
                "max_rel_diff_vs_first": agree[n]} for n, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--fill-runs", type=int, default=5, help="fresh-process runs of 'netdef export vgg16'")
    ap.add_argument("--reference-dir", default=os.path.join(tempfile.gettempdir(), "netdef-bench-caffe2onnx"))
    ap.add_argument("--keep", default=None, help="keep the models and weights in this directory")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="netdef-bench-")
    os.makedirs(work, exist_ok=True)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")

    r152 = str(ZOO / "resnet152/deploy.prototxt")
    w152 = os.path.join(work, "resnet152.caffemodel")
    size = init_weights("resnet152", w152)
    m = measure_export(r152, w152, os.path.join(work, "resnet152.onnx"))
    extra = m["peak"] - m["rss_after_imports"]
    print(f"ResNet-152 export: {m['seconds']:.2f} s; weights {size / 2**20:.0f} MiB; "
          f"RSS after imports {m['rss_after_imports'] / 2**20:.0f} MiB, peak {m['peak'] / 2**20:.0f} MiB "
          f"(+{extra / 2**20:.0f} MiB = {extra / size:.2f}x the weights; peak/weights {m['peak'] / size:.2f}x)")

    vgg = os.path.join(work, "vgg16.onnx")
    fills = [measure_cli(["export", "vgg16", "-o", vgg]) for _ in range(args.fill_runs)]
    secs = sorted(f["seconds"] for f in fills)
    print(f"VGG-16 export with fillers ({args.fill_runs} runs): median {np.median(secs):.2f} s, min {secs[0]:.2f} s; "
          f"peak RSS {max(f['peak'] for f in fills) / 2**20:.0f} MiB; file {os.path.getsize(vgg) / 2**20:.0f} MiB")
    os.unlink(vgg)

    r50 = str(ZOO / "resnet50/deploy.prototxt")
    w50 = os.path.join(work, "resnet50.caffemodel")
    init_weights("resnet50", w50)
    from netdef.export.onnx import export
    t = time.perf_counter()
    export(r50, w50).write(os.path.join(work, "resnet50_netdef.onnx"))
    print(f"netdef export ResNet-50: {time.perf_counter() - t:.2f} s")
    models = {"netdef": os.path.join(work, "resnet50_netdef.onnx")}
    ref = caffe2onnx_export(r50, w50, os.path.join(work, "resnet50_caffe2onnx.onnx"), args.reference_dir)
    if ref:
        models["caffe2onnx"] = ref
    from netdef.export.runtime import cuda_status
    providers = ["cpu"] + (["cuda"] if cuda_status()[0] else [])
    if len(providers) == 1:
        print(f"CUDA: not measured ({cuda_status()[1]})")
    for provider in providers:
        res = latency(models, provider, args.runs)
        for name, r in res.items():
            print(f"ResNet-50 {provider} batch 1 {name:<10} p50 {r['p50_ms']:8.2f} ms  mean {r['mean_ms']:8.2f} ms  "
                  f"{r['nodes']} nodes  max rel diff vs netdef {r['max_rel_diff_vs_first']:.2g}")
    print(json.dumps({"resnet152_export": m, "weights_bytes": size}, indent=None))


if __name__ == "__main__":
    main()
