"""The leaderboard: scored submissions ranked, public and private side by side, as CSV."""

import pandas as pd
import pytest
from score_records import a_record, unscored

from scoring.cli import main
from scoring.ranking.leaderboard import collect_scores, format_leaderboard, leaderboard, not_ranked
from starter_kit.atomic import write_json


def record(name, split, score, n=32, status="scored", reason=None, when="2026-01-01T00:00:00+00:00", dataset="digits"):
    value = a_record(
        submission={"name": name, "path": name},
        sha256={"submission": (name * 64)[:64], "split_manifest": "m", "reference_set": "r"},
        split={"dataset": dataset, "name": split},
        N=n,
        score=score,
        F=None if score is None else score * 2,
        RA_U=0.99,
        TA_U=0.97,
        time={"mean_seconds": 0.5},
        scored_at=when,
    )
    value.pop("intervals")
    return value if status == "scored" else unscored(value, status, reason)


@pytest.fixture
def results(tmp_path):
    scores = {
        "a/public": record("a.py", "public", 0.05),
        "a/private": record("a.py", "private", 0.04),
        "b/public": record("b.py", "public", 0.07),
        "b/private": record("b.py", "private", 0.03),
        "c/public": record("c.py", "public", 0.01),  # no private score yet
        "c/public-older": record("c.py", "public", 0.09, when="2025-01-01T00:00:00+00:00"),
        "d/public": record("d.py", "public", None, status="failed", reason="run 0 raised ZeroDivisionError"),
        "e/public-n128": record("e.py", "public", 0.02, n=128),
        ".staging/public": record("x.py", "public", 0.9),  # a half-written folder: ignored
    }
    for folder, value in scores.items():
        write_json(tmp_path / folder / "score.json", value)
    return tmp_path


def test_collects_every_score_json_but_hidden_ones(results):
    scores = collect_scores(results)
    assert len(scores) == 8 and "x.py" not in set(scores["submission"])


