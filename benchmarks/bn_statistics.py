"""SegNet's BN (LEARN mode) batch statistics in onnxruntime: one ReduceMean over N, H, W (the
export before) against a ReduceMean over W then over N and H (netdef/layers/norm.py _plane_mean),
on SegNet's first BN input shape (1, 64, 360, 480), ReLU-like data. Prints the relative error of
the mean and of E[x^2] against float64, and the time of both graphs, alternating runs.

    python3 benchmarks/bn_statistics.py [--runs 9]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

SHAPE = [1, 64, 360, 480]


def session(two_step: bool):
    nodes = [helper.make_node("Mul", ["x", "x"], ["sq"])]
    inits = [helper.make_tensor("nhw", TensorProto.INT64, [3], [0, 2, 3]),
             helper.make_tensor("w", TensorProto.INT64, [1], [3]),
             helper.make_tensor("nh", TensorProto.INT64, [2], [0, 2])]
    for src, dst in (("x", "mean"), ("sq", "mean_sq")):
        if two_step:
            nodes += [helper.make_node("ReduceMean", [src, "w"], [dst + "_rows"], keepdims=1),
                      helper.make_node("ReduceMean", [dst + "_rows", "nh"], [dst], keepdims=1)]
        else:
            nodes.append(helper.make_node("ReduceMean", [src, "nhw"], [dst], keepdims=1))
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(nodes, "stats", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("mean", "mean_sq")],
                              [t for t in inits if t.name in used])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    x = (np.maximum(np.random.default_rng(0).standard_normal(SHAPE), 0) * 2 + 0.3).astype(np.float32)
    x64 = x.astype(np.float64)
    exact = [x64.mean(axis=(0, 2, 3), keepdims=True), (x64 * x64).mean(axis=(0, 2, 3), keepdims=True)]
    sessions = {"one ReduceMean (before)": session(False), "W, then N and H (now)": session(True)}
    times = {k: [] for k in sessions}
    for _ in range(args.runs):                      # alternating, so that load hits both alike
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, {"x": x})
            times[k].append(time.perf_counter() - t)
    print(f"onnxruntime {ort.__version__}, input {SHAPE}, {args.runs} alternating runs")
    for k, s in sessions.items():
        got = s.run(None, {"x": x})
        errs = [float(np.abs(g - e).max() / np.abs(e).max()) for g, e in zip(got, exact)]
        print(f"{k:<26} mean error {errs[0]:.2e}  E[x^2] error {errs[1]:.2e}  "
              f"median {1000 * statistics.median(times[k]):.1f} ms")
    before, now = (statistics.median(v) for v in times.values())
    print(f"time ratio now / before: {now / before:.2f}")


if __name__ == "__main__":
    main()
