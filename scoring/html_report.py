"""The pages people look at: one scoring's ``report.html`` and the ``leaderboard.html``.

This module owns the rendering only: it turns a score.json record (and the arrays saved
beside it) or a leaderboard table into one self-contained HTML page, and writes nothing.
Pages are Jinja2 templates (``scoring/templates/``, autoescaped) with inline CSS;
figures are matplotlib SVGs drawn on a bare canvas and inlined as data URIs (each figure
its own document, so ids never clash); the leaderboard's sorting is a few lines of
inline script. Nothing is fetched from the network: no script, font or image.

What a page never shows (participant-facing output carries nothing sealed): run seeds
(any key with "seed" in its name is dropped before rendering), the organisers' paths
(``path``, ``dir`` and ``*_path`` / ``*_dir`` keys: split folder, reference folder,
submission path), anything named after the organisers or the secret, and the reference
models' outputs (of ``arrays`` only ``epsilons`` is read).

Fields of the record beyond the official score (issue 11) are shown when present, under
whichever of these names they carry, and left out when absent:

- intervals: ``intervals`` {name: [low, high] or {"low", "high"}}, ``<name>_interval``,
  ``<name>_low`` / ``<name>_high``, or a dict with ``low`` and ``high`` under
  ``uncertainty`` (``F`` is also found as ``forgetting_quality``); every dict with
  ``low`` and ``high`` anywhere in the record is listed in the uncertainty section;
- ``ceiling`` (a number or a dict with ``value``, ``low``, ``high``, ``note``),
  ``normalised_score`` (a number, [estimate, low, high] or a dict);
- ``diagnostics``: lists as long as the runs (at its top or under ``per_run``) become
  columns of the run table, ``flags`` (strings "name: text") and true booleans
  (``mixture``, ``identical``...) warnings, other values a list; per-run keys that the
  runs themselves carry are columns too;
- ``auxiliary``: {metric: number or dict}, each metric a card (``mean`` or ``value`` as its
  headline, ``paper`` / ``reference`` as its note, ``better`` beside its name);
- anything else: the collapsible "everything in score.json" table at the end.

Public functions: ``render_report``, ``render_leaderboard``, ``report_links`` (the
leaderboard's links from ``collect_scores``' table) and ``inline_frame`` (a report in a
notebook cell). Writing the files is the caller's: ``report.html`` beside score.json,
``leaderboard.html`` beside leaderboard.csv.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path

import jinja2
import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scoring import metric

REPORT_FILE = "report.html"
LEADERBOARD_HTML = "leaderboard.html"
TEMPLATES = Path(__file__).resolve().parent / "templates"

# Colours shared by the CSS and the figures.
BLUE, GREEN, RED, AMBER = "#2f6fb3", "#1a7f37", "#c2362f", "#9a6700"
_RUN_COLUMNS = ("index", "seconds", "reported_seconds", "retain_accuracy", "test_accuracy", "forget_accuracy")
_RUN_LABELS = {
    "index": "run",
    "seconds": "seconds",
    "reported_seconds": "reported s",
    "retain_accuracy": "retain acc",
    "test_accuracy": "test acc",
    "forget_accuracy": "forget acc",
}
_TERMS = (  # (key, label, what it is, aliases under which an interval may be recorded)
    ("F", "F", "forgetting quality", ("F", "forgetting_quality", "f")),
    ("retain_ratio", "RA_U / RA_R", "retain accuracy ratio", ("retain_ratio", "RA_ratio", "ra_ratio")),
    ("test_ratio", "TA_U / TA_R", "test accuracy ratio", ("test_ratio", "TA_ratio", "ta_ratio")),
)
_ACCURACIES = (
    ("retain", "RA_U", "RA_R"),
    ("test", "TA_U", "TA_R"),
    ("forget", "FA_U", "FA_R"),
)
_FLAG_TEXT = {  # (what, why it matters) for the diagnostics' flags the kit knows
    "mixture": ("the runs fall into two clearly different groups.",
                "F tests each forget example on its own, so a submission that mixes two algorithms across its runs "
                "can score well: read the score with care."),
    "identical": ("every run returned exactly the same outputs.",
                  "A deterministic submission scores F = 0 through the spread rule."),
}
_STATUS_TEXT = {
    "scored": "scored",
    "rejected": "rejected: the submission broke a rule (time, memory, processes) and gets no score",
    "failed": "failed: the submission did not produce models that can be scored",
}


# ----------------------------------------------------------------------------------
# Public API.


def render_report(record: dict, arrays: dict[str, np.ndarray] | None = None) -> str:
    """One self-contained HTML page for one scoring.

    Parameters
    ----------
    record : dict
        score.json's record (``scoring.score.score_submission``'s return value), of any
        status: scored, rejected or failed (with no run or a few).
    arrays : dict of name -> np.ndarray, optional
        The arrays written beside it; only ``epsilons`` [|S|] is read (the histogram
        falls back to ``record["epsilons"]["bin_counts"]``). Confidence arrays are never
        shown.

    Returns
    -------
    str
        The page. Nothing sealed is in it (see the module docstring).
    """
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict (score.json's record), got {type(record).__name__}")
    arrays = arrays or {}
    public = _public(record)
    status = str(public.get("status") or "unknown")
    runs = [r for r in public.get("runs") or [] if isinstance(r, dict)]
    diagnostics = public.get("diagnostics") if isinstance(public.get("diagnostics"), dict) else {}
    context = {
        "title": _title(public),
        "record": public,
        "status": status,
        "status_text": _STATUS_TEXT.get(status, status),
        "reason": public.get("reason"),
        "sealed": public.get("sealed"),
        "submission": (public.get("submission") or {}).get("name", "?"),
        "split": public.get("split") or {},
        "N": public.get("N"),
        "n_forget": public.get("n_forget"),
        "headline": _headline(public),
        "terms": _terms(public),
        "accuracies": _accuracy_rows(public),
        "ceiling": _ceiling(public),
        "epsilons": _epsilon_section(public, arrays.get("epsilons")),
        "time": _time_section(public, runs),
        "runs": _run_table(runs, diagnostics),
        "accuracy_figure": _accuracy_figure(public, runs),
        "diagnostics": _diagnostics(diagnostics, len(runs)),
        "auxiliary": _auxiliary(public.get("auxiliary")),
        "intervals": _all_intervals(public),
        "identity": _identity(public),
        "everything": _flatten({k: v for k, v in public.items() if k != "runs"}),
    }
    return _environment().get_template("report.html").render(**context)


def render_leaderboard(table: pd.DataFrame, not_ranked: pd.DataFrame, links: dict[str, str] | None = None) -> str:
    """A self-contained leaderboard page, sortable by clicking any column header.

    Parameters
    ----------
    table : pandas.DataFrame
        ``scoring.leaderboard.leaderboard``'s table: rank, dataset, N, submission, sha256
        and ``"<split> <value>"`` columns. Any other column is shown too; interval
        columns (``"<column>_low"`` / ``"<column>_high"``, ``"<column> low"`` / ``"high"``
        or ``"<column>_interval"`` holding [low, high]) are shown inside their column.
        Rows are grouped by (dataset, N) and by any reference-set column: each group is
        its own ranking.
    not_ranked : pandas.DataFrame
        ``scoring.leaderboard.not_ranked``: submission, dataset, split, N, status, reason.
    links : dict of key -> href, optional
        Links to each entry's report.html (relative to the page), looked up per split as
        ``"<dataset>/<N>/<sha256 or submission>/<split>"``, then
        ``"<sha256 or submission>/<split>"``, then ``"<sha256 or submission>"``; see
        ``report_links``.

    Returns
    -------
    str
        The page. Opening it with ``#sort=<column>`` (``#sort=<column>:desc``) clicks that
        header on load.
    """
    if not isinstance(table, pd.DataFrame) or not isinstance(not_ranked, pd.DataFrame):
        raise TypeError("table and not_ranked must be pandas DataFrames (scoring.leaderboard's tables)")
    links = dict(links or {})
    groups = _leaderboard_groups(table, links)
    others = _not_ranked_rows(not_ranked, links)
    return _environment().get_template("leaderboard.html").render(
        title="Leaderboard", groups=groups, others=others, any_unsealed=_any_unsealed(table),
        n_entries=int(table["rank"].notna().sum()) if "rank" in table else int(len(table)),
    )


def report_links(scores: pd.DataFrame, relative_to: str | os.PathLike, *, only_existing: bool = True) -> dict[str, str]:
    """Links for ``render_leaderboard`` from ``scoring.leaderboard.collect_scores``'s table.

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
        ``"<dataset>/<N>/<sha256[:12]>/<split>"`` and ``"<dataset>/<N>/<submission>/<split>"``
        -> relative href of that score's report.html (the latest score of each).
    """
    links: dict[str, str] = {}
    if scores is None or not len(scores):
        return links
    for row in scores.sort_values("scored_at").itertuples(index=False):
        report = Path(row.path) / REPORT_FILE
        if only_existing and not report.is_file():
            continue
        href = Path(os.path.relpath(report, Path(relative_to))).as_posix()
        for who in (str(row.submission_sha256)[:12], row.submission):
            links[f"{row.dataset}/{int(row.N)}/{who}/{row.split}"] = href
    return links


def inline_frame(page: str, height: int = 900) -> str:
    """``page`` inside an ``<iframe srcdoc>``: to show a report in a notebook cell, its CSS kept apart.

    ``IPython.display.HTML(inline_frame(render_report(record, arrays)))``.
    """
    if not isinstance(height, int) or height < 100:
        raise ValueError(f"height must be an int >= 100 (pixels), got {height!r}")
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{height}px;border:0" '
        'sandbox="allow-scripts allow-popups" title="score report"></iframe>'
    )


# ----------------------------------------------------------------------------------
# What may be shown.


def _hidden(key) -> bool:
    """Keys that never reach a page: seeds, the organisers' paths, secrets."""
    k = str(key).lower()
    return (
        "seed" in k
        or "secret" in k
        or "organiser" in k
        or "organizer" in k
        or k in {"path", "dir", "directory", "paths", "dirs"}
        or k.endswith(("_path", "_dir", "_paths", "_dirs"))
        or k in {"unlearned_conf", "retrained_conf", "reference_conf", "reference_outputs"}
    )


