"""The ResNet family, by name: one definition each, imported by data_prep and scoring.

- ``resnet_digits``: basic residual blocks sized for 1x8x8 digits (3x3 stem, no
  max-pool, widths 16-32-64); trains in seconds on a laptop CPU.  Its block is written
  here, not taken from torchvision: importing torchvision costs every process about
  1.5 s of CPU (it loads torch's compiler), which each sandboxed worker and reference
  job would pay for nothing on digits.
- ``resnet18_cifar``: torchvision's ResNet-18 with the usual CIFAR stem (3x3 stride-1
  first convolution, no max-pool).
- ``resnet18``: torchvision's ResNet-18 unchanged, as the NeurIPS 2023 starting kit used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a shortcut: torchvision's ``BasicBlock``,
    the same layers created in the same order (same names, same weights from a seed)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SmallResNet(nn.Module):
    """A ResNet for tiny images: 3x3 stem, one basic block per stage, global pooling."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        stages = []
        inplanes = widths[0]
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )
            stages.append(BasicBlock(inplanes, planes, stride=stride, downsample=downsample))
            inplanes = planes
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.avgpool(self.layers(x))
        return self.fc(torch.flatten(x, 1))


def _resnet_digits(in_channels: int, num_classes: int) -> nn.Module:
    return SmallResNet(in_channels, num_classes)


def _resnet18_cifar(in_channels: int, num_classes: int) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def _resnet18(in_channels: int, num_classes: int) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


MODELS: dict[str, Callable[[int, int], nn.Module]] = {
    "resnet_digits": _resnet_digits,
    "resnet18_cifar": _resnet18_cifar,
    "resnet18": _resnet18,
}


def build_model(name: str, in_channels: int, num_classes: int) -> nn.Module:
    """A freshly initialised model of the named architecture (seed torch first)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name](in_channels, num_classes)
