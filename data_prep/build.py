"""Build one split directory: indices, manifest, the original model and its metrics."""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

import starter_kit
from data_prep.splitting import PARTS, STRATEGIES, ForgetSpec, split_indices
from starter_kit.atomic import npy_bytes, staged_directory, write_bytes, write_json
from starter_kit.data import Dataset, load_dataset
from starter_kit.devices import check_available
from starter_kit.evaluation import accuracy
from starter_kit.loaders import make_loader
from starter_kit.models import MODELS
from starter_kit.recipe import Recipe, default_recipe
from starter_kit.splits import INDEX_DIR, MANIFEST, ORIGINAL_METRICS, ORIGINAL_MODEL, load_split
from starter_kit.training import train_model, training_record

# Public and private leaderboards use different split seeds, as on Kaggle.
SPLIT_SEEDS = {"public": 2023, "private": 2024}
TEST_FRACTION, VAL_FRACTION = 0.2, 0.1


@dataclass
class BuildOptions:
    """Everything that determines a split; ``seed`` None means the split's default."""

    dataset: str
    split: str
    out: Path
    seed: int | None = None
    forget: str = "random"
    forget_fraction: float = 0.1
    forget_classes: tuple[int, ...] = ()
    groups_file: Path | None = None
    data_root: Path | None = None
    force: bool = False
    epochs: int | None = None
    model: str | None = None  # override the recipe's architecture (a reduced rehearsal on a CPU)
    device: str = "cpu"
    progress: bool = True
    groups: np.ndarray | None = field(default=None, repr=False)

    @property
    def split_seed(self) -> int:
        return SPLIT_SEEDS[self.split] if self.seed is None else self.seed


def build_split(options: BuildOptions) -> Path:
    """Write the split directory ``options.out``; return its path.

    Checks every option before any work, builds in a hidden staging directory and
    renames it into place only when complete.
    """
    out = Path(options.out)
    _check_options(options, out)
    dataset = load_dataset(options.dataset, options.data_root)
    forget = _forget_spec(options, dataset)
    indices = split_indices(
        dataset.labels.numpy(),
        seed=options.split_seed,
        forget=forget,
        test_fraction=TEST_FRACTION,
        val_fraction=VAL_FRACTION,
        n_official_train=dataset.n_official_train,
    )
    if len(indices["forget"]) == 0 or len(indices["retain"]) == 0:
        raise ValueError(
            f"the forget set has {len(indices['forget'])} and the retain set {len(indices['retain'])} examples: "
            "both must be non-empty, choose another fraction or other classes"
        )
    recipe = default_recipe(options.dataset)
    if options.epochs is not None:
        recipe = recipe.with_epochs(options.epochs)
    if options.model is not None:
        recipe = replace(recipe, model=options.model)

    with staged_directory(out, replace=options.force) as staging:
        index_files = {part: npy_bytes(indices[part]) for part in PARTS}
        for part, blob in index_files.items():
            write_bytes(staging / INDEX_DIR / f"{part}.npy", blob)
        manifest = _manifest(options, dataset, forget, indices, index_files, recipe)
        write_json(staging / MANIFEST, manifest)
        _train_original(staging, dataset, indices, recipe, options)
    return out


def _check_options(options: BuildOptions, out: Path) -> None:
    if options.split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {options.split!r}: choose public or private")
    if options.forget not in STRATEGIES:
        raise ValueError(f"unknown forget strategy {options.forget!r}: choose one of {', '.join(STRATEGIES)}")
    if not 0.0 < options.forget_fraction < 1.0:
        raise ValueError(f"--forget-fraction must be strictly between 0 and 1, got {options.forget_fraction}")
    if options.forget == "class" and not options.forget_classes:
        raise ValueError("--forget class needs --forget-classes, e.g. --forget-classes 3,7")
    if options.forget == "group" and options.groups_file is None and options.groups is None:
        raise ValueError("--forget group needs --groups FILE.npy with one integer group id per image")
    if options.epochs is not None and options.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {options.epochs}")
    if options.model is not None and options.model not in MODELS:
        raise ValueError(f"unknown model {options.model!r}: choose one of {', '.join(MODELS)}")
    check_available(options.device)
    if out.exists() and not options.force:
        raise FileExistsError(f"{out} already exists: pass --force to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory: choose another --out")


def _forget_spec(options: BuildOptions, dataset: Dataset) -> ForgetSpec:
    if options.forget == "class":
        unknown = sorted(set(options.forget_classes) - set(range(dataset.num_classes)))
        if unknown:
            raise ValueError(
                f"class(es) {unknown} do not exist in {dataset.name}: classes are 0..{dataset.num_classes - 1}"
            )
        return ForgetSpec("class", options.forget_fraction, tuple(sorted(set(options.forget_classes))))
    if options.forget == "group":
        if options.groups is not None:
            groups = options.groups
        else:
            assert options.groups_file is not None  # refused above without either
            groups = _load_groups(options.groups_file)
        if groups.shape != (len(dataset.labels),):
            raise ValueError(
                f"the groups array has shape {groups.shape}, expected ({len(dataset.labels)},): one id per image"
            )
        return ForgetSpec("group", options.forget_fraction, groups=groups)
    return ForgetSpec("random", options.forget_fraction)


