"""onnxruntime sessions: choosing a provider that really works, feeding inputs, timing runs.

    sess = Session(model_bytes, provider="auto")     # CUDA only if a session runs on it
    outs = sess.run({"data": x})                      # name -> array, in the model's order
    stats = bench(sess, {"data": x}, runs=50)         # latency percentiles and throughput

(the `netdef run` and `netdef bench` commands: netdef/cli/run.py)

onnxruntime-gpu lists the CUDA provider whenever it was built with it, even where the CUDA
libraries or the GPU are missing; creating a session then prints a red error and quietly falls
back to the CPU. So "auto" probes: it builds a one-node session on CUDA with the native log
silenced, runs it, and keeps CUDA only if the session really ran there.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

import numpy as np

from .. import codes
from ..diagnostics import CliError, UsageError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
              "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}
_cuda_probe: tuple[bool, str] | None = None


def _ort():
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a dependency
        raise CliError(f"onnxruntime is not installed ({e})") from None
    ort.set_default_logger_severity(3)
    return ort


@contextlib.contextmanager
def _quiet_native_stderr():
    """Capture what native code writes to file descriptor 2 (onnxruntime's provider loader
    logs there directly, below Python's sys.stderr). Yields a function returning the text."""
    captured = {"text": ""}
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield lambda: captured["text"]
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lambda: captured["text"]
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured["text"] = tmp.read().decode("utf-8", "replace")


def _options(ort, threads: int | None = None):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return so


def _probe_model() -> bytes:
    from . import onnx_proto as helper
    from .onnx_proto import TensorProto
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m.SerializeToString()


def cuda_status() -> tuple[bool, str]:
    """(usable, why not): whether a session really runs on the CUDA provider here."""
    global _cuda_probe
    if _cuda_probe is not None:
        return _cuda_probe
    ort = _ort()
    if PROVIDERS["cuda"] not in ort.get_available_providers():
        _cuda_probe = (False, "this onnxruntime build has no CUDA provider")
        return _cuda_probe
    why = ""
    ok = False
    with _quiet_native_stderr() as log:
        try:
            s = ort.InferenceSession(_probe_model(), _options(ort), providers=[PROVIDERS["cuda"], PROVIDERS["cpu"]])
            if s.get_providers()[0] == PROVIDERS["cuda"]:
                s.run(None, {"x": np.ones((1, 4), np.float32)})
                ok = True
        except Exception as e:  # noqa: BLE001 - any failure means "not usable"
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if not ok and not why:
        text = log().strip()
        lines = [ln for ln in text.splitlines() if "error" in ln.lower() or "fail" in ln.lower()]
        why = _strip_ansi(lines[-1] if lines else text.splitlines()[-1] if text else "the session fell back to the CPU")
        if "with error:" in why:
            why = why.split("with error:", 1)[1].strip()
    _cuda_probe = (ok, why)
    return _cuda_probe


def _strip_ansi(s: str) -> str:
    import re
    return re.sub(r"\x1b\[[0-9;]*m", "", s).strip()


class Session:
    """An onnxruntime session on the provider asked for: cpu, cuda (fails if unusable), auto."""

    def __init__(self, model, provider: str = "auto", threads: int | None = None):
        ort = _ort()
        if threads is not None and threads < 1:
            raise UsageError(f"--threads must be at least 1, got {threads}")
        if provider not in ("cpu", "cuda", "auto"):
            raise UsageError(f"unknown provider '{provider}' (allowed: cpu, cuda, auto)")
        self.note = ""
        self.cpu_fallback = ""
        use_cuda = False
        if provider in ("cuda", "auto"):
            ok, why = cuda_status()
            if ok:
                use_cuda = True
            elif provider == "cuda":
                raise CliError(f"the CUDA provider is not usable here: {why}")
            else:
                # 'auto' on a machine without a usable GPU is the ordinary case, not a problem to
                # report: the reason is kept (cuda_status()) but nothing is printed.
                self.cpu_fallback = why
        providers = [PROVIDERS["cuda"], PROVIDERS["cpu"]] if use_cuda else [PROVIDERS["cpu"]]
        if isinstance(model, (str, os.PathLike)):
            try:
                with open(model, "rb") as f:
                    model = f.read()
            except OSError as e:
                raise CliError(f"cannot read {os.fspath(model)}: {e.strerror or e}") from None
        with _quiet_native_stderr():
            try:
                self.sess = ort.InferenceSession(model, _options(ort, threads), providers=providers)
            except Exception as e:  # noqa: BLE001 - onnxruntime raises several types
                raise CliError(f"onnxruntime cannot load the model: {_first_line(e)}") from None
        self.provider = "cuda" if self.sess.get_providers()[0] == PROVIDERS["cuda"] else "cpu"
        self.inputs = self.sess.get_inputs()
        self.outputs = self.sess.get_outputs()

    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    def run(self, feed: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        names = outputs or [o.name for o in self.outputs]
        try:
            values = self.sess.run(names, feed)
        except Exception as e:  # noqa: BLE001
            raise CliError(f"onnxruntime failed to run the model: {_first_line(e)}") from None
        return dict(zip(names, values))


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _dims(arg, batch: int | None) -> list[int]:
    out = []
    for i, d in enumerate(arg.shape):
        if isinstance(d, int) and d > 0:
            out.append(d)
        elif i == 0:
            out.append(batch or 1)
        else:
            raise CliError(f"input '{arg.name}' has a symbolic dimension {i} ({d}); give it with --input-file")
    return out


def random_inputs(sess: Session, seed: int = 0, batch: int | None = None) -> dict[str, np.ndarray]:
    """Standard-normal data for every input (integers 0..9 for integer inputs), seeded."""
    rng = np.random.default_rng(seed)
    feed = {}
    for arg in sess.inputs:
        dt = _ORT_TYPES.get(arg.type, np.float32)
        shape = _dims(arg, batch)
        if np.issubdtype(dt, np.integer):
            feed[arg.name] = rng.integers(0, 10, shape).astype(dt)
        else:
            feed[arg.name] = rng.standard_normal(shape).astype(dt)
    return feed


def read_input_files(specs: list[str]) -> dict[str, np.ndarray]:
    """`NAME=FILE.npy` pairs -> arrays (np.load without pickles: a file never runs code)."""
    feed = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--input-file expects NAME=FILE.npy, got '{spec}'")
        try:
            # Mapped first: a header that declares more data than the file holds is refused
            # ("mmap length is greater than file size") instead of allocated (a 200-byte
            # file can declare petabytes); the copy is then the size of the file's own data.
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
            if isinstance(arr, np.memmap):
                arr = np.array(arr)
        except (OSError, ValueError, EOFError) as e:
            raise CliError(f"cannot read {path}: {e}") from None
        if not isinstance(arr, np.ndarray):
            raise CliError(f"{path} holds several arrays (.npz); give a single-array .npy file")
        feed[name] = arr
    return feed


def load_input_files(specs, sess: Session) -> dict[str, np.ndarray]:
    """`NAME=FILE.npy` pairs (or the arrays read_input_files made of them), checked against the
    model's inputs (name, rank, fixed dims)."""
    by_name = {a.name: a for a in sess.inputs}
    feed = {}
    arrays = specs if isinstance(specs, dict) else read_input_files(specs)
    for name, arr in arrays.items():
        if name not in by_name:
            raise CliError(f"the model has no input '{name}' (its inputs: {', '.join(by_name)})")
        arg = by_name[name]
        want = arg.shape
        if len(want) != arr.ndim or any(isinstance(w, int) and w > 0 and w != a for w, a in zip(want, arr.shape)):
            shown = "(" + ", ".join(str(w) if isinstance(w, int) and w > 0 else "?" for w in want) + ")"
            raise CliError(f"the array for '{name}' has shape {tuple(arr.shape)}, but the input needs {shown}")
        feed[name] = arr.astype(_ORT_TYPES.get(arg.type, np.float32), copy=False)
    return feed


def complete_feed(sess: Session, given: dict[str, np.ndarray], seed: int, batch: int | None = None):
    missing = [a for a in sess.inputs if a.name not in given]
    if not missing:
        return dict(given), []
    rand = random_inputs(sess, seed, batch or next((v.shape[0] for v in given.values() if v.ndim), None))
    feed = dict(given)
    for a in missing:
        feed[a.name] = rand[a.name]
    return feed, [a.name for a in missing]


def classifier_scores(arr: np.ndarray) -> np.ndarray | None:
    """(N, K) scores when an output looks like a classifier's (N, K) or (N, K, 1, 1), K > 1."""
    if arr.ndim < 2 or not np.issubdtype(arr.dtype, np.floating):
        return None
    if any(d != 1 for d in arr.shape[2:]) or arr.shape[1] < 2:
        return None
    return arr.reshape(arr.shape[0], arr.shape[1])


def nonfinite_outputs(outs: dict[str, np.ndarray], where, notes=()) -> dict:
    """Output name -> a W517 warning, for every float output holding NaN or Inf;
    `where(name)` is the output's Span."""
    found = {}
    for name, arr in outs.items():
        if not np.issubdtype(np.asarray(arr).dtype, np.floating):
            continue
        nan = int(np.count_nonzero(np.isnan(arr)))
        inf = int(np.count_nonzero(np.isinf(arr)))
        if not nan and not inf:
            continue
        detail = " and ".join(part for n, part in ((nan, f"{nan:,} NaN"), (inf, f"{inf:,} Inf")) if n)
        found[name] = codes.OUTPUT_NOT_FINITE.at(where(name), output=name, detail=detail, total=f"{arr.size:,}",
                                                 notes=list(notes))
    return found



def timed_runs(sess: Session, feed: dict[str, np.ndarray], runs: int, duration: float | None = None,
               label: str = "") -> list[float]:
    """Up to `runs` timed runs (seconds each), stopping early once `duration` seconds have
    passed (always at least one run); a progress line on a terminal when `label` is given."""
    from ..progress import Progress
    names = [o.name for o in sess.outputs]
    times: list[float] = []
    start = time.perf_counter()
    with Progress(label, total=runs) if label else contextlib.nullcontext() as p:
        for _ in range(runs):
            if duration is not None and times and time.perf_counter() - start >= duration:
                break
            t0 = time.perf_counter()
            sess.sess.run(names, feed)
            times.append(time.perf_counter() - t0)
            if p is not None:
                p.update()
    return times


def bench(sess: Session, feed: dict[str, np.ndarray], runs: int = 50, warmup: int = 5,
          duration: float | None = None) -> dict:
    """Latency statistics (seconds) over up to `runs` timed runs after up to `warmup` untimed
    ones; each phase stops early after `duration` seconds (at least one timed run)."""
    if runs < 1 or warmup < 0:
        raise UsageError("--runs must be at least 1 and --warmup at least 0")
    if duration is not None and not 0 < duration < float("inf"):
        raise UsageError(f"--duration must be a positive number of seconds, got {duration}")
    warm = timed_runs(sess, feed, warmup, duration, "bench: warm-up") if warmup else []
    t = np.asarray(timed_runs(sess, feed, runs, duration, "bench"))
    batch = next((v.shape[0] for v in feed.values() if v.ndim), 1)
    return {"runs": int(len(t)), "requested_runs": runs, "stopped_by_duration": bool(len(t) < runs),
            "warmup_runs": len(warm), "warmup_times": [float(w) for w in warm],
            "batch": int(batch), "mean": float(t.mean()), "min": float(t.min()),
            "p50": float(np.percentile(t, 50)), "p90": float(np.percentile(t, 90)),
            "p99": float(np.percentile(t, 99)), "max": float(t.max()),
            "throughput": float(batch / t.mean())}
