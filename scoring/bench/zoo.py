"""The baseline zoo scored as sealed submissions, with the sanity rows, into one leaderboard.

This module owns ``python -m scoring benchmark``: every baseline of
``starter_kit.baselines`` and the three sanity rows of ``scoring.bench.sanity`` (identity,
noise-only, retrain-from-scratch) written as submission files and scored by
``scoring.score`` exactly as participants' submissions are (sealed, N runs against the
first N reference models, which are reused), then ranked by ``scoring.ranking.leaderboard``
(CSV, terminal table and HTML page). Retraining from scratch takes as long as
retraining, so its time limit is lifted, and the leaderboard's note says so.

Folder layout::

    OUT/
      submissions/<name>.py     what was scored (baselines call the kit by name)
      scores/<name>/            one score folder each (score.json, report.html, ...)
      leaderboard.csv, leaderboard.html
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from scoring.bench.sanity import ROWS, write_sanity_submission

if TYPE_CHECKING:
    from scoring.score import ScoreOptions
    from starter_kit.recipe import Recipe
    from starter_kit.splits import Split

LIFTED_LIMIT = 1e6  # seconds: "no limit" for the retrain-from-scratch sanity row
LIFTED_RULE = "lifted: a sanity row that retrains from scratch (as slow as retraining by design)"

BASELINE_SOURCE = '''\
"""Baseline {name!r} of starter_kit.baselines with its default hyper-parameters."""
from starter_kit.baselines import get_baseline

_method = get_baseline({name!r})


def unlearning(net, retain_loader, forget_loader, val_loader):
    return _method(net, retain_loader, forget_loader, val_loader)
'''


def benchmark_submissions(folder: Path, recipe: Recipe, names: list[str] | None = None) -> dict[str, Path]:
    """{row name: submission file}: the chosen baselines (all by default) and the sanity rows."""
    from starter_kit.baselines import BASELINES

    chosen = list(BASELINES) if names is None else names
    unknown = [n for n in chosen if n not in BASELINES and n.removeprefix("sanity_") not in ROWS]
    if unknown:
        raise ValueError(
            f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(BASELINES)} and "
            f"{', '.join('sanity_' + r for r in ROWS)}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in chosen:
        if name in BASELINES:
            path = folder / f"{name}.py"
            path.write_text(BASELINE_SOURCE.format(name=name))
            files[name] = path
    rows = ROWS if names is None else [n.removeprefix("sanity_") for n in chosen if n.removeprefix("sanity_") in ROWS]
    for row in rows:
        files[f"sanity_{row}"] = write_sanity_submission(row, folder, recipe)
    return files


def run_benchmark(
    options: ScoreOptions, names: list[str] | None = None, progress: bool = True
) -> tuple[list[dict[str, Any]], Path]:
    """Score every row; return (their score.json records, the leaderboard CSV's path).

    ``options`` is a ``ScoreOptions`` whose ``submission`` and ``out`` are ignored:
    ``out`` of the benchmark is ``options.out`` as a whole (layout above).
    """
    from dataclasses import replace

    from scoring.html.pages import render_leaderboard, report_links
    from scoring.ranking.leaderboard import collect_scores, leaderboard, not_ranked, write_leaderboard
    from scoring.score import score_submission
    from starter_kit.atomic import write_bytes
    from starter_kit.splits import load_split

    out = Path(options.out)
    files = benchmark_submissions(out / "submissions", load_split(options.split_dir).recipe, names)
    records = []
    bar = tqdm(files.items(), desc="benchmark", unit="submission", disable=not progress)
    for name, path in bar:
        bar.set_postfix(row=name)
        lifted = name == "sanity_retrain"
        row = replace(
            options,
            submission=path,
            out=out / "scores" / name,
            team=name,  # each row is its own entrant
            replace=True,  # the benchmark's own folder: a rerun scores every row again
            progress=False,
            time_limit=LIFTED_LIMIT if lifted else options.time_limit,
            limit_note=LIFTED_RULE if lifted else None,
        )
        records.append(score_submission(row))
    scores = collect_scores(out / "scores")
    path = write_leaderboard(leaderboard(scores), out / "leaderboard.csv")
    page = path.with_suffix(".html")
    write_bytes(page, render_leaderboard(leaderboard(scores), not_ranked(scores), report_links(scores, out)).encode())
    return records, path


def default_out(split: Split, n_models: int) -> Path:
    """results/benchmark/<dataset>-<split name>-N<N>: one folder per split and N."""
    return Path("results") / "benchmark" / f"{split.dataset.name}-{split.manifest['split']['name']}-N{n_models}"
