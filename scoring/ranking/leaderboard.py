"""The leaderboard: every score under a results folder, ranked by team, one row per team.

Entrants are teams (score.json's ``team``, from ``scoring score --team``), never file
names or file hashes: two teams that hand in the same bytes are two entries. Which
submission of a team counts depends on the phase (``PHASES``): during the challenge
(``public``) its best public score, and nothing of the private split is shown; for the
final ranking (``final``) its latest private score, beside that submission's public
score, as on Kaggle. Scores are only compared at the same dataset and N (F depends on
N), so ranks restart for each (dataset, N) and reference set. When the same submission
of a team was scored more than once on a split at the same N, the latest scoring counts.
A score whose runs share work (``diagnostics.dependence`` flagged: groups of runs closer
to one another than independent runs are, ``scoring.assess.dependence``) is kept off the
ranking and listed with its reason among those not ranked, unless the organisers rank it
anyway (``rank_flagged``; it is then marked ``flagged``). A score whose intervals are only
approximate (too few models: score.json's ``intervals.note``) carries that note, and the
text and the page mark its interval with ``*`` and say why below the table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.html.fields import with_interval
from scoring.html.pages import render_leaderboard, report_links
from scoring.record import SCORE_FILE, read_score
from starter_kit.atomic import write_bytes

LEADERBOARD_FILE = "leaderboard.csv"
PHASES = ("public", "final")
_VALUES = (
    "score",
    "score_low",
    "score_high",
    "score_note",
    "F",
    "RA_U",
    "TA_U",
    "mean_run_seconds",
    "sealed",
    "flagged",
    "references",
)
FLAGGED_STATUS = "flagged: dependence"  # a scored submission kept off the ranking, in the not-ranked list


def collect_scores(results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per score.json under ``results_dir`` (hidden staging folders skipped).

    Raises ValueError naming the file and the field for a score.json this kit cannot read.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir} is not a directory: give the folder the scores were written under")
    rows = []
    for path in sorted(results_dir.rglob(SCORE_FILE)):
        if any(part.startswith(".") for part in path.relative_to(results_dir).parts):
            continue
        record = read_score(path)  # ValueError: one line naming the file and the field
        rows.append(
            {
                "team": _team(record),
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
                "score_note": (record.get("intervals") or {}).get("note"),  # why the interval is approximate
                "F": record.get("F"),
                "RA_U": record.get("RA_U"),
                "TA_U": record.get("TA_U"),
                "mean_run_seconds": record.get("time", {}).get("mean_seconds"),
                "sealed": record["sealed"],  # False for --unsealed scores
                "flagged": _dependence(record) is not None,
                "dependence": _dependence(record),
                "references": record["sha256"]["reference_set"][:12],
                "scored_at": record.get("scored_at", ""),
                "path": str(path.parent),
            }
        )
    columns = [
        "team",
        "submission",
        "submission_sha256",
        "dataset",
        "split",
        "N",
        "status",
        "reason",
        *_VALUES,
        "dependence",
        "scored_at",
        "path",
    ]
    return pd.DataFrame(rows, columns=columns)


def leaderboard(scores: pd.DataFrame, phase: str = "final", rank_flagged: bool = False) -> pd.DataFrame:
    """Rank the entrants of ``collect_scores``'s rows: one row per (dataset, N, team).

    ``phase`` says which submission of a team counts (``PHASES``):

    - ``public`` (during the challenge): public-split scores only, nothing of another
      split; a team's best public score.
    - ``final``: where any entry at a (dataset, N) has a private score, the team's latest
      private score (the submission the organiser scored last on the private split for
      it), beside the public score of that same submission; elsewhere as ``public``.

    Columns: rank, group, team, dataset, N, submission (the counted one's file name),
    sha256 (12 characters), entries (distinct submissions of the team on the ranking
    split), then for each split shown (public first, private next) its score with its 95%
    interval (``score_low``, ``score_high``; ``score_note``: why the interval is only
    approximate, where it is), F, RA_U, TA_U, mean run seconds, whether it
    was scored in the sandbox (``sealed``; an unsealed score is no official one) and the
    reference set (12 characters of its sha256); then ``overlaps_above``: whether the
    ranking score's interval overlaps that of the entry ranked just above (a difference
    within noise). Ranks are only given within a group: the same dataset, N and
    reference set of the ranking split. A score without a team (from before teams, or
    scored through the API without one) is its own entrant, one per submission sha256.
    A score flagged for dependence between its runs is left out (``not_ranked`` lists it)
    unless ``rank_flagged``: the organisers' explicit choice, shown in ``flagged``.
    """
    scored = _latest(_in_phase(scores, phase))
    scored = scored[(scored["status"] == "scored") & (rank_flagged | ~scored["flagged"].astype(bool))]
    if scored.empty:
        return pd.DataFrame(columns=["rank", "group", "team", "dataset", "N", "submission", "sha256"])
    rows = []
    for (_dataset, _n_models), same_n in scored.groupby(["dataset", "N"]):
        splits = sorted(same_n["split"].unique(), key=_split_order)
        ranking = "private" if phase == "final" and "private" in splits else splits[0]
        for _, mine in same_n.groupby("entrant"):
            rows.append(_entry(mine, splits, ranking))
    table = pd.DataFrame(rows)
    splits = sorted({c.split(" ", 1)[0] for c in table.columns if c.endswith(" score")}, key=_split_order)
    table.insert(0, "rank", float("nan"))
    table.insert(1, "group", "")
    keys = ["rank", "group", "team", "dataset", "N", "submission", "sha256", "entries"]
    table = table[[*keys, *(f"{s} {v}" for s in splits for v in _VALUES if f"{s} {v}" in table), "_ranking"]]
    rank = pd.Series(float("nan"), index=table.index)
    overlaps = pd.Series(pd.NA, index=table.index, dtype="boolean")
    for (dataset, n_models, split), same_n in table.groupby(["dataset", "N", "_ranking"]):
        missing = same_n.index[same_n[f"{split} score"].isna()]
        table.loc[missing, "group"] = (
            f"not ranked: {dataset}, N = {n_models} is ranked on the {split} split, which this has no score on"
        )
        for references, group in same_n.groupby(f"{split} references"):
            rank[group.index] = group[f"{split} score"].rank(ascending=False, method="min")
            table.loc[group.index, "group"] = f"{dataset}, N = {n_models}, {split} references {references}"
            ordered_rows = group.assign(_rank=rank[group.index]).sort_values("_rank")
            lows, highs = ordered_rows[f"{split} score_low"].to_numpy(), ordered_rows[f"{split} score_high"].to_numpy()
            for position, index in enumerate(ordered_rows.index[1:], start=1):
                if not any(
                    pd.isna(v) for v in (lows[position], highs[position], lows[position - 1], highs[position - 1])
                ):
                    overlaps[index] = bool(
                        highs[position] >= lows[position - 1] and lows[position] <= highs[position - 1]
                    )
    table["rank"] = rank.round().astype("Int64")
    table["overlaps_above"] = overlaps
    table = table.drop(columns="_ranking")
    return table.sort_values(["dataset", "N", "group", "rank"], na_position="last").reset_index(drop=True)


def _split_order(split: str) -> tuple[int, str]:
    return {"public": 0, "private": 1}.get(split, 2), split


def _entry(mine: pd.DataFrame, splits: list[str], ranking: str) -> dict[str, Any]:
    """One entrant's row at one (dataset, N): its counted submission, and that submission's other scores."""
    on_ranking = mine[mine["split"] == ranking]
    pool = on_ranking if len(on_ranking) else mine  # no score on the ranking split: shown, not ranked
    if ranking == "private" and len(on_ranking):
        chosen = pool.sort_values("scored_at").iloc[-1]  # the latest private score
    else:  # the best score, the earliest of equal ones
        chosen = (
            pool.sort_values("scored_at", kind="stable").sort_values("score", ascending=False, kind="stable").iloc[0]
        )
    sha = chosen["submission_sha256"]
    row = {
        "team": chosen["team"],
        "dataset": chosen["dataset"],
        "N": chosen["N"],
        "submission": chosen["submission"],
        "sha256": sha[:12],
        "entries": int(pool["submission_sha256"].nunique()),
        "_ranking": ranking,
    }
    for split in splits:
        same = mine[(mine["split"] == split) & (mine["submission_sha256"] == sha)]
        if len(same):
            values = same.sort_values("scored_at").iloc[-1]
            row.update({f"{split} {value}": values[value] for value in _VALUES})
    return row


def _in_phase(scores: pd.DataFrame, phase: str) -> pd.DataFrame:
    """The rows a phase may show: every split for ``final``, the public split alone for ``public``."""
    if phase not in PHASES:
        raise ValueError(
            f"phase {phase!r} is not one of {', '.join(PHASES)}: 'public' during the challenge, "
            "'final' for the final ranking"
        )
    return scores[scores["split"] == "public"] if phase == "public" else scores


def _latest(scores: pd.DataFrame) -> pd.DataFrame:
    """The latest scoring of each (entrant, dataset, N, submission, split); entrant: the team, else the sha256."""
    scores = scores.assign(
        entrant=[
            f"team:{team}" if isinstance(team, str) else f"sha256:{sha}"
            for team, sha in zip(scores["team"], scores["submission_sha256"], strict=True)
        ]
    )
    return scores.sort_values("scored_at").drop_duplicates(
        ["entrant", "dataset", "N", "submission_sha256", "split"], keep="last"
    )


def _team(record: Mapping[str, Any]) -> str | None:
    team = record.get("team")
    return team if isinstance(team, str) and team else None


def _dependence(record: Mapping[str, Any]) -> str | None:
    """Why a score's runs look dependent (``diagnostics.dependence.reason``), None when they do not."""
    found = (record.get("diagnostics") or {}).get("dependence") or {}
    return str(found["reason"]) if found.get("flagged") and found.get("reason") else None


