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

MIN_SHARED_DF = 3.0  # t_3: finite variance; C near 0 gets few df, but it is small then


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


def variance_parts(points: np.ndarray, left_out: np.ndarray, factor: float, shared: float) -> dict[str, float]:
    """Variance components of F (module doc of ``uncertainty``) from the official points [S],
    the left-out-subset points [R, n_sub] and C (``shared_effects.shared_variance``, per
    pair of examples): ``own`` (one example's model variance, jackknife), ``shared`` (C
    for F over S examples), ``examples`` (Var_examples), ``total`` (Var_examples + C) and
    ``models`` (this forget set, new seeds)."""
    n_examples = len(points)
    deviations = left_out - left_out.mean(axis=0)
    own = float((factor * np.sum(deviations**2, axis=0)).mean())
    shared = shared * (n_examples - 1) / n_examples
    # One example has no spread to resample: its jackknife variance stands in.
    examples = float(points.var(ddof=1)) / n_examples if n_examples > 1 else own
    # The jackknife overstates one example's own model variance (its points are a
    # non-smooth statistic whose variance does not shrink like 1 / N); the spread over
    # examples bounds it from above too, so the smaller of the two is used.
    models = min(own / n_examples, examples) + shared
    return {"own": own, "shared": shared, "examples": examples, "total": examples + shared, "models": models}


def examples_df(points: np.ndarray) -> float:
    """Degrees of freedom of the examples' variance, less than |S| - 1 where the points
    are heavier-tailed than a normal: Var(s^2) = sigma^4 (2 / (n - 1) + (kurtosis - 3) / n)
    (the variance of the sample variance; e.g. Cramer 1946, section 27.4), and df =
    2 sigma^4 / Var(s^2), as Satterthwaite's approximation reads it. Most points sit at
    a few low values and a few examples score high, so the plain n - 1 made the interval
    cover 94% where 95% was promised (``benchmarks/coverage.py``, seed set 0)."""
    n = len(points)
    if n < 2:
        return 1.0
    deviations = points - points.mean()
    m2 = float(np.mean(deviations**2))
    if m2 <= 0:
        return float(n - 1)
    excess = max(float(np.mean(deviations**4)) / (m2 * m2) - 3.0, 0.0)
    return 2.0 / (2.0 / (n - 1) + excess / n)


def satterthwaite(total: float, parts: tuple[tuple[float, float], ...]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates (value, df) each."""
    denominator = sum(value * value / df for value, df in parts if df > 0 and math.isfinite(df))
    if total <= 0:
        return 1.0
    return total * total / denominator if denominator > 0 else math.inf


def draw_replicates(
    points: np.ndarray, parts: dict[str, float], shared_df: float, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """F replicates [n_resamples]: bootstrap of the examples + C^(1/2) times Student noise.

    The shared part's noise is Student's t with C's degrees of freedom (at least
    ``MIN_SHARED_DF``): a normal deviate whose variance is known only to df degrees of
    freedom has that predictive law, so a C estimated from few models widens the
    interval's tails as much as it should, and no more where C is near 0. Also returns
    that noise factor [n_resamples], which the score's correlated utility noise reuses.
    The examples' variance is the replicates' own: ``stretch`` widens their interval by
    Student's quantile for its degrees of freedom.
    """
    n_examples = len(points)
    values, counts = np.unique(points, return_counts=True)
    draws = rng.multinomial(n_examples, counts / n_examples, size=n_resamples)
    noise = (
        rng.standard_normal(n_resamples)
        if not math.isfinite(shared_df)
        else rng.standard_t(max(shared_df, MIN_SHARED_DF), n_resamples)
    )
    # Expanded by (S / (S - 1))^(1/2): a bootstrap of the mean has the plug-in variance,
    # (S - 1) / S times the unbiased one (Hesterberg 2015, "What teachers should know
    # about the bootstrap", The American Statistician 69, section 4.3).
    expansion = math.sqrt(n_examples / (n_examples - 1)) if n_examples > 1 else 1.0
    centre = float(points.mean())
    examples = centre + expansion * (draws @ values / n_examples - centre)
    replicates = examples + math.sqrt(parts["shared"]) * noise
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


def acceleration(points: np.ndarray, examples_share: float) -> float:
    """BCa's acceleration of the mean of ``points`` (Efron 1987, eq. 6.6, from the
    jackknife over examples), damped by ``examples_share`` = Var_examples / Var_total:
    the shared model noise added to the replicates is symmetric and adds no skew."""
    deviations = points - points.mean()
    spread = float(np.sum(deviations**2))
    if spread <= 0:
        return 0.0
    share = max(examples_share, 0.0)
    return float(np.sum(deviations**3)) / (6 * spread * math.sqrt(spread)) * share * math.sqrt(share)


def percentiles(replicates: np.ndarray, estimate: float, accel: float, confidence_level: float) -> tuple[float, float]:
    """The BCa interval of the replicates at ``confidence_level`` (Efron 1987; DiCiccio and
    Efron 1996, section 3): the percentile interval moved by the median bias z0 of the
    replicates about ``estimate`` and stretched by the acceleration, because the points
    are skewed (most examples near 0, a few high) and a plain percentile interval of a
    skewed mean falls short on the long side."""
    alpha = 1 - confidence_level
    below = (np.count_nonzero(replicates < estimate) + 0.5 * np.count_nonzero(replicates == estimate)) / len(replicates)
    z0 = float(stats.norm.ppf(min(max(below, 1 / len(replicates)), 1 - 1 / len(replicates))))
    levels = []
    for tail in (alpha / 2, 1 - alpha / 2):
        z = z0 + float(stats.norm.ppf(tail))
        levels.append(float(stats.norm.cdf(z0 + z / (1 - accel * z))))
    low, high = np.quantile(replicates, levels)
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
        "n_redraws",
        "group_size",
        "n_model_examples",
        "random_state",
        "n_models",
        "n_examples",
    )
    return {key: result[key] for key in keys}
