"""score.json's ``diagnostics`` section: the per-run diagnostics and the dependence test as typed records.

``scoring.assess.diagnostics`` and ``scoring.assess.dependence`` compute; this module only
turns what they found into the record's types (plain floats and ints, None for what is
not finite) and writes the one-line flags a report and the leaderboard show.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.assess import diagnostics
from scoring.record.types import Dependence, Diagnostics, PerRun


def diagnostics_record(unlearned_conf: NDArray[np.float64], retrained_conf: NDArray[np.float64]) -> Diagnostics:
    """score.json's ``diagnostics`` from the runs' and the references' confidences [N, |S|]."""
    found = diagnostics.run_diagnostics(unlearned_conf, retrained_conf)
    per_run: PerRun = {
        "distance": [float(v) for v in found["distance"]],
        "mean_z": [float(v) for v in found["mean_z"]],
        "retrained_like": [bool(v) for v in found["retrained_like"]],
        "group": [int(v) for v in found["groups"]],
    }
    flags = []
    if found["identical"]:
        flags.append("identical: every run returned the same outputs (a deterministic submission: F = 0)")
    if found["mixture"]:
        counts = [int(s) for s in found["group_sizes"]]
        flags.append(f"mixture: the runs fall into two clearly different groups of {counts[0]} and {counts[1]}")
    shared = _dependence(found["dependence"])
    if shared["reason"] is not None:
        flags.append(shared["reason"])
    return {
        "per_run": per_run,
        "flags": flags,
        "identical": bool(found["identical"]),
        "mixture": bool(found["mixture"]),
        "duplicates": bool(found["duplicates"]),
        "duplicate_groups": [[int(k) for k in group] for group in found["duplicate_groups"]],
        "n_distinct_runs": int(found["n_distinct_runs"]),
        "mixture_separation": _finite(found["mixture_separation"]),
        "mixture_threshold": _finite(found["mixture_threshold"]),
        "reference_distance_max": float(np.max(found["reference_distance"])),
        "statistic": (
            "Kolmogorov-Smirnov distance between a run's forget-set z-scores and the references' pooled z-scores"
        ),
        "dependence": shared,
    }


def _dependence(found: dict[str, Any]) -> Dependence:
    """score.json's ``diagnostics.dependence``, its ``reason`` the line the leaderboard shows."""
    reason = None
    if found["flagged"]:
        close = bool(found["close_groups"])
        groups = found["close_groups"] if close else found["duplicate_groups"]
        listed = "; ".join(", ".join(str(k) for k in group) for group in groups[:3])
        listed += "; ..." if len(groups) > 3 else ""
        how = (
            f"are closer to one another than independent runs are (closest pair {found['closeness']:.3f} of the "
            f"median distance between two runs, threshold {found['threshold']:g}; nearest neighbours "
            f"{found['neighbour_spread']:.3f} of the farthest, threshold {found['neighbour_threshold']:g})"
            if close
            else "returned byte-identical outputs (independent runs never coincide)"
        )
        reason = f"dependence: runs {listed} {how}: they share work, so the score is not ranked"
    return {
        "flagged": bool(found["flagged"]),
        "reason": reason,
        "closeness": _finite(found["closeness"]),
        "threshold": float(found["threshold"]),
        "neighbour_spread": _finite(found["neighbour_spread"]),
        "neighbour_threshold": float(found["neighbour_threshold"]),
        "min_runs": int(found["min_runs"]),
        "close_groups": [[int(k) for k in group] for group in found["close_groups"]],
        "duplicate_groups": [[int(k) for k in group] for group in found["duplicate_groups"]],
        "statistic": "closest pair of runs / median pair, and smallest / largest nearest-neighbour distance, "
        "distances between runs' forget-set z-scores (mean squared difference); byte-identical groups",
    }


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
