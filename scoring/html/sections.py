"""The sections of ``report.html``: each a small dict or list of rows, built from a public record.

This module owns what the report says about one scoring, section by section: the
headline score, the terms, the accuracies, the ceiling, the epsilons, the run times, the
run table, the diagnostics, the auxiliary metrics, the identity (hashes, versions) and
the "everything in score.json" table. ``scoring.html.pages`` assembles them into the
page's context; the records reach them as their public view
(``scoring.record.public_view``), and text is formatted here (``fmt``, ``short``)
so that the templates only lay it out.

Fields of the record beyond the official score (issue 11) are shown when present, under
whichever of these names they carry, and left out when absent:

- intervals: ``intervals`` {name: [low, high] or {"low", "high"}}, ``<name>_interval``,
  ``<name>_low`` / ``<name>_high``, or a dict with ``low`` and ``high`` under
  ``uncertainty`` (``F`` is also found as ``forgetting_quality``); every dict with
  ``low`` and ``high`` anywhere in the record is listed in the uncertainty section
  (``scoring.html.fields`` finds them);
- ``ceiling`` (a number or a dict with ``value``, ``low``, ``high``, ``n_models``, ``note``),
  ``normalised_score`` (a number, its interval in ``intervals``; None with
  ``normalised_score_note`` where the ceiling was measured at another N); ``intervals.note``
  where the intervals are only approximate (too few models): under the score, and a ``*`` on
  each interval of the score card;
- ``diagnostics``: lists as long as the runs (at its top or under ``per_run``) become
  columns of the run table, ``flags`` (strings "name: text") and true booleans
  (``mixture``, ``identical``...) warnings, other values a list; per-run keys that the
  runs themselves carry are columns too;
- ``auxiliary``: {metric: number or dict}, each metric a card (``mean`` or ``value`` as its
  headline, ``paper`` / ``reference`` as its note, ``better`` beside its name);
- anything else: the collapsible "everything in score.json" table at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scoring.html.fields import (
    ACCURACIES,
    find_interval,
    fmt,
    interval_of,
    interval_text,
    is_finite,
    is_number,
    short,
)
from scoring.html.figures import epsilon_figure, time_figure
from scoring.metric import forgetting as metric

_RUN_COLUMNS = ("index", "seconds", "reported_seconds", "retain_accuracy", "test_accuracy", "forget_accuracy")
_RUN_LABELS = {
    "index": "run",
    "seconds": "seconds",
    "reported_seconds": "reported s",
    "retain_accuracy": "retain acc",
    "test_accuracy": "test acc",
    "forget_accuracy": "forget acc",
}
_TERMS = (  # (key, label, what it is); an interval where score.json's ``intervals`` has one
    ("F", "F", "forgetting quality"),
    ("retain_ratio", "RA_U / RA_R", "retain accuracy ratio"),
    ("test_ratio", "TA_U / TA_R", "test accuracy ratio"),
)
_FLAG_TEXT = {  # (what, why it matters) for the diagnostics' flags the kit knows
    "mixture": (
        "the runs fall into two clearly different groups.",
        "F tests each forget example on its own, so a submission that mixes two algorithms across its runs "
        "can score well: read the score with care.",
    ),
    "dependence": (
        "some runs are closer to one another than independent runs are.",
        "The score compares N independent models with N retrained ones; runs that share work (one retraining "
        "handed out as changed copies) break that, so the leaderboard keeps the score off the ranking unless the "
        "organisers rank it anyway (scoring.assess.dependence).",
    ),
    "duplicates": (
        "groups of runs returned byte-identical outputs.",
        "Independent runs never coincide: one of the dependence tests (see dependence).",
    ),
    "identical": (
        "every run returned exactly the same outputs.",
        "A deterministic submission scores F = 0 through the spread rule.",
    ),
}


def title(record: dict[str, Any]) -> str:
    """The page's title: submission, dataset/split and N."""
    split = record.get("split") or {}
    name = (record.get("submission") or {}).get("name", "submission")
    return f"{name} on {split.get('dataset', '?')}/{split.get('name', '?')}, N = {record.get('N', '?')}"