def _public(value):
    """A deep copy of ``value`` without hidden keys."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not _hidden(k)}
    if isinstance(value, (list, tuple)):
        return [_public(v) for v in value]
    return value


# ----------------------------------------------------------------------------------
# Numbers.


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _finite(value) -> bool:
    return _is_number(value) and math.isfinite(float(value))


def fmt(value, digits: int = 4) -> str:
    """A number as people read it: 4 decimals in [0.001, 10000), else 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10000 else str(int(value))
    if _is_number(value):
        x = float(value)
        if not math.isfinite(x):
            return "–" if math.isnan(x) else ("∞" if x > 0 else "−∞")
        if 1e-3 <= abs(x) < 1e4:
            return f"{x:.{digits}f}"
        return f"{x:.{digits}f}" if x == 0 else f"{x:.{digits}g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 12:
            return f"[{len(value)} values]"
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    return str(value)


def short(value, digits: int = 4) -> str:
    """``fmt`` without trailing zeros (0.5, 50, 0.0752): for lists of facts rather than table columns."""
    text = fmt(value, digits)
    if _is_number(value) and not isinstance(value, (int, np.integer)) and "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _interval_of(value) -> tuple[float, float] | None:
    """(low, high) from [low, high], {"low", "high"} (or lower/upper, ci_low/ci_high); else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_finite(v) for v in value):
        return float(value[0]), float(value[1])
    if isinstance(value, dict):
        for low, high in (("low", "high"), ("lower", "upper"), ("ci_low", "ci_high"), ("lo", "hi")):
            if _finite(value.get(low)) and _finite(value.get(high)):
                return float(value[low]), float(value[high])
        for key in ("interval", "ci", "confidence_interval"):
            if key in value:
                return _interval_of(value[key])
    return None


_NOT_INTERVALS = {"ceiling", "auxiliary", "diagnostics", "time", "sha256", "split", "submission", "references"}


def _level_of(value, record: dict | None = None) -> str:
    """"95%": the interval's own confidence level, else the record's, else the kit's default."""
    level = value.get("confidence_level") if isinstance(value, dict) else None
    if not _finite(level) and record is not None:
        level = record.get("confidence_level")
    return f"{float(level):.0%}" if _finite(level) else "95%"


