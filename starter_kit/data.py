"""Datasets as tensors in memory: scikit-learn's bundled digits, a local CIFAR-10 copy,
and a synthetic stand-in for CIFAR-10.

All fit in memory, so images are kept as one normalised float tensor and batches are
cut from it by indexing, never decoded one file at a time. Nothing is downloaded: digits
ships inside scikit-learn, CIFAR-10 is read from the standard python archive that
the user provides, and ``synthetic-cifar10`` is generated from a seed (same shapes,
sizes and class count as CIFAR-10, for rehearsing a GPU challenge without the real files).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "cifar10", "synthetic-cifar10")

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
    sizes = parse_synthetic_name(name)
    if sizes is not None:
        return make_synthetic_cifar10(*sizes)
    raise ValueError(
        f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} "
        f"(or {SYNTHETIC_CIFAR10}-TRAIN-TEST for another size, e.g. {SYNTHETIC_CIFAR10}-400-100)"
    )


def dataset_family(name: str) -> str:
    """The registered name a dataset name belongs to: ``synthetic-cifar10-400-100`` -> ``synthetic-cifar10``."""
    return SYNTHETIC_CIFAR10 if parse_synthetic_name(name) is not None else name


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
        raise FileNotFoundError(
            f"CIFAR-10 at {source} lacks {', '.join(missing)}: expected the standard python release"
        )
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


# ----------------------------------------------------------------------------------------
# synthetic-cifar10: CIFAR-shaped images generated from a seed
# ----------------------------------------------------------------------------------------

SYNTHETIC_CIFAR10 = "synthetic-cifar10"
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 50_000, 10_000  # CIFAR-10's sizes
SYNTHETIC_SEED = 0  # the data seed of every registered synthetic-cifar10 name
SYNTHETIC_CLASSES = tuple(f"synthetic-{c}" for c in range(10))
# How hard the task is. Each image is a random smooth background with _PASTES small
# "parts" pasted at random places; each part comes from the image's own class with
# probability 1 - _FOREIGN, else from another class. A linear model on pixels stays near
# chance (parts move about), a CNN learns the parts (translation invariance), and the
# images whose own parts are outnumbered are hard or unlearnable, as CIFAR-10 has
# ambiguous and mislabelled images: so accuracy is high but not perfect, models differ,
# and membership leaves a trace.
_PART, _PARTS_PER_CLASS, _PASTES, _FOREIGN, _NOISE = 12, 2, 3, 0.3, 0.08
_CHUNK = 4096  # images generated at a time: bounds memory; fixed, so the stream is too


def synthetic_name(n_train: int = SYNTHETIC_TRAIN, n_test: int = SYNTHETIC_TEST, seed: int = SYNTHETIC_SEED) -> str:
    """The dataset name of a synthetic CIFAR-10: defaults are left out of it.

    ``synthetic-cifar10`` (50,000 + 10,000 images, seed 0), ``synthetic-cifar10-400-100``
    (400 training and 100 test images), ``synthetic-cifar10-400-100-seed3`` (another seed).
    """
    name = SYNTHETIC_CIFAR10
    if (n_train, n_test) != (SYNTHETIC_TRAIN, SYNTHETIC_TEST):
        name += f"-{n_train}-{n_test}"
    if seed != SYNTHETIC_SEED:
        name += f"-seed{seed}"
    return name


_SYNTHETIC_PATTERN = re.compile(re.escape(SYNTHETIC_CIFAR10) + r"(?:-(\d+)-(\d+))?(?:-seed(\d+))?")


def parse_synthetic_name(name: str) -> tuple[int, int, int] | None:
    """(n_train, n_test, seed) of a synthetic dataset name, or None if ``name`` is not one."""
    if not name.startswith(SYNTHETIC_CIFAR10):
        return None
    match = _SYNTHETIC_PATTERN.fullmatch(name)
    if match is None:
        raise ValueError(
            f"synthetic dataset name {name!r} is malformed: expected {SYNTHETIC_CIFAR10}, optionally followed by "
            f"-TRAIN-TEST image counts and -seedS, e.g. {SYNTHETIC_CIFAR10}-400-100 "
            f"or {SYNTHETIC_CIFAR10}-400-100-seed3"
        )
    n_train = int(match.group(1)) if match.group(1) else SYNTHETIC_TRAIN
    n_test = int(match.group(2)) if match.group(2) else SYNTHETIC_TEST
    seed = int(match.group(3)) if match.group(3) else SYNTHETIC_SEED
    if n_train < 20 or n_test < 20:
        raise ValueError(
            f"synthetic dataset {name!r} is too small: need at least 20 training and 20 test images (two per class)"
        )
    return n_train, n_test, seed


def make_synthetic_cifar10(
    n_train: int = SYNTHETIC_TRAIN, n_test: int = SYNTHETIC_TEST, seed: int = SYNTHETIC_SEED
) -> Dataset:
    """A CIFAR-shaped synthetic dataset: ``n_train`` then ``n_test`` images of 3x32x32, 10 classes.

    A pure function of its arguments: raw pixels are uint8 as in CIFAR-10, classes are
    balanced within train and within test, and ``n_official_train`` = ``n_train``, so
    splits, recipe and model are those of ``cifar10``. Only numpy's PCG64 stream and
    elementwise arithmetic are used (no BLAS, no transcendental functions), so the bytes
    and the sha256 are the same on every machine. Normalised with CIFAR-10's mean and
    standard deviation. Its name, ``synthetic_name(n_train, n_test, seed)``, is enough to
    make it again, so a split built from it loads like any other.
    """
    raw, labels = _synthetic_raw(n_train, n_test, seed)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    images = (torch.from_numpy(raw.copy()).float() / 255.0 - mean) / std  # copies: the cache stays intact
    return Dataset(
        name=synthetic_name(n_train, n_test, seed),
        images=images.contiguous(),
        labels=torch.from_numpy(labels.copy()),
        classes=SYNTHETIC_CLASSES,
        n_official_train=n_train,
        sha256=_data_sha256(raw, labels),
    )


@functools.lru_cache(maxsize=2)
def _synthetic_raw(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 pixels [n, 3, 32, 32] and int64 labels [n], read-only; cached, as a split loads them again."""
    rng = np.random.Generator(np.random.PCG64(seed))
    # Per class, _PARTS_PER_CLASS smooth colour patches of _PART x _PART pixels.
    parts = _upsample(rng.random((10, _PARTS_PER_CLASS, 3, 3, 3), dtype=np.float32), _PART)
    half = np.float32((_PART - 1) / 2)
    axis = (np.arange(_PART, dtype=np.float32) - half) / np.float32(_PART / 2)
    alpha = np.clip(np.float32(1.5) - np.float32(1.5) * (axis[:, None] ** 2 + axis[None, :] ** 2), 0, 1)
    labels = np.concatenate([rng.permutation(np.arange(n) % 10) for n in (n_train, n_test)]).astype(np.int64)
    raw = np.empty((len(labels), 3, 32, 32), np.uint8)
    for start in range(0, len(labels), _CHUNK):
        raw[start : start + _CHUNK] = _synthetic_images(labels[start : start + _CHUNK], parts, alpha, rng)
    raw.flags.writeable = False
    labels.flags.writeable = False
    return raw, labels


