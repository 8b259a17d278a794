"""`netdef run` and `netdef bench`: a model (an .onnx file, or a definition exported first) in
onnxruntime, on random inputs or given arrays; the outputs with top-k classes, or latency
percentiles and throughput.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..diagnostics import CliError, UsageError, byte_span
from ..export.runtime import (Session, bench, classifier_scores, complete_feed, load_input_files,
                              nonfinite_outputs, random_inputs, read_input_files, timed_runs)
from .export import export_from_args
from .output import emit_json, print_diagnostics
from .select import reporting

def model_from_args(args, batch=None, arrays=None):
    """(ONNX bytes, label, where): the model to run, and where(output name) -> the Span that
    defines that output (the layer producing it; the file itself for an .onnx model).
    Definitions are exported with the same options, at the batch of the input `arrays`
    given (see export.prepare.batch_of_arrays) unless `batch` is."""
    path = args.file
    if path.endswith(".onnx"):
        if getattr(args, "weights", None):
            raise UsageError("--weights applies to network definitions; an .onnx model carries its weights")
        try:
            with open(path, "rb") as f:
                return f.read(), path, lambda name: byte_span(path)
        except OSError as e:
            raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    # The deploy view: losses and Accuracy are left out before the analysis, so that a batch
    # or an input size of one's own does not fail in a layer that the model does not run.
    exported = export_from_args(args, batch=batch, deploy=True,
                                batch_from={n: a.shape for n, a in (arrays or {}).items()})
    graph = exported.exporter.graph

    def where(name):
        v = graph.blob(name) if name in graph.blob_names else None
        return v.producer.span if v is not None and v.producer is not None else None
    return exported.to_bytes(), path, where


RUN_WARM_RUNS = 10


@reporting
def cmd_run(args) -> int:
    arrays = read_input_files(args.input_files)
    labels = read_labels(args.labels) if args.labels else None
    # A definition is exported at the arrays' batch: one 1x1x28x28 image runs through lenet as is.
    model, label, where = model_from_args(args, arrays=arrays)
    sess = Session(model, args.provider)
    feed = load_input_files(arrays, sess)
    feed, randomised = complete_feed(sess, feed, args.seed)
    t0 = time.perf_counter()
    outs = sess.run(feed)                             # the cold run: first runs allocate
    cold = time.perf_counter() - t0
    # Latency from warm runs: up to RUN_WARM_RUNS of them, within about a second.
    warm = timed_runs(sess, feed, RUN_WARM_RUNS, duration=1.0, label="run")
    if args.format == "json":
        return _run_json(args, sess, label, feed, randomised, outs, where, float(np.median(warm)), cold, labels)
    out = sys.stdout
    out.write(f"model: {label}\nprovider: {sess.provider}" + (f" ({sess.note})" if sess.note else "") + "\n")
    for name, arr in feed.items():
        tag = " (random)" if name in randomised else ""
        out.write(f"input  {name}: {_shape(arr)} {arr.dtype}{tag}\n")
    bad = nonfinite_outputs(outs, where)
    for name, arr in outs.items():
        out.write(f"output {name}: {_shape(arr)} {arr.dtype}\n")
        scores = classifier_scores(arr)
        if scores is not None and args.top > 0 and name in bad:
            bad[name].notes.append("its top-k scores are not shown")
        elif scores is not None and args.top > 0:
            k = min(args.top, scores.shape[1])
            if labels is not None and len(labels) != scores.shape[1]:
                raise CliError(f"{args.labels} has {len(labels)} class name(s), but output '{name}' scores "
                               f"{scores.shape[1]} classes")
            for i, row in enumerate(scores[:4]):
                order = np.argsort(-row.astype(np.float64), kind="stable")[:k]
                pairs = ", ".join(f"{int(j)}{f' {labels[j]}' if labels is not None else ''}: {float(row[j]):.4g}"
                                  for j in order)
                out.write(f"  top-{k} [{i}]: {pairs}\n")
            if scores.shape[0] > 4:
                out.write(f"  ... ({scores.shape[0] - 4} more)\n")
    out.write(f"latency: {float(np.median(warm)) * 1e3:.3f} ms (median of {len(warm)} warm run(s); "
              f"the first, cold run: {cold * 1e3:.3f} ms)\n")
    out.flush()
    print_diagnostics(bad.values())
    return 0


def read_labels(path: str) -> list[str]:
    """--labels FILE: one class name per line (line k names class k); blank lines at the end
    are ignored. Names are shown as text: control characters are escaped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read the labels file {path}: {getattr(e, 'strerror', None) or e}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise CliError(f"the labels file {path} has no class names")
    return ["".join(c if c.isprintable() else repr(c)[1:-1] for c in line.strip()) for line in lines]


