"""Models by name, the recipe, and seeded deterministic training."""

import pytest
import torch

from starter_kit.loaders import make_loader
from starter_kit.models import MODELS, build_model
from starter_kit.recipe import Recipe, default_recipe, lr_factor
from starter_kit.training import flip_crop, train_model


@pytest.mark.parametrize(
    "name, shape", [("resnet_digits", (1, 8, 8)), ("resnet18_cifar", (3, 32, 32)), ("resnet18", (3, 32, 32))]
)
def test_each_model_maps_images_to_class_logits(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape[0], 10).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 10)


def test_cifar_stem_keeps_resolution_and_plain_resnet18_does_not():
    assert build_model("resnet18_cifar", 3, 10).conv1.stride == (1, 1)
    assert build_model("resnet18", 3, 10).conv1.stride == (2, 2)
    assert set(MODELS) == {"resnet_digits", "resnet18_cifar", "resnet18"}


def test_unknown_model_and_bad_recipe_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", 3, 10)
    with pytest.raises(ValueError, match="unknown schedule"):
        Recipe(model="resnet_digits", epochs=1, batch_size=8, lr=0.1, schedule="step")
    with pytest.raises(ValueError, match="unknown fields"):
        Recipe.from_dict({**default_recipe("digits").to_dict(), "dropout": 0.5})


def test_recipe_round_trips_through_a_dict():
    recipe = default_recipe("cifar10")
    assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_schedule_warms_up_then_anneals_to_zero():
    recipe = default_recipe("digits")
    factors = [lr_factor(recipe, step, 100) for step in range(100)]
    assert factors[0] < factors[19] == pytest.approx(1.0)
    assert factors[-1] < 0.01
    assert max(factors) <= 1.0


def _tiny_data():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(96, 1, 8, 8, generator=generator)
    labels = torch.arange(96) % 4
    images[:, 0, 0, 0] += labels.float() * 3  # learnable signal
    return images, labels


def test_training_is_bitwise_deterministic_for_a_seed_and_differs_across_seeds():
    """Two trainings in one process: a bitwise promise of the kit: the same machine, seeds and torch
    threads (another CPU may differ in the last bits)."""
    images, labels = _tiny_data()
    recipe = Recipe(model="resnet_digits", epochs=2, batch_size=32, lr=0.05)
    first, second, other = (train_model(recipe, images, labels, 4, seed=s, progress=False) for s in (5, 5, 6))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(first.fc.weight, other.fc.weight)
    assert not first.training


def test_flip_crop_keeps_shape_and_moves_pixels_deterministically():
    images = torch.randn(16, 3, 32, 32)
    out1 = flip_crop(images, torch.Generator().manual_seed(0))
    out2 = flip_crop(images, torch.Generator().manual_seed(0))
    assert out1.shape == images.shape and torch.equal(out1, out2)
    assert not torch.equal(out1, images)


def test_loader_yields_seeded_batches_through_a_real_dataloader():
    images, labels = _tiny_data()
    a = [t for _, t in make_loader(images, labels, 32, shuffle=True, seed=3)]
    b = [t for _, t in make_loader(images, labels, 32, shuffle=True, seed=3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)) and len(a) == 3
    assert isinstance(make_loader(images, labels).dataset, torch.utils.data.TensorDataset)
    with pytest.raises(ValueError, match="differ in length"):
        make_loader(images, labels[:-1])
