"""The statistics beside the score, on digits with small N: the sanity rows' relations.

A reference set of 8 models (twice N = 4) gives the ceiling; identity must score F = 0,
noise-only must stay below the ceiling, and retraining from scratch (the time limit
lifted) must land inside the ceiling's interval.
"""

import shutil

import numpy as np
import pytest
from submissions import _fixtures as kit

from scoring.assess import recompute as assessment
from scoring.bench.sanity import ROWS, sanity_source, write_sanity_submission
from scoring.references.build import build_references
from starter_kit.splits import load_split

N = 4


@pytest.fixture(scope="module")
def refs8(split, refs, tmp_path_factory):
    """The session's 4 references extended to 8 in a copy (4 trained, the calibration kept)."""
    out = tmp_path_factory.mktemp("refs8") / "refs"
    shutil.copytree(refs, out)
    with kit.one_thread():
        assert build_references(load_split(split), 2 * N, out, progress=False).n_models == 2 * N
    return out


@pytest.fixture(scope="module")
def rows(split, refs8, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sanity")
    recipe = load_split(split).recipe
    return {
        name: kit.score(split, refs8, write_sanity_submission(name, folder, recipe), folder / name, n_models=N)
        for name in ROWS
    }


def test_the_ceiling_uses_references_beyond_n_and_is_cached(split, refs8):
    ceiling = assessment.reference_ceiling(load_split(split), N, refs8)
    assert ceiling["n_models"] == N and ceiling["n_references"] == 2 * N and not ceiling["reduced"]
    assert 0 < ceiling["low"] <= ceiling["value"] <= ceiling["high"] <= 1
    assert (refs8 / f"ceiling-N{N}.json").is_file()
    assert assessment.reference_ceiling(load_split(split), N, refs8) == ceiling


def test_identity_scores_zero_and_is_flagged(rows):
    record = rows["identity"]
    assert record["status"] == "scored" and record["F"] == 0 and record["score"] == 0
    assert record["diagnostics"]["identical"] and record["normalised_score"] == 0
    assert any(flag.startswith("identical") for flag in record["diagnostics"]["flags"])


def test_noise_only_is_random_but_below_retraining(rows):
    noise, retrain = rows["noise"], rows["retrain"]
    assert noise["status"] == "scored" and not noise["diagnostics"]["identical"]
    assert noise["F"] < retrain["F"] and noise["intervals"]["F"][1] < retrain["ceiling"]["high"] + 1e-9


def test_retraining_from_scratch_lands_inside_the_ceiling(rows):
    record = rows["retrain"]
    assert record["status"] == "scored", record["reason"]
    ceiling = record["ceiling"]
    assert ceiling["low"] <= record["F"] <= ceiling["high"]
    assert not record["diagnostics"]["identical"] and not record["diagnostics"]["mixture"]
    assert 0.95 < record["test_ratio"] < 1.05
    assert record["auxiliary"]["klom"]["mean"] < rows["identity"]["auxiliary"]["klom"]["mean"]


def test_sanity_sources_are_checked():
    with pytest.raises(ValueError, match="needs the split's recipe"):
        sanity_source("retrain")
    with pytest.raises(ValueError, match="unknown sanity row"):
        sanity_source("oracle")


def test_accuracy_intervals_cover_their_mean():
    values = np.array([0.9, 0.92, 0.95, 0.91, 0.93])
    low, high = assessment.mean_interval(values)
    assert low < values.mean() < high and low >= values.min() and high <= values.max()
    assert assessment.mean_interval(values) == [low, high]  # seeded


def test_the_normalised_score_is_given_only_against_a_ceiling_at_the_same_n():
    from scoring.metric import forgetting as metric

    rng = np.random.default_rng(0)
    unlearned, retrained = rng.normal(size=(4, 60)), rng.normal(size=(4, 60))
    accuracies = {column: np.full(4, 0.9) for column in assessment.ACCURACY_COLUMNS}
    epsilons = metric.per_example_epsilons(unlearned, retrained)
    quality = metric.forgetting_quality_from_epsilons(epsilons, 4)

    def assess(ceiling_n):
        return assessment.assess(
            unlearned,
            retrained,
            accuracies,
            accuracies,
            epsilons,
            {"value": 0.2, "n_models": ceiling_n, "standard_error": 0.01, "spread": 0.0, "n_splits": 1},
        )

    at_n, at_half = assess(4), assess(2)
    assert at_n["normalised_score"] == pytest.approx(quality / 0.2) and "normalised_score_note" not in at_n
    assert "normalised_score" in at_n["intervals"]
    assert at_half["normalised_score"] is None and "normalised_score" not in at_half["intervals"]
    assert at_half["normalised_score_note"] == (
        "no normalised score: the ceiling was measured at N = 2, not at this N = 4 "
        "(a ceiling at N needs 2N = 8 references)"
    )


def test_a_score_whose_ceiling_is_at_half_its_n_says_so_and_has_no_normalised_score(split, refs8, rows, tmp_path):
    from scoring.html.summary import summary_text

    at_n = summary_text(rows["noise"])
    assert f"ceiling     F of retraining itself at N = {N}:" in at_n and "normalised  F / ceiling" in at_n
    submission = write_sanity_submission("noise", tmp_path, load_split(split).recipe)
    record = kit.score(split, refs8, submission, tmp_path / "out", n_models=2 * N)  # 2N references: halves of N
    assert record["status"] == "scored", record["reason"]
    assert record["ceiling"]["n_models"] == N and record["ceiling"]["reduced"] and record["normalised_score"] is None
    assert record["normalised_score_note"].startswith(f"no normalised score: the ceiling was measured at N = {N}, not")
    text = summary_text(record)
    assert f"at N = {N}:" in text and record["normalised_score_note"] in text and "F / ceiling" not in text


def test_intervals_below_the_measured_n_say_they_are_approximate_and_from_it_do_not():
    from scoring.metric import forgetting as metric

    def intervals(n_models):
        rng = np.random.default_rng(n_models)
        unlearned, retrained = rng.normal(size=(n_models, 20)), rng.normal(0.3, size=(n_models, 20))
        accuracies = {column: np.full(n_models, 0.9) for column in assessment.ACCURACY_COLUMNS}
        epsilons = metric.per_example_epsilons(unlearned, retrained)
        return assessment.assess(unlearned, retrained, accuracies, accuracies, epsilons, None)["intervals"]

    measured = assessment.COVERAGE_MEASURED_FROM_N
    at_8, at_measured = intervals(8), intervals(measured)
    assert at_8["note"] == assessment.interval_note(8) and "score" in at_8
    assert "note" not in at_measured and "score" in at_measured
    assert assessment.interval_note(measured - 1) is not None and assessment.interval_note(measured) is None
    note = at_8["note"]
    assert note.startswith("approximate at N = 8:") and f"measured at N >= {measured}" in note
    assert "benchmarks/coverage.py" in note and '"What the intervals promise"' in note
    assert "%" not in note  # the benchmark's figure below that N changes with the estimator: never in the record
    assert "note" not in intervals(2)  # no score interval under 3 models: nothing to qualify
