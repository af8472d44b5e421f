"""Zero a random share of the weights, then fine-tune on retain.

Another form of the "damage, then repair on retain" pattern that top entries of the
NeurIPS 2023 Machine Unlearning Challenge shared (Triantafillou et al., "Are we making
progress in unlearning? Findings from the first NeurIPS unlearning competition",
2024). This one follows the entry of Xinkuan Song (github.com/songxinkuan/
Machine-unlearning-random-mask; Kaggle public score 0.0795, private 0.0937): mask a
random part of the weights, BatchNorm excluded, which moves the model out of the
region its training (forget set included) settled in while keeping much of its
feature extraction, then fine-tune on retain back into a region that the retain set
alone explains. Unlike pruning, the zeroed weights are free to grow back.

Here each entry of every weight matrix and convolution kernel is zeroed with
probability ``mask_prob`` (biases and BatchNorm terms are kept), a fresh draw in each
run; the repair is ``finetune`` (a sixteenth of the recipe's epochs at its rate).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from starter_kit.baselines._common import check_inputs, training_recipe
from starter_kit.baselines._registry import register
from starter_kit.baselines.finetune import finetune
from starter_kit.recipe import Recipe


@register("random_mask", "zero random weights, fine-tune", "NeurIPS 2023 challenge entry")
def random_mask(
    net: nn.Module,
    retain_loader: DataLoader,
    forget_loader: DataLoader,
    val_loader: DataLoader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 1.0,
    mask_prob: float = 0.1,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Zero each weight with ``mask_prob`` (see ``mask_weights``), then fine-tune on retain; in place, eval mode.

    Sources: the NeurIPS 2023 challenge entry of Xinkuan Song and the competition report
    (Triantafillou et al., 2024); see the module.
    """
    check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    if not 0.0 <= mask_prob < 1.0:
        raise ValueError(f"mask_prob must be a probability in [0, 1), got {mask_prob}")
    mask_weights(net, mask_prob)
    return finetune(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale, recipe)


@torch.no_grad()
def mask_weights(net: nn.Module, probability: float) -> None:
    """Zero each entry of every parameter with two or more dimensions with ``probability``.

    Biases and BatchNorm's affine terms (one dimension) are kept. Draws from torch's
    global generator (seeded by the scorer).
    """
    for parameter in net.parameters():
        if parameter.ndim >= 2:
            parameter.mul_(torch.rand_like(parameter) >= probability)