def _find_interval(record: dict, aliases) -> dict | None:
    """The interval recorded for a term under any of its aliases (see the module doc)."""
    first = ("intervals", "uncertainty", "confidence_intervals")
    others = (k for k, v in record.items() if isinstance(v, dict) and k not in {*first, *_NOT_INTERVALS})
    containers = [record.get(k) for k in (*first, *others)]
    for alias in aliases:
        found = None
        for container in containers:
            if isinstance(container, dict) and alias in container:
                found = container[alias]
                break
        if found is None:
            for suffix in ("_interval", "_ci", " interval"):
                if record.get(alias + suffix) is not None:
                    found = record[alias + suffix]
                    break
        if found is None and _finite(record.get(alias + "_low")) and _finite(record.get(alias + "_high")):
            found = {"low": record[alias + "_low"], "high": record[alias + "_high"]}
        interval = _interval_of(found)
        if interval is not None:
            level = _level_of(found, record)
            return {"low": interval[0], "high": interval[1], "level": level, "text": _interval_text(interval)}
    return None


def _interval_text(interval) -> str:
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"


# ----------------------------------------------------------------------------------
# Report sections.


def _title(record: dict) -> str:
    split = record.get("split") or {}
    name = (record.get("submission") or {}).get("name", "submission")
    return f"{name} on {split.get('dataset', '?')}/{split.get('name', '?')}, N = {record.get('N', '?')}"


def _headline(record: dict) -> dict:
    interval = _find_interval(record, ("score", "final_score"))
    return {"score": fmt(record.get("score")), "interval": interval, "has_score": _finite(record.get("score"))}


def _terms(record: dict) -> list[dict]:
    terms = []
    for key, label, what, aliases in _TERMS:
        value = record.get(key)
        if value is None and key != "F":
            parts = {"retain_ratio": ("RA_U", "RA_R"), "test_ratio": ("TA_U", "TA_R")}[key]
            if _finite(record.get(parts[0])) and _finite(record.get(parts[1])) and record[parts[1]]:
                value = record[parts[0]] / record[parts[1]]
        if value is None:
            continue
        terms.append({"label": label, "what": what, "value": fmt(value), "interval": _find_interval(record, aliases)})
    return terms


def _accuracy_rows(record: dict) -> list[dict]:
    rows = []
    for name, unlearned, retrained in _ACCURACIES:
        if record.get(unlearned) is None and (record.get(retrained) is None or record.get("status") != "scored"):
            continue
        rows.append(
            {
                "name": name,
                "unlearned_key": unlearned,
                "retrained_key": retrained,
                "unlearned": fmt(record.get(unlearned)),
                "retrained": fmt(record.get(retrained)),
                "unlearned_interval": _find_interval(record, (unlearned,)),
                "retrained_interval": _find_interval(record, (retrained,)),
                "ratio": fmt(record[unlearned] / record[retrained])
                if _finite(record.get(unlearned)) and _finite(record.get(retrained)) and record[retrained]
                else "–",
                "scored": name != "forget",
            }
        )
    return rows


