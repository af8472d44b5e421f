"""Test submission: fine-tune on the retain set for one epoch (the simplest baseline)."""

import torch
from torch import nn

EPOCHS = 1


def unlearning(net, retain_loader, forget_loader, val_loader):
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * len(retain_loader))
    criterion = nn.CrossEntropyLoss()
    net.train()
    for _ in range(EPOCHS):
        for inputs, targets in retain_loader:
            optimizer.zero_grad()
            criterion(net(inputs), targets).backward()
            optimizer.step()
            scheduler.step()
    return net.eval()
