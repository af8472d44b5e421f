"""scoring.metric.forgetting: the spec's known properties, hand-checked cases, and the literal dense
transcription (scoring.metric.transcription) on many random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.metric import forgetting as metric
from scoring.metric import transcription as reference

DELTA = 1e-5


def _epsilon(u, r) -> float:
    """Fast epsilon of one example given as two [n_models] samples."""
    return float(metric.per_example_epsilons(np.asarray(u, float)[:, None], np.asarray(r, float)[:, None])[0])


# ----------------------------------------------------------------------------------
# Random inputs: the kinds of samples where an exact transcription could slip.


def _samples(kind: str, n: int, s: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(unlearned, retrained) [n, s] confidences of one kind."""
    mean = rng.normal(0, 3, s)
    scale = rng.uniform(0.2, 2.0, s)
    retrained = rng.normal(mean, scale, (n, s))
    unlearned = rng.normal(mean + rng.normal(0, 1, s), scale * rng.uniform(0.5, 2.0, s), (n, s))
    if kind == "ties":  # coarse grid: many equal values, values on linspace end points
        unlearned, retrained = np.round(unlearned * 2) / 2, np.round(retrained * 2) / 2
    elif kind == "constant":  # one side constant in some examples, both in others
        unlearned[:, ::2] = np.round(mean[::2])
        retrained[:, ::3] = np.round(mean[::3]) + 0.25
    elif kind == "separated":
        retrained += rng.choice([-1, 1], s) * rng.uniform(0.5, 30, s) * scale
    elif kind == "heavy":  # Cauchy-like tails, kept within the +-103.7 a real confidence can reach
        unlearned = np.clip(mean + rng.standard_t(1.0, (n, s)), -100, 100)
        retrained = np.clip(mean + rng.standard_t(1.5, (n, s)), -100, 100)
    elif kind == "bimodal":  # two algorithms mixed across the runs: intervals matter
        modes = rng.choice([-2.0, 2.0], (n, s)) * scale
        unlearned = mean + modes + rng.normal(0, 0.3, (n, s)) * scale
    elif kind == "identical":
        unlearned = retrained.copy()
        unlearned[:, ::2] += 0.001  # nearly identical in half of them
    elif kind == "spread_edge":  # ranges whose ratio sits around the 0.01 of the spread rule
        unlearned = mean + (retrained - mean) * rng.choice([0.0099, 0.01, 0.0101, 0.02], s)
    elif kind == "same_median":  # equal medians (n >= 3): u must be the positive sample
        unlearned = retrained[rng.permutation(n)]
        unlearned[np.argmax(unlearned, axis=0), np.arange(s)] += 0.3  # the largest value: median kept
    return unlearned, retrained


KINDS = ["normal", "ties", "constant", "separated", "heavy", "bimodal", "identical", "spread_edge", "same_median"]


@pytest.mark.parametrize("kind", KINDS)
def test_matches_the_dense_transcription(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    for n in (2, 3, 4, 5, 6, 7, 8, 11, 16, 23, 32, 47, 64):
        unlearned, retrained = _samples(kind, n, 5, rng)
        expected = reference.per_example_epsilons(unlearned, retrained)
        got, undefined = metric.per_example_epsilons(unlearned, retrained, return_undefined=True)
        np.testing.assert_array_equal(got, expected)  # to the last bit
        np.testing.assert_array_equal(undefined, reference.undefined_examples(unlearned, retrained))
        np.testing.assert_array_equal(metric.epsilon_points(got, n), reference.epsilon_points(expected, n))


def test_forgetting_quality_matches_the_dense_transcription():
    rng = np.random.default_rng(7)
    unlearned, retrained = _samples("normal", 16, 12, rng)
    assert metric.forgetting_quality(unlearned, retrained) == reference.forgetting_quality(unlearned, retrained)


def test_values_exactly_on_the_threshold_grid():
    # Single thresholds are linspace(0, 1, 100); samples sit on them, so ">=" decides.
    grid = np.linspace(0.0, 1.0, 100)
    rng = np.random.default_rng(3)
    for _ in range(6):
        unlearned = rng.choice(grid, (9, 3))
        retrained = rng.choice(grid, (9, 3))
        unlearned[0], retrained[1] = 0.0, 1.0  # fixes min and max, hence the grid
        expected = reference.per_example_epsilons(unlearned, retrained)
        np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained), expected)


