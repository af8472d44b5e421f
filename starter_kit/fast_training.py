"""The GPU training path: the public recipe with the data resident on the device.

What it owns: training one model from scratch with the public recipe when the device
is CUDA, that is the original model (``data_prep build --device cuda``) and every
reference model (``scoring references --device cuda``); ``starter_kit.training.train_model``
sends CUDA work here. It runs on the CPU too, so the tests exercise all of its code.

Why a second path: on a GPU the kit's loop spends its time on the host, not on the
arithmetic. Measured on one H100 (issue 14) with CIFAR-shaped data, the cifar10 recipe
(ResNet-18, batch 256) took 2.91 s per epoch with the CPU loop moved to CUDA, 0.97 s with
the data on the device, bf16 and CUDA graphs; ResNet-18 at 32x32 is about 1.7 GFLOP per
image per step, so even 0.97 s is under 10% of the card's bf16 peak. So, as the fastest
public CIFAR-10 trainers do (airbench, hlb-CIFAR10):

- the training images live on the device as one tensor, moved there once;
- each epoch is shuffled, flipped and cropped in one gather on the device, with random
  numbers from a seeded ``torch.Generator`` on the device, and batches are slices of it;
- bf16 autocast on CUDA (no loss scaling needed), channels_last, cuDNN autotuning;
- optionally ``torch.compile`` (``reduce-overhead`` = CUDA graphs, one launch per step);
- no host synchronisation inside an epoch: no ``.item()``, no boolean masks, the learning
  rate set as a Python number per step, a fused (or foreach) SGD step.

The recipe is the same as the CPU path's (``starter_kit.training``): model, SGD with
momentum, Nesterov and weight decay, the per-step schedule (``lr_factor``), epochs,
batch size with the last partial batch dropped, and the same flip + 4-pixel crop with
zero padding of the normalised images. The initial weights are the same for a seed. The
random streams differ (device generator), and CUDA kernels, bf16 and autotuning are not
bitwise deterministic: a run is seeded but not bitwise reproducible, and the result says
so (``FastResult.bitwise_reproducible`` is False), so a manifest or reference index can too.
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
from starter_kit.training import lr_factor  # one schedule for both paths

COMPILE_MODES = ("reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune", "default")


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
    compile : str or None
        A ``torch.compile`` mode for the forward and backward pass (see ``COMPILE_MODES``;
        ``reduce-overhead`` captures CUDA graphs), or None for eager. If compiling fails,
        training goes on eagerly with a warning.
    cudnn_benchmark : bool
        Let cuDNN time its algorithms for these fixed shapes (CUDA only).
    """

    augment_on_device: bool = True
    autocast: bool | None = None
    channels_last: bool = True
    compile: str | None = None
    cudnn_benchmark: bool = True

    def __post_init__(self):
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {self.compile!r}: choose one of {', '.join(COMPILE_MODES)} or None")


@dataclass
class FastResult:
    """A model trained by ``train_fast`` and how it was trained.

    ``model`` is in eval mode on the device, in the default memory layout.
    ``epoch_seconds`` [epochs] is the wall time of each epoch (the first includes any
    compilation and autotuning). ``bitwise_reproducible`` is always False: seeded, but
    another run differs in the last bits (and, through training, in more than those).
    """

    model: nn.Module
    seconds: float
    epoch_seconds: list[float]
    device: str
    options: dict
    compiled: bool
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
        }


