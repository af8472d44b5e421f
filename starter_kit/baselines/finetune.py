"""Fine-tune on the retain set: the NeurIPS 2023 starting kit's baseline.

Reference: the competition's starting kit (unlearning-CIFAR10.ipynb, "Unlearning by
fine-tuning"): SGD with lr 0.1, momentum 0.9, weight decay 5e-4 and a cosine schedule,
5 epochs over the retain set, the forget and validation sets unused. Training on the
retain set alone lets the model drift away from what it memorised of the forget set
("catastrophic forgetting" put to use). The default here is 1 epoch: on digits that is
about 7% of retraining (16 epochs), well inside the kit's time limit of 20%.
"""

from __future__ import annotations

from torch import nn

from starter_kit.baselines._common import batches, check_inputs, sgd_cosine


def finetune(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    epochs: int = 1,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
) -> nn.Module:
    """Train ``net`` in place on the retain set for ``epochs``; return it in eval mode."""
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epochs, lr)
    optimizer, scheduler = sgd_cosine(net, lr, epochs * len(retain_loader), momentum, weight_decay)
    criterion = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        for inputs, targets in batches(retain_loader, device):
            loss = criterion(net(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return net.eval()
