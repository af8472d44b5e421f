"""Batches cut from in-memory tensors by indexing, through a real torch DataLoader.

A tutorial DataLoader fetches one example at a time and collates them, which costs more
than the forward pass of a small model. Here the sampler yields whole batches of
indices and the dataset returns the batch with one indexing operation, so participants
still get an ordinary ``torch.utils.data.DataLoader`` (``len``, ``.dataset``,
``for inputs, targets in loader``) at the speed of slicing.
"""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler, TensorDataset


def make_loader(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over (images, labels) yielding ``(inputs, targets)`` batches.

    With ``shuffle`` the order is drawn from a generator seeded with ``seed``, so two
    loaders built with the same seed yield the same batches, epoch after epoch.
    """
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dataset = TensorDataset(images, labels)
    sampler: Sampler[int]
    if shuffle:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        sampler = RandomSampler(dataset, generator=generator)
    else:
        sampler = SequentialSampler(dataset)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)
    # batch_size=None: the dataset already returns whole batches, nothing to collate.
    return DataLoader(dataset, sampler=batches, batch_size=None)
