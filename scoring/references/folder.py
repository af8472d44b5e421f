"""One reference folder on disk: the model files and index.json, written and checked.

What it owns: the names (``model_file``, from the sealed ``reference_seed``), the key a
file must match to be reused (``model_key``), writing a model's outputs atomically and
recording its sha256 in index.json (``write_model``, ``write_index``), and reading a file
back only after checking it (``read_model``: the sha256 index.json recorded, the key, the
shapes, the content sha256). :mod:`scoring.references.build` decides what to train and when;
this module is the format, so that a damaged file is always named, never half-trusted.

index.json also holds the set's calibration (``read_calibration``): the training time of
one more model, trained alone on the same device and recipe, that the default time
limit derives from (docs/protocol.md: retraining means one model trained alone, timed warm).
It is measured by :mod:`scoring.references.build` (:mod:`scoring.references.calibration`:
the median of several models after a discarded warm-up, every time recorded) and is none of
the reference models. Beside it, ``limit_vs_references`` says how the default limit compares
with the references' own training times (``limit_against_references``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from scoring.checks import is_number
from scoring.outputs import SECRET_ENV, ModelOutputs, derive_seed
from scoring.references.calibration import limit_against_references
from starter_kit.atomic import write_bytes, write_json

if TYPE_CHECKING:
    from starter_kit.splits import Split

INDEX_FILE = "index.json"
LAYOUT_VERSION = 2  # 2: index.json records each model file's sha256 (1 did not; its files are checked by content)


class DamagedModel(ValueError):
    """A reference model file that cannot be trusted: unreadable, or not what index.json recorded."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path} is damaged ({reason})")
        self.path, self.reason = path, reason


def reference_seed(manifest_sha256: str, index: int) -> int:
    return derive_seed("reference", manifest_sha256, index)


def calibration_seed(manifest_sha256: str) -> int:
    """The seed of the calibration model: its own purpose, so it is none of the references' or runs'."""
    return derive_seed("calibration", manifest_sha256, 0)


def _seed_cause(split: Split, name: str, index: int) -> str:
    """Why a reference file's seed is not this split's, and the fix: the secret it was trained with differs."""
    fix = "or train a new set into another --refs folder (the references and every score must use one secret)"
    unsealed = derive_seed("reference", split.manifest_sha256, index, secret="")
    if name == f"model-{index:04d}-seed-{unsealed}.npz":
        return (
            f"the set was trained without ${SECRET_ENV}, which is set now: unset it to use this set (its seeds "
            f"are computable by anyone), {fix}"
        )
    if os.environ.get(SECRET_ENV):
        return (
            f"the set was trained with another ${SECRET_ENV} than the one set now: "
            f"set the one it was trained with, {fix}"
        )
    return (
        f"the set was trained with ${SECRET_ENV} set, which is unset now: set the same secret again; if it is "
        f"lost, this set cannot be used: {fix.removeprefix('or ')}"
    )


def model_file(split: Split, index: int) -> str:
    return f"model-{index:04d}-seed-{reference_seed(split.manifest_sha256, index)}.npz"


def model_key(split: Split, index: int) -> dict[str, Any]:
    """What produced reference model ``index`` of ``split``: a file is reused only if this matches."""
    return {
        "manifest_sha256": split.manifest_sha256,
        "recipe": split.recipe.to_dict(),
        "index": index,
        "seed": reference_seed(split.manifest_sha256, index),
    }


def check_index(split: Split, directory: Path) -> None:
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


def recorded_files(directory: Path) -> dict[str, str]:
    """{file name: sha256} as index.json recorded them (empty for a layout-1 index or none)."""
    path = directory / INDEX_FILE
    if not path.is_file():
        return {}
    try:
        models = json.loads(path.read_text())["models"]
        return {m["file"]: m["file_sha256"] for m in models if "file_sha256" in m}
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise ValueError(f"{path} is damaged: delete it (the model files are kept and re-checked)") from None


def read_calibration(directory: Path) -> dict[str, Any] | None:
    """The calibration index.json records (None: none yet, as in sets built before it existed)."""
    path = directory / INDEX_FILE
    if not path.is_file():
        return None
    try:
        calibration = json.loads(path.read_text()).get("calibration")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        raise ValueError(f"{path} is damaged: delete it (the model files are kept and re-checked)") from None
    if calibration is None:
        return None
    seconds = calibration.get("seconds") if isinstance(calibration, dict) else None
    if not is_number(seconds) or not 0 < seconds < float("inf"):
        raise ValueError(
            f"{path} holds a damaged calibration (seconds {seconds!r}): measure it again with "
            "'python -m scoring references ... --calibrate'"
        )
    return cast(dict[str, Any], calibration)


