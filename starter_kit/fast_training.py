"""The GPU training path: the public recipe with the data resident on the device.

What it owns: training models from scratch with the public recipe when the device is
CUDA, that is the original model (``data_prep build --device cuda``) and every reference
model (``scoring references --device cuda``); ``starter_kit.training.train_model`` sends
CUDA work here. It runs on the CPU too, so the tests exercise all of its code.

Why a second path: on a GPU the kit's loop spends its time on the host, not on the
arithmetic. Measured on one H100 with CIFAR-shaped data (benchmarks/gpu_train_speed.py,
the table in docs/organisers/cifar10.md), the cifar10 recipe (ResNet-18, batch 256) takes 4.0 s per epoch
with the kit's loop on CUDA, 0.82 s on this path, and 0.69 s per model with four models
trained together. So, as the fastest public CIFAR-10 trainers do (airbench, hlb-CIFAR10):

- the training images live on the device as one tensor (bf16 when autocast is on: the
  first convolution would cast them anyway), moved there once;
- each epoch is shuffled, flipped and cropped in one gather on the device, with random
  numbers from a seeded ``torch.Generator`` on the device, and batches are slices of it;
- bf16 autocast on CUDA (no loss scaling needed), channels_last, cuDNN autotuning;
- the whole step (forward, backward and the SGD update, whose learning rate is a device
  tensor) is captured once in a CUDA graph and replayed: one launch per step instead of
  hundreds, which is what the kit's loop was waiting on;
- optionally ``torch.compile`` (inductor's fused kernels) inside that graph;
- several models trained at once in one process, each on its own CUDA stream, so the
  kernels of one fill the gaps another leaves on the card (``train_fast_many``);
- no host synchronisation inside an epoch: no ``.item()``, no boolean masks.

The recipe is the same as the CPU path's (``starter_kit.training``): model, SGD with
momentum, Nesterov and weight decay (``sgd_update``, the arithmetic of
``torch.optim.SGD``), the per-step schedule (``lr_factor``), epochs, batch size with the
last partial batch dropped, and the same flip + 4-pixel crop with zero padding of the
normalised images. The initial weights are the same for a seed. The random streams
differ (device generator), and CUDA kernels, bf16 and autotuning are not bitwise
deterministic: a run is seeded but not bitwise reproducible, and the result says so
(``FastResult.bitwise_reproducible`` is False), so a manifest or reference index can too.

A process keeps its trainers (model, momentum, static batch, captured graph) for the
next call with the same shapes: re-initialised in place for each new seed, the graph
recorded for their addresses stays valid, so a process that trains 512 references
captures (and compiles) once.

Three modules, by what each owns: ``fast_data`` the data on the device and its
augmentation, ``fast_step`` one model's compiled and captured step (``FastOptions``,
``sgd_update``, ``Trainer``), and this one the driver: the epochs, the schedule, the
trainers a process keeps, and what a training reports (``FastResult``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from starter_kit.fast_data import device_resident, shuffle_flip_crop
from starter_kit.fast_step import COMPILE_MODES, FastOptions, Trainer, resolve_options, sgd_update
from starter_kit.recipe import (
    Recipe,
    lr_factor,  # one schedule for both paths
)

# What the fast path offers, wherever it is implemented (the step in ``fast_step``, the data in ``fast_data``).
__all__ = [
    "COMPILE_MODES",
    "FastOptions",
    "FastResult",
    "forget_trainers",
    "resolve_options",
    "sgd_update",
    "shuffle_flip_crop",
    "train_fast",
    "train_fast_many",
]


@dataclass
class FastResult:
    """A model trained by ``train_fast`` and how it was trained.

    ``model`` is in eval mode on the device, in the default memory layout.
    ``epoch_seconds`` [epochs] is the wall time of each epoch (for models trained
    together, of all of them). ``seconds`` includes setting up, and capturing or
    compiling when this process had not yet. ``bitwise_reproducible`` is always False:
    seeded, but another run differs in the last bits (and, through training, in more).
    """

    model: nn.Module
    seconds: float
    epoch_seconds: list[float]
    device: str
    options: dict[str, object]
    compiled: bool
    cuda_graph: bool
    models_together: int = 1
    bitwise_reproducible: bool = False
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, object]:
        """What a manifest or reference index should say about this training."""
        return {
            "path": "fast",
            "device": self.device,
            "bitwise_reproducible": self.bitwise_reproducible,
            "options": dict(self.options),
            "compiled": self.compiled,
            "cuda_graph": self.cuda_graph,
            "models_together": self.models_together,
            # the epochs alone: no set-up, compilation or capture (what a retraining time means, docs/protocol.md)
            "epochs_seconds": round(sum(self.epoch_seconds), 4),
        }


def train_fast(
    recipe: Recipe,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    seed: int,
    device: str | torch.device = "cuda",
    options: FastOptions | None = None,
    progress: bool = True,
    desc: str = "training",
) -> FastResult:
    """Train a new ``recipe.model`` on (images [n, C, H, W] float32, labels [n] int64).

    Parameters
    ----------
    recipe : Recipe
        The public recipe; every number that shapes the model comes from it.
    images, labels : torch.Tensor
        The training set, on any device; it is copied to ``device`` once.
    num_classes : int
    seed : int
        Fixes the initial weights (as on the CPU path), the order and the augmentation.
    device : str or torch.device
        ``cuda`` (what this path is for) or ``cpu``.
    options : FastOptions, optional
    progress : bool
        A progress bar per epoch (one host synchronisation per epoch for its loss).

    Returns
    -------
    FastResult
    """
    return train_fast_many(recipe, images, labels, num_classes, [seed], device, options, progress, desc)[0]


def train_fast_many(
    recipe: Recipe,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    seeds: list[int],
    device: str | torch.device = "cuda",
    options: FastOptions | None = None,
    progress: bool = True,
    desc: str = "training",
) -> list[FastResult]:
    """``train_fast`` for each seed, all trained at once: on CUDA each model on its own stream.

    Model k is the model ``train_fast`` gives for ``seeds[k]`` (the same initial weights,
    order and augmentation draws), up to the non-determinism of the kernels. The data
    are on the device once for all of them.
    """
    if len(images) < 2:
        raise ValueError(f"cannot train on {len(images)} example(s): need at least 2")
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if not seeds:
        raise ValueError("no seeds: give at least one model to train")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    options = resolve_options(options, device)
    started = time.perf_counter()

    data, targets = device_resident(images, labels, device, bf16=bool(options.autocast))
    n = len(data)
    # As the CPU loader: full batches only (BatchNorm needs > 1 example), unless one batch is all.
    batch = min(recipe.batch_size, n)
    steps_per_epoch = n // batch
    total_steps = recipe.epochs * steps_per_epoch
    trainers = _trainers(recipe, tuple(data.shape[1:]), num_classes, batch, device, options, len(seeds))
    notes: list[str] = []
    for trainer, seed in zip(trainers, seeds, strict=True):
        trainer.reset(seed)
    with _cudnn_benchmark(device, options.cudnn_benchmark):
        for trainer in trainers:
            notes += trainer.prepare(data[:batch], targets[:batch])
        epoch_seconds = []
        bar = tqdm(range(recipe.epochs), desc=desc, disable=not progress, leave=False, unit="epoch")
        step = 0
        for _ in bar:
            epoch_started = time.perf_counter()
            epochs = [trainer.epoch(data, targets) for trainer in trainers]
            for index in range(steps_per_epoch):
                lr = recipe.lr * lr_factor(recipe, step, total_steps)
                for trainer, (epoch_images, epoch_targets) in zip(trainers, epochs, strict=True):
                    trainer.step(
                        epoch_images[index * batch : (index + 1) * batch],
                        epoch_targets[index * batch : (index + 1) * batch],
                        lr,
                    )
                step += 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # once per epoch: honest epoch times
            epoch_seconds.append(time.perf_counter() - epoch_started)
            if progress:
                mean_loss = sum(t.running.item() for t in trainers) / (len(trainers) * max(1, steps_per_epoch))
                bar.set_postfix(loss=f"{mean_loss:.3f}")
    seconds = time.perf_counter() - started
    return [
        FastResult(
            model=trainer.finished_model(),
            seconds=seconds,
            epoch_seconds=list(epoch_seconds),
            device=str(device),
            options=asdict(options),
            compiled=trainer.compiled,
            cuda_graph=trainer.graph is not None,
            models_together=len(trainers),
            notes=list(notes),
        )
        for trainer in trainers
    ]


# This process's trainers, by everything that shapes a step: kept so that the next
# model of the same shapes reuses the compiled step and the captured graph. Only the
# latest shapes are kept: a notebook that trains models of several shapes in turn
# holds the device memory of one set of trainers, not of every set it ever used.
_TRAINERS: dict[tuple[object, ...], list[Trainer]] = {}


def _trainers(
    recipe: Recipe,
    shape: tuple[int, ...],
    num_classes: int,
    batch: int,
    device: torch.device,
    options: FastOptions,
    count: int,
) -> list[Trainer]:
    key = (
        recipe.model,
        recipe.label_smoothing,
        recipe.momentum,
        recipe.nesterov,
        recipe.weight_decay,
        shape,
        num_classes,
        batch,
        str(device),
        options,
    )
    if key not in _TRAINERS:
        forget_trainers()
    pool = _TRAINERS.setdefault(key, [])
    while len(pool) < count:
        pool.append(Trainer(recipe, shape, num_classes, batch, device, options))
    for trainer in pool[:count]:
        trainer.recipe = recipe  # epochs and lr may differ; neither is part of the graph
    return pool[:count]


def forget_trainers() -> None:
    """Drop this process's kept trainers (their graphs and device memory); the next training sets up anew."""
    _TRAINERS.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _cudnn_benchmark(device: torch.device, enabled: bool) -> Iterator[None]:
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
