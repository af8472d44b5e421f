"""Reference models: sealed seeds, resumable and extendable, never reused for another split."""

import json
import shutil

import numpy as np
import pytest
from submissions import _fixtures as kit

from scoring.cli import main
from scoring.outputs import Evaluator, derive_seed
from scoring.references import build as references
from scoring.references.build import build_references, default_refs_dir, load_references
from scoring.references.folder import calibration_seed, model_file, reference_seed
from scoring.score import run_seed
from starter_kit.splits import load_split
from starter_kit.training import train_model


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return load_split(kit.split_dir(tmp_path_factory))


@pytest.fixture
def counting(monkeypatch, split):
    """Count reference trainings (not the calibration's, in ``calibrations``); ``interrupt_at`` raises
    KeyboardInterrupt on that reference training."""
    calls = {"seeds": [], "calibrations": 0, "interrupt_at": None}

    def train(recipe, images, labels, num_classes, seeds, **kwargs):
        models = []
        for seed in seeds:
            if seed == calibration_seed(split.manifest_sha256):
                calls["calibrations"] += 1
                models.append(train_model(recipe, images, labels, num_classes, seed, **kwargs))
                continue
            calls["seeds"].append(seed)
            if len(calls["seeds"]) == calls["interrupt_at"]:
                raise KeyboardInterrupt
            models.append(train_model(recipe, images, labels, num_classes, seed, **kwargs))
        return models

    monkeypatch.setattr(references, "train_models", train)
    return calls


def test_seeds_are_deterministic_distinct_and_not_the_run_seeds(split):
    seeds = [reference_seed(split.manifest_sha256, k) for k in range(64)]
    assert seeds == [reference_seed(split.manifest_sha256, k) for k in range(64)]
    assert len(set(seeds)) == 64 and all(0 <= s < 2**31 for s in seeds)
    assert not set(seeds) & {run_seed(split.manifest_sha256, k) for k in range(64)}
    assert reference_seed("0" * 64, 0) != seeds[0]


def test_an_interrupted_build_resumes_and_a_larger_n_extends(split, tmp_path, counting):
    refs = tmp_path / "refs"
    counting["interrupt_at"] = 2
    with kit.one_thread(), pytest.raises(KeyboardInterrupt):
        build_references(split, 3, refs, progress=False)
    assert sorted(p.name for p in refs.iterdir()) == ["index.json", model_file(split, 0)]  # nothing half-written
    assert json.loads((refs / "index.json").read_text())["n_models"] == 1

    counting["interrupt_at"] = None
    with kit.one_thread():
        three = build_references(split, 3, refs, progress=False)
    expected = [reference_seed(split.manifest_sha256, k) for k in range(4)]
    assert counting["seeds"] == expected[:2] + expected[1:3]  # model 1 again (interrupted), then model 2
    with kit.one_thread():
        four = build_references(split, 4, refs, progress=False)
        again = build_references(split, 2, refs, progress=False)
    assert counting["seeds"][4:] == expected[3:]  # only the new one; asking for 2 trains nothing
    assert list(four.seeds) == expected and four.forget_conf.shape == (4, len(split.indices["forget"]))
    assert np.array_equal(four.forget_conf[:3], three.forget_conf)
    assert again.sha256 != three.sha256 != four.sha256
    assert load_references(split, 3, refs).sha256 == three.sha256
    index = json.loads((refs / "index.json").read_text())
    assert index["n_models"] == 4 and [m["seed"] for m in index["models"]] == expected


def test_a_reference_is_its_seed_retrained(split, tmp_path_factory):
    refs = load_references(split, 2, kit.refs_dir(tmp_path_factory))
    with kit.one_thread():
        model = train_model(
            split.recipe, split.images("retain"), split.labels("retain"), 10, seed=int(refs.seeds[1]), progress=False
        )
    outputs = Evaluator(split)(model)
    assert np.array_equal(outputs.forget_conf, refs.forget_conf[1])
    assert outputs.test_accuracy == refs.test_accuracy[1] and refs.training_seconds[1] > 0


def test_a_file_made_for_another_split_or_recipe_is_never_reused(split, tmp_path, tmp_path_factory):
    refs = tmp_path / "refs"
    shutil.copytree(kit.refs_dir(tmp_path_factory), refs)
    path = refs / model_file(split, 2)
    with np.load(path) as archive:
        arrays = dict(archive)
    meta = json.loads(str(arrays["meta"]))
    meta["key"]["recipe"]["epochs"] = 3
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"made for another split or recipe \(recipe differ\).*never reused"):
        load_references(split, 3, refs)
    load_references(split, 2, refs)  # models 0 and 1 are fine

    index = json.loads((refs / "index.json").read_text())
    index["key"]["manifest_sha256"] = "f" * 64
    (refs / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="holds reference models of another split"):
        build_references(split, 2, refs, progress=False)


