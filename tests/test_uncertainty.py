"""scoring.assess.uncertainty: intervals for F and the score that cover a known F."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.assess import uncertainty
from scoring.metric import forgetting as metric

FAST = {"n_resamples": 999, "n_groups": 4}  # cheap settings for tests that do not measure width


def _runs(n_models, n_examples, rng, shift=0.0, shared=0.0):
    """Confidences [n_models, n_examples]: per-example means and spreads (examples differ
    in difficulty), an optional per-model shift common to every example (``shared``: its
    sd), then independent noise."""
    mean = rng.normal(2.0, 2.0, n_examples)
    scale = rng.uniform(0.5, 1.5, n_examples)
    per_model = rng.normal(0.0, shared, (n_models, 1))
    return mean + scale * (shift + per_model + rng.standard_normal((n_models, n_examples)))


def _pair(n_models, n_examples, rng, shift=0.0, shared=0.0):
    """(unlearned, retrained) on the same examples."""
    mean = rng.normal(2.0, 2.0, n_examples)
    scale = rng.uniform(0.5, 1.5, n_examples)

    def side(offset):
        per_model = rng.normal(0.0, shared, (n_models, 1))
        return mean + scale * (offset + per_model + rng.standard_normal((n_models, n_examples)))

    return side(shift), side(0.0)


# ----------------------------------------------------------------------------------
# Intervals.


# Coverage. The simulation: N = 8 models per side, 16 forget examples drawn afresh each
# time (each with its own mean and spread), identical distributions except that every
# model carries a shift common to all its examples (sd SHARED, on each side): one unusual
# run moves every example, which resampling examples cannot see. Measured once with
# 3,000 fresh data sets: the true F (mean of F) is TRUE_F (Monte Carlo error 0.0005) and
# the true sd of F is TRUE_SD. Over 200 trials with these settings (seeds 0-199) the 95%
# interval covered TRUE_F in 91.5% of them, its mean standard error was 0.0255, and the
# standard error of resampling examples alone was 0.0194 (87% coverage). To reproduce:
#     rng = np.random.default_rng(2024)
#     f = [metric.forgetting_quality(*_pair(8, 16, rng, shared=SHARED)) for _ in range(3000)]
#     np.mean(f), np.std(f, ddof=1)
SHARED = 1.0
TRUE_F = 0.1964
TRUE_SD = 0.0249
COVERAGE_TRIALS = 24


def test_intervals_cover_the_true_f():
    hits, errors, example_errors = 0, [], []
    for trial in range(COVERAGE_TRIALS):
        rng = np.random.default_rng(trial)
        unlearned, retrained = _pair(8, 16, rng, shared=SHARED)
        result = uncertainty.forgetting_quality_interval(unlearned, retrained, random_state=trial, **FAST)
        hits += result["low"] <= TRUE_F <= result["high"]
        errors.append(result["standard_error"])
        example_errors.append(result["standard_errors"]["examples"])
    assert hits >= 0.75 * COVERAGE_TRIALS
    # The width is right on average: resampling examples alone (0.76 of the true sd in
    # this simulation) would fail here.
    assert 0.85 * TRUE_SD < np.mean(errors) < 1.5 * TRUE_SD
    assert np.mean(example_errors) < 0.85 * TRUE_SD


def test_interval_records_its_inputs_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    unlearned, retrained = _pair(8, 30, rng, shift=0.3)
    result = uncertainty.forgetting_quality_interval(unlearned, retrained, random_state=7, **FAST)
    assert result["estimate"] == metric.forgetting_quality(unlearned, retrained)
    assert 0 <= result["low"] <= result["estimate"] <= result["high"] <= 1
    low, high = result["models_only"]["low"], result["models_only"]["high"]
    assert 0 <= low <= result["estimate"] <= high <= 1
    recorded = {key: result[key] for key in ("confidence_level", "n_resamples", "n_groups", "random_state")}
    assert recorded == {"confidence_level": 0.95, "n_resamples": 999, "n_groups": 4, "random_state": 7}
    assert result["group_size"] == 2 and result["n_model_examples"] == 30
    assert (result["n_models"], result["n_examples"]) == (8, 30)
    errors = result["standard_errors"]
    assert errors["models"] >= errors["models_shared"] >= 0 and errors["examples"] > 0
    assert result["standard_error"] == pytest.approx(np.hypot(errors["examples"], errors["models_shared"]))
    again = uncertainty.forgetting_quality_interval(unlearned, retrained, random_state=7, **FAST)
    assert again == result  # the seed fixes everything


def test_a_higher_level_gives_a_wider_interval():
    rng = np.random.default_rng(1)
    unlearned, retrained = _pair(8, 20, rng, shift=0.3)
    eps = metric.per_example_epsilons(unlearned, retrained)
    narrow = uncertainty.forgetting_quality_interval(unlearned, retrained, confidence_level=0.5, epsilons=eps, **FAST)
    wide = uncertainty.forgetting_quality_interval(unlearned, retrained, confidence_level=0.99, epsilons=eps, **FAST)
    assert wide["low"] < narrow["low"] and wide["high"] > narrow["high"]


def test_a_deterministic_submission_has_a_zero_width_interval_at_zero():
    rng = np.random.default_rng(2)
    retrained = _runs(8, 20, rng)
    unlearned = np.tile(retrained[0], (8, 1))  # every run returns the same model
    result = uncertainty.forgetting_quality_interval(unlearned, retrained, **FAST)
    assert result["estimate"] == result["low"] == result["high"] == 0.0


def test_the_model_part_sees_what_resampling_examples_misses():
    # A per-model shift common to every example moves all epsilons together: only
    # recomputing F without some models can see it.
    rng = np.random.default_rng(3)
    independent = uncertainty.forgetting_quality_interval(*_pair(12, 30, rng), **FAST)
    shared = uncertainty.forgetting_quality_interval(*_pair(12, 30, rng, shared=1.5), **FAST)
    assert shared["standard_errors"]["models_shared"] > 2 * independent["standard_errors"]["models_shared"]
    assert shared["standard_error"] > shared["standard_errors"]["examples"]


def test_the_model_subset_changes_little():
    rng = np.random.default_rng(4)
    unlearned, retrained = _pair(8, 40, rng, shift=0.3)
    eps = metric.per_example_epsilons(unlearned, retrained)
    whole = uncertainty.forgetting_quality_interval(unlearned, retrained, epsilons=eps, **FAST)
    part = uncertainty.forgetting_quality_interval(unlearned, retrained, epsilons=eps, n_model_examples=20, **FAST)
    assert part["n_model_examples"] == 20 and whole["n_model_examples"] == 40
    assert part["standard_error"] == pytest.approx(whole["standard_error"], rel=0.5)


def test_score_interval_with_fixed_utilities_is_the_f_interval_times_the_ratio():
    rng = np.random.default_rng(5)
    unlearned, retrained = _pair(8, 30, rng, shift=0.3)
    n = 8
    accuracies = (np.full(n, 0.9), np.full(n, 0.8), np.full(n, 0.95), np.full(n, 0.85))
    both = uncertainty.score_interval(unlearned, retrained, *accuracies, **FAST)
    f, score = both["forgetting_quality"], both["score"]
    ratio = (0.9 / 0.95) * (0.8 / 0.85)
    assert score["utility_ratio"] == pytest.approx(ratio) and score["utility_standard_error"] == 0.0
    assert score["estimate"] == pytest.approx(metric.official_score(f["estimate"], *accuracies))
    assert score["low"] == pytest.approx(f["low"] * ratio) and score["high"] == pytest.approx(f["high"] * ratio)
    assert score["models_only"]["standard_error"] == pytest.approx(f["models_only"]["standard_error"] * ratio)
    assert score["random_state"] == f["random_state"] and score["n_resamples"] == 999


def test_score_interval_widens_with_noisy_utilities():
    rng = np.random.default_rng(6)
    unlearned, retrained = _pair(8, 30, rng, shift=0.3)
    fixed = (np.full(8, 0.9), np.full(8, 0.8), np.full(8, 0.9), np.full(8, 0.8))
    noisy = tuple(a + rng.uniform(-0.1, 0.1, 8) for a in fixed)
    # The default 32 subsets: F's covariance with Q (0 in truth here) is too noisy from 4.
    options = {**FAST, "n_groups": uncertainty.N_GROUPS}
    calm = uncertainty.score_interval(unlearned, retrained, *fixed, **options)["score"]
    rough = uncertainty.score_interval(unlearned, retrained, *noisy, **options)["score"]
    assert rough["utility_standard_error"] > 0.01
    assert rough["models_only"]["standard_error"] > calm["models_only"]["standard_error"] * rough["utility_ratio"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"confidence_level": 1.0}, "confidence_level"),
        ({"confidence_level": 0}, "confidence_level"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"n_groups": 1}, "n_groups"),
        ({"n_model_examples": 0}, "n_model_examples"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": 1.5}, "random_state"),
        ({"epsilons": np.zeros(3)}, r"epsilons must be \[n_examples\]"),
        ({"epsilons": -np.ones(5)}, ">= 0"),
    ],
)
def test_interval_rejects_bad_settings(kwargs, message):
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match=message):
        uncertainty.forgetting_quality_interval(rng.normal(0, 1, (4, 5)), rng.normal(0, 1, (4, 5)), **kwargs)


def test_interval_needs_three_models_and_matching_accuracies():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="at least 3 models"):
        uncertainty.forgetting_quality_interval(rng.normal(0, 1, (2, 5)), rng.normal(0, 1, (2, 5)))
    good = [np.full(4, 0.9)] * 4
    for k, bad in ((0, np.full(3, 0.9)), (2, np.full((4, 1), 0.9)), (3, np.full(4, 1.5))):
        accuracies = list(good)
        accuracies[k] = bad
        with pytest.raises(ValueError, match="acc_"):
            uncertainty.score_interval(rng.normal(0, 1, (4, 5)), rng.normal(0, 1, (4, 5)), *accuracies)


def test_results_are_plain_json():
    import json

    rng = np.random.default_rng(15)
    unlearned, retrained = _pair(8, 20, rng, shift=0.3)
    accuracies = [rng.uniform(0.8, 0.9, 8) for _ in range(4)]
    both = uncertainty.score_interval(unlearned, retrained, *accuracies, **FAST)
    assert json.loads(json.dumps(both, allow_nan=False)) == both


def test_one_forget_example_still_gets_a_width():
    rng = np.random.default_rng(17)  # (with few subsets, all of them can give the same points: width 0)
    unlearned, retrained = _pair(12, 1, rng, shift=0.8)
    result = uncertainty.forgetting_quality_interval(unlearned, retrained, n_resamples=999)
    assert result["high"] > result["low"] and result["models_only"]["standard_error"] > 0


def test_heavy_tailed_points_give_the_examples_variance_fewer_degrees_of_freedom():
    from scoring.assess.resampling import examples_df

    rng = np.random.default_rng(0)
    normal = examples_df(rng.standard_normal(2000))
    assert 1800 < normal <= 1999  # a normal sample: about n - 1
    skewed = examples_df(np.r_[np.zeros(55), np.ones(5)])  # most examples at the floor, a few high
    assert 5 < skewed < 30
    assert examples_df(np.full(10, 0.25)) == 9.0 and examples_df(np.array([0.5])) == 1.0


def test_bca_is_the_percentile_interval_without_bias_or_skew_and_leans_with_the_acceleration():
    from scipy import stats

    from scoring.assess.resampling import acceleration, percentiles

    replicates = stats.norm.ppf((np.arange(9999) + 0.5) / 9999)  # symmetric about 0
    plain = np.quantile(replicates, [0.025, 0.975])
    np.testing.assert_allclose(percentiles(replicates, 0.0, 0.0, 0.95), plain)
    low, high = percentiles(replicates, 0.0, 0.05, 0.95)
    assert low > plain[0] and high > plain[1]  # right skew: the interval reaches further up
    points = np.r_[np.zeros(50), np.full(10, 0.8)]
    assert acceleration(points, 1.0) > 0 and acceleration(points, 0.5) == pytest.approx(
        acceleration(points, 1.0) * 0.5**1.5
    )
