"""Reference models: the public recipe retrained from scratch on the retain set, one seed each.

Sealed: the seeds, the models and their outputs stay with the organiser. A reference
set is a resumable stage (as in LiRA's research code): every model is one file,
written atomically when complete and keyed by what produced it, so an interrupted
build resumes where it stopped and asking for more models extends the set.

Folder layout (one folder per split)::

    REFS_DIR/                          default: results/references/<dataset>-<split>-<manifest sha256[:12]>/
      index.json                       the key (split manifest sha256, recipe) and, for every
                                       model present, its seed, file, the file's sha256, content
                                       sha256, accuracies and training time: rewritten after
                                       every model
      model-0000-seed-<seed>.npz       reference model 0, then 1, 2, ... (index = first number):
                                         forget_logits  [|S|, classes] float32
                                         forget_conf    [|S|] float64  logit-scaled confidence
                                         meta           JSON string: key (manifest sha256, recipe,
                                                        index, seed), accuracies (retain, forget,
                                                        test), training and evaluation seconds,
                                                        torch threads, device, versions

Model k's seed is ``derive_seed("reference", manifest sha256, k)``: deterministic, never
given to a submission, distinct from the run seeds. A model file is reused only when its
key matches the split exactly (manifest sha256, recipe, index and seed); a mismatch is an
error that names the file, never a silent reuse. The checkpoints themselves are not kept:
the score needs only the outputs above.

Damage: every model file is checked against the sha256 that index.json recorded when
it was written (and its arrays against their content sha256). ``build_references``
names a damaged or missing file and trains that model again; ``load_references`` (what
``score`` uses) refuses a damaged set with one line naming the file and the command
that repairs it.

Where models train: a :mod:`scoring.backends.interface` backend, one task per model (train, then
evaluate, on the task's node); this process alone writes the files, each as soon as
its task returns, so a lost worker or node loses only unfinished models. On the CPU
with the same thread count every backend gives the same models, bit for bit.

Calibration (:mod:`scoring.references.calibration`): a folder's first build, or one with
``calibrate``, also trains one model alone, excluded from the set, whose time is the
default time limit's basis.

The reference set's sha256 (recorded in every score.json) hashes the content sha256s of
the models used, in order; a content sha256 covers the key, the arrays and the
accuracies, not the timings, so a bitwise-identical rebuild on a CPU has the same hash.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

import starter_kit
from scoring.backends.cpu_share import confine_process, cpu_share
from scoring.backends.interface import Backend, LocalBackend
from scoring.checks import check_int
from scoring.outputs import Evaluator
from scoring.references import calibration as calibrating
from scoring.references.calibration import TIME_LIMIT_FRACTION, calibration_record, calibration_task
from scoring.references.folder import (
    DamagedModel,
    check_index,
    model_file,
    read_calibration,
    read_model,
    recorded_files,
    reference_seed,
    write_index,
    write_model,
)
from scoring.references.split_arrays import SplitArrays
from starter_kit.training import train_models

if TYPE_CHECKING:
    from starter_kit.splits import Split

DEFAULT_ROOT = Path("results") / "references"


@dataclass(frozen=True)
class ReferenceSet:
    """The first N reference models of a split: arrays [N, ...] in model order."""

    directory: Path
    seeds: np.ndarray  # [N] int64
    forget_conf: np.ndarray  # [N, |S|] float64
    retain_accuracy: np.ndarray  # [N] float64
    forget_accuracy: np.ndarray  # [N]
    test_accuracy: np.ndarray  # [N]
    training_seconds: np.ndarray  # [N]
    evaluation_seconds: np.ndarray  # [N]
    torch_threads: np.ndarray  # [N] threads each was trained with (training time depends on it)
    models_together: np.ndarray  # [N] models its task trained at once (>1 on CUDA: its time is its share)
    sha256: str
    calibration: dict[str, Any] | None = (
        None  # one model trained alone (its "seconds" and how it was measured); None in older sets
    )
    retrained: tuple[str, ...] = ()  # files found damaged or missing and trained again by this build

    @property
    def n_models(self) -> int:
        return len(self.seeds)


def default_refs_dir(split: Split, root: Path = DEFAULT_ROOT) -> Path:
    """``root/<dataset>-<split name>-<manifest sha256[:12]>``: one folder per split."""
    return Path(root) / f"{split.dataset.name}-{split.manifest['split']['name']}-{split.manifest_sha256[:12]}"


def build_references(
    split: Split,
    n_models: int,
    refs_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    progress: bool = True,
    jobs: int = 1,
    backend: Backend | None = None,
    together: int = 1,
    calibrate: bool = False,
) -> ReferenceSet:
    """Make sure models 0..n_models-1 exist in ``refs_dir``, training only the missing ones.

    Returns the first ``n_models`` as a :class:`ReferenceSet`. Each new model is trained
    with ``starter_kit.training.train_model`` (the split's recipe, on the retain set),
    evaluated, and written by this process as soon as it is complete, so an interrupted
    call loses at most the models in progress. A damaged file (unreadable, or not the
    sha256 index.json recorded) or a file index.json lists but that is gone is named on
    stderr and its model trained again (``retrained`` in the result).

    ``backend`` runs the trainings (a :mod:`scoring.backends.interface` backend, e.g. Ray; its
    tasks use this process's torch thread count); without one, ``jobs`` > 1 trains that
    many models at once in local worker processes and 1 trains them here. ``together``
    models share one task: on CUDA they train at once in one process, each on its own
    stream (``starter_kit.fast_training.train_fast_many``, the best throughput per GPU);
    on the CPU one after the other, the same models as one per task.

    Before training, a folder without a calibration (or every folder, with
    ``calibrate``) gets one: a model of its own seed trained alone, as one task on
    ``backend`` with nothing else submitted, whose time index.json records (see above).
    """
    n_models = _check_n_models(n_models)
    together = check_int(together, "models together", 1)
    directory = Path(refs_dir) if refs_dir is not None else default_refs_dir(split)
    check_index(split, directory)
    recorded = recorded_files(directory)
    # Read (and check) every model present once, beyond n_models too, for the index.
    present, retrained = {}, []
    index = 0
    while index < n_models or (directory / model_file(split, index)).is_file():
        name = model_file(split, index)
        try:
            model = read_model(split, directory, index, recorded.get(name))
        except DamagedModel as damage:
            _warn(f"{damage.path} is damaged ({damage.reason}): training model {index} again", progress)
            model = None
            retrained.append(name)
        else:
            if model is None and name in recorded and index < n_models:
                _warn(f"{directory / name} is missing (index.json lists it): training model {index} again", progress)
                retrained.append(name)
        if model is not None:
            present[index] = {**model["meta"], "file_sha256": model["file_sha256"]}
        index += 1
    missing = [k for k in range(n_models) if k not in present]
    calibration = None if calibrate else read_calibration(directory)
    if missing or calibration is None:
        task_backend = LocalBackend(jobs) if backend is None else backend
        try:
            _train_missing(split, directory, missing, present, device, task_backend, progress, together, calibration)
        finally:
            if backend is None:  # made here: closed here
                task_backend.close()
    else:
        write_index(split, directory, present, calibration)
    refs = load_references(split, n_models, directory)
    return ReferenceSet(**{**refs.__dict__, "retrained": tuple(retrained)})


def _train_missing(
    split: Split,
    directory: Path,
    missing: list[int],
    present: dict[int, dict[str, Any]],
    device: str,
    backend: Backend,
    progress: bool,
    together: int,
    calibration: dict[str, Any] | None,
) -> None:
    """The calibration if there is none, then one task per ``together`` missing models on ``backend``;
    write each model and the index as its task returns."""
    threads = torch.get_num_threads()
    task_device = backend.task_device(device)
    shared = backend.share(SplitArrays.from_split(split))  # the data go to the workers once, not once per model
    if calibration is None:
        calibration = _calibrate(split, backend, shared, task_device, threads, progress, len(missing), together)
        write_index(split, directory, present, calibration)
    groups = [missing[first : first + together] for first in range(0, len(missing), together)]
    tasks = {
        backend.submit(
            _reference_task, shared, [reference_seed(split.manifest_sha256, k) for k in group], task_device, threads
        ): group
        for group in groups
    }
    # smoothing=0: the average rate since the start; tasks finish in bursts, which would read as hundreds per second
    bar = tqdm(total=len(missing), desc="reference models", unit="model", disable=not progress, smoothing=0)
    if progress:
        bar.write(
            f"training {len(missing)} reference model(s) on {backend.describe()}"
            + (f", {together} at once per task" if together > 1 else ""),
            file=sys.stderr,
        )
    try:
        for task in backend.as_completed(tasks):
            results = task.result()
            for index, result in zip(tasks[task], results, strict=True):
                _check_versions(result)
                present[index] = write_model(split, directory, index, result)
                write_index(split, directory, present, calibration)
            bar.set_postfix(trained=f"{results[-1]['training_seconds']:.1f}s", refresh=False)
            bar.update(len(results))
    finally:
        bar.close()


def _calibrate(
    split: Split,
    backend: Backend,
    shared: Any,
    device: str,
    threads: int,
    progress: bool,
    before: int,
    together: int,
) -> dict[str, Any]:
    """Time the calibration models alone and warm (one task, nothing else submitted); return index.json's record."""
    seeds = calibrating.calibration_seeds(split.manifest_sha256, calibrating.CALIBRATION_MODELS)
    if progress:
        tqdm.write(
            f"calibration: {len(seeds)} model(s) trained alone on {backend.describe()} after a discarded warm-up "
            "(their median: the time limit's basis)",
            file=sys.stderr,
        )
    task = backend.submit(calibration_task, shared, seeds, device, threads)
    result = next(iter(backend.as_completed([task]))).result()
    _check_versions(result)
    return calibration_record(result, seeds, backend.describe(), before, together)


def _reference_task(data: SplitArrays, seeds: list[int], device: str, threads: int) -> list[dict[str, Any]]:
    """Train reference models (together: on CUDA each on its own stream) and evaluate them,
    where the backend runs the task; only outputs come back.

    The task holds ``threads`` CPUs of its own (``cpu_share``), as a submission's worker does:
    the calibration and the references are timed on the same machine share as the runs.
    Each model's ``training_seconds`` is its share of the task's training time (the time
    divided by the number of models): what it cost on the device.
    """
    with cpu_share(threads) as cpus, confine_process(cpus):
        return _train_and_evaluate(data, seeds, device, threads)


def _train_and_evaluate(data: SplitArrays, seeds: list[int], device: str, threads: int) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    started = time.perf_counter()
    models = train_models(
        data.recipe,
        data.images("retain"),
        data.labels("retain"),
        data.num_classes,
        seeds,
        device=device,
        progress=False,
    )
    seconds = (time.perf_counter() - started) / len(seeds)
    evaluate = Evaluator(data, device=device)
    return [
        {
            "outputs": evaluate(model),
            "training_seconds": seconds,
            "training": model.training_record,
            "torch_threads": torch.get_num_threads(),
            "device": str(device),
            "kit_version": starter_kit.__version__,
            "torch_version": torch.__version__.split("+")[0],
            "host": socket.gethostname(),
        }
        for model in models
    ]


def _check_versions(result: dict[str, Any]) -> None:
    """Refuse outputs from a node whose kit or torch differ from this machine's: they would not be the same
    models."""
    ours = {"kit_version": starter_kit.__version__, "torch_version": torch.__version__.split("+")[0]}
    for name, version in ours.items():
        if result[name] != version:
            raise ValueError(
                f"a worker on {result['host']} runs {name.replace('_', ' ')} {result[name]}, this machine {version}: "
                "install the same kit and packages on every node"
            )


def _warn(message: str, progress: bool) -> None:
    (tqdm.write if progress else print)(f"warning: {message}", file=sys.stderr)


def load_references(split: Split, n_models: int, refs_dir: str | os.PathLike[str] | None = None) -> ReferenceSet:
    """The first ``n_models`` reference models of ``split``; an error says how to build missing ones."""
    n_models = _check_n_models(n_models)
    directory = Path(refs_dir) if refs_dir is not None else default_refs_dir(split)
    check_index(split, directory)
    recorded = recorded_files(directory)
    refs_option = f" --refs {directory}" if refs_dir is not None else ""
    command = f"'python -m scoring references --split-dir {split.directory} --n-models {n_models}{refs_option}'"
    models = []
    for index in range(n_models):
        name = model_file(split, index)
        try:
            model = read_model(split, directory, index, recorded.get(name))
        except DamagedModel as damage:
            raise ValueError(
                f"{damage}: repair the reference set (this model is trained again) with {command}"
            ) from None
        if model is None and name in recorded:
            raise ValueError(
                f"{directory / name} is missing (index.json lists it): repair the reference set with {command}"
            )
        if model is None:
            have = count_references(split, directory)
            raise ValueError(
                f"{directory} holds {have} reference model(s) for this split, {n_models} are needed: "
                f"build them with {command}"
            )
        models.append(model)
    meta = [m["meta"] for m in models]
    return ReferenceSet(
        directory=directory,
        seeds=np.array([m["key"]["seed"] for m in meta], dtype=np.int64),
        forget_conf=np.stack([m["forget_conf"] for m in models]),
        retain_accuracy=np.array([m["accuracies"]["retain_accuracy"] for m in meta]),
        forget_accuracy=np.array([m["accuracies"]["forget_accuracy"] for m in meta]),
        test_accuracy=np.array([m["accuracies"]["test_accuracy"] for m in meta]),
        training_seconds=np.array([m["training_seconds"] for m in meta]),
        evaluation_seconds=np.array([m["evaluation_seconds"] for m in meta]),
        torch_threads=np.array([m["torch_threads"] for m in meta], dtype=np.int64),
        models_together=np.array([m.get("training", {}).get("models_together", 1) for m in meta], dtype=np.int64),
        sha256=hashlib.sha256("\n".join(m["content_sha256"] for m in meta).encode()).hexdigest(),
        calibration=read_calibration(directory),
    )


def count_references(split: Split, refs_dir: str | os.PathLike[str] | None = None) -> int:
    """How many models 0..K-1 (a contiguous prefix) exist for ``split`` in ``refs_dir``."""
    directory = Path(refs_dir) if refs_dir is not None else default_refs_dir(split)
    count = 0
    while (directory / model_file(split, count)).is_file():
        count += 1
    return count


def _check_n_models(n_models: object) -> int:
    return check_int(n_models, "--n-models", 2, " (the metric compares N models per side)")


def describe_references(refs: ReferenceSet) -> str:
    """A few lines: how many models, their mean accuracies, training time and the calibration."""
    if refs.calibration:
        seconds, times = refs.calibration["seconds"], refs.calibration.get("times", [refs.calibration["seconds"]])
        shown = ", ".join(f"{t:.2f}" for t in times)
        alone = (
            f"  the calibration, the time limit's basis: {seconds:.2f} s, the median of {len(times)} model(s) "
            f"trained alone ({shown} s"
            + (f", spread {refs.calibration['spread']:.0%}" if "spread" in refs.calibration else "")
            + f"); the default limit ({TIME_LIMIT_FRACTION:.0%} of it, {TIME_LIMIT_FRACTION * seconds:.2f} s) is "
            f"{TIME_LIMIT_FRACTION * seconds / np.median(refs.training_seconds):.0%} of the references' median time\n"
        )
    else:
        alone = "  no calibration (one model timed alone): the time limit falls back to the times above\n"
    return (
        f"{refs.n_models} reference models in {refs.directory}\n"
        f"  retain accuracy {refs.retain_accuracy.mean():.4f}, forget {refs.forget_accuracy.mean():.4f}, "
        f"test {refs.test_accuracy.mean():.4f}\n"
        f"  training time {refs.training_seconds.mean():.2f} s per model (sd {refs.training_seconds.std():.2f}), "
        f"{refs.training_seconds.sum():.1f} s in all\n"
        + alone
        + f"  reference set sha256 {refs.sha256[:16]}..."
        + (f"\n  trained again (damaged or missing): {', '.join(refs.retrained)}" if refs.retrained else "")
    )
