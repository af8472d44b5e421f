"""Input checks for the metric's arrays: one-line ValueErrors that name the argument.

Owns how a wrong confidence array, model count, epsilon vector, accuracy or job count is
reported, for ``scoring.metric.forgetting`` and for the modules that take the same arrays
(``uncertainty``, ``ceiling``, ``diagnostics``, ``auxiliary``), so that bad input gets
the same message wherever it enters.
"""

from __future__ import annotations

import os

import numpy as np

# Logit-scaled confidences lie within +-103.7 (ln of 1e-45); anything far beyond is not
# one, and would make the threshold grid (100 points per unit) explode.
CONFIDENCE_LIMIT = 1e4


def real_array(value, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array


def check_confidences(unlearned_conf, retrained_conf) -> tuple[np.ndarray, np.ndarray]:
    arrays = {}
    for name, value in (("unlearned_conf", unlearned_conf), ("retrained_conf", retrained_conf)):
        array = real_array(value, name)
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D [n_models, n_examples], got shape {array.shape}")
        arrays[name] = array
    unlearned, retrained = arrays["unlearned_conf"], arrays["retrained_conf"]
    if unlearned.shape[0] != retrained.shape[0]:
        raise ValueError(
            f"unlearned_conf has N = {unlearned.shape[0]} models but retrained_conf has "
            f"N = {retrained.shape[0]}: both sides need the same N"
        )
    if unlearned.shape[1] != retrained.shape[1]:
        raise ValueError(
            f"unlearned_conf has S = {unlearned.shape[1]} examples but retrained_conf has "
            f"S = {retrained.shape[1]}: both must hold the same forget examples in the same order"
        )
    check_n_models(unlearned.shape[0])
    if unlearned.shape[1] == 0:
        raise ValueError("no forget examples: the confidence arrays have S = 0 columns")
    for name, array in arrays.items():
        bad = ~np.isfinite(array)
        if bad.any():
            model, example = np.argwhere(bad)[0]
            raise ValueError(f"{name} has {int(bad.sum())} non-finite values (first: model {model}, example {example})")
        if np.abs(array).max() > CONFIDENCE_LIMIT:
            raise ValueError(
                f"{name} has values beyond +-{CONFIDENCE_LIMIT:g}: not logit-scaled confidences "
                "(those lie within +-103.7)"
            )
    return unlearned.astype(np.float64, copy=False), retrained.astype(np.float64, copy=False)


def check_n_models(n_models) -> int:
    if isinstance(n_models, bool) or not isinstance(n_models, (int, np.integer)):
        raise ValueError(f"n_models must be an integer, got {n_models!r}")
    if n_models < 2:
        raise ValueError(f"need at least 2 models per side, got N = {n_models}")
    return int(n_models)


def check_epsilons(epsilons) -> np.ndarray:
    epsilons = real_array(epsilons, "epsilons").astype(np.float64, copy=False)
    if epsilons.ndim != 1:
        raise ValueError(f"epsilons must be 1-D [n_examples], got shape {epsilons.shape}")
    if np.isnan(epsilons).any() or (epsilons < 0).any():
        raise ValueError("epsilons must be >= 0 and not NaN")
    return epsilons


def mean_accuracy(value, name: str) -> float:
    array = real_array(value, name).astype(np.float64, copy=False)
    if array.ndim > 1 or array.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D array [n_models], got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any() or (array > 1).any():
        raise ValueError(f"{name} must hold accuracies in [0, 1], got values from {array.min()} to {array.max()}")
    return float(array.mean())


def resolve_jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
    return int(n_jobs)
