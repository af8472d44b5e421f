"""scoring.assess.dependence: runs that share work are flagged from their outputs, independent runs are not;
a flagged score is kept off the leaderboard with its reason unless the organisers rank it anyway.

The arrays are built here: references, independent runs of methods that vary much or little
from run to run, and copies of one shared model; benchmarks/dependence_calibration.py
calibrates the threshold on real digits models."""

from __future__ import annotations

import numpy as np
import pytest
from score_records import a_record

from scoring.assess import dependence, run_record
from scoring.cli import main
from scoring.html.pages import render_report
from scoring.ranking.leaderboard import FLAGGED_STATUS, collect_scores, leaderboard, not_ranked
from starter_kit.atomic import write_json

EXAMPLES = 120


def _references(rng, n):
    """[n, EXAMPLES]: independent retrainings, each example with its own mean and scale."""
    return rng.normal(0, 1, EXAMPLES) + rng.uniform(0.5, 2, EXAMPLES) * rng.normal(0, 1, (n, EXAMPLES))


def _method(rng, n, spread):
    """n independent runs of a method: a shared bias (from the one original model) plus each run's own noise."""
    return 1.5 + 0.5 * rng.normal(0, 1, EXAMPLES) + spread * rng.normal(0, 1, (n, EXAMPLES))


def _copies(rng, k, perturbation=0.05):
    """k changed copies of one retrained model: what one retraining handed out to k runs gives."""
    return _references(rng, 1) + perturbation * rng.normal(0, 1, (k, EXAMPLES))


@pytest.mark.parametrize("n_models", [8, 16, 32])
@pytest.mark.parametrize("spread", [None, 1.0, 0.1])  # None: retraining itself
def test_independent_runs_are_not_flagged(n_models, spread):
    rng = np.random.default_rng(n_models)
    for _ in range(20):
        refs = _references(rng, n_models)
        runs = _references(rng, n_models) if spread is None else _method(rng, n_models, spread)
        found = dependence.dependence(runs, refs)
        assert not found["flagged"] and found["close_groups"] == [] and found["closeness"] > 0.2, found


@pytest.mark.parametrize(("n_models", "k"), [(8, 2), (16, 2), (16, 8), (32, 4), (32, 16), (16, 14), (32, 24)])
def test_copies_of_one_model_among_retrainings_are_flagged_as_one_group(n_models, k):
    rng = np.random.default_rng(k)
    refs = _references(rng, n_models)
    order = rng.permutation(n_models)
    runs = np.concatenate([_copies(rng, k), _references(rng, n_models - k)])[order]
    found = dependence.dependence(runs, refs)
    assert found["flagged"]
    if k <= n_models // 2:  # a minority of copies: the closest pair is far below the median pair
        assert found["closeness"] < dependence.CLOSENESS_THRESHOLD
    else:  # most runs copies: the median is a copy pair, but the retrains' nearest neighbours are far
        assert found["closeness"] > dependence.CLOSENESS_THRESHOLD
        assert found["neighbour_spread"] < dependence.NEIGHBOUR_THRESHOLD
    assert found["close_groups"] == [sorted(int(np.flatnonzero(order == j)[0]) for j in range(k))]


def test_groups_of_copies_one_per_chunk_are_each_flagged():
    """One retraining per chunk of 8 runs, handed out to the chunk: four groups at N = 32."""
    rng = np.random.default_rng(4)
    runs = np.concatenate([_copies(rng, 8, perturbation=0.2) for _ in range(4)])
    found = dependence.dependence(runs, _references(rng, 32))
    assert found["flagged"]
    assert [set(g) for g in found["close_groups"]] == [set(range(j, j + 8)) for j in (0, 8, 16, 24)]


def test_byte_identical_runs_are_flagged_at_any_n_but_a_deterministic_submission_is_not_dependence():
    rng = np.random.default_rng(0)
    refs = _references(rng, 4)
    runs = _references(rng, 4)
    runs[3] = runs[1]
    found = dependence.dependence(runs, refs)
    assert found["flagged"] and found["duplicates"] and found["duplicate_groups"] == [[1, 3]]
    assert found["close_groups"] == []  # below MIN_RUNS only duplicates count
    close = runs.copy()
    close[3] = close[1] + 0.01
    assert not dependence.dependence(close, refs)["flagged"]  # too few runs to tell a close pair from chance
    same = dependence.dependence(np.tile(runs[0], (8, 1)), _references(rng, 8))
    assert same["identical"] and not same["flagged"] and same["closeness"] is None


def test_the_flag_reaches_score_json_the_report_and_the_leaderboard(tmp_path, capsys):
    """End to end from arrays: two teams, one handing out copies; by default only the other is ranked."""
    rng = np.random.default_rng(7)
    refs = _references(rng, 16)
    honest = run_record.diagnostics_record(_method(rng, 16, 0.5), refs)
    shared = run_record.diagnostics_record(np.concatenate([_copies(rng, 6), _references(rng, 10)]), refs)
    assert not honest["dependence"]["flagged"] and shared["dependence"]["flagged"]
    reason = shared["dependence"]["reason"]
    assert reason.startswith("dependence: runs 0, 1, 2, 3, 4, 5 are closer") and reason in shared["flags"]
    for team, found, score in (("honest", honest, 0.1), ("copier", shared, 0.2)):
        record = a_record(team=team, score=score, diagnostics=found, sha256={"submission": team * 8})
        write_json(tmp_path / "results" / team / "score.json", record)
    record["diagnostics"] = shared
    assert "not ranked by default" in render_report(record) and reason in render_report(record)

    scores = collect_scores(tmp_path / "results")
    assert leaderboard(scores)["team"].tolist() == ["honest"]
    others = not_ranked(scores)
    assert others["team"].tolist() == ["copier"] and others["status"].tolist() == [FLAGGED_STATUS]
    assert others["reason"].tolist() == [reason]
    anyway = leaderboard(scores, rank_flagged=True)
    assert anyway["team"].tolist() == ["copier", "honest"] and anyway["public flagged"].tolist() == [True, False]
    assert not_ranked(scores, rank_flagged=True).empty

    assert main(["leaderboard", "--results", str(tmp_path / "results"), "--phase", "public"]) == 0
    out = capsys.readouterr().out
    assert f"copier: fine_tune.py (digits/public, N = 4): {FLAGGED_STATUS}: {reason}" in out
    assert main(["leaderboard", "--results", str(tmp_path / "results"), "--phase", "public", "--rank-flagged"]) == 0
    assert "(flagged: dependence)" in capsys.readouterr().out
