"""Read a split directory written by ``python -m data_prep build``.

Layout (one documented place; ``data_prep`` writes it, everything else only reads it)::

    SPLIT_DIR/
      manifest.json        dataset, seeds, sizes, per-class counts, sha256s, recipe, kit version
      indices/{train,retain,forget,val,test}.npy   sorted int64 indices into the dataset
      original/model.pt    state_dict of the original model (trained on train = retain + forget)
      original/metrics.json  its accuracies, training time and checkpoint sha256
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from starter_kit.data import Dataset, load_dataset
from starter_kit.loaders import make_loader
from starter_kit.models import build_model
from starter_kit.recipe import Recipe

MANIFEST = "manifest.json"
INDEX_DIR = "indices"
ORIGINAL_MODEL = "original/model.pt"
ORIGINAL_METRICS = "original/metrics.json"
PARTS = ("train", "retain", "forget", "val", "test")


@dataclass
class Split:
    """A built split: the dataset in memory, its index arrays, recipe and original model."""

    directory: Path
    manifest: dict
    dataset: Dataset
    indices: dict[str, np.ndarray]
    recipe: Recipe

    def images(self, part: str) -> torch.Tensor:
        return self.dataset.images[self._index(part)]

    def labels(self, part: str) -> torch.Tensor:
        return self.dataset.labels[self._index(part)]

    def loader(self, part: str, batch_size: int = 64, shuffle: bool = False, seed: int | None = None) -> DataLoader:
        """A DataLoader of ``(inputs, targets)`` over one part (``retain``, ``forget``...)."""
        return make_loader(self.images(part), self.labels(part), batch_size, shuffle=shuffle, seed=seed)

    def new_model(self) -> nn.Module:
        """An untrained model of the recipe's architecture for this dataset."""
        return build_model(self.recipe.model, self.dataset.image_shape[0], self.dataset.num_classes)

    def original_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The pretrained original model, in eval mode."""
        model = self.new_model()
        state = torch.load(self.directory / ORIGINAL_MODEL, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.to(device).eval()

    def original_metrics(self) -> dict:
        return json.loads((self.directory / ORIGINAL_METRICS).read_text())

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256((self.directory / MANIFEST).read_bytes()).hexdigest()

    def _index(self, part: str) -> torch.Tensor:
        if part not in self.indices:
            raise ValueError(f"unknown part {part!r}: choose one of {', '.join(PARTS)}")
        return torch.from_numpy(self.indices[part])


def load_split(directory: str | os.PathLike, data_root: str | os.PathLike | None = None) -> Split:
    """Load a split directory, checking the data and every index array against the manifest."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise FileNotFoundError(
            f"{directory} is not a split directory (no {MANIFEST}): build one with "
            f"'python -m data_prep build --dataset digits --split public --out {directory}'"
        )
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        dataset_info = manifest["dataset"]
        recipe = Recipe.from_dict(manifest["recipe"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{directory / MANIFEST} is damaged ({error}): rebuild the split with --force") from None
    dataset = load_dataset(dataset_info["name"], data_root)
    if dataset.sha256 != dataset_info["sha256"]:
        raise ValueError(
            f"the {dataset.name} data here differ from the data {directory} was built from "
            f"(sha256 {dataset.sha256[:12]}... vs {dataset_info['sha256'][:12]}...): use the same copy or rebuild"
        )
    indices = {}
    for part in PARTS:
        path = directory / manifest["parts"][part]["file"]
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the split directory is incomplete, rebuild it with --force")
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != manifest["parts"][part]["sha256"]:
            raise ValueError(f"{path} does not match its sha256 in the manifest: rebuild the split with --force")
        indices[part] = np.load(path)
    return Split(directory=directory, manifest=manifest, dataset=dataset, indices=indices, recipe=recipe)