def test_asking_for_more_than_were_built_says_how_to_build_them(split, tmp_path_factory):
    refs = kit.refs_dir(tmp_path_factory)
    with pytest.raises(ValueError, match=r"holds 4 reference model\(s\).*, 6 are needed.*--n-models 6 --refs"):
        load_references(split, 6, refs)
    with pytest.raises(ValueError, match="integer >= 2"):
        load_references(split, 1, refs)


def test_the_command_defaults_to_one_folder_per_split(split, tmp_path, monkeypatch, capsys, counting):
    monkeypatch.chdir(tmp_path)
    with kit.one_thread():
        assert (
            main(["references", "--split-dir", str(split.directory), "--n-models", "2", "--quiet", "--threads", "1"])
            == 0
        )
    folder = default_refs_dir(split)
    assert folder == default_refs_dir(split, tmp_path / "results" / "references").relative_to(tmp_path)
    assert folder.name == f"digits-public-{split.manifest_sha256[:12]}"
    assert (tmp_path / folder / model_file(split, 1)).is_file()
    assert "2 reference models in" in capsys.readouterr().out
    assert main(["references", "--split-dir", str(tmp_path), "--n-models", "2"]) == 2
    assert "is not a split directory" in capsys.readouterr().err
    command = ["references", "--split-dir", str(split.directory), "--n-models", "2", "--quiet"]
    assert main([*command, "--models-together", "0"]) == 2
    err = capsys.readouterr().err
    assert "--models-together must be at least 1" in err and len(err.strip().splitlines()) == 1


def test_an_organiser_secret_changes_every_seed(split, monkeypatch):
    sha = split.manifest_sha256
    public = [reference_seed(sha, k) for k in range(8)] + [run_seed(sha, k) for k in range(8)]
    monkeypatch.setenv("SCORING_SECRET", "organiser only")
    sealed = [reference_seed(sha, k) for k in range(8)] + [run_seed(sha, k) for k in range(8)]
    assert not set(public) & set(sealed)
    assert sealed == [reference_seed(sha, k) for k in range(8)] + [run_seed(sha, k) for k in range(8)]


def test_a_set_read_with_another_secret_names_the_cause_and_the_fix(split, tmp_path_factory, tmp_path, monkeypatch):
    """Not "delete them": a missing or mistyped secret must not cost the organiser the set."""
    refs = tmp_path / "refs"
    shutil.copytree(kit.refs_dir(tmp_path_factory), refs)
    fix = "or train a new set into another --refs folder (the references and every score must use one secret)"
    # `make demo` trains without a secret; then the organisers' quickstart's `export SCORING_SECRET=...`
    monkeypatch.setenv("SCORING_SECRET", "organiser only")
    with pytest.raises(ValueError, match="holds another model 0 than this split gives") as error:
        load_references(split, 2, refs)
    assert "the set was trained without $SCORING_SECRET, which is set now: unset it to use this set" in str(error.value)
    assert fix in str(error.value) and "delete" not in str(error.value)
    # a set trained with one secret, read with another or with none
    for k in range(4):
        name = f"model-{k:04d}-seed-{derive_seed('reference', split.manifest_sha256, k, secret='')}.npz"
        (refs / name).rename(
            refs / f"model-{k:04d}-seed-{derive_seed('reference', split.manifest_sha256, k, secret='old')}.npz"
        )
    monkeypatch.setenv("SCORING_SECRET", "mistyped")
    with pytest.raises(ValueError, match="trained with another \\$SCORING_SECRET than the one set now: set the one it"):
        load_references(split, 2, refs)
    monkeypatch.delenv("SCORING_SECRET")
    with pytest.raises(
        ValueError,
        match="trained with \\$SCORING_SECRET set, which is unset now: set the same secret "
        "again; if it is lost, this set cannot be used: train a new set",
    ):
        load_references(split, 2, refs)


def test_training_in_parallel_workers_gives_the_same_reference_set(split, tmp_path, tmp_path_factory):
    """Worker processes against the session's set, trained in this process one model at a time: a bitwise
    promise of the kit: the same machine, seeds and torch threads (another CPU may differ in the last bits)."""
    serial = load_references(split, 2, kit.refs_dir(tmp_path_factory))
    with kit.one_thread():
        parallel = build_references(split, 2, tmp_path / "parallel", progress=False, jobs=2)
    assert parallel.sha256 == serial.sha256
    assert np.array_equal(parallel.forget_conf, serial.forget_conf)
    with pytest.raises(ValueError, match="--jobs must be an integer >= 1"):
        build_references(split, 3, tmp_path / "parallel", progress=False, jobs=0)


