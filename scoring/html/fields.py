"""Reading a score.json record for the pages: how values read, where intervals are.

This module owns two things that ``scoring.html.pages``, ``scoring.html.sections``,
``scoring.html.figures`` and ``scoring.html.leaderboard`` all read through; it imports
none of them. What a page may show is not decided here: pages render
``scoring.record.public_view`` of a record, its public fields only.

How numbers read: ``fmt`` (table columns: 4 decimals, or 4 significant digits outside
[0.001, 10000)) and ``short`` (lists of facts: the same without trailing zeros); both are
also the templates' filters. A value with its interval reads one way everywhere:
``with_interval`` (``0.0450 [0.035, 0.055]``; the interval alone, ``interval_text``).

Where intervals are: score.json's ``intervals`` section, one (low, high) per term at the
record's ``confidence_level`` (``find_interval``); a section of its own with ``low`` and
``high`` (the ceiling: ``interval_of``); ``all_intervals`` lists every one of them (the
uncertainty section).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np

Number = int | float | np.integer[Any] | np.floating[Any]

# The record's accuracies: (name, the unlearned models' key, the retrained models' key).
ACCURACIES = (
    ("retain", "RA_U", "RA_R"),
    ("test", "TA_U", "TA_R"),
    ("forget", "FA_U", "FA_R"),
)


# ----------------------------------------------------------------------------------
# Numbers.


def is_number(value: object) -> TypeGuard[Number]:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_finite(value: object) -> TypeGuard[Number]:
    return is_number(value) and math.isfinite(float(value))


def fmt(value: object, digits: int = 4) -> str:
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


def short(value: object, digits: int = 4) -> str:
    """``fmt`` without trailing zeros (0.5, 50, 0.0752): for lists of facts rather than table columns."""
    text = fmt(value, digits)
    if is_number(value) and not isinstance(value, (int, np.integer)) and "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


# ----------------------------------------------------------------------------------
# Intervals.


def interval_of(value: object) -> tuple[float, float] | None:
    """(low, high) from an (low, high) pair or a section with ``low`` and ``high``; else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_finite(v) for v in value):
        return float(value[0]), float(value[1])
    if isinstance(value, dict) and is_finite(value.get("low")) and is_finite(value.get("high")):
        return float(value["low"]), float(value["high"])
    return None


def find_interval(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The interval score.json records for term ``name`` (``intervals.<name>``) at its confidence level."""
    interval = interval_of((record.get("intervals") or {}).get(name))
    if interval is None:
        return None
    level = record.get("confidence_level")
    return {
        "low": interval[0],
        "high": interval[1],
        "level": f"{float(level):.0%}" if is_finite(level) else "95%",
        "text": interval_text(interval),
    }


def interval_text(interval: Sequence[float], digits: int = 4) -> str:
    """``[0.0350, 0.0550]``: an interval as every page and table shows it."""
    return f"[{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"


def with_interval(value: object, interval: object, digits: int = 4) -> str:
    """``0.0450 [0.035, 0.055]``: a value, and its interval one digit shorter where there is one."""
    if value is None or (is_number(value) and math.isnan(float(value))):
        return ""
    found = interval_of(interval)
    return fmt(value, digits) + (f" {interval_text(found, digits - 1)}" if found else "")


def all_intervals(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every interval recorded anywhere: a dict with low and high, or a *_interval pair."""
    rows: list[dict[str, Any]] = []

    def walk(value: object, path: list[str]) -> None:
        if isinstance(value, dict):
            interval = interval_of(value) if "low" in value else None
            if interval and path:
                estimate = next((value[k] for k in ("estimate", "value", "mean") if is_finite(value.get(k))), None)
                details = ", ".join(
                    f"{k.replace('_', ' ')} {short(value[k])}"
                    for k in (
                        "method",
                        "confidence_level",
                        "n_resamples",
                        "n_groups",
                        "n_redraws",
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
                if key in {"low", "high"}:
                    continue
                if isinstance(item, (dict, list)):
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