def _synthetic_images(labels: np.ndarray, parts: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [k, 3, 32, 32] images for ``labels`` [k]: background, pasted parts, flip, colour, noise."""
    k = len(labels)
    images = _upsample(rng.random((k, 3, 4, 4), dtype=np.float32), 32)
    batch = np.arange(k)[:, None, None, None]
    channel = np.arange(3)[None, :, None, None]
    offsets = np.arange(_PART)
    for _ in range(_PASTES):
        foreign = rng.random(k) < _FOREIGN
        cls = np.where(foreign, (labels + rng.integers(1, 10, k)) % 10, labels)
        patch = parts[cls, rng.integers(0, _PARTS_PER_CLASS, k)]  # [k, 3, P, P]
        top, left = rng.integers(0, 33 - _PART, k), rng.integers(0, 33 - _PART, k)
        rows = (top[:, None] + offsets)[:, None, :, None]
        cols = (left[:, None] + offsets)[:, None, None, :]
        images[batch, channel, rows, cols] = images[batch, channel, rows, cols] * (1 - alpha) + patch * alpha
    flip = rng.random(k) < 0.5
    images = np.where(flip[:, None, None, None], images[..., ::-1], images)
    gain = np.float32(0.6) + rng.random((k, 3, 1, 1), dtype=np.float32) * np.float32(0.8)
    images = (images - np.float32(0.5)) * gain + np.float32(0.5)
    images = images + rng.standard_normal(images.shape, dtype=np.float32) * np.float32(_NOISE)
    return np.clip(np.rint(images * np.float32(255)), 0, 255).astype(np.uint8)


def _upsample(coarse: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of the last two axes (square) to ``size`` x ``size``, elementwise only."""
    h = coarse.shape[-1]
    position = np.arange(size, dtype=np.float32) * np.float32((h - 1) / (size - 1))
    low = np.minimum(position.astype(np.int64), h - 2)
    weight = position - low.astype(np.float32)
    rows = coarse[..., low, :] * (1 - weight)[:, None] + coarse[..., low + 1, :] * weight[:, None]
    return rows[..., low] * (1 - weight) + rows[..., low + 1] * weight
