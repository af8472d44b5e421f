"""Reading a score.json record for the pages: what may be shown, how values read, where intervals are.

This module owns three things that ``scoring.html.pages``, ``scoring.html.sections``,
``scoring.html.figures`` and ``scoring.html.leaderboard`` all read through; it imports
none of them.

What a page never shows (participant-facing output carries nothing sealed):
``is_hidden`` names the keys and ``without_hidden`` drops them, at any depth, before
anything is rendered: run seeds (any key with "seed" in its name), the organisers' paths
(``path``, ``dir`` and ``*_path`` / ``*_dir`` keys: split folder, reference folder,
submission path), anything named after the organisers or the secret, and the models'
outputs (``unlearned_conf``, ``retrained_conf``, ``reference_conf``,
``reference_outputs``).

How numbers read: ``fmt`` (table columns: 4 decimals, or 4 significant digits outside
[0.001, 10000)) and ``short`` (lists of facts: the same without trailing zeros); both are
also the templates' filters.

Where intervals are: ``interval_of`` reads one ([low, high], or a dict with ``low`` and
``high``, ``lower`` / ``upper``, ``ci_low`` / ``ci_high``, ``lo`` / ``hi``, or those
under ``interval`` / ``ci`` / ``confidence_interval``); ``find_interval`` finds a term's
under any of its aliases, in ``intervals``, ``uncertainty`` or ``confidence_intervals``
(then any other dict of the record), as ``<name>_interval`` / ``<name>_ci``, or as
``<name>_low`` / ``<name>_high``; ``all_intervals`` lists every interval recorded
anywhere (the uncertainty section).
"""

from __future__ import annotations

import math

import numpy as np

# The record's accuracies: (name, the unlearned models' key, the retrained models' key).
ACCURACIES = (
    ("retain", "RA_U", "RA_R"),
    ("test", "TA_U", "TA_R"),
    ("forget", "FA_U", "FA_R"),
)


# ----------------------------------------------------------------------------------
# What may be shown.


def is_hidden(key) -> bool:
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


def without_hidden(value):
    """A deep copy of ``value`` without hidden keys."""
    if isinstance(value, dict):
        return {k: without_hidden(v) for k, v in value.items() if not is_hidden(k)}
    if isinstance(value, (list, tuple)):
        return [without_hidden(v) for v in value]
    return value


# ----------------------------------------------------------------------------------
# Numbers.


def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_finite(value) -> bool:
    return is_number(value) and math.isfinite(float(value))


def fmt(value, digits: int = 4) -> str:
    """A number as people read it: 4 decimals in [0.001, 10000), else 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10000 else str(int(value))
    if is_number(value):
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
    if is_number(value) and not isinstance(value, (int, np.integer)) and "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


# ----------------------------------------------------------------------------------
# Intervals.


def interval_of(value) -> tuple[float, float] | None:
    """(low, high) from [low, high], {"low", "high"} (or lower/upper, ci_low/ci_high); else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_finite(v) for v in value):
        return float(value[0]), float(value[1])
    if isinstance(value, dict):
        for low, high in (("low", "high"), ("lower", "upper"), ("ci_low", "ci_high"), ("lo", "hi")):
            if is_finite(value.get(low)) and is_finite(value.get(high)):
                return float(value[low]), float(value[high])
        for key in ("interval", "ci", "confidence_interval"):
            if key in value:
                return interval_of(value[key])
    return None


_NOT_INTERVALS = {"ceiling", "auxiliary", "diagnostics", "time", "sha256", "split", "submission", "references"}


def _level_of(value, record: dict | None = None) -> str:
    """ "95%": the interval's own confidence level, else the record's, else the kit's default."""
    level = value.get("confidence_level") if isinstance(value, dict) else None
    if not is_finite(level) and record is not None:
        level = record.get("confidence_level")
    return f"{float(level):.0%}" if is_finite(level) else "95%"


def find_interval(record: dict, aliases) -> dict | None:
    """The interval recorded for a term under any of its aliases (see the module docstring)."""
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
        if found is None and is_finite(record.get(alias + "_low")) and is_finite(record.get(alias + "_high")):
            found = {"low": record[alias + "_low"], "high": record[alias + "_high"]}
        interval = interval_of(found)
        if interval is not None:
            level = _level_of(found, record)
            return {"low": interval[0], "high": interval[1], "level": level, "text": interval_text(interval)}
    return None


def interval_text(interval) -> str:
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def all_intervals(record: dict) -> list[dict]:
    """Every interval recorded anywhere: a dict with low and high, or a *_interval pair."""
    rows = []

    def walk(value, path):
        if isinstance(value, dict):
            interval = interval_of(value) if any(k in value for k in ("low", "lower", "ci_low", "lo")) else None
            if interval and path:
                estimate = next((value[k] for k in ("estimate", "value", "mean") if is_finite(value.get(k))), None)
                details = ", ".join(
                    f"{k.replace('_', ' ')} {short(value[k])}"
                    for k in (
                        "method",
                        "confidence_level",
                        "n_resamples",
                        "n_groups",
                        "random_state",
                        "n_models",
                        "note",
                    )
                    if value.get(k) is not None
                )
                rows.append(
                    {
                        "name": " › ".join(path),
                        "estimate": fmt(estimate),
                        "low": fmt(interval[0]),
                        "high": fmt(interval[1]),
                        "details": details,
                    }
                )
            for key, item in value.items():
                if key in {"low", "high", "lower", "upper"}:
                    continue
                if isinstance(item, (list, tuple)) and str(key).endswith(("_interval", "_ci")) and interval_of(item):
                    low, high = interval_of(item)
                    rows.append(
                        {
                            "name": " › ".join([*path, str(key)]),
                            "estimate": "",
                            "low": fmt(low),
                            "high": fmt(high),
                            "details": "",
                        }
                    )
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
            interval = interval_of(value)
            if interval and not isinstance(value, dict):
                accuracy = name[:3] in {"RA_", "TA_", "FA_"} or "accuracy" in name
                how = methods.get("accuracy_intervals" if accuracy else "uncertainty") or ""
                rows.append(
                    {
                        "name": f"intervals › {name}",
                        "estimate": fmt(record.get(name)),
                        "low": fmt(interval[0]),
                        "high": fmt(interval[1]),
                        "details": how,
                    }
                )
    walk({k: v for k, v in record.items() if k not in {"runs"}}, [])
    return rows
