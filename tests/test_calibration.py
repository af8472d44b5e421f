"""The time limit's basis: models trained alone and warm per reference folder, however the references were trained."""

import json
import shutil

import pytest
from submissions import _fixtures as kit

from scoring.backends.interface import LocalBackend
from scoring.cli import main
from scoring.references import calibration
from scoring.references.build import build_references, load_references
from scoring.references.folder import calibration_seed, reference_seed
from starter_kit.splits import Split, load_split

IDENTITY = "def unlearning(net, retain_loader, forget_loader, val_loader):\n    return net\n"


class WatchedBackend(LocalBackend):
    """Two local worker processes that log, per submitted task, how many others were unfinished."""

    def __init__(self):
        super().__init__(jobs=2)
        self.log, self._open = [], set()

    def submit(self, fn, *args):
        task = super().submit(fn, *args)
        self.log.append((args[1], len(self._open)))  # (seeds, tasks not yet collected)
        self._open.add(task)
        return task

    def as_completed(self, tasks):
        for task in super().as_completed(tasks):
            self._open.discard(task)
            yield task


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    """The scorer's tiny test split (digits, 2-epoch recipe), shared with the other test modules."""
    return load_split(kit.split_dir(tmp_path_factory))


def test_two_models_trained_together_get_the_limit_of_one_trained_alone(split, tmp_path):
    """--jobs 2: the calibration is trained before, and while no, reference; the limit is 20% of it."""
    backend = WatchedBackend()
    with kit.one_thread(), backend:
        refs = build_references(split, 2, tmp_path / "refs", progress=False, backend=backend)
    sha = split.manifest_sha256
    assert backend.log[0] == ([calibration_seed(sha)], 0)  # first, with nothing else running
    assert sorted(seed for seeds, _ in backend.log[1:] for seed in seeds) == sorted(
        reference_seed(sha, k) for k in range(2)
    )
    assert max(others for _, others in backend.log[1:]) == 1  # the two references did train together
    assert calibration_seed(sha) not in refs.seeds and refs.calibration["when"].startswith("alone, before training 2")
    assert refs.calibration["torch_threads"] == 1 and refs.calibration["seconds"] > 0

    submission = kit.write_py(tmp_path, IDENTITY)
    record = kit.score(split.directory, refs.directory, submission, tmp_path / "score", time_limit=None)
    basis = record["time"]["limit_basis"]
    assert basis["used"] == "alone" and basis["alone_seconds"] == refs.calibration["seconds"]
    assert basis["shared_seconds"] == pytest.approx(refs.training_seconds.mean(), abs=1e-4)
    assert record["time"]["limit_seconds"] == pytest.approx(0.2 * refs.calibration["seconds"], abs=1e-4)
    assert "of retraining one model alone" in record["time"]["limit_rule"]


def test_a_set_without_a_calibration_falls_back_and_gains_one_without_retraining(split, tmp_path, capsys):
    refs = tmp_path / "refs"
    with kit.one_thread():
        before = build_references(split, 2, refs, progress=False)
    index = json.loads((refs / "index.json").read_text())
    del index["calibration"]  # as sets built before calibrations existed
    (refs / "index.json").write_text(json.dumps(index))
    record = kit.score(split.directory, refs, kit.write_py(tmp_path, IDENTITY), tmp_path / "old", time_limit=None)
    assert record["status"] == "scored" and record["time"]["limit_basis"]["used"] == "shared"
    assert record["time"]["limit_seconds"] == pytest.approx(0.2 * before.training_seconds.mean(), abs=1e-4)
    assert "no calibration" in record["time"]["limit_rule"] and record["time"]["alone_training_seconds"] is None

    files = {p.name: p.stat().st_mtime_ns for p in refs.glob("model-*.npz")}
    with kit.one_thread():
        assert (
            main(["references", "--split-dir", str(split.directory), "--n-models", "2", "--refs", str(refs), "--quiet"])
            == 0
        )
    out = capsys.readouterr().out
    assert "the calibration, the time limit's basis" in out and "the median of 1 model(s) trained alone" in out
    assert {p.name: p.stat().st_mtime_ns for p in refs.glob("model-*.npz")} == files  # no reference trained again
    after = load_references(split, 2, refs)
    assert (
        after.sha256 == before.sha256 and after.calibration["when"] == "alone, on this process, nothing else training"
    )

    with kit.one_thread():
        again = build_references(split, 2, refs, progress=True)
        assert again.calibration == after.calibration and "calibration:" not in capsys.readouterr().err  # kept
        fresh = build_references(split, 2, refs, progress=True, calibrate=True)  # measured again
    assert "calibration: 1 model(s) trained alone on this process after a discarded warm-up" in capsys.readouterr().err
    assert fresh.sha256 == before.sha256 and fresh.calibration["seconds"] > 0


