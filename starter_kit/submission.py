"""The submission contract, shared by the starter notebook and the scorer.

A submission is a notebook whose code cells tagged ``submission`` (or a Python file)
define ``unlearning(net, retain_loader, forget_loader, val_loader) -> nn.Module``.
Each run gets the loaders built here and is seeded here, so a participant who calls
these functions locally sees exactly what the scorer will give their code.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from starter_kit.recipe import Recipe

SUBMISSION_TAG = "submission"
ENTRY_POINT = "unlearning"


def submission_source(path: str | os.PathLike) -> str:
    """The Python source of a submission: a ``.py`` file, or a notebook's tagged code cells."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"submission {path} not found: give a .ipynb notebook or a .py file")
    if path.suffix == ".py":
        return path.read_text()
    if path.suffix != ".ipynb":
        raise ValueError(f"submission {path} is neither a .ipynb notebook nor a .py file")
    try:
        notebook = json.loads(path.read_text())
        cells = notebook["cells"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"submission {path} is not a readable notebook ({error})") from None
    tagged = [
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in cells
        if cell.get("cell_type") == "code" and SUBMISSION_TAG in cell.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        raise ValueError(
            f"no code cell tagged '{SUBMISSION_TAG}' in {path}: add the tag to the cell that defines {ENTRY_POINT}()"
        )
    return "\n\n".join(tagged) + "\n"


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random, as the scorer does before each run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class LoaderSource(Protocol):
    """What ``submission_loaders`` needs of a split: its recipe and its parts' loaders (a ``Split``, or the
    scorer's worker-side parts)."""

    recipe: Recipe

    def loader(
        self, part: str, batch_size: int = ..., shuffle: bool = ..., seed: int | None = ...
    ) -> DataLoader[Any]: ...


def submission_loaders(
    split: LoaderSource, seed: int, batch_size: int | None = None
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """(retain, forget, validation) loaders as a run receives them; never the test set.

    Retain and forget shuffle with generators seeded from ``seed``; validation does not
    shuffle. ``batch_size`` defaults to the recipe's. Each loader carries the split's
    training recipe as ``loader.recipe``, so that a method can size its budget and rate
    as fractions of the challenge's (as ``starter_kit.baselines`` do).
    """
    batch_size = batch_size or split.recipe.batch_size
    retain = split.loader("retain", batch_size, shuffle=True, seed=seed)
    forget = split.loader("forget", batch_size, shuffle=True, seed=seed + 1)
    val = split.loader("val", batch_size, shuffle=False)
    for loader in (retain, forget, val):
        loader.recipe = split.recipe
    return retain, forget, val