def test_models_trained_together_in_one_task_are_the_same_reference_set(split, tmp_path, tmp_path_factory):
    """On the CPU a task of several models trains them one after the other: the same set as
    the session's (one model a task), bit for bit on the same machine; each file records how it was trained."""
    one = load_references(split, 3, kit.refs_dir(tmp_path_factory))
    with kit.one_thread():
        together = build_references(split, 3, tmp_path / "together", progress=False, together=2)
    assert together.sha256 == one.sha256
    with np.load(tmp_path / "together" / model_file(split, 2)) as archive:
        meta = json.loads(str(archive["meta"]))
    assert meta["training"]["path"] == "reference" and meta["training"]["bitwise_reproducible"] is True
    with pytest.raises(ValueError, match="models together must be an integer >= 1"):
        build_references(split, 3, tmp_path / "together", progress=False, together=0)


def test_a_damaged_or_missing_file_is_named_refused_by_score_and_trained_again(
    split, tmp_path, tmp_path_factory, capsys
):
    original = kit.refs_dir(tmp_path_factory)
    refs = tmp_path / "refs"
    shutil.copytree(original, refs)
    truncated, edited = refs / model_file(split, 1), refs / model_file(split, 2)
    truncated.write_bytes(truncated.read_bytes()[:200])  # "BadZipFile", naming no file, before checksums
    with np.load(edited) as archive:
        arrays = dict(archive)
    meta = json.loads(str(arrays["meta"]))
    meta["training_seconds"] /= 10  # readable, its key and arrays intact: only the recorded sha256 tells
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez(edited, **arrays)

    with pytest.raises(ValueError, match=rf"{truncated} is damaged \(unreadable: BadZipFile"):
        load_references(split, 4, refs)
    submission = kit.write_py(tmp_path, "def unlearning(net, retain, forget, val):\n    return net\n")
    command = ["score", str(submission), "--team", "t", "--split-dir", str(split.directory), "--n-models", "4"]
    assert main([*command, "--refs", str(refs), "--out", str(tmp_path / "out"), "--unsealed", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {truncated} is damaged")
    assert f"'python -m scoring references --split-dir {split.directory} --n-models 4 --refs {refs}'" in err
    assert not (tmp_path / "out").exists()

    with kit.one_thread():
        repaired = build_references(split, 4, refs, progress=False)
    err = capsys.readouterr().err
    assert f"{truncated} is damaged (unreadable: BadZipFile" in err
    assert f"{edited} is damaged (its sha256 is not the one index.json recorded" in err
    assert repaired.retrained == (truncated.name, edited.name)
    assert repaired.sha256 == load_references(split, 4, original).sha256

    missing = refs / model_file(split, 3)
    missing.unlink()
    with pytest.raises(ValueError, match=rf"{missing} is missing \(index.json lists it\): repair"):
        load_references(split, 4, refs)
    with kit.one_thread():
        assert build_references(split, 4, refs, progress=False).sha256 == repaired.sha256
    assert f"{missing} is missing (index.json lists it): training model 3 again" in capsys.readouterr().err


def test_a_file_that_is_not_an_archive_is_called_so(split, tmp_path, tmp_path_factory):
    """Not numpy's "pickled (object) data" guess: np.load takes any non-zip bytes for a pickle."""
    refs = tmp_path / "refs"
    shutil.copytree(kit.refs_dir(tmp_path_factory), refs)
    (refs / model_file(split, 0)).write_text("not a model at all")
    with pytest.raises(ValueError, match=r"is damaged \(unreadable: not an .npz archive\)"):
        load_references(split, 2, refs)


def test_an_index_without_file_checksums_is_still_read_and_gains_them(split, tmp_path, tmp_path_factory):
    refs = tmp_path / "refs"
    shutil.copytree(kit.refs_dir(tmp_path_factory), refs)
    index = json.loads((refs / "index.json").read_text())
    for model in index["models"]:
        del model["file_sha256"]  # as layout 1 wrote it
    (refs / "index.json").write_text(json.dumps(index))
    expected = load_references(split, 4, refs).sha256
    with kit.one_thread():
        assert build_references(split, 4, refs, progress=False).sha256 == expected
    index = json.loads((refs / "index.json").read_text())
    assert index["layout_version"] == 2 and all(len(m["file_sha256"]) == 64 for m in index["models"])
