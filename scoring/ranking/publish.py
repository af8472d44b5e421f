"""What is published: a phase's leaderboard and the ranked entries' reports, built from an allow-list.

A score folder holds the participant's files beside ``organisers/`` (reference outputs,
with a secret the run seeds), and the organisers' own leaderboard links into those
folders: neither is ever handed out. ``publish`` builds a separate tree from what is
named here and nothing else, so that a file or column added to a score folder later
stays unpublished until someone adds it to these lists::

    OUT/
      leaderboard.csv            PUBLIC_COLUMNS of the phase's table (``scoring.ranking.leaderboard``)
      leaderboard.html           the same; it links only into reports/ below
      reports/<row>-<split>.html the report.html of the score counted on the table's row <row> (001: the first)

Not-ranked entries show their team, split and status, never their reason (it can quote
the submission's own output: it is the team's, in its report).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

from scoring.html.pages import render_leaderboard, report_links
from scoring.ranking.leaderboard import LEADERBOARD_FILE, collect_scores, leaderboard, not_ranked
from starter_kit.atomic import staged_directory, write_bytes

PUBLIC_KEYS = ("rank", "group", "team", "dataset", "N", "sha256", "entries", "overlaps_above")
PUBLIC_VALUES = (
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
PUBLIC_NOT_RANKED = ("team", "sha256", "dataset", "split", "N", "status")
PUBLISHED = (LEADERBOARD_FILE, "leaderboard.html", "reports")  # all that OUT ever holds
REPORTS = "reports"


def public_columns(columns: Iterable[str]) -> list[str]:
    """The columns of a leaderboard table that may be published, in their order."""
    return [c for c in columns if c in PUBLIC_KEYS or (" " in c and c.split(" ", 1)[1] in PUBLIC_VALUES)]


def publish(
    results: str | os.PathLike[str], out: str | os.PathLike[str], phase: str, rank_flagged: bool = False
) -> dict[str, Any]:
    """Write ``out`` (layout above) from the scores under ``results`` for ``phase``; say what was written.

    Returns {"entries": ranked rows, "reports": reports copied, "files": OUT's top-level
    names}. Raises ValueError when there is no score to publish, and FileExistsError
    when ``out`` holds anything but an earlier publish (it is replaced as a whole).
    """
    results, out = Path(results), Path(out)
    scores = collect_scores(results)
    if scores.empty:
        raise ValueError(f"no score.json under {results}: nothing to publish")
    _check_out(out, results)
    table, others = leaderboard(scores, phase, rank_flagged), not_ranked(scores, phase, rank_flagged)
    sources = {key: results / href for key, href in report_links(scores, results).items()}
    splits = [c[: -len(" score")] for c in table.columns if c.endswith(" score")]
    with staged_directory(out, replace=True) as staging:
        links: dict[str, str] = {}
        for row_number, row in enumerate(table.to_dict("records"), start=1):  # as a reader counts the rows
            for split in splits:
                key = _link_key(row, split)
                if key in sources and row.get(f"{split} score") == row.get(f"{split} score"):  # not NaN
                    links[key] = f"{REPORTS}/{row_number:03d}-{split}.html"
                    write_bytes(staging / links[key], sources[key].read_bytes())
        public = table[public_columns(table.columns)]
        hidden = others[[c for c in others.columns if c in PUBLIC_NOT_RANKED]].assign(submission="", reason="")
        write_bytes(staging / LEADERBOARD_FILE, public.to_csv(index=False).encode())
        write_bytes(staging / "leaderboard.html", render_leaderboard(public, hidden, links).encode())
        files = sorted(p.name for p in staging.iterdir())
    return {
        "entries": int(table["rank"].notna().sum()) if "rank" in table else 0,
        "reports": len(links),
        "files": files,
    }


def _link_key(row: Mapping[Hashable, Any], split: str) -> str:
    """The key ``report_links`` gives the score a row counts on ``split`` (``scoring.html.pages``)."""
    who = f"{row['team']}/{row['sha256']}" if isinstance(row.get("team"), str) else row["sha256"]
    return f"{row['dataset']}/{int(row['N'])}/{who}/{split}"


def _check_out(out: Path, results: Path) -> None:
    """OUT may be new, empty or an earlier publish; never the results or a folder holding them."""
    if results.resolve() == out.resolve() or out.resolve() in results.resolve().parents:
        raise FileExistsError(f"{out} holds the results {results}: choose a --out outside them")
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory: choose another --out")
    names = {p.name for p in out.iterdir()}
    if names and ("leaderboard.html" not in names or not names <= set(PUBLISHED)):
        raise FileExistsError(
            f"{out} holds other files than a publish "
            f"({', '.join(sorted(names - set(PUBLISHED))[:3]) or 'no leaderboard.html'}): "
            "choose a new --out folder; it is replaced as a whole on every publish"
        )