def read_model(split: Split, directory: Path, index: int, file_sha256: str | None = None) -> dict[str, Any] | None:
    """Model ``index`` if its file exists (None if not).

    Raises :class:`DamagedModel` when the file is not ``file_sha256`` (what index.json
    recorded), cannot be read or fails its content sha256; ValueError when it belongs
    to another split or recipe.
    """
    path = directory / model_file(split, index)
    if not path.is_file():
        stray = [p.name for p in directory.glob(f"model-{index:04d}-seed-*.npz")] if directory.is_dir() else []
        if stray:
            raise ValueError(
                f"{directory} holds another model {index} than this split gives: {_seed_cause(split, stray[0], index)}"
            )
        return None
    try:
        blob = path.read_bytes()
    except OSError as error:
        raise DamagedModel(path, f"cannot be read: {error.strerror or error}") from None
    if not blob.startswith(b"PK"):  # np.load would take any other bytes for a pickle and say so
        raise DamagedModel(path, "unreadable: not an .npz archive")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            forget_logits = archive["forget_logits"]
            forget_conf = archive["forget_conf"]
        if not isinstance(meta, dict):
            raise ValueError("meta is not a JSON object")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise DamagedModel(path, f"unreadable: {type(error).__name__}: {error}") from None
    expected = model_key(split, index)
    if meta.get("key") != expected:
        found = meta["key"] if isinstance(meta.get("key"), dict) else {}
        differs = sorted(k for k in expected if found.get(k) != expected[k])
        raise ValueError(
            f"{path} was made for another split or recipe ({', '.join(differs)} differ): "
            "it is never reused; delete it or choose another --refs"
        )
    file_sha = hashlib.sha256(blob).hexdigest()
    if file_sha256 is not None and file_sha != file_sha256:
        raise DamagedModel(path, f"its sha256 is not the one index.json recorded, {file_sha256[:12]}...")
    n_forget = len(split.indices["forget"])
    if forget_conf.shape != (n_forget,):
        raise DamagedModel(path, f"it holds {forget_conf.shape} confidences, expected ({n_forget},)")
    if forget_logits.shape[:1] != (n_forget,):
        raise DamagedModel(path, f"it holds {forget_logits.shape} logits, expected {n_forget} rows")
    try:
        content = content_sha256(meta["key"], meta["accuracies"], forget_logits, forget_conf)
    except (KeyError, TypeError, ValueError) as error:
        raise DamagedModel(path, f"incomplete: {type(error).__name__}: {error}") from None
    if content != meta.get("content_sha256"):
        raise DamagedModel(path, "its arrays do not match their content sha256")
    return {"meta": meta, "forget_logits": forget_logits, "forget_conf": forget_conf, "file_sha256": file_sha}


def content_sha256(
    key: dict[str, Any], accuracies: dict[str, float], forget_logits: np.ndarray, forget_conf: np.ndarray
) -> str:
    digest = hashlib.sha256(json.dumps({"key": key, "accuracies": accuracies}, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(forget_logits, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(forget_conf, dtype=np.float64).tobytes())
    return digest.hexdigest()


def write_model(split: Split, directory: Path, index: int, result: dict[str, Any]) -> dict[str, Any]:
    """Write model ``index`` from a task's result; return its meta (plus the file's sha256, for the index)."""
    outputs: ModelOutputs = result["outputs"]
    key = model_key(split, index)
    accuracies = outputs.accuracies()
    meta = {
        "key": key,
        "accuracies": accuracies,
        "content_sha256": content_sha256(key, accuracies, outputs.forget_logits, outputs.forget_conf),
        "training_seconds": round(result["training_seconds"], 4),
        "evaluation_seconds": round(outputs.seconds, 4),
        "torch_threads": int(result["torch_threads"]),
        "device": result["device"],
        "training": result["training"],
        "kit_version": result["kit_version"],
        "torch_version": result["torch_version"],
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
    blob = buffer.getvalue()
    write_bytes(directory / model_file(split, index), blob)
    return {**meta, "file_sha256": hashlib.sha256(blob).hexdigest()}


def write_index(
    split: Split, directory: Path, present: dict[int, dict[str, Any]], calibration: dict[str, Any] | None = None
) -> None:
    """index.json for the models ``present`` ({index: meta}) and the set's ``calibration`` (None: none yet)."""
    models = [
        {
            "index": index,
            "seed": meta["key"]["seed"],
            "file": model_file(split, index),
            "file_sha256": meta["file_sha256"],
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
            "calibration": calibration,
            "limit_vs_references": limit_against_references(
                calibration,
                [float(meta["training_seconds"]) for meta in present.values()],
                max((int(meta.get("training", {}).get("models_together", 1)) for meta in present.values()), default=1),
            ),
        },
    )
