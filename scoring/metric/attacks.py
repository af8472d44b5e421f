"""Steps 2.3-2.6 of the official metric for many examples at once: the best attack's epsilon.

The spec's attacks are ~160,000 intervals and a few hundred thresholds per example, each
a pair of ``np.linspace`` grids. An attack's epsilon depends only on its counts (TP, FP),
and those change only where a grid point crosses one of the 2N sample values. Counts are
found exactly, either by locating a value on a grid (``#(g_i <= v)`` is one division
``(v - start) / step``, checked against the grid points on either side of it computed by
the very float operations ``np.linspace`` uses: ``i * step + start``, the last point
``stop``) or by locating a grid point among the sorted values (``grids.rank``, a binary search
vectorised across queries). From them every *distinct* attack follows:

- single thresholds: "conf >= t" with ``k = #(values < t)``; k rises with t;
- intervals [l_i, r]: the interval count kl is reached at right end j iff a left end lies
  in the gap (v_{kl-1}, v_kl]; the right ends where it does form at most two runs of j,
  found in closed form, so the distinct (kl, kr) pairs are enumerated directly.

Most attacks are never looked at. Step 2.5's epsilon rises with TP and falls with FP, so
a set of attacks whose counts lie in TP <= TP*, FP >= FP* is bounded by the largest
epsilon of any such pair, read from a running max over the (TP, FP) table
(``scoring.metric.forgetting._dominance_table``, exact whatever the rounding of the
logs). Attacks are scored coarse to fine: a few located ones give a floor, and a stretch
of thresholds, a block of gaps, a run of right ends is looked into only where its bound
beats the best epsilon found so far. Skipped attacks cannot exceed that max, so it is
the dense transcription's, bit for bit; at N = 512 about 1 gap in 25 and a handful of
pairs per example are looked at. ``benchmarks/metric_speed.py`` prints the speed-up.
"""

from __future__ import annotations

import numpy as np

import scoring.metric.grids as grids
import scoring.metric.pairs as pairs
from scoring.metric.grids import count_at, grid_count, grid_points, linspace_step
from scoring.metric.thresholds import THRESHOLDS_PER_UNIT, EpsilonOf, threshold_epsilons

INTERVAL_BUFFER = 2.0  # how far right ends and left ends reach beyond the narrow sample
LEFT_ENDS = 400  # left ends per right end
GAP_BLOCK = 16  # gaps bounded together before any is looked at on its own
SEGMENT_PIECES = (16, 4)  # a gap's kr runs bounded in pieces of these many before each is scored
RIGHT_BLOCK = 16  # a settled gap's right ends bounded in blocks of this many
PAIR_LIMIT = 60_000  # more distinct (kr, kl) pairs than this (large N): locate the 160,000 left ends instead
_STILL = 1e-9  # a drift of the grid's phase below this over all right ends counts as none


def best_epsilons(
    pos: np.ndarray, neg: np.ndarray, swap: np.ndarray, epsilon_of: EpsilonOf, bound_of: EpsilonOf | None = None
) -> np.ndarray:
    """Largest kept epsilon over both attack families, -inf where none is kept (steps 2.3-2.5).

    Parameters
    ----------
    pos, neg : float64 [n_examples, n_models]
        The positive and the negative sample of each example (step 2.1).
    swap : bool [n_examples]
        True where the interval family's positive ("inner") sample is neg (step 2.4).
    epsilon_of : callable
        Step 2.5 for count pairs coded as TP * (n_models + 1) + FP (a code <= 0 stands
        for the discarded (0, 0) pair): their epsilons, -inf where discarded.
    bound_of : callable, optional
        For codes of (TP, FP) with both >= 0: an upper bound of the epsilon of every pair
        (tp, fp) with tp <= TP and fp >= FP. Intervals that cannot beat an attack already
        found are then skipped; the max is the same, bit for bit.
    """
    n_examples, n = pos.shape
    values = np.concatenate([pos, neg], axis=1)
    # Any order of equal values would do: every count below is "values < x" or "values <= x",
    # read only where a run of equal values starts or ends. The stable sort (a merge) is
    # fastest when each sample comes sorted, as forgetting.py passes them.
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    # pos_below[:, k]: positives among the k smallest values.
    pos_below = np.zeros((n_examples, 2 * n + 1), dtype=np.intp)
    np.cumsum(order < n, axis=1, out=pos_below[:, 1:])
    below = np.arange(2 * n + 1)
    best = threshold_epsilons(ordered, pos_below, epsilon_of, bound_of)
    inner = np.where(swap[:, None], neg, pos)
    inner_below = np.where(swap[:, None], below - pos_below, pos_below)
    best_interval = _interval_epsilons(ordered, inner, inner_below, best, epsilon_of, bound_of)
    result: np.ndarray = np.maximum(best, best_interval)
    return result


