"""The fast path's data: the training set resident on the device, augmented there.

Why a module of its own: moving a batch from the host and augmenting it on the CPU is
what a GPU step would otherwise wait on. Here the whole training set goes to the device
once, and an epoch's shuffle, flips and crops are one gather on the device, drawn from
a seeded generator, with no host synchronisation (``starter_kit.fast_training``).
"""

from __future__ import annotations

import torch


def device_resident(
    images: torch.Tensor, labels: torch.Tensor, device: torch.device, bf16: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) copied to ``device`` once; images in bf16 if ``bf16`` (the first
    convolution under autocast would cast them anyway), labels as int64."""
    return images.to(device, torch.bfloat16 if bf16 else torch.float32), labels.to(device, torch.int64)


def shuffle_flip_crop(
    images: torch.Tensor, order: torch.Tensor | None, generator: torch.Generator, pad: int = 4
) -> torch.Tensor:
    """``images[order]``, each flipped horizontally with probability 1/2 and translated by
    up to ``pad`` pixels with zero fill: one gather, no padded copy, no host synchronisation.

    The same distribution as ``starter_kit.training.flip_crop`` (flip, then a random
    ``H x W`` crop of the image zero-padded by ``pad``): output pixel (y, x) is input pixel
    (y + dy - pad, x + dx - pad) of the flipped image, or 0 outside it. Random numbers come
    from ``generator`` on its own device and are moved to the images' device (a small copy
    when they differ). ``order`` None means ``images`` as they are.
    """
    n_all, channels, height, width = images.shape
    n = n_all if order is None else len(order)
    draw = generator.device
    flip = (torch.rand(n, generator=generator, device=draw) < 0.5).to(images.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=draw).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=draw).to(images.device)
    rows = dy.view(n, 1, 1, 1) - pad + torch.arange(height, device=images.device).view(1, 1, height, 1)
    cols = dx.view(n, 1, 1, 1) - pad + torch.arange(width, device=images.device).view(1, 1, 1, width)
    cols = torch.where(flip.view(n, 1, 1, 1), width - 1 - cols, cols)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    source = torch.arange(n, device=images.device) if order is None else order.to(images.device)
    channel = torch.arange(channels, device=images.device).view(1, channels, 1, 1)
    gathered = images[source.view(n, 1, 1, 1), channel, rows.clamp(0, height - 1), cols.clamp(0, width - 1)]
    return gathered * inside.to(images.dtype)
