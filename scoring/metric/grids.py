"""Exact positions on np.linspace grids, and of grid points among sorted values.

The metric's thresholds and interval ends are ``np.linspace`` points; its counts compare
them with sample values by ``>=`` and ``<=``. These helpers give the same counts without
building the grids: a point is computed by the very float operations np.linspace uses
(``i * step + start``, the last point ``stop``), and a value is placed on a grid by one
division, checked against the exact point wherever rounding could decide.
"""

from __future__ import annotations

import numpy as np

NEAR = 1e-6  # grid steps: far above float rounding (~1e-10 steps here), far below a step


def linspace_step(start: np.ndarray, stop: np.ndarray, num: np.ndarray) -> np.ndarray:
    """np.linspace's step (stop - start) / (num - 1); 0 where num < 2 (one point: start)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        step: np.ndarray = np.where(num > 1, (stop - start) / (num - 1), 0.0)
    return step


def grid_points(i: np.ndarray, start: np.ndarray, step: np.ndarray, stop: np.ndarray, num: np.ndarray) -> np.ndarray:
    """Point i of np.linspace(start, stop, num), bit for bit: i * step + start, the last one stop."""
    points: np.ndarray = np.where((i == num - 1) & (num > 1), stop, i * step + start)
    return points


def grid_count(
    x: np.ndarray, start: np.ndarray, step: np.ndarray, stop: np.ndarray, num: np.ndarray, *, strict: bool = False
) -> np.ndarray:
    """#(g <= x) (``strict``: #(g < x)) for the grid g = np.linspace(start, stop, num), exactly.

    The division ``(x - start) / step`` gives the count unless it lands within rounding
    of a whole number k (x within ~1e-9 of grid point k, or on it); there the points
    below k count, those above do not, and point k, computed as np.linspace computes it,
    is compared with x. Arguments broadcast; num may be 0 or 1 (no step).
    """
    shape = np.broadcast_shapes(x.shape, start.shape, step.shape, stop.shape, np.shape(num))
    one_point = ~(step > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        position = x - start
        position /= np.where(one_point, 1.0, step)
    if one_point.any():
        position = np.where(one_point, 0.0, position)
    floor = np.floor(position)
    fraction = position - floor
    near = fraction < NEAR
    near |= fraction > 1 - NEAR
    if one_point.any():
        near = near | one_point
    count = np.clip(floor + 1, 0, num).astype(np.intp)
    if near.any():
        cells = np.nonzero(np.broadcast_to(near, shape))
        count = np.broadcast_to(count, shape).copy()
        k = np.round(np.broadcast_to(position, shape)[cells]).astype(np.intp)
        at_x, at_start, at_step, at_stop, at_num = (
            np.broadcast_to(a, shape)[cells] for a in (x, start, step, stop, num)
        )
        count[cells] = count_at(k, at_x, at_start, at_step, at_stop, at_num, strict)
    return np.broadcast_to(count, shape)


def count_at(
    k: np.ndarray, x: np.ndarray, start: np.ndarray, step: np.ndarray, stop: np.ndarray, num: np.ndarray, strict: bool
) -> np.ndarray:
    """#(g <= x) (or < x) where x is within rounding of grid point k: the k points below
    it count, those above it do not, point k is compared (1-D arrays of cells)."""
    inside = (k >= 0) & (k < num)
    point = grid_points(np.where(inside, k, 0), start, step, stop, num)
    counted = point < x if strict else point <= x
    result: np.ndarray = np.clip(k, 0, num) + (inside & counted)
    return result


def rank(ordered: np.ndarray, example: np.ndarray, x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """#(values < x) among each example's sorted values, known to lie in [low, high] (all
    1-D): a binary search vectorised across the queries."""
    n_values = ordered.shape[1]
    flat = ordered.ravel()
    base = example * n_values
    for _ in range(int((high - low).max(initial=0)).bit_length()):
        middle = (low + high) >> 1
        below = flat[base + np.minimum(middle, n_values - 1)] < x
        low = np.where(below & (low < high), middle + 1, low)
        high = np.where(below, high, middle)
    return low
