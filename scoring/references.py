"""Reference models: the public recipe retrained from scratch on the retain set, one seed each.

Sealed: the seeds, the models and their outputs stay with the organiser. A reference
set is a resumable stage (as in LiRA's research code): every model is one file,
written atomically when complete and keyed by what produced it, so an interrupted
build resumes where it stopped and asking for more models extends the set.

Folder layout (one folder per split)::

    REFS_DIR/                          default: results/references/<dataset>-<split>-<manifest sha256[:12]>/
      index.json                       the key (split manifest sha256, recipe) and, for every
                                       model present, its seed, file, content sha256, accuracies
                                       and training time: a summary, rewritten after every model
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

The reference set's sha256 (recorded in every score.json) hashes the content sha256s of
the models used, in order; a content sha256 covers the key, the arrays and the
accuracies, not the timings, so a bitwise-identical rebuild on a CPU has the same hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import starter_kit
from scoring.outputs import Evaluator, ModelOutputs, derive_seed
from starter_kit.atomic import write_bytes, write_json
from starter_kit.training import train_model

DEFAULT_ROOT = Path("results") / "references"
INDEX_FILE = "index.json"
LAYOUT_VERSION = 1


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
    sha256: str

    @property
    def n_models(self) -> int:
        return len(self.seeds)


def default_refs_dir(split, root: Path = DEFAULT_ROOT) -> Path:
    """``root/<dataset>-<split name>-<manifest sha256[:12]>``: one folder per split."""
    return Path(root) / f"{split.dataset.name}-{split.manifest['split']['name']}-{split.manifest_sha256[:12]}"


def reference_seed(manifest_sha256: str, index: int) -> int:
    return derive_seed("reference", manifest_sha256, index)


def model_file(split, index: int) -> str:
    return f"model-{index:04d}-seed-{reference_seed(split.manifest_sha256, index)}.npz"


def model_key(split, index: int) -> dict:
    """What produced reference model ``index`` of ``split``: a file is reused only if this matches."""
    return {
        "manifest_sha256": split.manifest_sha256,
        "recipe": split.recipe.to_dict(),
        "index": index,
        "seed": reference_seed(split.manifest_sha256, index),
    }


def build_references(
    split,
    n_models: int,
    refs_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    progress: bool = True,
    jobs: int = 1,
) -> ReferenceSet:
    """Make sure models 0..n_models-1 exist in ``refs_dir``, training only the missing ones.

    Returns the first ``n_models`` as a :class:`ReferenceSet`. Each new model is trained
    with ``starter_kit.training.train_model`` (the split's recipe, on the retain set)
    and written as soon as it is complete, so an interrupted call loses at most the
    models in progress. ``jobs`` > 1 trains that many models at once in worker
    processes, each with this process's torch thread count.
    """
    n_models = _check_n_models(n_models)
    directory = Path(refs_dir) if refs_dir is not None else default_refs_dir(split)
    _check_index(split, directory)
    # Read (and check) every model present once, beyond n_models too, for the index.
    present = {}
    index = 0
    while index < n_models or (directory / model_file(split, index)).is_file():
        model = _read_model(split, directory, index)
        if model is not None:
            present[index] = model["meta"]
        index += 1
    missing = [k for k in range(n_models) if k not in present]
    if missing:
        evaluator = Evaluator(split, device=device)
        bar = tqdm(total=len(missing), desc="reference models", unit="model", disable=not progress)
        for index, model, seconds in _train(split, missing, device, jobs):
            present[index] = _write_model(split, directory, index, evaluator(model), seconds, device)
            bar.update()
            bar.set_postfix(trained=f"{seconds:.1f}s")
            _write_index(split, directory, present)
        bar.close()
    else:
        _write_index(split, directory, present)
    return load_references(split, n_models, directory)


def _train(split, indices: list[int], device: str, jobs: int):
    """Yield (index, trained model, training seconds) for each index, as each completes."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be an integer >= 1, got {jobs!r}")
    images, labels = split.images("retain"), split.labels("retain")
    if jobs == 1 or len(indices) == 1:
        for index in indices:
            started = time.perf_counter()
            model = train_model(
                split.recipe, images, labels, split.dataset.num_classes,
                seed=reference_seed(split.manifest_sha256, index), device=device, progress=False,
            )
            yield index, model, time.perf_counter() - started
        return
    context = multiprocessing.get_context("spawn")
    setup = (split.recipe, images, labels, split.dataset.num_classes, device, torch.get_num_threads())
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(indices)), mp_context=context, initializer=_start_trainer, initargs=setup)
    try:
        futures = {pool.submit(_train_one, reference_seed(split.manifest_sha256, k)): k for k in indices}
        for future in as_completed(futures):
            state, seconds = future.result()
            model = split.new_model()
            model.load_state_dict(state)
            yield futures[future], model.to(device).eval(), seconds
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


