"""The leaderboard page's content: ranking groups, their columns, and one cell per value.

This module owns how ``scoring.ranking.leaderboard``'s tables become what ``leaderboard.html``
lays out; ``scoring.html.pages.render_leaderboard`` is its entry point and documents the
tables it accepts. Here: the score folders' ``path`` is dropped; ``"<split> <value>"``
columns are gathered under their split (public first, then private) and a value's
``<value>_low`` / ``<value>_high`` columns are folded into it as its interval (its
``<value>_note``, why that interval is only approximate, as a ``*`` on it and the note
once below the table); rows are grouped by (dataset, N) and by ``group`` or a
reference-set column, each group its own ranking, with a reference set
that is the same for the whole group said once above its table; each cell carries its
text, its sort key and its kind (number, text, mono, sealed, unsealed, overlap,
missing), and a score's cell its link to that entry's report.html.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.html.fields import fmt, interval_text, is_number

_KEY_COLUMNS = ("rank", "dataset", "N", "submission", "sha256")
_GROUP_EXTRA = ("references", "reference_set", "reference_sha256", "refs", "n_forget")
_VALUE_LABELS = {"mean_run_seconds": "run s", "sealed": "sealed"}
_SPLIT_ORDER = {"public": 0, "private": 1}
_NOT_SHOWN = ("path",)  # collect_scores' score folder, an organisers' path: the links are made from it


def _companions(column: str, columns: list[str]) -> tuple[str | None, str | None, str | None]:
    """(low, high, note) columns of ``column``'s interval, as ``scoring.ranking.leaderboard`` names them."""
    low, high, note = f"{column}_low", f"{column}_high", f"{column}_note"
    if low not in columns or high not in columns:
        return None, None, None
    return low, high, note if note in columns else None


def _splits_of(columns: list[str]) -> list[str]:
    splits = {c.split(" ", 1)[0] for c in columns if " " in c and c not in _KEY_COLUMNS}
    splits = {s for s in splits if any(c == f"{s} score" for c in columns)} or splits
    return sorted(splits, key=lambda s: (_SPLIT_ORDER.get(s, 2), s))


def leaderboard_groups(table: pd.DataFrame, links: dict[str, Any]) -> list[dict[str, Any]]:
    """One ranking per (dataset, N, reference set): heading, two-row header, column specs and rows of cells."""
    table = table.copy()
    table.columns = [str(c) for c in table.columns]
    table = table[[c for c in table.columns if c.split(" ", 1)[-1] not in _NOT_SHOWN]]  # "path", "public path"
    columns = list(table.columns)
    splits = _splits_of(columns)
    consumed: set[str] = set()
    specs: list[dict[str, Any]] = []  # one per shown column: key, label, split, source columns
    for column in columns:
        if column in consumed or column in {"dataset", "N", "group"}:
            continue
        low, high, note = _companions(column, columns)
        consumed |= {c for c in (low, high, note) if c}
        split = next((s for s in splits if column.startswith(s + " ")), None)
        value = column[len(split) + 1 :] if split else column
        label = _VALUE_LABELS.get(value, value if value != value.lower() else value.replace("_", " "))
        numeric = column in table and any(is_number(v) and not isinstance(v, (bool, np.bool_)) for v in table[column])
        specs.append(
            {
                "key": column,
                "label": label,
                "split": split,
                "numeric": numeric,
                "value": value,
                "low": low,
                "high": high,
                "note": note,
            }
        )
    specs = [s for s in specs if s["key"] not in consumed and s["key"] != "sha256"]  # the hash goes under the name
    # "within noise of the entry above" belongs beside the rank, as the terminal table has it
    overlap = [s for s in specs if "overlap" in s["value"] and not s["split"]]
    for spec in overlap:
        spec["label"] = "≈"
    rest = [s for s in specs if s not in overlap]
    at = next((i + 1 for i, s in enumerate(rest) if s["key"] == "rank"), 0)
    specs = rest[:at] + overlap + rest[at:]
    # scoring.ranking.leaderboard names each ranking group (dataset, N, reference set) in ``group``
    extra = ("group",) if "group" in columns else _GROUP_EXTRA
    keys = [k for k in ("dataset", "N", *extra) if k in columns]
    groups = []
    grouped = table.groupby(keys, sort=False, dropna=False) if keys else [((), table)]
    for key, frame in grouped:
        key = key if isinstance(key, tuple) else (key,)
        names = dict(zip(keys, key, strict=True))
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
        for before, spec in zip([None, *shown], shown, strict=False):  # (previous, this): one short
            spec["first_of_split"] = bool(spec["split"]) and (before is None or before["split"] != spec["split"])
        rows = [_leaderboard_row(row, shown, splits, links) for row in records]
        overlaps = any(cell.get("kind") == "overlap" for row in rows for cell in row["cells"])
        notes = list(dict.fromkeys(cell["note"] for row in rows for cell in row["cells"] if cell.get("note")))
        detail = " · ".join(d for d in details if d)
        groups.append(
            {
                "heading": heading,
                "detail": detail,
                "rows": rows,
                "header": _header(shown, splits),
                "overlaps": overlaps,
                "notes": notes,  # why some of its intervals are approximate, each once
                "specs": shown,
                "anchor": _slug(f"{heading} {detail}"),
            }
        )
    return groups


