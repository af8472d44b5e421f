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


def left_out_subsets(n_models: int, n_subsets: int, rng: np.random.Generator) -> np.ndarray:
    """kept [n_subsets, n_models] bool: each row leaves out d = max(1, N // 4) random pairs.

    The delete-d jackknife over random subsets (Shao and Wu 1989; Shao and Tu 1995,
    sections 2.3 and 5.2): many subsets, each nearly at N, so that F keeps its value
    there (F moves with N) while the estimate gets about min(n_subsets, N) - 1 degrees of
    freedom instead of the number of disjoint groups.
    """
    left_out = max(1, n_models // 4)
    kept = np.ones((n_subsets, n_models), dtype=bool)
    for row in kept:
        row[rng.choice(n_models, left_out, replace=False)] = False
    return kept


def variance_parts(points: np.ndarray, left_out: np.ndarray, factor: float, df: int) -> dict[str, float]:
    """Variance components of F (module doc of ``uncertainty``) from the official points [S]
    and the left-out-subset points [R, n_sub]: ``own`` (one example's model variance,
    jackknife), ``shared`` (C, clipped at 0), ``shared_df`` (its degrees of freedom),
    ``examples`` (Var_examples), ``total`` (Var_examples + C) and ``models`` (this forget
    set, new seeds); ``df`` is the jackknife's, min(R, N) - 1."""
    n_examples, n_sub = len(points), left_out.shape[1]
    deviations = left_out - left_out.mean(axis=0)
    per_example = factor * np.sum(deviations**2, axis=0)  # [n_sub]
    subset_var = factor * float(np.sum(deviations.mean(axis=1) ** 2))
    own = float(per_example.mean())
    # The mean off-diagonal covariance of the per-example jackknife deviations: what one
    # run shares across examples (unbiased; 0 in truth where runs share nothing). Its
    # noise comes mostly from the examples' own model noise (own / n_sub) and is
    # symmetric about the truth; clipped at 0 (C >= 0), with the clipped estimate's own
    # variance carried into the degrees of freedom below.
    covariance = (subset_var - own / n_sub) * n_sub / (n_sub - 1) if n_sub > 1 else 0.0
    shared = max(covariance, 0.0) * (n_examples - 1) / n_examples
    # One example has no spread to resample: its jackknife variance stands in.
    examples = float(points.var(ddof=1)) / n_examples if n_examples > 1 else own
    # The jackknife overstates one example's own model variance (its points are a
    # non-smooth statistic whose variance does not shrink like 1 / N); the spread over
    # examples bounds it from above too, so the smaller of the two is used.
    models = min(own / n_examples, examples) + shared
    total = examples + shared
    shared_df = positive_part_df(shared, own / n_sub, df)
    return {
        "own": own,
        "shared": shared,
        "shared_df": shared_df,
        "examples": examples,
        "total": total,
        "models": models,
    }


def positive_part_df(shared: float, own_mean: float, df: int) -> float:
    """Degrees of freedom of C^+ = max(C_hat, 0), for Satterthwaite's formula.

    C_hat is a difference of two mean squares (the subsets' mean, with df degrees of
    freedom, minus the examples' own part own_mean = own / n_sub), so its variance is
    about 2 (own_mean^2 + C^2) / df (Satterthwaite 1946, for a linear combination of
    mean squares); the positive part of a normal of that spread around C^+ has the
    variance g(m) s^2, m = C^+ / s (a truncated normal's second moment). The df of C^+
    is then 2 (C^+)^2 / (g(m) s^2): few where C is small beside its noise, many where
    it stands out.
    """
    spread2 = 2 * (own_mean * own_mean + shared * shared) / max(df, 1)
    if shared <= 0 or spread2 <= 0:
        return math.inf
    m = shared / math.sqrt(spread2)
    cdf, pdf = float(stats.norm.cdf(m)), float(stats.norm.pdf(m))
    variance = (m * m + 1) * cdf + m * pdf - (m * cdf + pdf) ** 2
    return 2 * shared * shared / (variance * spread2)


def satterthwaite(total: float, parts: tuple[tuple[float, float], ...]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates (value, df) each."""
    denominator = sum(value * value / df for value, df in parts if df > 0 and math.isfinite(df))
    if total <= 0:
        return 1.0
    return total * total / denominator if denominator > 0 else math.inf


def draw_replicates(
    points: np.ndarray, parts: dict[str, float], n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """F replicates [n_resamples]: bootstrap of the examples + normal noise of variance C.

    Also returns the noise's normal factor [n_resamples], which the score's correlated
    utility noise reuses. The uncertainty of the variance estimates is not in the
    replicates: ``stretch`` widens their percentile interval by Student's quantile.
    """
    n_examples = len(points)
    values, counts = np.unique(points, return_counts=True)
    draws = rng.multinomial(n_examples, counts / n_examples, size=n_resamples)
    noise = rng.standard_normal(n_resamples)
    replicates = draws @ values / n_examples + math.sqrt(parts["shared"]) * noise
    if n_examples == 1:  # nothing to resample: the example's own model noise instead
        replicates = replicates + math.sqrt(parts["own"]) * rng.standard_normal(n_resamples)
    return replicates, noise


def stretch(estimate: float, low: float, high: float, confidence_level: float, df: float) -> tuple[float, float]:
    """A percentile interval widened about the estimate by t_df / z: a variance estimated
    with df degrees of freedom, as a Student interval would (keeps its skew)."""
    factor = student_quantile(confidence_level, df) / float(stats.norm.ppf(0.5 + confidence_level / 2))
    return estimate - factor * (estimate - low), estimate + factor * (high - estimate)


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
    """Two-sided Student quantile for df degrees of freedom (the normal's for df = inf)."""
    if not math.isfinite(df):
        return float(stats.norm.ppf(0.5 + confidence_level / 2))
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
