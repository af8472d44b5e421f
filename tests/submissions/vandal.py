"""Test submission: wrecks the model it was given in place, and records what it received.

Every run must get a fresh copy of the original model: if a run saw the damage done
by the previous one, the first weights it reports would not be the original's.
"""

import torch

seen: list[object] = []


def unlearning(net, retain_loader, forget_loader, val_loader):
    seen.append(float(net.fc.weight.detach().abs().sum()))
    if len(seen) > 1 and seen[-1] != seen[0]:
        raise RuntimeError(f"run {len(seen) - 1} got a model another run had modified")
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.mul_(0.0).add_(1.0)
    return net
