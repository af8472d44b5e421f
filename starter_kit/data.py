"""Datasets as tensors in memory: scikit-learn's bundled digits and a local CIFAR-10 copy.

Both fit in memory, so images are kept as one normalised float tensor and batches are
cut from it by indexing, never decoded one file at a time. Nothing is downloaded: digits
ships inside scikit-learn, and CIFAR-10 is read from the standard python archive that
the user provides.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "cifar10")

CIFAR10_ENV = "CIFAR10_ROOT"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The published MD5 checksums of the CIFAR-10 python release (as listed by torchvision).
CIFAR10_MD5 = {
    CIFAR10_ARCHIVE: "c58f30108f718f92721af3b95e74349a",
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
# Per-channel mean and standard deviation of the CIFAR-10 training images.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Dataset:
    """A whole dataset in memory.

    ``images`` is [n, channels, height, width] float32, normalised; ``labels`` is [n]
    int64. ``n_official_train`` is the size of the dataset's own training part (the
    first images), or None when the dataset has no official train/test division.
    ``sha256`` hashes the raw pixels and labels, so a manifest pins the exact data.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    n_official_train: int | None
    sha256: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])


def load_dataset(name: str, data_root: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset by name; ``data_root`` (or $CIFAR10_ROOT) locates CIFAR-10."""
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        return load_cifar10(data_root)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def load_digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 1x8x8 with pixel values 0..16."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    raw = bunch.images.astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    images = torch.from_numpy(raw.astype(np.float32) / 16.0).unsqueeze(1)
    return Dataset(
        name="digits",
        images=images,
        labels=torch.from_numpy(labels),
        classes=tuple(str(c) for c in range(10)),
        n_official_train=None,
        sha256=_data_sha256(raw, labels),
    )


def load_cifar10(data_root: str | os.PathLike | None = None, checksums: dict[str, str] | None = None) -> Dataset:
    """CIFAR-10 from a local python archive or its extracted folder, checked by MD5.

    The 50,000 training images come first, then the 10,000 test images.
    ``checksums`` defaults to the published ones; tests pass those of a small archive.
    """
    checksums = CIFAR10_MD5 if checksums is None else checksums
    source = find_cifar10(data_root)
    batches = _read_cifar10_batches(source, checksums)
    names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
    raw = np.concatenate([batches[n][0] for n in names]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([batches[n][1] for n in names]).astype(np.int64)
    n_train = sum(len(batches[n][1]) for n in CIFAR10_TRAIN_BATCHES)
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"CIFAR-10 labels in {source} are outside 0..9: the files are not CIFAR-10")
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    images = (torch.from_numpy(raw).float() / 255.0 - mean) / std
    return Dataset(
        name="cifar10",
        images=images.contiguous(),
        labels=torch.from_numpy(labels),
        classes=CIFAR10_CLASSES,
        n_official_train=n_train,
        sha256=_data_sha256(raw, labels),
    )


def find_cifar10(data_root: str | os.PathLike | None = None) -> Path:
    """The CIFAR-10 archive or extracted folder at ``data_root`` (or $CIFAR10_ROOT)."""
    if data_root is None:
        data_root = os.environ.get(CIFAR10_ENV)
    if not data_root:
        raise FileNotFoundError(
            f"CIFAR-10 location not given: pass --data-root PATH or set {CIFAR10_ENV} to a folder "
            f"holding {CIFAR10_ARCHIVE} or {CIFAR10_FOLDER}/"
        )
    root = Path(data_root).expanduser()
    candidates = [root, root / CIFAR10_FOLDER, root / CIFAR10_ARCHIVE]
    for path in candidates:
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
            return path
        if path.is_dir() and (path / CIFAR10_TEST_BATCH).exists():
            return path
    raise FileNotFoundError(
        f"CIFAR-10 not found at {root}: expected {CIFAR10_ARCHIVE} or the extracted {CIFAR10_FOLDER}/ "
        f"(with {', '.join(CIFAR10_TRAIN_BATCHES[:1])}..{CIFAR10_TEST_BATCH}) there"
    )


def _read_cifar10_batches(source: Path, checksums: dict[str, str]) -> dict[str, tuple[np.ndarray, list]]:
    """Read every batch file from an archive or folder, verifying each MD5."""
    names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
    blobs: dict[str, bytes] = {}
    if source.is_file():
        _check_md5(source.read_bytes(), checksums[CIFAR10_ARCHIVE], source)
        try:
            with tarfile.open(source, "r:gz") as archive:
                for member in archive.getmembers():
                    base = Path(member.name).name
                    if base in names and member.isfile():
                        blobs[base] = archive.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ValueError(f"CIFAR-10 archive {source} is not a readable .tar.gz ({error})") from None
    else:
        for name in names:
            if (source / name).is_file():
                blobs[name] = (source / name).read_bytes()
    missing = [n for n in names if n not in blobs]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 at {source} lacks {', '.join(missing)}: expected the standard python release")
    batches = {}
    for name in names:
        _check_md5(blobs[name], checksums[name], source / name if source.is_dir() else f"{source}:{name}")
        try:
            batch = pickle.load(io.BytesIO(blobs[name]), encoding="latin1")
            batches[name] = (np.asarray(batch["data"], dtype=np.uint8), list(batch["labels"]))
        except Exception as error:  # a pickle of the wrong shape can fail in many ways
            raise ValueError(f"CIFAR-10 file {name} in {source} is not a CIFAR-10 batch ({error})") from None
    return batches


def _check_md5(blob: bytes, expected: str, where: object) -> None:
    actual = hashlib.md5(blob).hexdigest()
    if actual != expected:
        raise ValueError(
            f"CIFAR-10 file {where} is corrupt or not the official release: MD5 {actual}, expected {expected}; "
            f"download {CIFAR10_ARCHIVE} again"
        )


def _data_sha256(raw: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(raw).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()
