"""Analysis time (build + verify + shapes + receptive field + cost) after parsing.

    python3 benchmarks/analysis.py [--repeat N] [--sizes 1000,10000,50000]

Prints the best-of-N time of netdef.compile on an already parsed definition for
Inception-ResNet-v2 (about 1000 layers, the largest real definition in tests/data/zoo) and for
synthetic residual nets of 1k, 10k and 50k layers, with the time per layer and the ratio to the
smallest synthetic net: linear cost shows as a time ratio close to the layer ratio.
"""
from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import netdef
from netdef.parse import NET, parse_text
from netdef.source import Source

ZOO = Path(__file__).resolve().parent.parent / "tests" / "data" / "zoo"


def synthetic(n_layers: int) -> str:
    """A ResNet-like chain: blocks of Convolution, BatchNorm, Scale, ReLU (in place) and an
    Eltwise shortcut every second block, at a fixed 32x32 resolution, until n_layers layers."""
    out = ['name: "synthetic"',
           'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 16 dim: 32 dim: 32 } } }']
    count, prev, shortcut, i = 1, "data", "data", 0
    while count < n_layers:
        c = f"conv{i}"
        out.append(f'layer {{ name: "{c}" type: "Convolution" bottom: "{prev}" top: "{c}" '
                   f'convolution_param {{ num_output: 16 kernel_size: 3 pad: 1 bias_term: false }} }}')
        out.append(f'layer {{ name: "bn{i}" type: "BatchNorm" bottom: "{c}" top: "{c}" }}')
        out.append(f'layer {{ name: "sc{i}" type: "Scale" bottom: "{c}" top: "{c}" scale_param {{ bias_term: true }} }}')
        count += 3
        if i % 2:
            out.append(f'layer {{ name: "add{i}" type: "Eltwise" bottom: "{shortcut}" bottom: "{c}" top: "add{i}" }}')
            out.append(f'layer {{ name: "relu{i}" type: "ReLU" bottom: "add{i}" top: "add{i}" }}')
            prev = shortcut = f"add{i}"
            count += 2
        else:
            out.append(f'layer {{ name: "relu{i}" type: "ReLU" bottom: "{c}" top: "{c}" }}')
            prev = c
            count += 1
        i += 1
    return "\n".join(out) + "\n"


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="1000,10000,50000")
    args = ap.parse_args()

    irv2 = ZOO / "inception_resnet_v2" / "deploy.prototxt"
    if irv2.exists():
        parsed = netdef.load(str(irv2))
        g = netdef.compile(parsed)
        t = best_of(lambda: netdef.compile(parsed), args.repeat)
        print(f"inception_resnet_v2: {len(g.nodes)} layers, analysis {t * 1e3:.1f} ms after parsing "
              f"({t / len(g.nodes) * 1e6:.1f} us/layer)")

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        text = synthetic(n)
        parsed = parse_text(Source(text, f"synthetic-{n}.prototxt"), NET, limit=10)
        g = netdef.compile(parsed)
        assert not g.diagnostics.has_errors, [d.header() for d in g.diagnostics][:3]
        t = best_of(lambda: netdef.compile(parsed), args.repeat)
        rows.append((len(g.nodes), t))
    base_n, base_t = rows[0]
    print(f"{'layers':>8}  {'analysis':>10}  {'us/layer':>9}  {'layer ratio':>11}  {'time ratio':>10}")
    for n, t in rows:
        print(f"{n:>8}  {t * 1e3:>8.1f}ms  {t / n * 1e6:>9.1f}  {n / base_n:>11.1f}  {t / base_t:>10.1f}")


if __name__ == "__main__":
    main()
