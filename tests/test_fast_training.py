"""The fast (GPU) training path, exercised on the CPU: same recipe, same accuracy, no host syncs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from starter_kit.data import load_dataset
from starter_kit.fast_training import FastOptions, shuffle_flip_crop, train_fast
from starter_kit.recipe import Recipe, default_recipe
from starter_kit.training import fast_options, train_model, training_record, uses_fast_path


def _expected_flip_crop(images, order, generator_seed, pad=4):
    """The CPU path's definition, image by image: flip, zero-pad, crop at (dy, dx)."""
    generator = torch.Generator().manual_seed(generator_seed)
    n = len(order)
    flip = torch.rand(n, generator=generator) < 0.5
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    out = []
    for k, source in enumerate(order.tolist()):
        image = images[source].flip(2) if flip[k] else images[source]
        padded = nn.functional.pad(image, (pad, pad, pad, pad))
        out.append(padded[:, dy[k] : dy[k] + images.shape[2], dx[k] : dx[k] + images.shape[3]])
    return torch.stack(out)


def test_device_augmentation_is_flip_then_zero_padded_crop_in_one_gather():
    images = torch.randn(12, 3, 32, 32)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    out = shuffle_flip_crop(images, order, torch.Generator().manual_seed(7))
    assert out.shape == (12, 3, 32, 32)
    assert torch.equal(out, _expected_flip_crop(images, order, 7))
    # Without an order: the images as they are; the same generator state gives the same result.
    again = shuffle_flip_crop(images, None, torch.Generator().manual_seed(7))
    assert torch.equal(again, _expected_flip_crop(images, torch.arange(12), 7))
    # Over many draws every offset and both flips occur.
    many = shuffle_flip_crop(torch.ones(2000, 1, 8, 8), None, torch.Generator().manual_seed(0))
    zeros_per_image = (many == 0).flatten(1).sum(1)
    assert (zeros_per_image == 0).float().mean().item() == pytest.approx(1 / 81, abs=0.01)  # dy = dx = 4
    assert zeros_per_image.max().item() == 64 - 16  # shifted by 4 both ways: a 4x4 corner survives


def _digits_parts():
    data = load_dataset("digits")
    order = torch.randperm(len(data.labels), generator=torch.Generator().manual_seed(0))
    return data, order[:1257], order[1257:]


def _accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


def test_fast_path_reaches_the_cpu_paths_accuracy_on_digits(single_torch_thread):
    """Two seeds each; digits test accuracy is about 99% on both paths, noise about 0.5%."""
    data, train, test = _digits_parts()
    recipe = default_recipe("digits")
    cpu, fast = [], []
    for seed in (0, 1):
        model = train_model(recipe, data.images[train], data.labels[train], 10, seed, progress=False)
        cpu.append(_accuracy(model, data.images[test], data.labels[test]))
        result = train_fast(recipe, data.images[train], data.labels[train], 10, seed, "cpu", progress=False)
        fast.append(_accuracy(result.model, data.images[test], data.labels[test]))
    assert min(cpu + fast) > 0.95, (cpu, fast)
    assert abs(sum(fast) / 2 - sum(cpu) / 2) < 0.02, (cpu, fast)


def _tiny_rgb(n=96):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, 8, 8, generator=generator)
    labels = torch.arange(n) % 4
    images[:, :, 2:6, 2:6] += labels.float().view(n, 1, 1, 1)  # learnable, survives crops
    return images, labels


@pytest.mark.parametrize(
    "options",
    [
        FastOptions(),
        FastOptions(augment_on_device=False),
        FastOptions(autocast=True),
        FastOptions(channels_last=False),
        FastOptions(fused_sgd=True),
    ],
    ids=["device-augmentation", "host-drawn-augmentation", "bf16-autocast", "contiguous", "fused-sgd"],
)
def test_every_option_trains_with_the_recipe_and_reports_itself(options, single_torch_thread):
    images, labels = _tiny_rgb()
    recipe = Recipe(model="resnet_digits", epochs=2, batch_size=32, lr=0.05, augment="flip_crop")
    result = train_fast(recipe, images, labels, 4, seed=3, device="cpu", options=options, progress=False)
    assert not result.model.training and len(result.epoch_seconds) == 2
    assert result.model.conv1.weight.is_contiguous()  # default layout, like the CPU path
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert result.bitwise_reproducible is False
    record = result.record()
    assert record["path"] == "fast" and record["bitwise_reproducible"] is False
    assert record["options"]["autocast"] is bool(options.autocast)
    assert result.model.conv1.weight.dtype == torch.float32  # autocast leaves the weights in float32


