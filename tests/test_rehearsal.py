"""The rehearsal command end to end, at a tiny size: every stage runs and the verdict says what it found."""

import json

from submissions import _fixtures as kit

from scoring.cli import main

TINY = "synthetic-cifar10-100-40"  # 100 training and 40 test images: what the stages do, not how well


def test_a_tiny_rehearsal_runs_every_stage_and_prints_a_verdict(tmp_path, capsys):
    out = tmp_path / "rehearsal"
    command = [
        "rehearse",
        "--dataset",
        TINY,
        "--n-models",
        "2",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--quiet",
        "--threads",
        "1",
    ]
    with kit.one_thread():
        code = main(command)
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    text = captured.out
    for part in (
        f"rehearsal   {TINY}",
        "reduced for a CPU",
        "  original  ",
        "  refs      ",
        "  notebook  ",
        "basis: alone",
        "against the ceiling",
        "sanity identity: F = 0",
        "verdict     ",
    ):
        assert part in text, part
    lines = [line for line in text.splitlines() if line[:4] in ("PASS", "FAIL", "SKIP")]
    assert len(lines) == 8 and "PASS        sanity identity: F = 0" in text
    assert ("verdict     PASS" in text) == (code == 0) == (not any(line.startswith("FAIL") for line in lines))
    manifest = json.loads((out / "split" / "manifest.json").read_text())
    assert manifest["recipe"]["model"] == "resnet_digits" and manifest["recipe"]["epochs"] == 1
    assert json.loads((out / "notebook" / "score.json").read_text())["submission"]["name"] == "starter.ipynb"
    assert sorted(p.name for p in (out / "sanity" / "scores").iterdir()) == [
        "sanity_identity",
        "sanity_noise",
        "sanity_retrain",
    ]

    assert main(["rehearse", "--dataset", "digits", "--n-models", "2", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a rehearsal runs on synthetic-cifar10" in err
