"""synthetic-cifar10: seeded CIFAR-shaped data that data_prep, splits and scoring accept like cifar10."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from data_prep.__main__ import main
from starter_kit.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    DATASETS,
    dataset_family,
    load_dataset,
    make_synthetic_cifar10,
    parse_synthetic_name,
    synthetic_name,
)
from starter_kit.recipe import Recipe, default_recipe
from starter_kit.splits import load_split
from starter_kit.training import train_model

SMALL = "synthetic-cifar10-100-40"  # 100 training and 40 test images: a ResNet-18 epoch in seconds, not minutes


def test_same_seed_same_bytes_and_another_seed_other_bytes():
    first, again, other = (
        make_synthetic_cifar10(60, 40, seed=0),
        make_synthetic_cifar10(60, 40, seed=0),
        make_synthetic_cifar10(60, 40, seed=1),
    )
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert first.sha256 == again.sha256 != other.sha256
    assert not torch.equal(first.images, other.images)
    assert other.name == "synthetic-cifar10-60-40-seed1"
    # A dataset's name is enough to make it again: that is how a split directory loads it.
    assert load_dataset(first.name).sha256 == first.sha256
    assert load_dataset(other.name).sha256 == other.sha256


def test_shapes_sizes_and_classes_are_cifar10s():
    data = load_dataset(SMALL)
    assert data.name == SMALL and data.images.shape == (140, 3, 32, 32) and data.images.dtype == torch.float32
    assert data.labels.dtype == torch.int64 and data.n_official_train == 100 and data.num_classes == 10
    assert data.labels[:100].bincount().tolist() == [10] * 10  # balanced, as CIFAR-10
    assert data.labels[100:].bincount().tolist() == [4] * 10
    assert all(name.startswith("synthetic") for name in data.classes)  # never mistaken for CIFAR-10's
    # Normalised like CIFAR-10 from uint8 pixels: undoing it gives multiples of 1/255 in [0, 1].
    mean, std = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    pixels = (data.images * std + mean) * 255
    assert pixels.min() > -0.01 and pixels.max() < 255.01
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)
    assert (pixels.round() == 255).float().mean() < 0.05  # not saturated


def test_names_default_sizes_and_recipe():
    assert "synthetic-cifar10" in DATASETS
    assert parse_synthetic_name("synthetic-cifar10") == (50_000, 10_000, 0)  # CIFAR-10's sizes
    assert parse_synthetic_name("synthetic-cifar10-400-100-seed3") == (400, 100, 3)
    assert parse_synthetic_name("cifar10") is None
    assert synthetic_name() == "synthetic-cifar10" and synthetic_name(400, 100) == "synthetic-cifar10-400-100"
    assert dataset_family(SMALL) == "synthetic-cifar10" and dataset_family("digits") == "digits"
    assert default_recipe(SMALL) == default_recipe("synthetic-cifar10") == default_recipe("cifar10")
    with pytest.raises(ValueError, match="malformed.*synthetic-cifar10-400-100"):
        load_dataset("synthetic-cifar10-400")
    with pytest.raises(ValueError, match="too small"):
        load_dataset("synthetic-cifar10-10-10")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*synthetic-cifar10"):
        load_dataset("mnist")


def test_a_small_cnn_learns_it_and_a_linear_model_does_not(single_torch_thread):
    """Class structure that needs translation invariance: well above chance for a CNN in seconds."""
    from sklearn.linear_model import LogisticRegression

    data = make_synthetic_cifar10(1000, 300, seed=0)
    train, test = slice(0, 1000), slice(1000, None)
    recipe = Recipe(model="resnet_digits", epochs=4, batch_size=50, lr=0.1, schedule="cosine")
    model = train_model(recipe, data.images[train], data.labels[train], 10, seed=0, progress=False)
    with torch.no_grad():
        cnn = (model(data.images[test]).argmax(1) == data.labels[test]).float().mean().item()
    assert cnn > 0.18, cnn  # chance is 0.10; 4 epochs on 1,000 images give about 0.26
    pooled = data.images.reshape(-1, 3, 8, 4, 8, 4).mean((3, 5)).flatten(1).numpy()
    linear = (
        LogisticRegression(max_iter=500)
        .fit(pooled[train], data.labels[train].numpy())
        .score(pooled[test], data.labels[test].numpy())
    )
    assert linear < cnn


@pytest.fixture(scope="module")
def small_builds(tmp_path_factory):
    """The small synthetic split built twice through the command line, one epoch each."""
    root = tmp_path_factory.mktemp("synthetic")
    before = torch.get_num_threads()
    try:
        for name in ("a", "b"):
            assert main(["build", "--dataset", SMALL, "--out", str(root / name), "--epochs", "1", "--quiet"]) == 0
    finally:
        torch.set_num_threads(before)
    return root / "a", root / "b"


def test_building_it_twice_gives_byte_identical_files(small_builds):
    """Two builds in one session: a bitwise promise of the kit: the same machine, seeds and torch
    threads (another CPU may differ in the last bits)."""
    first, second = small_builds
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {str(p) for p in files} >= {"manifest.json", "indices/train.npy", "indices/forget.npy", "original/model.pt"}
    for path in files:
        if path.name == "metrics.json":
            continue  # holds the training time
        assert (
            hashlib.sha256((first / path).read_bytes()).digest()
            == hashlib.sha256((second / path).read_bytes()).digest()
        ), path


def test_the_split_loads_and_serves_parts_like_cifar10(small_builds):
    split = load_split(small_builds[0])
    manifest = split.manifest
    assert manifest["dataset"]["name"] == SMALL and manifest["dataset"]["image_shape"] == [3, 32, 32]
    assert manifest["recipe"] == default_recipe("cifar10").with_epochs(1).to_dict()
    # As for cifar10: train is the dataset's training part, its test part halved into val and test.
    assert split.indices["train"].tolist() == list(range(100))
    assert len(split.indices["val"]) == len(split.indices["test"]) == 20
    assert len(split.indices["forget"]) == 10 and len(split.indices["retain"]) == 90
    inputs, targets = next(iter(split.loader("forget", batch_size=8)))
    assert inputs.shape == (8, 3, 32, 32) and targets.shape == (8,)
    model = split.original_model()
    assert model(inputs).shape == (8, 10)
    assert 0.0 <= split.original_metrics()["test_accuracy"] <= 1.0


def test_reference_models_train_on_it(small_builds, tmp_path):
    from scoring.references.build import build_references

    split = load_split(small_builds[0])
    references = build_references(split, n_models=2, refs_dir=tmp_path / "refs", progress=False)
    assert np.isfinite(np.asarray(references.forget_conf)).all()
    assert np.asarray(references.forget_conf).shape == (2, 10)
    assert references.calibration["seconds"] > 0
