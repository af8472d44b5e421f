"""Seeded, stratified index splits: train / validation / test, then forget / retain.

Only numpy's PCG64 generator is used (its stream is stable across numpy releases), and
every part is returned sorted, so a split is a pure function of its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("random", "class", "group")
PARTS = ("train", "retain", "forget", "val", "test")


@dataclass(frozen=True)
class ForgetSpec:
    """Which training examples to forget.

    ``random``: a random ``fraction`` of train. ``class``: every training image of
    ``classes``. ``group``: whole groups (``groups`` gives one id per image) drawn at
    random until ``fraction`` of train is reached, so no group straddles retain/forget.
    """

    strategy: str = "random"
    fraction: float = 0.1
    classes: tuple[int, ...] = ()
    groups: np.ndarray | None = None


def split_indices(
    labels: np.ndarray,
    seed: int,
    forget: ForgetSpec,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    n_official_train: int | None = None,
) -> dict[str, np.ndarray]:
    """Index arrays (int64, sorted) for every part in ``PARTS``.

    Without an official train part, test and validation are drawn per class from the
    whole dataset. With one (CIFAR-10), train is the official train part, and the
    official test part is halved per class into validation and test.
    """
    labels = np.asarray(labels)
    rng = np.random.Generator(np.random.PCG64(seed))
    if n_official_train is None:
        test, val, train = _stratified_parts(labels, np.arange(len(labels)), (test_fraction, val_fraction), rng)
    else:
        train = np.arange(n_official_train)
        heldout = np.arange(n_official_train, len(labels))
        val, test, _ = _stratified_parts(labels, heldout, (0.5, 0.5), rng)
    forget_idx = _forget_indices(labels, train, forget, rng)
    retain = np.setdiff1d(train, forget_idx)
    parts = {"train": train, "retain": retain, "forget": forget_idx, "val": val, "test": test}
    return {name: np.sort(parts[name]).astype(np.int64) for name in PARTS}


def _stratified_parts(
    labels: np.ndarray, pool: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> list[np.ndarray]:
    """Split ``pool`` per class into parts of the given fractions, plus the remainder."""
    chosen: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels[pool]):
        members = rng.permutation(pool[labels[pool] == c])
        start = 0
        for k, fraction in enumerate(fractions):
            count = int(round(fraction * len(members)))
            chosen[k].append(members[start : start + count])
            start += count
        chosen[-1].append(members[start:])
    return [np.concatenate(part) if part else np.empty(0, np.int64) for part in chosen]


def _forget_indices(labels: np.ndarray, train: np.ndarray, forget: ForgetSpec, rng: np.random.Generator) -> np.ndarray:
    if forget.strategy == "random":
        count = int(round(forget.fraction * len(train)))
        return rng.choice(train, size=count, replace=False)
    if forget.strategy == "class":
        return train[np.isin(labels[train], forget.classes)]
    if forget.strategy == "group":
        groups = np.asarray(forget.groups)[train]
        target = forget.fraction * len(train)
        chosen, count = [], 0
        for group in rng.permutation(np.unique(groups)):
            if count >= target:
                break
            chosen.append(group)
            count += int(np.sum(groups == group))
        return train[np.isin(groups, chosen)]
    raise ValueError(f"unknown forget strategy {forget.strategy!r}: choose one of {', '.join(STRATEGIES)}")
