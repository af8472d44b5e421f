"""The resampling pieces of the intervals: variance parts, replicates, the utility ratio's jackknife.

``scoring.assess.uncertainty`` says why each is what it is (its module docstring) and
assembles them into the F and score intervals; ``scoring.assess.ceiling`` reuses
``student_quantile``. Pure functions of arrays and a numpy Generator.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from scoring.metric import forgetting as metric


def variance_parts(points: np.ndarray, left_out: np.ndarray, factor: float) -> dict[str, float]:
    """Variance components of F (module doc of ``uncertainty``) from the official points [S]
    and the left-out-group points [G, n_sub]: ``own`` (one example's model variance,
    jackknife), ``shared`` (C, clipped at 0), ``examples`` (Var_examples), ``total``
    (Var_examples + C) and ``models`` (this forget set, new seeds)."""
    n_examples, n_sub = len(points), left_out.shape[1]
    group_means = left_out.mean(axis=1)
    per_example = factor * np.sum((left_out - left_out.mean(axis=0)) ** 2, axis=0)  # [n_sub]
    subset_var = factor * float(np.sum((group_means - group_means.mean()) ** 2))
    own = float(per_example.mean())
    # The mean off-diagonal covariance of the per-example jackknife deviations: what one
    # run shares across examples. Clipped at 0: left unclipped, its noise (a negative
    # estimate shrinks the interval exactly when it is needed) cost 5-10 points of
    # coverage on seed set 0 of benchmarks/coverage.py; clipped, it widens the interval
    # where nothing is shared (the width ratios of the README's table).
    covariance = (subset_var - own / n_sub) * n_sub / (n_sub - 1) if n_sub > 1 else 0.0
    shared = max(covariance, 0.0) * (n_examples - 1) / n_examples
    # One example has no spread to resample: its jackknife variance stands in.
    examples = float(points.var(ddof=1)) / n_examples if n_examples > 1 else own
    # The jackknife overstates one example's own model variance (its points are a
    # non-smooth statistic whose variance does not shrink like 1 / N); the spread over
    # examples bounds it from above too, so the smaller of the two is used.
    models = min(own / n_examples, examples) + shared
    total = examples + shared
    return {"own": own, "shared": shared, "examples": examples, "total": total, "models": models}


def satterthwaite(total: float, parts: tuple[tuple[float, float], ...]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates (value, df) each."""
    denominator = sum(value * value / df for value, df in parts if df > 0)
    return total * total / denominator if total > 0 and denominator > 0 else 1.0


def draw_replicates(
    points: np.ndarray, parts: dict[str, float], df: int, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """F replicates [n_resamples]: bootstrap of the examples + Student(df) noise of variance C.

    Also returns the noise's normal factor [n_resamples], which the score's correlated
    utility noise reuses. Student noise carries the uncertainty of C, estimated from
    df + 1 groups, into the interval (as a t interval does for an estimated variance).
    """
    n_examples = len(points)
    values, counts = np.unique(points, return_counts=True)
    draws = rng.multinomial(n_examples, counts / n_examples, size=n_resamples)
    noise = rng.standard_normal(n_resamples)
    student = noise * np.sqrt(df / rng.chisquare(df, n_resamples))
    replicates = draws @ values / n_examples + math.sqrt(parts["shared"]) * student
    if n_examples == 1:  # nothing to resample: the example's own model noise instead
        replicates = replicates + math.sqrt(parts["own"]) * rng.standard_normal(n_resamples)
    return replicates, noise


def left_out_points(unlearned: np.ndarray, retrained: np.ndarray, kept: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """Points [n_groups, n_examples] with the pairs outside kept[g] left out, g by g.

    Every group keeps the same number of pairs, so the groups' subsets are laid side by
    side as one wider forget set and scored in one vectorised call.
    """
    n_kept = int(kept[0].sum())
    side_by_side = [np.concatenate([conf[keep] for keep in kept], axis=1) for conf in (unlearned, retrained)]
    epsilons = metric.per_example_epsilons(*side_by_side, n_jobs=n_jobs)
    points: np.ndarray = metric.epsilon_points(epsilons, n_kept).reshape(len(kept), -1)
    return points


def utility_ratio(ra_u: np.ndarray, ta_u: np.ndarray, ra_r: np.ndarray, ta_r: np.ndarray) -> float:
    """Q = (RA_U / RA_R) * (TA_U / TA_R) from per-model accuracies [n_models]."""
    return float((ra_u.mean() / ra_r.mean()) * (ta_u.mean() / ta_r.mean()))


def jackknife_ratio_variance(accuracies: tuple[np.ndarray, ...]) -> float:
    """Delete-1 jackknife variance of Q over the N (run, reference) pairs."""
    n = len(accuracies[0])
    means = [(a.sum() - a) / (n - 1) for a in accuracies]  # [n]: each pair left out in turn
    ra_u, ta_u, ra_r, ta_r = means
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (ra_u / ra_r) * (ta_u / ta_r)
    if not np.isfinite(ratios).all():
        return 0.0  # a retrained mean of 0 once a pair is left out: no variance to speak of
    return float((n - 1) / n * np.sum((ratios - ratios.mean()) ** 2))


def correlation(cov: float, var_a: float, var_b: float) -> float:
    """cov / sqrt(var_a var_b) clipped to [-1, 1]; 0 where a variance is 0."""
    if var_a <= 0 or var_b <= 0:
        return 0.0
    return float(np.clip(cov / math.sqrt(var_a * var_b), -1.0, 1.0))


def percentiles(replicates: np.ndarray, confidence_level: float) -> tuple[float, float]:
    """The two-sided percentile interval of the replicates at ``confidence_level``."""
    alpha = 1 - confidence_level
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def student_quantile(confidence_level: float, df: float) -> float:
    """Two-sided Student quantile for df degrees of freedom."""
    return float(stats.t.ppf(0.5 + confidence_level / 2, df))


def recorded_inputs(result: dict[str, Any]) -> dict[str, Any]:
    """The inputs an interval records beside it (seed, resamples, groups, sizes), from F's result."""
    keys = (
        "method",
        "confidence_level",
        "n_resamples",
        "n_groups",
        "group_size",
        "n_model_examples",
        "random_state",
        "n_models",
        "n_examples",
    )
    return {key: result[key] for key in keys}
