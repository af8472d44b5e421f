"""Local evaluation helpers: logits and accuracy of a model over a loader."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [n, classes] and targets [n] of ``model`` (in eval mode) over ``loader``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, targets = [], []
    for inputs, batch_targets in loader:
        logits.append(model(inputs.to(device)).float().cpu())
        targets.append(batch_targets)
    model.train(was_training)
    if not logits:
        raise ValueError("the loader is empty: nothing to evaluate")
    return torch.cat(logits), torch.cat(targets)


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    """Share of examples in ``loader`` whose top logit is the true label."""
    logits, targets = predict(model, loader)
    return (logits.argmax(1) == targets).float().mean().item()
