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

from starter_kit.baselines._common import check_inputs, sgd_cosine, with_forget_slices


def neggrad_plus(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    epochs: int = 1,
    lr: float = 0.1,
    beta: float = 0.8,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
) -> nn.Module:
    """Each epoch, one pass over retain, each batch joined by its slice of the forget set; in place."""
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epochs, lr)
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta}")
    optimizer, scheduler = sgd_cosine(net, lr, epochs * len(retain_loader), momentum, weight_decay)
    criterion = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        for inputs, targets, forget_inputs, forget_targets in with_forget_slices(retain_loader, forget_loader, device):
            logits = net(torch.cat([inputs, forget_inputs]))  # one pass: BatchNorm sees both
            retain_loss = criterion(logits[: len(targets)], targets)
            forget_loss = criterion(logits[len(targets) :], forget_targets) if len(forget_targets) else 0.0
            loss = beta * retain_loss - (1 - beta) * forget_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return net.eval()
