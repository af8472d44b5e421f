"""Intervals for F and for the official score: how far to trust the one number.

Owns the uncertainty the kit reports *beside* the official score (issue 11), which never
feeds back into it: a 95% interval for F and for the final score over new forget
examples and new seeds, and (``models_only``) over new seeds on this forget set. Pure
functions of the saved arrays (confidences [n_models, n_examples], per-model accuracies
[n_models]) and integer seeds, so that anyone can recompute them from a score folder.
The estimator's ceiling, which reuses these intervals, is ``scoring.assess.ceiling``; per-run
diagnostics are ``scoring.assess.diagnostics``.

Where the uncertainty comes from
--------------------------------
F = mean over the forget set of points(eps_i), and eps_i depends on all N unlearned and
all N retrained models. Two things are random: which examples stand in the forget set
(a sample of a population of such examples), and the 2N models (seeds). Its variance is

    Var F = Var_examples + C,

where Var_examples is what resampling examples sees (the spread of the per-example points
over S: it contains each example's own model noise) and C is the part of the model noise
that is shared across examples (one unusual run moves every example), which resampling
examples misses. The interval for a score "on new forget examples and new seeds" uses
both; ``models_only`` gives the interval for "this forget set, new seeds", whose
variance is the per-example model noise / S plus C.

- Examples: an ordinary nonparametric bootstrap of the per-example points, as
  scipy.stats.bootstrap would do it, expanded by (|S| / (|S| - 1))^(1/2) (a bootstrap of
  a mean has the plug-in variance; Hesterberg 2015). It is free: the points take at most
  15 distinct values, so a resample is one multinomial draw over them (9,999 by default).
- C, the shared part: ``scoring.assess.shared_effects`` measures each model's effects
  (a shift of every example, a change of confidence with the example's level) in the
  confidences, where they are smooth, estimates their covariance over models by
  two-way ANOVA (not clipped as a difference of F's mean squares), and redraws them
  ``n_redraws`` times to see how much they move F's points together. Its degrees of
  freedom are those of the effects' variance (about N - 1, fewer where noise dominates).
- One example's own model noise (for ``models_only`` only): a delete-d jackknife over
  model *pairs* (U_k, R_k) on random subsets (Shao and Wu 1989, "A general theory for
  jackknife variance estimation", Ann. Statist. 17; Shao and Tu 1995, The Jackknife and
  Bootstrap, sections 2.3 and 5.2): each of ``n_groups`` = R random subsets leaves out
  d = N // 4 pairs and F's points are recomputed on the N - d left; variance (N - d) /
  (d R) * sum_r (point_(r) - mean)^2 per example. The points are a non-smooth statistic
  whose variance does not shrink like 1 / N, so the jackknife overstates it (2 times at
  d = N / 4, 4.6 times at d = 1): the spread over examples, which bounds it from above
  too, is used wherever it is smaller.
- Degrees of freedom: the examples' part has |S| - 1, fewer where the points are
  heavy-tailed (``resampling.examples_df``); C has its own; ``models_only`` combines the
  two by Satterthwaite's (1946) formula.
- Score = F * Q with Q = (RA_U / RA_R) * (TA_U / TA_R): Q's variance by the delete-1
  jackknife over pairs (Q is a smooth function of means, where that is exact enough),
  its covariance with F from the jackknife's subsets.
- Intervals: BCa percentiles (Efron 1987) of (example bootstrap of F) + C^(1/2) *
  Student noise of C's df (and, for the score, times Q plus its correlated noise),
  widened about the estimate by t_df / z for the examples' df, so a small, skewed F keeps
  a skewed interval and a noisy C widens it (the points are right-skewed: a plain percentile
  interval missed the truth below it two times out of three); the ``models_only``
  intervals are Student intervals (Satterthwaite's df). F is clipped to [0, 1], the score at 0.

Why not resample the models with replacement
--------------------------------------------
A bootstrap resample of N models holds about 0.63 N distinct ones; duplicates make
each per-example sample lumpier and add a second dose of sampling noise to a statistic
that measures the *distance* between two samples (a maximum over ~160,000 attacks), so
the epsilons rise and F falls. Measured (N = 32, |S| = 126, 15 resamples): identical
distributions, F = 0.173 observed, fresh draws average 0.181 (sd 0.009), with-replacement
resamples average 0.127 (sd 0.012); a mean shift of 0.5 sd, F = 0.131, fresh 0.129 (sd
0.005), resamples 0.100 (sd 0.008). Their percentile interval would miss the truth
entirely. Subsampling m < N models without replacement avoids duplicates but estimates
F at m, and F depends strongly on N (0.087 at N = 8, 0.015 at N = 32 for the same
fine-tune). The delete-d jackknife recomputes F only on genuine models, nearly at N
(d = N // 4), and is trusted only with C (above); its estimate's degrees of freedom
are carried into a Student quantile.

Cost
----
The example part is free. The model parts recompute epsilons on a random subset of
``n_model_examples`` examples (C needs many pairs of examples, not all of them): the
jackknife R = ``n_groups`` times at 3N / 4, the redraws ``n_redraws`` times at N, so
about (R + n_redraws) * min(|S|, 500) / |S| official F's whatever N: at the defaults,
6.4 official F's at |S| = 5,000 and 64 at |S| <= 500 (the metric got 6-40 times faster
in issue 31: ``benchmarks/metric_speed.py``). The ceiling costs n_splits official F's
(at N per half) plus one interval. ``benchmarks/uncertainty_speed.py`` prints these
costs beside the official F's.

Coverage: what the promise is worth
-----------------------------------
``benchmarks/coverage.py`` measures it against a known truth (docs/explanation/
uncertainty.md, "What the intervals promise", has the table: seed set 1, 1,000 intervals
a cell, 95.1% over N >= 16). Tried on seed set 0: C from the jackknife, ``shared``
91-93%; redrawn effects with Satterthwaite's df, 92.5-96% and ``shift`` 92.7-94% with
most misses below the truth; BCa balanced the misses; the kurtosis df and C's Student
noise (kept) gave ``shared`` 93.8% at 1.06 times, ``identical`` 95.0%, ``shift`` 95.5%.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scoring.assess.resampling import (
    acceleration,
    correlation,
    draw_replicates,
    examples_df,
    jackknife_ratio_variance,
    left_out_points,
    left_out_subsets,
    percentiles,
    recorded_inputs,
    satterthwaite,
    stretch,
    student_quantile,
    utility_ratio,
    variance_parts,
)
from scoring.assess.shared_effects import shared_variance
from scoring.checks import check_accuracies, check_confidences, check_epsilons, check_int, check_number
from scoring.metric import forgetting as metric

CONFIDENCE_LEVEL = 0.95
N_RESAMPLES = 9999  # bootstrap resamples of the examples: free (one multinomial draw each)
# Random subsets of N // 4 model pairs left out in turn, each one a recomputation of
# epsilons on n_model_examples examples. 32 (about N - 1 degrees of freedom up to N = 32):
# C's noise on seed set 0 of benchmarks/coverage.py (N = 16, |S| = 60) was 0.5 times the
# examples' variance, against 1.4 times with 4 disjoint groups; 64 subsets gained nothing
# at N = 16 (module doc, "Coverage").
N_GROUPS = 32
# Redraws of the per-model effects for C: the redraws' Monte Carlo noise was below the
# effects' own sampling noise at 32 (96 changed C's spread by nothing, seed set 0).
N_REDRAWS = 32
N_MODEL_EXAMPLES = 500  # examples on which the model part recomputes epsilons


# ----------------------------------------------------------------------------------
# Intervals for F and for the score.


def forgetting_quality_interval(
    unlearned_conf: ArrayLike,
    retrained_conf: ArrayLike,
    *,
    confidence_level: float = CONFIDENCE_LEVEL,
    n_resamples: int = N_RESAMPLES,
    n_groups: int = N_GROUPS,
    n_redraws: int = N_REDRAWS,
    n_model_examples: int = N_MODEL_EXAMPLES,
    random_state: int = 0,
    n_jobs: int | None = None,
    epsilons: ArrayLike | None = None,
) -> dict[str, Any]:
    """Interval for F over new forget examples and new runs and references (see module doc).

    Parameters
    ----------
    unlearned_conf, retrained_conf : arrays [n_models, n_examples]
        Logit-scaled confidences of the forget set, as for ``metric.per_example_epsilons``;
        N >= 3 models per side.
    confidence_level : float in (0, 1)
    n_resamples : int
        Bootstrap resamples of the forget examples.
    n_groups : int >= 2
        Groups of model pairs left out in turn (at most N are used): the cost.
    n_redraws : int >= 2
        Redraws of the per-model effects that measure C (``scoring.assess.shared_effects``).
    n_model_examples : int >= 1
        Random examples on which the left-out-group epsilons are recomputed.
    random_state : int >= 0
        Seed of every random choice: the same seed gives the same interval.
    n_jobs : int, optional
        Threads for the epsilons.
    epsilons : array [n_examples], optional
        ``metric.per_example_epsilons(unlearned_conf, retrained_conf)`` if already at hand.

    Returns
    -------
    dict
        ``estimate`` (the official F), ``low``, ``high``, ``standard_error``;
        ``models_only``: {``low``, ``high``, ``standard_error``, ``degrees_of_freedom``}
        for this forget set and new seeds (a Student interval, Satterthwaite's df);
        ``standard_errors``: {``examples``, ``models``, ``models_shared``};
        and every input: ``method``, ``confidence_level``, ``n_resamples``, ``n_groups``
        (used), ``group_size``, ``n_model_examples`` (used), ``random_state``,
        ``n_models``, ``n_examples``.
    """
    parts = _forgetting_quality_parts(
        unlearned_conf,
        retrained_conf,
        confidence_level,
        n_resamples,
        n_groups,
        n_redraws,
        n_model_examples,
        random_state,
        n_jobs,
        epsilons,
    )
    result: dict[str, Any] = parts["result"]
    return result


def score_interval(
    unlearned_conf: ArrayLike,
    retrained_conf: ArrayLike,
    retain_acc_unlearned: ArrayLike,
    test_acc_unlearned: ArrayLike,
    retain_acc_retrained: ArrayLike,
    test_acc_retrained: ArrayLike,
    *,
    confidence_level: float = CONFIDENCE_LEVEL,
    n_resamples: int = N_RESAMPLES,
    n_groups: int = N_GROUPS,
    n_redraws: int = N_REDRAWS,
    n_model_examples: int = N_MODEL_EXAMPLES,
    random_state: int = 0,
    n_jobs: int | None = None,
    epsilons: ArrayLike | None = None,
) -> dict[str, Any]:
    """Intervals for F and for score = F * (RA_U / RA_R) * (TA_U / TA_R), from one computation.

    Parameters
    ----------
    unlearned_conf, retrained_conf : arrays [n_models, n_examples]
    retain_acc_unlearned, test_acc_unlearned : arrays [n_models]
        Per-run accuracies of the unlearned models, in run order (run k pairs with
        reference k, as row k of the confidence arrays).
    retain_acc_retrained, test_acc_retrained : arrays [n_models]
        The same for the retrained models.
    Other parameters as in ``forgetting_quality_interval``.

    Returns
    -------
    dict
        ``forgetting_quality``: the dict of ``forgetting_quality_interval``;
        ``score``: ``estimate`` (the official score), ``low``, ``high``,
        ``standard_error`` (sd of its replicates), ``models_only`` (as for F),
        ``utility_ratio`` (Q), ``utility_standard_error``, and the same recorded inputs.
    """
    n_models = np.shape(unlearned_conf)[0] if np.ndim(unlearned_conf) == 2 else None
    names = ("retain_acc_unlearned", "test_acc_unlearned", "retain_acc_retrained", "test_acc_retrained")
    values = (retain_acc_unlearned, test_acc_unlearned, retain_acc_retrained, test_acc_retrained)
    accuracies = check_accuracies(zip(names, values, strict=True), n_models)
    parts = _forgetting_quality_parts(
        unlearned_conf,
        retrained_conf,
        confidence_level,
        n_resamples,
        n_groups,
        n_redraws,
        n_model_examples,
        random_state,
        n_jobs,
        epsilons,
    )
    f_result = parts["result"]
    estimate = metric.official_score(f_result["estimate"], *accuracies)
    ratio = utility_ratio(*accuracies)
    ratio_var = jackknife_ratio_variance(accuracies)
    kept = parts["kept"]  # [n_groups, n_models] bool: the pairs each replicate kept
    ratios = np.array([utility_ratio(*(a[keep] for a in accuracies)) for keep in kept])
    cov = parts["factor"] * float(
        np.sum((parts["group_means"] - parts["group_means"].mean()) * (ratios - ratios.mean()))
    )

    f_value, shared, models_var = f_result["estimate"], parts["shared"], parts["models_var"]
    # Percentile interval: the F replicates (examples + shared model noise) times Q plus
    # its own noise, correlated with the shared part as far as a valid covariance allows.
    rho = correlation(cov, shared, ratio_var)
    z = parts["noise"]
    ratio_noise = math.sqrt(ratio_var) * (rho * z + math.sqrt(1 - rho * rho) * parts["rng"].standard_normal(len(z)))
    replicates = parts["replicates"] * (ratio + ratio_noise)
    bounds = percentiles(replicates, estimate, parts["acceleration"], confidence_level)
    low, high = stretch(estimate, *bounds, confidence_level, parts["df_examples"])
    # Models only: delta method around F * Q.
    cov_models = correlation(cov, models_var, ratio_var) * math.sqrt(models_var * ratio_var)
    var_models = ratio**2 * models_var + f_value**2 * ratio_var + 2 * f_value * ratio * cov_models
    se_models = math.sqrt(max(var_models, 0.0))
    z_level = student_quantile(confidence_level, parts["df_models"])
    score = {
        "estimate": estimate,
        "low": max(low, 0.0),
        "high": max(high, 0.0),
        "standard_error": float(np.std(replicates, ddof=1)) if len(replicates) > 1 else 0.0,
        "models_only": {
            "low": max(estimate - z_level * se_models, 0.0),
            "high": estimate + z_level * se_models,
            "standard_error": se_models,
            "degrees_of_freedom": parts["df_models"],
        },
        "utility_ratio": ratio,
        "utility_standard_error": math.sqrt(ratio_var),
        **recorded_inputs(f_result),
    }
    return {"forgetting_quality": f_result, "score": score}


def _forgetting_quality_parts(
    unlearned_conf: ArrayLike,
    retrained_conf: ArrayLike,
    confidence_level: float,
    n_resamples: int,
    n_groups: int,
    n_redraws: int,
    n_model_examples: int,
    random_state: int,
    n_jobs: int | None,
    epsilons: ArrayLike | None,
) -> dict[str, Any]:
    """The F interval plus what the score interval reuses (replicates, groups, noise)."""
    unlearned, retrained = check_confidences(unlearned_conf, retrained_conf)
    n_models, n_examples = unlearned.shape
    if n_models < 3:
        raise ValueError(f"an interval needs at least 3 models per side (leaving some out), got N = {n_models}")
    confidence_level = check_number(confidence_level, "confidence_level", 0, strict=True, maximum=1)
    n_resamples = check_int(n_resamples, "n_resamples", 1)
    n_groups = check_int(n_groups, "n_groups", 2)
    n_redraws = check_int(n_redraws, "n_redraws", 2)
    n_sub = min(check_int(n_model_examples, "n_model_examples", 1), n_examples)
    random_state = check_int(random_state, "random_state", 0)
    points = _official_points(unlearned, retrained, epsilons, n_jobs)
    estimate = float(points.sum() / n_examples)

    rng = np.random.default_rng(random_state)
    kept = left_out_subsets(n_models, n_groups, rng)
    group_size = n_models - int(kept[0].sum())
    examples = np.sort(rng.choice(n_examples, n_sub, replace=False))
    left_out = left_out_points(unlearned[:, examples], retrained[:, examples], kept, n_jobs)  # [R, n_sub]
    factor = (n_models - group_size) / (group_size * n_groups)  # Shao and Wu's (N - d) / (d R)
    shared, shared_df = shared_variance(unlearned[:, examples], retrained[:, examples], n_redraws, rng, n_jobs)
    parts = variance_parts(points, left_out, factor, shared)

    replicates, noise = draw_replicates(points, parts, shared_df, n_resamples, rng)
    models_var, shared = parts["models"], parts["shared"]
    # The stretch carries the examples' df alone: C's uncertainty is in its Student noise.
    df_examples = examples_df(points)
    accel = acceleration(points, parts["examples"] / parts["total"] if parts["total"] > 0 else 1.0)
    bounds = percentiles(replicates, estimate, accel, confidence_level)
    low, high = stretch(estimate, *bounds, confidence_level, df_examples)
    own_part = min(parts["own"] / n_examples, parts["examples"])
    df_models = satterthwaite(models_var, ((own_part, df_examples), (shared, shared_df)))
    half_width = student_quantile(confidence_level, df_models) * math.sqrt(models_var)
    result = {
        "estimate": estimate,
        "low": min(max(low, 0.0), 1.0),
        "high": min(max(high, 0.0), 1.0),
        "standard_error": math.sqrt(parts["total"]),
        "models_only": {
            "low": max(estimate - half_width, 0.0),
            "high": min(estimate + half_width, 1.0),
            "standard_error": math.sqrt(models_var),
            "degrees_of_freedom": df_models,
        },
        "standard_errors": {
            "examples": math.sqrt(parts["examples"]),
            "models": math.sqrt(models_var),
            "models_shared": math.sqrt(shared),
        },
        "method": (
            "BCa bootstrap over forget examples + shared model noise from redrawn per-model effects"
            " + delete-d jackknife over random subsets of (run, reference) pairs (models only)"
        ),
        "confidence_level": confidence_level,
        "n_resamples": n_resamples,
        "n_groups": n_groups,
        "n_redraws": n_redraws,
        "group_size": group_size,
        "n_model_examples": n_sub,
        "random_state": random_state,
        "n_models": n_models,
        "n_examples": n_examples,
    }
    return {
        "result": result,
        "kept": kept,
        "factor": factor,
        "group_means": left_out.mean(axis=1),
        "shared": shared,
        "models_var": models_var,
        "noise": noise,
        "replicates": replicates,
        "rng": rng,
        "df_models": df_models,
        "df_examples": df_examples,
        "acceleration": accel,
    }


def _official_points(
    unlearned: np.ndarray, retrained: np.ndarray, epsilons: ArrayLike | None, n_jobs: int | None
) -> np.ndarray:
    """Points [n_examples] of the official epsilons (computed unless given)."""
    n_models, n_examples = unlearned.shape
    if epsilons is None:
        epsilons = metric.per_example_epsilons(unlearned, retrained, n_jobs=n_jobs)
    epsilons = check_epsilons(epsilons)
    if epsilons.shape != (n_examples,):
        raise ValueError(f"epsilons must be [n_examples] = [{n_examples}], got shape {epsilons.shape}")
    return metric.epsilon_points(epsilons, n_models)