def headline(record: dict[str, Any]) -> dict[str, Any]:
    """The official score and its interval, where recorded, with why that interval is approximate, where it is."""
    interval = find_interval(record, "score")
    note = (record.get("intervals") or {}).get("note")
    shared = ((record.get("diagnostics") or {}).get("dependence") or {}).get("reason")
    return {
        "score": fmt(record.get("score")),
        "interval": interval,
        "interval_note": note if interval and isinstance(note, str) else None,
        "has_score": is_finite(record.get("score")),
        "dependence": shared,  # runs that share work: the leaderboard keeps the score off the ranking
    }


def term_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The score's terms (F and the accuracy ratios), each with its interval where recorded."""
    terms = []
    for key, label, what in _TERMS:
        value = record.get(key)
        if value is None and key != "F":
            parts = {"retain_ratio": ("RA_U", "RA_R"), "test_ratio": ("TA_U", "TA_R")}[key]
            if is_finite(record.get(parts[0])) and is_finite(record.get(parts[1])) and record[parts[1]]:
                value = record[parts[0]] / record[parts[1]]
        if value is None:
            continue
        terms.append({"label": label, "what": what, "value": fmt(value), "interval": find_interval(record, key)})
    return terms


def accuracy_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Retain, test and forget accuracy: unlearned against retrained, and their ratio."""
    rows = []
    for name, unlearned, retrained in ACCURACIES:
        if record.get(unlearned) is None and (record.get(retrained) is None or record.get("status") != "scored"):
            continue
        rows.append(
            {
                "name": name,
                "unlearned_key": unlearned,
                "retrained_key": retrained,
                "unlearned": fmt(record.get(unlearned)),
                "retrained": fmt(record.get(retrained)),
                "unlearned_interval": find_interval(record, unlearned),
                "retrained_interval": find_interval(record, retrained),
                "ratio": fmt(record[unlearned] / record[retrained])
                if is_finite(record.get(unlearned)) and is_finite(record.get(retrained)) and record[retrained]
                else "–",
                "scored": name != "forget",
            }
        )
    return rows


def ceiling_section(record: dict[str, Any]) -> dict[str, Any] | None:
    """The estimator's ceiling and the normalised score, as ``scoring.record`` types them; None where not recorded."""
    raw = record.get("ceiling")
    normalised = record.get("normalised_score")
    if not isinstance(raw, dict) and not is_finite(normalised):
        return None
    section: dict[str, Any] = {
        "value": None,
        "interval": None,
        "details": [],
        "normalised": fmt(normalised) if is_finite(normalised) else None,
        "normalised_interval": None,
        "n_models": None,
        "normalised_note": record.get("normalised_score_note"),
    }
    if isinstance(raw, dict):
        section["n_models"] = raw.get("n_models")
        section["value"] = fmt(raw["value"]) if is_finite(raw.get("value")) else None
        interval = interval_of(raw)
        if interval:
            section["interval"] = interval_text(interval)
        section["details"] = [
            (k.replace("_", " "), short(v))
            for k, v in raw.items()
            if k not in {"value", "low", "high"} and not isinstance(v, dict)
        ]
    found = find_interval(record, "normalised_score")
    section["normalised_interval"] = found["text"] if found else None
    return section


def epsilon_section(record: dict[str, Any], epsilons: ArrayLike | None) -> dict[str, Any] | None:
    """The epsilon histogram (from ``epsilons`` [|S|], else the recorded bin counts) and its summary."""
    recorded = record.get("epsilons")
    summary: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    n_models = record.get("N")
    counts: NDArray[np.int64] | None = None
    if epsilons is not None and is_number(n_models) and int(n_models) >= 2:
        counts = metric.epsilon_bin_counts(np.asarray(epsilons, dtype=np.float64), int(n_models))
    elif isinstance(summary.get("bin_counts"), list) and summary["bin_counts"]:
        counts = np.asarray(summary["bin_counts"], dtype=np.int64)
    if counts is None and not summary:
        return None
    facts = [(k.replace("_", " "), _fact(k, v)) for k, v in summary.items() if k not in {"bin_counts"}]
    return {"figure": epsilon_figure(record, counts) if counts is not None else None, "facts": facts}


