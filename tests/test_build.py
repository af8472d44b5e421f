"""``python -m data_prep build``: reproducible split directories, and clean failures."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fake_cifar import make_fake_cifar10

from data_prep import build as build_module
from data_prep.__main__ import main
from starter_kit import data
from starter_kit.splits import load_split


@pytest.fixture(scope="module")
def public_twice(tmp_path_factory, digits_split_dir):
    """The session's public digits split (built through the API) and the same split built again by the command."""
    again = tmp_path_factory.mktemp("builds") / "b"
    assert main(["build", "--dataset", "digits", "--split", "public", "--out", str(again), "--quiet"]) == 0
    return digits_split_dir, again


def test_building_twice_gives_byte_identical_indices_manifest_and_model(public_twice):
    """Two builds in one session: a bitwise promise of the kit: the same machine, seeds and torch
    threads (another CPU may differ in the last bits)."""
    first, second = public_twice
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {str(f) for f in files} >= {"manifest.json", "indices/forget.npy", "original/model.pt"}
    for relative in files:
        if relative.name != "metrics.json":  # holds the training time
            assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert json.loads((first / "manifest.json").read_text())["original_model"]["bitwise_reproducible"] is True


def test_original_model_meets_the_accuracy_bars(public_twice):
    metrics = load_split(public_twice[0]).original_metrics()
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["train_accuracy"] >= 0.995
    assert set(metrics) >= {f"{p}_accuracy" for p in ("train", "retain", "forget", "val", "test")}


def test_manifest_records_what_the_protocol_asks(public_twice):
    manifest = json.loads((public_twice[0] / "manifest.json").read_text())
    assert manifest["split"]["seed"] == 2023 and manifest["split"]["forget"]["strategy"] == "random"
    assert manifest["dataset"]["sha256"] == data.load_digits().sha256
    assert manifest["recipe"]["model"] == "resnet_digits" and manifest["kit_version"]
    sizes = {p: manifest["parts"][p]["size"] for p in manifest["parts"]}
    assert sizes["train"] == sizes["retain"] + sizes["forget"]
    assert sizes["train"] + sizes["val"] + sizes["test"] == 1797
    assert all(sum(manifest["parts"][p]["per_class"]) == sizes[p] for p in sizes)


def test_loaded_split_serves_parts_and_the_original_model(public_twice):
    split = load_split(public_twice[0])
    model = split.original_model()
    inputs, targets = next(iter(split.loader("forget", batch_size=16)))
    assert model(inputs).argmax(1).eq(targets).float().mean() > 0.9