def _header(specs: list[dict[str, Any]], splits: list[str]) -> dict[str, Any]:
    """Two header rows: split groups (colspan) over the value names."""
    top: list[dict[str, Any]] = []
    for spec in specs:
        if top and top[-1]["split"] == spec["split"]:
            top[-1]["span"] += 1
        else:
            top.append({"split": spec["split"], "span": 1})
    return {"top": top, "bottom": specs, "two_rows": bool(splits)}


def _leaderboard_row(
    row: Mapping[Hashable, Any], specs: list[dict[str, Any]], splits: list[str], links: dict[str, Any]
) -> dict[str, Any]:
    prefix = f"{row.get('dataset')}/{_int_text(row.get('N'))}"
    if _present(row.get("team")):  # a team's entry links to its own reports only, never to another team's
        who = [f"{row['team']}/{row['sha256']}"] if _present(row.get("sha256")) else []
    else:
        who = [str(row[k]) for k in ("sha256", "submission") if row.get(k) is not None]

    def link_for(split: str | None) -> str | None:
        candidates: list[str] = []
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


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA


def _int_text(value: object) -> str:
    return str(int(value)) if is_number(value) and float(value).is_integer() else str(value)


def _cell(spec: dict[str, Any], value: object, row: Mapping[Hashable, Any]) -> dict[str, Any]:
    if not _present(value):
        return {"text": "–", "sort": "", "kind": "missing"}
    if spec["value"] == "sealed" or isinstance(value, (bool, np.bool_)):
        truth = bool(value)
        if spec["value"] == "sealed":
            word = "sealed" if truth else "unsealed"
            return {"text": word, "sort": int(truth), "kind": word}
        if "overlap" in spec["value"]:
            return {
                "text": "≈" if truth else "",
                "sort": int(truth),
                "kind": "overlap" if truth else "plain",
                "title": "its interval overlaps the entry ranked above: the difference is within noise",
            }
        return {"text": "yes" if truth else "no", "sort": int(truth), "kind": "plain"}
    if is_number(value):
        digits = 2 if "seconds" in spec["value"] else 4
        cell = {"text": fmt(value, digits), "sort": float(value), "kind": "number"}
        if spec["key"] == "rank" or spec["value"] == "N":
            cell["text"] = _int_text(value)
        if spec["low"] and spec["high"] and _present(row.get(spec["low"])) and _present(row.get(spec["high"])):
            cell["interval"] = interval_text((row[spec["low"]], row[spec["high"]]), digits)
            if spec["note"] and _present(row.get(spec["note"])):
                cell["note"] = str(row[spec["note"]])
        return cell
    text = str(value)
    mono = spec["key"] == "sha256" or "sha256" in spec["value"] or spec["value"] == "references"
    return {"text": text, "sort": text.lower(), "kind": "mono" if mono else "text"}


def not_ranked_rows(frame: pd.DataFrame, links: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries that are not ranked (rejected, failed), with their reason and report link."""
    rows: list[dict[str, Any]] = []
    for row in frame.to_dict("records"):
        split, who = row.get("split"), str(row.get("submission"))
        candidates = [f"{row.get('dataset')}/{_int_text(row.get('N'))}/{who}/{split}", f"{who}/{split}", who]
        if _present(row.get("team")):
            who = f"{row['team']}: {who}" if who else str(row["team"])
            candidates = [f"{row.get('dataset')}/{_int_text(row.get('N'))}/{row['team']}/{row.get('sha256')}/{split}"]
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


def any_unsealed(table: pd.DataFrame) -> bool:
    """Whether any entry's score is unsealed (the page then says that those are not official)."""
    columns = [c for c in table.columns if str(c).endswith("sealed")]
    return any(_present(v) and not bool(v) for c in columns for v in table[c])


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
