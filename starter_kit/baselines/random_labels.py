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

from starter_kit.baselines._common import check_inputs, sgd_cosine, with_forget_slices, wrong_labels


def random_labels(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    epochs: int = 1,
    lr: float = 0.02,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
) -> nn.Module:
    """Epochs over retain + relabelled forget examples, mixed evenly; in place, eval mode.

    Each epoch, the forget set is spread in equal slices over the retain batches, so
    every step sees both in their natural proportion (a whole batch of wrong labels
    would wreck the model in one step). Each forget example gets a label drawn
    uniformly from the other classes, from torch's global generator (which the scorer
    seeds before each run).
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epochs, lr)
    optimizer, scheduler = sgd_cosine(net, lr, epochs * len(retain_loader), momentum, weight_decay)
    criterion = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        for inputs, targets, forget_inputs, forget_targets in with_forget_slices(retain_loader, forget_loader, device):
            logits = net(torch.cat([inputs, forget_inputs]))
            loss = criterion(logits, torch.cat([targets, wrong_labels(forget_targets, logits.shape[1])]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return net.eval()
