"""benchmarks/coverage_pool.py builds what a scoring sees; part ``pool`` of benchmarks/coverage.py reads it."""

from __future__ import annotations

import argparse
import json
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from submissions import _fixtures as kit

from scoring.outputs import SECRET_ENV
from starter_kit.splits import load_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import coverage  # noqa: E402  (benchmarks/ is not a package)
import coverage_pool  # noqa: E402


def test_the_pool_holds_the_runs_and_references_a_scoring_of_the_split_used(tmp_path, tmp_path_factory, monkeypatch):
    # The fixture's score: fine_tune.py at N = 4 in the sandbox, no secret set. The pool of
    # the same submission, made in this process, must hold the same numbers to the last
    # bit, run k for run k (so its seeds are the scorer's), and its references the score's.
    score_dir = kit.fine_tune_score_dir(tmp_path_factory)
    split = load_split(kit.split_dir(tmp_path_factory))
    refs = shutil.copytree(kit.refs_dir(tmp_path_factory), tmp_path / "refs")  # its index.json is rewritten
    monkeypatch.delenv(SECRET_ENV, raising=False)
    methods = {"fine_tune": runpy.run_path(str(kit.HERE / "fine_tune.py"))["unlearning"]}
    cache = tmp_path / "cache"
    with kit.one_thread():
        pool, table = coverage_pool.build_pool(split, 4, 4, methods, cache, refs, progress=False)
    assert np.array_equal(pool["fine_tune"], np.load(score_dir / "unlearned_conf.npy"))
    assert np.array_equal(pool["references"], np.load(score_dir / "organisers" / "retrained_conf.npy"))
    assert json.loads(str(pool["meta"]))["run_seeds"] == json.loads((score_dir / "score.json").read_text())["run_seeds"]
    assert table["made now"].tolist() == [0, 4]

    # Resumable: a second call makes only the run whose file is gone, and the pool is the same.
    next(cache.rglob("run-0002-seed-*.npy")).unlink()
    with kit.one_thread():
        again, table = coverage_pool.build_pool(split, 4, 4, methods, cache, refs, progress=False)
    assert table["made now"].tolist() == [0, 1]
    assert all(np.array_equal(again[name], pool[name]) for name in ("references", "fine_tune"))


def test_part_pool_draws_from_a_pool_file_and_skips_what_it_cannot_draw(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "pool.npz"
    arrays = {"references": rng.normal(2, 1, (12, 10)), "shifted": rng.normal(3, 1, (12, 10))}
    coverage_pool.write_pool(path, {**arrays, "meta": np.array("{}")})
    args = argparse.Namespace(pool=str(path), n_models="4,16", intervals=10, truth_draws=20, seed=0)
    rows = coverage.pool_rows(args, {})
    assert [(row["method"], row["N"], row["intervals"]) for row in rows] == [("shifted", 4, 10)]  # not meta
    assert 0 < rows[0]["true F"] <= 1 and 0 <= rows[0]["coverage %"] <= 100
    assert "shifted: N = 16 skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arrays",
    [
        {"finetune": np.zeros((4, 10))},  # no references
        {"references": np.zeros((4, 10))},  # no method
        {"references": np.zeros((4, 10)), "finetune": np.zeros((4, 9))},  # not the same examples
    ],
)
def test_part_pool_refuses_a_file_that_is_not_a_pool_in_one_line(tmp_path, arrays):
    path = tmp_path / "pool.npz"
    np.savez(path, **arrays)
    with pytest.raises(SystemExit, match="needs 'references' \\[R, S\\] and at least one method"):
        coverage.read_pool(str(path))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--out", "pool.txt"], "--out pool.txt must end in .npz"),
        (["--split-dir", "{tmp}"], "is not a split directory"),
        (["--methods", "finetune,nope"], "unknown method\\(s\\) nope: choose from .*finetune.*sanity_retrain"),
        (["--runs", "1"], "--runs must be an integer >= 2"),
    ],
)
def test_the_pool_builder_refuses_bad_options_in_one_line(tmp_path, tmp_path_factory, monkeypatch, options, message):
    split = kit.split_dir(tmp_path_factory)
    given = {"--split-dir": str(split), "--out": str(tmp_path / "pool.npz"), "--cache": str(tmp_path / "cache")}
    given |= dict(zip(options[::2], (o.format(tmp=tmp_path) for o in options[1::2]), strict=True))
    monkeypatch.setattr(sys, "argv", ["coverage_pool.py", *(part for pair in given.items() for part in pair)])
    with pytest.raises(SystemExit, match=f"^error: .*{message}"):
        coverage_pool.main()
    assert not (tmp_path / "cache").exists()  # refused before anything was made


def test_sanity_rows_are_methods_of_the_pool(tmp_path_factory):
    recipe = load_split(kit.split_dir(tmp_path_factory)).recipe
    methods = coverage_pool.chosen_methods("sanity_retrain, finetune", recipe)
    assert list(methods) == ["sanity_retrain", "finetune"]
    assert methods["sanity_retrain"].__code__.co_filename == "sanity_retrain.py"  # the row's own source