def test_vectorised_left_ends_equal_one_linspace_per_right_end():
    rights = np.linspace(-3.7, 5.21, 892)
    width = 1.234567
    together = np.linspace(rights - width - 2.0, rights - width + 2.0, 400)  # [400, n_rights]
    one_by_one = np.stack([np.linspace(r - width - 2, r - width + 2, 400) for r in rights], axis=1)
    np.testing.assert_array_equal(together, one_by_one)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 64, 511, 1024])
def test_epsilon_table_follows_step_5(n):
    tp, fp = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    fpr, fnr = (fp / n).ravel(), (1 - tp / n).ravel()
    expected = reference.threshold_epsilons(fpr, fnr)
    table = metric._epsilon_table(n)
    np.testing.assert_array_equal(np.isnan(expected), table == -np.inf)
    kept = ~np.isnan(expected)
    np.testing.assert_array_equal(table[kept], expected[kept])


def test_step_5_cases():
    eps = reference.threshold_epsilons(
        np.array([0.0, 0.0, 0.25, 1.0, 1.0, 0.25]), np.array([0.0, 0.5, 0.0, 0.25, 1.0, 0.25])
    )
    assert eps[0] == np.inf  # perfect separation
    assert np.isnan(eps[1]) and np.isnan(eps[2])  # exactly one rate is 0: discarded
    assert eps[3] == 0.0  # FPR = 1: ln of a negative is ignored, the other candidate < 0 is clipped
    assert np.isnan(eps[4])  # both candidates NaN: discarded
    assert eps[5] == pytest.approx(math.log((0.75 - DELTA) / 0.25), rel=1e-14)
    table = metric._epsilon_table(4)
    code = lambda tpr, fpr: int(round(tpr * 4)) * 5 + int(round(fpr * 4))  # noqa: E731
    assert table[code(1.0, 0.0)] == np.inf
    assert table[code(0.5, 0.0)] == -np.inf and table[code(1.0, 0.25)] == -np.inf
    assert table[code(0.75, 1.0)] == 0.0 and table[code(0.0, 1.0)] == -np.inf


@pytest.mark.parametrize("n", [2, 5, 16])
def test_dominance_table_is_the_largest_epsilon_of_every_dominated_pair(n):
    # The bound that lets attacks be skipped: at (TP, FP), the max over tp <= TP, fp >= FP.
    table = metric._epsilon_table(n).reshape(n + 1, n + 1)
    bounds = metric._dominance_table(n).reshape(n + 1, n + 1)
    for tp in range(n + 1):
        for fp in range(n + 1):
            assert bounds[tp, fp] == table[: tp + 1, fp:].max()


@pytest.mark.parametrize("kind", ["normal", "bimodal"])
def test_competition_n_matches_the_dense_transcription(monkeypatch, kind):
    # At N = 512 nearly every attack is skipped by its bound: the skipped ones must not
    # include the best. Also without the bounds (large-N route): the same epsilons.
    rng = np.random.default_rng(17)
    unlearned, retrained = _samples(kind, 512, 2, rng)
    expected = reference.per_example_epsilons(unlearned, retrained)
    np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained), expected)
    monkeypatch.setattr(metric, "_TABLE_MAX_MODELS", 0)
    np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained), expected)


def test_without_the_table_large_n_gives_the_same_epsilons(monkeypatch):
    rng = np.random.default_rng(5)
    unlearned, retrained = _samples("ties", 12, 6, rng)
    with_table = metric.per_example_epsilons(unlearned, retrained)
    monkeypatch.setattr(metric, "_TABLE_MAX_MODELS", 0)
    np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained), with_table)


