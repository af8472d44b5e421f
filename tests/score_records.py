"""Valid score.json records for tests that read scores without scoring anything."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).resolve().parent / "data" / "score_recorded.json"
_RECORDED: dict[str, Any] = json.loads(RECORDED.read_text())["score"]


def a_record(**changes: Any) -> dict[str, Any]:
    """The recorded fine-tuning score.json, volatile fields filled in as the scorer writes them, then ``changes``.

    A change to a section (a dict) updates that section; anything else replaces the value.
    """
    found = copy.deepcopy(_RECORDED)
    found.update(scored_at="2026-01-01T00:00:00+00:00", timing={"ingestion_seconds": 1.0, "evaluation_seconds": 0.5})
    found["time"] = {"limit_seconds": 30.0, "limit_rule": "--time-limit", "reference_mean_training_seconds": 0.4}
    found["limits"]["memory_bytes"] = 2**30
    found["split"]["dir"] = "/srv/organiser/splits/digits-public"
    found["references"]["dir"] = "/srv/organiser/refs"
    found["submission"]["path"] = "/srv/organiser/inbox/fine_tune.py"
    for run in found["runs"]:
        run.update(seconds=0.3, reported_seconds=0.25)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(found.get(key), dict):
            found[key].update(value)
        else:
            found[key] = value
    return found


def unscored(found: dict[str, Any], status: str, reason: str) -> dict[str, Any]:
    """``found`` as a rejected or failed submission's record: no score, no statistics."""
    for key in ("epsilons", "intervals", "uncertainty", "accuracy_intervals", "diagnostics", "auxiliary"):
        found.pop(key, None)
    found.update(status=status, reason=reason, score=None, F=None, RA_U=None, TA_U=None, FA_U=None, runs=[])
    return found