def _interval_epsilons(
    ordered: np.ndarray,
    inner: np.ndarray,
    inner_below: np.ndarray,
    found: np.ndarray,
    epsilon_of: EpsilonOf,
    bound_of: EpsilonOf | None,
) -> np.ndarray:
    """Step 2.4: intervals [l, r] around the inner sample (the one with the smaller range).

    Right end j is r_j = linspace(lo, hi, M)[j] (M = 400 or 401), its left ends
    l_{j,i} = linspace(r_j - w - 2, r_j - w + 2, 400)[i]: up to rounding, base + j * s + i * h
    with s the right ends' step and h = 4 / 399. The interval count kl = #(values < l) is
    reached at right end j iff a left end lies in the gap (v_{kl-1}, v_kl], and for each
    gap the right ends where it does form at most two runs of j, found in closed form
    (below). So the distinct (kr, kl) pairs are enumerated directly: (gaps) x (distinct
    kr over the gap's runs) instead of 160,000 intervals. A gap bordered by a value within
    1e-6 grid steps of that idealised grid (rounding could then decide a count) is
    "settled" right end by right end with np.linspace's own points (``_settled_pairs``);
    an example whose grid is not of that form, or with more pairs to score than
    PAIR_LIMIT, is done by locating every left end (``_located_interval_epsilon``), as
    exact and slower.

    With ``bound_of``, gaps are first bounded in blocks of GAP_BLOCK: a block whose pairs
    cannot rise above the best attack ``found`` so far (the single thresholds) is skipped
    (``pairs.bounds``); in the gaps left, the pairs at the two ends of each run raise that
    floor, and runs (then pieces of SEGMENT_PIECES kr runs) and settled gaps' blocks of
    RIGHT_BLOCK right ends bounded by it are skipped too. At N = 512 about 1 gap in 25 is
    looked at. The result is the largest kept epsilon or the floor, whichever is larger,
    so the caller's max is unchanged.
    """
    n_examples, n_values = ordered.shape
    n = n_values // 2
    key = inner_below * n + np.arange(n_values + 1)  # TP * (n + 1) + FP of [l, r] is key[kr] - key[kl]
    width = inner.max(axis=1) - inner.min(axis=1)
    lo = inner.min(axis=1) + width - INTERVAL_BUFFER
    hi = inner.max(axis=1) + INTERVAL_BUFFER
    num = np.ceil((hi - lo) * THRESHOLDS_PER_UNIT).astype(np.intp)  # right ends: 400 or 401
    step = linspace_step(lo, hi, num)
    n_rights = int(num.max())
    # kr_j = #(values <= r_j) = #{v : #(r < v) <= j}: each value located once on the right-end grid.
    right_of = grid_count(ordered, lo[:, None], step[:, None], hi[:, None], num[:, None], strict=True)
    flat = right_of + (n_rights + 1) * np.arange(n_examples)[:, None]
    per_right = np.bincount(flat.ravel(), minlength=n_examples * (n_rights + 1)).reshape(n_examples, -1)
    upto_right = np.cumsum(per_right, axis=1)[:, :-1]  # [examples, rights]

    # Positions on the idealised left grid of right end 0 (in steps h); x_v(j) = a_v - j * rho.
    h = 2 * INTERVAL_BUFFER / (LEFT_ENDS - 1)
    rho = step / h
    drift = 1 - rho  # 0 (M = 400) or about 1 / 400 (M = 401): a_v - j * rho = a_v + j * drift - j
    a = (ordered - (lo - width - INTERVAL_BUFFER)[:, None]) / h
    last = num - 1
    # The idealised grid applies where a_v + j * drift spans at most one step.
    ok = (drift >= -_STILL) & (drift * last <= 1 + _STILL) & np.isfinite(a).all(axis=1)
    # Gap kl is (v_{kl-1}, v_kl]: in grid steps (padded[kl], padded[kl + 1]].
    infinity = np.full((n_examples, 1), np.inf)
    padded = np.concatenate([-infinity, a, infinity], axis=1)

    # Blocks of gaps [g0, g1] that may hold a pair above the floor; their gaps one by one.
    g0 = np.arange(0, n_values + 1, GAP_BLOCK)
    g1 = np.minimum(g0 + GAP_BLOCK - 1, n_values)
    best: np.ndarray = found.copy() if bound_of is not None else np.full(n_examples, -np.inf)
    keep = np.broadcast_to(ok[:, None], (n_examples, len(g0)))
    if bound_of is not None:
        e = np.arange(n_examples)[:, None]
        j_low, j_high = _right_end_envelope(padded[:, g0], padded[:, g1 + 1], rho[:, None], last[:, None])
        kr_low, kr_high = upto_right[e, j_low], upto_right[e, j_high]
        keep = keep & (pairs.bounds(bound_of, inner_below, e, g0, g1, kr_low, kr_high) > best[:, None])
    example, block = np.nonzero(keep)
    sizes = (g1 - g0 + 1)[block]
    example = np.repeat(example, sizes)
    gap = np.repeat(g0[block], sizes) + np.arange(len(example)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    lower, upper = padded[example, gap], padded[example, gap + 1]
    rho_k, drift_k, last_k = rho[example], drift[example], last[example]
    ja, jb = _reached_runs(lower, upper, rho_k, drift_k, last_k)  # [gaps, 2]: j-runs where gap kl is reached
    # A gap with an end on (or within rounding of) the idealised grid is settled right end
    # by right end with np.linspace's own points (the inner sample's minimum is such a value
    # by construction: it is the last left end of the first right end).
    near_lower = _near_grid(lower, drift_k, last_k)
    near_upper = _near_grid(upper, drift_k, last_k)
    settled = near_lower | near_upper
    ja[settled] = 1
    jb[settled] = 0

    # Distinct kr over a j-run: the runs of equal kr it overlaps (global numbering).
    new_run = np.ones(upto_right.shape, dtype=bool)
    new_run[:, 1:] = upto_right[:, 1:] != upto_right[:, :-1]
    run_of = (np.cumsum(new_run.ravel()) - 1).reshape(upto_right.shape)
    run_kr = upto_right.ravel()[new_run.ravel()]
    live = ja <= jb
    # Segments: a gap (owner, an index into the gaps above) with a range of kr runs;
    # settled gaps: a range of right ends, within one of those a rounding could reach.
    owner = np.nonzero(live)[0]
    seg_first = run_of[example[owner], np.clip(ja[live], 0, n_rights - 1)]
    seg_final = run_of[example[owner], np.clip(jb[live], 0, n_rights - 1)]
    s_owner = np.flatnonzero(settled)
    j_low, j_high = _right_end_envelope(lower[s_owner], upper[s_owner], rho_k[s_owner], last_k[s_owner])
    parent, j_first, j_final = pairs.split(j_low, j_high, RIGHT_BLOCK)
    s_owner = s_owner[parent]
    if bound_of is not None:
        # Score the pairs at both ends of each segment (they are reached) to raise the
        # floor, skip the segments bounded by it; again on ever shorter pieces.
        for size in (None, *SEGMENT_PIECES):
            if size is not None:
                parent, seg_first, seg_final = pairs.split(seg_first, seg_final, size)
                owner = owner[parent]
            e, kl = example[owner], gap[owner]
            kr_first, kr_final = run_kr[seg_first], run_kr[seg_final]
            ends = np.maximum(
                epsilon_of(pairs.codes(key, e, kl, kr_first)), epsilon_of(pairs.codes(key, e, kl, kr_final))
            )
            np.maximum.at(best, e, ends)
            keep = pairs.bounds(bound_of, inner_below, e, kl, kl, kr_first, kr_final) > best[e]
            owner, seg_first, seg_final = owner[keep], seg_first[keep], seg_final[keep]
        e, kl = example[s_owner], gap[s_owner]
        keep = pairs.bounds(bound_of, inner_below, e, kl, kl, upto_right[e, j_first], upto_right[e, j_final]) > best[e]
        s_owner, j_first, j_final = s_owner[keep], j_first[keep], j_final[keep]
    # Too many pairs (large N): locate the left ends instead.
    seg_size, block_size = seg_final - seg_first + 1, j_final - j_first + 1
    work = np.bincount(example[owner], seg_size, n_examples) + np.bincount(example[s_owner], block_size, n_examples)
    ok &= work <= PAIR_LIMIT
    keep = ok[example[owner]]
    owner, seg_first, seg_size = owner[keep], seg_first[keep], seg_size[keep]
    keep = ok[example[s_owner]]
    s_owner, j_first, block_size = s_owner[keep], j_first[keep], block_size[keep]

    # One (kr, kl) pair per kr run of a segment, example-major.
    which = np.repeat(np.arange(len(owner)), seg_size)
    runs = seg_first[which] + np.arange(len(which)) - (np.cumsum(seg_size) - seg_size)[which]
    # TP = inner_below[kr] - inner_below[kl], inside = kr - kl, so the index
    # TP * (n + 1) + FP = key[kr] - key[kl]; an empty interval (kl >= kr) gives <= 0,
    # the discarded (TP = 0, FP = 0) pair.
    pair_example = example[owner[which]]
    eps = epsilon_of(pairs.codes(key, pair_example, gap[owner[which]], run_kr[runs]))
    best = np.maximum(best, pairs.segment_max(eps, np.bincount(pair_example, minlength=n_examples)))
    if len(s_owner):
        rights = grid_points(np.arange(n_rights), lo[:, None], step[:, None], hi[:, None], num[:, None])
        start = rights - width[:, None] - INTERVAL_BUFFER
        stop = rights - width[:, None] + INTERVAL_BUFFER
        grid = (start, (stop - start) / (LEFT_ENDS - 1), stop)
        which = np.repeat(np.arange(len(s_owner)), block_size)
        j = j_first[which] + np.arange(len(which)) - (np.cumsum(block_size) - block_size)[which]
        k = s_owner[which]
        gaps = (k, example[k], gap[k], near_lower[k], near_upper[k], j)
        e, kl, kr = _settled_pairs(ordered, a, rho, grid, gaps, upto_right)
        eps = epsilon_of(pairs.codes(key, e, kl, kr))
        best = np.maximum(best, pairs.segment_max(eps, np.bincount(e, minlength=n_examples)))
    for slow in np.flatnonzero(~ok):
        best[slow] = _located_interval_epsilon(ordered[slow], inner[slow], key[slow], epsilon_of)
    return best


def _right_end_envelope(
    lower: np.ndarray, upper: np.ndarray, rho: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first and last right end j at which some left end may lie in (lower, upper] (grid
    steps; see ``_reached_runs``), widened by one right end each way for rounding, clipped."""
    bottom, top = _envelope(lower, upper, rho, last)
    return np.clip(bottom - 1, 0, last).astype(np.intp), np.clip(top + 1, 0, last).astype(np.intp)


def _envelope(lower: np.ndarray, upper: np.ndarray, rho: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, ...]:
    """j <= upper / rho (a left end i >= 0 at or below the top) and j > (lower - 399) / rho
    (one i <= 399 above the bottom), clipped to the right ends: float (bottom, top)."""
    with np.errstate(invalid="ignore", over="ignore"):
        top = np.where(np.isfinite(upper), np.floor(upper / rho), last)
        bottom = np.where(np.isfinite(lower), np.floor((lower - (LEFT_ENDS - 1)) / rho) + 1, 0)
    return np.maximum(bottom, 0), np.minimum(top, last)


def _settled_pairs(
    ordered: np.ndarray,
    a: np.ndarray,
    rho: np.ndarray,
    grid: tuple[np.ndarray, ...],
    gaps: tuple[np.ndarray, ...],
    upto_right: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(example, kl, kr) of every distinct pair a settled gap kl reaches, exactly.

    c(v) = #(l_{j,i} <= v) on right end j's grid; gap (v_{kl-1}, v_kl] holds a left end iff
    c(v_kl) > c(v_{kl-1}), with c = 0 below the first value and 400 above the last. c is
    read off the idealised grid for a value far from it, and counted against np.linspace's
    own points (``grid``: start, step, stop [examples, rights]) for a value near it.
    ``gaps``: (gap id, example, kl, whether v_{kl-1} is near, whether v_kl is near, right
    end j) for each (settled gap, right end) to look at, grouped by gap id, j ascending.
    """
    owner, example, gap, near_lower, near_upper, j = gaps
    start, step, stop = grid

    def left_ends_at_or_below(index: np.ndarray, near: np.ndarray) -> np.ndarray:
        """c(v_index) for each (gap, right end)."""
        inside = (index >= 0) & (index < a.shape[1])
        v = np.clip(index, 0, a.shape[1] - 1)
        position = a[example, v] - j * rho[example]
        c = np.clip(np.floor(position) + 1, 0, LEFT_ENDS).astype(np.intp)
        close = near & inside
        if close.any():
            e, jc = example[close], j[close]
            k = np.round(position[close]).astype(np.intp)
            c[close] = count_at(
                k, ordered[e, v[close]], start[e, jc], step[e, jc], stop[e, jc], np.asarray(LEFT_ENDS), False
            )
        result: np.ndarray = np.where(inside, c, np.where(index < 0, 0, LEFT_ENDS))
        return result

    reached = np.flatnonzero(left_ends_at_or_below(gap, near_upper) > left_ends_at_or_below(gap - 1, near_lower))
    owner, example, gap = owner[reached], example[reached], gap[reached]
    kr = upto_right[example, j[reached]]
    # Right ends with the kr of the previous one (same gap) add nothing new.
    fresh = np.ones(len(kr), dtype=bool)
    fresh[1:] = (kr[1:] != kr[:-1]) | (owner[1:] != owner[:-1])
    return example[fresh], gap[fresh], kr[fresh]


def _reached_runs(
    lower: np.ndarray, upper: np.ndarray, rho: np.ndarray, drift: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For gaps (v_{kl-1}, v_kl], the (at most two) runs of right ends j where some left end
    l_{j,i} (i = 0..399) lies in it: (ja, jb) [gaps, 2]. The gap is given in grid steps as
    (lower, upper] = (a_{kl-1}, a_kl) (+-inf past the ends), with its example's rho, drift
    and last right end (all [gaps]).

    In grid steps the gap is (a_{kl-1} - j rho, a_kl - j rho]; it holds an i in [0, 399] iff
    j <= a_kl / rho (some i >= 0 below its top), j > (a_{kl-1} - 399) / rho (some i <= 399
    above its bottom) and, for a gap narrower than one step, an integer falls in it: with
    z = a_{kl-1} + j * drift, iff z lies in [K - width, K) for an integer K, a run of j for
    each of the (at most two) K that z passes as j runs over the right ends.
    """
    bottom, top = _envelope(lower, upper, rho, last)
    width = upper - lower
    narrow = width < 1
    fixed = (np.abs(drift) * last < _STILL) | ~narrow  # the fraction of z does not move (or does not matter)
    z0 = np.where(narrow, lower, 0.0)
    hit_fixed = ~narrow | (z0 - np.floor(z0) >= 1 - width)
    ja = np.empty(lower.shape + (2,))
    jb = np.empty_like(ja)
    ja[..., 0] = np.where(hit_fixed, bottom, 1.0)
    jb[..., 0] = np.where(hit_fixed, top, 0.0)
    ja[..., 1], jb[..., 1] = 1.0, 0.0
    moving = ~fixed
    if moving.any():
        step = np.where(moving, drift, 1.0)
        for k in range(2):
            integer = np.floor(z0) + 1 + k
            with np.errstate(invalid="ignore", over="ignore"):
                start = np.ceil((integer - np.where(moving, upper, 0.0)) / step)
                stop = np.ceil((integer - z0) / step) - 1
            ja[..., k] = np.where(moving, np.maximum(start, bottom), ja[..., k])
            jb[..., k] = np.where(moving, np.minimum(stop, top), jb[..., k])
    return ja.astype(np.intp), jb.astype(np.intp)


def _near_grid(a: np.ndarray, drift: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Whether each value comes within grids.NEAR of a whole number as x_v(j) = a_v - j rho over
    the right ends j = 0..last (a in grid steps; drift, last: its example's; all broadcast).
    False for +-inf.

    Away from whole numbers the idealised grid and np.linspace's points (within ~1e-10
    steps of it) count every value alike. a_v + j * drift is monotone over j and spans at
    most one step, so its closest approach to a whole number is at j = 0, the last j, or
    around a crossing.
    """
    last = last.astype(float)
    still = np.abs(drift) * last < _STILL
    near = np.zeros(a.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(still, 0.0, (np.floor(a) + 1 - a) / np.where(still, 1.0, drift))
        for j in (0.0, last, np.floor(crossing), np.ceil(crossing)):
            z = a + np.clip(j, 0, last) * np.where(still, 0.0, drift)
            near |= np.abs(z - np.round(z)) < grids.NEAR
    return near


def _located_interval_epsilon(ordered: np.ndarray, inner: np.ndarray, key: np.ndarray, epsilon_of: EpsilonOf) -> float:
    """Step 2.4 for one example by locating each of its ~160,000 left ends among the values."""
    width = inner.max() - inner.min()
    lo = inner.min() + width - INTERVAL_BUFFER
    hi = inner.max() + INTERVAL_BUFFER
    rights = np.linspace(lo, hi, int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    # lefts[:, j] are the left ends of rights[j]: np.linspace with array ends computes
    # each column exactly as one call per right end would.
    lefts = np.linspace(rights - width - INTERVAL_BUFFER, rights - width + INTERVAL_BUFFER, LEFT_ENDS)
    upto_right = np.searchsorted(ordered, rights, side="right")  # #(values <= r)
    below_left = np.searchsorted(ordered, lefts, side="left")  # #(values < l), [LEFT_ENDS, n_rights]
    codes = key[upto_right] - key[below_left]
    return float(epsilon_of(codes).max(initial=-np.inf))
