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
SUBMISSION_BYTES = 64 << 20  # a notebook with its outputs; its code is far less

__all__ = [
    "ENTRY_POINT",
    "SUBMISSION_TAG",
    "LoaderSource",
    "seed_everything",
    "submission_loaders",
    "submission_source",
]


def submission_source(path: str | os.PathLike) -> str:
    """The Python source of a submission: a ``.py`` file, or a notebook's tagged code cells.

    Parameters
    ----------
    path : path-like
        A ``.py`` file, or a ``.ipynb`` notebook whose code cells tagged ``submission``
        (``SUBMISSION_TAG``) are joined in order; no other cell is part of the submission.

    Returns
    -------
    source : str
        What the scorer runs; it must define ``unlearning`` (``ENTRY_POINT``).

    Raises
    ------
    FileNotFoundError, ValueError
        With one line saying what is wrong: no such file, another suffix, a file past
        ``SUBMISSION_BYTES`` (checked before it is read), bad UTF-8, an unreadable notebook
        (JSON or cell structure), no tagged cell.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"submission {path} not found: give a .ipynb notebook or a .py file")
    if path.suffix not in (".py", ".ipynb"):
        raise ValueError(f"submission {path} is neither a .ipynb notebook nor a .py file")
    if path.stat().st_size > SUBMISSION_BYTES:
        raise ValueError(
            f"submission {path} is over {SUBMISSION_BYTES >> 20} MiB: clear the notebook's outputs, or submit code only"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"submission {path} is not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    return text if path.suffix == ".py" else _tagged_cells(text, path)


def _tagged_cells(text: str, path: Path) -> str:
    """The tagged code cells of a notebook's JSON, each a string or a list of strings as nbformat writes."""
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        reason = "no cells" if isinstance(error, (KeyError, TypeError)) else "not JSON"
        raise ValueError(f"submission {path} is not a readable notebook ({reason})") from None
    if not isinstance(cells, list):
        raise ValueError(f"submission {path} is not a readable notebook (its cells are not a list)")
    tagged = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        metadata = cell.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        if cell.get("cell_type") != "code" or not isinstance(tags, list) or SUBMISSION_TAG not in tags:
            continue
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise ValueError(f"submission {path} has a tagged cell whose source is not text")
        tagged.append(source)
    if not tagged:
        raise ValueError(
            f"no code cell tagged '{SUBMISSION_TAG}' in {path}: add the tag to the cell that defines {ENTRY_POINT}()"
        )
    return "\n\n".join(tagged) + "\n"


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random, as the scorer does before each run.

    Parameters
    ----------
    seed : int
        The run's seed (numpy receives it modulo 2**32).
    """
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
    shuffle. Each loader carries the split's training recipe as ``loader.recipe``, so
    that a method can size its budget and rate as fractions of the challenge's (as
    ``starter_kit.baselines`` do).

    Parameters
    ----------
    split : LoaderSource
        A ``starter_kit.splits.Split`` (``load_split``), or the scorer's worker-side parts.
    seed : int
        The run's seed: retain shuffles with ``seed``, forget with ``seed + 1``.
    batch_size : int, optional
        Default: the recipe's.

    Returns
    -------
    retain_loader, forget_loader, val_loader : DataLoader
        Yielding ``(inputs, targets)`` batches.
    """
    batch_size = batch_size or split.recipe.batch_size
    retain = split.loader("retain", batch_size, shuffle=True, seed=seed)
    forget = split.loader("forget", batch_size, shuffle=True, seed=seed + 1)
    val = split.loader("val", batch_size, shuffle=False)
    for loader in (retain, forget, val):
        loader.recipe = split.recipe
    return retain, forget, val
