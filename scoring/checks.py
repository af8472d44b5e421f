"""Input checks at the door: every check of the scorer's arguments and arrays, in one place.

Modelled on scikit-learn's ``_param_validation``: a function states its constraints by
calling one of these, and a wrong value ends in a one-line ValueError that names the
argument and says what was expected, the same message wherever it enters. Numbers:
``check_int``, ``check_number``, ``check_seconds`` (and the predicates ``is_int`` and
``is_number`` where a caller words its own error); command-line text:
``parse_positive_number``, ``parse_positive_int``; the metric's arrays:
``check_confidences``, ``check_n_models``, ``check_epsilons``, ``check_accuracies``,
``mean_accuracy``, ``real_array``, ``resolve_jobs``; names: ``check_team``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from typing import Any, TypeGuard

import numpy as np

# Logit-scaled confidences lie within +-103.7 (ln of 1e-45); anything far beyond is not
# one, and would make the threshold grid (100 points per unit) explode.
CONFIDENCE_LIMIT = 1e4
TEAM_MAX_LENGTH = 64
_TEAM = re.compile(r"[^\W_][\w .+@-]*", re.UNICODE)  # starts with a letter or digit


# ----------------------------------------------------------------------------------
# Numbers.


def is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    """A Python or numpy integer, not a bool (``True`` is an int to Python, never a count here)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float | np.integer[Any] | np.floating[Any]]:
    """A real Python or numpy number that is not NaN, not a bool."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and not math.isnan(value)
    )


def check_int(value: object, name: str, minimum: int, why: str = "") -> int:
    """``value`` as an int, or ValueError: ``{name} must be an integer >= {minimum}{why}``."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{why}, got {value!r}")
    return int(value)


def check_number(
    value: object, name: str, minimum: float, *, strict: bool = False, maximum: float | None = None
) -> float:
    """``value`` as a float at least (``strict``: above) ``minimum`` and, if given, below ``maximum``."""
    bound = f"{'>' if strict else '>='} {minimum:g}"
    expected = bound if maximum is None else f"in ({minimum:g}, {maximum:g})"
    if not is_number(value):
        raise ValueError(f"{name} must be a number {expected}, got {value!r}")
    above = value > minimum if strict else value >= minimum
    if not above or (maximum is not None and not value < maximum):
        raise ValueError(f"{name} must be a number {expected}, got {value!r}")
    return float(value)


def check_seconds(value: object, name: str) -> float:
    """A finite duration above 0, or ValueError naming ``name``."""
    if not is_number(value) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def parse_positive_number(text: str) -> float:
    """A command line's finite number above 0 (``--time-limit 2.5``)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def parse_positive_int(text: str, what: str) -> int:
    """A command line's whole number >= 1: ``what`` names it in the error (``threads``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"expected a positive number of {what}, got {text!r}")
    return value


def resolve_jobs(n_jobs: object) -> int:
    """Threads to use: ``n_jobs``, or every core this process may run on where it is None."""
    if n_jobs is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not is_int(n_jobs) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
    return int(n_jobs)


# ----------------------------------------------------------------------------------
# The metric's arrays.


def real_array(value: object, name: str) -> np.ndarray:
    """``value`` as a numpy array of integers or floats, or ValueError naming ``name``."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array


def check_n_models(n_models: object) -> int:
    """N, the models per side: an integer >= 2 (the metric compares two samples)."""
    if not is_int(n_models):
        raise ValueError(f"n_models must be an integer, got {n_models!r}")
    if n_models < 2:
        raise ValueError(f"need at least 2 models per side, got N = {n_models}")
    return int(n_models)


def check_confidences(unlearned_conf: object, retrained_conf: object) -> tuple[np.ndarray, np.ndarray]:
    """Both confidence arrays [n_models, n_examples] as float64: same shape, N >= 2, S >= 1, finite, logit-scaled."""
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


def check_epsilons(epsilons: object) -> np.ndarray:
    """Per-example epsilons [n_examples] as float64, each >= 0."""
    array = real_array(epsilons, "epsilons").astype(np.float64, copy=False)
    if array.ndim != 1:
        raise ValueError(f"epsilons must be 1-D [n_examples], got shape {array.shape}")
    if np.isnan(array).any() or (array < 0).any():
        raise ValueError("epsilons must be >= 0 and not NaN")
    return array


def mean_accuracy(value: object, name: str) -> float:
    """The mean of an accuracy or of per-model accuracies [n_models], each in [0, 1]."""
    array = real_array(value, name).astype(np.float64, copy=False)
    if array.ndim > 1 or array.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D array [n_models], got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any() or (array > 1).any():
        raise ValueError(f"{name} must hold accuracies in [0, 1], got values from {array.min()} to {array.max()}")
    return float(array.mean())


def check_accuracies(named: Iterable[tuple[str, object]], n_models: int | None) -> tuple[np.ndarray, ...]:
    """Per-run accuracies, each 1-D [n_models] in [0, 1], as float64 arrays in the order given."""
    out = []
    for name, value in named:
        array = real_array(value, name).astype(np.float64, copy=False)
        if array.ndim != 1 or (n_models is not None and len(array) != n_models):
            raise ValueError(
                f"{name} must be 1-D [n_models] = [{n_models}] (one accuracy per run), got shape {array.shape}"
            )
        if not np.isfinite(array).all() or (array < 0).any() or (array > 1).any():
            raise ValueError(f"{name} must hold accuracies in [0, 1]")
        out.append(array)
    return tuple(out)


# ----------------------------------------------------------------------------------
# Names.


def check_team(name: object) -> str:
    """The team (or participant) name a score records, stripped: it is shown on pages and in CSV
    files, so it is kept plain (letters, digits, single spaces and ``. _ - + @``, at most 64
    characters). A file name is no identity: two teams may hand in the same file."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            "the team name is empty: give the team (or participant) that handed the submission in, e.g. --team team-a"
        )
    name = name.strip()
    if len(name) > TEAM_MAX_LENGTH or not _TEAM.fullmatch(name) or "  " in name:
        raise ValueError(
            f"team name {name[:80]!r} is not accepted: use at most {TEAM_MAX_LENGTH} letters, digits, single spaces "
            "and . _ - + @, starting with a letter or digit"
        )
    return name
