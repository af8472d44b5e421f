"""A small archive in the CIFAR-10 python format, with its own checksums, for tests."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from starter_kit.data import CIFAR10_ARCHIVE, CIFAR10_FOLDER, CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES


def make_fake_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> dict[str, str]:
    """Write ``root/cifar-10-python.tar.gz`` and its extracted folder; return their MD5s.

    Each of the five training batches and the test batch holds ``per_batch`` images,
    with every class present in the test batch.
    """
    rng = np.random.default_rng(seed)
    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    checksums = {}
    for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
        batch = {
            "batch_label": name,
            "labels": [int(i % 10) for i in range(per_batch)],
            "data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
        }
        blob = pickle.dumps(batch)
        (folder / name).write_bytes(blob)
        checksums[name] = hashlib.md5(blob).hexdigest()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=CIFAR10_FOLDER)
    (root / CIFAR10_ARCHIVE).write_bytes(buffer.getvalue())
    checksums[CIFAR10_ARCHIVE] = hashlib.md5(buffer.getvalue()).hexdigest()
    return checksums
