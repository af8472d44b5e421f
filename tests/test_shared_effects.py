"""C, the model noise that runs share across examples, from per-model effects (``scoring.assess.shared_effects``)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.assess import shared_effects


def _confidences(rng, n_models, n_examples, shift_sd=0.0, temperature_sd=0.0, seed=None):
    examples = np.random.default_rng(seed) if seed is not None else rng  # the same forget set for both sides
    mean = examples.normal(2.5, 2.5, n_examples)
    spread = examples.uniform(0.5, 2.0, n_examples)
    conf = mean + spread * (rng.standard_normal((n_models, n_examples)) + rng.normal(0, shift_sd, (n_models, 1)))
    return conf * np.exp(rng.normal(0, temperature_sd, (n_models, 1)))


def test_the_effects_variance_is_the_anova_estimate_of_a_known_shift():
    # 400 models, one shared shift of sd 0.3 in units of each example's spread: the
    # shift's variance comes back near 0.09 / (1 + 0.09) (the spread measured includes it).
    rng = np.random.default_rng(0)
    side = shared_effects.side_effects(_confidences(rng, 400, 200, shift_sd=0.3))
    assert side.covariance[0, 0] == pytest.approx(0.09 / 1.09, rel=0.2)
    assert side.signal > 5 * side.noise


def test_without_shared_effects_the_estimated_covariance_is_noise_sized():
    rng = np.random.default_rng(1)
    side = shared_effects.side_effects(_confidences(rng, 400, 200))
    assert side.signal < 3 * side.noise  # what is left is the coefficients' own noise
    assert np.all(np.linalg.eigvalsh(side.covariance) >= -1e-12)  # positive semi-definite


def test_a_temperature_is_seen_through_the_second_loading():
    rng = np.random.default_rng(2)
    shifted = shared_effects.side_effects(_confidences(rng, 300, 200, temperature_sd=0.1))
    assert shifted.covariance[1, 1] > 0 and shifted.signal > 5 * shifted.noise


def test_c_is_zero_sized_without_sharing_and_clearly_positive_with_it():
    rng = np.random.default_rng(3)

    def c(shift_sd):
        sides = (_confidences(rng, 16, 60, shift_sd=shift_sd, seed=5) for _ in range(2))
        return shared_effects.shared_variance(*sides, 32, rng, 1)

    independent, shared = c(0.0), c(0.6)
    assert shared[0] > 5 * max(independent[0], 1e-6) and 1 < shared[1] < 15  # df: about N - 1 at most


def test_the_redraws_keep_each_models_examples_together_and_are_reproducible():
    rng = np.random.default_rng(4)
    conf = _confidences(rng, 8, 30, shift_sd=0.5)
    side = shared_effects.side_effects(conf)
    first = shared_effects.redraw(side, np.random.default_rng(9))
    again = shared_effects.redraw(side, np.random.default_rng(9))
    np.testing.assert_array_equal(first, again)
    # Each model's redrawn effect is one shift (and one level term) for all its examples.
    effect = (first - side.base) / side.scale
    coefficients, *_ = np.linalg.lstsq(side.loadings, effect.T, rcond=None)
    np.testing.assert_allclose(coefficients.T @ side.loadings.T, effect, atol=1e-9)


def test_degenerate_confidences_give_no_shared_variance_and_no_error():
    same = np.ones((5, 4))
    c, df = shared_effects.shared_variance(same, same.copy(), 4, np.random.default_rng(0), 1)
    assert c == 0.0 and df == float("inf")
    one_example = np.arange(5.0)[:, None]
    assert shared_effects.shared_variance(one_example, one_example + 1, 4, np.random.default_rng(0), 1)[0] == 0.0
