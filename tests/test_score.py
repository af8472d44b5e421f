"""The official score end to end: the bars a scorer must clear, and its command line."""

import json
import shutil

import numpy as np
import pytest
from submissions import _fixtures as kit

from scoring.cli import main
from scoring.metric import forgetting as metric
from scoring.references.build import load_references
from starter_kit.splits import load_split

IDENTITY = "def unlearning(net, retain_loader, forget_loader, val_loader):\n    return net\n"


def cli(argv, capsys) -> tuple[int, str, str]:
    with kit.one_thread():
        code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def fine_tuned(split, refs, tmp_path_factory):
    """The fine-tuning baseline scored twice with the same seeds, N = 4 (the first: a copy of the session's score)."""
    out = tmp_path_factory.mktemp("fine-tune")
    shutil.copytree(kit.fine_tune_score_dir(tmp_path_factory), out / "first")
    first = json.loads((out / "first" / "score.json").read_text())
    second = kit.score(split, refs, kit.HERE / "fine_tune.py", out / "second", n_models=4)
    return out, first, second


def test_returning_the_original_model_scores_zero_end_to_end(split, refs, tmp_path, capsys):
    notebook = kit.write_notebook(
        tmp_path,
        [
            ("import torch", ["submission"]),
            (IDENTITY, ["submission", "parameters"]),
            ("raise SystemExit('not tagged')", []),
        ],
    )
    out = tmp_path / "identity"
    code, stdout, stderr = cli(
        [
            "score",
            notebook,
            "--team",
            "Team A",
            "--split-dir",
            split,
            "--n-models",
            4,
            "--refs",
            refs,
            "--out",
            out,
            "--threads",
            1,
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, stderr
    record = json.loads((out / "score.json").read_text())
    assert record["status"] == "scored" and record["reason"] is None and record["team"] == "Team A"
    # Deterministic: the 4 runs give identical confidences, so every example hits the
    # spread rule (epsilon 50, worth 0 points), whatever the utility.
    unlearned = np.load(out / "unlearned_conf.npy")
    assert unlearned.shape == (4, record["n_forget"]) and (unlearned == unlearned[0]).all()
    assert (np.load(out / "epsilons.npy") == 50).all()
    assert record["F"] == 0 and record["score"] == 0
    assert record["RA_U"] > 0.9 and record["TA_U"] > 0.9
    # The default per-run limit: 20% of retraining one model alone (the reference set's calibration).
    alone = load_references(load_split(split), 4, refs).calibration["seconds"]
    assert record["time"]["limit_seconds"] == pytest.approx(0.2 * alone, abs=1e-3)
    assert record["time"]["hard_kill_seconds"] == pytest.approx(0.2 * alone + 10, abs=1e-3)
    assert record["time"]["limit_basis"]["used"] == "alone" and record["time"]["alone_training_seconds"] == alone
    assert record["sealed"] is True
    assert "status      scored" in stdout and "score       0.0000" in stdout and stderr == ""
    assert (out / "score.png").read_bytes()[:4] == b"\x89PNG"


def test_the_fine_tuning_baseline_scores_above_zero_with_plausible_factors(fine_tuned):
    _, record, _ = fine_tuned
    assert record["status"] == "scored", record["reason"]
    assert 0 < record["F"] <= 1 and 0 < record["score"] <= record["F"] * 1.1
    assert 0.95 < record["retain_ratio"] < 1.05 and 0.95 < record["test_ratio"] < 1.05
    assert record["score"] == pytest.approx(record["F"] * record["retain_ratio"] * record["test_ratio"])
    assert record["N"] == 4 and len(record["runs"]) == 4 and len(set(record["run_seeds"])) == 4


def test_scoring_twice_with_the_same_seeds_gives_the_same_values(fine_tuned):
    """Two scores in one session: a bitwise promise of the kit: the same machine, seeds and torch
    threads (another CPU may differ in the last bits)."""
    out, first, second = fine_tuned
    for key in ("score", "F", "RA_U", "TA_U", "FA_U", "RA_R", "TA_R", "FA_R", "run_seeds", "epsilons", "sha256", "N"):
        assert first[key] == second[key], key
    strip = ("seconds", "reported_seconds")
    assert [{k: v for k, v in r.items() if k not in strip} for r in first["runs"]] == [
        {k: v for k, v in r.items() if k not in strip} for r in second["runs"]
    ]
    for name in ("unlearned_conf.npy", "organisers/retrained_conf.npy", "epsilons.npy"):
        assert np.array_equal(np.load(out / "first" / name), np.load(out / "second" / name)), name


def test_the_score_can_be_recomputed_from_the_files_alone(fine_tuned):
    out, record, _ = fine_tuned
    unlearned, retrained = (
        np.load(out / "first" / "unlearned_conf.npy"),
        np.load(out / "first" / "organisers" / "retrained_conf.npy"),
    )
    quality = metric.forgetting_quality(unlearned, retrained)
    assert quality == record["F"]
    assert metric.official_score(
        quality, record["RA_U"], record["TA_U"], record["RA_R"], record["TA_R"]
    ) == pytest.approx(record["score"], rel=1e-12)


def test_score_json_records_what_the_protocol_lists(fine_tuned):
    out, record, _ = fine_tuned
    for key in (
        "status",
        "reason",
        "score",
        "F",
        "RA_U",
        "TA_U",
        "RA_R",
        "TA_R",
        "FA_U",
        "FA_R",
        "N",
        "n_forget",
        "time",
        "sha256",
        "kit_version",
        "run_seeds",
        "runs",
        "sealed",
        "processes",
        "intervals",
        "uncertainty",
        "diagnostics",
        "auxiliary",
    ):
        assert key in record, key
    assert set(record["sha256"]) == {"submission", "split_manifest", "reference_set"}
    for key in (
        "limit_seconds",
        "rule",
        "hard_kill_seconds",
        "mean_seconds",
        "p95_seconds",
        "std_seconds",
        "min_seconds",
        "max_seconds",
        "load_seconds",
        "setup_seconds",
    ):
        assert key in record["time"], key
    assert sorted(p.name for p in (out / "first").iterdir()) == sorted(record["files"])
    assert not list(out.glob(".*"))  # no staging folder left behind


def test_more_models_than_references_is_a_one_line_error(split, refs, tmp_path, capsys):
    submission = kit.write_py(tmp_path, IDENTITY)
    code, stdout, stderr = cli(
        [
            "score",
            submission,
            "--team",
            "t",
            "--split-dir",
            split,
            "--n-models",
            9,
            "--refs",
            refs,
            "--out",
            tmp_path / "o",
        ],
        capsys,
    )
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert (
        "holds 4 reference model(s)" in stderr and "python -m scoring references" in stderr and "--n-models 9" in stderr
    )
    assert not (tmp_path / "o").exists()


def test_a_failed_submission_prints_its_reason_and_exits_1(split, refs, tmp_path, capsys):
    submission = kit.write_py(tmp_path, "def unlearning(net, r, f, v):\n    return None\n")
    code, stdout, stderr = cli(
        [
            "score",
            submission,
            "--team",
            "t",
            "--split-dir",
            split,
            "--n-models",
            2,
            "--refs",
            refs,
            "--out",
            tmp_path / "o",
            "--quiet",
        ],
        capsys,
    )
    assert code == 1 and stderr == ""
    assert "status      failed: run 0 returned NoneType" in stdout


def test_out_must_be_new_or_a_score_folder(split, refs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    submission = kit.write_py(tmp_path, IDENTITY)
    command = ["score", submission, "--team", "t", "--split-dir", split, "--n-models", 2, "--refs", refs, "--quiet"]
    code, _, stderr = cli([*command, "--out", out], capsys)
    assert code == 2 and "is not a score folder" in stderr
    assert (out / "precious.txt").read_text() == "keep me"
    # a score folder is replaced only when asked: scoring twice into one --out is most often a mistake
    scored = tmp_path / "scored"
    assert cli([*command, "--out", scored], capsys)[0] == 0
    first = (scored / "score.json").read_text()
    code, _, stderr = cli([*command, "--out", scored], capsys)
    assert code == 2 and stderr.count("\n") == 1 and "pass --replace to replace it, or choose another --out" in stderr
    assert (
        f"already holds a score (t's {submission.name}, scored " in stderr
        and (scored / "score.json").read_text() == first
    )
    assert cli([*command, "--out", scored, "--replace"], capsys)[0] == 0
    assert json.loads((scored / "score.json").read_text())["scored_at"] >= json.loads(first)["scored_at"]


@pytest.mark.parametrize(
    "team, message",
    [
        (None, "the following arguments are required: --team (see python -m scoring score --help)"),
        ("", "the team name is empty"),
        ("a/b", "team name 'a/b' is not accepted"),
        ("x" * 65, "at most 64"),
    ],
)
def test_a_score_needs_a_team(split, tmp_path, capsys, team, message):
    command = ["score", kit.HERE / "identity.py", "--split-dir", split, "--n-models", 2, "--out", tmp_path / "o"]
    code, _, stderr = cli([*command, *([] if team is None else ["--team", team])], capsys)
    assert code == 2 and stderr.count("\n") == 1 and message in stderr and not (tmp_path / "o").exists()


def test_a_missing_submission_or_split_is_a_one_line_error(split, refs, tmp_path, capsys):
    code, _, stderr = cli(
        [
            "score",
            tmp_path / "nope.py",
            "--team",
            "t",
            "--split-dir",
            split,
            "--n-models",
            2,
            "--refs",
            refs,
            "--out",
            tmp_path / "o",
        ],
        capsys,
    )
    assert code == 2 and "nope.py not found" in stderr and stderr.count("\n") == 1
    code, _, stderr = cli(
        [
            "score",
            kit.HERE / "identity.py",
            "--team",
            "t",
            "--split-dir",
            tmp_path,
            "--n-models",
            2,
            "--out",
            tmp_path / "o",
        ],
        capsys,
    )
    assert code == 2 and "is not a split directory" in stderr


def test_every_number_is_recomputed_from_the_saved_arrays(fine_tuned, tmp_path, capsys):
    out, record, _ = fine_tuned
    for name in ("score", "F", "RA_U", "TA_R"):
        low, high = record["intervals"][name]
        assert low <= record[name] <= high, name
    code, stdout, _ = cli(["recompute", out / "first"], capsys)
    assert code == 0 and "matches" in stdout and f"score {record['score']:.4f} [" in stdout
    assert record["intervals"]["note"] in stdout  # N = 4: approximate, printed under the score
    forged = tmp_path / "forged"
    shutil.copytree(out / "first", forged)
    changed = json.loads((forged / "score.json").read_text())
    changed["score"] *= 2
    changed["intervals"]["F"][1] += 0.1
    (forged / "score.json").write_text(json.dumps(changed))
    code, stdout, _ = cli(["recompute", forged], capsys)
    assert code == 1 and "DIFFERS" in stdout and "score" in stdout and "intervals" in stdout


def test_recompute_needs_a_scored_folder_with_its_arrays(fine_tuned, tmp_path, capsys):
    out, _, _ = fine_tuned
    code, _, stderr = cli(["recompute", tmp_path], capsys)
    assert code == 2 and "has no score.json" in stderr
    shutil.copytree(out / "first", tmp_path / "copy")
    shutil.rmtree(tmp_path / "copy" / "organisers")
    code, _, stderr = cli(["recompute", tmp_path / "copy"], capsys)
    assert code == 2 and "organisers/retrained_conf.npy" in stderr and stderr.count("\n") == 1


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda f: np.save(f / "unlearned_conf.npy", np.array([{"a": 1}], dtype=object)), "not a .npy array"),
        (lambda f: (f / "unlearned_conf.npy").write_bytes(b"\x93NUMPY garbled"), "not a .npy array"),
        (lambda f: np.save(f / "unlearned_conf.npy", np.zeros(3)), "expected a non-empty 2-D array"),
        (lambda f: np.save(f / "unlearned_conf.npy", np.full((4, 3), np.nan)), "not finite"),
        (lambda f: np.save(f / "unlearned_conf.npy", np.zeros((4, 3))), "not the same"),
        (lambda f: (f / "runs.csv").write_text("run,seed\n0,1\n"), "not a table with the columns"),
        (lambda f: (f / "score.json").write_text("[" * 100_000), "not JSON"),
    ],
)
def test_a_damaged_score_folder_is_refused_in_one_line(fine_tuned, tmp_path, capsys, damage, expected):
    """What ``recompute`` (and ``leaderboard``, ``publish``: read_score) read of a folder someone handed over."""
    out, _, _ = fine_tuned
    shutil.copytree(out / "first", tmp_path / "copy")
    damage(tmp_path / "copy")
    code, _, stderr = cli(["recompute", tmp_path / "copy"], capsys)
    assert code == 2 and expected in stderr and stderr.count("\n") == 1, stderr