def _find(record: dict, *names):
    """The first of ``names`` at the top of the record or one level down."""
    for name in names:
        if record.get(name) is not None:
            return record[name]
    for value in record.values():
        if isinstance(value, dict):
            for name in names:
                if value.get(name) is not None:
                    return value[name]
    return None


def _ceiling(record: dict) -> dict | None:
    raw = _find(record, "ceiling", "estimator_ceiling")
    normalised = _find(record, "normalised_score", "normalized_score", "normalised_F", "normalized_F")
    if raw is None and normalised is None:
        return None
    section = {"value": None, "interval": None, "details": [], "normalised": None, "normalised_interval": None}
    if _finite(raw):
        section["value"] = fmt(raw)
    elif isinstance(raw, dict):
        value = next((raw[k] for k in ("value", "estimate", "F", "mean") if _finite(raw.get(k))), None)
        section["value"] = fmt(value)
        interval = _interval_of(raw)
        if interval:
            section["interval"] = _interval_text(interval)
        section["details"] = [
            (k.replace("_", " "), short(v)) for k, v in raw.items()
            if k not in {"value", "estimate", "low", "high", "interval"} and not isinstance(v, dict)
        ]
    if _finite(normalised):
        section["normalised"] = fmt(normalised)
    elif isinstance(normalised, (list, tuple)) and len(normalised) == 3 and all(_finite(v) for v in normalised):
        section["normalised"] = fmt(normalised[0])
        section["normalised_interval"] = _interval_text(normalised[1:])
    elif isinstance(normalised, dict):
        value = next((normalised[k] for k in ("value", "estimate", "mean") if _finite(normalised.get(k))), None)
        section["normalised"] = fmt(value)
        interval = _interval_of(normalised)
        if interval:
            section["normalised_interval"] = _interval_text(interval)
    if section["normalised_interval"] is None:
        found = _find_interval(record, ("normalised_score", "normalized_score"))
        section["normalised_interval"] = found["text"] if found else None
    return section


def _epsilon_section(record: dict, epsilons) -> dict | None:
    summary = record.get("epsilons") if isinstance(record.get("epsilons"), dict) else {}
    n_models = record.get("N")
    counts = None
    if epsilons is not None and _is_number(n_models) and int(n_models) >= 2:
        counts = metric.epsilon_bin_counts(np.asarray(epsilons, dtype=np.float64), int(n_models))
    elif isinstance(summary.get("bin_counts"), list) and summary["bin_counts"]:
        counts = np.asarray(summary["bin_counts"], dtype=np.int64)
    if counts is None and not summary:
        return None
    facts = [(k.replace("_", " "), _fact(k, v)) for k, v in summary.items() if k not in {"bin_counts"}]
    return {"figure": _epsilon_figure(record, counts) if counts is not None else None, "facts": facts}


def _fact(key: str, value) -> str:
    if key.startswith("share") and _finite(value):
        return f"{float(value):.1%}"
    return short(value)


def _time_section(record: dict, runs: list[dict]) -> dict:
    times = record.get("time") if isinstance(record.get("time"), dict) else {}
    limit = times.get("limit_seconds")
    mean = times.get("charged_mean_seconds", times.get("mean_seconds"))
    within = None
    if _finite(limit) and _finite(mean):
        within = float(mean) <= float(limit)
    stats = [
        (label, short(times.get(key), 3) + " s")
        for key, label in (
            ("mean_seconds", "mean"),
            ("p95_seconds", "95th percentile"),
            ("median_seconds", "median"),
            ("max_seconds", "max"),
            ("charged_mean_seconds", "charged mean (load spread over the runs)"),
            ("load_seconds", "submission's load"),
            ("setup_seconds", "sandbox set-up (not charged)"),
            ("limit_seconds", "limit on the mean"),
            ("hard_kill_seconds", "a single run is killed after"),
            ("reference_mean_training_seconds", "mean retraining time"),
        )
        if times.get(key) is not None
    ]
    seconds = [r["seconds"] for r in runs if _finite(r.get("seconds"))]
    return {
        "limit": short(limit, 3),
        "mean": short(mean, 3),
        "runs_mean": short(times.get("mean_seconds"), 3),
        "within": within,
        "runs_completed": times.get("runs_completed", len(seconds)),
        "rule": times.get("limit_rule"),
        "measured_by": times.get("measured_by"),
        "stats": stats,
        "figure": _time_figure(seconds, times) if seconds else None,
    }


def _per_run_lists(diagnostics: dict, n_runs: int) -> dict[str, list]:
    """Diagnostics with one value per run: lists as long as the runs, at the top or under ``per_run``."""
    found = {}
    for container in (diagnostics, diagnostics.get("per_run") if isinstance(diagnostics.get("per_run"), dict) else {}):
        for key, value in container.items():
            if isinstance(value, list) and len(value) == n_runs and n_runs > 0 and key not in {"flags", "warnings"}:
                found[key] = value
    return found


def _run_table(runs: list[dict], diagnostics: dict) -> dict | None:
    if not runs:
        return None
    columns = [c for c in _RUN_COLUMNS if any(c in r for r in runs)]
    columns += sorted({k for r in runs for k in r} - set(columns))
    per_run = {k: v for k, v in _per_run_lists(diagnostics, len(runs)).items() if k not in columns}
    header = [_RUN_LABELS.get(c, c.replace("_", " ")) for c in columns] + [k.replace("_", " ") for k in per_run]
    rows = []
    for i, run in enumerate(runs):
        cells = [fmt(run.get(c)) for c in columns] + [fmt(v[i]) for v in per_run.values()]
        rows.append(cells)
    return {"header": header, "rows": rows, "folded": len(rows) > 32}