def test_same_initial_weights_as_the_cpu_path_and_a_seeded_outcome(single_torch_thread):
    images, labels = _tiny_rgb()
    recipe = Recipe(model="resnet_digits", epochs=1, batch_size=32, lr=0.0, momentum=0.0, weight_decay=0.0)
    # lr 0: training only moves BatchNorm statistics, so the weights are the initial ones.
    cpu = train_model(recipe, images, labels, 4, seed=5, progress=False)
    fast = train_fast(recipe, images, labels, 4, seed=5, device="cpu", progress=False).model
    assert torch.equal(cpu.conv1.weight, fast.conv1.weight) and torch.equal(cpu.fc.weight, fast.fc.weight)
    recipe = Recipe(model="resnet_digits", epochs=2, batch_size=32, lr=0.05, augment="flip_crop")
    a, b, c = (train_fast(recipe, images, labels, 4, seed=s, device="cpu", progress=False).model for s in (5, 5, 6))
    assert torch.allclose(a.fc.weight, b.fc.weight, atol=1e-5)  # seeded (bitwise here, not promised)
    assert not torch.allclose(a.fc.weight, c.fc.weight, atol=1e-3)


def test_no_host_synchronisation_inside_the_loop(monkeypatch, single_torch_thread):
    """No .item(), .tolist() or bool() of a tensor per step: each would stall a GPU queue."""
    images, labels = _tiny_rgb()
    recipe = Recipe(model="resnet_digits", epochs=2, batch_size=16, lr=0.05, augment="flip_crop")

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation in the training loop")

    for name in ("item", "tolist", "__bool__", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    result = train_fast(recipe, images, labels, 4, seed=0, device="cpu", progress=False)
    monkeypatch.undo()
    assert len(result.epoch_seconds) == 2


def test_batches_and_steps_follow_the_cpu_loader(single_torch_thread):
    """Full batches only, and one batch of everything when the data are smaller than a batch."""
    images, labels = _tiny_rgb(n=40)
    small = Recipe(model="resnet_digits", epochs=1, batch_size=64, lr=0.05)
    assert train_fast(small, images, labels, 4, seed=0, device="cpu", progress=False).model is not None
    with pytest.raises(ValueError, match="need at least 2"):
        train_fast(small, images[:1], labels[:1], 4, seed=0, device="cpu")
    with pytest.raises(ValueError, match="unknown compile mode"):
        FastOptions(compile="fastest")


def test_train_model_sends_cuda_to_the_fast_path_and_says_so(monkeypatch, single_torch_thread):
    assert uses_fast_path("cuda") and uses_fast_path("cuda:1") and not uses_fast_path("cpu")
    assert uses_fast_path("cpu", fast=True) and not uses_fast_path("cuda", fast=False)
    assert training_record("cpu")["bitwise_reproducible"] is True
    cuda = training_record("cuda")
    assert cuda["path"] == "fast" and cuda["bitwise_reproducible"] is False and "not bitwise" in cuda["note"]
    assert fast_options("cpu").compile is None
    monkeypatch.setenv("KIT_COMPILE", "none")
    assert fast_options("cuda").compile is None
    monkeypatch.setenv("KIT_COMPILE", "max-autotune-no-cudagraphs")
    assert fast_options("cuda").compile == "max-autotune-no-cudagraphs"
    monkeypatch.setenv("KIT_COMPILE", "turbo")
    with pytest.raises(ValueError, match="KIT_COMPILE"):
        fast_options("cuda")
    monkeypatch.delenv("KIT_COMPILE")
    images, labels = _tiny_rgb()
    recipe = Recipe(model="resnet_digits", epochs=1, batch_size=32, lr=0.05)
    assert train_model(recipe, images, labels, 4, seed=0, progress=False).training_record["path"] == "reference"
    model = train_model(recipe, images, labels, 4, seed=0, progress=False, fast=True)
    assert model.training_record["path"] == "fast" and model.training_record["bitwise_reproducible"] is False


def test_a_cuda_build_goes_through_the_fast_path(monkeypatch, tmp_path):
    """data_prep build --device cuda reaches train_model with device cuda (faked here), and
    the manifest says the original model is not bitwise reproducible."""
    import json

    import data_prep.build as build_module

    seen = {}

    def fake_train_model(recipe, images, labels, num_classes, seed, device="cpu", **kwargs):
        seen["device"] = str(device)
        seen["fast"] = uses_fast_path(device)
        return train_model(recipe, images, labels, num_classes, seed, device="cpu", fast=True, **kwargs)

    monkeypatch.setattr(build_module, "train_model", fake_train_model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = tmp_path / "split"
    build_module.build_split(
        build_module.BuildOptions(dataset="digits", split="public", out=out, epochs=1, device="cuda", progress=False)
    )
    assert seen == {"device": "cuda", "fast": True}
    original = json.loads((out / "manifest.json").read_text())["original_model"]
    assert original["device"] == "cuda" and original["bitwise_reproducible"] is False
    assert "fast_training" in original["note"]
    metrics = json.loads((out / "original" / "metrics.json").read_text())
    assert metrics["training"]["path"] == "fast" and metrics["training"]["bitwise_reproducible"] is False


def test_a_failing_compile_falls_back_to_eager_with_a_note(monkeypatch, single_torch_thread):
    """torch.compile itself is checked by hand (about 80 s on this CPU; see benchmarks/gpu_train_speed.py)."""

    def broken_compile(function, mode=None):
        def compiled(*args, **kwargs):
            raise RuntimeError("no triton here")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    images, labels = _tiny_rgb()
    recipe = Recipe(model="resnet_digits", epochs=1, batch_size=32, lr=0.05)
    with pytest.warns(RuntimeWarning, match="training eagerly"):
        result = train_fast(
            recipe, images, labels, 4, seed=0, device="cpu", options=FastOptions(compile="default"), progress=False
        )
    assert not result.compiled and "no triton here" in result.notes[0]


def test_a_kept_trainer_is_reinitialised_in_place_for_each_seed(single_torch_thread):
    """A process keeps its trainers (stable addresses for a captured graph): each training
    still starts from exactly the weights a fresh model of that seed has, and hands back
    its own copy."""
    from starter_kit.fast_training import _trainers
    from starter_kit.models import build_model

    recipe = Recipe(model="resnet_digits", epochs=1, batch_size=32, lr=0.05)
    options = FastOptions(autocast=False)
    first = _trainers(recipe, (3, 8, 8), 4, 32, torch.device("cpu"), options, 2)
    again = _trainers(recipe.with_epochs(3), (3, 8, 8), 4, 32, torch.device("cpu"), options, 1)
    assert again[0] is first[0] and len(first) == 2
    for seed in (1, 2):
        first[0].reset(seed)
        torch.manual_seed(seed)
        fresh = build_model("resnet_digits", 3, 4)
        for (name, a), b in zip(first[0].model.state_dict().items(), fresh.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    images, labels = _tiny_rgb()
    a = train_fast(recipe, images, labels, 4, seed=1, device="cpu", options=options, progress=False).model
    b = train_fast(recipe, images, labels, 4, seed=2, device="cpu", options=options, progress=False).model
    assert a is not b and not torch.equal(a.fc.weight, b.fc.weight)


def test_only_the_latest_shapes_trainers_are_kept():
    """Training models of another shape drops the trainers of the previous one (their memory)."""
    from starter_kit.fast_training import _TRAINERS, _trainers

    recipe = Recipe(model="resnet_digits", epochs=1, batch_size=32, lr=0.05)
    options = FastOptions(autocast=False)
    first = _trainers(recipe, (3, 8, 8), 4, 32, torch.device("cpu"), options, 2)
    assert _trainers(recipe, (3, 8, 8), 4, 32, torch.device("cpu"), options, 2) == first  # same shapes: kept
    other = _trainers(recipe, (3, 8, 8), 4, 16, torch.device("cpu"), options, 1)  # another batch size
    assert len(_TRAINERS) == 1 and list(_TRAINERS.values())[0] == other
    assert _trainers(recipe, (3, 8, 8), 4, 32, torch.device("cpu"), options, 1)[0] is not first[0]


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
def test_sgd_update_is_torch_sgd_with_a_tensor_learning_rate(fused):
    from starter_kit.fast_training import sgd_update

    generator = torch.Generator().manual_seed(0)
    for momentum, nesterov, decay in ((0.9, True, 5e-4), (0.9, False, 0.0), (0.0, False, 1e-3)):
        params = [torch.randn(5, 3, generator=generator), torch.randn(7, generator=generator)]
        reference = [p.clone().requires_grad_() for p in params]
        optimizer = torch.optim.SGD(reference, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=decay)
        buffers = [torch.zeros_like(p) for p in params]
        for step in range(4):
            grads = [torch.randn(p.shape, generator=generator) for p in params]
            for p, g in zip(reference, grads, strict=True):
                p.grad = g.clone()
            lr = 0.1 * (1 - step / 4)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            sgd_update(
                params, [g.clone() for g in grads], buffers, torch.tensor(lr), momentum, nesterov, decay, fused=fused
            )
            for mine, theirs in zip(params, reference, strict=True):
                torch.testing.assert_close(mine, theirs.detach(), rtol=0, atol=1e-6)


def test_several_models_at_once_are_each_the_model_of_its_seed(single_torch_thread):
    """train_fast_many gives, per seed, what train_fast gives alone (bitwise on the CPU of one machine)."""
    from starter_kit.fast_training import train_fast_many

    images, labels = _tiny_rgb()
    recipe = Recipe(model="resnet_digits", epochs=2, batch_size=32, lr=0.05, augment="flip_crop")
    together = train_fast_many(recipe, images, labels, 4, [3, 4], device="cpu", progress=False)
    alone = [train_fast(recipe, images, labels, 4, seed=s, device="cpu", progress=False) for s in (3, 4)]
    for both, one in zip(together, alone, strict=True):
        assert both.models_together == 2 and both.record()["models_together"] == 2
        for (name, a), b in zip(both.model.state_dict().items(), one.model.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="no seeds"):
        train_fast_many(recipe, images, labels, 4, [], device="cpu")


# ---- on a GPU machine only (CI has none): pytest -q tests/test_fast_training.py -k cuda ----

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_cuda_fast_path_reaches_the_cpu_paths_accuracy_on_digits():
    data, train, test = _digits_parts()
    recipe = default_recipe("digits")
    cpu, fast = [], []
    for seed in (0, 1):
        cpu.append(
            _accuracy(
                train_model(recipe, data.images[train], data.labels[train], 10, seed, progress=False),
                data.images[test],
                data.labels[test],
            )
        )
        model = train_model(recipe, data.images[train], data.labels[train], 10, seed, device="cuda", progress=False)
        assert model.training_record["path"] == "fast" and model.training_record["cuda_graph"]
        fast.append(_accuracy(model.cpu(), data.images[test], data.labels[test]))
    assert min(fast) > 0.95 and abs(sum(fast) / 2 - sum(cpu) / 2) < 0.02, (cpu, fast)


@needs_cuda
@pytest.mark.parametrize(("compile_mode", "fused_sgd"), [(None, False), ("default", False), (None, True)])
def test_cuda_graphs_are_captured_once_for_many_models(compile_mode, fused_sgd):
    """One capture (and compilation) per trainer for every model of a process, each model
    its own copy, several at once on their own streams."""
    from starter_kit.data import make_synthetic_cifar10
    from starter_kit.fast_training import _TRAINERS, train_fast_many

    data = make_synthetic_cifar10(1024, 20)
    recipe = default_recipe("cifar10").with_epochs(2)
    options = FastOptions(compile=compile_mode, fused_sgd=fused_sgd)
    models, graphs = [], []
    for seeds in ([0, 1], [2, 3]):
        results = train_fast_many(
            recipe, data.images[:1024], data.labels[:1024], 10, seeds, "cuda", options=options, progress=False
        )
        for result in results:
            assert result.cuda_graph and result.compiled == (compile_mode is not None) and not result.notes, (
                result.notes
            )
            assert all(torch.isfinite(p).all() for p in result.model.parameters())
            models.append(result.model)
        graphs.append({id(t.graph) for pool in _TRAINERS.values() for t in pool})
    assert graphs[0] == graphs[1]  # no new capture for the second pair
    assert models[0] is not models[1] and not torch.equal(models[0].fc.weight, models[1].fc.weight)
    assert not torch.equal(models[0].fc.weight, models[2].fc.weight)


@needs_cuda
def test_cuda_models_trained_together_match_their_seed_alone_in_accuracy():
    from starter_kit.fast_training import train_fast_many

    data, train, test = _digits_parts()
    recipe = default_recipe("digits")
    together = train_fast_many(recipe, data.images[train], data.labels[train], 10, [0, 1, 2, 3], "cuda", progress=False)
    accuracies = [_accuracy(r.model.cpu(), data.images[test], data.labels[test]) for r in together]
    assert min(accuracies) > 0.95, accuracies


@needs_cuda
def test_cuda_build_of_a_small_synthetic_split(tmp_path):
    import json

    from data_prep.__main__ import main
    from starter_kit.splits import load_split

    out = tmp_path / "synthetic-cuda"
    assert (
        main(
            [
                "build",
                "--dataset",
                "synthetic-cifar10-2000-400",
                "--out",
                str(out),
                "--epochs",
                "2",
                "--device",
                "cuda",
                "--quiet",
            ]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["original_model"]["bitwise_reproducible"] is False
    metrics = load_split(out).original_metrics()
    assert metrics["training"]["path"] == "fast" and 0.0 <= metrics["train_accuracy"] <= 1.0


def test_the_original_models_metrics_say_how_it_was_trained(digits_split):
    training = digits_split.original_metrics()["training"]
    assert training["path"] == "reference" and training["bitwise_reproducible"] is True
