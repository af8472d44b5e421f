"""scoring.uncertainty: intervals that cover a known F, the ceiling, and per-run diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import metric, uncertainty

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
    calm = uncertainty.score_interval(unlearned, retrained, *fixed, **FAST)["score"]
    rough = uncertainty.score_interval(unlearned, retrained, *noisy, **FAST)["score"]
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


# ----------------------------------------------------------------------------------
# The ceiling and the normalised score.


def test_ceiling_of_one_distribution_and_retraining_lands_in_it():
    rng = np.random.default_rng(9)
    mean, scale = rng.normal(2, 2, 40), rng.uniform(0.5, 1.5, 40)
    references = mean + scale * rng.standard_normal((16, 40))
    top = uncertainty.ceiling(references, 8, n_splits=3, **FAST)
    assert 0.1 < top["value"] < 0.3  # identical distributions: about 0.19 at N = 8
    assert top["low"] < top["value"] < top["high"]
    assert len(top["splits"]) == 3 and top["value"] == pytest.approx(np.mean(top["splits"]))
    assert (top["n_models"], top["n_references"], top["n_references_used"], top["reduced"]) == (8, 16, 16, False)
    assert top["interval"]["n_models"] == 8
    retrain = metric.forgetting_quality(mean + scale * rng.standard_normal((8, 40)), references[:8])
    assert top["low"] <= retrain <= top["high"]
    poor = metric.forgetting_quality(mean + scale * (3.0 + rng.standard_normal((8, 40))), references[:8])
    assert poor < top["low"]


def test_ceiling_with_too_few_references_uses_smaller_halves():
    rng = np.random.default_rng(10)
    top = uncertainty.ceiling(rng.normal(0, 1, (13, 20)), 8, n_splits=2, **FAST)
    assert top["reduced"] and top["n_models"] == 6 and top["n_models_requested"] == 8
    assert "13 references" in top["note"] and "N = 6" in top["note"]
    assert top["n_references_used"] >= 12
    with pytest.raises(ValueError, match="at least 6 references"):
        uncertainty.ceiling(rng.normal(0, 1, (5, 20)), 8)
    with pytest.raises(ValueError, match="2-D"):
        uncertainty.ceiling(rng.normal(0, 1, 20), 8)
    with pytest.raises(ValueError, match="n_splits"):
        uncertainty.ceiling(rng.normal(0, 1, (16, 20)), 8, n_splits=0)


def test_normalised_score():
    assert uncertainty.normalised_score(0.09, 0.18) == pytest.approx(0.5)
    np.testing.assert_allclose(uncertainty.normalised_score([0.09, 0.0, 0.2], 0.2), [0.45, 0.0, 1.0])
    for bad in (0.0, -0.1, np.nan, [0.2]):
        with pytest.raises(ValueError, match="ceiling_value"):
            uncertainty.normalised_score(0.1, bad)
    with pytest.raises(ValueError, match="forgetting_quality"):
        uncertainty.normalised_score(-0.1, 0.2)


# ----------------------------------------------------------------------------------
# Per-run diagnostics.


def _mixture(n_models, n_examples, rng):
    """Half the runs retrained-like, half the original model (confident, nearly fixed)."""
    mean, scale = rng.normal(2, 2, n_examples), rng.uniform(0.5, 1.5, n_examples)
    retrained = mean + scale * rng.standard_normal((n_models, n_examples))
    unlearned = mean + scale * rng.standard_normal((n_models, n_examples))
    original = mean + 2.5 * scale
    unlearned[: n_models // 2] = original + 0.1 * scale * rng.standard_normal((n_models // 2, n_examples))
    return unlearned, retrained


@pytest.mark.parametrize("n_models", [8, 16, 64])
def test_half_retrained_half_original_is_a_mixture(n_models):
    rng = np.random.default_rng(n_models)
    unlearned, retrained = _mixture(n_models, 50, rng)
    report = uncertainty.run_diagnostics(unlearned, retrained)
    assert report["mixture"] and not report["identical"]
    half = n_models // 2
    np.testing.assert_array_equal(report["groups"], [1] * half + [0] * (n_models - half))  # group 1: original-like
    np.testing.assert_array_equal(report["group_sizes"], [n_models - half, half])
    # Retrained-like: within the references' own distances (a run of retraining exceeds
    # the largest of N of them with probability 1 / (N + 1), so a few may miss).
    assert not report["retrained_like"][:half].any() and report["retrained_like"][half:].mean() >= 0.8
    assert (report["mean_z"][:half] > 2).all() and (np.abs(report["mean_z"][half:]) < 1).all()
    assert report["distance"][:half].min() > 0.5 > report["reference_distance"].max()


@pytest.mark.parametrize("n_models, shared, seed", [(8, 0.0, 0), (16, 0.0, 1), (16, 0.7, 2), (32, 0.0, 3), (128, 0.5, 4)])
def test_one_distribution_is_not_a_mixture(n_models, shared, seed):
    rng = np.random.default_rng(100 + seed)
    unlearned, retrained = _pair(n_models, 60, rng, shift=0.5, shared=shared)
    report = uncertainty.run_diagnostics(unlearned, retrained)
    assert not report["mixture"] and not report["identical"]
    assert report["mixture_separation"] < report["mixture_threshold"]
    assert report["n_distinct_runs"] == n_models


def test_identical_runs_are_flagged():
    rng = np.random.default_rng(11)
    retrained = _runs(16, 30, rng)
    report = uncertainty.run_diagnostics(np.tile(rng.normal(2, 2, 30), (16, 1)), retrained)
    assert report["identical"] and report["n_distinct_runs"] == 1 and not report["mixture"]
    almost = np.tile(rng.normal(2, 2, 30), (16, 1))
    almost[3, 7] += 1e-9
    report = uncertainty.run_diagnostics(almost, retrained)
    assert not report["identical"] and report["n_distinct_runs"] == 2


def test_fewer_than_8_runs_never_flag_a_mixture_by_default():
    rng = np.random.default_rng(12)
    unlearned, retrained = _mixture(6, 50, rng)
    report = uncertainty.run_diagnostics(unlearned, retrained)
    assert not report["mixture"] and report["mixture_threshold"] is None
    assert uncertainty.run_diagnostics(unlearned, retrained, mixture_separation=6.0)["mixture"]
    with pytest.raises(ValueError, match="mixture_separation"):
        uncertainty.run_diagnostics(unlearned, retrained, mixture_separation=0)


def test_ks_distance_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(13)
    pooled = np.sort(np.round(rng.normal(0, 1, 300), 1))  # ties on both sides
    rows = np.round(rng.normal(0.3, 1.2, (4, 40)), 1)
    expected = [stats.ks_2samp(row, pooled).statistic for row in rows]
    np.testing.assert_allclose(uncertainty._ks_to_pool(rows, pooled), expected, rtol=1e-12)


def test_two_deterministic_halves_are_a_mixture_not_identical():
    rng = np.random.default_rng(14)
    retrained = _runs(16, 30, rng)
    unlearned = np.repeat(np.stack([retrained[0] + 2.0, retrained[1]]), 8, axis=0)  # two models, 8 runs each
    report = uncertainty.run_diagnostics(unlearned, retrained)
    assert report["mixture"] and not report["identical"] and report["n_distinct_runs"] == 2
    assert report["mixture_separation"] == 1e6  # both groups constant: capped, still a number


def test_results_are_plain_json():
    import json

    rng = np.random.default_rng(15)
    unlearned, retrained = _pair(8, 20, rng, shift=0.3)
    accuracies = [rng.uniform(0.8, 0.9, 8) for _ in range(4)]
    both = uncertainty.score_interval(unlearned, retrained, *accuracies, **FAST)
    top = uncertainty.ceiling(np.concatenate([retrained, _runs(8, 20, rng)]), 8, n_splits=1, **FAST)
    for result in (both, top):
        assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_one_forget_example_still_gets_a_width():
    rng = np.random.default_rng(17)  # (with some seeds every left-out group gives the same points: width 0)
    unlearned, retrained = _pair(12, 1, rng, shift=0.8)
    result = uncertainty.forgetting_quality_interval(unlearned, retrained, **FAST)
    assert result["high"] > result["low"] and result["models_only"]["standard_error"] > 0