def _run_json(args, sess, label, feed, randomised, outs, where, dt, cold=None, labels=None) -> int:
    bad = nonfinite_outputs(outs, where)
    print_diagnostics(bad.values())
    outputs = []
    for name, arr in outs.items():
        rec = {"name": name, "shape": [int(d) for d in arr.shape], "dtype": str(arr.dtype), "top": None}
        scores = classifier_scores(arr)
        if scores is not None and args.top > 0 and name not in bad:
            k = min(args.top, scores.shape[1])
            if labels is not None and len(labels) != scores.shape[1]:
                raise CliError(f"{args.labels} has {len(labels)} class name(s), but output '{name}' scores "
                               f"{scores.shape[1]} classes")
            rec["top"] = [[{"index": int(j), "score": float(row[j]),
                            **({"label": labels[j]} if labels is not None else {})}
                           for j in np.argsort(-row.astype(np.float64), kind="stable")[:k]] for row in scores]
        outputs.append(rec)
    emit_json(args, {"ok": True, "model": label, "provider": sess.provider, "provider_note": sess.note or None,
                     "inputs": [{"name": n, "shape": [int(d) for d in a.shape], "dtype": str(a.dtype),
                                 "random": n in randomised} for n, a in feed.items()],
                     "outputs": outputs, "latency_s": dt, "cold_run_s": cold})
    return 0


def _shape(arr) -> str:
    return "(" + ", ".join(str(d) for d in arr.shape) + ")"


@reporting
def cmd_bench(args) -> int:
    model, label, where = model_from_args(args, batch=args.batch)
    sess = Session(model, args.provider, args.threads)
    if args.batch is not None:                        # at least 1: cli.parser.batch_size
        for a in sess.inputs:
            d = a.shape[0] if a.shape else None
            if isinstance(d, int) and d > 0 and d != args.batch:
                raise CliError(f"input '{a.name}' has a fixed batch of {d}; export with --batch dynamic "
                               f"(or --batch {args.batch}) to bench batch {args.batch}")
    feed = random_inputs(sess, args.seed, args.batch)
    # One untimed run whose outputs are looked at: timing a model that computes NaN is
    # rarely what was meant.
    t0 = time.perf_counter()
    bad = nonfinite_outputs(sess.run(feed), where)
    cold = time.perf_counter() - t0
    r = bench(sess, feed, args.runs, args.warmup, args.duration)
    if args.format == "json":
        print_diagnostics(bad.values())
        emit_json(args, {"ok": True, "model": label, "provider": sess.provider, "provider_note": sess.note or None,
                         "warmup": r["warmup_runs"], "cold_run_s": cold, **r,
                         "units": "seconds; throughput in samples per second"})
        return 0
    out = sys.stdout
    out.write(f"model: {label}\nprovider: {sess.provider}" + (f" ({sess.note})" if sess.note else "")
              + (f", {args.threads} thread(s)" if args.threads else "") + "\n")
    w = r["warmup_times"]
    out.write(f"warm-up (not in the statistics): first run {cold * 1e3:.3f} ms" + (
        f", {len(w)} more: mean {np.mean(w) * 1e3:.3f} ms, last {w[-1] * 1e3:.3f} ms" if w else "") +
        (f"; stopped at --duration {args.duration:g} s" if len(w) < args.warmup else "") + "\n")
    stopped = f" (--duration {args.duration:g} s reached; {args.runs} asked)" if r["stopped_by_duration"] else ""
    out.write(f"batch {r['batch']}, {r['runs']} runs after {len(w)} warm-up{stopped}\n")
    out.write("latency ms: " + "  ".join(f"{k} {r[k] * 1e3:.3f}" for k in ("mean", "min", "p50", "p90", "p99", "max")) + "\n")
    out.write(f"throughput: {r['throughput']:.1f} samples/s\n")
    out.flush()
    print_diagnostics(bad.values())
    return 0
