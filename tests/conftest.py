"""Fixtures shared by several test modules; each is named for what it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.build import BuildOptions, build_split
from starter_kit.splits import Split, load_split


@pytest.fixture(scope="session")
def digits_split_dir(tmp_path_factory) -> Path:
    """The digits public split with its original model, built once per test session.

    Built with one torch thread, as ``python -m data_prep build`` does by default: the
    same checkpoint, and steady on a busy machine (see ``single_torch_thread``).
    """
    import torch

    out = tmp_path_factory.mktemp("digits-split") / "digits-public"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_split(BuildOptions(dataset="digits", split="public", out=out, progress=False))
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_split(digits_split_dir) -> Split:
    """``digits_split_dir`` loaded; tests must not change it (models come fresh from disk)."""
    return load_split(digits_split_dir)


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
    """The scorer's tiny test split (digits, 2-epoch recipe), built once per session;
    see tests/submissions/_fixtures.py."""
    from submissions import _fixtures as kit

    return kit.split_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> Path:
    """Its 4 reference models, trained once per session."""
    from submissions import _fixtures as kit

    return kit.refs_dir(tmp_path_factory)
