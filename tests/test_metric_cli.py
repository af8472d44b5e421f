"""``python -m scoring metric``: the report, the epsilons file, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scoring.cli import main
from scoring.metric import forgetting as metric
from scoring.metric.files import format_report, load_confidences, run_metric

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def confidences(tmp_path):
    rng = np.random.default_rng(0)
    unlearned = rng.normal(0.3, 1.0, (8, 12))
    retrained = rng.normal(0.0, 1.0, (8, 12))
    unlearned[:, 0] = 2.0  # a deterministic example: epsilon 50 through the spread rule
    np.save(tmp_path / "u.npy", unlearned)
    np.save(tmp_path / "r.npy", retrained)
    return tmp_path, unlearned, retrained


def test_run_metric_matches_the_library_and_writes_epsilons(confidences):
    folder, unlearned, retrained = confidences
    report = run_metric(folder / "u.npy", folder / "r.npy", out=folder / "out" / "eps.npy")
    expected = metric.per_example_epsilons(unlearned, retrained)
    np.testing.assert_array_equal(report.epsilons, expected)
    np.testing.assert_array_equal(np.load(folder / "out" / "eps.npy"), expected)
    assert report.forgetting_quality == metric.forgetting_quality(unlearned, retrained)
    assert (report.n_models, report.n_examples) == (8, 12)
    assert report.bin_counts.sum() == 12 and report.bin_counts[-1] >= 1  # the 50 lies beyond every bin
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["eps.npy"]  # no temporary left behind


def test_report_lists_f_n_s_and_every_bin(confidences):
    folder, _, _ = confidences
    text = format_report(run_metric(folder / "u.npy", folder / "r.npy"))
    assert "N = 8 models" in text and "S = 12 forget examples" in text and text.startswith("F = ")
    assert "[0.0, 0.5)" in text and "[1.5, 2.0)" in text and ">= 2.0" in text  # ceil(ln 7) = 2: 4 bins


def test_main_prints_the_report(confidences, capsys):
    folder, _, _ = confidences
    assert (
        main(["metric", str(folder / "u.npy"), str(folder / "r.npy"), "--out", str(folder / "e.npy"), "--threads", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("F = ") and "epsilons written to" in out
    assert (folder / "e.npy").exists()


def _error_of(argv, capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err
    return lines[0]


def test_bad_files_give_one_error_line(confidences, capsys):
    folder, unlearned, _ = confidences
    u = str(folder / "u.npy")
    (folder / "text.npy").write_text("not numpy\n")
    (folder / "empty.npy").write_bytes(b"")
    np.savez(folder / "both.npz", a=unlearned)
    np.save(folder / "few.npy", unlearned[:5])
    np.save(folder / "one_d.npy", unlearned[0])
    nan = unlearned.copy()
    nan[2, 3] = np.nan
    np.save(folder / "nan.npy", nan)
    (folder / "truncated.npy").write_bytes((folder / "u.npy").read_bytes()[:200])
    cases = {
        "missing.npy": "No such file",
        "text.npy": "not a .npy file",
        "empty.npy": "not a .npy file",
        "both.npz": ".npz archive",
        "few.npy": "same N",
        "one_d.npy": "expected real numbers [n_models, n_examples]",
        "nan.npy": "non-finite",
        "truncated.npy": "cannot read",
    }
    for name, message in cases.items():
        assert message in _error_of(["metric", u, str(folder / name)], capsys), name
    assert "Is a directory" in _error_of(["metric", u, str(folder)], capsys)


def test_usage_errors_are_one_line_too(capsys):
    assert "required" in _error_of(["metric", "only_one.npy"], capsys)
    assert "required" in _error_of([], capsys)
    assert "--threads" in _error_of(["metric", "a.npy", "b.npy", "--threads", "0"], capsys)
    assert "invalid choice" in _error_of(["nonsense"], capsys)


def test_load_confidences_rejects_object_arrays(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read"):
        load_confidences(tmp_path / "obj.npy")


def test_python_dash_m_scoring(confidences):
    folder, _, _ = confidences
    ok = subprocess.run(
        [sys.executable, "-m", "scoring", "metric", str(folder / "u.npy"), str(folder / "r.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("F = ")
    bad = subprocess.run(
        [sys.executable, "-m", "scoring", "metric", str(folder / "u.npy"), str(folder / "nope.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