def test_private_split_uses_its_own_seed(tmp_path, public_twice):
    assert (
        main(
            [
                "build",
                "--dataset",
                "digits",
                "--split",
                "private",
                "--out",
                str(tmp_path / "p"),
                "--quiet",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    private = json.loads((tmp_path / "p" / "manifest.json").read_text())
    public = json.loads((public_twice[0] / "manifest.json").read_text())
    assert private["split"]["seed"] == 2024
    assert private["parts"]["forget"]["sha256"] != public["parts"]["forget"]["sha256"]
    assert private["recipe"]["epochs"] == 1


def _fails(capsys, tmp_path, *args, match):
    out = tmp_path / "split"
    code = main(["build", "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert match in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".split")]


@pytest.mark.parametrize(
    "args, match",
    [
        (["--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--dataset", "digits", "--forget-fraction", "1.5"], "--forget-fraction must be strictly between 0 and 1"),
        (["--dataset", "digits", "--forget-fraction", "0"], "--forget-fraction must be strictly between 0 and 1"),
        (["--dataset", "digits", "--forget", "class", "--forget-classes", "3,12"], "class(es) [12] do not exist"),
        (["--dataset", "digits", "--forget", "class"], "needs --forget-classes"),
        (["--dataset", "digits", "--forget", "group"], "needs --groups"),
        (["--dataset", "digits", "--forget", "nearest"], "unknown forget strategy"),
        (["--dataset", "digits", "--split", "final"], "unknown split 'final'"),
        (["--dataset", "digits", "--epochs", "0"], "--epochs must be at least 1"),
        (["--dataset", "cifar10", "--data-root", "/nonexistent/cifar"], "CIFAR-10 not found at /nonexistent/cifar"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(capsys, tmp_path, args, match):
    _fails(capsys, tmp_path, *args, match=match)


def test_missing_cifar10_location_names_the_option_and_variable(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv(data.CIFAR10_ENV, raising=False)
    _fails(capsys, tmp_path, "--dataset", "cifar10", match="--data-root PATH or set CIFAR10_ROOT")


def test_corrupt_cifar10_is_one_line_exit_2(capsys, tmp_path):
    make_fake_cifar10(tmp_path / "cifar")
    _fails(
        capsys,
        tmp_path,
        "--dataset",
        "cifar10",
        "--data-root",
        str(tmp_path / "cifar"),
        match="corrupt or not the official release",
    )


def test_existing_output_needs_force_and_force_replaces_it(capsys, tmp_path):
    out = tmp_path / "split"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["build", "--dataset", "digits", "--out", str(out), "--quiet", "--epochs", "1"]) == 2
    assert "already exists: pass --force" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
    assert main(["build", "--dataset", "digits", "--out", str(out), "--quiet", "--epochs", "1", "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError("out of memory")])
def test_interrupted_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch, interruption):
    def interrupted(*args, **kwargs):
        raise interruption

    monkeypatch.setattr(build_module, "train_model", interrupted)
    with pytest.raises((KeyboardInterrupt, RuntimeError)):
        build_module.build_split(
            build_module.BuildOptions(dataset="digits", split="public", out=tmp_path / "s", progress=False)
        )
    assert list(tmp_path.iterdir()) == []


def test_class_and_group_strategies_through_the_command_line(tmp_path):
    assert (
        main(
            [
                "build",
                "--dataset",
                "digits",
                "--out",
                str(tmp_path / "c"),
                "--quiet",
                "--epochs",
                "1",
                "--forget",
                "class",
                "--forget-classes",
                "3",
            ]
        )
        == 0
    )
    split = load_split(tmp_path / "c")
    assert set(split.labels("forget").tolist()) == {3}
    groups = np.arange(1797) % 50
    np.save(tmp_path / "groups.npy", groups)
    assert (
        main(
            [
                "build",
                "--dataset",
                "digits",
                "--out",
                str(tmp_path / "g"),
                "--quiet",
                "--epochs",
                "1",
                "--forget",
                "group",
                "--groups",
                str(tmp_path / "groups.npy"),
            ]
        )
        == 0
    )
    split = load_split(tmp_path / "g")
    assert set(groups[split.indices["forget"]]).isdisjoint(groups[split.indices["retain"]])
    assert split.manifest["split"]["forget"]["groups_sha256"]


def test_groups_file_of_the_wrong_length_is_rejected(capsys, tmp_path):
    np.save(tmp_path / "groups.npy", np.arange(10))
    _fails(
        capsys,
        tmp_path,
        "--dataset",
        "digits",
        "--forget",
        "group",
        "--groups",
        str(tmp_path / "groups.npy"),
        match="expected (1797,)",
    )


@pytest.fixture(scope="module")
def fake_cifar_split(tmp_path_factory) -> tuple[Path, Path, dict[str, str], str]:
    """A CIFAR-10 split built by the command from a fake local archive (1 epoch of resnet18_cifar), once per module:
    (archive folder, split folder, the archive's md5, what the command printed)."""
    root = tmp_path_factory.mktemp("fake-cifar")
    md5 = make_fake_cifar10(root / "cifar", per_batch=20)
    command = ["build", "--dataset", "cifar10", "--data-root", str(root / "cifar"), "--out", str(root / "split")]
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(data, "CIFAR10_MD5", md5)
        assert main([*command, "--quiet", "--epochs", "1"]) == 0
    return root / "cifar", root / "split", md5, printed.getvalue()


def test_cifar10_split_from_a_local_archive(fake_cifar_split, monkeypatch):
    archive, out, md5, printed = fake_cifar_split
    monkeypatch.setattr(data, "CIFAR10_MD5", md5)
    assert "original model (resnet18_cifar" in printed
    split = load_split(out, data_root=archive)
    assert len(split.indices["train"]) == 100
    assert len(split.indices["val"]) == len(split.indices["test"]) == 10
    assert len(split.indices["forget"]) == 10


def test_split_refuses_other_data_than_it_was_built_from(fake_cifar_split, tmp_path, monkeypatch):
    out = fake_cifar_split[1]
    md5 = make_fake_cifar10(tmp_path / "other", per_batch=20, seed=1)
    monkeypatch.setattr(data, "CIFAR10_MD5", md5)
    with pytest.raises(ValueError, match="differ from the data"):
        load_split(out, data_root=tmp_path / "other")


def test_show_describes_a_split(public_twice, capsys):
    assert main(["show", str(public_twice[0])]) == 0
    out = capsys.readouterr().out
    assert "images per part and class" in out and "retain" in out and "%" in out


def test_show_on_a_non_split_directory_is_one_line(tmp_path, capsys):
    assert main(["show", str(tmp_path)]) == 2
    assert "is not a split directory" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["tpu", "gpu", "cuda:x"])
def test_a_device_that_is_not_one_is_a_usage_error_before_anything_runs(device, capsys, tmp_path):
    from scoring.cli import main as scoring_main

    for command, run in (
        (["build", "--dataset", "digits", "--out", str(tmp_path / "s"), "--device", device], main),
        (["references", "--split-dir", str(tmp_path), "--n-models", "2", "--device", device], scoring_main),
    ):
        try:
            code = run(command)
        except SystemExit as exit_:  # argparse's own exit, usage line included
            code = exit_.code
        assert code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and f"{device!r} is not a device the kit runs on: use cpu, cuda or cuda:N" in err
    assert not (tmp_path / "s").exists()


def test_cuda_without_a_gpu_is_one_line_in_both_commands(capsys, tmp_path, monkeypatch, digits_split_dir):
    import torch

    from scoring.cli import main as scoring_main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["build", "--dataset", "digits", "--out", str(tmp_path / "s"), "--device", "cuda", "--quiet"]) == 2
    assert (
        scoring_main(
            [
                "references",
                "--split-dir",
                str(digits_split_dir),
                "--n-models",
                "2",
                "--device",
                "cuda:1",
                "--refs",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error: --device cuda asked for, but torch sees no CUDA device: use --device cpu",
        "error: --device cuda:1 asked for, but torch sees no CUDA device: use --device cpu",
    ]
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