def _load_groups(path: Path) -> np.ndarray:
    try:
        groups = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read groups file {path} ({error}): expected a .npy array of integers") from None
    if not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(f"groups file {path} holds {groups.dtype} values: expected integer group ids")
    return groups.astype(np.int64)


def _manifest(options, dataset, forget, indices, index_files, recipe: Recipe) -> dict:
    labels = dataset.labels.numpy()
    parts = {}
    for part in PARTS:
        counts = np.bincount(labels[indices[part]], minlength=dataset.num_classes)
        parts[part] = {
            "file": f"{INDEX_DIR}/{part}.npy",
            "size": int(len(indices[part])),
            "per_class": [int(c) for c in counts],
            "sha256": hashlib.sha256(index_files[part]).hexdigest(),
        }
    groups_sha = None
    if forget.groups is not None:
        groups_sha = hashlib.sha256(np.ascontiguousarray(forget.groups, dtype=np.int64).tobytes()).hexdigest()
    # On CUDA train_model takes starter_kit.fast_training: seeded, not bitwise reproducible.
    how = training_record(options.device)
    deterministic = how["bitwise_reproducible"]
    return {
        "kit_version": starter_kit.__version__,
        "dataset": {
            "name": dataset.name,
            "sha256": dataset.sha256,
            "n_images": int(len(labels)),
            "image_shape": list(dataset.image_shape),
            "classes": list(dataset.classes),
        },
        "split": {
            "name": options.split,
            "seed": options.split_seed,
            "test_fraction": TEST_FRACTION if dataset.n_official_train is None else None,
            "val_fraction": VAL_FRACTION if dataset.n_official_train is None else None,
            "forget": {
                "strategy": forget.strategy,
                "fraction": forget.fraction if forget.strategy != "class" else None,
                "classes": list(forget.classes) if forget.strategy == "class" else None,
                "groups_sha256": groups_sha,
            },
        },
        "parts": parts,
        "recipe": recipe.to_dict(),
        "original_model": {
            "file": ORIGINAL_MODEL,
            "metrics_file": ORIGINAL_METRICS,
            "trained_on": "train",
            "seed": options.split_seed,
            "device": "cuda" if options.device.startswith("cuda") else "cpu",
            "threads": torch.get_num_threads(),
            "bitwise_reproducible": deterministic,
            "note": (
                "trained on the CPU: rebuilding gives a byte-identical checkpoint with the same torch version "
                "and thread count"
                if deterministic
                else how["note"]
            ),
        },
        "torch_version": torch.__version__.split("+")[0],
    }


def _train_original(staging: Path, dataset: Dataset, indices, recipe: Recipe, options: BuildOptions) -> None:
    train = torch.from_numpy(indices["train"])
    started = time.perf_counter()
    model = train_model(
        recipe,
        dataset.images[train],
        dataset.labels[train],
        dataset.num_classes,
        seed=options.split_seed,
        device=options.device,
        progress=options.progress,
        desc=f"original model ({options.dataset}, {options.split})",
    )
    seconds = time.perf_counter() - started
    buffer = io.BytesIO()
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save(state, buffer)
    write_bytes(staging / ORIGINAL_MODEL, buffer.getvalue())
    metrics = {
        "training_seconds": round(seconds, 3),
        "threads": torch.get_num_threads(),
        "checkpoint_sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "training": getattr(model, "training_record", None),  # which path, options, reproducibility
    }
    for part in PARTS:
        part_idx = torch.from_numpy(indices[part])
        loader = make_loader(dataset.images[part_idx], dataset.labels[part_idx], batch_size=1024)
        metrics[f"{part}_accuracy"] = accuracy(model, loader)
    write_json(staging / ORIGINAL_METRICS, metrics)


def describe_split(directory: Path, data_root: Path | None = None) -> str:
    """A short table: per-part sizes and per-class counts, then the original model's accuracies."""
    import pandas as pd

    split = load_split(directory, data_root)
    manifest = split.manifest
    counts = pd.DataFrame(
        {part: manifest["parts"][part]["per_class"] for part in PARTS}, index=list(manifest["dataset"]["classes"])
    ).T
    counts.insert(0, "size", [manifest["parts"][part]["size"] for part in PARTS])
    metrics = split.original_metrics()
    accuracies = pd.DataFrame({"accuracy": [metrics[f"{part}_accuracy"] for part in PARTS]}, index=list(PARTS)).T.map(
        lambda a: f"{100 * a:.2f}%"
    )
    forget = manifest["split"]["forget"]
    lines = [
        f"split {directory}: {manifest['dataset']['name']} / {manifest['split']['name']} "
        f"(seed {manifest['split']['seed']}, forget {forget['strategy']})",
        "",
        "images per part and class:",
        counts.to_string(),
        "",
        f"original model ({manifest['recipe']['model']}, {manifest['recipe']['epochs']} epochs, "
        f"trained in {metrics['training_seconds']:.1f} s):",
        accuracies.to_string(),
    ]
    return "\n".join(lines)