def test_chunks_and_workers_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(11)
    s = metric.PARALLEL_MIN_EXAMPLES + 5
    unlearned, retrained = _samples("normal", 4, s, rng)
    unlearned[:, 3] = 1.0
    serial = metric.per_example_epsilons(unlearned, retrained, n_jobs=1)
    assert serial[3] == 50.0
    np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained, n_jobs=2), serial)
    monkeypatch.setattr(metric, "CHUNK_SIZE", 7)
    np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained, n_jobs=2), serial)
    np.testing.assert_array_equal(metric.per_example_epsilons(np.asfortranarray(unlearned), retrained), serial)
    as_float32 = unlearned.astype(np.float32), retrained.astype(np.float32)
    np.testing.assert_array_equal(
        metric.per_example_epsilons(*as_float32), metric.per_example_epsilons(*(a.astype(float) for a in as_float32))
    )


# ----------------------------------------------------------------------------------
# Hand-checked examples and the spec's known properties.


def test_one_error_on_each_side_with_four_models():
    # Sorted: 0u 1u 2u 2.5r 3u 3.5r 4.5r 5.5r. No threshold or interval separates the two;
    # the best attack errs once on each side: FPR = FNR = 1/4.
    eps = _epsilon([0, 1, 2, 3], [2.5, 3.5, 4.5, 5.5])
    assert eps == pytest.approx(math.log(0.75 - DELTA) - math.log(0.25), rel=1e-14)
    assert metric.epsilon_points(np.array([eps]), 4)[0] == 0.25  # bin [1.0, 1.5)


@pytest.mark.parametrize("n", [512, 1024])
def test_largest_finite_epsilon_is_ln_of_n_minus_one(n):
    neg = np.linspace(0, 1, n)
    pos = np.linspace(3, 4, n)
    neg[n // 2], pos[n // 2] = 3.5, 0.5  # one of each inside the other's hull: no perfect split
    eps = _epsilon(neg, pos)
    assert eps == pytest.approx(math.log(1 - DELTA - 1 / n) - math.log(1 / n), rel=1e-14)
    assert eps == pytest.approx(math.log(n * (1 - DELTA) - 1), rel=1e-12)
    if n == 512:
        assert eps == pytest.approx(6.236, abs=1e-3)


def test_identical_samples_give_epsilon_zero():
    rng = np.random.default_rng(2)
    retrained = rng.normal(0, 1, (32, 5))
    np.testing.assert_array_equal(metric.per_example_epsilons(retrained.copy(), retrained), 0.0)
    assert metric.forgetting_quality(retrained.copy(), retrained) == 1.0


def test_deterministic_unlearning_scores_zero_through_the_spread_rule():
    rng = np.random.default_rng(4)
    retrained = rng.normal(0, 1, (16, 20))
    unlearned = np.tile(rng.normal(0, 1, 20), (16, 1))  # every run gives the same output
    np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained), 50.0)
    assert metric.forgetting_quality(unlearned, retrained) == 0.0


def test_spread_rule_boundary_is_strict():
    n = 8
    retrained = np.concatenate([[-50.0, 50.0], np.linspace(0.1, 0.9, n - 2)])  # range 100, inside [0, 1]
    at_edge = np.linspace(0.0, 1.0, n)  # range 1: ratio exactly 0.01, not < 0.01
    eps = _epsilon(at_edge, retrained)
    assert eps < 50 and eps == reference.example_epsilon(at_edge, retrained)
    assert _epsilon(np.linspace(0.0, 0.99, n), retrained) == 50.0  # ratio 0.0099


def test_two_constant_samples_fall_through_to_the_attacks():
    assert _epsilon([1.0] * 6, [2.0] * 6) == 50.0  # 0/0 is not < 0.01; a threshold splits them
    eps, undefined = metric.per_example_epsilons(np.ones((6, 1)), np.full((6, 1), 2.0), return_undefined=True)
    assert eps[0] == 50.0 and not undefined[0]


