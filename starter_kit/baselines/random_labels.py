"""Random relabelling: fine-tune on the retain set plus the forget set with wrong labels.

Reference: Graves, Nagisetty and Ganesh, "Amnesiac Machine Learning", AAAI 2021
(relabel the forget examples at random and train on them), used as the "random
labelling" baseline in later benchmarks such as SalUn (Fan et al., ICLR 2024). The
wrong labels erase what the model memorised about each forget example, while the
retain examples around them keep its accuracy.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from starter_kit.baselines._common import (
    budget_steps,
    check_inputs,
    sgd_cosine,
    take,
    training_recipe,
    with_forget_slices,
    wrong_labels,
)
from starter_kit.baselines._registry import register
from starter_kit.recipe import Recipe


@register("random_labels", "forget relabelled at random, with retain", "Graves et al., AAAI 2021")
def random_labels(
    net: nn.Module,
    retain_loader: DataLoader,
    forget_loader: DataLoader,
    val_loader: DataLoader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 0.2,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Epochs over retain + relabelled forget examples, mixed evenly; in place, eval mode.

    Each epoch, the forget set is spread in equal slices over the retain batches, so
    every step sees both in their natural proportion (a whole batch of wrong labels
    would wreck the model in one step). Each forget example gets a label drawn
    uniformly from the other classes, from torch's global generator (which the scorer
    seeds before each run).
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    steps = budget_steps(recipe, retain_loader, epoch_share)
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, steps)
    criterion = nn.CrossEntropyLoss()
    passes = lambda: with_forget_slices(retain_loader, forget_loader, device)  # noqa: E731
    net.train()
    for inputs, targets, forget_inputs, forget_targets in take(passes, steps):
        logits = net(torch.cat([inputs, forget_inputs]))
        loss = criterion(logits, torch.cat([targets, wrong_labels(forget_targets, logits.shape[1])]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return net.eval()
