"""What a phase's ``input_data`` and ``reference_data`` hold: written at export, read by the programs.

input_data (the prediction step; whatever is here the submission can read and print)::

    task.pt      the contract's inputs only: the architecture's name and sizes, the original
                 model's state_dict, the retain, forget and validation tensors, the batch size
                 (``scoring.ingestion.runner.job_from_split``, the scorer's own job less the source)
    phase.json   public settings: phase, N, the limit on the mean run time and its rule, the
                 set-up allowance and how it was measured, torch threads, device, kit version

Never the test set, the references, the split manifest (it holds the split's seeds) or a
run seed: run seeds are drawn when the submission runs (``codabench_ingestion``).

reference_data (the scoring step only; precomputed, so scoring never trains)::

    phase.json       phase.json above plus the split's identity (dataset, name, manifest sha256),
                     the reference set's sha256 and mean training time, the recipe
    data.npz         retain, forget and test images and labels: what the scorer evaluates on
    original.pt      the original state_dict: the architecture a returned model must match
    references.npz   the first N reference models' forget confidences [N, |S|] and accuracies [N],
                     training and evaluation seconds, threads (not their seeds)
    ceiling.json     the estimator's ceiling at N (absent where N < 3)
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

import starter_kit
from scoring.assess import recompute as assessment
from scoring.ingestion.limits import time_limit
from scoring.ingestion.runner import job_from_split
from scoring.references.build import ReferenceSet, load_references
from scoring.references.split_arrays import SplitArrays
from starter_kit.atomic import write_bytes, write_json
from starter_kit.recipe import Recipe
from starter_kit.splits import Split

TASK_FILE = "task.pt"
PHASE_FILE = "phase.json"
DATA_FILE = "data.npz"
ORIGINAL_FILE = "original.pt"
REFERENCES_FILE = "references.npz"
CEILING_FILE = "ceiling.json"
SCORED_PARTS = ("retain", "forget", "test")
_REFERENCE_ARRAYS = (
    "forget_conf",
    "retain_accuracy",
    "forget_accuracy",
    "test_accuracy",
    "training_seconds",
    "evaluation_seconds",
    "torch_threads",
    "models_together",
)


def phase_settings(
    name: str, split: Split, refs: ReferenceSet, limit: float | None, setup_seconds: float, threads: int, device: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public settings for input_data, the scoring step's settings for reference_data)."""
    seconds, rule = time_limit(SimpleNamespace(time_limit=limit, limit_note="set at export (--time-limit)"), refs)
    public = {
        "phase": name,
        "n_runs": refs.n_models,
        "limit_seconds": round(float(seconds), 4),
        "limit_rule": rule,
        "setup_seconds": float(setup_seconds),
        "threads": int(threads),
        "device": str(device),
        "kit_version": starter_kit.__version__,
    }
    private = {
        **public,
        "split": {
            "dataset": split.dataset.name,
            "name": split.manifest["split"]["name"],
            "forget_strategy": split.manifest["split"]["forget"]["strategy"],
            "manifest_sha256": split.manifest_sha256,
        },
        "reference_set_sha256": refs.sha256,
        "reference_mean_training_seconds": round(float(refs.training_seconds.mean()), 4),
        "recipe": asdict(split.recipe),
        "n_classes": int(split.dataset.num_classes),
        "in_channels": int(split.dataset.image_shape[0]),
    }
    return public, private


def write_phase_data(
    split: Split,
    refs_dir: str | os.PathLike[str] | None,
    n_models: int,
    input_dir: Path,
    reference_dir: Path,
    name: str,
    limit: float | None,
    setup_seconds: float,
    threads: int,
    device: str,
) -> dict[str, Any]:
    """Write one phase's input_data and reference_data folders; return its reference_data settings."""
    refs = load_references(split, n_models, refs_dir)
    public, private = phase_settings(name, split, refs, limit, setup_seconds, threads, device)
    job = job_from_split(split, source="", filename="", threads=threads, device=device)
    input_dir.mkdir(parents=True)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": job.model,
            "state": job.state,
            "parts": job.parts,
            "recipe": job.recipe,
            "batch_size": job.batch_size,
        },
        buffer,
    )
    write_bytes(input_dir / TASK_FILE, buffer.getvalue())
    write_json(input_dir / PHASE_FILE, public)

    reference_dir.mkdir(parents=True)
    write_json(reference_dir / PHASE_FILE, private)
    arrays = {}
    for part in SCORED_PARTS:
        arrays[f"{part}_images"] = split.images(part).numpy()
        arrays[f"{part}_labels"] = split.labels(part).numpy()
    _write_npz(reference_dir / DATA_FILE, arrays)
    buffer = io.BytesIO()
    torch.save(job.state, buffer)
    write_bytes(reference_dir / ORIGINAL_FILE, buffer.getvalue())
    _write_npz(reference_dir / REFERENCES_FILE, {name: np.asarray(getattr(refs, name)) for name in _REFERENCE_ARRAYS})
    ceiling = assessment.reference_ceiling(split, n_models, refs.directory)
    if ceiling is not None:
        write_json(reference_dir / CEILING_FILE, ceiling)
    return private


def set_setup(input_dir: Path, reference_dir: Path, seconds: float, measured: dict[str, Any] | None) -> dict[str, Any]:
    """Record the set-up allowance (and how it was measured) in both phase.json files; return reference_data's."""
    private: dict[str, Any] = {}
    for folder in (input_dir, reference_dir):
        settings = json.loads((Path(folder) / PHASE_FILE).read_text())
        settings.update(setup_seconds=float(seconds), setup_measurement=measured)
        write_json(Path(folder) / PHASE_FILE, settings)
        private = settings
    return private


def _write_npz(path: Path, arrays: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # uncompressed: the worker zips the bundle anyway
    write_bytes(path, buffer.getvalue())


def read_task(input_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(task.pt's contents, phase.json) of an input_data folder."""
    task = torch.load(Path(input_dir) / TASK_FILE, map_location="cpu", weights_only=True)
    return task, json.loads((Path(input_dir) / PHASE_FILE).read_text())


def read_reference(reference_dir: Path) -> dict[str, Any]:
    """reference_data as the scoring step uses it: split arrays, reference set, ceiling, settings, original state."""
    reference_dir = Path(reference_dir)
    phase = json.loads((reference_dir / PHASE_FILE).read_text())
    with np.load(reference_dir / DATA_FILE, allow_pickle=False) as data:
        parts = {part: (data[f"{part}_images"], data[f"{part}_labels"]) for part in SCORED_PARTS}
    split = SplitArrays(
        recipe=Recipe.from_dict(phase["recipe"]),
        in_channels=phase["in_channels"],
        num_classes=phase["n_classes"],
        parts=parts,
    )
    with np.load(reference_dir / REFERENCES_FILE, allow_pickle=False) as found:
        arrays = {name: found[name] for name in _REFERENCE_ARRAYS}
    refs = ReferenceSet(
        directory=reference_dir,
        seeds=np.full(len(arrays["forget_conf"]), -1, dtype=np.int64),
        sha256=phase["reference_set_sha256"],
        **arrays,
    )
    ceiling_path = reference_dir / CEILING_FILE
    ceiling = json.loads(ceiling_path.read_text()) if ceiling_path.is_file() else None
    original = torch.load(reference_dir / ORIGINAL_FILE, map_location="cpu", weights_only=True)
    return {"phase": phase, "split": split, "refs": refs, "ceiling": ceiling, "original": original}
