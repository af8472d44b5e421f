"""The part of F's model noise that runs share across examples (C), from per-model effects.

One unusual run moves every example of the forget set at once: a model that is more
confident overall, or shifted, shifts all its confidences. That shared part C of F's
variance is what resampling the examples cannot see, and the jackknife over model pairs
measured it badly: as a difference of two noisy mean squares of a non-smooth statistic,
its noise was larger than C itself and F's slope changing with N biased it low. On the
``shared`` setting of ``benchmarks/coverage.py`` (N = 16, |S| = 60, seed set 0) it gave
0.20 +- 0.48 of Var F against a true 0.35 (d = N / 8: 0.24 +- 0.83; d = N / 2: 0.06 +-
0.14), clipped to 0 in 41% of data sets; the redrawn effects below give 0.33 +- 0.26,
and 0.01 +- 0.05 where runs share nothing (the jackknife: -0.02 +- 0.60).

Here C is measured where it is smooth, in the confidences themselves, and carried into
F by recomputing it (Davison and Hinkley 1997, Bootstrap Methods, section 3.8, resampling
hierarchical data at the upper stage; the variance components are the two-way ANOVA
estimates of Searle, Casella and McCulloch 1992, Variance Components, chapter 4):

1. Each side's confidences are centred and scaled per example, and each model's row is
   regressed on ``LOADINGS``: a shift of every example (1) and a change of confidence that
   grows with the example's mean (its standardised mean confidence, as a temperature would
   act on logits). The model's coefficients are its effects.
2. Their covariance over models, less the part the examples' own noise puts into each
   coefficient (the residual mean square times (L'L)^-1), estimates the effects' true
   covariance without clipping a difference of mean squares of F; negative directions
   are set to 0 (a covariance is positive semi-definite).
3. The estimated effects are taken out of every model, and ``n_redraws`` times fresh
   effects of that covariance are put back, the same for every example of a model, and F's
   per-example points recomputed at N on both sides. C is the mean covariance between two
   examples' points over the redraws (the redraws' own noise per example is subtracted,
   as in step 2), so nothing but the shared effects moves it.

The degrees of freedom of C follow from those of the effects' variance (N - 1 models,
less the share of the coefficients' spread that is noise), counted as if C grew with
the square of the effects' variance (F's response to a shared shift is curved near
identical sides): fewer than for a linear response, so the interval errs wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scoring.metric import forgetting as metric


@dataclass(frozen=True)
class SideEffects:
    """One side's confidences with the per-model effects taken out, and the effects' law."""

    base: np.ndarray  # [n_models, n_examples]: the confidences less each model's estimated effects
    scale: np.ndarray  # [n_examples]: the per-example spread the effects are measured in
    loadings: np.ndarray  # [n_examples, n_effects]
    covariance: np.ndarray  # [n_effects, n_effects]: the effects' covariance over models (PSD)
    signal: float  # the effects' variance per example (in units of the spread)
    noise: float  # the examples' noise in the coefficients' spread, same units


def loadings(confidences: np.ndarray) -> np.ndarray:
    """[n_examples, 2]: a shift (1) and the standardised mean confidence of each example
    (the shift alone where the examples' means are all alike or too few to tell apart)."""
    mean = confidences.mean(axis=0)
    spread = mean.std()
    if spread <= 1e-12 * max(1.0, float(np.abs(mean).max())) or len(mean) < 3:
        return np.ones((len(mean), 1))
    return np.column_stack([np.ones_like(mean), (mean - mean.mean()) / spread])


def side_effects(confidences: np.ndarray) -> SideEffects:
    """The per-model effects of one side [n_models, n_examples] and their covariance (steps 1, 2)."""
    n_models, n_examples = confidences.shape
    centred = confidences - confidences.mean(axis=0)
    scale = np.sqrt(np.sum(centred**2, axis=0) / (n_models - 1))
    scale[scale == 0] = 1.0  # an example every model gives the same value: nothing to scale
    z = centred / scale
    load = loadings(confidences)
    n_effects = load.shape[1]
    gram_inv = np.linalg.inv(load.T @ load)
    coefficients = z @ load @ gram_inv  # [n_models, n_effects]
    residual = z - coefficients @ load.T
    error_df = (n_models - 1) * (n_examples - n_effects)
    mean_square = float(np.sum(residual**2)) / error_df if error_df > 0 else 0.0
    spread = np.atleast_2d(np.cov(coefficients, rowvar=False))
    values, vectors = np.linalg.eigh(spread - mean_square * gram_inv)
    covariance = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    per_example = load.T @ load / n_examples
    signal = float(np.sum(covariance * per_example))
    noise = mean_square * n_effects / n_examples
    base = confidences - scale * (coefficients @ load.T)
    return SideEffects(base, scale, load, covariance, signal, noise)


def redraw(side: SideEffects, rng: np.random.Generator) -> np.ndarray:
    """The side's models with fresh effects of the estimated covariance (step 3)."""
    n_models = side.base.shape[0]
    effects = rng.multivariate_normal(np.zeros(len(side.covariance)), side.covariance, size=n_models)
    redrawn: np.ndarray = side.base + side.scale * (effects @ side.loadings.T)
    return redrawn


def shared_variance(
    unlearned: np.ndarray, retrained: np.ndarray, n_redraws: int, rng: np.random.Generator, n_jobs: int | None
) -> tuple[float, float]:
    """(C, its degrees of freedom) for F over these examples, from ``n_redraws`` redraws.

    C is returned per pair of examples (the mean covariance between two examples'
    points); F's shared variance over |S| examples is C (|S| - 1) / |S|.
    """
    n_models, n_examples = unlearned.shape
    sides = [side_effects(conf) for conf in (unlearned, retrained)]
    if n_examples < 2 or all(side.signal <= 0 for side in sides):
        return 0.0, math.inf
    draws = [[redraw(side, rng) for _ in range(n_redraws)] for side in sides]
    side_by_side = [np.concatenate(one_side, axis=1) for one_side in draws]
    epsilons = metric.per_example_epsilons(*side_by_side, n_jobs=n_jobs)
    points = metric.epsilon_points(epsilons, n_models).reshape(n_redraws, n_examples)
    of_mean = float(points.mean(axis=1).var(ddof=1))
    own = float(points.var(axis=0, ddof=1).mean())
    covariance = (of_mean - own / n_examples) * n_examples / (n_examples - 1)
    return max(covariance, 0.0), effects_df(sides, n_models)


def effects_df(sides: list[SideEffects], n_models: int) -> float:
    """Degrees of freedom of C: those of the effects' variance, C taken as its square.

    One side's effects' variance v is estimated with Var(v) = 2 (v + noise)^2 / (N - 1)
    (a mean square over N - 1 models, less a known noise level); C ~ v^2 doubles the
    relative error; the sides add, weighted by their share of the signal.
    """
    total = sum(side.signal for side in sides)
    if total <= 0:
        return math.inf
    relative = sum(
        (side.signal / total) ** 2 * 2 * (side.signal + side.noise) ** 2 / ((n_models - 1) * side.signal**2)
        for side in sides
        if side.signal > 0
    )
    return 2 / (4 * relative) if relative > 0 else math.inf
