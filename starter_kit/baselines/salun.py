"""SalUn: random labels, but only the weights most salient to the forget set may move.

Reference: Fan, Liu, Zhang, Wei, Wong and Liu, "SalUn: Empowering Machine Unlearning
via Gradient-based Weight Saliency in Both Image Classification and Generation",
ICLR 2024. The saliency of a weight is the magnitude of the forget loss's gradient
with respect to it; the mask keeps the ``saliency`` share of weights with the largest
saliency, one threshold over the whole network (a quantile of all magnitudes). Then
random-label training on forget plus retain (as ``random_labels``) updates only the
masked weights, leaving the rest of the network, and what it knows, as it was.

Weight decay goes through the mask too (the paper's code lets it shrink masked-out
weights; here they stay exactly as they were, so the mask means what it says).
"""

from __future__ import annotations

import torch
from torch import nn

from starter_kit.baselines._common import (
    IMPORTANCE_FLOOR,
    batches,
    budget_steps,
    check_inputs,
    sgd_cosine,
    take,
    training_recipe,
    with_forget_slices,
    wrong_labels,
)
from starter_kit.recipe import Recipe


def salun(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 0.2,
    saliency: float = 0.5,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Mask the ``saliency`` share of most salient weights, then random-label training through the mask; in place.

    Paper: Fan, Liu, Zhang, Wei, Wong and Liu, "SalUn: Empowering Machine Unlearning via
    Gradient-based Weight Saliency in Both Image Classification and Generation", ICLR 2024.
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    steps = budget_steps(recipe, retain_loader, epoch_share)
    if not 0.0 < saliency <= 1.0:
        raise ValueError(f"saliency must be a share of the weights in (0, 1], got {saliency}")
    masks = saliency_masks(net, forget_loader, saliency)
    parameters = [p for p in net.parameters() if p.requires_grad]
    # Weight decay is added to the gradient by hand, so that the mask applies to it too.
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, steps, weight_decay=False)
    criterion = nn.CrossEntropyLoss()
    passes = lambda: with_forget_slices(retain_loader, forget_loader, device)  # noqa: E731
    net.train()
    for inputs, targets, forget_inputs, forget_targets in take(passes, steps):
        logits = net(torch.cat([inputs, forget_inputs]))
        loss = criterion(logits, torch.cat([targets, wrong_labels(forget_targets, logits.shape[1])]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for parameter, mask in zip(parameters, masks, strict=True):
                if parameter.grad is not None:
                    parameter.grad.add_(parameter, alpha=recipe.weight_decay).mul_(mask)
        optimizer.step()
        scheduler.step()
    return net.eval()


def saliency_masks(net: nn.Module, forget_loader, saliency: float) -> list[torch.Tensor]:
    """One 0/1 mask per trainable parameter: 1 for the ``saliency`` share of largest |d forget loss / d w|.

    Only weights whose magnitude exceeds ``IMPORTANCE_FLOOR`` times the mean magnitude can be
    salient, so a share larger than the measurably salient weights' masks fewer.

    The forget loss is the cross-entropy summed over the forget set, its gradient taken
    in eval mode (BatchNorm's running statistics are left alone).
    """
    device = next(net.parameters()).device
    parameters = [p for p in net.parameters() if p.requires_grad]
    was_training = net.training
    net.eval()
    net.zero_grad(set_to_none=True)
    criterion = nn.CrossEntropyLoss(reduction="sum")
    for inputs, targets in batches(forget_loader, device):
        criterion(net(inputs), targets).backward()
    gradients = [p.grad.abs() if p.grad is not None else torch.zeros_like(p) for p in parameters]
    net.zero_grad(set_to_none=True)
    net.train(was_training)
    magnitudes = torch.cat([g.flatten() for g in gradients])
    # The k-th largest magnitude is the threshold; ties at it are kept (so at least k weights move).
    k = max(1, round(saliency * magnitudes.numel()))
    threshold = torch.topk(magnitudes, k, sorted=False).values.min()
    # Magnitudes at or below the floor are not salient, whatever the share: which weights
    # have an exactly zero gradient (or an underflowing one) differs from CPU to CPU.
    floor = IMPORTANCE_FLOOR * float(magnitudes.double().mean())
    return [((g >= threshold) & (g > floor)).to(g.dtype) for g in gradients]
