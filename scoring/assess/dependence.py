"""Dependence between runs, read from their outputs: groups of runs closer than independent runs are.

The score compares N *independent* unlearned models with N retrained ones. Isolation
(scoring.ingestion) keeps runs from sharing work where it can; this module is the check
on the outputs for where it cannot: a submission that retrains once and hands out lightly
changed copies (fine-tuned, perturbed, averaged, or started from one shared warm start)
in several runs gives runs that are much closer to one another than two independent runs
of any method are. One family of tests, each a reason to keep a score off the ranking:

- ``duplicates``: groups of runs with byte-identical confidences (>= 2 runs and >= 10% of
  N; independent runs never coincide);
- ``close pairs``: two runs whose distance is far below what the submission's own runs
  show: below ``CLOSENESS_THRESHOLD`` x the median distance between two of its runs (a
  minority group of copies: ``closeness``, the closest pair / that median), or below
  ``NEIGHBOUR_THRESHOLD`` x the largest nearest-neighbour distance (a majority group of
  copies beside a few independent runs, whose nearest neighbour is far:
  ``neighbour_spread``, the smallest / the largest nearest-neighbour distance). The
  distance is the mean squared difference of the runs' forget-set confidences, each
  example standardised by the references' mean and sd (z-scores), so that hard and easy
  examples weigh alike. Scale-free: methods whose runs vary little (fine-tuning the one
  original model every run starts from) have small distances everywhere, copies have a
  few far smaller than the rest.

Every run identical (a deterministic submission) is no dependence but the
``identical`` diagnostic: F is 0 by the spread rule. What the tests cannot see: every run
a copy of one model (or all but one) looks like an honest method whose runs vary little,
since every method's runs share the one original model they start from; F, not this test,
penalises it (the copies' confidences are concentrated, not spread like retraining's).
Nor copies changed so much that they are as far apart as an honest method's runs: that
is a weaker sharing, below what this threshold was calibrated to see.

Pure functions of the saved confidences [n_models, n_examples], with no randomness.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scoring.checks import check_confidences

# The closest pair's distance / the median pair distance, below which two runs share work.
# Calibrated on digits (benchmarks/dependence_calibration.py: 128 references, 48 runs of each
# baseline and sanity row, 300 random draws of N runs per method, each against N other
# references): no honest draw was flagged (0 of 300 for every method and N = 8, 16, 32); the
# smallest closeness of any was 0.065 at N = 8, 0.065-0.076 at N = 16 and 0.095 at N = 32
# (ssd; two runs of the benchmark), references >= 0.45. Built attacks, k copies of one
# retrained model each fine-tuned with its run's seed among N - k retrains: flagged in 89%
# (N = 8), 90-92% (16), 92% (32) of draws at k = 2, in 97-100% for 4 <= k <= N - 2; copies
# perturbed by 2% noise in >= 99.7% for 2 <= k <= N - 2; one retraining per chunk of 8 runs
# (2 or 4 groups) in 100%; k = N in none (see above). Below 8 runs the median of few pairs
# is too noisy: only byte-identical duplicates count.
CLOSENESS_THRESHOLD = 0.05
# The smallest / the largest nearest-neighbour distance, below which a group of copies holds
# most runs (the median is then a distance between copies). Same calibration: the smallest
# honest value 0.027 at N = 8, 0.030 at N = 16, 0.031 at N = 32 (ssd), references >= 0.43;
# k = 3N/4 or N - 2 copies among retrains: at most 0.002-0.003 in every draw.
NEIGHBOUR_THRESHOLD = 0.02
MIN_RUNS = 8
DUPLICATE_MIN_SHARE = 0.1  # a byte-identical group of >= 2 runs and this share of N
_STD_FLOOR = 1e-9  # references' per-example sd below this: treated as this (avoids 0 / 0)


def dependence(
    unlearned_conf: ArrayLike,
    retrained_conf: ArrayLike,
    *,
    threshold: float = CLOSENESS_THRESHOLD,
    neighbour_threshold: float = NEIGHBOUR_THRESHOLD,
) -> dict[str, Any]:
    """Whether some runs are closer to one another than independent runs are.

    Parameters
    ----------
    unlearned_conf, retrained_conf : arrays [n_models, n_examples]
        The submission's runs and the references (the yardstick of each example's scale).
    threshold, neighbour_threshold : float
        A pair closer than ``threshold`` x the median pair distance, or than
        ``neighbour_threshold`` x the largest nearest-neighbour distance, is close.

    Returns
    -------
    dict
        ``flagged``: True when a duplicate group or a close pair is found (never when every
        run is identical: that is the ``identical`` diagnostic); ``closeness``: the closest
        pair's distance / the median pair distance (None below 2 runs or when every run is
        identical; 0.0 when more than half of the pairs coincide); ``neighbour_spread``: the
        smallest / the largest nearest-neighbour distance (None likewise); ``close_groups``:
        run-index lists, each a connected group of runs joined by close pairs (largest
        first; only from ``MIN_RUNS`` runs); ``duplicate_groups``: run-index lists of
        byte-identical runs (largest first); ``duplicates``: a duplicate group holds >= 2
        runs and >= 10% of N; ``identical``: every run the same; ``threshold``, ``min_runs``.
    """
    unlearned, retrained = check_confidences(unlearned_conf, retrained_conf)
    n_models = unlearned.shape[0]
    identical = bool((unlearned == unlearned[0]).all())
    duplicate_groups = _duplicate_groups(unlearned)
    smallest = max(2, math.ceil(DUPLICATE_MIN_SHARE * n_models))
    duplicates = not identical and any(len(group) >= smallest for group in duplicate_groups)
    closeness, spread, close_groups = None, None, []
    if n_models >= 2 and not identical:
        distances = pair_distances(unlearned, retrained)
        pairs = distances[np.triu_indices(n_models, 1)]
        median = float(np.median(pairs))
        nearest = (distances + np.diag(np.full(n_models, np.inf))).min(axis=1)  # [n_models]
        closeness = float(pairs.min() / median) if median > 0 else 0.0
        spread = float(nearest.min() / nearest.max()) if nearest.max() > 0 else 0.0
        if n_models >= MIN_RUNS:
            close_groups = _groups(distances < max(threshold * median, neighbour_threshold * nearest.max()))
    return {
        "flagged": bool(duplicates or close_groups),
        "closeness": closeness,
        "neighbour_spread": spread,
        "close_groups": close_groups,
        "duplicate_groups": duplicate_groups,
        "duplicates": duplicates,
        "identical": identical,
        "threshold": float(threshold),
        "neighbour_threshold": float(neighbour_threshold),
        "min_runs": MIN_RUNS,
    }


def pair_distances(unlearned: np.ndarray, retrained: np.ndarray) -> np.ndarray:
    """[n_models, n_models]: mean squared difference between two runs' z-scores over the examples.

    Each example's confidence is standardised by the references' mean and sd of it.
    """
    scale = np.maximum(retrained.std(axis=0, ddof=1), _STD_FLOOR)
    z = (unlearned - retrained.mean(axis=0)) / scale
    squares = (z * z).sum(axis=1)
    distances = (squares[:, None] + squares[None, :] - 2.0 * z @ z.T) / z.shape[1]
    np.fill_diagonal(distances, 0.0)
    positive: np.ndarray = np.maximum(distances, 0.0)  # rounding can leave -1e-16 where two runs coincide
    return positive


def _groups(close: np.ndarray) -> list[list[int]]:
    """Connected groups (>= 2 runs) of the graph whose edges are the close pairs, largest first."""
    n = len(close)
    np.fill_diagonal(close, False)
    seen = np.zeros(n, dtype=bool)
    groups = []
    for start in range(n):
        if seen[start] or not close[start].any():
            continue
        stack, group = [start], []
        seen[start] = True
        while stack:
            k = stack.pop()
            group.append(k)
            for j in np.flatnonzero(close[k] & ~seen):
                seen[j] = True
                stack.append(int(j))
        groups.append(sorted(group))
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _duplicate_groups(rows: np.ndarray) -> list[list[int]]:
    """Indices of rows that are byte-identical to another row, one list per distinct row, largest first."""
    by_bytes: dict[bytes, list[int]] = {}
    for k, row in enumerate(np.ascontiguousarray(rows)):
        by_bytes.setdefault(row.tobytes(), []).append(k)
    return sorted((g for g in by_bytes.values() if len(g) >= 2), key=lambda g: (-len(g), g[0]))


def describe_thresholds() -> str:
    """The test's settings in words (for the calibration benchmark's table)."""
    return (
        f"close pairs: closest / median pair distance < {CLOSENESS_THRESHOLD} or smallest / largest "
        f"nearest-neighbour distance < {NEIGHBOUR_THRESHOLD}, from {MIN_RUNS} runs; "
        f"duplicates: byte-identical groups of >= 2 runs and >= {DUPLICATE_MIN_SHARE:.0%} of N"
    )
