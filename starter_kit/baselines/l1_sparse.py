"""l1-sparse fine-tuning: fine-tune on retain with an l1 penalty that fades out.

Reference: Jia, Liu, Ram, Yao, Liu, Liu, Sharma and Liu, "Model Sparsity Can Simplify
Machine Unlearning", NeurIPS 2023 (the "l1-sparse MU" method). Adding
``gamma_t * ||w||_1`` to the retain loss pulls the weights towards a sparse model,
which the paper finds loses the forget set's traces more readily, while fine-tuning
keeps accuracy; ``gamma_t`` decays linearly from ``gamma`` to 0 over the run (the
paper's schedule), so the last steps are plain fine-tuning. The penalty enters as
its subgradient ``gamma_t * sign(w)``, added to every trainable parameter's gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from starter_kit.baselines._common import (
    batches,
    budget_steps,
    check_inputs,
    sgd_cosine,
    take,
    training_recipe,
)
from starter_kit.recipe import Recipe


def l1_sparse(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 1.0,
    gamma: float = 5e-4,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Fine-tune on retain with ``+ gamma_t * ||w||_1``, ``gamma_t`` linear from ``gamma`` to 0; in place.

    Paper: Jia, Liu, Ram, Yao, Liu, Liu, Sharma and Liu, "Model Sparsity Can Simplify
    Machine Unlearning", NeurIPS 2023.
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    steps = budget_steps(recipe, retain_loader, epoch_share)
    if gamma < 0:
        raise ValueError(f"gamma (the l1 weight) must be >= 0, got {gamma}")
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, steps)
    parameters = [p for p in net.parameters() if p.requires_grad]
    criterion = nn.CrossEntropyLoss()
    net.train()
    for step, (inputs, targets) in enumerate(take(lambda: batches(retain_loader, device), steps)):
        loss = criterion(net(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        strength = gamma * (1 - step / steps)
        with torch.no_grad():
            for parameter in parameters:
                if parameter.grad is not None:
                    parameter.grad.add_(parameter.sign(), alpha=strength)
        optimizer.step()
        scheduler.step()
    return net.eval()