def _present(value: object) -> bool:
    """A value the table holds (not None, NaN or NA)."""
    return value is not None and not (isinstance(value, float) and value != value) and value is not pd.NA


def _interval(record: Mapping[str, Any], name: str, end: int) -> float | None:
    interval = record.get("intervals", {}).get(name)
    return None if not interval or interval[end] is None else float(interval[end])


def not_ranked(scores: pd.DataFrame, phase: str = "final", rank_flagged: bool = False) -> pd.DataFrame:
    """Rejected and failed submissions of a phase, with their reasons (the latest scoring of each), and
    the scored ones flagged for dependence between their runs (status ``FLAGGED_STATUS``), unless
    ``rank_flagged``."""
    latest = _latest(_in_phase(scores, phase))
    flagged = (latest["status"] == "scored") & latest["flagged"].astype(bool) & (not rank_flagged)
    latest = latest.assign(
        status=latest["status"].where(~flagged, FLAGGED_STATUS),
        reason=latest["reason"].where(~flagged, latest["dependence"]),
    )
    others = latest[latest["status"] != "scored"].assign(sha256=lambda frame: frame["submission_sha256"].str[:12])
    return others[["team", "submission", "sha256", "dataset", "split", "N", "status", "reason"]].reset_index(drop=True)


def write_leaderboard(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """The table as CSV, written atomically."""
    path = Path(path)
    write_bytes(path, table.to_csv(index=False).encode())
    return path


def format_leaderboard(table: pd.DataFrame, others: pd.DataFrame) -> str:
    """The table as text for the terminal, one block per group, unranked submissions below.

    Scores print as ``0.0153 [0.011, 0.020]`` (95% interval); ``~`` marks an entry whose
    interval overlaps the one ranked above it, ``*`` an interval that is only approximate
    (its note, ``intervals.note`` of its score.json, is printed below the table).
    """
    if not len(table):
        text = "no scored submission yet"
    else:
        blocks = [
            "Ranks are given only within a group (the same dataset, N and reference set): "
            "scores of different N, splits or reference sets are never ranked together."
        ]
        for group, rows in table.groupby("group", sort=False):
            shown = pd.DataFrame(
                {"rank": rows["rank"], "": rows["overlaps_above"].map(lambda v: "~" if v is True else "")}
            )
            shown["team"] = rows["team"].map(lambda v: "(no team)" if pd.isna(v) else v)
            shown["submission"] = rows["submission"]
            for column in [c for c in rows.columns if c.endswith(" flagged")]:
                marked = rows[column].eq(True)
                shown.loc[marked, "submission"] = shown.loc[marked, "submission"] + " (flagged: dependence)"
            for column in [c for c in rows.columns if c.endswith(" score")]:
                split = column[: -len(" score")]
                shown[column] = [
                    with_interval(v, (lo, hi)) + ("*" if _present(note) else "")
                    for v, lo, hi, note in zip(
                        rows[column],
                        rows[f"{split} score_low"],
                        rows[f"{split} score_high"],
                        rows.get(f"{split} score_note", pd.Series(None, index=rows.index)),
                        strict=True,
                    )
                ]
                shown[f"{split} F"] = rows[f"{split} F"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
                shown[f"{split} sealed"] = rows[f"{split} sealed"].map(
                    lambda v: "" if pd.isna(v) else ("yes" if v else "NO")
                )
            with pd.option_context("display.width", 250, "display.max_columns", 50):
                blocks.append(f"{group}:\n" + shown.to_string(index=False))
        text = "\n\n".join(blocks)
        legend = []
        if table["overlaps_above"].eq(True).any():
            legend.append("~ : its 95% interval overlaps the one ranked above: the order of the two is within noise")
        notes = [c for c in table.columns if c.endswith(" score_note")]
        legend += [f"* : {note}" for note in dict.fromkeys(v for c in notes for v in table[c] if _present(v))]
        if legend:
            text += "\n\n" + "\n".join(legend)
    if len(others):
        text += "\n\nnot ranked:\n" + "\n".join(_not_ranked_line(row) for row in others.itertuples())
    return text


def _not_ranked_line(row: Any) -> str:
    """One entry of the not-ranked list; ``row``: a named tuple of ``not_ranked``'s columns (any scalar each)."""
    return (
        f"  {'(no team)' if pd.isna(row.team) else row.team}: {row.submission} ({row.dataset}/{row.split}, "
        f"N = {row.N}): {row.status}: {row.reason}"
    )


def write_leaderboard_pages(
    results: Path, csv: Path | None, phase: str, rank_flagged: bool = False
) -> tuple[str, Path, Path]:
    """Rank the scores under ``results`` for ``phase`` into CSV (default RESULTS/leaderboard.csv) and
    HTML beside it, linked to each score's report: the organisers' view. Returns (the table as
    text, the CSV's path, the page's path)."""
    scores = collect_scores(results)
    if scores.empty:
        raise ValueError(f"no score.json under {results}: score a submission with 'python -m scoring score'")
    table, others = leaderboard(scores, phase, rank_flagged), not_ranked(scores, phase, rank_flagged)
    path = write_leaderboard(table, csv or results / LEADERBOARD_FILE)
    page = path.with_suffix(".html")
    write_bytes(page, render_leaderboard(table, others, report_links(scores, page.parent)).encode())
    return format_leaderboard(table, others), path, page