_TRAINER: dict = {}  # in a training worker process: what every task of the pool shares


def _start_trainer(recipe, images, labels, num_classes, device, threads) -> None:
    torch.set_num_threads(threads)
    _TRAINER.update(recipe=recipe, images=images, labels=labels, num_classes=num_classes, device=device)


def _train_one(seed: int) -> tuple[dict, float]:
    started = time.perf_counter()
    model = train_model(
        _TRAINER["recipe"], _TRAINER["images"], _TRAINER["labels"], _TRAINER["num_classes"],
        seed=seed, device=_TRAINER["device"], progress=False,
    )
    seconds = time.perf_counter() - started
    return {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}, seconds


def load_references(split, n_models: int, refs_dir: str | os.PathLike | None = None) -> ReferenceSet:
    """The first ``n_models`` reference models of ``split``; an error says how to build missing ones."""
    n_models = _check_n_models(n_models)
    directory = Path(refs_dir) if refs_dir is not None else default_refs_dir(split)
    _check_index(split, directory)
    models = []
    for index in range(n_models):
        model = _read_model(split, directory, index)
        if model is None:
            have = count_references(split, directory)
            refs_option = f" --refs {directory}" if refs_dir is not None else ""
            raise ValueError(
                f"{directory} holds {have} reference model(s) for this split, {n_models} are needed: build them with "
                f"'python -m scoring references --split-dir {split.directory} --n-models {n_models}{refs_option}'"
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
        sha256=hashlib.sha256("\n".join(m["content_sha256"] for m in meta).encode()).hexdigest(),
    )


def count_references(split, refs_dir: str | os.PathLike | None = None) -> int:
    """How many models 0..K-1 (a contiguous prefix) exist for ``split`` in ``refs_dir``."""
    directory = Path(refs_dir) if refs_dir is not None else default_refs_dir(split)
    count = 0
    while (directory / model_file(split, count)).is_file():
        count += 1
    return count


def _check_n_models(n_models) -> int:
    if isinstance(n_models, bool) or not isinstance(n_models, (int, np.integer)) or n_models < 2:
        raise ValueError(f"--n-models must be an integer >= 2 (the metric compares N models per side), got {n_models!r}")
    return int(n_models)