def test_a_damaged_calibration_is_one_line_naming_the_fix(split, tmp_path, tmp_path_factory, capsys):
    refs = tmp_path / "refs"
    shutil.copytree(kit.refs_dir(tmp_path_factory), refs)
    index = json.loads((refs / "index.json").read_text())
    index["calibration"]["seconds"] = "fast"
    (refs / "index.json").write_text(json.dumps(index))
    submission = kit.write_py(tmp_path, IDENTITY)
    command = [
        "score",
        str(submission),
        "--team",
        "t",
        "--split-dir",
        str(split.directory),
        "--n-models",
        "2",
        "--refs",
        str(refs),
    ]
    assert main([*command, "--out", str(tmp_path / "out"), "--unsealed", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a damaged calibration (seconds 'fast')" in err and "--calibrate" in err


def test_the_basis_is_the_median_of_models_timed_after_a_discarded_warm_up(split, tmp_path, monkeypatch):
    """Issue 28: the first model of a fresh process pays one-time costs, so a short warm-up is trained and
    discarded, then CALIBRATION_MODELS models are timed; index.json keeps every time, their spread, and how
    the default limit compares with the references' own times."""
    trained, train_models = [], calibration.train_models

    def recording(recipe, images, labels, num_classes, seeds, **options):
        trained.append((recipe.epochs, list(seeds)))
        return train_models(recipe, images, labels, num_classes, seeds, **options)

    monkeypatch.setattr(calibration, "CALIBRATION_MODELS", 3)
    monkeypatch.setattr(calibration, "train_models", recording)  # jobs=1: the task runs in this process
    with kit.one_thread():
        refs = build_references(split, 2, tmp_path / "refs", progress=False)
    seeds = calibration.calibration_seeds(split.manifest_sha256, 3)
    assert trained == [(1, seeds[:1]), *((split.recipe.epochs, [s]) for s in seeds)]  # the warm-up first: 1 epoch
    record = refs.calibration
    assert seeds[0] == calibration_seed(split.manifest_sha256) and len(set(seeds)) == 3
    assert not set(seeds) & set(refs.seeds.tolist()) and record["seeds"] == seeds
    assert len(record["times"]) == 3 and record["seconds"] == sorted(record["times"])[1]
    times = record["times"]
    assert record["spread"] == pytest.approx((max(times) - min(times)) / record["seconds"], abs=1e-3)
    assert record["warm_up"]["discarded"] and record["warm_up"]["epochs"] == 1 and "median of 3" in record["statistic"]
    compared = json.loads((refs.directory / "index.json").read_text())["limit_vs_references"]
    assert compared["calibration_seconds"] == record["seconds"] and compared["references_together"] == 1
    assert compared["default_limit_seconds"] == pytest.approx(0.2 * record["seconds"], abs=1e-4)
    median = (refs.training_seconds[0] + refs.training_seconds[1]) / 2
    assert compared["default_limit_over_references"] == pytest.approx(0.2 * record["seconds"] / median, rel=1e-3)
