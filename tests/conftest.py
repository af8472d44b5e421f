"""Fixtures shared by several test modules; each is named for what it holds."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_prep.build import BuildOptions, build_split
from starter_kit.splits import Split, load_split


@pytest.fixture(scope="session", autouse=True)
def one_calibration_model() -> Iterator[None]:
    """Reference folders built by the tests time one calibration model after the warm-up, not three.

    The median of three is the kit's default (``scoring.references.calibration``); the
    tests build some 25 folders, and two more models each would add about 25 s of CPU to
    the suite. tests/test_calibration.py times three where it checks the median.
    """
    from scoring.references import calibration

    before = calibration.CALIBRATION_MODELS
    calibration.CALIBRATION_MODELS = 1
    yield
    calibration.CALIBRATION_MODELS = before


@pytest.fixture(scope="session")
def digits_split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits public split with its original model, built once per test run (shared by xdist's workers).

    Built with one torch thread, as ``python -m data_prep build`` does by default: the
    same checkpoint, and steady on a busy machine (see ``single_torch_thread``).
    """
    from submissions import _fixtures as kit

    def build(folder: Path) -> None:
        with kit.one_thread():
            build_split(BuildOptions(dataset="digits", split="public", out=folder / "digits-public", progress=False))

    return kit.built_once(tmp_path_factory, "digits-split", build) / "digits-public"


@pytest.fixture(scope="session")
def digits_split(digits_split_dir) -> Split:
    """``digits_split_dir`` loaded; tests must not change it (models come fresh from disk)."""
    return load_split(digits_split_dir)


@pytest.fixture(autouse=True)
def private_tmpdir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's own temporary folder (``TMPDIR``, ``tempfile``'s default), inherited by what it starts.

    Tests run two at a time (``make test``: pytest-xdist); one that checks what is left in
    the temporary folder (a worker's folders, removed after a run) sees only its own.
    """
    folder = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


@pytest.fixture()
def single_torch_thread():
    """Run a test with one torch thread, restoring the count afterwards.

    On a small machine shared with other jobs, torch's intra-op threads fighting for
    busy cores can slow small models tenfold or worse; one thread keeps timings steady.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    """The scorer's tiny test split (digits, 2-epoch recipe), built once per run; see tests/submissions/_fixtures.py."""
    from submissions import _fixtures as kit

    return kit.split_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> Path:
    """Its 4 reference models, trained once per run."""
    from submissions import _fixtures as kit

    return kit.refs_dir(tmp_path_factory)
