"""The competition's pages, terms and logo, written from the kit's own texts and the phases' numbers.

Each page is Markdown; the metric, the efficiency rule and the contract are the
docstrings of the modules that implement them (``scoring.metric.forgetting``, ``scoring.ingestion.limits``,
``starter_kit.submission``), so a page cannot drift from the code that scores.
"""

from __future__ import annotations

import inspect
import io
from types import ModuleType
from typing import Any

import scoring.ingestion.limits
import scoring.metric.forgetting
import starter_kit.submission


def _doc(module: ModuleType) -> str:
    return inspect.getdoc(module) or ""


def pages(title: str, phases: list[dict[str, Any]]) -> dict[str, str]:
    """{file name: Markdown} for overview, data, metric, rules and submit, plus ``terms.md``."""
    rows = "\n".join(
        f"| {p['name']} | {p['start']} to {p['end']} | {p['split']['dataset']} / {p['split']['name']} | {p['n_runs']} "
        f"| {p['limit_seconds']:.3f} s | {p['execution_time_limit']} s | {p['max_per_day']} |"
        for p in phases
    )
    table = (
        "| phase | dates | split | N | limit on the mean run time | execution time limit | per day |\n"
        "|---|---|---|---|---|---|---|\n" + rows
    )
    return {
        "overview.md": f"# {title}\n\nRemove the influence of a *forget set* from a trained model, quickly, so that "
        "the result is indistinguishable from a model retrained from scratch without it, and still accurate. "
        "Your code, a function `unlearning`, runs N times per submission; its N models are compared "
        "with N models retrained from scratch.\n\n" + table + "\n\nThe development phase scores on the public "
        "split and its leaderboard updates during the challenge; the final phase scores once on the private "
        "split, and its leaderboard decides.\n",
        "data.md": "# Data\n\nEach phase's input data (what your code receives) holds the original model's weights "
        "and the retain, forget and validation sets of that phase's split, and nothing else: no test set, no "
        "reference model, no run seed. The development phase's input data can be downloaded; the final phase's "
        "cannot (the private split stays sealed). The starting kit holds the public split's tools and notebook.\n\n"
        + table
        + "\n",
        "metric.md": "# The metric\n\n"
        + _doc(scoring.metric.forgetting).split("\n\n")[0]
        + "\n\nThe score is F x (RA_U / RA_R) "
        "x (TA_U / TA_R): the forgetting quality F (per-example epsilons of a membership test between your N "
        "models and N retrained models, turned into points) times the ratios of your models' retain and test "
        "accuracies to the retrained models'. Each submission's page (detailed results) shows the score with "
        "its 95% interval, the estimator's ceiling at this N and per-run diagnostics.\n",
        "rules.md": "# Rules\n\n## Efficiency\n\n"
        + _doc(scoring.ingestion.limits).split("\n\n")[2]
        + "\n\nOn Codabench "
        "the time is the compute worker's own: the wall time of the ingestion step, less a fixed set-up "
        "allowance (starting the container, importing torch, loading the data), divided by N. Time your code "
        "does not spend within the allowance is yours; what you do at import counts. The execution time "
        "limit (twice what the rule allows, plus the scoring of N models) only stops a submission that hangs.\n\n"
        + table
        + "\n\n## What is sealed\n\nThe test set, the reference models and their outputs, the private "
        "split and the run seeds (drawn when your submission runs, recorded for scoring). A submission is one "
        "`.py` file or notebook (code, at most 1 MiB): weights or data shipped inside are refused.\n\n"
        "## Phases\n\nDevelopment: feedback on the public split, a few submissions a day. Final: one score on the "
        "private split, which decides.\n",
        "submit.md": "# How to submit\n\n" + _doc(starter_kit.submission).split("\n\n")[0] + "\n\n"
        "1. Edit `notebooks/starter.ipynb` from the starting kit; tag the cell that defines `unlearning` "
        "with `submission`; score it locally (`python -m scoring score`).\n"
        "2. `python -m starter_kit.notebook pack notebooks/starter.ipynb --out submission.zip`\n"
        "3. Upload `submission.zip` on the phase's *My Submissions* tab.\n",
        "terms.md": f"# Terms of {title}\n\nBy submitting you agree that your code runs on the organisers' compute "
        "workers, that its outputs and logs are kept to score it, and that the organisers may publish your "
        "scores with your team's name. Do not try to read sealed data, reach the network or tamper with the "
        "scoring: such submissions are removed. The organisers' decision on the final ranking is final.\n",
    }


def logo_png(title: str) -> bytes:
    """A small PNG logo: the title on the kit's blue."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure = plt.figure(figsize=(3, 3), dpi=80)
    figure.patch.set_facecolor("#1f4e79")
    figure.text(0.5, 0.5, "\n".join(title.split()[:3]), ha="center", va="center", color="white", fontsize=16)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=figure.get_facecolor())
    plt.close(figure)
    return buffer.getvalue()
