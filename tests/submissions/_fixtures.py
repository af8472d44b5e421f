"""Shared by the scorer's tests: one tiny split, one reference set and one score per test session.

The split is digits with its recipe cut to 2 epochs (a model trains in about half a
second on one thread); the reference set holds 4 models; the score is the fine-tuning
submission at N = 4. Each is built once, however many test modules ask for it, and
everything runs on one torch thread: on a small, busy machine two threads can be many
times slower than one. Tests that change a shared folder change a copy of it.
"""

from __future__ import annotations

import contextlib
import json
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
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def split_dir(tmp_path_factory) -> Path:
    if "split" not in _built:
        out = tmp_path_factory.mktemp("scoring-split") / "digits-public"
        with one_thread():
            build_split(BuildOptions(dataset="digits", split="public", out=out, epochs=2, progress=False))
        _built["split"] = out
    return _built["split"]


def refs_dir(tmp_path_factory) -> Path:
    if "refs" not in _built:
        out = tmp_path_factory.mktemp("scoring-refs") / "refs"
        with one_thread():
            build_references(load_split(split_dir(tmp_path_factory)), N_REFERENCES, out, progress=False)
        _built["refs"] = out
    return _built["refs"]


def fine_tune_score_dir(tmp_path_factory) -> Path:
    """``fine_tune.py`` scored at N = 4 against ``refs_dir``, with no organiser secret set (run seeds in score.json)."""
    if "fine-tune" not in _built:
        from scoring.outputs import SECRET_ENV

        out = tmp_path_factory.mktemp("scoring-fine-tune") / "fine-tune"
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv(SECRET_ENV, raising=False)
            score(split_dir(tmp_path_factory), refs_dir(tmp_path_factory), HERE / "fine_tune.py", out, n_models=4)
        _built["fine-tune"] = out
    return _built["fine-tune"]


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