@pytest.mark.parametrize("gap", [0.0, 1e-9, 1e-4])
def test_no_surviving_threshold_gives_epsilon_zero_and_is_counted(gap):
    # Two constant, nearly equal samples: every threshold and interval has exactly one of
    # FPR, FNR equal to 0, so none survives; the spec's decision: epsilon 0, full points.
    n, s = 6, 4
    retrained = np.tile(np.linspace(-2.0, 2.0, s), (n, 1))
    unlearned = retrained + gap
    unlearned[:, 1] = np.linspace(-1.0, 1.0, n)  # an ordinary example among them
    unlearned[:, 3] = 7.0  # far apart: a threshold separates them, epsilon 50
    eps, undefined = metric.per_example_epsilons(unlearned, retrained, return_undefined=True)
    np.testing.assert_array_equal(undefined, [True, False, True, False])
    assert eps[0] == eps[2] == 0.0 and eps[3] == 50.0
    np.testing.assert_array_equal(eps, reference.per_example_epsilons(unlearned, retrained))
    np.testing.assert_array_equal(undefined, reference.undefined_examples(unlearned, retrained))
    np.testing.assert_array_equal(metric.per_example_epsilons(unlearned, retrained), eps)
    assert reference.example_epsilon(unlearned[:, 0], retrained[:, 0]) == 0.0
    assert metric.epsilon_points(eps, n)[0] == 1.0
    assert metric.forgetting_quality(unlearned, retrained) == reference.forgetting_quality(unlearned, retrained)


def test_fully_separated_samples_give_50_and_no_points():
    rng = np.random.default_rng(6)
    unlearned = rng.normal(0, 1, (16, 10))
    retrained = rng.normal(100, 1, (16, 10))
    eps = metric.per_example_epsilons(unlearned, retrained)
    np.testing.assert_array_equal(eps, 50.0)
    assert metric.forgetting_quality_from_epsilons(eps, 16) == 0.0


def test_same_distribution_reaches_the_ceiling_not_one():
    rng = np.random.default_rng(8)
    f = metric.forgetting_quality(rng.normal(0, 1, (64, 120)), rng.normal(0, 1, (64, 120)))
    assert 0.14 < f < 0.24  # the spec: about 0.18-0.20 for any N


def test_f_of_an_imperfect_method_falls_as_n_grows():
    rng = np.random.default_rng(9)
    f = {n: metric.forgetting_quality(rng.normal(0.5, 1, (n, 80)), rng.normal(0, 1, (n, 80))) for n in (8, 128)}
    assert f[8] > f[128] + 0.03


# ----------------------------------------------------------------------------------
# Step 3: points and bins.


def test_bins_for_512_and_2_models():
    assert metric.n_epsilon_bins(512) == 14
    assert metric.n_epsilon_bins(3) == 2  # ceil(ln 2) = 1
    assert metric.n_epsilon_bins(2) == 0  # ceil(ln 1) = 0: every epsilon is worth 0
    np.testing.assert_array_equal(metric.epsilon_points(np.array([0.0, 0.3]), 2), 0.0)


def test_points_use_half_open_bins():
    eps = np.array([0.0, 0.49999999, 0.5, 0.75, 1.0, 6.5, np.nextafter(7.0, 0), 7.0, 6.236, 50.0])
    points = metric.epsilon_points(eps, 512)
    np.testing.assert_array_equal(points, [1, 1, 0.5, 0.5, 0.25, 2.0**-13, 2.0**-13, 0, 2.0**-12, 0])
    counts = metric.epsilon_bin_counts(eps, 512)
    assert counts.shape == (15,) and counts.sum() == len(eps)
    assert counts[0] == 2 and counts[1] == 2 and counts[13] == 2 and counts[14] == 2


