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
_VALUES = ("score", "score_low", "score_high", "F", "RA_U", "TA_U", "mean_run_seconds", "sealed", "references")


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
                    "score_low": _interval(record, "score", 0),
                    "score_high": _interval(record, "score", 1),
                    "F": record.get("F"),
                    "RA_U": record.get("RA_U"),
                    "TA_U": record.get("TA_U"),
                    "mean_run_seconds": record.get("time", {}).get("mean_seconds"),
                    # False for --unsealed scores and for scores from before the sandbox
                    "sealed": bool(record.get("sealed", False)),
                    "references": record["sha256"]["reference_set"][:12],
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

    Columns: rank, group, dataset, N, submission, sha256 (12 characters), then for each
    split present (public first, private next) its score with its 95% interval
    (``score_low``, ``score_high``), F, RA_U, TA_U, mean run seconds, whether it was
    scored in the sandbox (``sealed``; an unsealed score is no official one) and the
    reference set (12 characters of its sha256); then ``overlaps_above``: whether the
    ranking score's interval overlaps that of the entry ranked just above (a difference
    within noise). Ranks are only given within a group: the same dataset, N and
    reference set of the ranking split (the private one where any entry has it).
    """
    scored = scores[scores["status"] == "scored"].copy()
    if scored.empty:
        return pd.DataFrame(columns=["rank", "group", "dataset", "N", "submission", "sha256"])
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
    group_name = pd.Series("", index=table.index, dtype=object)
    overlaps = pd.Series(pd.NA, index=table.index, dtype="boolean")
    for (dataset, n_models), same_n in table.groupby(["dataset", "N"]):
        # The private score decides where there is one (the final ranking), else the first split's.
        split = "private" if "private score" in same_n and same_n["private score"].notna().any() else splits[0]
        missing = same_n.index[same_n[f"{split} score"].isna()]
        group_name[missing] = f"not ranked: {dataset}, N = {n_models} is ranked on the {split} split, which this has no score on"
        for references, group in same_n.groupby(f"{split} references"):
            rank[group.index] = group[f"{split} score"].rank(ascending=False, method="min")
            group_name[group.index] = f"{dataset}, N = {n_models}, {split} references {references}"
            ordered = group.assign(_rank=rank[group.index]).sort_values("_rank")
            lows, highs = ordered[f"{split} score_low"].to_numpy(), ordered[f"{split} score_high"].to_numpy()
            for position, index in enumerate(ordered.index[1:], start=1):
                if not any(pd.isna(v) for v in (lows[position], highs[position], lows[position - 1], highs[position - 1])):
                    overlaps[index] = bool(highs[position] >= lows[position - 1] and lows[position] <= highs[position - 1])
    table.insert(0, "rank", rank.round().astype("Int64"))
    table.insert(1, "group", group_name)
    table["overlaps_above"] = overlaps
    return table.sort_values(["dataset", "N", "group", "rank"], na_position="last").reset_index(drop=True)


def _interval(record: dict, name: str, end: int) -> float | None:
    interval = record.get("intervals", {}).get(name)
    return None if not interval or interval[end] is None else float(interval[end])


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
    """The table as text for the terminal, one block per group, unranked submissions below.

    Scores print as ``0.0153 [0.011, 0.020]`` (95% interval); ``~`` marks an entry whose
    interval overlaps the one ranked above it.
    """
    if not len(table):
        text = "no scored submission yet"
    else:
        blocks = ["Ranks are given only within a group (the same dataset, N and reference set): "
                  "scores of different N, splits or reference sets are never ranked together."]
        for group, rows in table.groupby("group", sort=False):
            shown = pd.DataFrame({"rank": rows["rank"], "": rows["overlaps_above"].map(lambda v: "~" if v is True else "")})
            shown["submission"] = rows["submission"]
            for column in [c for c in rows.columns if c.endswith(" score")]:
                split = column[: -len(" score")]
                shown[column] = [
                    _with_interval(v, lo, hi) for v, lo, hi in zip(rows[column], rows[f"{split} score_low"], rows[f"{split} score_high"])
                ]
                shown[f"{split} F"] = rows[f"{split} F"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
                shown[f"{split} sealed"] = rows[f"{split} sealed"].map(lambda v: "" if pd.isna(v) else ("yes" if v else "NO"))
            with pd.option_context("display.width", 250, "display.max_columns", 50):
                blocks.append(f"{group}:\n" + shown.to_string(index=False))
        text = "\n\n".join(blocks)
        if table["overlaps_above"].eq(True).any():
            text += "\n\n~ : its 95% interval overlaps the one ranked above: the order of the two is within noise"
    if len(others):
        text += "\n\nnot ranked:\n" + "\n".join(
            f"  {row.submission} ({row.dataset}/{row.split}, N = {row.N}): {row.status}: {row.reason}"
            for row in others.itertuples()
        )
    return text


def _with_interval(value, low, high) -> str:
    if pd.isna(value):
        return ""
    text = f"{value:.4f}"
    if not (pd.isna(low) or pd.isna(high)):
        text += f" [{low:.3f}, {high:.3f}]"
    return text
