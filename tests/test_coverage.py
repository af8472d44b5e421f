"""benchmarks/coverage.py in small: one cell of its simulator, and its binomial interval."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import coverage  # noqa: E402  (benchmarks/ is not a package)


def test_the_interval_covers_the_true_f_in_a_small_cell_of_the_benchmark():
    # 300 intervals at N = 16 on the simulator, every example shifted and a per-run effect
    # shared by all examples (the setting that undercovered before issue 31): the interval
    # must cover the Monte Carlo truth at least 92% of the time (95% is promised; 92% is
    # about 2.4 binomial sd below it at 300 intervals), no wider than the bar's 1.25 times
    # the true spread (it was 94.7% at 0.97 times when C moved to per-model effects).
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return coverage.simulate("shared", 16, 30, rng)

    true_f = coverage.truth(draw, 600, seed=11)
    row = coverage.cell(draw, true_f, 300, seed=12, part="total", options={"n_resamples": 999})
    assert row["coverage %"] >= 92.0, row
    assert row["width / true"] <= 1.25, row


def test_wilson_interval_is_scipys():
    from scipy import stats

    for hits, total in ((380, 400), (0, 10), (299, 300)):
        expected = stats.binomtest(hits, total).proportion_ci(method="wilson")
        assert coverage.wilson(hits, total) == pytest.approx((expected.low, expected.high), abs=1e-9)


@pytest.mark.parametrize("setting", coverage.SETTINGS)
def test_every_setting_draws_confidences_of_the_right_shape(setting):
    unlearned, retrained = coverage.simulate(setting, 5, 7, np.random.default_rng(0))
    assert unlearned.shape == retrained.shape == (5, 7) and np.isfinite(unlearned).all()
    if setting == "identical":
        assert not np.array_equal(unlearned, retrained)
