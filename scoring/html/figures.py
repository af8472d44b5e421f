"""The report's figures: matplotlib SVGs as data URIs, ready for an ``<img src>``.

This module owns the pictures of ``report.html``: the histogram of per-example epsilons,
the run times against the limit, and the per-run accuracies as a strip plot beside the
retrained models' means. Each is drawn on a bare ``Figure`` (no pyplot, so no global
state and no display is needed), saved as SVG with glyphs as paths (no font needed to
show it), a fixed hash salt and no date (the same record gives the same bytes), and
returned as a base64 data URI: each figure is its own document, so ids never clash.
Records reach it already stripped of hidden keys (``scoring.html.fields``).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from scoring.html.fields import ACCURACIES, is_finite
from scoring.metric import forgetting as metric

# Colours shared by the CSS and the figures.
BLUE, GREEN, RED, AMBER = "#2f6fb3", "#1a7f37", "#c2362f", "#9a6700"


# ----------------------------------------------------------------------------------
# The figures.


def epsilon_figure(record: dict[str, Any], counts: np.ndarray) -> str:
    """The report's histogram of per-example epsilons (``draw_epsilon_histogram``), as SVG."""
    figure = _figure(8.5, 2.8)
    axes = figure.subplots()
    draw_epsilon_histogram(axes, counts)
    _style(axes)
    return _svg(figure)


def draw_epsilon_histogram(axes: Axes, counts: np.ndarray) -> None:
    """Per-example epsilons in the official bins on ``axes``: counts [n_bins + 1], the last bin worth 0 points.

    The one drawing of it: the report's SVG and ``score.png`` (``scoring.html.summary``) both call it.
    """
    n = len(counts) - 1  # the last bin holds everything beyond the last worth-points bin
    labels = [f"{metric.BIN_WIDTH * k:g}–{metric.BIN_WIDTH * (k + 1):g}" for k in range(n)] + ["beyond\n(50)"]
    points = [2.0**-k for k in range(n)] + [0.0]
    colours = [(0.18, 0.44, 0.70, 0.3 + 0.7 * p) if p > 0 else RED for p in points]
    bars = axes.bar(range(len(counts)), counts, color=colours, width=0.8)
    axes.bar_label(bars, labels=[str(int(c)) if c else "" for c in counts], fontsize=8, color="#57606a", padding=2)
    axes.set_xticks(range(len(counts)), labels, fontsize=8, rotation=30 if len(counts) > 8 else 0)
    axes.set_xlabel(r"per-example epsilon (bin k is worth $2^{-k}$ points; beyond the last bin is worth 0)", fontsize=9)
    axes.set_ylabel("forget examples", fontsize=9)
    axes.margins(y=0.15)


def time_figure(seconds: ArrayLike, times: dict[str, Any]) -> str:
    """Each run's seconds [n_runs] against the mean, the 95th percentile and the limit (``record["time"]``)."""
    seconds = np.asarray(seconds, dtype=np.float64)
    limit = times.get("limit_seconds")
    # the recorded statistics where there are (the text beside the figure quotes them)
    mean = float(times["mean_seconds"]) if is_finite(times.get("mean_seconds")) else float(seconds.mean())
    p95 = float(times["p95_seconds"]) if is_finite(times.get("p95_seconds")) else float(np.percentile(seconds, 95))
    figure = _figure(8.5, 2.8)
    axes = figure.subplots()
    x = np.arange(len(seconds))
    over = np.array([is_finite(limit) and s > float(limit) for s in seconds])
    colours = np.where(over, AMBER, BLUE)
    if len(seconds) <= 64:
        axes.bar(x, seconds, color=colours, width=0.75, alpha=0.85)
    else:
        axes.scatter(x, seconds, s=8, c=colours, alpha=0.8)
    axes.axhline(mean, color="#24292f", lw=1.2, label=f"mean {mean:.3g} s")
    axes.axhline(p95, color="#24292f", lw=1, ls=":", label=f"95th percentile {p95:.3g} s")
    top = max(float(seconds.max()), p95)
    if is_finite(limit):
        axes.axhline(float(limit), color=RED, lw=1.6, ls="--", label=f"limit on the mean {float(limit):.3g} s")
        if float(limit) <= 3 * top:
            top = max(top, float(limit))
        else:  # a generous limit would flatten every bar: mark it with an arrow instead
            axes.annotate(
                f"limit {float(limit):.3g} s: far above (off the chart) ↑",
                xy=(0.01, 0.97),
                xycoords="axes fraction",
                ha="left",
                va="top",
                fontsize=8,
                color=RED,
            )
    axes.set_ylim(0, top * 1.18)
    axes.set_xlabel("run", fontsize=9)
    axes.set_ylabel("seconds", fontsize=9)
    if len(seconds) <= 32:
        axes.set_xticks(x)
    figure.legend(fontsize=8, frameon=False, loc="outside upper right", ncols=3)
    _style(axes)
    return _svg(figure)


def accuracy_figure(record: dict[str, Any], runs: list[dict[str, Any]]) -> str | None:
    """Each run's retain / test / forget accuracy beside the retrained models' mean; None without any."""
    columns = [(name, f"{name}_accuracy", retrained) for name, _, retrained in ACCURACIES]
    columns = [c for c in columns if any(is_finite(r.get(c[1])) for r in runs)]
    if not columns:
        return None
    figure = _figure(8.5, 2.8)
    axes = figure.subplots()
    rng = np.random.default_rng(0)  # jitter only: the same picture every time
    for i, (_name, key, retrained) in enumerate(columns):
        values = np.array([r[key] for r in runs if is_finite(r.get(key))], dtype=np.float64)
        jitter = rng.uniform(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(len(values))
        axes.scatter(
            i + jitter,
            values,
            s=22 if len(values) <= 64 else 7,
            color=BLUE,
            alpha=0.75 if len(values) <= 64 else 0.45,
            zorder=3,
            linewidths=0,
            label="unlearned runs" if i == 0 else None,
        )
        if is_finite(record.get(retrained)):
            axes.hlines(
                float(record[retrained]),
                i - 0.32,
                i + 0.32,
                color=GREEN,
                lw=2.2,
                zorder=2,
                # matplotlib's stubs say str; hlines takes None (no legend entry) as every artist does
                label="retrained models' mean" if i == 0 else None,  # type: ignore[arg-type]
            )
    axes.set_xticks(range(len(columns)), [f"{name} accuracy" for name, _, _ in columns], fontsize=9)
    axes.set_xlim(-0.6, len(columns) - 0.4)
    figure.legend(fontsize=8, frameon=False, loc="outside upper right", ncols=2)
    _style(axes)
    return _svg(figure)


# ----------------------------------------------------------------------------------
# A bare canvas, inlined as SVG.


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _style(axes: Axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.spines[["left", "bottom"]].set_color("#8c959f")
    axes.tick_params(colors="#57606a", labelsize=9)
    axes.grid(axis="y", color="#d0d7de", lw=0.6)
    axes.set_axisbelow(True)


def _svg(figure: Figure) -> str:
    """A data URI of the figure as SVG, glyphs as paths (no font is needed to show it)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "report"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
