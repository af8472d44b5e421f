"""The leaderboard: every scored submission under a results folder, ranked, one row each.

A submission scored on both the public and the private split gets one row with both
side by side, as on Kaggle; the ranking uses the private score when there is one
(the final ranking) and the public score otherwise. Scores are only compared at the
same dataset and N (F depends on N), so ranks restart for each (dataset, N), and within
one the private score decides as soon as any submission has one. When the
same submission was scored more than once on a split at the same N, the latest
score counts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from scoring.score import SCORE_FILE
from starter_kit.atomic import write_bytes

LEADERBOARD_FILE = "leaderboard.csv"
_VALUES = ("score", "F", "RA_U", "TA_U", "mean_run_seconds", "sealed")


def collect_scores(results_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per score.json under ``results_dir`` (hidden staging folders skipped)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir} is not a directory: give the folder the scores were written under")
    rows = []
    for path in sorted(results_dir.rglob(SCORE_FILE)):
        if any(part.startswith(".") for part in path.relative_to(results_dir).parts):
            continue
        try:
            record = json.loads(path.read_text())
            rows.append(
                {
                    "submission": record["submission"]["name"],
                    "submission_sha256": record["sha256"]["submission"],
                    "dataset": record["split"]["dataset"],
                    "split": record["split"]["name"],
                    "N": int(record["N"]),
                    "status": record["status"],
                    "reason": record.get("reason"),
                    "score": record.get("score"),
                    "F": record.get("F"),
                    "RA_U": record.get("RA_U"),
                    "TA_U": record.get("TA_U"),
                    "mean_run_seconds": record.get("time", {}).get("mean_seconds"),
                    # False for --unsealed scores and for scores from before the sandbox
                    "sealed": bool(record.get("sealed", False)),
                    "scored_at": record.get("scored_at", ""),
                    "path": str(path.parent),
                }
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError):
            continue  # not a score.json this scorer wrote
    columns = ["submission", "submission_sha256", "dataset", "split", "N", "status", "reason", *_VALUES, "scored_at", "path"]
    return pd.DataFrame(rows, columns=columns)


def leaderboard(scores: pd.DataFrame) -> pd.DataFrame:
    """Rank the scored rows of ``collect_scores``: one row per (dataset, N, submission).

    Columns: rank, dataset, N, submission, sha256 (12 characters), then for each split
    present (public first, private next) its score, F, RA_U, TA_U, mean run seconds and
    whether it was scored in the sandbox (``sealed``; an unsealed score is no official one).
    """
    scored = scores[scores["status"] == "scored"].copy()
    if scored.empty:
        return pd.DataFrame(columns=["rank", "dataset", "N", "submission", "sha256"])
    scored = scored.sort_values("scored_at").drop_duplicates(["dataset", "N", "submission_sha256", "split"], keep="last")
    scored["sha256"] = scored["submission_sha256"].str[:12]
    key = ["dataset", "N", "submission", "sha256"]
    wide = scored.set_index([*key, "split"])[list(_VALUES)].unstack("split")
    splits = sorted(scored["split"].unique(), key=lambda s: ({"public": 0, "private": 1}.get(s, 2), s))
    table = pd.DataFrame(index=wide.index)
    for split in splits:
        for value in _VALUES:
            if (value, split) in wide.columns:
                table[f"{split} {value}"] = wide[(value, split)]
    table = table.reset_index()
    rank = pd.Series(float("nan"), index=table.index)
    for _, group in table.groupby(["dataset", "N"]):
        # The private score decides where there is one (the final ranking), else the first split's.
        by = "private score" if "private score" in group and group["private score"].notna().any() else f"{splits[0]} score"
        rank[group.index] = group[by].rank(ascending=False, method="min")
    table.insert(0, "rank", rank.round().astype("Int64"))
    return table.sort_values(["dataset", "N", "rank"], na_position="last").reset_index(drop=True)


def not_ranked(scores: pd.DataFrame) -> pd.DataFrame:
    """Rejected and failed submissions, with their reasons (latest per submission and split)."""
    others = scores[scores["status"] != "scored"].sort_values("scored_at")
    others = others.drop_duplicates(["dataset", "N", "submission_sha256", "split"], keep="last")
    return others[["submission", "dataset", "split", "N", "status", "reason"]].reset_index(drop=True)


def write_leaderboard(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """The table as CSV, written atomically."""
    path = Path(path)
    write_bytes(path, table.to_csv(index=False).encode())
    return path


def format_leaderboard(table: pd.DataFrame, others: pd.DataFrame) -> str:
    """The table as text for the terminal, with unranked submissions listed below."""
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4f}".format):
        text = table.to_string(index=False) if len(table) else "no scored submission yet"
    if len(others):
        text += "\n\nnot ranked:\n" + "\n".join(
            f"  {row.submission} ({row.dataset}/{row.split}, N = {row.N}): {row.status}: {row.reason}"
            for row in others.itertuples()
        )
    return text
