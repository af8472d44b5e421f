"""What every baseline shares: checks at the door, the budget, SGD with a cosine schedule, teachers.

A baseline's budget and rate are fractions of the challenge's training recipe, never
absolute numbers, so that one set of defaults fits every dataset: ``epoch_share`` of
the recipe's epochs (counted in batches of the retain loader, so a share may end
mid-pass) and ``lr_scale`` times the recipe's learning rate, with the recipe's momentum
and weight decay; the batch size is the loaders'. The time limit is a share of
retraining too, so a budget that fits on digits fits on CIFAR-10.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from starter_kit.recipe import Recipe

# Importances and saliencies below this share of their model-wide mean count as nothing
# measurable (ssd, salun): a millionth of an average weight's is far below anything a
# method should act on, and far above float32's underflow (1e-38), where CPUs differ.
IMPORTANCE_FLOOR = 1e-6


def training_recipe(retain_loader: DataLoader, recipe: Recipe | None = None) -> Recipe:
    """``recipe`` if given, else the challenge's recipe the kit attached to ``retain_loader``.

    ``starter_kit.submission.submission_loaders`` (what the scorer and the notebook call)
    attaches the split's recipe to each loader it builds, as ``loader.recipe``.
    """
    recipe = recipe if recipe is not None else getattr(retain_loader, "recipe", None)
    if not isinstance(recipe, Recipe):
        raise ValueError(
            "no training recipe: build the loaders with starter_kit.submission.submission_loaders "
            "(they carry the split's recipe) or pass recipe=starter_kit.recipe.default_recipe(dataset)"
        )
    return recipe


def check_inputs(
    net,
    retain_loader,
    forget_loader,
    val_loader,
    epoch_share: float = 1.0,
    lr_scale: float = 1.0,
) -> torch.device:
    """Raise a clear ValueError for a wrong argument; return the device of ``net``'s parameters."""
    if not isinstance(net, nn.Module):
        raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    parameters = list(net.parameters())
    if not parameters:
        raise ValueError("net has no parameters: nothing to unlearn")
    loaders = {
        "retain_loader": retain_loader,
        "forget_loader": forget_loader,
        "val_loader": val_loader,
    }
    for name, loader in loaders.items():
        if not isinstance(loader, DataLoader):
            raise ValueError(f"{name} must be a torch DataLoader, got {type(loader).__name__}")
        if len(loader) == 0:
            raise ValueError(f"{name} is empty")
    if not epoch_share > 0:
        raise ValueError(f"epoch_share (a share of the recipe's epochs) must be positive, got {epoch_share}")
    if not lr_scale > 0:
        raise ValueError(f"lr_scale (a multiple of the recipe's learning rate) must be positive, got {lr_scale}")
    return parameters[0].device


def budget_steps(recipe: Recipe, retain_loader: DataLoader, epoch_share: float) -> int:
    """Training steps worth ``epoch_share`` of the recipe's epochs over retain: at least one."""
    return max(1, round(epoch_share * recipe.epochs * len(retain_loader)))


def sgd_cosine(
    net: nn.Module,
    recipe: Recipe,
    lr_scale: float,
    steps: int,
    weight_decay: bool = True,
):
    """SGD at ``lr_scale`` times the recipe's rate, with its momentum and weight decay (unless
    ``weight_decay`` is False), the rate annealed to 0 over ``steps`` by a cosine."""
    decay = recipe.weight_decay if weight_decay else 0.0
    optimizer = torch.optim.SGD(
        net.parameters(),
        lr=lr_scale * recipe.lr,
        momentum=recipe.momentum,
        weight_decay=decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    return optimizer, scheduler


def take(make_pass: Callable[[], Iterable], steps: int) -> Iterator:
    """The first ``steps`` items of passes made one after another (a fresh pass when one ends)."""
    taken = 0
    while taken < steps:
        before = taken
        for item in make_pass():
            yield item
            taken += 1
            if taken == steps:
                return
        if taken == before:
            return  # an empty pass: nothing more will come


def batches(loader: DataLoader, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over ``loader`` on ``device``, skipping batches of one (BatchNorm needs two)."""
    for inputs, targets in loader:
        if len(targets) > 1:
            yield (
                inputs.to(device, non_blocking=True),
                targets.to(device, non_blocking=True),
            )


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
    slices = zip(forget_inputs.tensor_split(pieces), forget_targets.tensor_split(pieces), strict=True)
    for (inputs, targets), (extra_inputs, extra_targets) in zip(batches(retain_loader, device), slices, strict=True):
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
