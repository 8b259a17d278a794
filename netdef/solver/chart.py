"""The learning-rate schedule as a matplotlib figure, and `netdef lr --plot`'s file."""
from __future__ import annotations

import io
import math
import os

import numpy as np

from ..diagnostics import CliError
from ..outputs import check_writable, write_atomic
from .kinds import type_name
from .policies import Schedule, fmt_rate, fmt_value


def _plot_points(schedule: Schedule, start: int, last: int, changes) -> tuple[np.ndarray, np.ndarray]:
    """Up to 2,000 evenly spaced iterations, plus both sides of every change point shown, so
    that a step is drawn where it happens."""
    n = min(last - start + 1, 2000)
    iters = set(np.unique(np.round(np.linspace(start, last, n)).astype(np.int64)).tolist())
    for t, _ in changes:
        iters.update((t - 1, t))
    xs = np.array(sorted(i for i in iters if start <= i <= last), dtype=np.int64)
    return xs, schedule.rates(xs).astype(np.float64)


def schedule_figure(parsed, schedule: Schedule, start: int, stop: int, log: bool = False):
    """The schedule over [start, stop) as a matplotlib Figure (no pyplot: no global state)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    msg = parsed.message
    last = max(start, stop - 1)
    changes = [(t, r) for t, r in schedule.change_points(stop) if start < t <= last]
    xs, ys = _plot_points(schedule, start, last, changes)
    ys = np.where(np.isfinite(ys) & ((ys > 0) if log else True), ys, np.nan)  # gaps, not wild lines

    fig = Figure(figsize=(8.6, 5.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    p = schedule.policy
    details = [type_name(msg), f'lr_policy "{p.name}"', f"base_lr {fmt_value(msg.base_lr)}"]
    details += [f"{f} {fmt_value(getattr(msg, f))}" for f in ("gamma", "power", "stepsize") if f in p.needs]
    if "stepvalue" in p.needs:
        details.append("stepvalue " + ", ".join(str(v) for v in msg.stepvalue[:8]) + (" …" if len(msg.stepvalue) > 8 else ""))
    if p.name == "poly" or msg.max_iter:
        details.append(f"max_iter {msg.max_iter:,}")
    # Text from the definition is data: parse_math=False keeps a '$' in a file name literal.
    fig.suptitle(f"Learning rate: {os.path.basename(parsed.source.path)}", x=0.01, ha="left",
                 fontweight="bold", parse_math=False)
    ax.set_title(" · ".join(details) + f"\nrate = {p.formula}", loc="left", fontsize=9, color="#555555",
                 parse_math=False)
    ax.plot(xs, ys, color="#1f5fa8", linewidth=2, drawstyle="steps-post" if p.stepped else "default")
    if len(changes) <= 200:
        shown = [(t, r) for t, r in changes if math.isfinite(r) and (r > 0 or not log)]
        for t, r in shown:
            ax.axvline(t, color="#c0392b", linewidth=0.8, linestyle="--", alpha=0.6)
        if shown:
            ax.plot([t for t, _ in shown], [r for _, r in shown], "o", color="#c0392b", markersize=4)
        if len(shown) <= 12:
            for t, r in shown:
                right = t > start + 0.8 * (last - start)   # labels near the right edge go to the left
                ax.annotate(f"{t:,} → {fmt_rate(r)}", (t, r), textcoords="offset points",
                            xytext=(-5 if right else 5, 5), ha="right" if right else "left",
                            fontsize=8, color="#c0392b", parse_math=False)
    if log:
        ax.set_yscale("log")
    if not np.isfinite(ys).any():
        ax.text(0.5, 0.5, "no finite learning rate in this range" + (" above 0" if log else ""),
                transform=ax.transAxes, ha="center", color="#b22222")


    ax.set_xlim(start, last if last > start else start + 1)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel("iteration")
    ax.set_ylabel("learning rate" + (" (log scale)" if log else ""))
    ax.grid(True, color="#e6e6e6")
    return fig


def plot_schedule(out: str, parsed, schedule: Schedule, start: int, stop: int, log: bool = False) -> None:
    ext = os.path.splitext(out)[1].lower().lstrip(".")
    if ext not in ("svg", "png", "pdf"):
        raise CliError(f"cannot plot to {out}: unknown format '{ext or out}'; use .svg, .png or .pdf")
    check_writable(out)
    try:
        import matplotlib
    except ImportError as e:
        raise CliError(f"cannot plot: matplotlib is not installed ({e}); pip install matplotlib") from None
    fig = schedule_figure(parsed, schedule, start, stop, log)
    buf = io.BytesIO()
    # No dates or random ids in the file: the same schedule gives the same bytes.
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(ext)
    with matplotlib.rc_context({"svg.hashsalt": "netdef", "svg.fonttype": "none"}):
        fig.savefig(buf, format=ext, metadata=metadata, dpi=150 if ext == "png" else "figure")
    write_atomic(out, buf.getvalue())
