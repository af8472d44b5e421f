"""SSD: selective synaptic dampening, no training at all.

Reference: Foster, Schoepf and Brintrup, "Fast Machine Unlearning Without Retraining
Through Selective Synaptic Dampening", AAAI 2024. The importance of each weight to a
set of examples is the diagonal of the Fisher information, estimated as the mean over
batches of the squared gradient of the loss. A weight far more important to the forget
set than to the data the model should keep (forget importance above ``alpha`` times
its retain importance) is multiplied by ``min(1, lam * retain / forget importance)``:
dampened in proportion to how specialised to the forget set it is, never grown. The
other weights are left exactly as they are.

Where an importance is zero the paper's rule is not machine-independent: a weight the
retain set does not move has a retain importance of exactly 0 on one CPU and 1e-40 on
another (squared gradients of well-fit examples underflow differently), and
``forget > alpha * 0`` selects it and multiplies it by ``lam * 0 / forget = 0`` for
any ``alpha``. So both importances are floored: any importance below ``IMPORTANCE_FLOOR`` (1e-6) times
the model's mean retain importance counts as that floor. A weight is then selected
only where its forget importance exceeds ``alpha`` times the floor as well, and
dampened by at most ``lam * floor / forget``, never zeroed by an underflow; with
``alpha`` of 1 or more a weight below the floor on both sides is never selected. A
model whose retain importance is zero everywhere has no scale to compare with and is
left unchanged.

The paper measures the "keep" importance on the whole training set; only retain and
forget are given here, so it is measured on retain (the forget set is a tenth of the
training set, and its own importance is measured apart). Importances are taken in eval
mode, with BatchNorm's running statistics, which SSD leaves alone. Cost: one forward
and backward pass over retain and forget, with no update: about one epoch.
"""

from __future__ import annotations

import torch
from torch import nn

from starter_kit.baselines._common import IMPORTANCE_FLOOR, batches, check_inputs


def ssd(
    net: nn.Module,
    retain_loader,
    forget_loader,
    val_loader,
    alpha: float = 10.0,
    lam: float = 1.0,
) -> nn.Module:
    """Dampen the weights specialised to the forget set (see the module); in place, eval mode.

    Paper: Foster, Schoepf and Brintrup, "Fast Machine Unlearning Without Retraining
    Through Selective Synaptic Dampening", AAAI 2024; ``alpha`` (their selection
    weighting) and ``lam`` (their dampening constant) default to the paper's values.
    """
    check_inputs(net, retain_loader, forget_loader, val_loader)
    if not alpha > 0 or not lam > 0:
        raise ValueError(f"alpha and lam must be positive, got alpha={alpha}, lam={lam}")
    retain_importance = fisher_diagonal(net, retain_loader)
    forget_importance = fisher_diagonal(net, forget_loader)
    factors = dampening_factors(retain_importance, forget_importance, alpha, lam)
    with torch.no_grad():
        parameters = [p for p in net.parameters() if p.requires_grad]
        for parameter, factor in zip(parameters, factors, strict=True):
            parameter.mul_(factor)
    return net.eval()


def dampening_factors(
    retain_importance: list[torch.Tensor],
    forget_importance: list[torch.Tensor],
    alpha: float,
    lam: float,
) -> list[torch.Tensor]:
    """Per weight: ``min(1, lam * keep / forget)`` where ``forget > alpha * keep``, else 1.

    Both importances are first raised to ``IMPORTANCE_FLOOR`` times the mean retain importance over
    the whole model (see the module); all ones where that mean is 0.
    """
    count = sum(keep.numel() for keep in retain_importance)
    mean = sum(float(keep.double().sum()) for keep in retain_importance) / max(1, count)
    if not mean > 0:
        return [torch.ones_like(keep) for keep in retain_importance]
    floor = IMPORTANCE_FLOOR * mean
    factors = []
    for keep, forget in zip(retain_importance, forget_importance, strict=True):
        keep, forget = keep.clamp_min(floor), forget.clamp_min(floor)
        factor = (lam * keep / forget).clamp(max=1.0)
        factors.append(torch.where(forget > alpha * keep, factor, torch.ones_like(factor)))
    return factors


def fisher_diagonal(net: nn.Module, loader) -> list[torch.Tensor]:
    """Mean over ``loader``'s batches of the squared gradient of the batch's mean loss, per trainable parameter.

    Taken in eval mode; ``net``'s weights and BatchNorm statistics are unchanged.
    """
    device = next(net.parameters()).device
    parameters = [p for p in net.parameters() if p.requires_grad]
    importance = [torch.zeros_like(p) for p in parameters]
    criterion = nn.CrossEntropyLoss()
    net.eval()
    count = 0
    for inputs, targets in batches(loader, device):
        net.zero_grad(set_to_none=True)
        criterion(net(inputs), targets).backward()
        for total, parameter in zip(importance, parameters, strict=True):
            if parameter.grad is not None:
                total.add_(parameter.grad.square())
        count += 1
    net.zero_grad(set_to_none=True)
    return [total / max(1, count) for total in importance]
