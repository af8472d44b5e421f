"""score.json's one typed definition: its shipped schema, every field's audience, its checks."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pytest
from score_records import a_record

from scoring import record as score_record
from scoring.record import public_view, read_score
from scoring.record.fields import fields
from scoring.record.schema import schema_text
from scoring.record.types import ORGANISERS, PUBLIC, Organisers, Public, ScoreRecord


def every_typed_dict(typed: Any = ScoreRecord, seen: set[type] | None = None) -> set[type]:
    seen = set() if seen is None else seen
    if isinstance(typed, type) and typing.is_typeddict(typed) and typed not in seen:
        seen.add(typed)
        for kind, _, _ in fields(typed).values():
            every_typed_dict(kind, seen)
    for arg in typing.get_args(typed):
        every_typed_dict(arg, seen)
    return seen


def test_the_shipped_schema_is_the_one_the_types_generate():
    shipped = score_record.SCHEMA_FILE.read_text()
    assert shipped == schema_text(), "run: python -m scoring.record > scoring/score.schema.json"
    assert json.loads(shipped)["properties"]["schema_version"]["const"] == score_record.SCHEMA_VERSION


def test_every_field_of_every_section_has_an_audience():
    sections = every_typed_dict()
    assert len(sections) > 20
    for section in sections:
        for name, (_, audience, _) in fields(section).items():
            assert audience in (PUBLIC, ORGANISERS), f"{section.__name__}.{name}"


def test_a_field_added_without_an_audience_is_refused():
    class Grown(TypedDict):
        score: Public[float]
        rng_state: NotRequired[list[int]]

    with pytest.raises(TypeError, match="'Grown.rng_state' needs one audience"):
        fields(Grown)

    class Required(TypedDict):
        rng_state: Organisers[list[int]]

    with pytest.raises(TypeError, match="'Required.rng_state' is organisers-only: make it NotRequired"):
        fields(Required)


def test_the_scorer_s_record_is_valid_and_a_field_it_does_not_declare_is_refused():
    found = a_record()
    assert score_record.problem(found) is None
    found["rng_state"] = [1, 2, 3]
    with pytest.raises(ValueError, match="field 'rng_state' is not one score.json has"):
        score_record.check_written(found)


def test_organisers_only_fields_never_reach_the_public_view():
    found = a_record()
    found["rng_state"] = [1, 2, 3]  # a future field nobody classified: not public either
    public = public_view(found)
    text = json.dumps(public)
    assert "run_seeds" not in public and "rng_state" not in public
    assert all("seed" not in run for run in public["runs"])
    assert "/srv/organiser" not in text
    assert public["references"] == {"n_used": 4} and public["split"]["name"] == "public"
    assert public["score"] == found["score"] and len(public["runs"]) == 4
    assert score_record.problem(public) is None  # what is dropped is never required


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda r: r["time"].pop("limit_seconds"), "field 'time.limit_seconds' is missing (not written by this kit"),
        (lambda r: r.pop("schema_version"), "field 'schema_version' is missing (written by an older kit?"),
        (lambda r: r.update(schema_version=7), "field 'schema_version' is 7, this kit reads 1 (written by a newer"),
        (lambda r: r.update(schema_version=0), "field 'schema_version' is 0, this kit reads 1 (written by an older"),
        (lambda r: r.update(N="four"), "field 'N' is invalid"),
    ],
)
def test_an_old_or_foreign_file_is_named_with_its_field_in_one_line(tmp_path, change, says):
    found = a_record()
    change(found)
    path = tmp_path / "x" / "score.json"
    path.parent.mkdir()
    path.write_text(json.dumps(found))
    with pytest.raises(ValueError) as error:
        read_score(path)
    assert str(error.value).startswith(f"{path}: {says}") and "\n" not in str(error.value)


def test_a_file_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "score.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="score.json: not JSON"):
        read_score(path)
    assert read_score(_written(tmp_path, a_record()))["N"] == 4


def _written(folder: Path, found: dict[str, Any]) -> Path:
    path = folder / "good.json"
    path.write_text(json.dumps(found))
    return path


def test_an_organisers_only_or_undeclared_field_never_reaches_a_report():
    from scoring.html.pages import render_report

    found = a_record(rng_state=[918273645, 564738291])  # a future field: nobody declared it public
    found["time"]["limit_basis"] = {
        "used": "alone",
        "alone_seconds": 3.5,
        "shared_seconds": 4.0,
        "calibration": {
            "when": "alone",
            "measured_at": None,
            "device": "cpu",
            "torch_threads": 1,
            "host": "organisers-box-17",
            "excludes": "nothing",
        },
    }
    score_record.check_written({k: v for k, v in found.items() if k != "rng_state"})
    page = render_report(found)
    sealed = ["918273645", "organisers-box-17", found["references"]["dir"], found["split"]["dir"]]
    sealed += [found["submission"]["path"], *(str(seed) for seed in found["run_seeds"])]
    assert not [text for text in sealed if text in page]
    assert found["sha256"]["submission"] in page and "fine_tune.py" in page


def test_recompute_refuses_an_old_score_json_in_one_line(tmp_path, capsys):
    from scoring.cli import main

    old = a_record()
    del old["schema_version"]
    (tmp_path / "score.json").write_text(json.dumps(old))
    assert main(["recompute", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "score.json: field 'schema_version' is missing (written by an older kit?" in err and "\n" not in err