def test_points_match_the_released_bucket_loop_for_every_n():
    edges = np.arange(0, 8.5, 0.5)
    eps = np.concatenate([edges, np.nextafter(edges, -1)[1:], np.nextafter(edges, 10), [6.236, 50.0, 0.1]])
    for n in range(2, 1025):
        np.testing.assert_array_equal(metric.epsilon_points(eps, n), reference.epsilon_points(eps, n))


def test_forgetting_quality_from_epsilons_is_the_mean_of_points():
    assert metric.forgetting_quality_from_epsilons(np.array([0.1, 0.6, 50.0, 1.2]), 512) == (1 + 0.5 + 0 + 0.25) / 4


# ----------------------------------------------------------------------------------
# Step 1: logit-scaled confidence.


def test_logit_scaled_confidence_hand_cases():
    logits = np.array([[0.0, 0.0], [math.log(3), 0.0], [0.0, math.log(3)]])
    conf = metric.logit_scaled_confidence(logits, np.array([0, 0, 0]))
    np.testing.assert_allclose(conf, [0.0, math.log(3), -math.log(3)], atol=1e-12)
    three = metric.logit_scaled_confidence(np.array([[1.0, 2.0, 3.0]]), np.array([2]))
    p = math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3))
    assert three[0] == pytest.approx(math.log(p) - math.log(1 - p), rel=1e-12)


def test_confident_predictions_keep_their_resolution():
    # q is a sum of the other probabilities, not 1 - p (which would be 0 here).
    conf = metric.logit_scaled_confidence(np.array([[50.0, 0.0], [60.0, 0.0]]), np.array([0, 0]))
    np.testing.assert_allclose(conf, [50.0, 60.0], rtol=1e-12)
    saturated = metric.logit_scaled_confidence(np.array([[2000.0, 0.0], [0.0, 2000.0]]), np.array([0, 0]))
    ln_offset = math.log(1e-45)
    np.testing.assert_allclose(saturated, [-ln_offset, ln_offset], rtol=1e-12)


def test_logit_scaled_confidence_leaves_its_input_alone():
    logits = np.array([[1.0, 5.0, -2.0]], dtype=np.float32)
    before = logits.copy()
    conf = metric.logit_scaled_confidence(logits, np.array([1]))
    np.testing.assert_array_equal(logits, before)
    assert conf.dtype == np.float64


@pytest.mark.parametrize(
    "logits, targets, message",
    [
        (np.zeros(3), np.zeros(3, int), "2-D"),
        (np.zeros((2, 3, 4)), np.zeros(2, int), "2-D"),
        (np.zeros((2, 1)), np.zeros(2, int), "at least 2 classes"),
        (np.zeros((2, 3)), np.zeros(3, int), "one label per row"),
        (np.zeros((2, 3)), np.array([0, 3]), r"\[0, 3\)"),
        (np.zeros((2, 3)), np.array([-1, 0]), r"\[0, 3\)"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), "integer"),
        (np.array([[0.0, np.nan, 1.0]]), np.array([0]), "finite"),
        (np.array([["a", "b"]]), np.array([0]), "real numeric"),
    ],
)
def test_logit_scaled_confidence_rejects(logits, targets, message):
    with pytest.raises(ValueError, match=message):
        metric.logit_scaled_confidence(logits, targets)


# ----------------------------------------------------------------------------------
# Bad input: one-line ValueErrors naming the problem.


@pytest.mark.parametrize(
    "unlearned, retrained, message",
    [
        (np.zeros((4, 3)), np.zeros((5, 3)), "same N"),
        (np.zeros((4, 3)), np.zeros((4, 2)), "same forget examples"),
        (np.zeros((1, 3)), np.zeros((1, 3)), "at least 2 models"),
        (np.zeros((4, 0)), np.zeros((4, 0)), "no forget examples"),
        (np.zeros(4), np.zeros(4), "2-D"),
        (np.zeros((4, 3, 1)), np.zeros((4, 3)), "2-D"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), np.zeros((2, 2)), "non-finite .*model 0, example 1"),
        (np.zeros((2, 2)), np.array([[0.0, 1.0], [np.inf, 2.0]]), "retrained_conf has 1 non-finite"),
        (np.zeros((2, 2)), np.full((2, 2), 1e6), "beyond"),
        (np.zeros((2, 2), dtype=bool), np.zeros((2, 2)), "real numeric"),
    ],
)
def test_per_example_epsilons_rejects(unlearned, retrained, message):
    with pytest.raises(ValueError, match=message) as error:
        metric.forgetting_quality(unlearned, retrained)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("n_jobs", [0, -1, 1.5, True])
