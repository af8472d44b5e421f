"""Train a model from scratch with the public recipe, seeded and deterministic on a CPU.

Everything that decides the outcome is an argument: the recipe, the data and the seed.
The seed fixes the initial weights, the shuffling and the augmentation, so the same
call on the same CPU gives the same weights bit for bit.

On CUDA, ``train_model`` hands the same recipe to ``starter_kit.fast_training`` (data
resident on the device, augmentation on the device, bf16, CUDA graphs): seeded but not
bitwise reproducible, which ``training_record`` says, for manifests and reference indices.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from starter_kit.loaders import make_loader
from starter_kit.models import build_model
from starter_kit.recipe import Recipe, lr_factor

if TYPE_CHECKING:
    from starter_kit.fast_step import FastOptions


def train_model(
    recipe: Recipe,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    seed: int,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "training",
    fast: bool | None = None,
) -> nn.Module:
    """A new model of ``recipe.model`` trained on (images [n, C, H, W], labels [n]).

    ``fast`` None (the default) trains with ``starter_kit.fast_training`` on CUDA and with
    this module's loop on the CPU; True or False forces one (the benchmark times this
    loop on CUDA with False). Returns the model in eval mode on ``device``; its
    ``training_record`` attribute (a dict) says which path trained it and whether the
    result is bitwise reproducible.
    """
    if len(images) < 2:
        raise ValueError(f"cannot train on {len(images)} example(s): need at least 2")
    device = torch.device(device)
    if uses_fast_path(device, fast):
        return train_models(recipe, images, labels, num_classes, [seed], device, progress, desc, fast)[0]
    torch.manual_seed(seed)
    # channels_last: about 20% faster convolutions on a CPU (oneDNN), and on recent GPUs.
    model = build_model(recipe.model, images.shape[1], num_classes).to(device).to(memory_format=torch.channels_last)
    # Drop the last partial batch (BatchNorm needs >1 example), unless there is only one.
    loader = make_loader(
        images, labels, recipe.batch_size, shuffle=True, seed=seed, drop_last=len(images) > recipe.batch_size
    )
    augment_generator = torch.Generator().manual_seed(seed + 1)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov and recipe.momentum > 0,
        weight_decay=recipe.weight_decay,
    )
    total_steps = recipe.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(recipe, step, total_steps))
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    model.train()
    bar = tqdm(range(recipe.epochs), desc=desc, disable=not progress, leave=False, unit="epoch")
    for _ in bar:
        for inputs, targets in loader:
            if recipe.augment == "flip_crop":
                inputs = flip_crop(inputs, augment_generator)
            inputs = inputs.to(device, memory_format=torch.channels_last, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            loss = criterion(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    # Back to the default layout, so that evaluating it gives the same numbers as
    # evaluating the same weights loaded from a checkpoint into a fresh model.
    model = model.to(memory_format=torch.contiguous_format).eval()
    model.training_record = training_record(device, fast=False)  # type: ignore[assignment]  # torch hints tensors
    return model


def train_models(
    recipe: Recipe,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    seeds: list[int],
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "training",
    fast: bool | None = None,
) -> list[nn.Module]:
    """``train_model`` for each seed: on the fast path all at once (on CUDA each on its own
    stream, which raises a GPU's throughput), on the CPU one after the other (the same models)."""
    if not uses_fast_path(device, fast):
        return [train_model(recipe, images, labels, num_classes, seed, device, progress, desc, fast) for seed in seeds]
    from starter_kit.fast_training import train_fast_many

    device = torch.device(device)
    results = train_fast_many(
        recipe, images, labels, num_classes, seeds, device, options=fast_options(device), progress=progress, desc=desc
    )
    for result in results:
        result.model.training_record = result.record()  # type: ignore[assignment]  # a dict, not a tensor
    return [result.model for result in results]


# torch.compile mode of the fast path on CUDA, inside its CUDA graph (see
# benchmarks/gpu_train_speed.py). Set $KIT_COMPILE to a mode, or to "none" for eager kernels.
COMPILE_ENV = "KIT_COMPILE"
DEFAULT_CUDA_COMPILE = "default"  # 0.82 s per epoch against 1.03 eager in the graph, on an H100


def uses_fast_path(device: str | torch.device, fast: bool | None = None) -> bool:
    """Whether ``train_model`` takes the fast path: on CUDA unless ``fast`` says otherwise."""
    return torch.device(device).type == "cuda" if fast is None else bool(fast)


def fast_options(device: str | torch.device) -> FastOptions:
    """The fast path's options for ``train_model`` on ``device``: ``$KIT_COMPILE`` on CUDA, eager on the CPU."""
    from starter_kit.fast_training import COMPILE_MODES, FastOptions

    device = torch.device(device)
    mode = os.environ.get(COMPILE_ENV, DEFAULT_CUDA_COMPILE if device.type == "cuda" else "none")
    if mode.lower() in ("", "none", "off", "eager"):
        return FastOptions(compile=None)
    if mode not in COMPILE_MODES:
        raise ValueError(
            f"${COMPILE_ENV}={mode!r} is not a torch.compile mode: choose one of {', '.join(COMPILE_MODES)} or none"
        )
    return FastOptions(compile=mode)


def training_record(device: str | torch.device, fast: bool | None = None) -> dict:
    """How ``train_model`` trains on ``device``: which path, and whether it is bitwise reproducible.

    The CPU loop is (same torch version and thread count); the fast path is seeded but
    not bitwise reproducible (device random streams, bf16, non-deterministic kernels).
    Known before training, so a manifest can hold it; the model's own ``training_record``
    adds what happened (options, whether compilation succeeded).
    """
    device = torch.device(device)
    if uses_fast_path(device, fast):
        return {
            "path": "fast",
            "device": device.type,
            "bitwise_reproducible": False,
            "note": (
                "trained by starter_kit.fast_training: data and augmentation on the device, bf16 autocast "
                "on CUDA; seeded but not bitwise reproducible, a rebuild differs in the last bits"
            ),
        }
    return {
        "path": "reference",
        "device": device.type,
        "bitwise_reproducible": True,
        "note": "trained by starter_kit.training's loop: bitwise reproducible with the same torch version and "
        "thread count",
    }


def use_threads(threads: int) -> None:
    """Set torch's CPU thread count for this process (the CLIs default to 1).

    Small models run fastest and time most steadily on one thread, and a checkpoint
    is bitwise reproducible only with the same thread count.
    """
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def flip_crop(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random horizontal flips and ``pad``-pixel translated crops, per image, in one pass."""
    n, _, height, width = images.shape
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip.view(n, 1, 1, 1), images.flip(3), images)
    padded = nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(height)).view(n, 1, height, 1)
    cols = (dx.view(n, 1) + torch.arange(width)).view(n, 1, 1, width)
    batch = torch.arange(n).view(n, 1, 1, 1)
    channels = torch.arange(images.shape[1]).view(1, -1, 1, 1)
    return padded[batch, channels, rows, cols]