def _check_index(split, directory: Path) -> None:
    """Refuse a folder whose index.json belongs to another split or recipe."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a directory: choose another --refs")
    path = directory / INDEX_FILE
    if not path.is_file():
        return
    try:
        key = json.loads(path.read_text())["key"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise ValueError(f"{path} is damaged: delete it (the model files are kept and re-checked)") from None
    if key.get("manifest_sha256") != split.manifest_sha256 or key.get("recipe") != split.recipe.to_dict():
        raise ValueError(
            f"{directory} holds reference models of another split or recipe (manifest sha256 "
            f"{str(key.get('manifest_sha256'))[:12]}..., this split {split.manifest_sha256[:12]}...): "
            "choose another --refs or leave it out for the split's default folder"
        )


def _read_model(split, directory: Path, index: int) -> dict | None:
    """Model ``index`` if its file exists (None if not); an error if its key does not match."""
    path = directory / model_file(split, index)
    if not path.is_file():
        stray = [p.name for p in directory.glob(f"model-{index:04d}-seed-*.npz")] if directory.is_dir() else []
        if stray:
            raise ValueError(
                f"{directory / stray[0]} was made with another seed than this split gives model {index}: "
                f"it belongs to another split, delete it or choose another --refs"
            )
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            forget_logits = archive["forget_logits"]
            forget_conf = archive["forget_conf"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}): delete it and run 'references' again to retrain it") from None
    expected = model_key(split, index)
    if meta.get("key") != expected:
        differs = sorted(k for k in expected if meta.get("key", {}).get(k) != expected[k])
        raise ValueError(
            f"{path} was made for another split or recipe ({', '.join(differs)} differ): "
            "it is never reused; delete it or choose another --refs"
        )
    n_forget = len(split.indices["forget"])
    if forget_conf.shape != (n_forget,):
        raise ValueError(f"{path} holds {forget_conf.shape} confidences, expected ({n_forget},): delete it")
    if _content_sha256(meta["key"], meta["accuracies"], forget_logits, forget_conf) != meta.get("content_sha256"):
        raise ValueError(f"{path} does not match its content sha256: delete it and run 'references' again")
    return {"meta": meta, "forget_logits": forget_logits, "forget_conf": forget_conf}


def _content_sha256(key: dict, accuracies: dict, forget_logits: np.ndarray, forget_conf: np.ndarray) -> str:
    digest = hashlib.sha256(json.dumps({"key": key, "accuracies": accuracies}, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(forget_logits, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(forget_conf, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _write_model(split, directory: Path, index: int, outputs: ModelOutputs, seconds: float, device: str) -> dict:
    key = model_key(split, index)
    accuracies = outputs.accuracies()
    meta = {
        "key": key,
        "accuracies": accuracies,
        "content_sha256": _content_sha256(key, accuracies, outputs.forget_logits, outputs.forget_conf),
        "training_seconds": round(seconds, 4),
        "evaluation_seconds": round(outputs.seconds, 4),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "kit_version": starter_kit.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "dataset": split.dataset.name,
        "split": split.manifest["split"]["name"],
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        forget_logits=outputs.forget_logits.astype(np.float32),
        forget_conf=outputs.forget_conf.astype(np.float64),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    write_bytes(directory / model_file(split, index), buffer.getvalue())
    return meta


def _write_index(split, directory: Path, present: dict[int, dict]) -> None:
    models = [
        {
            "index": index,
            "seed": meta["key"]["seed"],
            "file": model_file(split, index),
            "content_sha256": meta["content_sha256"],
            **meta["accuracies"],
            "training_seconds": meta["training_seconds"],
        }
        for index, meta in sorted(present.items())
    ]
    write_json(
        directory / INDEX_FILE,
        {
            "layout_version": LAYOUT_VERSION,
            "key": {"manifest_sha256": split.manifest_sha256, "recipe": split.recipe.to_dict()},
            "dataset": split.dataset.name,
            "split": split.manifest["split"]["name"],
            "split_dir": str(split.directory),
            "n_models": len(models),
            "models": models,
        },
    )


def describe_references(refs: ReferenceSet) -> str:
    """A few lines: how many models, their mean accuracies and training time."""
    return (
        f"{refs.n_models} reference models in {refs.directory}\n"
        f"  retain accuracy {refs.retain_accuracy.mean():.4f}, forget {refs.forget_accuracy.mean():.4f}, "
        f"test {refs.test_accuracy.mean():.4f}\n"
        f"  training time {refs.training_seconds.mean():.2f} s per model (sd {refs.training_seconds.std():.2f}), "
        f"{refs.training_seconds.sum():.1f} s in all\n"
        f"  reference set sha256 {refs.sha256[:16]}..."
    )
