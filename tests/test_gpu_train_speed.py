"""benchmarks/gpu_train_speed.py: refuses without CUDA, and its CPU smoke mode prints the whole table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_train_speed.py"


@pytest.fixture()
def bench(monkeypatch):
    """The script as an importable module (spawned workers import it by name)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module(SCRIPT.stem)


def test_without_cuda_it_refuses_in_one_line_with_exit_2(bench, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "no CUDA device" in captured.err and "--device cpu" in captured.err


def test_cpu_smoke_mode_prints_every_row_with_ratios(bench, capsys):
    """A small model keeps this to seconds; the real run uses resnet18_cifar."""
    before = torch.get_num_threads()
    try:
        code = bench.main(
            [
                "--device",
                "cpu",
                "--images",
                "256",
                "--epochs",
                "1",
                "--model",
                "resnet_digits",
                "--processes",
                "2",
                "--together",
                "2",
            ]
        )
    finally:
        torch.set_num_threads(before)
    assert code == 0
    out = capsys.readouterr().out
    rows = (
        "(a) kit loop",
        "(b) data on device",
        "(c) + device augmentation",
        "(d) + bf16 autocast",
        "(e) + CUDA graph",
        "(i) (e) + fused SGD kernel",
        "x 2 models in one process",
        "x 2 processes",
    )
    for row in rows:
        assert row in out
    assert "speed-up vs (a)" in out and "failed" not in out
