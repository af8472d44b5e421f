"""What every baseline shares: checks at the door, the device, SGD with a cosine schedule, teachers."""

from __future__ import annotations

import copy
from typing import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader


def check_inputs(net, retain_loader, forget_loader, val_loader, epochs: int, lr: float) -> torch.device:
    """Raise a clear ValueError for a wrong argument; return the device of ``net``'s parameters."""
    if not isinstance(net, nn.Module):
        raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    parameters = list(net.parameters())
    if not parameters:
        raise ValueError("net has no parameters: nothing to unlearn")
    loaders = {"retain_loader": retain_loader, "forget_loader": forget_loader, "val_loader": val_loader}
    for name, loader in loaders.items():
        if not isinstance(loader, DataLoader):
            raise ValueError(f"{name} must be a torch DataLoader, got {type(loader).__name__}")
        if len(loader) == 0:
            raise ValueError(f"{name} is empty")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    return parameters[0].device


def sgd_cosine(net: nn.Module, lr: float, steps: int, momentum: float = 0.9, weight_decay: float = 5e-4):
    """SGD with momentum and weight decay, its rate annealed to 0 over ``steps`` by a cosine."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    return optimizer, scheduler


def batches(loader: DataLoader, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over ``loader`` on ``device``, skipping batches of one (BatchNorm needs two)."""
    for inputs, targets in loader:
        if len(targets) > 1:
            yield inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


def with_forget_slices(retain_loader: DataLoader, forget_loader: DataLoader, device: torch.device):
    """One pass over retain, each batch with its share of the forget set, on ``device``.

    Yields ``(inputs, targets, forget_inputs, forget_targets)``. The forget set, read
    once per pass, is cut into as many slices as there are retain batches, so one pass
    covers both, each example once, at about the cost of a pass over retain alone.
    Forget sets are small (10% of train): holding one on the device is cheap.
    """
    forget = [(inputs.to(device), targets.to(device)) for inputs, targets in forget_loader]
    forget_inputs = torch.cat([inputs for inputs, _ in forget])
    forget_targets = torch.cat([targets for _, targets in forget])
    pieces = len(retain_loader)
    slices = zip(forget_inputs.tensor_split(pieces), forget_targets.tensor_split(pieces))
    for (inputs, targets), (extra_inputs, extra_targets) in zip(batches(retain_loader, device), slices):
        yield inputs, targets, extra_inputs, extra_targets


def frozen_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in eval mode with gradients off: a teacher that never changes."""
    teacher = copy.deepcopy(net).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0):
    """KL(teacher || student) of the softened outputs, times T^2 (Hinton et al., 2015), batch mean."""
    student = nn.functional.log_softmax(student_logits / temperature, dim=1)
    teacher = nn.functional.log_softmax(teacher_logits / temperature, dim=1)
    return nn.functional.kl_div(student, teacher, reduction="batchmean", log_target=True) * temperature**2


def wrong_labels(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A label for each target drawn uniformly from the other classes (torch's global generator)."""
    shift = torch.randint(1, num_classes, targets.shape).to(targets.device)
    return (targets + shift) % num_classes  # never the true label