def test_the_limit_rule_says_which_training_time_it_derives_from(split, refs):
    """By default one model trained alone (the calibration); a set without one falls back to the
    references' own times and says so, and that they were shares when trained together."""
    from dataclasses import replace
    from pathlib import Path

    from scoring.ingestion.limits import limit_basis, time_limit
    from scoring.score import ScoreOptions

    loaded = load_references(load_split(split), 4, refs)
    options = ScoreOptions(submission=Path("s.py"), split_dir=Path(split), n_models=4, out=Path("o"))
    limit, rule = time_limit(options, loaded)
    alone = loaded.calibration["seconds"]
    assert limit == pytest.approx(0.2 * alone) and rule.startswith(f"20% of retraining one model alone ({alone:.2f} s")
    basis = limit_basis(options, loaded)
    assert basis["used"] == "alone" and basis["alone_seconds"] == alone
    assert basis["shared_seconds"] == pytest.approx(loaded.training_seconds.mean(), abs=1e-4)
    assert basis["calibration"]["when"].startswith("alone")

    old = replace(loaded, calibration=None)  # a set built before calibrations existed
    limit, rule = time_limit(options, old)
    assert limit == pytest.approx(0.2 * loaded.training_seconds.mean()) and "no calibration" in rule
    assert "at once" not in rule and "run 'python -m scoring references' on the set again" in rule
    assert limit_basis(options, old)["used"] == "shared" and limit_basis(options, old)["alone_seconds"] is None
    shared = replace(old, models_together=np.full(4, 4))
    assert "up to 4 were trained at once per device, each timed as its share" in time_limit(options, shared)[1]
    assert limit_basis(replace(options, time_limit=3.0), loaded)["used"] == "--time-limit"


def test_runs_csv_holds_each_runs_public_fields_and_never_a_seed(fine_tuned):
    """runs.csv reaches participants: the allow-list of ``Run``'s public fields, even when
    score.json keeps the seeds (no scoring secret: they are in its organisers' fields)."""
    import pandas as pd

    from scoring.record.fields import fields
    from scoring.record.types import PUBLIC, Run
    from scoring.score import runs_table

    out, record, _ = fine_tuned
    assert "run_seeds" in record and all("seed" in run for run in record["runs"])
    runs = pd.read_csv(out / "first" / "runs.csv")
    public = [name for name, (_, audience, _) in fields(Run).items() if audience == PUBLIC]
    assert list(runs.columns) == public  # a scored run has every public field, in the declared order
    # A submission rejected before any run still gets the header, without the diagnostics' columns.
    base = ["index", "seconds", "reported_seconds", "retain_accuracy", "forget_accuracy", "test_accuracy"]
    assert runs_table([], diagnostics=False).to_csv(index=False) == ",".join(base) + "\n"
    assert runs["index"].tolist() == [run["index"] for run in record["runs"]]
    assert runs["retain_accuracy"].tolist() == [run["retain_accuracy"] for run in record["runs"]]
