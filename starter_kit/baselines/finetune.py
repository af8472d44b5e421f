"""Fine-tune on the retain set: the NeurIPS 2023 starting kit's baseline.

Reference: the competition's starting kit (unlearning-CIFAR10.ipynb, "Unlearning by
fine-tuning"): SGD with lr 0.1, momentum 0.9, weight decay 5e-4 and a cosine schedule,
5 epochs over the retain set, the forget and validation sets unused. Training on the
retain set alone lets the model drift away from what it memorised of the forget set
("catastrophic forgetting" put to use). The default here is a sixteenth of the recipe's
epochs (one epoch on digits, two and a half on CIFAR-10) at the recipe's rate: about 7%
of retraining, well inside the kit's time limit of 20%.
"""

from __future__ import annotations

from torch import nn
from torch.utils.data import DataLoader

from starter_kit.baselines._common import (
    batches,
    budget_steps,
    check_inputs,
    sgd_cosine,
    take,
    training_recipe,
)
from starter_kit.baselines._registry import register
from starter_kit.recipe import Recipe


@register("finetune", "fine-tune on retain", "NeurIPS 2023 starting kit")
def finetune(
    net: nn.Module,
    retain_loader: DataLoader,
    forget_loader: DataLoader,
    val_loader: DataLoader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 1.0,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Train ``net`` in place on retain for ``epoch_share`` of the recipe's epochs; return it in eval mode.

    ``lr_scale`` times the recipe's rate; ``recipe`` defaults to the loaders' (see ``_common``).
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    steps = budget_steps(recipe, retain_loader, epoch_share)
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, steps)
    criterion = nn.CrossEntropyLoss()
    net.train()
    for inputs, targets in take(lambda: batches(retain_loader, device), steps):
        loss = criterion(net(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return net.eval()
