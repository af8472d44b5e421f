"""``python -m scoring publish``: what is published is built from an allow-list, organisers' files kept apart."""

import re

import numpy as np
import pandas as pd
import pytest
from score_records import a_record, unscored

from scoring.cli import main
from scoring.ranking.publish import PUBLIC_KEYS, PUBLIC_VALUES, publish
from starter_kit.atomic import write_json

SEALED = "organisers-only-7f3a"  # stands for anything of organisers/: it must never be published


def score_folder(folder, team, split, score, sha, when, status="scored", reason=None):
    """A score folder as ``scoring score`` writes it: participant files at the top, organisers/ beside them."""
    found = a_record(
        team=team,
        submission={"name": "starter.ipynb", "path": f"/home/organiser/inbox/{team}/starter.ipynb"},
        sha256={"submission": sha * 64, "split_manifest": "m", "reference_set": "r" * 64},
        split={"dataset": "digits", "name": split, "dir": "/home/organiser/splits"},
        N=32,
        score=score,
        F=None if score is None else score * 2,
        RA_U=0.99,
        TA_U=0.97,
        time={"mean_seconds": 0.5},
        scored_at=when,
        sealed=True,
    )
    found["intervals"] = {"score": [score - 0.01, score + 0.01]} if score is not None else {}
    write_json(folder / "score.json", found if status == "scored" else unscored(found, status, reason))
    (folder / "report.html").write_text(f"<html><body>report of {team} on {split}</body></html>")
    (folder / "submission.log").write_text(f"{team}'s own output")
    np.save(folder / "unlearned_conf.npy", np.zeros((2, 3)))
    (folder / "organisers").mkdir()
    write_json(folder / "organisers" / "seeds.json", {"run_seeds": [1, 2], "note": SEALED})
    (folder / "organisers" / "retrained_accuracies.csv").write_text(f"index,{SEALED}\n")


@pytest.fixture
def results(tmp_path):
    scores = tmp_path / "results" / "scores"
    score_folder(scores / "team-a-public", "team-a", "public", 0.05, "s", "2026-01-01T00:00:00+00:00")
    score_folder(scores / "team-a-private", "team-a", "private", 0.0404, "s", "2026-01-01T00:00:01+00:00")
    score_folder(scores / "team-b-public", "team-b", "public", 0.05, "s", "2026-01-02T00:00:00+00:00")  # same file
    score_folder(scores / "team-b-private", "team-b", "private", 0.0456, "s", "2026-01-02T00:00:01+00:00")
    score_folder(
        scores / "team-c-public",
        "team-c",
        "public",
        None,
        "c",
        "2026-01-03T00:00:00+00:00",
        status="failed",
        reason="run 0 printed team-c's secret sauce",
    )
    return scores


def published_files(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


@pytest.mark.parametrize("phase", ["public", "final"])
def test_only_allow_listed_files_and_columns_are_published(results, tmp_path, phase):
    out = tmp_path / "public"
    written = publish(results, out, phase)
    splits = ["public"] if phase == "public" else ["public", "private"]
    assert published_files(out) == [
        "leaderboard.csv",
        "leaderboard.html",
        *sorted(f"reports/{row:03d}-{s}.html" for row in (1, 2) for s in splits),
    ]
    assert written["entries"] == 2 and written["reports"] == 2 * len(splits)
    everything = "".join((out / name).read_text() for name in published_files(out))
    for sealed in (SEALED, "/home/organiser", "secret sauce", "own output", "run_seeds"):
        assert sealed not in everything
    table = pd.read_csv(out / "leaderboard.csv")
    assert all(c in PUBLIC_KEYS or c.split(" ", 1)[1] in PUBLIC_VALUES for c in table.columns)
    assert sorted(table["team"]) == ["team-a", "team-b"]  # the same file, two teams, two entries
    page = (out / "leaderboard.html").read_text()
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert hrefs and all(h.startswith("reports/") and (out / h).is_file() for h in hrefs)
    reports = {(out / h).read_text() for h in hrefs}
    assert {f"<html><body>report of {t} on {s}</body></html>" for t in ("team-a", "team-b") for s in splits} == reports
    if phase == "public":  # nothing of the private split during the challenge
        assert 'data-key="private' not in page and "split first-of-split private" not in page
        assert "0.0404" not in everything and "0.0456" not in everything
    else:
        assert "0.0404" in everything and "0.0456" in everything
    assert "team-c" in page and "failed" in page  # not ranked: its team and status, never its reason


def test_publishing_again_replaces_only_an_earlier_publish(results, tmp_path, capsys):
    out = tmp_path / "public"
    assert main(["publish", "--results", str(results), "--out", str(out), "--phase", "public"]) == 0
    assert "published the public leaderboard of 2 entries and 2 report(s)" in capsys.readouterr().out
    assert main(["publish", "--results", str(results), "--out", str(out), "--phase", "final"]) == 0
    assert "0.0404" in (out / "leaderboard.csv").read_text()
    for target in (results, results.parent, tmp_path / "notes"):
        (tmp_path / "notes").mkdir(exist_ok=True)
        (tmp_path / "notes" / "todo.txt").write_text("mine")
        assert main(["publish", "--results", str(results), "--out", str(target), "--phase", "final"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "choose" in err and "--out" in err
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    assert main(["publish", "--results", str(results), "--out", str(tmp_path / "p2")]) == 2
    assert "--phase" in capsys.readouterr().err  # no default: publishing private scores by mistake costs the challenge
