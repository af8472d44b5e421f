"""The GPU training path: the public recipe with the data resident on the device.

What it owns: training models from scratch with the public recipe when the device is
CUDA, that is the original model (``data_prep build --device cuda``) and every reference
model (``scoring references --device cuda``); ``starter_kit.training.train_model`` sends
CUDA work here. It runs on the CPU too, so the tests exercise all of its code.

Why a second path: on a GPU the kit's loop spends its time on the host, not on the
arithmetic. Measured on one H100 with CIFAR-shaped data (benchmarks/gpu_train_speed.py,
the table in README), the cifar10 recipe (ResNet-18, batch 256) takes 4.0 s per epoch
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
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from starter_kit.models import build_model
from starter_kit.recipe import Recipe
from starter_kit.recipe import lr_factor  # one schedule for both paths

COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")
WARMUP_STEPS = 3  # steps run (and undone) before a capture: cuDNN autotuning, lazy initialisation, compilation


@dataclass(frozen=True)
class FastOptions:
    """How the fast path runs; none of it changes the recipe.

    Parameters
    ----------
    augment_on_device : bool
        True: each epoch is shuffled, flipped and cropped in one batched gather with a
        device generator. False: the order and the flips and offsets of each batch are
        drawn on the host and copied over, as the CPU loop does (for the benchmark's
        step-by-step table).
    autocast : bool or None
        bf16 autocast; None means on for CUDA, off for the CPU (slow there on most chips).
    channels_last : bool
        NHWC activations: what tensor cores and oneDNN want.
    cuda_graph : bool or None
        Capture the whole step in a CUDA graph; None means on for CUDA. Ignored on the CPU.
        If capturing fails, training goes on without a graph, with a warning and a note.
    compile : str or None
        A ``torch.compile`` mode for the forward pass and loss (see ``COMPILE_MODES``),
        or None for eager. If compiling fails, training goes on eagerly with a warning.
    cudnn_benchmark : bool
        Let cuDNN time its algorithms for these fixed shapes (CUDA only).
    fused_sgd : bool
        The SGD update as one fused kernel (``torch._fused_sgd_``, what
        ``torch.optim.SGD(fused=True)`` runs, with the learning rate as a device tensor)
        instead of six foreach passes over the weights: the same arithmetic, about a
        third of the memory traffic (for ResNet-18, 0.23 GB instead of 0.72 GB per step).
        Off until measured on a GPU (benchmarks/gpu_train_speed.py, row i).
    """

    augment_on_device: bool = True
    autocast: bool | None = None
    channels_last: bool = True
    cuda_graph: bool | None = None
    compile: str | None = None
    cudnn_benchmark: bool = True
    fused_sgd: bool = False

    def __post_init__(self):
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {self.compile!r}: choose one of {', '.join(COMPILE_MODES)} or None")


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
    options: dict
    compiled: bool
    cuda_graph: bool
    models_together: int = 1
    bitwise_reproducible: bool = False
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """What a manifest or reference index should say about this training."""
        return {
            "path": "fast",
            "device": self.device,
            "bitwise_reproducible": self.bitwise_reproducible,
            "options": dict(self.options),
            "compiled": self.compiled,
            "cuda_graph": self.cuda_graph,
            "models_together": self.models_together,
            # the epochs alone: no set-up, compilation or capture (what a retraining time means, protocol.md)
            "epochs_seconds": round(sum(self.epoch_seconds), 4),
        }


def resolve_options(options: FastOptions | None, device: torch.device) -> FastOptions:
    """``options`` with ``autocast`` and ``cuda_graph`` decided for ``device`` (None: on for CUDA only)."""
    options = FastOptions() if options is None else options
    cuda = device.type == "cuda"
    return FastOptions(
        **{
            **asdict(options),
            "autocast": cuda if options.autocast is None else options.autocast,
            "cuda_graph": cuda and options.cuda_graph is not False,
        }
    )


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

    data = images.to(device, torch.bfloat16 if options.autocast else torch.float32)
    targets = labels.to(device, torch.int64)
    n = len(data)
    # As the CPU loader: full batches only (BatchNorm needs > 1 example), unless one batch is all.
    batch = min(recipe.batch_size, n)
    steps_per_epoch = n // batch
    total_steps = recipe.epochs * steps_per_epoch
    trainers = _trainers(recipe, tuple(data.shape[1:]), num_classes, batch, device, options, len(seeds))
    notes: list[str] = []
    for trainer, seed in zip(trainers, seeds):
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
                for trainer, (epoch_images, epoch_targets) in zip(trainers, epochs):
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


def sgd_update(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    momentum_buffers: list[torch.Tensor],
    lr: torch.Tensor,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
    fused: bool = False,
) -> None:
    """One step of ``torch.optim.SGD`` (no dampening) with ``lr`` a device tensor, so that
    the step can live in a CUDA graph while the schedule changes it; ``grads`` are consumed.

    The momentum buffers start at zero, which makes the first step ``buf = grad`` as in torch.
    ``fused``: torch's fused SGD kernel does the same in one pass (see ``FastOptions.fused_sgd``).
    """
    if fused:
        torch._fused_sgd_(
            params,
            grads,
            momentum_buffers if momentum else [],
            weight_decay=weight_decay,
            momentum=momentum,
            lr=lr,
            dampening=0.0,
            nesterov=nesterov,
            maximize=False,
            is_first_step=False,
        )
        return
    with torch.no_grad():
        if weight_decay:
            torch._foreach_add_(grads, params, alpha=weight_decay)
        if momentum:
            torch._foreach_mul_(momentum_buffers, momentum)
            torch._foreach_add_(momentum_buffers, grads)
            if nesterov:
                torch._foreach_add_(grads, momentum_buffers, alpha=momentum)
            else:
                grads = momentum_buffers
        torch._foreach_sub_(params, torch._foreach_mul(grads, lr))


class _Trainer:
    """One model's training state in this process: model, momentum, static batch, graph, stream."""

    def __init__(
        self, recipe: Recipe, shape: tuple, num_classes: int, batch: int, device: torch.device, options: FastOptions
    ):
        self.recipe, self.shape, self.num_classes, self.device, self.options = (
            recipe,
            shape,
            num_classes,
            device,
            options,
        )
        self.layout = torch.channels_last if options.channels_last else torch.contiguous_format
        self.model = build_model(recipe.model, shape[0], num_classes).to(device, memory_format=self.layout)
        self.params = [p for p in self.model.parameters()]
        self.momentum_buffers = [torch.zeros_like(p) for p in self.params]
        self.lr = torch.zeros((), device=device)
        self.running = torch.zeros((), device=device)
        dtype = torch.bfloat16 if options.autocast else torch.float32
        self.static_inputs = torch.zeros((batch, *shape), device=device, dtype=dtype).contiguous(
            memory_format=self.layout
        )
        self.static_targets = torch.zeros(batch, device=device, dtype=torch.int64)
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.forward_loss = self._forward_loss
        self.compiled = False
        if options.compile is not None:
            self.forward_loss = torch.compile(self._forward_loss, mode=options.compile)
            self.compiled = True
        self.graph: torch.cuda.CUDAGraph | None = None
        self.prepared = False
        self.generator: torch.Generator | None = None

    def _forward_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # Built inside the function, so that torch.compile traces it into its graph.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.options.autocast)):
            return self.criterion(self.model(inputs), targets)

    def _step(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Forward, backward and update (and the epoch's running loss): what the graph captures."""
        loss = self.forward_loss(inputs, targets)
        grads = list(torch.autograd.grad(loss, self.params))
        recipe = self.recipe
        nesterov = recipe.nesterov and recipe.momentum > 0
        sgd_update(
            self.params,
            grads,
            self.momentum_buffers,
            self.lr,
            recipe.momentum,
            nesterov,
            recipe.weight_decay,
            fused=self.options.fused_sgd,
        )
        self.running += loss.detach()

    def reset(self, seed: int) -> None:
        """Start over for ``seed``: the initial weights a fresh model of that seed has (as on
        the CPU path), zero momentum, fresh BatchNorm statistics, a new generator; in place,
        so that a captured graph stays valid."""
        torch.manual_seed(seed)
        fresh = build_model(self.recipe.model, self.shape[0], self.num_classes)
        with torch.no_grad():
            for mine, new in zip(
                self.model.state_dict(keep_vars=True).values(), fresh.state_dict(keep_vars=True).values()
            ):
                mine.copy_(new)
            for buffer in self.momentum_buffers:
                buffer.zero_()
        device = self.device if self.options.augment_on_device else torch.device("cpu")
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.model.train()

    def prepare(self, inputs: torch.Tensor, targets: torch.Tensor) -> list[str]:
        """Compile and capture once per trainer, on a sample batch, every change undone. Returns notes."""
        if self.prepared:
            return []
        self.prepared = True
        notes: list[str] = []
        snapshot = [t.detach().clone() for t in self._state()]
        try:
            self._warm_up(inputs, targets)
        except Exception as error:  # compilation failed: carry on eagerly
            if not self.compiled:
                raise
            notes.append(_fallback_warning("torch.compile", self.options.compile, error, "training eagerly"))
            self.forward_loss, self.compiled = self._forward_loss, False
            self._restore(snapshot)
            self._warm_up(inputs, targets)
        if self.options.cuda_graph:
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    self._step(self.static_inputs, self.static_targets)
                self.graph = graph
            except Exception as error:
                notes.append(_fallback_warning("CUDA graph capture", "whole step", error, "training without a graph"))
                self.graph = None
        self._restore(snapshot)
        return notes

    def _warm_up(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """A few steps on the sample batch: cuDNN autotuning, lazy initialisation, compilation."""
        with self._on_stream(wait=True):
            self.static_inputs.copy_(inputs)
            self.static_targets.copy_(targets)
            for _ in range(WARMUP_STEPS if self.options.cuda_graph else 1):
                self._step(self.static_inputs, self.static_targets)
        if self.stream is not None:
            self.stream.synchronize()

    def _augments(self, per_batch: bool) -> bool:
        """Whether the recipe's flip + crop is done per epoch (``per_batch`` False) or per batch, by the options."""
        return self.recipe.augment == "flip_crop" and self.options.augment_on_device != per_batch

    def epoch(self, data: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This epoch's images and labels in order: shuffled (and flipped and cropped) by this model's generator."""
        with self._on_stream(wait=True):  # after the data and the reset, queued on the default stream
            self.running.zero_()
            order = torch.randperm(len(data), generator=self.generator, device=self.generator.device).to(data.device)
            if self._augments(per_batch=False):
                images = shuffle_flip_crop(data, order, self.generator)
            else:
                images = data[order]
            return images.contiguous(memory_format=self.layout), targets[order]

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> None:
        """One step on this batch at this learning rate, queued on this model's stream."""
        with self._on_stream():
            if self._augments(per_batch=True):
                inputs = shuffle_flip_crop(inputs, None, self.generator)
            self.lr.fill_(lr)
            if self.graph is None:
                self._step(inputs.contiguous(memory_format=self.layout), targets)
                return
            self.static_inputs.copy_(inputs)
            self.static_targets.copy_(targets)
            self.graph.replay()

    def finished_model(self) -> nn.Module:
        """A copy of the trained model in eval mode, default layout (the trainer keeps its own)."""
        if self.stream is not None:
            self.stream.synchronize()
        model = copy.deepcopy(self.model)
        return model.to(memory_format=torch.contiguous_format).eval()

    def _state(self) -> list[torch.Tensor]:
        return [*self.model.state_dict(keep_vars=True).values(), *self.momentum_buffers, self.running]

    def _restore(self, snapshot: list[torch.Tensor]) -> None:
        if self.stream is not None:
            self.stream.synchronize()
        with torch.no_grad():
            for tensor, saved in zip(self._state(), snapshot):
                tensor.copy_(saved)

    def _on_stream(self, wait: bool = False):
        """This model's CUDA stream as the current one (on the CPU: nothing); ``wait``: after
        everything queued so far on the default stream."""
        if self.stream is None:
            return contextlib.nullcontext()
        if wait:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        return torch.cuda.stream(self.stream)


# This process's trainers, by everything that shapes a step: kept so that the next
# model of the same shapes reuses the compiled step and the captured graph. Only the
# latest shapes are kept: a notebook that trains models of several shapes in turn
# holds the device memory of one set of trainers, not of every set it ever used.
_TRAINERS: dict[tuple, list[_Trainer]] = {}


def _trainers(
    recipe: Recipe, shape: tuple, num_classes: int, batch: int, device: torch.device, options: FastOptions, count: int
) -> list[_Trainer]:
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
        pool.append(_Trainer(recipe, shape, num_classes, batch, device, options))
    for trainer in pool[:count]:
        trainer.recipe = recipe  # epochs and lr may differ; neither is part of the graph
    return pool[:count]


def forget_trainers() -> None:
    """Drop this process's kept trainers (their graphs and device memory); the next training sets up anew."""
    _TRAINERS.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _fallback_warning(what: str, mode, error: Exception, then: str) -> str:
    message = f"{what} ({mode}) failed, {then}: {type(error).__name__}: {error}"
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return message.splitlines()[0][:300]


def shuffle_flip_crop(
    images: torch.Tensor, order: torch.Tensor | None, generator: torch.Generator, pad: int = 4
) -> torch.Tensor:
    """``images[order]``, each flipped horizontally with probability 1/2 and translated by
    up to ``pad`` pixels with zero fill: one gather, no padded copy, no host synchronisation.

    The same distribution as ``starter_kit.training.flip_crop`` (flip, then a random
    ``H x W`` crop of the image zero-padded by ``pad``): output pixel (y, x) is input pixel
    (y + dy - pad, x + dx - pad) of the flipped image, or 0 outside it. Random numbers come
    from ``generator`` on its own device and are moved to the images' device (a small copy
    when they differ). ``order`` None means ``images`` as they are.
    """
    n_all, channels, height, width = images.shape
    n = n_all if order is None else len(order)
    draw = generator.device
    flip = (torch.rand(n, generator=generator, device=draw) < 0.5).to(images.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=draw).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=draw).to(images.device)
    rows = dy.view(n, 1, 1, 1) - pad + torch.arange(height, device=images.device).view(1, 1, height, 1)
    cols = dx.view(n, 1, 1, 1) - pad + torch.arange(width, device=images.device).view(1, 1, 1, width)
    cols = torch.where(flip.view(n, 1, 1, 1), width - 1 - cols, cols)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    source = torch.arange(n, device=images.device) if order is None else order.to(images.device)
    channel = torch.arange(channels, device=images.device).view(1, channels, 1, 1)
    gathered = images[source.view(n, 1, 1, 1), channel, rows.clamp(0, height - 1), cols.clamp(0, width - 1)]
    return gathered * inside.to(images.dtype)


@contextlib.contextmanager
def _cudnn_benchmark(device: torch.device, enabled: bool):
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