def _diagnostics(diagnostics: dict, n_runs: int) -> dict | None:
    """Warnings (``flags``: strings "name: text", and true booleans) and the other diagnostics as facts."""
    if not diagnostics:
        return None
    flags, facts = [], []
    for text in diagnostics.get("flags") or diagnostics.get("warnings") or []:
        name, _, rest = str(text).partition(": ")
        name, text = (name, rest) if rest else ("warning", name)
        flags.append({"name": name, "text": text, "why": _FLAG_TEXT.get(name.replace(" ", "_"), (None, None))[1]})
    named = {flag["name"] for flag in flags}
    per_run = _per_run_lists(diagnostics, n_runs)
    for key, value in diagnostics.items():
        if key in {"flags", "warnings", "per_run"} or key in per_run:
            continue  # above, or columns of the run table
        if isinstance(value, (bool, np.bool_)) and value and key.replace("_", " ") not in named:
            what, why = _FLAG_TEXT.get(key, ("flagged.", None))
            flags.append({"name": key.replace("_", " "), "text": what, "why": why})
        if isinstance(value, dict):
            facts += [(f"{key} {k}".replace("_", " "), short(v)) for k, v in value.items()]
        else:
            facts.append((key.replace("_", " "), short(value)))
    return {"flags": flags, "facts": facts}


_HEADLINE_KEYS = ("value", "mean", "estimate", "balanced_accuracy", "accuracy")
_NOTE_KEYS = ("reference", "paper", "citation", "note", "description")


def _auxiliary(auxiliary) -> list[dict]:
    if not isinstance(auxiliary, dict):
        return []
    cards = []
    for name, value in auxiliary.items():
        if _is_number(value) or value is None:
            cards.append({"name": name, "value": fmt(value), "facts": [], "note": None})
            continue
        if not isinstance(value, dict):
            cards.append({"name": name, "value": fmt(value), "facts": [], "note": None})
            continue
        headline_key = next((k for k in _HEADLINE_KEYS if _finite(value.get(k))), None)
        note = next((str(value[k]) for k in _NOTE_KEYS if value.get(k)), None)
        better = value.get("better")
        facts = []
        for key, item in value.items():
            if key == headline_key or key in _NOTE_KEYS or key == "better":
                continue
            if isinstance(item, dict):
                facts += [(f"{key} {k}".replace("_", " "), short(v)) for k, v in sorted(item.items(), key=_numeric_key)]
            else:
                facts.append((key.replace("_", " "), short(item)))
        cards.append(
            {
                "name": name,
                "value": fmt(value.get(headline_key)) if headline_key else None,
                "value_label": " · ".join(x for x in (headline_key, f"{better} is better" if better else None) if x),
                "interval": (_interval_text(_interval_of(value)) if _interval_of(value) else None),
                "facts": facts,
                "note": note,
            }
        )
    return cards


def _numeric_key(item) -> tuple:
    """Sort percentiles {"5", "25", "95"} as numbers, other keys as they come."""
    try:
        return (0, float(item[0]))
    except (TypeError, ValueError):
        return (1, 0.0)


def _all_intervals(record: dict) -> list[dict]:
    """Every interval recorded anywhere: a dict with low and high, or a *_interval pair."""
    rows = []

    def walk(value, path):
        if isinstance(value, dict):
            interval = _interval_of(value) if any(k in value for k in ("low", "lower", "ci_low", "lo")) else None
            if interval and path:
                estimate = next((value[k] for k in ("estimate", "value", "mean") if _finite(value.get(k))), None)
                details = ", ".join(
                    f"{k.replace('_', ' ')} {short(value[k])}"
                    for k in ("method", "confidence_level", "n_resamples", "n_groups", "random_state", "n_models", "note")
                    if value.get(k) is not None
                )
                rows.append({"name": " › ".join(path), "estimate": fmt(estimate), "low": fmt(interval[0]),
                             "high": fmt(interval[1]), "details": details})
            for key, item in value.items():
                if key in {"low", "high", "lower", "upper"}:
                    continue
                if isinstance(item, (list, tuple)) and str(key).endswith(("_interval", "_ci")) and _interval_of(item):
                    low, high = _interval_of(item)
                    rows.append({"name": " › ".join([*path, str(key)]), "estimate": "", "low": fmt(low),
                                 "high": fmt(high), "details": ""})
                elif isinstance(item, (dict, list)):
                    walk(item, [*path, str(key)])
        elif isinstance(value, list) and len(value) <= 64:
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    walk(item, [*path, str(i)])

    intervals = record.get("intervals")
    if isinstance(intervals, dict):
        # how: the score's and F's method (``uncertainty``), the accuracies' (``accuracy_intervals``), where recorded
        methods = {k: v.get("method") for k, v in record.items() if isinstance(v, dict) and v.get("method")}
        for name, value in intervals.items():
            interval = _interval_of(value)
            if interval and not isinstance(value, dict):
                accuracy = name[:3] in {"RA_", "TA_", "FA_"} or "accuracy" in name
                how = methods.get("accuracy_intervals" if accuracy else "uncertainty") or ""
                rows.append({"name": f"intervals › {name}", "estimate": fmt(record.get(name)), "low": fmt(interval[0]),
                             "high": fmt(interval[1]), "details": how})
    walk({k: v for k, v in record.items() if k not in {"runs"}}, [])
    return rows