def _fact(key: str, value: object) -> str:
    if key.startswith("share") and is_finite(value):
        return f"{float(value):.1%}"
    return short(value)


def time_section(record: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run times against the limit: the verdict, the recorded statistics and the figure."""
    recorded = record.get("time")
    times: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    limit = times.get("limit_seconds")
    mean = times.get("charged_mean_seconds", times.get("mean_seconds"))
    within = None
    if is_finite(limit) and is_finite(mean):
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
            ("alone_training_seconds", "retraining one model alone (the limit's basis)"),
            ("reference_mean_training_seconds", "mean training time of the references as timed"),
        )
        if times.get(key) is not None
    ]
    seconds = [r["seconds"] for r in runs if is_finite(r.get("seconds"))]
    return {
        "limit": short(limit, 3),
        "mean": short(mean, 3),
        "runs_mean": short(times.get("mean_seconds"), 3),
        "within": within,
        "runs_completed": times.get("runs_completed", len(seconds)),
        "rule": times.get("limit_rule"),
        "measured_by": times.get("measured_by"),
        "stats": stats,
        "figure": time_figure(seconds, times) if seconds else None,
    }


def _per_run_lists(diagnostics: dict[str, Any], n_runs: int) -> dict[str, list[Any]]:
    """Diagnostics with one value per run: lists as long as the runs, at the top or under ``per_run``."""
    found: dict[str, list[Any]] = {}
    per_run = diagnostics.get("per_run")
    for container in (diagnostics, per_run if isinstance(per_run, dict) else {}):
        for key, value in container.items():
            if isinstance(value, list) and len(value) == n_runs and n_runs > 0 and key not in {"flags", "warnings"}:
                found[key] = value
    return found


def run_table(runs: list[dict[str, Any]], diagnostics: dict[str, Any]) -> dict[str, Any] | None:
    """One row per run: the runs' own keys, then the diagnostics' per-run lists."""
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


def diagnostics_section(diagnostics: dict[str, Any], n_runs: int) -> dict[str, Any] | None:
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


def auxiliary_cards(auxiliary: object) -> list[dict[str, Any]]:
    """One card per auxiliary metric: its headline value, interval, facts and note."""
    if not isinstance(auxiliary, dict):
        return []
    cards = []
    for name, value in auxiliary.items():
        if is_number(value) or value is None:
            cards.append({"name": name, "value": fmt(value), "facts": [], "note": None})
            continue
        if not isinstance(value, dict):
            cards.append({"name": name, "value": fmt(value), "facts": [], "note": None})
            continue
        headline_key = next((k for k in _HEADLINE_KEYS if is_finite(value.get(k))), None)
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
        interval = interval_of(value)
        cards.append(
            {
                "name": name,
                "value": fmt(value.get(headline_key)) if headline_key else None,
                "value_label": " · ".join(x for x in (headline_key, f"{better} is better" if better else None) if x),
                "interval": interval_text(interval) if interval else None,
                "facts": facts,
                "note": note,
            }
        )
    return cards


def _numeric_key(item: tuple[Any, Any]) -> tuple[int, float]:
    """Sort percentiles {"5", "25", "95"} as numbers, other keys as they come."""
    try:
        return (0, float(item[0]))
    except (TypeError, ValueError):
        return (1, 0.0)


def identity_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """What was scored and how: hashes, reference models, versions, device, time."""
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


def flatten(value: object, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, text) for every leaf: the collapsible "everything in score.json" table."""
    rows = []
    if isinstance(value, dict):
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value) and len(value) <= 16:
        for i, item in enumerate(value):
            rows += flatten(item, f"{prefix}[{i}]")
    else:
        rows.append((prefix, short(value)))
    return rows
