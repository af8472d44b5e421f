"""Shared by the scorer's tests: one tiny split, one reference set and one score per test session.

The split is digits with its recipe cut to 2 epochs (a model trains in about half a
second on one thread); the reference set holds 4 models; the score is the fine-tuning
submission at N = 4. Each is built once, however many test modules ask for it, and
everything runs on one torch thread: on a small, busy machine two threads can be many
times slower than one. Tests that change a shared folder change a copy of it.

Under pytest-xdist (``make test`` runs two workers) the first worker to ask builds each
folder in the run's shared temporary root, under a file lock, and the others reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
import torch

from data_prep.build import BuildOptions, build_split
from scoring.references.build import build_references
from scoring.score import ScoreOptions, score_submission
from starter_kit.splits import load_split

HERE = Path(__file__).resolve().parent
N_REFERENCES = 4
_built: dict[str, Path] = {}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` once per test run, however many workers ask; returns the folder.

    Without xdist, a folder of this session; under xdist, one in the root the workers
    share, built by whichever asks first while the others wait on its lock.
    """
    if name not in _built:
        root = tmp_path_factory.getbasetemp()
        if os.environ.get("PYTEST_XDIST_WORKER"):
            root = root.parent  # the run's folder, above each worker's own
        folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
        with open(root / f"shared-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                done.touch()
        _built[name] = folder
    return _built[name]


def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def build(folder: Path) -> None:
        with one_thread():
            build_split(
                BuildOptions(dataset="digits", split="public", out=folder / "digits-public", epochs=2, progress=False)
            )

    return built_once(tmp_path_factory, "scoring-split", build) / "digits-public"


def refs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def build(folder: Path) -> None:
        with one_thread():
            build_references(load_split(split_dir(tmp_path_factory)), N_REFERENCES, folder / "refs", progress=False)

    return built_once(tmp_path_factory, "scoring-refs", build) / "refs"


def fine_tune_score_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fine_tune.py`` scored at N = 4 against ``refs_dir``, with no organiser secret set (run seeds in score.json)."""
    from scoring.outputs import SECRET_ENV

    def build(folder: Path) -> None:
        split, refs = split_dir(tmp_path_factory), refs_dir(tmp_path_factory)
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv(SECRET_ENV, raising=False)
            score(split, refs, HERE / "fine_tune.py", folder / "fine-tune", n_models=4)

    return built_once(tmp_path_factory, "scoring-fine-tune", build) / "fine-tune"


def write_py(directory: Path, source: str, name: str = "submission.py") -> Path:
    path = Path(directory) / name
    path.write_text(source)
    return path


def write_notebook(directory: Path, cells: list[tuple[str, list[str]]], name: str = "submission.ipynb") -> Path:
    """A notebook of code cells given as (source, tags)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": tags}) for source, tags in cells]
    path = Path(directory) / name
    nbformat.write(notebook, str(path))
    return path


def score(split: Path, refs: Path, submission: Path, out: Path, n_models: int = 2, **options) -> dict:
    """score_submission on one thread, quietly, with a generous time limit unless given."""
    options.setdefault("time_limit", 30.0)
    with one_thread():
        record = score_submission(
            ScoreOptions(
                submission=submission,
                split_dir=split,
                n_models=n_models,
                out=out,
                refs_dir=refs,
                threads=1,
                progress=False,
                **options,
            )
        )
    on_disk = json.loads((Path(out) / "score.json").read_text())
    assert on_disk["status"] == record["status"] and on_disk["reason"] == record["reason"]
    return on_disk
