"""Sanity rows: three submissions whose scores anyone can predict, to check a scorer with.

- ``identity``: returns the original model. Deterministic, so every example hits the
  spread rule: F must be 0.
- ``noise``: the original model plus Gaussian noise (2% of each parameter tensor's
  std). Random but no forgetting: F small, far below the ceiling.
- ``retrain``: retrains from scratch on the retain set with the split's own public
  recipe, that is, exactly what the reference models are. Its F must land inside the
  ceiling's interval (``scoring.assess.ceiling``). It takes as long as retraining,
  so it is scored with the time limit lifted, and marked so.

Each is a submission source (the contract's ``unlearning`` function), written to a
``.py`` file and scored like any other; ``retrain`` embeds the split's recipe, since
a sandboxed submission cannot read the split.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starter_kit.recipe import Recipe

IDENTITY = '''\
"""Sanity row: the original model, unchanged (F must be 0)."""


def unlearning(net, retain_loader, forget_loader, val_loader):
    return net.eval()
'''

NOISE = '''\
"""Sanity row: the original model plus Gaussian noise, {scale:g} of each tensor's std (no forgetting)."""
import torch


def unlearning(net, retain_loader, forget_loader, val_loader):
    with torch.no_grad():
        for parameter in net.parameters():
            if parameter.numel() > 1:
                parameter.add_(torch.randn_like(parameter) * {scale!r} * parameter.std())
    return net.eval()
'''

RETRAIN = '''\
"""Sanity row: retrain from scratch on the retain set with the split's recipe (what references are)."""
import torch

from starter_kit.recipe import Recipe
from starter_kit.training import train_model

RECIPE = Recipe.from_dict({recipe})


def unlearning(net, retain_loader, forget_loader, val_loader):
    batches = list(retain_loader)  # one pass: each pass over a shuffling loader has its own order
    images = torch.cat([inputs for inputs, _ in batches])
    labels = torch.cat([targets for _, targets in batches])
    device = next(net.parameters()).device
    with torch.no_grad():
        num_classes = net(images[:2].to(device)).shape[1]
    seed = int(torch.randint(0, 2**31 - 1, ()).item())
    return train_model(RECIPE, images, labels, num_classes, seed=seed, device=device, progress=False).eval()
'''

ROWS = ("identity", "noise", "retrain")
NOISE_SCALE = 0.02


def sanity_source(name: str, recipe: Recipe | None = None, noise_scale: float = NOISE_SCALE) -> str:
    """The submission source of sanity row ``name`` (``retrain`` needs the split's recipe)."""
    if name == "identity":
        return IDENTITY
    if name == "noise":
        return NOISE.format(scale=noise_scale)
    if name == "retrain":
        if recipe is None:
            raise ValueError("the retrain sanity row needs the split's recipe")
        return RETRAIN.format(recipe=repr(recipe.to_dict()))
    raise ValueError(f"unknown sanity row {name!r}: choose one of {', '.join(ROWS)}")


def write_sanity_submission(name: str, folder: str | Path, recipe: Recipe | None = None) -> Path:
    """``folder/sanity_<name>.py``: sanity row ``name`` as a submission file."""
    path = Path(folder) / f"sanity_{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sanity_source(name, recipe))
    return path
