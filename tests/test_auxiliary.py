"""scoring.assess.auxiliary: KLoM and the likelihood-ratio attack on simulated confidences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.assess import auxiliary


def _normal(n_models, n_examples, seed, shift=0.0, scale=1.0):
    """Confidences [n_models, n_examples]: per-example means fixed (examples of different
    difficulty, the same for every seed), model noise drawn from the seed."""
    mean = np.random.default_rng(100).normal(2.0, 2.0, n_examples)
    noise = np.random.default_rng(seed).standard_normal((n_models, n_examples))
    return mean + shift + scale * noise


def test_klom_of_identical_samples_is_zero():
    retrained = _normal(64, 40, 0)
    np.testing.assert_array_equal(auxiliary.klom(retrained.copy(), retrained), 0.0)


def test_klom_same_distribution_small_shifted_large():
    retrained = _normal(512, 50, 1)
    same = auxiliary.klom(_normal(512, 50, 2), retrained)
    shifted = auxiliary.klom(retrained + 3.0, retrained)
    assert same.mean() < 0.15
    assert shifted.min() > 2.0 and shifted.mean() > 10 * same.mean()


def test_klom_of_separated_samples_is_the_floor_bound():
    # Every unlearned margin in bins the retrained ones leave empty: sum p ln(p / 1e-5).
    retrained = np.zeros((10, 3)) + np.arange(10)[:, None] * 0.01  # in [0, 0.09]
    unlearned = retrained + 100.0
    kl = auxiliary.klom(unlearned, retrained)
    # The joint range is ~100 wide, so each sample fills one bin of width 5: p = 1 there,
    # q = 0 floored to 1e-5.
    np.testing.assert_allclose(kl, math.log(1 / 1e-5), rtol=1e-12)


def test_klom_follows_the_easydub_histogram():
    rng = np.random.default_rng(3)
    u, r = rng.normal(0, 1, (30, 1)), rng.normal(0.5, 1.5, (30, 1))
    edges = np.linspace(min(u.min(), r.min()), max(u.max(), r.max()), 21)
    p = np.histogram(u[:, 0], edges)[0] / 30
    q = np.histogram(r[:, 0], edges)[0] / 30
    q = np.where(p > 0, np.maximum(q, 1e-5), q)
    expected = np.sum(p[p > 0] * np.log(p[p > 0] / q[p > 0]))
    assert auxiliary.klom(u, r)[0] == pytest.approx(expected, rel=1e-12)


def test_klom_clips_margins():
    retrained = _normal(32, 5, 4)
    far = retrained.copy()
    far[0] = 1e3  # beyond the clip: lands at 100, the same bin as 101 would
    nearer = retrained.copy()
    nearer[0] = 101.0
    np.testing.assert_array_equal(auxiliary.klom(far, retrained), auxiliary.klom(nearer, retrained))


def test_klom_summary_keys_and_order():
    summary = auxiliary.klom_summary(_normal(32, 100, 5, shift=0.5), _normal(32, 100, 5))
    assert set(summary) == {"mean", "median", "percentiles", "max", "n_bins", "floor", "clip", "n_models", "n_examples"}
    pct = [summary["percentiles"][k] for k in ("5", "25", "50", "75", "95", "99")]
    assert pct == sorted(pct) and pct[2] == pytest.approx(summary["median"])
    assert summary["n_models"] == 32 and summary["n_examples"] == 100 and summary["max"] >= pct[-1]


def test_likelihood_ratio_attack_chance_and_separation():
    retrained = _normal(256, 40, 6)
    same = auxiliary.likelihood_ratio_accuracy(_normal(256, 40, 7), retrained)
    assert abs(same["mean"] - 0.5) < 0.03
    far = auxiliary.likelihood_ratio_accuracy(retrained + 10.0, retrained)
    np.testing.assert_array_equal(far["per_example"], 1.0)
    narrower = auxiliary.likelihood_ratio_accuracy(
        retrained.mean(axis=0) + 0.2 * (retrained - retrained.mean(axis=0)), retrained
    )
    assert narrower["mean"] > 0.7  # same mean, a fifth of the spread: the Gaussian fit sees it


def test_leave_one_out_fit_matches_refitting():
    values = np.random.default_rng(8).normal(0, 1, (7, 3))
    mean, var = auxiliary._loo_fit(values)
    for k in range(7):
        rest = np.delete(values, k, axis=0)
        np.testing.assert_allclose(mean[k], rest.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(var[k], rest.var(axis=0, ddof=1), rtol=1e-10)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: auxiliary.klom(np.zeros((4, 3)), np.zeros((5, 3))), "same N"),
        (lambda: auxiliary.klom(np.zeros((4, 3)), np.zeros((4, 3)), n_bins=0), "n_bins"),
        (lambda: auxiliary.klom(np.zeros((4, 3)), np.zeros((4, 3)), floor=0.0), "floor"),
        (lambda: auxiliary.klom(np.zeros((4, 3)), np.zeros((4, 3)), clip=-1.0), "clip"),
        (lambda: auxiliary.likelihood_ratio_accuracy(np.zeros((2, 3)), np.ones((2, 3))), "N >= 3"),
        (lambda: auxiliary.likelihood_ratio_accuracy(np.zeros(3), np.ones(3)), "2-D"),
    ],
)
def test_rejects(call, message):
    with pytest.raises(ValueError, match=message):
        call()
