"""Step 2.3 of the official metric for many examples at once: the best single threshold.

"Positive when conf >= t" over t in linspace(min, max, ceil((max - min) * 100)) of each
example's 2N values. Scored coarse to fine, most thresholds never located (see
``threshold_epsilons``); the max is that of every threshold, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scoring.metric.grids import grid_points, linspace_step, rank

EpsilonOf = Callable[[np.ndarray], np.ndarray]  # (TP, FP) codes -> epsilons, -inf where discarded

THRESHOLDS_PER_UNIT = 100  # density of the threshold and right-end grids (per unit of conf)
THRESHOLD_SAMPLES = 32  # single thresholds located first, evenly spaced
THRESHOLD_SPLIT = 4  # a stretch of thresholds between two located ones is looked into in this many pieces


def threshold_epsilons(
    ordered: np.ndarray, pos_below: np.ndarray, epsilon_of: EpsilonOf, bound_of: EpsilonOf | None
) -> np.ndarray:
    """Step 2.3: "positive when conf >= t" over linspace(min, max, ceil((max - min) * 100)).

    A threshold with k = #(values < t) has TP = n - pos_below[k], FP = n - (k - pos_below[k]),
    and k rises with t. So the thresholds are scored coarse to fine: THRESHOLD_SAMPLES of
    them, evenly spaced, are located among the values (``grids.rank``, with np.linspace's own
    points); the thresholds between two located ones have k between theirs, hence TP and
    FP bounded by them. A stretch is split THRESHOLD_SPLIT ways and looked into only where
    k changes across it and (with ``bound_of``) its bound beats the best threshold so far.
    """
    n_examples, n_values = ordered.shape
    n = n_values // 2
    lo, hi = ordered[:, 0], ordered[:, -1]
    num = np.ceil((hi - lo) * THRESHOLDS_PER_UNIT).astype(np.intp)
    step = linspace_step(lo, hi, num)
    # TP * (n + 1) + FP = n * n + 2n - (pos_below[k] * n + k).
    codes = n * n + 2 * n - (pos_below * n + np.arange(n_values + 1))
    best = np.full(n_examples, -np.inf)
    # Stretches (example, first, last threshold): first the whole grid of each example.
    example = np.flatnonzero(num > 0)
    first, last = np.zeros(len(example), dtype=np.intp), num[example] - 1
    k_first, k_last = np.zeros_like(first), np.full_like(first, n_values)  # k lies between these
    parts = THRESHOLD_SAMPLES
    while len(example):
        # Split each stretch into up to ``parts`` pieces; locate and score their ends.
        size = np.maximum(-(-(last - first) // parts), 1)
        ends = (last - first) // size + 2  # ends of the pieces, the stretch's own two included
        which = np.repeat(np.arange(len(example)), ends)
        offset = np.arange(len(which)) - np.repeat(np.cumsum(ends) - ends, ends)
        e = example[which]
        i = np.minimum(first[which] + offset * size[which], last[which])
        k = rank(ordered, e, grid_points(i, lo[e], step[e], hi[e], num[e]), k_first[which], k_last[which])
        np.maximum.at(best, e, epsilon_of(codes[e, k]))
        # Pieces (consecutive ends of one stretch) with thresholds inside that may matter.
        same = which[1:] == which[:-1]
        k_a, k_b, e = k[:-1], k[1:], e[:-1]
        open_ = same & (i[1:] - i[:-1] > 1) & (k_a != k_b)
        if bound_of is not None:
            tp = n - pos_below[e, k_a]
            fp = n - (k_b - pos_below[e, k_b])
            open_ &= bound_of(tp * (n + 1) + fp) > best[e]
        example, first, last = e[open_], i[:-1][open_], i[1:][open_]
        k_first, k_last = k_a[open_], k_b[open_]
        parts = THRESHOLD_SPLIT
    return best
