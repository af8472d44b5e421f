"""NegGrad+: gradient ascent on the forget set, balanced by descent on the retain set.

Reference: Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded
Machine Unlearning", NeurIPS 2023 (the SCRUB paper), which introduced NegGrad+ as a
strong baseline: minimise ``beta * L(retain) - (1 - beta) * L(forget)``. Plain NegGrad
(ascent alone) destroys the model within a few steps; the retain term keeps it useful
while the forget loss is pushed up towards that of unseen examples.

A known weakness, plain on digits: the ascent gradient of the cross-entropy is about
the loss itself, so on examples the model fits with losses near 1e-4 it nearly
vanishes, and within the time limit NegGrad+ barely moves the forget set. It needs
more steps, a larger rate or a smaller ``beta``, at the risk of sudden collapse.
"""

from __future__ import annotations

import torch
from torch import nn

from starter_kit.baselines._common import (
    budget_steps,
    check_inputs,
    sgd_cosine,
    take,
    training_recipe,
    with_forget_slices,
)
from starter_kit.recipe import Recipe


def neggrad_plus(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 1.0,
    beta: float = 0.8,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Passes over retain, each batch joined by its slice of the forget set, for ``epoch_share`` of the
    recipe's epochs; in place."""
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    steps = budget_steps(recipe, retain_loader, epoch_share)
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta}")
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, steps)
    criterion = nn.CrossEntropyLoss()
    passes = lambda: with_forget_slices(retain_loader, forget_loader, device)  # noqa: E731
    net.train()
    for inputs, targets, forget_inputs, forget_targets in take(passes, steps):
        logits = net(torch.cat([inputs, forget_inputs]))  # one pass: BatchNorm sees both
        retain_loss = criterion(logits[: len(targets)], targets)
        forget_loss = criterion(logits[len(targets) :], forget_targets) if len(forget_targets) else 0.0
        loss = beta * retain_loss - (1 - beta) * forget_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return net.eval()
