"""The pages people look at: one scoring's ``report.html`` and the ``leaderboard.html``.

This module is the public face of the rendering: it turns a score.json record (and the
arrays saved beside it) or a leaderboard table into one self-contained HTML page, and
writes nothing. It owns the Jinja2 environment and the assembly of each page's context;
the pieces come from the modules beside it, which never import this one:

- ``scoring.html.fields``: reading a record: how numbers read (``fmt``, ``short``,
  ``with_interval``) and where intervals are found;
- ``scoring.html.sections``: the report's sections, each a small dict or list of rows;
- ``scoring.html.figures``: the matplotlib figures, as SVG data URIs;
- ``scoring.html.leaderboard``: the leaderboard's ranking groups and rows.

Pages are Jinja2 templates (``scoring/html/templates/``, autoescaped) with inline CSS;
figures are matplotlib SVGs drawn on a bare canvas and inlined as data URIs (each figure
its own document, so ids never clash); the leaderboard's sorting is a few lines of
inline script. Nothing is fetched from the network: no script, font or image.

Participant-facing output carries nothing sealed: a report renders
``scoring.record.public_view`` of its record, the fields ``scoring.record.types``
declares public and nothing else (no run seed, none of the organisers' paths or
machines), and of ``arrays`` only ``epsilons`` is read (never the models' outputs).
Which fields of the record beyond the official score are shown, and under which names,
is in ``scoring.html.sections``.

Public functions: ``render_report``, ``render_leaderboard``, ``report_links`` (the
leaderboard's links from ``collect_scores``' table) and ``inline_frame`` (a report in a
notebook cell); ``fmt`` and ``short`` (numbers as the pages show them) are re-exported
from ``scoring.html.fields``. Writing the files is the caller's: ``report.html`` beside
score.json, ``leaderboard.html`` beside leaderboard.csv.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from scoring.html import fields as html_fields
from scoring.html import figures as html_figures
from scoring.html import leaderboard as html_leaderboard
from scoring.html import sections as html_sections
from scoring.html.fields import fmt, short
from scoring.html.figures import AMBER, BLUE, GREEN, RED
from scoring.record import public_view

__all__ = [
    "REPORT_FILE",
    "LEADERBOARD_HTML",
    "TEMPLATES",
    "render_report",
    "render_leaderboard",
    "report_links",
    "inline_frame",
    "fmt",
    "short",
    "BLUE",
    "GREEN",
    "RED",
    "AMBER",
]

REPORT_FILE = "report.html"
LEADERBOARD_HTML = "leaderboard.html"
TEMPLATES = Path(__file__).resolve().parent / "templates"

_STATUS_TEXT = {
    "scored": "scored",
    "rejected": "rejected: the submission broke a rule (time, memory, processes) and gets no score",
    "failed": "failed: the submission did not produce models that can be scored",
}


# ----------------------------------------------------------------------------------
# Public API.


def render_report(record: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> str:
    """One self-contained HTML page for one scoring.

    Parameters
    ----------
    record : dict[str, Any]
        score.json's record (``scoring.score.score_submission``'s return value), of any
        status: scored, rejected or failed (with no run or a few).
    arrays : dict[str, Any] of name -> np.ndarray, optional
        The arrays written beside it; only ``epsilons`` [|S|] is read (the histogram
        falls back to ``record["epsilons"]["bin_counts"]``). Confidence arrays are never
        shown.

    Returns
    -------
    str
        The page, built from ``scoring.record.public_view(record)``: public fields only.
    """
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict (score.json's record), got {type(record).__name__}")
    arrays = arrays or {}
    public = public_view(record)  # the public fields only: nothing else reaches the page
    status = str(public.get("status") or "unknown")
    runs = [r for r in public.get("runs") or [] if isinstance(r, dict)]
    diagnostics = public.get("diagnostics") if isinstance(public.get("diagnostics"), dict) else {}
    context = {
        "title": html_sections.title(public),
        "record": public,
        "status": status,
        "status_text": _STATUS_TEXT.get(status, status),
        "reason": public.get("reason"),
        "sealed": public.get("sealed"),
        "submission": (public.get("submission") or {}).get("name", "?"),
        "split": public.get("split") or {},
        "N": public.get("N"),
        "n_forget": public.get("n_forget"),
        "headline": html_sections.headline(public),
        "terms": html_sections.term_rows(public),
        "accuracies": html_sections.accuracy_rows(public),
        "ceiling": html_sections.ceiling_section(public),
        "epsilons": html_sections.epsilon_section(public, arrays.get("epsilons")),
        "time": html_sections.time_section(public, runs),
        "runs": html_sections.run_table(runs, diagnostics),
        "accuracy_figure": html_figures.accuracy_figure(public, runs),
        "diagnostics": html_sections.diagnostics_section(diagnostics, len(runs)),
        "auxiliary": html_sections.auxiliary_cards(public.get("auxiliary")),
        "intervals": html_fields.all_intervals(public),
        "identity": html_sections.identity_rows(public),
        "everything": html_sections.flatten({k: v for k, v in public.items() if k != "runs"}),
    }
    return _environment().get_template("report.html").render(**context)


def render_leaderboard(table: pd.DataFrame, not_ranked: pd.DataFrame, links: dict[str, str] | None = None) -> str:
    """A self-contained leaderboard page, sortable by clicking any column header.

    Parameters
    ----------
    table : pandas.DataFrame
        ``scoring.ranking.leaderboard.leaderboard``'s table: rank, dataset, N, submission, sha256
        and ``"<split> <value>"`` columns. Any other column is shown too; a column's
        interval columns (``"<column>_low"`` and ``"<column>_high"``) are shown inside it.
        Rows are grouped by (dataset, N) and by any reference-set column: each group is
        its own ranking.
    not_ranked : pandas.DataFrame
        ``scoring.ranking.leaderboard.not_ranked``: submission, dataset, split, N, status, reason.
    links : dict[str, Any] of key -> href, optional
        Links to each entry's report.html (relative to the page), looked up per split as
        ``"<dataset>/<N>/<team>/<sha256>/<split>"`` for a row with a team (nothing else),
        else ``"<dataset>/<N>/<sha256 or submission>/<split>"``, then
        ``"<sha256 or submission>/<split>"``, then ``"<sha256 or submission>"``; see
        ``report_links``.

    Returns
    -------
    str
        The page. Opening it with ``#sort=<column>`` (``#sort=<column>:desc``) clicks that
        header on load.
    """
    if not isinstance(table, pd.DataFrame) or not isinstance(not_ranked, pd.DataFrame):
        raise TypeError("table and not_ranked must be pandas DataFrames (scoring.ranking.leaderboard's tables)")
    links = dict(links or {})
    groups = html_leaderboard.leaderboard_groups(table, links)
    others = html_leaderboard.not_ranked_rows(not_ranked, links)
    return (
        _environment()
        .get_template("leaderboard.html")
        .render(
            title="Leaderboard",
            groups=groups,
            others=others,
            any_unsealed=html_leaderboard.any_unsealed(table),
            has_private=any(str(c).startswith("private ") for c in table.columns),
            n_entries=int(table["rank"].notna().sum()) if "rank" in table else int(len(table)),
        )
    )


def report_links(
    scores: pd.DataFrame, relative_to: str | os.PathLike[str], *, only_existing: bool = True
) -> dict[str, str]:
    """Links for ``render_leaderboard`` from ``scoring.ranking.leaderboard.collect_scores``'s table.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per score.json, with its folder in ``path``.
    relative_to : path
        The folder the leaderboard page is written to: links are relative to it.
    only_existing : bool
        Leave out folders without a report.html (scores from before the report).

    Returns
    -------
    dict
        ``"<dataset>/<N>/<team>/<sha256[:12]>/<split>"`` for a score with a team, else
        ``"<dataset>/<N>/<sha256[:12]>/<split>"`` and ``"<dataset>/<N>/<submission>/<split>"``
        -> relative href of that score's report.html (the latest score of each).
    """
    links: dict[str, str] = {}
    if scores is None or not len(scores):
        return links
    row: Any  # a named tuple of the table's columns: pandas types each field as any scalar
    for row in scores.sort_values("scored_at").itertuples(index=False):
        report = Path(row.path) / REPORT_FILE
        if only_existing and not report.is_file():
            continue
        href = Path(os.path.relpath(report, Path(relative_to))).as_posix()
        team = getattr(row, "team", None)
        if isinstance(team, str) and team:  # a team's reports, apart from another team's identical file
            links[f"{row.dataset}/{int(row.N)}/{team}/{str(row.submission_sha256)[:12]}/{row.split}"] = href
            continue
        for who in (str(row.submission_sha256)[:12], row.submission):
            links[f"{row.dataset}/{int(row.N)}/{who}/{row.split}"] = href
    return links


def inline_frame(page: str, height: int = 900) -> str:
    """``page`` inside an ``<iframe srcdoc>``: to show a report in a notebook cell, its CSS kept apart.

    ``IPython.display.HTML(inline_frame(render_report(record, arrays)))``. The frame is
    wrapped in a ``<div>``: IPython's ``HTML`` warns about markup that is a bare iframe.
    """
    if not isinstance(height, int) or height < 100:
        raise ValueError(f"height must be an int >= 100 (pixels), got {height!r}")
    return (
        f'<div><iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{height}px;border:0" '
        'sandbox="allow-scripts allow-popups" title="score report"></iframe></div>'
    )


# ----------------------------------------------------------------------------------
# Templates.


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fmt"] = fmt
    environment.filters["short"] = short
    return environment
