"""The fast path's step: forward, backward and the SGD update, compiled and captured once.

Why a module of its own: on a GPU, launching a step's hundreds of kernels costs more
than running them. A ``Trainer`` holds one model's whole training state at fixed
addresses (model, momentum, a static batch, the learning rate as a device tensor), so
that its step can be compiled (``torch.compile``) and captured in a CUDA graph once,
then replayed for every batch and re-initialised in place for every new seed.
``FastOptions`` says which of these the step uses; none of them changes the recipe.
``starter_kit.fast_training`` drives the trainers through the epochs.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import asdict, dataclass

import torch
from torch import nn

from starter_kit.fast_data import shuffle_flip_crop
from starter_kit.models import build_model
from starter_kit.recipe import Recipe

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

    def __post_init__(self) -> None:
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {self.compile!r}: choose one of {', '.join(COMPILE_MODES)} or None")


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


class Trainer:
    """One model's training state in this process: model, momentum, static batch, graph, stream."""

    def __init__(
        self,
        recipe: Recipe,
        shape: tuple[int, ...],
        num_classes: int,
        batch: int,
        device: torch.device,
        options: FastOptions,
    ) -> None:
        self.recipe, self.shape, self.num_classes, self.device, self.options = (
            recipe,
            shape,
            num_classes,
            device,
            options,
        )
        self.layout = torch.channels_last if options.channels_last else torch.contiguous_format
        self.model = build_model(recipe.model, shape[0], num_classes).to(device).to(memory_format=self.layout)
        self.params: list[torch.Tensor] = list(self.model.parameters())
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
        self.generator = self._generator(seed=0)  # replaced by ``reset`` for each model

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
                self.model.state_dict(keep_vars=True).values(),
                fresh.state_dict(keep_vars=True).values(),
                strict=True,
            ):
                mine.copy_(new)
            for buffer in self.momentum_buffers:
                buffer.zero_()
        self.generator = self._generator(seed)
        self.model.train()

    def _generator(self, seed: int) -> torch.Generator:
        """The random stream of the order and augmentation: on the device, or on the host (see ``FastOptions``)."""
        device = self.device if self.options.augment_on_device else torch.device("cpu")
        return torch.Generator(device=device).manual_seed(seed)

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
            augments = self._augments(per_batch=False)
            images = shuffle_flip_crop(data, order, self.generator) if augments else data[order]
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
            for tensor, saved in zip(self._state(), snapshot, strict=True):
                tensor.copy_(saved)

    def _on_stream(self, wait: bool = False) -> contextlib.AbstractContextManager[object]:
        """This model's CUDA stream as the current one (on the CPU: nothing); ``wait``: after
        everything queued so far on the default stream."""
        if self.stream is None:
            return contextlib.nullcontext()
        if wait:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        return torch.cuda.stream(self.stream)


def _fallback_warning(what: str, mode: str | None, error: Exception, then: str) -> str:
    message = f"{what} ({mode}) failed, {then}: {type(error).__name__}: {error}"
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return message.splitlines()[0][:300]
