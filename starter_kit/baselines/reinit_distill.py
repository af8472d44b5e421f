"""Re-initialise randomly chosen layers, then distil the original back in on noisy retain images.

An idea several top entries of the NeurIPS 2023 Machine Unlearning Challenge shared
(Triantafillou et al., "Are we making progress in unlearning? Findings from the first
NeurIPS unlearning competition", 2024): reset part of the network so that what it
memorised of the forget set is gone, then rebuild it from the retain set with the
original model as a teacher. Two entries describe it in their own write-ups:
- Ahn, Lee, Bae, Yim and Jung (Kyungpook National University and LG Energy Solution,
  8th place), "stochastic re-initialisation": a random subset of layers, drawn anew in
  each run (random beat Fisher-based selection, since the metric compares the spread
  of many runs with that of retrained models), re-initialised; then training on retain
  images with Gaussian noise added, with a "knowledge preserving" loss, the mean
  squared error between the model's logits and the original's. They repeat
  forget-remember cycles 3-4 times; one cycle is what fits the kit's limit on digits.
- The Euclid team (Democritus University of Thrace and Athena Research Center, 6th
  place): weight resetting followed by distillation from the original.

Here each convolution and linear layer is re-initialised with probability
``reinit_prob`` (its ``reset_parameters``), the classifier always when ``reset_head``;
BatchNorm layers stay. Then ``epoch_share`` of the recipe's epochs over retain minimise
``CE + distill * MSE(logits, original logits)`` on images with N(0, ``input_noise``^2)
noise added (digits' pixels are standardised, so the noise is in units of one pixel
standard deviation). The forget set is never read.

The default ``reinit_prob`` is 0, so only the classifier is reset: on the small digits
network, one epoch did not repair a reset convolution. On a ResNet-18 trained for longer,
with more time to repair, the write-ups re-initialise more; raise ``reinit_prob`` (and ``epoch_share``).
"""

from __future__ import annotations

import torch
from torch import nn

from starter_kit.baselines._common import (
    batches,
    budget_steps,
    check_inputs,
    frozen_copy,
    sgd_cosine,
    take,
    training_recipe,
)
from starter_kit.recipe import Recipe


def reinit_distill(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 1,
    reinit_prob: float = 0.0,
    reset_head: bool = True,
    distill: float = 0.1,
    input_noise: float = 0.1,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Re-initialise random layers (see the module), then distil the original on noisy retain; in place, eval mode.

    Sources: the NeurIPS 2023 challenge entries of Ahn et al. (8th place) and of the
    Euclid team (6th place), described in the module.
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    steps = budget_steps(recipe, retain_loader, epoch_share)
    if not 0.0 <= reinit_prob <= 1.0:
        raise ValueError(f"reinit_prob must be a probability in [0, 1], got {reinit_prob}")
    if distill < 0 or input_noise < 0:
        raise ValueError(f"need distill >= 0 and input_noise >= 0, got {distill} and {input_noise}")
    teacher = frozen_copy(net)
    reinitialise_layers(net, reinit_prob, reset_head)
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, steps)
    criterion = nn.CrossEntropyLoss()
    net.train()
    for inputs, targets in take(lambda: batches(retain_loader, device), steps):
        inputs = inputs + input_noise * torch.randn_like(inputs)
        logits = net(inputs)
        with torch.no_grad():
            teacher_logits = teacher(inputs)
        loss = criterion(logits, targets) + distill * nn.functional.mse_loss(logits, teacher_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return net.eval()


@torch.no_grad()
def reinitialise_layers(net: nn.Module, probability: float, reset_head: bool = True) -> list[str]:
    """Reset each convolution and linear layer of ``net`` with ``probability``; the last linear too if ``reset_head``.

    Draws from torch's global generator (seeded by the scorer). Returns the names of the
    layers reset, in the order of ``net.named_modules()``.
    """
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    layers = [(name, module) for name, module in net.named_modules() if isinstance(module, kinds)]
    head = next((name for name, m in reversed(layers) if isinstance(m, nn.Linear)), None) if reset_head else None
    draws = torch.rand(len(layers)).tolist()
    reset = []
    for (name, module), draw in zip(layers, draws, strict=True):
        if draw < probability or name == head:
            module.reset_parameters()
            reset.append(name)
    return reset
