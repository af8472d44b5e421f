"""The per-example epsilons as scoring.metric.forgetting computed them before issue 31, frozen.

A copy kept only so that ``benchmarks/metric_speed.py`` can time today's code beside the
code it replaced in one run (and check both agree): one example at a time, its ~160,000
interval left ends each located among the 2N sorted values by a binary search. Scoring
never imports it.
"""

from __future__ import annotations

import numpy as np

from scoring.metric import forgetting as metric

THRESHOLDS_PER_UNIT = 100
INTERVAL_BUFFER = 2.0
LEFT_ENDS = 400


def per_example_epsilons(unlearned: np.ndarray, retrained: np.ndarray) -> np.ndarray:
    """Epsilons [n_examples] of [n_models, n_examples] confidences, 0 where undefined (one thread)."""
    table = metric._epsilon_table(unlearned.shape[0])
    epsilons = _chunk_epsilons(unlearned, retrained, table)
    epsilons[np.isnan(epsilons)] = 0.0
    return epsilons


def _chunk_epsilons(unlearned: np.ndarray, retrained: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """Epsilons of the examples in unlearned / retrained [n_models, chunk]; NaN where undefined."""
    unlearned = np.ascontiguousarray(unlearned.T)  # [chunk, n_models]: one row per example
    retrained = np.ascontiguousarray(retrained.T)
    # Step 2.1: the sample with the larger median is positive; ties make u positive.
    retrained_positive = (np.median(retrained, axis=1) > np.median(unlearned, axis=1))[:, None]
    pos = np.where(retrained_positive, retrained, unlearned)
    neg = np.where(retrained_positive, unlearned, retrained)
    pos_range = pos.max(axis=1) - pos.min(axis=1)
    neg_range = neg.max(axis=1) - neg.min(axis=1)
    # Step 2.2: the spread rule. 0/0 (two constant samples) is NaN, not < 0.01.
    with np.errstate(invalid="ignore"):
        peaky = np.minimum(pos_range, neg_range) / np.maximum(pos_range, neg_range) < metric.SPREAD_RATIO

    epsilons = np.full(len(pos), metric.EPSILON_CAP)
    for i in np.flatnonzero(~peaky):
        best = _attack_epsilon(pos[i], neg[i], pos_range[i] >= neg_range[i], table)
        # Step 2.6: +inf (perfect separation) becomes 50; no survivor (-inf) is marked NaN.
        epsilons[i] = np.nan if best == -np.inf else min(best, metric.EPSILON_CAP)
    return epsilons


def _attack_epsilon(pos: np.ndarray, neg: np.ndarray, swap: bool, table: np.ndarray | None) -> float:
    """Largest kept epsilon over both attack families (steps 2.3-2.5), -inf if none is kept.

    pos, neg are [n_models]; ``swap`` says the interval family's positive sample is neg.
    """
    n = len(pos)
    values = np.concatenate([pos, neg])
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # pos_below[k]: positives among the k smallest values (ties are harmless: every
    # count below is "how many values are < x" or "<= x", which never splits a tie).
    pos_below = np.zeros(2 * n + 1, dtype=np.intp)
    np.cumsum(order < n, out=pos_below[1:])
    below = np.arange(2 * n + 1)

    # Step 2.3: single thresholds, "positive" when conf >= t. With k = #(values < t):
    # TP = n - pos_below[k], FP = n - (k - pos_below[k]), and the table index
    # TP * (n + 1) + FP simplifies to n * n + 2n - (pos_below[k] * n + k).
    lo, hi = ordered[0], ordered[-1]
    thresholds = np.linspace(lo, hi, int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    k = np.searchsorted(ordered, thresholds, side="left")
    key = pos_below * n + below
    best = _max_epsilon(n * n + 2 * n - key[k], n, table)

    # Step 2.4: intervals [l, r] around the sample with the smaller range (the "inner"
    # one, positive for this family; ties in range make neg the inner sample).
    inner = neg if swap else pos
    inner_below = below - pos_below if swap else pos_below
    width = inner.max() - inner.min()
    lo = inner.min() + width - INTERVAL_BUFFER
    hi = inner.max() + INTERVAL_BUFFER
    rights = np.linspace(lo, hi, int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    # lefts[:, j] are the left ends of rights[j]: np.linspace with array ends computes
    # each column exactly as one call per right end would.
    lefts = np.linspace(rights - width - INTERVAL_BUFFER, rights - width + INTERVAL_BUFFER, LEFT_ENDS)
    upto_right = np.searchsorted(ordered, rights, side="right")  # #(values <= r)
    below_left = np.searchsorted(ordered, lefts, side="left")  # #(values < l), [LEFT_ENDS, n_rights]
    # TP = inner_below[kr] - inner_below[kl] and inside = kr - kl, so the table index
    # TP * (n + 1) + FP = TP * n + inside = key[kr] - key[kl]. An interval with l > r
    # gives a negative index; mode="clip" maps it to 0, the (TP = 0, FP = 0) pair,
    # which is what an empty interval is.
    key = inner_below * n + below
    codes = key[upto_right] - key[below_left]
    return max(best, _max_epsilon(codes, n, table))


def _max_epsilon(codes: np.ndarray, n: int, table: np.ndarray | None) -> float:
    """Largest epsilon over count pairs coded as TP * (n + 1) + FP (negative codes mean 0)."""
    if codes.size == 0:
        return -np.inf
    if table is not None:
        return float(np.take(table, codes, mode="clip").max())
    codes = np.unique(np.maximum(codes, 0))
    return float(metric._pair_epsilons(codes // (n + 1), codes % (n + 1), n).max())
