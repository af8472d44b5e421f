"""SCRUB: a student moves away from its teacher on the forget set and stays close on retain.

Reference: Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded
Machine Unlearning", NeurIPS 2023. The teacher is a frozen copy of the original model;
the student (the model itself) alternates "max steps", which push its outputs on forget
examples away from the teacher's (gradient ascent on their KL divergence), and "min
steps", which keep it close to the teacher on retain examples (KL) while fitting their
labels (cross-entropy). The max steps come only in the first ``max_passes`` passes, so
that the last min steps repair what they broke (the paper's "min-max" schedule).

The paper's CIFAR-10 settings run several epochs at a small rate; one epoch at a
larger rate is what fits the kit's time limit on digits.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from starter_kit.baselines._common import (
    batches,
    budget_steps,
    check_inputs,
    distillation_kl,
    frozen_copy,
    sgd_cosine,
    take,
    training_recipe,
)
from starter_kit.baselines._registry import register
from starter_kit.recipe import Recipe


@register("scrub", "student-teacher min-max", "Kurmanji et al., NeurIPS 2023")
def scrub(
    net: nn.Module,
    retain_loader: DataLoader,
    forget_loader: DataLoader,
    val_loader: DataLoader,
    epoch_share: float = 1 / 16,
    max_passes: int = 1,
    lr_scale: float = 0.5,
    temperature: float = 4.0,
    alpha: float = 1.0,
    gamma: float = 1.0,
    recipe: Recipe | None = None,
) -> nn.Module:
    """SCRUB: min steps over retain for ``epoch_share`` of the recipe's epochs, the first ``max_passes``
    passes over retain each preceded by a max pass over forget.

    Min steps minimise ``gamma * CE + alpha * KL(teacher || student)`` on retain; max
    steps maximise ``KL(teacher || student)`` on forget, both KLs at ``temperature``.
    In place; returns ``net`` in eval mode. Paper: Kurmanji, Triantafillou, Hayes and
    Triantafillou, "Towards Unbounded Machine Unlearning", NeurIPS 2023.
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    min_steps = budget_steps(recipe, retain_loader, epoch_share)
    min_passes = -(-min_steps // len(retain_loader))
    if not 0 <= max_passes <= min_passes:
        raise ValueError(f"max_passes must be in [0, {min_passes}] (the passes over retain), got {max_passes}")
    if not temperature > 0 or alpha < 0 or gamma < 0:
        raise ValueError(f"need temperature > 0, alpha >= 0 and gamma >= 0, got {temperature}, {alpha} and {gamma}")
    teacher = frozen_copy(net)
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, min_steps + max_passes * len(forget_loader))
    criterion = nn.CrossEntropyLoss()
    net.train()

    def step(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

    for done in range(0, min_steps, len(retain_loader)):
        if done // len(retain_loader) < max_passes:
            for inputs, _ in batches(forget_loader, device):
                step(-distillation_kl(net(inputs), teacher(inputs), temperature))
        for inputs, targets in take(
            lambda: batches(retain_loader, device),
            min(len(retain_loader), min_steps - done),
        ):
            logits = net(inputs)
            step(gamma * criterion(logits, targets) + alpha * distillation_kl(logits, teacher(inputs), temperature))
    return net.eval()
