"""The official score of the NeurIPS 2023 Machine Unlearning Challenge, exact and fast.

Pure functions on numpy arrays; the source of truth is the metric's page (docs/metric.md), whose
steps the docstrings below number. Nothing here knows about models, files or torch.

Exact: every threshold and interval is the one the spec's ``np.linspace`` grids give,
compared with the same ``>=`` / ``<=``, and every kept (TPR, FPR) pair is turned into
an epsilon by the same float64 expression, so the per-example epsilons equal those of
the literal transcription in ``scoring.metric.transcription`` (the tests check this).

Fast: rates only change where a grid point crosses a sample value, and most attacks are
skipped by an upper bound of their epsilon (``scoring.metric.attacks``); the epsilon of
every possible count pair, and the bound, are tabulated once per N. Examples are
processed in chunks, vectorised within a chunk, the chunks on a thread pool (numpy
releases the GIL in the ufuncs and gathers that do the work); the working memory of a
chunk does not grow with |S|.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike

import scoring.metric.attacks as attacks
from scoring.checks import (
    check_confidences,
    check_epsilons,
    check_n_models,
    mean_accuracy,
    real_array,
    resolve_jobs,
)

DELTA = 1e-5  # the delta of the (epsilon, delta) bound each attack estimates
EPSILON_CAP = 50.0  # epsilon of the spread rule and of perfect separation (worth 0 points)
SPREAD_RATIO = 0.01  # min(range) / max(range) below this: epsilon = cap, no attack is run
BIN_WIDTH = 0.5  # bin k = [0.5k, 0.5k + 0.5) is worth 2^-k points
LOG_OFFSET = 1e-45  # keeps ln(p) and ln(q) finite in the logit scaling
CHUNK_SIZE = 256  # examples per task at most: small enough to balance the cores, large enough to amortise
CHUNK_VALUES = 2**16  # and at most this many sample values (2N per example): bounds a chunk's memory
PARALLEL_MIN_EXAMPLES = 2 * CHUNK_SIZE  # below this, one thread does it all
_TABLE_MAX_MODELS = 2048  # up to this N, the epsilon of every (TP, FP) pair is tabulated once


# ----------------------------------------------------------------------------------
# Step 1: per-model statistic.


def logit_scaled_confidence(logits: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """LiRA's logit-scaled confidence of the true label, computed stably (spec step 1).

    ``conf = ln(p + 1e-45) - ln(q + 1e-45)`` with ``p`` the softmax probability of the
    label and ``q`` the sum of the other probabilities (a sum, not ``1 - p``, so that
    confident predictions keep their resolution).

    Parameters
    ----------
    logits : array [n_examples, n_classes]
        One model's logits; converted to float64 before the softmax, never modified.
    targets : integer array [n_examples]
        True labels in ``[0, n_classes)``.

    Returns
    -------
    conf : float64 array [n_examples]
    """
    logits = real_array(logits, "logits")
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D [n_examples, n_classes], got shape {logits.shape}")
    n, n_classes = logits.shape
    if n_classes < 2:
        raise ValueError(f"logits need at least 2 classes, got {n_classes}")
    targets = np.asarray(targets)
    if targets.ndim != 1 or targets.shape[0] != n:
        raise ValueError(f"targets must be 1-D with one label per row of logits ({n}), got shape {targets.shape}")
    if targets.dtype.kind not in "iu":
        raise ValueError(f"targets must be integer labels, got dtype {targets.dtype}")
    if n and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(f"targets must lie in [0, {n_classes}), got values from {targets.min()} to {targets.max()}")
    if not np.isfinite(logits).all():
        raise ValueError("logits must be finite (found NaN or infinity)")

    probs = logits.astype(np.float64)  # a copy: the caller's array is left alone
    probs -= probs.max(axis=1, keepdims=True)
    np.exp(probs, out=probs)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    p = probs[rows, targets]
    probs[rows, targets] = 0.0
    q = probs.sum(axis=1)
    conf: np.ndarray = np.log(p + LOG_OFFSET) - np.log(q + LOG_OFFSET)
    return conf


# ----------------------------------------------------------------------------------
# Step 2: per-example epsilon.


@overload
def per_example_epsilons(
    unlearned_conf: ArrayLike, retrained_conf: ArrayLike, *, n_jobs: int | None = None
) -> np.ndarray: ...
@overload
def per_example_epsilons(
    unlearned_conf: ArrayLike, retrained_conf: ArrayLike, *, n_jobs: int | None = None, return_undefined: Literal[False]
) -> np.ndarray: ...
@overload
def per_example_epsilons(
    unlearned_conf: ArrayLike, retrained_conf: ArrayLike, *, n_jobs: int | None = None, return_undefined: Literal[True]
) -> tuple[np.ndarray, np.ndarray]: ...
def per_example_epsilons(
    unlearned_conf: ArrayLike, retrained_conf: ArrayLike, *, n_jobs: int | None = None, return_undefined: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Epsilon of each forget example: the best attack telling the two samples apart (step 2).

    Parameters
    ----------
    unlearned_conf : array [n_models, n_examples]
        Logit-scaled confidences of the forget set under the N unlearned models.
    retrained_conf : array [n_models, n_examples]
        The same under the N retrained models (same N, same examples in the same order).
    n_jobs : int, optional
        Threads to use; default: every core this process may run on. Fewer than
        PARALLEL_MIN_EXAMPLES examples are done in the calling thread.
    return_undefined : bool, default False
        Also return which examples had no surviving threshold (see below), so that a
        score can say how many there were.

    Returns
    -------
    epsilons : float64 array [n_examples]
        In [0, 50]; 50 for the spread rule and for perfect separation; 0 where no
        threshold or interval survives step 2.5 (each has exactly one of FPR, FNR
        equal to 0: two constant, nearly equal samples). The spec decides that case
        so: no attack found the example, so it scores full points.
    undefined : bool array [n_examples]
        Only with ``return_undefined=True``: True where no threshold survived (those
        examples have epsilon 0).

    Raises
    ------
    ValueError
        On malformed input only.
    """
    unlearned, retrained = check_confidences(unlearned_conf, retrained_conf)
    n_models, n_examples = unlearned.shape
    tabulated = n_models <= _TABLE_MAX_MODELS
    table = _epsilon_table(n_models) if tabulated else None
    bounds = _dominance_table(n_models) if tabulated else None

    size = max(1, min(CHUNK_SIZE, CHUNK_VALUES // (2 * n_models)))

    def chunk(start: int) -> np.ndarray:
        stop = start + size
        return _chunk_epsilons(unlearned[:, start:stop], retrained[:, start:stop], table, bounds)

    starts = range(0, n_examples, size)
    workers = min(resolve_jobs(n_jobs), len(starts))
    if workers == 1 or (n_examples < PARALLEL_MIN_EXAMPLES and len(starts) < 4):
        epsilons = np.concatenate([chunk(start) for start in starts])
    else:
        # Threads suffice: the gathers and ufuncs that do the work release the
        # GIL (a chunk holds it for a small share of its time), and threads share the
        # table and the input without copies or process start-up.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            epsilons = np.concatenate(list(pool.map(chunk, starts)))
    # An undefined example is marked NaN inside the chunks, the one value no attack gives.
    undefined = np.isnan(epsilons)
    epsilons[undefined] = 0.0
    return (epsilons, undefined) if return_undefined else epsilons


def _chunk_epsilons(
    unlearned: np.ndarray, retrained: np.ndarray, table: np.ndarray | None, bounds: np.ndarray | None
) -> np.ndarray:
    """Epsilons of the examples in unlearned / retrained [n_models, chunk]; NaN where undefined.

    ``table`` and ``bounds`` are ``_epsilon_table(n)`` and ``_dominance_table(n)``, or None
    (large N: epsilons computed pair by pair, no attack skipped).
    """
    # [chunk, n_models]: one row per example, each sample sorted (every step below is blind
    # to the order within a sample; sorted, the medians are read off and the two samples
    # merge in one pass).
    unlearned = np.sort(unlearned.T, axis=1)
    retrained = np.sort(retrained.T, axis=1)
    # Step 2.1: the sample with the larger median is positive; ties make u positive.
    retrained_positive = (_sorted_median(retrained) > _sorted_median(unlearned))[:, None]
    pos = np.where(retrained_positive, retrained, unlearned)
    neg = np.where(retrained_positive, unlearned, retrained)
    pos_range = pos[:, -1] - pos[:, 0]  # max - min
    neg_range = neg[:, -1] - neg[:, 0]
    # Step 2.2: the spread rule. 0/0 (two constant samples) is NaN, not < 0.01.
    with np.errstate(invalid="ignore"):
        peaky = np.minimum(pos_range, neg_range) / np.maximum(pos_range, neg_range) < SPREAD_RATIO

    epsilons = np.full(len(pos), EPSILON_CAP)
    attacked = np.flatnonzero(~peaky)
    if attacked.size == 0:
        return epsilons
    n = pos.shape[1]
    epsilon_of = functools.partial(_code_epsilons, n=n, table=table)
    bound_of = None if bounds is None else functools.partial(np.take, bounds)
    swap = pos_range[attacked] >= neg_range[attacked]
    best = attacks.best_epsilons(pos[attacked], neg[attacked], swap, epsilon_of, bound_of)
    # Step 2.6: +inf (perfect separation) becomes 50; no survivor (-inf) is marked NaN.
    epsilons[attacked] = np.where(best == -np.inf, np.nan, np.minimum(best, EPSILON_CAP))
    return epsilons


def _sorted_median(x: np.ndarray) -> np.ndarray:
    """np.median of each row of x, rows sorted: the same mean of the same middle value(s)."""
    half = x.shape[1] // 2
    middle = x[:, half - 1 : half + 1] if x.shape[1] % 2 == 0 else x[:, half : half + 1]
    median: np.ndarray = np.mean(middle, axis=1)
    return median


def _code_epsilons(codes: np.ndarray, *, n: int, table: np.ndarray | None) -> np.ndarray:
    """Epsilon of count pairs coded as TP * (n + 1) + FP (a code <= 0 is the (0, 0) pair)."""
    codes = np.maximum(codes, 0)
    if table is not None:
        return np.take(table, codes)
    return _pair_epsilons(codes // (n + 1), codes % (n + 1), n)


@functools.lru_cache(maxsize=4)
def _epsilon_table(n: int) -> np.ndarray:
    """Epsilon of every count pair, flat [(n + 1) * (n + 1)], index TP * (n + 1) + FP."""
    tp, fp = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    table = _pair_epsilons(tp.ravel(), fp.ravel(), n)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=4)
def _dominance_table(n: int) -> np.ndarray:
    """Upper bounds for skipping attacks, flat like ``_epsilon_table``: at TP * (n + 1) + FP,
    the largest epsilon of any pair (tp, fp) with tp <= TP and fp >= FP (-inf if all discarded).

    A running max over the table itself, so it bounds the float epsilons exactly, whatever
    the rounding of the logs (step 2.5 rises with TP and falls with FP only in exact arithmetic).
    """
    table = _epsilon_table(n).reshape(n + 1, n + 1)
    bounds = np.maximum.accumulate(table, axis=0)  # over tp <= TP
    bounds = np.maximum.accumulate(bounds[:, ::-1], axis=1)[:, ::-1]  # over fp >= FP
    flat = np.ascontiguousarray(bounds).ravel()
    flat.flags.writeable = False
    return flat


def _pair_epsilons(tp: np.ndarray, fp: np.ndarray, n: int) -> np.ndarray:
    """Step 2.5 for true / false positive counts out of n: epsilon, or -inf if discarded."""
    tpr = tp / n  # the same float64 value as the mean of n booleans
    fnr = 1 - tpr
    fpr = fp / n
    with np.errstate(divide="ignore", invalid="ignore"):
        # A candidate is NaN when its log argument is negative (a rate of 1); fmax
        # ignores it, and a pair whose candidates are both NaN stays NaN (discarded).
        eps: np.ndarray = np.fmax(np.log(1 - DELTA - fpr) - np.log(fnr), np.log(1 - DELTA - fnr) - np.log(fpr))
    eps = np.maximum(eps, 0.0)  # clipped below at 0; NaN stays NaN
    fpr_zero, fnr_zero = fpr == 0, fnr == 0
    eps[fpr_zero & fnr_zero] = np.inf  # perfect separation
    eps[(fpr_zero != fnr_zero) | np.isnan(eps)] = -np.inf  # discarded
    return eps


# ----------------------------------------------------------------------------------
# Step 3: points and forgetting quality.


def n_epsilon_bins(n_models: int) -> int:
    """How many 0.5-wide bins exist for N models: those ending at or before ceil(ln(N - 1)).

    The largest finite epsilon N models can show is about ln(N - 1), so no bin is
    defined beyond it (14 bins for N = 512; none for N = 2, where every F is 0).
    """
    n_models = check_n_models(n_models)
    return 2 * math.ceil(math.log(n_models - 1))


def epsilon_bin_index(epsilons: ArrayLike, n_models: int) -> np.ndarray:
    """Bin k of each epsilon (``0.5k <= eps < 0.5k + 0.5``), or n_bins beyond the last bin.

    Parameters
    ----------
    epsilons : array [n_examples], values >= 0
    n_models : int
        N, which fixes how many bins exist.

    Returns
    -------
    bins : int array [n_examples]
    """
    epsilons = check_epsilons(epsilons)
    n_bins = n_epsilon_bins(n_models)
    inside = epsilons < n_bins * BIN_WIDTH
    # eps / 0.5 is exact (a power of two), so the floor is the bin of the half-open edges.
    return np.where(inside, np.floor(np.where(inside, epsilons, 0.0) / BIN_WIDTH), n_bins).astype(np.intp)


def epsilon_points(epsilons: ArrayLike, n_models: int) -> np.ndarray:
    """Points of each epsilon (step 3): 2^-k in bin k, 0 beyond the last bin (so 0 for 50).

    Parameters
    ----------
    epsilons : array [n_examples], values >= 0
    n_models : int

    Returns
    -------
    points : float64 array [n_examples], each a power of two in (0, 1] or 0
    """
    bins = epsilon_bin_index(epsilons, n_models)
    return np.where(bins < n_epsilon_bins(n_models), np.ldexp(1.0, -bins), 0.0)


def epsilon_bin_counts(epsilons: ArrayLike, n_models: int) -> np.ndarray:
    """How many examples fall in each bin: int array [n_bins + 1], the last one beyond."""
    bins = epsilon_bin_index(epsilons, n_models)
    return np.bincount(bins, minlength=n_epsilon_bins(n_models) + 1)


def forgetting_quality_from_epsilons(epsilons: ArrayLike, n_models: int) -> float:
    """F = mean points over the forget set, from per-example epsilons [n_examples]."""
    points = epsilon_points(epsilons, n_models)
    if points.size == 0:
        raise ValueError("epsilons is empty: F needs at least one forget example")
    # Sums of powers of two >= 2^-13 are exact in float64, so the order does not matter.
    return float(points.sum() / points.size)


def forgetting_quality(unlearned_conf: ArrayLike, retrained_conf: ArrayLike, *, n_jobs: int | None = None) -> float:
    """Forgetting quality F in [0, 1] (steps 2-3); compare F only at the same N.

    Parameters
    ----------
    unlearned_conf, retrained_conf : arrays [n_models, n_examples]
        Logit-scaled confidences of the forget set under the unlearned and the
        retrained models.
    n_jobs : int, optional
        Threads to use; default: every available core.
    """
    epsilons = per_example_epsilons(unlearned_conf, retrained_conf, n_jobs=n_jobs)
    return forgetting_quality_from_epsilons(epsilons, np.shape(unlearned_conf)[0])


# ----------------------------------------------------------------------------------
# Step 4: utility and the final score.


def official_score(
    forgetting_quality: float,
    retain_acc_unlearned: ArrayLike,
    test_acc_unlearned: ArrayLike,
    retain_acc_retrained: ArrayLike,
    test_acc_retrained: ArrayLike,
) -> float:
    """score = F * (RA_U / RA_R) * (TA_U / TA_R), the ratios not capped at 1 (step 4).

    Parameters
    ----------
    forgetting_quality : float in [0, 1]
    retain_acc_unlearned, test_acc_unlearned : array [n_models] or float
        Per-model accuracies of the unlearned models on the retain and test sets (or
        their mean); each in [0, 1]. RA and TA are their plain means.
    retain_acc_retrained, test_acc_retrained : array [n_models] or float
        The same for the retrained models; their means must be > 0.
    """
    quality = np.asarray(forgetting_quality)
    if quality.ndim != 0 or quality.dtype.kind not in "iuf" or not 0 <= float(quality) <= 1:
        raise ValueError(f"forgetting_quality must be a number in [0, 1], got {forgetting_quality!r}")
    ra_u = mean_accuracy(retain_acc_unlearned, "retain_acc_unlearned")
    ta_u = mean_accuracy(test_acc_unlearned, "test_acc_unlearned")
    ra_r = mean_accuracy(retain_acc_retrained, "retain_acc_retrained")
    ta_r = mean_accuracy(test_acc_retrained, "test_acc_retrained")
    for name, value in (("retain_acc_retrained", ra_r), ("test_acc_retrained", ta_r)):
        if value == 0:
            raise ValueError(f"{name} is 0 on average: the utility ratio divides by it")
    return float(quality) * (ra_u / ra_r) * (ta_u / ta_r)
