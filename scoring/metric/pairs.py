"""Bookkeeping of the coarse-to-fine search over intervals: count pairs as table codes,
upper bounds of a set of pairs, ranges cut into pieces, maxima per example.

An interval with counts kl = #(values < l) and kr = #(values <= r) has
TP = inner_below[kr] - inner_below[kl] and FP = (kr - kl) - TP; its index in the
(TP, FP) tables of ``scoring.metric.forgetting`` is TP * (n + 1) + FP.
"""

from __future__ import annotations

import numpy as np

from scoring.metric.thresholds import EpsilonOf


def split(first: np.ndarray, final: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of at most ``size`` consecutive integers covering each [first, final] (none if
    first > final): (parent, piece first, piece final), in order."""
    pieces = np.maximum((final - first) // size + 1, 0)
    parent = np.repeat(np.arange(len(first)), pieces)
    piece_first = first[parent] + size * (np.arange(len(parent)) - np.repeat(np.cumsum(pieces) - pieces, pieces))
    return parent, piece_first, np.minimum(piece_first + size - 1, final[parent])


def codes(key: np.ndarray, example: np.ndarray, kl: np.ndarray, kr: np.ndarray) -> np.ndarray:
    """Codes TP * (n + 1) + FP of intervals with counts kl = #(values < l), kr = #(values <= r)
    in the given examples (key [examples, 2N + 1]; the rest broadcast); <= 0 if empty."""
    row = example * key.shape[1]  # flat indexing: faster than a pair of index arrays
    flat = key.ravel()
    codes: np.ndarray = flat[row + kr] - flat[row + kl]
    return codes


def bounds(
    bound_of: EpsilonOf,
    inner_below: np.ndarray,
    example: np.ndarray,
    kl_low: np.ndarray,
    kl_high: np.ndarray,
    kr_low: np.ndarray,
    kr_high: np.ndarray,
) -> np.ndarray:
    """Upper bounds of the epsilons of intervals with kl in [kl_low, kl_high] and kr in
    [kr_low, kr_high] (arguments broadcast): TP <= TP(kl_low, kr_high), FP >= FP(kl_high, kr_low)."""
    n = inner_below.shape[1] // 2
    row = example * inner_below.shape[1]
    flat = inner_below.ravel()
    tp = np.maximum(flat[row + kr_high] - flat[row + kl_low], 0)
    fp = np.maximum(kr_low - flat[row + kr_low] - (kl_high - flat[row + kl_high]), 0)
    return bound_of(tp * (n + 1) + fp)


def segment_max(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Max of each consecutive segment of values (segment e holds counts[e] of them); -inf if empty."""
    best = np.full(len(counts), -np.inf)
    filled = counts > 0
    if filled.any():
        starts = (np.cumsum(counts) - counts)[filled]
        best[filled] = np.maximum.reduceat(values, starts)
    return best
