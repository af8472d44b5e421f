"""What people look at after scoring: a figure (epsilons, the score's factors), a summary, the ceiling's lines."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scoring.html.fields import with_interval
from scoring.html.figures import draw_epsilon_histogram
from scoring.metric import forgetting as metric


def score_figure(record: dict[str, Any], epsilons: np.ndarray) -> bytes:
    """PNG bytes: per-example epsilons in the official 0.5-wide bins, and F x RA ratio x TA ratio.

    Drawn on a bare Agg canvas (no pyplot), so it never touches a global backend.
    """
    n_models = int(record["N"])
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[1.8, 1])
    draw_epsilon_histogram(left, metric.epsilon_bin_counts(epsilons, n_models))
    left.set_title(
        f"epsilons of {record['n_forget']} forget examples, N = {n_models}: "
        f"F = {record['F']:.4f}, {record['epsilons']['share_at_cap']:.0%} at 50"
    )

    factors = {
        "F": record["F"],
        "RA_U/RA_R": record["retain_ratio"],
        "TA_U/TA_R": record["test_ratio"],
        "score": record["score"],
    }
    bars = right.bar(list(factors), list(factors.values()), color=["#4c72b0", "#55a868", "#55a868", "#c44e52"])
    right.bar_label(bars, fmt="%.4f")
    right.axhline(1.0, color="grey", lw=0.8, ls="--")
    right.set_ylim(0, max(1.1, max(factors.values()) * 1.15))
    right.set_title("score = F x (RA_U/RA_R) x (TA_U/TA_R)", fontsize=10)
    right.tick_params(axis="x", labelsize=8)
    figure.suptitle(f"{record['submission']['name']} on {record['split']['dataset']}/{record['split']['name']}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def summary_text(record: dict[str, Any], out: Path | None = None) -> str:
    """One screen: status, score and its factors, run times against the limits, where the files are."""
    split = record["split"]
    times = record["time"]
    lines = [
        f"submission  {record['submission']['name']}  (sha256 {record['sha256']['submission'][:12]})",
        f"split       {split['dataset']}/{split['name']}  N = {record['N']} runs vs {record['N']} reference models, "
        f"|S| = {record['n_forget']}",
        f"status      {record['status']}" + (f": {record['reason']}" if record.get("reason") else ""),
    ]
    if record["status"] == "scored":
        intervals = record.get("intervals", {})
        lines += [
            f"score       {with_interval(record['score'], intervals.get('score'))} (N = {record['N']}) = "
            f"F {with_interval(record['F'], intervals.get('F'))} x RA {record['RA_U']:.4f}/{record['RA_R']:.4f} "
            f"x TA {record['TA_U']:.4f}/{record['TA_R']:.4f}",
            *([f"            {intervals['note']}"] if intervals.get("note") else []),
            f"forget acc  unlearned {record['FA_U']:.4f}, retrained {record['FA_R']:.4f}; "
            f"epsilon median {record['epsilons']['median']:.2f}, {record['epsilons']['share_at_cap']:.0%} at 50",
        ]
        ceiling = record.get("ceiling")
        if ceiling:
            value = with_interval(ceiling["value"], ceiling)
            lines.append(
                f"ceiling     F of retraining itself at N = {ceiling['n_models']}: {value} "
                f"(halves drawn from {ceiling['n_references_used']} references)"
            )
            if record.get("normalised_score") is None:
                lines.append(f"            {record.get('normalised_score_note', 'no normalised score')}")
            else:
                lines.append(
                    f"normalised  F / ceiling "
                    f"{with_interval(record['normalised_score'], intervals.get('normalised_score'), 3)}"
                )
        auxiliary = record.get("auxiliary", {})
        if auxiliary:
            parts = [f"KLoM mean {auxiliary['klom']['mean']:.3f} (lower is better)"]
            if "ulira" in auxiliary:
                parts.append(f"U-LiRA accuracy {auxiliary['ulira']['mean']:.3f} (0.5 is best)")
            lines.append(f"auxiliary   {'; '.join(parts)}; never part of the score")
        for flag in record.get("diagnostics", {}).get("flags", []):
            lines.append(f"flag        {flag}")
        undefined = record["epsilons"].get("undefined_examples")
        if undefined:
            lines.append(f"note        {undefined} example(s) where no threshold survives: epsilon 0 (docs/metric.md)")
    if times.get("runs_completed"):
        lines.append(
            f"run time    mean {times['mean_seconds']:.2f} s, 95th percentile {times['p95_seconds']:.2f} s "
            f"(max {times['max_seconds']:.2f}) over {times['runs_completed']} run(s), measured by the scorer; "
            f"limit {times['limit_seconds']:.2f} s on the mean"
        )
    else:
        lines.append(f"limits      {times['limit_seconds']:.2f} s on the mean run time")
    lines.append(
        f"            sandbox: "
        f"{'sealed' if record.get('sealed', True) else 'UNSEALED (--unsealed: not an official score)'}"
    )
    lines.append(f"            limit rule: {times['limit_rule']}")
    ref_threads = times.get("reference_torch_threads", [])
    if ref_threads and ref_threads != [record.get("torch_threads")] and times["limit_rule"] != "--time-limit":
        lines.append(
            f"warning     references were trained with {ref_threads} torch thread(s), runs got "
            f"{record.get('torch_threads')}: pass the same --threads to both commands for a fair limit"
        )
    processes = record.get("processes", {})
    if processes.get("left_running"):
        lines.append(
            f"processes   the submission left {processes['left_running']} process(es) running: all killed "
            f"({processes.get('survived_kill', 0)} survived)"
        )
    output = record.get("output", {})
    if output.get("truncated"):
        lines.append(f"output      {output['bytes']} bytes printed; the log keeps the first and last part")
    if out is not None:
        lines.append(
            f"wrote       {Path(out) / 'score.json'} "
            f"(+ {', '.join(f for f in record.get('files', []) if f != 'score.json')})"
        )
    return "\n".join(lines)


def describe_ceiling(ceiling: Mapping[str, Any] | None, n_models: int) -> str:
    """The estimator's ceiling in two lines: what a perfect unlearning scores at this N."""
    if ceiling is None:
        return f"  ceiling: needs N >= 3 and at least 6 references (N = {n_models})"
    text = (
        f"  ceiling: F of retraining itself at N = {ceiling['n_models']}: {with_interval(ceiling['value'], ceiling)}, "
        f"over {ceiling['n_splits']} random splits of "
        f"{ceiling['n_references_used']} references into halves of {ceiling['n_models']}"
    )
    if ceiling.get("reduced"):
        text += (
            f"\n           ({ceiling['note']}: scores at N = {n_models} get no normalised score; "
            f"train {2 * n_models} references for a ceiling at N = {n_models})"
        )
    return text
