"""The official metric transcribed literally from the spec, dense and slow.

Kept for testing and benchmarking only; scoring never uses it (``scoring.metric.forgetting`` is
the implementation). Each step is written as docs/metric.md states it and as
the organisers' released code computes it: np.linspace grids, every sample compared
with every threshold and every interval by broadcasting ([n_models, n_thresholds]
boolean arrays), rates as means over models, one epsilon per threshold, a max over
the kept ones. Nothing is clever, so that a reader can check it against the spec line
by line; the fast implementation is tested against it.

The two deliberate departures from the released code are those of the spec: float64
throughout (the released code builds its single thresholds with torch.linspace in
float32 and averages its rates in float32), and epsilon 0 where no threshold survives
(the spec's decision for the kit; the released code's ``assert`` on an array only runs
under ``python -O``).
"""

from __future__ import annotations

import warnings

import numpy as np

DELTA = 1e-5
EPSILON_CAP = 50


def threshold_epsilons(fpr: np.ndarray, fnr: np.ndarray) -> np.ndarray:
    """Step 2.5 for arrays of rates [n_thresholds]: epsilon, NaN where discarded."""
    with np.errstate(divide="ignore", invalid="ignore"):
        candidates = np.stack([np.log(1 - DELTA - fpr) - np.log(fnr), np.log(1 - DELTA - fnr) - np.log(fpr)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: both candidates ignored
        eps: np.ndarray = np.nanmax(candidates, axis=0)
    eps = np.clip(eps, 0, None)
    eps[(fpr == 0) & (fnr == 0)] = np.inf
    eps[(fpr == 0) != (fnr == 0)] = np.nan
    return eps


def single_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 2.3: (FPR, FNR) [n_thresholds] of "positive when conf >= t", pos and neg [n_models]."""
    everything = np.concatenate([pos, neg])
    lo, hi = np.min(everything), np.max(everything)
    thresholds = np.linspace(lo, hi, int(np.ceil((hi - lo) * 100)))
    tpr = np.mean(pos[:, None] >= thresholds[None, :], axis=0)
    fpr = np.mean(neg[:, None] >= thresholds[None, :], axis=0)
    return fpr, 1 - tpr


def interval_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 2.4: (FPR, FNR) [n_intervals] of "positive when l <= conf <= r"."""
    if np.max(pos) - np.min(pos) >= np.max(neg) - np.min(neg):
        pos, neg = neg, pos
    w = np.max(pos) - np.min(pos)
    lo = np.min(pos) + w - 2
    hi = np.max(pos) + 2
    rights = np.linspace(lo, hi, int(np.ceil((hi - lo) * 100)))
    lefts = np.stack([np.linspace(r - w - 2, r - w + 2, 400) for r in rights])  # [n_rights, 400]
    l_flat = lefts.reshape(-1)
    r_flat = np.repeat(rights, 400)

    def inside(conf: np.ndarray) -> np.ndarray:  # [n_models, n_intervals]
        return (l_flat[None, :] <= conf[:, None]) & (conf[:, None] <= r_flat[None, :])

    tpr = np.mean(inside(pos), axis=0)
    fpr = np.mean(inside(neg), axis=0)
    return fpr, 1 - tpr


def example_epsilon(u: np.ndarray, r: np.ndarray) -> float:
    """Step 2 for one example: u and r are [n_models] confidences (unlearned, retrained)."""
    eps = example_epsilon_or_nan(u, r)
    return 0.0 if np.isnan(eps) else eps  # no threshold survives: no attack found it


def example_epsilon_or_nan(u: np.ndarray, r: np.ndarray) -> float:
    """Step 2 for one example, NaN where no threshold or interval survives step 2.5."""
    if np.median(r) > np.median(u):
        pos, neg = r, u
    else:
        pos, neg = u, r
    range_pos = np.max(pos) - np.min(pos)
    range_neg = np.max(neg) - np.min(neg)
    with np.errstate(invalid="ignore"):
        ratio = min(range_pos, range_neg) / max(range_pos, range_neg)  # np.float64: 0/0 is NaN
    if ratio < 0.01:
        return float(EPSILON_CAP)

    fpr_s, fnr_s = single_threshold_rates(pos, neg)
    fpr_i, fnr_i = interval_rates(pos, neg)
    eps = threshold_epsilons(np.concatenate([fpr_s, fpr_i]), np.concatenate([fnr_s, fnr_i]))
    kept = eps[~np.isnan(eps)]
    if kept.size == 0:
        return float("nan")
    return float(np.clip(np.max(kept), 0, EPSILON_CAP))


def per_example_epsilons(unlearned_conf: np.ndarray, retrained_conf: np.ndarray) -> np.ndarray:
    """Step 2 for [n_models, n_examples] arrays: epsilons [n_examples]."""
    return np.array(
        [example_epsilon(unlearned_conf[:, i], retrained_conf[:, i]) for i in range(unlearned_conf.shape[1])]
    )


def undefined_examples(unlearned_conf: np.ndarray, retrained_conf: np.ndarray) -> np.ndarray:
    """Bool [n_examples]: True where no threshold survives (those get epsilon 0)."""
    return np.array(
        [
            np.isnan(example_epsilon_or_nan(unlearned_conf[:, i], retrained_conf[:, i]))
            for i in range(unlearned_conf.shape[1])
        ]
    )


def epsilon_points(epsilons: np.ndarray, n_models: int) -> np.ndarray:
    """Step 3 as the released code loops it: bucket start -> points, first bucket that fits."""
    max_epsilon = np.ceil(np.log(n_models - 1))
    bucket_points = {}
    start, points = 0.0, 1.0
    while start + 0.5 <= max_epsilon:
        bucket_points[start] = points
        points /= 2
        start += 0.5
    out = []
    for e in epsilons:
        for start, points in bucket_points.items():
            if e < start + 0.5:
                out.append(points)
                break
        else:
            out.append(0.0)
    return np.array(out, dtype=np.float64)


def forgetting_quality(unlearned_conf: np.ndarray, retrained_conf: np.ndarray) -> float:
    """F = mean points over the forget set, for [n_models, n_examples] arrays."""
    epsilons = per_example_epsilons(unlearned_conf, retrained_conf)
    return float(np.sum(epsilon_points(epsilons, unlearned_conf.shape[0])) / len(epsilons))
