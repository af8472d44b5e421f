"""What a task needs of a split, wherever it runs: the recipe, the architecture, some parts as numpy arrays.

Reference models train on it (``scoring.references.build``), chunks of a submission's runs are
evaluated on it (``scoring.ingestion.chunks``), and Codabench's scoring program rebuilds one
from its reference data (``scoring.hosting.codabench_data``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from starter_kit.loaders import make_loader
from starter_kit.models import build_model
from starter_kit.recipe import Recipe
from starter_kit.splits import Split


@dataclass(frozen=True)
class SplitArrays:
    """What a task needs of a split, wherever it runs: the recipe, the architecture, some parts as arrays.

    Shared once per backend: Ray's object store maps numpy arrays into every worker of
    a node without a copy each (a whole CIFAR-10 split is 0.7 GB). Stands in for the
    split with ``Evaluator`` and ``train_model`` (``images``, ``labels``, ``loader``,
    ``new_model``); the tensors it gives are read-only views.
    """

    recipe: Recipe
    in_channels: int
    num_classes: int
    parts: dict[
        str, tuple[np.ndarray, np.ndarray]
    ]  # part name -> (images [n, C, H, W] float32, labels [n] int64), numpy

    @classmethod
    def from_split(cls, split: Split, parts: tuple[str, ...] = ("retain", "forget", "test")) -> SplitArrays:
        """The recipe, architecture and ``parts`` of a loaded split, as numpy arrays."""
        return cls(
            recipe=split.recipe,
            in_channels=int(split.dataset.image_shape[0]),
            num_classes=int(split.dataset.num_classes),
            parts={part: (split.images(part).numpy(), split.labels(part).numpy()) for part in parts},
        )

    def images(self, part: str) -> torch.Tensor:
        return self._tensor(self.parts[part][0])

    def labels(self, part: str) -> torch.Tensor:
        return self._tensor(self.parts[part][1])

    def loader(
        self, part: str, batch_size: int = 64, shuffle: bool = False, seed: int | None = None
    ) -> DataLoader[tuple[torch.Tensor, ...]]:
        return make_loader(self.images(part), self.labels(part), batch_size, shuffle=shuffle, seed=seed)

    def new_model(self) -> nn.Module:
        return build_model(self.recipe.model, self.in_channels, self.num_classes)

    @staticmethod
    def _tensor(array: np.ndarray) -> torch.Tensor:
        with warnings.catch_warnings():  # a read-only array from Ray's object store: nothing here writes to it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(array)
