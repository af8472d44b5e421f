"""Per-run diagnostics: how retrained-like each run is, and whether the runs form two groups.

Owns what F cannot see about a submission's runs, reported *beside* the official score
(issue 11) and never fed back into it. F only tests each example's marginal over runs,
so a submission that retrains in half its runs and returns the original model in the
others scores well; a mixture of two algorithms, and a deterministic submission (every
run the same model), are named here instead.

Each confidence is standardised by the references' mean and sd of its example (z-scores
[n_models, n_examples]), so that examples of different difficulty are comparable. Per
run: the Kolmogorov-Smirnov distance of its z-scores to the references' pooled ones, and
its mean z-score. Over runs: whether they are identical, how many are distinct, and the
best 2-means split of the mean z-scores, a mixture when its groups lie further apart
than one distribution's runs do by chance at this N (``MIXTURE_SEPARATION``).

Pure functions of the saved confidences [n_models, n_examples], with no randomness.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scoring.assess.dependence import dependence
from scoring.checks import check_confidences, check_number

# Two groups of runs this many within-group sds apart (in mean z-score) are a mixture.
# The best 2-means split of N runs drawn from ONE distribution already shows a gap, the
# larger the fewer runs: measured on Gaussian runs (200 draws per N, |S| = 30 and 300,
# half of them with a shared per-run shift), largest gap 8.9 at N = 8, 5.2 at N = 16,
# 4.2 at N = 32, 3.4 at N = 128, 2.9 at N = 512; hence a threshold by N, none below 8.
MIXTURE_SEPARATION = {32: 6.0, 16: 8.0, 8: 12.0}  # smallest N -> threshold
MIXTURE_MIN_SHARE = 0.1  # ... and the smaller group holds at least this share of runs (and 2)
_SEPARATION_CAP = 1e6  # two groups that are each constant: a finite number for JSON
_STD_FLOOR = 1e-9  # references' per-example sd below this: treated as this (avoids 0 / 0)


def run_diagnostics(
    unlearned_conf: ArrayLike, retrained_conf: ArrayLike, *, mixture_separation: float | None = None
) -> dict[str, Any]:
    """How retrained-like each run is, and whether the runs form two groups or are all one.

    F only tests each example's marginal, so a submission that retrains in half its runs
    and returns the original in the others scores well; this shows it. Each confidence
    is standardised by the references' mean and sd of its example (z-scores), so that
    examples of different difficulty are comparable.

    Parameters
    ----------
    unlearned_conf, retrained_conf : arrays [n_models, n_examples]
    mixture_separation : float > 0, optional
        Gap between the two groups, in within-group sds, above which they are a mixture;
        default by N (``MIXTURE_SEPARATION``): 6 from 32 runs, 8 from 16, 12 from 8,
        never below 8.

    Returns
    -------
    dict
        ``distance``: float array [n_models], Kolmogorov-Smirnov distance between run
        k's z-scores over the forget set and the references' pooled z-scores (0 = same
        distribution, 1 = disjoint); ``mean_z``: float array [n_models], run k's mean
        z-score (> 0: more confident than retraining, as the original model is);
        ``reference_distance``: float array [n_models], the same distance for each
        reference (it sits in the pool: slightly optimistic), the yardstick;
        ``retrained_like``: bool array [n_models], distance <= the largest reference
        distance; ``identical``: True when every run gave exactly the same confidences;
        ``n_distinct_runs``; ``mixture``: True when the runs split into two clear groups
        (2-means on ``mean_z``, gap > the threshold within-group sds, the smaller group
        >= 2 runs and >= 10%; runs that differ only in spread, not in mean, are missed);
        ``mixture_separation`` (the measured gap, at most 1e6: two constant groups),
        ``mixture_threshold`` (the one used; None below 8 runs), ``groups``: int array
        [n_models] (0/1, group 1 has the larger mean z), ``group_sizes``: int array [2];
        ``duplicate_groups``: list of run-index lists, each a set of >= 2 runs with
        byte-identical confidences (largest first);
        ``duplicates``: True when one holds >= 2 runs and >= 10% of N (not every run:
        that is ``identical``); ``dependence``: ``scoring.assess.dependence.dependence``'s
        result, the family the duplicates belong to (groups of runs closer than independent
        runs are).
    """
    unlearned, retrained = check_confidences(unlearned_conf, retrained_conf)
    n_models = unlearned.shape[0]
    if mixture_separation is None:
        mixture_separation = next((t for n, t in MIXTURE_SEPARATION.items() if n_models >= n), None)
    else:
        mixture_separation = check_number(mixture_separation, "mixture_separation", 0, strict=True)
    center = retrained.mean(axis=0)
    scale = np.maximum(retrained.std(axis=0, ddof=1), _STD_FLOOR)
    z_runs = (unlearned - center) / scale  # [n_models, n_examples]
    z_refs = (retrained - center) / scale
    pooled = np.sort(z_refs.ravel())
    distance = _ks_to_pool(z_runs, pooled)
    reference_distance = _ks_to_pool(z_refs, pooled)
    mean_z = z_runs.mean(axis=1)
    flagged, separation, groups = _two_groups(mean_z, math.inf if mixture_separation is None else mixture_separation)
    identical = bool((unlearned == unlearned[0]).all())
    shared = dependence(unlearned, retrained)  # the duplicates are one of its tests
    return {
        "dependence": shared,
        "duplicate_groups": shared["duplicate_groups"],
        "duplicates": shared["duplicates"],
        "distance": distance,
        "mean_z": mean_z,
        "reference_distance": reference_distance,
        "retrained_like": distance <= reference_distance.max(),
        "identical": identical,
        "n_distinct_runs": int(len(np.unique(unlearned, axis=0))),
        "mixture": flagged,
        "mixture_separation": separation,
        "mixture_threshold": None if mixture_separation is None else float(mixture_separation),
        "groups": groups,
        "group_sizes": np.bincount(groups, minlength=2),
    }


def _ks_to_pool(rows: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """KS distance [n_rows] between each row's values and the sorted pooled sample.

    Between two consecutive values of a row its ECDF is flat and the pool's rises, so
    the supremum is reached at the row's values, from the left or from the right.
    """
    out = np.empty(len(rows))
    n_pool = len(pooled)
    for k, row in enumerate(np.sort(rows, axis=1)):
        n = len(row)
        pool_at = np.searchsorted(pooled, row, side="right") / n_pool
        pool_before = np.searchsorted(pooled, row, side="left") / n_pool
        row_at = np.searchsorted(row, row, side="right") / n
        row_before = np.searchsorted(row, row, side="left") / n
        out[k] = max(np.abs(row_at - pool_at).max(), np.abs(row_before - pool_before).max())
    return out


def _two_groups(scores: np.ndarray, threshold: float) -> tuple[bool, float, np.ndarray]:
    """(flag, separation, labels [n]) of the best 2-means split of 1-D scores [n].

    Only splits whose smaller group holds >= 2 runs and >= MIXTURE_MIN_SHARE of them are
    considered; separation = gap between the group means / pooled within-group sd.
    """
    n = len(scores)
    labels = np.zeros(n, dtype=np.intp)
    smallest = max(2, math.ceil(MIXTURE_MIN_SHARE * n))
    if n < 2 * smallest or np.ptp(scores) == 0:
        return False, 0.0, labels
    order = np.argsort(scores, kind="stable")
    x = scores[order]
    k = np.arange(1, n)  # the left group is x[:k]
    csum, csq = np.cumsum(x), np.cumsum(x * x)
    within = (csq[:-1] - csum[:-1] ** 2 / k) + ((csq[-1] - csq[:-1]) - (csum[-1] - csum[:-1]) ** 2 / (n - k))
    within = np.where((k >= smallest) & (n - k >= smallest), np.maximum(within, 0.0), np.inf)
    size = int(np.argmin(within)) + 1
    sd = math.sqrt(within[size - 1] / (n - 2))
    gap = float(x[size:].mean() - x[:size].mean())
    separation = min(gap / sd, _SEPARATION_CAP) if sd > 0 else _SEPARATION_CAP
    labels[order[size:]] = 1  # group 1: the larger mean z (more like the original model)
    return bool(separation > threshold), separation, labels
