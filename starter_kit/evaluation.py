"""Local evaluation: accuracy, per-example losses, the starting kit's simple MIA, plots.

The membership-inference attack is the one the NeurIPS 2023 starting kit shipped: a
logistic regression that guesses, from its loss alone, whether an example was trained
on. Fed forget-set losses (members) against test-set losses (non-members), an attack
accuracy near 0.5 means the forget set looks unseen, as it would to a model retrained
without it. It is a quick sanity check, not the official score, which compares the
unlearned models with many retrained ones.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["accuracy", "mia_on_forget_vs_test", "per_example_losses", "plot_loss_histograms", "predict", "simple_mia"]


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [n, classes] and targets [n] of ``model`` (in eval mode) over ``loader``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, targets = [], []
    for inputs, batch_targets in loader:
        logits.append(model(inputs.to(device)).float().cpu())
        targets.append(batch_targets)
    model.train(was_training)
    if not logits:
        raise ValueError("the loader is empty: nothing to evaluate")
    return torch.cat(logits), torch.cat(targets)


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    """Share of examples in ``loader`` whose top logit is the true label."""
    logits, targets = predict(model, loader)
    return (logits.argmax(1) == targets).float().mean().item()


def per_example_losses(model: nn.Module, loader: DataLoader) -> np.ndarray:
    """The cross-entropy loss of each example in ``loader``, in the loader's order.

    Parameters
    ----------
    model : the classifier, evaluated in eval mode on its own device.
    loader : yields ``(inputs, targets)`` batches; must not be empty.

    Returns
    -------
    losses : float64 array of shape [n_examples].
    """
    logits, targets = predict(model, loader)
    losses = nn.functional.cross_entropy(logits, targets, reduction="none")
    return losses.double().numpy()


def simple_mia(sample_losses: ArrayLike, members: ArrayLike, n_splits: int = 10, random_state: int = 0) -> float:
    """Accuracy of a loss-threshold membership-inference attack (the starting kit's).

    A logistic regression on the loss alone is cross-validated over ``n_splits``
    stratified shuffle splits (10% held out each), as in the NeurIPS 2023 starting
    kit. Members and non-members are first balanced by subsampling the larger group to
    the size of the smaller one (seeded by ``random_state``), so that 0.5 is chance
    whatever the group sizes: the kit balanced by hand before calling it.

    Parameters
    ----------
    sample_losses : array of shape [n] (or [n, 1]), one finite loss per example.
    members : array of shape [n] of 0 (not trained on) and 1 (trained on); both present.
    n_splits : number of cross-validation splits.
    random_state : seeds the balancing subsample and the splits.

    Returns
    -------
    accuracy : mean held-out attack accuracy over the splits, in [0, 1]; 0.5 is chance.
    """
    losses = np.asarray(sample_losses, dtype=np.float64)
    if losses.ndim == 2 and losses.shape[1] == 1:
        losses = losses[:, 0]
    if losses.ndim != 1:
        raise ValueError(f"sample_losses must have shape [n] or [n, 1], got {losses.shape}")
    members = np.asarray(members)
    if members.shape != losses.shape:
        raise ValueError(f"sample_losses and members differ in shape: {losses.shape} vs {members.shape}")
    if not np.all(np.isfinite(losses)):
        raise ValueError("sample_losses holds NaN or infinite values: the attack needs finite losses")
    if not np.isin(members, (0, 1)).all():
        raise ValueError(f"members must hold only 0 and 1, got values {np.unique(members)[:5].tolist()}")
    counts = np.bincount(members.astype(np.int64), minlength=2)
    if counts.min() == 0:
        raise ValueError(f"members holds a single class ({counts[0]} zeros, {counts[1]} ones): need both")
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    # 10% of the balanced set is held out per split: it must hold one of each class.
    if 2 * counts.min() < 20:
        raise ValueError(f"too few examples for the attack: the smaller group has {counts.min()}, need at least 10")

    # Imported here: the scorer imports this module for predict() and needs no sklearn.
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    rng = np.random.default_rng(random_state)
    keep = np.concatenate([rng.choice(np.flatnonzero(members == g), counts.min(), replace=False) for g in (0, 1)])
    features, targets = losses[keep, None], members[keep].astype(np.int64)
    splits = StratifiedShuffleSplit(n_splits=n_splits, test_size=0.1, random_state=random_state)
    with warnings.catch_warnings():
        # Losses spanning many orders of magnitude can stop lbfgs a little short of its
        # tolerance; the fitted threshold is still the one the attack needs.
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(LogisticRegression(), features, targets, cv=splits, scoring="accuracy")
    return float(scores.mean())


def mia_on_forget_vs_test(model: nn.Module, forget_loader: DataLoader, test_loader: DataLoader, seed: int = 0) -> float:
    """``simple_mia`` with the forget set as members and the test set as non-members.

    Parameters
    ----------
    model : the model to attack, evaluated in eval mode.
    forget_loader, test_loader : loaders of the forget set (members) and the test set.
    seed : seeds the balancing subsample and the cross-validation splits.

    Returns
    -------
    accuracy : the attack's accuracy; near 0.5, the model's losses do not tell forget
        examples from unseen ones, as for a model retrained without them.
    """
    forget = per_example_losses(model, forget_loader)
    test = per_example_losses(model, test_loader)
    members = np.concatenate([np.ones(len(forget), dtype=np.int64), np.zeros(len(test), dtype=np.int64)])
    return simple_mia(np.concatenate([forget, test]), members, random_state=seed)


def plot_loss_histograms(
    models: dict[str, nn.Module], forget_loader: DataLoader, test_loader: DataLoader, bins: int = 40
) -> Figure:
    """One panel per model: histograms of its forget-set and test-set losses.

    Losses are drawn on a log scale, where a well-trained model's tiny losses on
    training examples and its larger ones on unseen examples are both visible. After
    good unlearning the two histograms overlap, as they do for a retrained model.

    Parameters
    ----------
    models : {name: model}, at least one.
    forget_loader, test_loader : loaders of the forget and the test set.
    bins : number of histogram bins, shared by all panels.

    Returns
    -------
    figure : a pyplot Figure with len(models) panels side by side (a notebook shows it;
        elsewhere save it, then ``plt.close(figure)``).
    """
    import matplotlib.pyplot as plt

    if not models:
        raise ValueError("models is empty: give at least one {name: model}")
    losses = {
        name: (per_example_losses(model, forget_loader), per_example_losses(model, test_loader))
        for name, model in models.items()
    }
    # log10 of the loss, floored where float32 rounds a confident prediction to 0.
    floor = 1e-8
    logs = {name: (np.log10(np.maximum(f, floor)), np.log10(np.maximum(t, floor))) for name, (f, t) in losses.items()}
    everything = np.concatenate([np.concatenate(pair) for pair in logs.values()])
    edges = np.linspace(everything.min(), everything.max() + 1e-9, bins + 1)

    figure, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), sharey=True, squeeze=False)
    for ax, (name, (forget, test)) in zip(axes[0], logs.items(), strict=True):
        ax.hist(test, bins=edges, density=True, alpha=0.5, label="test (unseen)")
        ax.hist(forget, bins=edges, density=True, alpha=0.5, label="forget")
        ax.set_title(name)
        ax.set_xlabel("log10 cross-entropy loss")
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(loc="upper left", frameon=False)
    figure.tight_layout()
    return figure