def _identity(record: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in (record.get("sha256") or {}).items():
        rows.append((f"sha256 of the {key.replace('_', ' ')}", str(value)))
    refs = record.get("references") or {}
    for key in ("n_used", "n_models", "n_available"):
        if refs.get(key) is not None:
            rows.append((f"reference models ({key.replace('_', ' ')})", fmt(refs[key])))
    for key, label in (
        ("kit_version", "kit version"),
        ("torch_version", "torch version"),
        ("device", "device"),
        ("torch_threads", "torch threads"),
        ("scored_at", "scored at (UTC)"),
    ):
        if record.get(key) is not None:
            rows.append((label, str(record[key])))
    return rows


def _flatten(value, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, text) for every leaf: the collapsible "everything in score.json" table."""
    rows = []
    if isinstance(value, dict):
        for key, item in value.items():
            rows += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value) and len(value) <= 16:
        for i, item in enumerate(value):
            rows += _flatten(item, f"{prefix}[{i}]")
    else:
        rows.append((prefix, short(value)))
    return rows


# ----------------------------------------------------------------------------------
# Figures: matplotlib on a bare canvas (no pyplot), inlined as SVG data URIs.


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _style(axes) -> None:
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


def _epsilon_figure(record: dict, counts: np.ndarray) -> str:
    n = len(counts) - 1  # the last bin holds everything beyond the last worth-points bin
    labels = [f"{metric.BIN_WIDTH * k:g}–{metric.BIN_WIDTH * (k + 1):g}" for k in range(n)] + ["beyond\n(50)"]
    points = [2.0**-k for k in range(n)] + [0.0]
    figure = _figure(8.5, 2.8)
    axes = figure.subplots()
    colours = [(0.18, 0.44, 0.70, 0.3 + 0.7 * p) if p > 0 else RED for p in points]
    bars = axes.bar(range(len(counts)), counts, color=colours, width=0.8)
    axes.bar_label(bars, labels=[str(int(c)) if c else "" for c in counts], fontsize=8, color="#57606a", padding=2)
    axes.set_xticks(range(len(counts)), labels, fontsize=8, rotation=30 if len(counts) > 8 else 0)
    axes.set_xlabel(r"per-example epsilon (bin k is worth $2^{-k}$ points; beyond the last bin is worth 0)", fontsize=9)
    axes.set_ylabel("forget examples", fontsize=9)
    axes.margins(y=0.15)
    _style(axes)
    return _svg(figure)


def _time_figure(seconds: list[float], times: dict) -> str:
    seconds = np.asarray(seconds, dtype=np.float64)
    limit = times.get("limit_seconds")
    # the recorded statistics where there are (the text beside the figure quotes them)
    mean = float(times["mean_seconds"]) if _finite(times.get("mean_seconds")) else float(seconds.mean())
    p95 = float(times["p95_seconds"]) if _finite(times.get("p95_seconds")) else float(np.percentile(seconds, 95))
    figure = _figure(8.5, 2.8)
    axes = figure.subplots()
    x = np.arange(len(seconds))
    over = np.array([_finite(limit) and s > float(limit) for s in seconds])
    colours = np.where(over, AMBER, BLUE)
    if len(seconds) <= 64:
        axes.bar(x, seconds, color=colours, width=0.75, alpha=0.85)
    else:
        axes.scatter(x, seconds, s=8, c=colours, alpha=0.8)
    axes.axhline(mean, color="#24292f", lw=1.2, label=f"mean {mean:.3g} s")
    axes.axhline(p95, color="#24292f", lw=1, ls=":", label=f"95th percentile {p95:.3g} s")
    top = max(float(seconds.max()), p95)
    if _finite(limit):
        axes.axhline(float(limit), color=RED, lw=1.6, ls="--", label=f"limit on the mean {float(limit):.3g} s")
        if float(limit) <= 3 * top:
            top = max(top, float(limit))
        else:  # a generous limit would flatten every bar: mark it with an arrow instead
            axes.annotate(f"limit {float(limit):.3g} s: far above (off the chart) ↑", xy=(0.01, 0.97),
                          xycoords="axes fraction", ha="left", va="top", fontsize=8, color=RED)
    axes.set_ylim(0, top * 1.18)
    axes.set_xlabel("run", fontsize=9)
    axes.set_ylabel("seconds", fontsize=9)
    if len(seconds) <= 32:
        axes.set_xticks(x)
    figure.legend(fontsize=8, frameon=False, loc="outside upper right", ncols=3)
    _style(axes)
    return _svg(figure)


def _accuracy_figure(record: dict, runs: list[dict]) -> str | None:
    columns = [(name, f"{name}_accuracy", retrained) for name, _, retrained in _ACCURACIES]
    columns = [c for c in columns if any(_finite(r.get(c[1])) for r in runs)]
    if not columns:
        return None
    figure = _figure(8.5, 2.8)
    axes = figure.subplots()
    rng = np.random.default_rng(0)  # jitter only: the same picture every time
    for i, (name, key, retrained) in enumerate(columns):
        values = np.array([r[key] for r in runs if _finite(r.get(key))], dtype=np.float64)
        jitter = rng.uniform(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(len(values))
        axes.scatter(i + jitter, values, s=22 if len(values) <= 64 else 7, color=BLUE,
                     alpha=0.75 if len(values) <= 64 else 0.45, zorder=3, linewidths=0,
                     label="unlearned runs" if i == 0 else None)
        if _finite(record.get(retrained)):
            axes.hlines(float(record[retrained]), i - 0.32, i + 0.32, color=GREEN, lw=2.2, zorder=2,
                        label="retrained models' mean" if i == 0 else None)
    axes.set_xticks(range(len(columns)), [f"{name} accuracy" for name, _, _ in columns], fontsize=9)
    axes.set_xlim(-0.6, len(columns) - 0.4)
    figure.legend(fontsize=8, frameon=False, loc="outside upper right", ncols=2)
    _style(axes)
    return _svg(figure)


# ----------------------------------------------------------------------------------
# Leaderboard.


_KEY_COLUMNS = ("rank", "dataset", "N", "submission", "sha256")
_GROUP_EXTRA = ("references", "reference_set", "reference_sha256", "refs", "n_forget")
_VALUE_LABELS = {"mean_run_seconds": "run s", "sealed": "sealed"}
_SPLIT_ORDER = {"public": 0, "private": 1}


def _companions(column: str, columns: list[str]) -> tuple[str | None, str | None, str | None]:
    """(low column, high column, interval column) that belong to ``column``, where present."""
    low = next((c for c in (f"{column}_low", f"{column} low", f"{column}_lower", f"{column} lower",
                            f"{column}_ci_low") if c in columns), None)
    high = next((c for c in (f"{column}_high", f"{column} high", f"{column}_upper", f"{column} upper",
                             f"{column}_ci_high") if c in columns), None)
    pair = next((c for c in (f"{column}_interval", f"{column} interval", f"{column}_ci", f"{column} ci")
                 if c in columns), None)
    return (low, high, None) if low and high else (None, None, pair)


def _splits_of(columns: list[str]) -> list[str]:
    splits = {c.split(" ", 1)[0] for c in columns if " " in c and c not in _KEY_COLUMNS}
    splits = {s for s in splits if any(c == f"{s} score" for c in columns)} or splits
    return sorted(splits, key=lambda s: (_SPLIT_ORDER.get(s, 2), s))


def _leaderboard_groups(table: pd.DataFrame, links: dict) -> list[dict]:
    table = table.copy()
    table.columns = [str(c) for c in table.columns]
    table = table[[c for c in table.columns if not any(_hidden(part) for part in (c, c.split(" ", 1)[-1]))]]
    columns = list(table.columns)
    splits = _splits_of(columns)
    consumed = set()
    specs = []  # one per shown column: key, label, split, source columns
    for column in columns:
        if column in consumed or column in {"dataset", "N", "group"}:
            continue
        low, high, pair = _companions(column, columns)
        consumed |= {c for c in (low, high, pair) if c}
        split = next((s for s in splits if column.startswith(s + " ")), None)
        value = column[len(split) + 1 :] if split else column
        label = _VALUE_LABELS.get(value, value if value != value.lower() else value.replace("_", " "))
        numeric = column in table and any(_is_number(v) and not isinstance(v, (bool, np.bool_)) for v in table[column])
        specs.append({"key": column, "label": label, "split": split, "numeric": numeric,
                      "value": value, "low": low, "high": high, "pair": pair})
    specs = [s for s in specs if s["key"] not in consumed and s["key"] != "sha256"]  # the hash goes under the name
    # "within noise of the entry above" belongs beside the rank, as the terminal table has it
    overlap = [s for s in specs if "overlap" in s["value"] and not s["split"]]
    for spec in overlap:
        spec["label"] = "≈"
    rest = [s for s in specs if s not in overlap]
    at = next((i + 1 for i, s in enumerate(rest) if s["key"] == "rank"), 0)
    specs = rest[:at] + overlap + rest[at:]
    # scoring.leaderboard names each ranking group (dataset, N, reference set) in ``group``
    extra = ("group",) if "group" in columns else _GROUP_EXTRA
    keys = [k for k in ("dataset", "N", *extra) if k in columns]
    groups = []
    grouped = table.groupby(keys, sort=False, dropna=False) if keys else [((), table)]
    for key, frame in grouped:
        key = key if isinstance(key, tuple) else (key,)
        names = dict(zip(keys, key))
        records = frame.to_dict("records")
        dataset, n_models = records[0].get("dataset", "all"), _int_text(records[0].get("N", "?"))
        heading = f"{dataset} · N = {n_models}"
        details = [f"{k} {v}" for k, v in names.items() if k not in {"dataset", "N", "group"}]
        if "group" in names and _present(names["group"]):
            details = [str(names["group"]).removeprefix(f"{dataset}, N = {n_models}").lstrip(", ")]
        # a reference set that is the same for the whole group is said once, above the table
        shown = []
        for spec in specs:
            values = {str(v) for v in frame[spec["key"]] if _present(v)}
            if spec["value"] == "references" and not values:
                continue
            if spec["value"] == "references" and len(values) == 1 and frame[spec["key"]].notna().all():
                text = f"{spec['split'] + ' ' if spec['split'] else ''}references {values.pop()}"
                if not any(text in d for d in details):
                    details.append(text)
                continue
            shown.append(dict(spec))
        for before, spec in zip([None, *shown], shown):
            spec["first_of_split"] = bool(spec["split"]) and (before is None or before["split"] != spec["split"])
        rows = [_leaderboard_row(row, shown, splits, links) for row in records]
        overlaps = any(cell.get("kind") == "overlap" for row in rows for cell in row["cells"])
        detail = " · ".join(d for d in details if d)
        groups.append({"heading": heading, "detail": detail, "rows": rows, "header": _header(shown, splits),
                       "overlaps": overlaps,
                       "specs": shown, "anchor": _slug(f"{heading} {detail}")})
    return groups


def _header(specs: list[dict], splits: list[str]) -> dict:
    """Two header rows: split groups (colspan) over the value names."""
    top = []
    for spec in specs:
        if top and top[-1]["split"] == spec["split"]:
            top[-1]["span"] += 1
        else:
            top.append({"split": spec["split"], "span": 1})
    return {"top": top, "bottom": specs, "two_rows": bool(splits)}


def _leaderboard_row(row: dict, specs: list[dict], splits: list[str], links: dict) -> dict:
    who = [str(row[k]) for k in ("sha256", "submission") if row.get(k) is not None]
    prefix = f"{row.get('dataset')}/{_int_text(row.get('N'))}"

    def link_for(split):
        candidates = []
        for w in who:
            if split:
                candidates += [f"{prefix}/{w}/{split}", f"{w}/{split}"]
            candidates.append(w)
        return next((links[c] for c in candidates if c in links), None)

    cells = []
    for spec in specs:
        value = row.get(spec["key"])
        cell = _cell(spec, value, row)
        if spec["value"] == "score" and spec["split"]:
            cell["link"] = link_for(spec["split"]) if _present(value) else None
        if spec["key"] == "submission":
            cell["link"] = link_for(None) or next((link_for(s) for s in splits if link_for(s)), None)
        cells.append(cell)
    sha = row.get("sha256")
    return {"cells": cells, "sha256": str(sha) if _present(sha) else None}


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA


def _int_text(value) -> str:
    return str(int(value)) if _is_number(value) and float(value).is_integer() else str(value)


def _cell(spec: dict, value, row: dict) -> dict:
    if not _present(value):
        return {"text": "–", "sort": "", "kind": "missing"}
    if spec["value"] == "sealed" or isinstance(value, (bool, np.bool_)):
        truth = bool(value)
        if spec["value"] == "sealed":
            word = "sealed" if truth else "unsealed"
            return {"text": word, "sort": int(truth), "kind": word}
        if "overlap" in spec["value"]:
            return {"text": "≈" if truth else "", "sort": int(truth), "kind": "overlap" if truth else "plain",
                    "title": "its interval overlaps the entry ranked above: the difference is within noise"}
        return {"text": "yes" if truth else "no", "sort": int(truth), "kind": "plain"}
    if _is_number(value):
        digits = 2 if "seconds" in spec["value"] else 4
        cell = {"text": fmt(value, digits), "sort": float(value), "kind": "number"}
        if spec["key"] == "rank" or spec["value"] == "N":
            cell["text"] = _int_text(value)
        interval = None
        if spec["low"] and spec["high"] and _present(row.get(spec["low"])) and _present(row.get(spec["high"])):
            interval = (row[spec["low"]], row[spec["high"]])
        elif spec["pair"]:
            interval = _interval_of(row.get(spec["pair"])) or _parse_interval(row.get(spec["pair"]))
        if interval is not None:
            cell["interval"] = f"[{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"
        return cell
    text = str(value)
    mono = spec["key"] == "sha256" or "sha256" in spec["value"] or spec["value"] == "references"
    return {"text": text, "sort": text.lower(), "kind": "mono" if mono else "text"}


def _parse_interval(value):
    if not isinstance(value, str):
        return None
    parts = value.strip().strip("[]()").split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        return None
    return low, high


def _not_ranked_rows(frame: pd.DataFrame, links: dict) -> list[dict]:
    rows = []
    for row in frame.to_dict("records"):
        split, who = row.get("split"), str(row.get("submission"))
        candidates = [f"{row.get('dataset')}/{_int_text(row.get('N'))}/{who}/{split}", f"{who}/{split}", who]
        rows.append(
            {
                "submission": who,
                "where": f"{row.get('dataset', '?')}/{split} · N = {_int_text(row.get('N'))}",
                "status": str(row.get("status")),
                "reason": "" if not _present(row.get("reason")) else str(row.get("reason")),
                "link": next((links[c] for c in candidates if c in links), None),
            }
        )
    return rows


def _any_unsealed(table: pd.DataFrame) -> bool:
    columns = [c for c in table.columns if str(c).endswith("sealed")]
    return any(_present(v) and not bool(v) for c in columns for v in table[c])


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


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
