"""``python -m scoring benchmark``: baselines and sanity rows scored as sealed submissions, one leaderboard."""

import json

import pandas as pd
from submissions import _fixtures as kit

from scoring.cli import main


def test_benchmark_scores_the_chosen_rows_into_one_leaderboard(split, refs, tmp_path, capsys):
    out = tmp_path / "bench"
    args = [
        "benchmark",
        "--split-dir",
        split,
        "--n-models",
        2,
        "--refs",
        refs,
        "--out",
        out,
        "--quiet",
        "--only",
        "finetune,sanity_identity,sanity_retrain",
        "--time-limit",
        30,
    ]
    with kit.one_thread():
        code = main([str(a) for a in args])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert sorted(p.name for p in (out / "submissions").iterdir()) == [
        "finetune.py",
        "sanity_identity.py",
        "sanity_retrain.py",
    ]
    table = pd.read_csv(out / "leaderboard.csv")
    assert sorted(table["submission"]) == ["finetune.py", "sanity_identity.py", "sanity_retrain.py"]
    assert table["public sealed"].all()
    retrain = json.loads((out / "scores" / "sanity_retrain" / "score.json").read_text())
    assert retrain["status"] == "scored" and retrain["time"]["limit_rule"].startswith("lifted")
    assert retrain["time"]["limit_seconds"] >= 1e5
    identity = json.loads((out / "scores" / "sanity_identity" / "score.json").read_text())
    assert identity["F"] == 0
    assert (out / "leaderboard.html").is_file() and (out / "scores" / "finetune" / "report.html").is_file()
    assert "time limit lifted" in stdout and "finetune.py" in stdout


def test_an_unknown_row_is_a_one_line_error(split, refs, tmp_path, capsys):
    code = main(
        [
            "benchmark",
            "--split-dir",
            str(split),
            "--n-models",
            "2",
            "--refs",
            str(refs),
            "--out",
            str(tmp_path / "b"),
            "--only",
            "finetune,oracle",
        ]
    )
    stderr = capsys.readouterr().err
    assert code == 2 and "unknown row(s) oracle" in stderr and stderr.count("\n") == 1