def test_an_old_or_foreign_score_json_is_named_with_its_field_in_one_line(results, capsys):
    old = record("o.py", "public", 0.05)
    del old["schema_version"], old["time"]["limit_seconds"]
    write_json(results / "old" / "score.json", old)
    assert main(["leaderboard", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert "old/score.json: field 'schema_version' is missing (written by an older kit?" in err and "\n" not in err
    (results / "old" / "score.json").write_text("{not json")
    with pytest.raises(ValueError, match="old/score.json: not JSON"):
        collect_scores(results)


def test_ranks_by_private_when_present_and_only_at_the_same_n(results):
    table = leaderboard(collect_scores(results))
    n32 = table[table["N"] == 32]
    assert list(n32["submission"]) == ["a.py", "b.py", "c.py"]  # private: a 0.04 > b 0.03; c has none
    assert list(n32["rank"].astype("float").fillna(-1)) == [1, 2, -1]
    assert list(n32["public score"]) == [0.05, 0.07, 0.01]  # c: the latest of its two scores
    assert pd.isna(n32["private score"].iloc[2])
    # c is told why it has no rank: its N is ranked on the private split, where it has no score
    assert (
        n32["group"].iloc[2] == "not ranked: digits, N = 32 is ranked on the private split, which this has no score on"
    )
    assert [c for c in table.columns if c.endswith(" score")] == ["public score", "private score"]
    n128 = table[table["N"] == 128]
    assert list(n128["submission"]) == ["e.py"] and n128["rank"].iloc[0] == 1  # no private at N = 128: public
    assert list(not_ranked(collect_scores(results))["submission"]) == ["d.py"]


def test_public_only_ranks_by_public(tmp_path):
    for name, score in (("a.py", 0.01), ("b.py", 0.02)):
        write_json(tmp_path / name / "score.json", record(name, "public", score))
    table = leaderboard(collect_scores(tmp_path))
    assert list(table["submission"]) == ["b.py", "a.py"] and list(table["rank"]) == [1, 2]


def test_the_command_prints_and_writes_csv(results, capsys):
    assert main(["leaderboard", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "private score" in out and "not ranked:" in out and "d.py" in out and "ZeroDivisionError" in out
    table = pd.read_csv(results / "leaderboard.csv")
    assert list(table["submission"][:2]) == ["a.py", "b.py"]
    empty = results / "empty"
    empty.mkdir()
    assert main(["leaderboard", "--results", str(empty)]) == 2 and "no score.json under" in capsys.readouterr().err


def test_shows_whether_each_score_was_sealed(tmp_path):
    write_json(tmp_path / "a" / "score.json", {**record("a.py", "public", 0.05), "sealed": True})
    write_json(tmp_path / "b" / "score.json", {**record("b.py", "public", 0.06), "sealed": False})
    table = leaderboard(collect_scores(tmp_path)).set_index("submission")
    assert table.loc["a.py", "public sealed"] == True  # noqa: E712 - a numpy bool
    assert table.loc["b.py", "public sealed"] == False  # noqa: E712


def test_intervals_overlaps_and_groups_by_reference_set(tmp_path):
    def with_interval(name, score, low, high, references="r" * 64):
        value = record(name, "public", score)
        value["intervals"] = {"score": [low, high]}
        value["sha256"]["reference_set"] = references
        return value

    write_json(tmp_path / "a" / "score.json", with_interval("a.py", 0.05, 0.04, 0.06))
    write_json(tmp_path / "b" / "score.json", with_interval("b.py", 0.045, 0.035, 0.055))  # overlaps a
    write_json(tmp_path / "c" / "score.json", with_interval("c.py", 0.01, 0.005, 0.015))  # clearly below b
    write_json(tmp_path / "d" / "score.json", with_interval("d.py", 0.02, 0.01, 0.03, references="q" * 64))
    table = leaderboard(collect_scores(tmp_path)).set_index("submission")
    assert list(table.loc[["a.py", "b.py", "c.py"], "rank"]) == [1, 2, 3]
    assert pd.isna(table.loc["a.py", "overlaps_above"]) and table.loc["b.py", "overlaps_above"] == True  # noqa: E712
    assert table.loc["c.py", "overlaps_above"] == False  # noqa: E712
    assert table.loc["d.py", "rank"] == 1 and "references qqqq" in table.loc["d.py", "group"]  # its own group
    assert table.loc["a.py", "group"] != table.loc["d.py", "group"]
    text = format_leaderboard(leaderboard(collect_scores(tmp_path)), not_ranked(collect_scores(tmp_path)))
    assert "0.0450 [0.035, 0.055]" in text and "~" in text and "never ranked together" in text
    assert "digits, N = 32, public references rrrrrrrrrrrr:" in text


def test_an_interval_its_record_calls_approximate_is_marked_and_its_note_said_once(tmp_path):
    note = "approximate at N = 8: the coverage of the intervals ... is measured at N >= 16 only"
    for name, n, score in (("a.py", 8, 0.05), ("b.py", 8, 0.03), ("c.py", 32, 0.04)):
        value = record(name, "public", score, n=n)
        value["intervals"] = {"score": [score - 0.01, score + 0.01], **({"note": note} if n == 8 else {})}
        write_json(tmp_path / name / "score.json", value)
    scores = collect_scores(tmp_path)
    table = leaderboard(scores).set_index("submission")
    assert table.loc["a.py", "public score_note"] == note and pd.isna(table.loc["c.py", "public score_note"])
    text = format_leaderboard(leaderboard(scores), not_ranked(scores))
    assert "0.0500 [0.040, 0.060]*" in text and "0.0300 [0.020, 0.040]*" in text
    assert "0.0400 [0.030, 0.050]" in text and "0.0400 [0.030, 0.050]*" not in text  # N = 32: no note, no mark
    assert text.count(note) == 1 and f"* : {note}" in text


def team_record(team, name, split, score, sha="s", when="2026-01-01T00:00:00+00:00", **extra):
    value = record(name, split, score, when=when, **extra)
    value["team"] = team
    value["sha256"]["submission"] = (sha * 64)[:64]
    return value


@pytest.fixture
def two_teams(tmp_path):
    """Two teams hand in the same starter.ipynb, byte for byte; team-a also an improved one."""
    scores = {
        "a-1-public": team_record("team-a", "starter.ipynb", "public", 0.05, when="2026-01-01T00:00:00+00:00"),
        "a-1-private": team_record("team-a", "starter.ipynb", "private", 0.04, when="2026-01-01T00:00:01+00:00"),
        "b-1-public": team_record("team-b", "starter.ipynb", "public", 0.05, when="2026-01-02T00:00:00+00:00"),
        "b-1-private": team_record("team-b", "starter.ipynb", "private", 0.045, when="2026-01-02T00:00:01+00:00"),
        "a-2-public": team_record("team-a", "mine.ipynb", "public", 0.02, sha="m", when="2026-01-03T00:00:00+00:00"),
        "a-3-public": team_record(
            "team-a",
            "mine.ipynb",
            "public",
            None,
            sha="n",
            status="failed",
            reason="run 0 raised KeyError",
            when="2026-01-04T00:00:00+00:00",
        ),
    }
    for folder, value in scores.items():
        write_json(tmp_path / folder / "score.json", value)
    return tmp_path


def test_teams_with_identical_files_are_two_entries_each_with_its_private_score(two_teams):
    table = leaderboard(collect_scores(two_teams), "final").set_index("team")
    assert sorted(table.index) == ["team-a", "team-b"] and table["rank"].notna().all()
    assert table.loc["team-a", "private score"] == 0.04 and table.loc["team-b", "private score"] == 0.045
    assert list(table["rank"].sort_values()) == [1, 2] and table.loc["team-b", "rank"] == 1
    # final: the latest private score, beside the public score of that same submission (not the team's best)
    assert table.loc["team-a", "public score"] == 0.05 and table.loc["team-a", "submission"] == "starter.ipynb"
    assert table.loc["team-a", "entries"] == 1


def test_the_public_phase_shows_public_scores_only_and_each_teams_best(two_teams):
    scores = collect_scores(two_teams)
    table = leaderboard(scores, "public").set_index("team")
    assert not [c for c in table.columns if "private" in c]
    assert not any("private" in str(v) for v in table["group"])
    assert table.loc["team-a", "public score"] == 0.05 and table.loc["team-a", "entries"] == 2  # best of two scored
    assert table.loc["team-b", "public score"] == 0.05 and list(table["rank"]) == [1, 1]  # a tie, both first
    others = not_ranked(scores, "public")
    assert list(others["team"]) == ["team-a"] and list(others["split"]) == ["public"]
    text = format_leaderboard(table.reset_index(), others)
    assert "team-b" in text and "team-a: mine.ipynb (digits/public, N = 32): failed: run 0 raised KeyError" in text
    with pytest.raises(ValueError, match="'during' is not one of public, final"):
        leaderboard(scores, "during")


def test_the_command_takes_a_phase(two_teams, capsys):
    assert main(["leaderboard", "--results", str(two_teams), "--phase", "public"]) == 0
    out = capsys.readouterr().out
    assert "private" not in out and "team-b" in out and "public phase" in out
    assert "private score" not in pd.read_csv(two_teams / "leaderboard.csv").columns