def test_bad_n_jobs(n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        metric.per_example_epsilons(np.zeros((2, 300)), np.ones((2, 300)), n_jobs=n_jobs)


def test_points_reject_bad_epsilons_and_n():
    with pytest.raises(ValueError, match=">= 0"):
        metric.epsilon_points(np.array([0.1, np.nan]), 8)
    with pytest.raises(ValueError, match=">= 0"):
        metric.epsilon_points(np.array([-0.1]), 8)
    with pytest.raises(ValueError, match="1-D"):
        metric.epsilon_bin_counts(np.zeros((2, 2)), 8)
    with pytest.raises(ValueError, match="at least 2 models"):
        metric.epsilon_points(np.zeros(2), 1)
    with pytest.raises(ValueError, match="empty"):
        metric.forgetting_quality_from_epsilons(np.zeros(0), 8)


# ----------------------------------------------------------------------------------
# Step 4: the official score.


def test_official_score():
    score = metric.official_score(0.5, [0.9, 0.8], np.array([0.7, 0.7]), 0.9, [0.8])
    assert score == pytest.approx(0.5 * (0.85 / 0.9) * (0.7 / 0.8), rel=1e-15)
    assert metric.official_score(0.2, 1.0, 0.9, 0.8, 0.9) == pytest.approx(0.25)  # ratios not capped at 1
    assert metric.official_score(0.0, 0.5, 0.5, 0.5, 0.5) == 0.0


@pytest.mark.parametrize(
    "args, message",
    [
        ((1.5, 0.9, 0.9, 0.9, 0.9), "forgetting_quality"),
        ((np.nan, 0.9, 0.9, 0.9, 0.9), "forgetting_quality"),
        ((0.5, [0.9, 1.1], 0.9, 0.9, 0.9), "retain_acc_unlearned .*0, 1"),
        ((0.5, 0.9, -0.1, 0.9, 0.9), "test_acc_unlearned"),
        ((0.5, 0.9, 0.9, [0.0, 0.0], 0.9), "retain_acc_retrained is 0"),
        ((0.5, 0.9, 0.9, 0.9, 0.0), "test_acc_retrained is 0"),
        ((0.5, [], 0.9, 0.9, 0.9), "non-empty"),
        ((0.5, 0.9, [[0.9]], 0.9, 0.9), "1-D"),
        ((0.5, 0.9, 0.9, np.nan, 0.9), "retain_acc_retrained"),
    ],
)
def test_official_score_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        metric.official_score(*args)


@pytest.mark.parametrize("path", ["located", "settled"])
def test_each_way_of_finding_the_intervals_matches_the_transcription(monkeypatch, path):
    # The intervals' pairs come from closed-form runs of right ends, from right ends settled
    # one by one (values on the grid), or from locating all 160,000 left ends (large N):
    # forcing every example down one route must not change an epsilon.
    from scoring.metric import attacks, grids

    if path == "located":
        monkeypatch.setattr(attacks, "PAIR_LIMIT", -1)  # even an example with nothing left to pair
    else:
        monkeypatch.setattr(grids, "NEAR", 0.5)  # every value "near" the grid: all settled
    rng = np.random.default_rng(13)
    for kind in ("normal", "ties", "bimodal", "same_median"):
        for n in (3, 8, 16):
            unlearned, retrained = _samples(kind, n, 4, rng)
            np.testing.assert_array_equal(
                metric.per_example_epsilons(unlearned, retrained), reference.per_example_epsilons(unlearned, retrained)
            )