def resolve_options(options: FastOptions | None, device: torch.device) -> FastOptions:
    """``options`` with ``autocast`` decided for ``device`` (None: bf16 on CUDA only)."""
    options = FastOptions() if options is None else options
    if options.autocast is None:
        options = FastOptions(**{**asdict(options), "autocast": device.type == "cuda"})
    return options


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
    if len(images) < 2:
        raise ValueError(f"cannot train on {len(images)} example(s): need at least 2")
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    options = resolve_options(options, device)
    started = time.perf_counter()
    layout = torch.channels_last if options.channels_last else torch.contiguous_format

    graphs = reused = options.compile == "reduce-overhead" and device.type == "cuda"
    torch.manual_seed(seed)  # the same initial weights as the CPU path for this seed
    model = _model(recipe.model, images.shape[1], num_classes, device, layout, reuse=reused)
    data = images.to(device, torch.float32)
    targets = labels.to(device, torch.int64)
    n = len(data)
    # As the CPU loader: full batches only (BatchNorm needs > 1 example), unless one batch is all.
    batch = min(recipe.batch_size, n)
    steps_per_epoch = n // batch
    total_steps = recipe.epochs * steps_per_epoch
    generator = torch.Generator(device=device if options.augment_on_device else "cpu").manual_seed(seed)

    optimizer = _sgd(model, recipe, device)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    use_autocast = bool(options.autocast)

    def forward_loss(inputs: torch.Tensor, batch_targets: torch.Tensor) -> torch.Tensor:
        # Built inside the function, so that torch.compile traces it into the graph.
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
            return criterion(model(inputs), batch_targets)

    step_loss = forward_loss
    compiled = False
    notes: list[str] = []
    if options.compile is not None:
        step_loss = torch.compile(forward_loss, mode=options.compile)
        compiled = True
    graphs = graphs and compiled

    model.train()
    epoch_seconds = []
    running = torch.zeros((), device=device)
    step = 0
    with _cudnn_benchmark(device, options.cudnn_benchmark):
        bar = tqdm(range(recipe.epochs), desc=desc, disable=not progress, leave=False, unit="epoch")
        for _ in bar:
            epoch_started = time.perf_counter()
            running.zero_()
            order = torch.randperm(n, generator=generator, device=generator.device).to(device)
            if recipe.augment == "flip_crop" and options.augment_on_device:
                epoch_images = shuffle_flip_crop(data, order, generator)
            else:
                epoch_images = data[order]
            epoch_targets = targets[order]
            epoch_images = epoch_images.contiguous(memory_format=layout)
            for index in range(steps_per_epoch):
                inputs = epoch_images[index * batch : (index + 1) * batch]
                if recipe.augment == "flip_crop" and not options.augment_on_device:
                    inputs = shuffle_flip_crop(inputs, None, generator).contiguous(memory_format=layout)
                batch_targets = epoch_targets[index * batch : (index + 1) * batch]
                factor = lr_factor(recipe, step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = recipe.lr * factor
                if graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                try:
                    loss = step_loss(inputs, batch_targets)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # the compiled backward is built on its first call
                except Exception as error:  # compilation failed: carry on eagerly
                    if step_loss is forward_loss or step > 0:
                        raise
                    message = f"torch.compile(mode={options.compile!r}) failed, training eagerly: {type(error).__name__}: {error}"
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                    notes.append(message.splitlines()[0][:300])
                    step_loss, compiled, graphs = forward_loss, False, False
                    loss = step_loss(inputs, batch_targets)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                optimizer.step()
                running += loss.detach()
                step += 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # once per epoch: honest epoch times
            epoch_seconds.append(time.perf_counter() - epoch_started)
            if progress:
                bar.set_postfix(loss=f"{running.item() / max(1, steps_per_epoch):.3f}")
    optimizer.zero_grad(set_to_none=True)  # no gradients travel with the model
    if reused:  # the model is this process's slot (see _model): hand back a copy
        model = copy.deepcopy(model)
    model = model.to(memory_format=torch.contiguous_format).eval()
    record_options = asdict(options)
    return FastResult(
        model=model,
        seconds=time.perf_counter() - started,
        epoch_seconds=epoch_seconds,
        device=str(device),
        options=record_options,
        compiled=compiled,
        notes=notes,
    )


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


# One model per (architecture, shape, device) in this process, re-initialised in place for
# each training when CUDA graphs are on: the graphs recorded for its parameters stay valid,
# where a new model at new addresses would make torch record them again (and give up
# after a limit, silently falling back to slower replays), once per reference model.
_SLOTS: dict[tuple, nn.Module] = {}


def _model(name: str, in_channels: int, num_classes: int, device: torch.device, layout, reuse: bool) -> nn.Module:
    """A freshly initialised model (seed torch first); with ``reuse``, this process's slot holding it."""
    fresh = build_model(name, in_channels, num_classes).to(device, memory_format=layout)
    if not reuse:
        return fresh
    key = (name, in_channels, num_classes, str(device), str(layout))
    slot = _SLOTS.setdefault(key, fresh)
    if slot is not fresh:
        with torch.no_grad():
            for mine, new in zip(slot.state_dict(keep_vars=True).values(), fresh.state_dict(keep_vars=True).values()):
                mine.copy_(new)
    return slot


def _sgd(model: nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    """The recipe's SGD; on CUDA the fused kernel (one launch per step) where torch has it."""
    settings = dict(
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov and recipe.momentum > 0,
        weight_decay=recipe.weight_decay,
    )
    if device.type == "cuda":
        try:
            return torch.optim.SGD(model.parameters(), fused=True, **settings)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.SGD(model.parameters(), foreach=True, **settings)
    return torch.optim.SGD(model.parameters(), **settings)


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
