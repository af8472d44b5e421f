"""score.json, defined once: its typed fields, who may see each, its JSON Schema and its checks.

Every field is a ``TypedDict`` item annotated with its audience: ``Public`` (what a
participant may receive: their report, a published leaderboard, a public copy of the
record) or ``Organisers`` (seeds, the organisers' paths and machines: what would help
an attacker or is no one else's business). An organisers-only section hides everything
under it; a public section lists its own fields' audiences. Organisers-only fields are
never required, so the participants' copy is a valid score.json of the same version.

From these types come the published JSON Schema (``schema()``, shipped as
``scoring/score.schema.json``), the checks of a record when it is written
(``check_written``) and when a file is read (``read_score``: one line naming the file and
the field), and the participants' copy (``public_view``: the public fields only).
Nothing here imports torch or the sandbox: readers (leaderboards, pages) import it cheaply.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

SCORE_FILE = "score.json"
SCHEMA_FILE = Path(__file__).with_name("score.schema.json")
SCHEMA_VERSION = 1  # raise on any change to the types below; ``schema()`` then changes the shipped file
STATUSES = ("scored", "rejected", "failed")


class Audience(str):
    """Who may see a field: the marker in ``Annotated[type, PUBLIC]``."""


PUBLIC = Audience("public")
ORGANISERS = Audience("organisers")

# Shorthands: Public[float] is a float participants may see, Organisers[str] one they never see.
T = typing.TypeVar("T")
Public = Annotated[T, PUBLIC]
Organisers = Annotated[T, ORGANISERS]
Number = float | None  # NaN and infinity are written as null
Interval = tuple[float, float]  # (low, high)


class Submission(TypedDict):
    name: Public[str]
    path: NotRequired[Organisers[str]]  # where the organisers kept the file


class Split(TypedDict):
    dataset: Public[str]
    name: Public[str]
    forget_strategy: Public[str]
    dir: NotRequired[Organisers[str]]


class Calibration(TypedDict):
    when: Public[str | None]
    measured_at: Public[str | None]
    device: Public[str | None]
    torch_threads: Public[int | None]
    host: NotRequired[Organisers[str | None]]  # the organisers' machine
    excludes: Public[str | None]


class LimitBasis(TypedDict):
    used: Public[str]
    alone_seconds: Public[Number]
    shared_seconds: Public[Number]
    calibration: NotRequired[Public[Calibration]]


class Time(TypedDict):
    """Run times as the scorer measured them, and the rule they are held to (local or Codabench)."""

    limit_seconds: Public[float]
    limit_rule: Public[str]
    rule: NotRequired[Public[str]]
    hard_kill_seconds: NotRequired[Public[float]]
    measured_by: NotRequired[Public[str]]
    reference_mean_training_seconds: Public[Number]
    alone_training_seconds: NotRequired[Public[Number]]
    limit_basis: NotRequired[Public[LimitBasis]]
    reference_torch_threads: NotRequired[Public[list[int]]]
    setup_seconds: NotRequired[Public[Number]]
    runs_completed: NotRequired[Public[int]]
    load_seconds: NotRequired[Public[Number]]
    mean_seconds: NotRequired[Public[Number]]
    p95_seconds: NotRequired[Public[Number]]
    std_seconds: NotRequired[Public[Number]]
    min_seconds: NotRequired[Public[Number]]
    median_seconds: NotRequired[Public[Number]]
    max_seconds: NotRequired[Public[Number]]
    total_seconds: NotRequired[Public[Number]]
    charged_mean_seconds: NotRequired[Public[Number]]
    ingestion_elapsed_seconds: NotRequired[Public[float]]  # Codabench: the worker's wall time


class Limits(TypedDict):
    memory_bytes: Public[int]
    setup_seconds: Public[float]


class Sha256(TypedDict):
    submission: NotRequired[Public[str]]
    split_manifest: Public[str]
    reference_set: Public[str]


class References(TypedDict):
    dir: NotRequired[Organisers[str]]
    n_used: Public[int]


class Processes(TypedDict):
    left_running: Public[int]
    survived_kill: Public[int]
    cap: Public[int]
    cap_reached: Public[bool]
    memory_cap_reached: Public[bool]
    cgroups_missing: Public[list[str]]


class Output(TypedDict):
    bytes: Public[int]
    truncated: Public[bool]
    file: Public[str]


class Timing(TypedDict):
    ingestion_seconds: Public[float]
    evaluation_seconds: Public[float]
    metric_seconds: NotRequired[Public[float]]


class Run(TypedDict):
    """One run: its times and accuracies, and (scored) its diagnostics."""

    index: Public[int]
    seed: NotRequired[Organisers[int]]
    seconds: NotRequired[Public[float]]
    reported_seconds: Public[Number]
    retain_accuracy: NotRequired[Public[float]]
    forget_accuracy: NotRequired[Public[float]]
    test_accuracy: NotRequired[Public[float]]
    distance: NotRequired[Public[float]]
    mean_z: NotRequired[Public[float]]
    retrained_like: NotRequired[Public[bool]]
    group: NotRequired[Public[int]]


class Epsilons(TypedDict):
    mean: Public[float]
    median: Public[float]
    share_at_cap: Public[float]
    bin_width: Public[float]
    bin_counts: Public[list[int]]
    undefined_examples: Public[int]


class Intervals(TypedDict):
    """(low, high) at ``confidence_level`` of each term that has one."""

    score: NotRequired[Public[Interval]]
    F: NotRequired[Public[Interval]]
    normalised_score: NotRequired[Public[Interval]]
    RA_U: NotRequired[Public[Interval]]
    FA_U: NotRequired[Public[Interval]]
    TA_U: NotRequired[Public[Interval]]
    RA_R: NotRequired[Public[Interval]]
    FA_R: NotRequired[Public[Interval]]
    TA_R: NotRequired[Public[Interval]]


class ModelsOnly(TypedDict):
    degrees_of_freedom: Public[Number]
    low: Public[Number]
    high: Public[Number]
    standard_error: Public[Number]


class StandardErrors(TypedDict):
    examples: Public[Number]
    models: Public[Number]
    models_shared: Public[Number]


class Uncertainty(TypedDict):
    method: Public[str]
    confidence_level: Public[float]
    n_resamples: Public[int]
    n_groups: Public[int]
    group_size: Public[int]
    n_model_examples: Public[int]
    random_state: Public[int]  # the kit's fixed resampling seed (public code), not a run seed
    standard_error: Public[Number]
    standard_errors: Public[StandardErrors]
    models_only: Public[ModelsOnly]
    score_standard_error: Public[Number]


class AccuracyIntervals(TypedDict):
    method: Public[str]
    n_resamples: Public[int]
    random_state: Public[int]


class Ceiling(TypedDict):
    """The estimator's ceiling at N: F of retraining against retraining (``scoring.assess.ceiling``)."""

    value: Public[float]
    low: Public[float]
    high: Public[float]
    standard_error: Public[float]
    splits: Public[list[float]]
    spread: Public[float]
    n_models: Public[int]
    n_models_requested: Public[int]
    n_references: Public[int]
    n_references_used: Public[int]
    reduced: Public[bool]
    note: Public[str | None]
    n_splits: Public[int]
    random_state: Public[int]
    reference_set_sha256: Public[str]


class PerRun(TypedDict):
    distance: Public[list[float]]
    mean_z: Public[list[float]]
    retrained_like: Public[list[bool]]
    group: Public[list[int]]


class Diagnostics(TypedDict):
    per_run: Public[PerRun]
    flags: Public[list[str]]
    identical: Public[bool]
    mixture: Public[bool]
    duplicates: Public[bool]
    duplicate_groups: Public[list[list[int]]]
    n_distinct_runs: Public[int]
    mixture_separation: Public[Number]
    mixture_threshold: Public[Number]
    reference_distance_max: Public[float]
    statistic: Public[str]


class Klom(TypedDict):
    mean: Public[float]
    median: Public[float]
    percentiles: Public[dict[str, float]]
    max: Public[float]
    n_bins: Public[int]
    floor: Public[float]
    clip: Public[float]
    n_models: Public[int]
    n_examples: Public[int]
    paper: Public[str]
    better: Public[str]


class Ulira(TypedDict):
    mean: Public[float]
    median: Public[float]
    paper: Public[str]
    better: Public[str]


class Auxiliary(TypedDict):
    klom: Public[Klom]
    ulira: NotRequired[Public[Ulira]]


class ScoreRecord(TypedDict):
    """score.json (``scoring.score``; the Codabench scoring program's record has the same type)."""

    schema_version: Public[int]
    status: Public[Literal["scored", "rejected", "failed"]]
    reason: Public[str | None]  # the team's own: it may quote their submission's output
    team: NotRequired[Public[str | None]]
    submission: Public[Submission]
    split: Public[Split]
    sealed: Public[bool]
    N: Public[int]
    n_forget: Public[int]
    score: Public[Number]
    F: Public[Number]
    RA_U: Public[Number]
    TA_U: Public[Number]
    FA_U: Public[Number]
    RA_R: Public[Number]
    TA_R: Public[Number]
    FA_R: Public[Number]
    retain_ratio: NotRequired[Public[Number]]
    test_ratio: NotRequired[Public[Number]]
    time: Public[Time]
    limits: NotRequired[Public[Limits]]
    sha256: Public[Sha256]
    references: NotRequired[Public[References]]
    kit_version: Public[str]
    torch_version: Public[str]
    torch_threads: Public[int]
    device: Public[str]
    processes: NotRequired[Public[Processes]]
    output: NotRequired[Public[Output]]
    timing: NotRequired[Public[Timing]]
    runs: Public[list[Run]]
    run_seeds: NotRequired[Organisers[list[int]]]  # only without a scoring secret; still no one else's
    scored_at: NotRequired[Public[str]]
    files: NotRequired[Public[list[str]]]
    epsilons: NotRequired[Public[Epsilons]]
    confidence_level: NotRequired[Public[float]]
    intervals: NotRequired[Public[Intervals]]
    uncertainty: NotRequired[Public[Uncertainty]]
    accuracy_intervals: NotRequired[Public[AccuracyIntervals]]
    ceiling: NotRequired[Public[Ceiling]]
    normalised_score: NotRequired[Public[Number]]
    normalised_score_note: NotRequired[Public[str]]
    diagnostics: NotRequired[Public[Diagnostics]]
    auxiliary: NotRequired[Public[Auxiliary]]


# ----------------------------------------------------------------------------------
# The types read as fields.


def _field_type(hint: Any, where: str) -> tuple[Any, Audience, bool]:
    """(the value's type, its audience, required) of one TypedDict item; TypeError without an audience."""
    required = True
    while typing.get_origin(hint) in (NotRequired, typing.Required):
        required = typing.get_origin(hint) is not NotRequired
        (hint,) = typing.get_args(hint)
    audiences = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Audience)]
    if len(audiences) != 1:
        raise TypeError(f"score record field {where!r} needs one audience: Public[...] or Organisers[...]")
    if audiences[0] == ORGANISERS and required:  # the public copy must be a valid score.json too
        raise TypeError(f"score record field {where!r} is organisers-only: make it NotRequired[...]")
    return hint.__origin__, audiences[0], required


def fields(typed: type) -> dict[str, tuple[Any, Audience, bool]]:
    """{name: (type, audience, required)} of a TypedDict of this module."""
    hints = typing.get_type_hints(typed, include_extras=True)
    return {name: _field_type(hint, f"{typed.__name__}.{name}") for name, hint in hints.items()}


def _is_typed_dict(value: Any) -> bool:
    return isinstance(value, type) and typing.is_typeddict(value)


# ----------------------------------------------------------------------------------
# The JSON Schema.


def _schema_of(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one type, TypedDicts as references into ``definitions``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return {}
    if hint is type(None):
        return {"type": "null"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [_schema_of(arg, definitions) for arg in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema_of(args[0], definitions)}
    if origin is tuple:
        items = [_schema_of(arg, definitions) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(args[1], definitions)}
    if _is_typed_dict(hint):
        name = hint.__name__
        if name not in definitions:
            definitions[name] = {}  # placeholder against recursion
            found = fields(hint)
            definitions[name] = {
                "type": "object",
                "properties": {
                    key: {**_schema_of(kind, definitions), "x-audience": str(audience)}
                    for key, (kind, audience, _) in found.items()
                },
                "required": [key for key, (_, _, required) in found.items() if required],
                "additionalProperties": False,
            }
            if hint.__doc__:
                definitions[name]["description"] = " ".join(hint.__doc__.split())
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no JSON Schema for {hint!r}")


def schema() -> dict[str, Any]:
    """The JSON Schema of score.json at ``SCHEMA_VERSION``; each property says its audience (``x-audience``)."""
    definitions: dict[str, Any] = {}
    _schema_of(ScoreRecord, definitions)
    top = definitions.pop("ScoreRecord")
    top["properties"]["schema_version"]["const"] = SCHEMA_VERSION
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://unlearning-kit.invalid/score.schema.v{SCHEMA_VERSION}.json",
        "title": f"score.json, version {SCHEMA_VERSION}",
        **top,
        "$defs": dict(sorted(definitions.items())),
    }


def schema_text() -> str:
    """``schema()`` as the shipped file holds it."""
    return json.dumps(schema(), indent=2) + "\n"


# ----------------------------------------------------------------------------------
# Checking a record.


def problem(record: Any) -> str | None:
    """What is wrong with ``record`` against the schema, as "field 'a.b' ..."; None when it is valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_shipped_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(record))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = next(key for key in error.validator_value if key not in error.instance)
        return f"field '{'.'.join(filter(None, [where, missing]))}' is missing"
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = next(key for key in error.instance if key not in known)
        return f"field '{'.'.join(filter(None, [where, extra]))}' is not one score.json has"
    if error.validator == "const" and where == "schema_version":
        return f"field 'schema_version' is {error.instance!r}, this kit reads {SCHEMA_VERSION}"
    return f"field '{where or '(top)'}' is invalid ({error.message[:120]})"


_SCHEMA: dict[str, Any] = {}


def _shipped_schema() -> dict[str, Any]:
    if not _SCHEMA:
        _SCHEMA.update(json.loads(SCHEMA_FILE.read_text()))
    return _SCHEMA


def check_written(record: Any) -> None:
    """Before score.json is written: a record the schema refuses is the kit's own bug (ValueError)."""
    found = problem(record)
    if found is not None:
        raise ValueError(f"the scorer built a score.json that its schema refuses: {found}")


def read_score(path: str | Path) -> ScoreRecord:
    """The record in a score.json file; ValueError in one line naming the file and the field."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    except ValueError:
        raise ValueError(f"{path}: not JSON (a truncated or foreign file?)") from None
    found = problem(record)
    if found is not None:
        raise ValueError(f"{path}: {found} ({_whose(record)})")
    return typing.cast(ScoreRecord, record)


def _whose(record: Any) -> str:
    """What an invalid file probably is, and what to do about it."""
    version = record.get("schema_version") if isinstance(record, dict) else None
    again = "score it again with `python -m scoring score ... --replace`"
    if not isinstance(version, int) or version < SCHEMA_VERSION:
        return f"written by an older kit? {again}"
    if version > SCHEMA_VERSION:
        return "written by a newer kit: read it with that kit"
    return f"not written by this kit, or edited? {again}"


# ----------------------------------------------------------------------------------
# What participants see.


def public_view(value: Any, typed: Any = ScoreRecord) -> Any:
    """A copy of a record (or of one of its sections, with its type) holding its public fields only.

    Keys the types do not name are dropped too: only what is declared public is ever shown.
    """
    if _is_typed_dict(typed):
        if not isinstance(value, dict):
            return value
        known = fields(typed)
        return {
            key: public_view(item, known[key][0])
            for key, item in value.items()
            if key in known and known[key][1] == PUBLIC
        }
    origin, args = typing.get_origin(typed), typing.get_args(typed)
    if origin in (types.UnionType, typing.Union):
        section = next((arg for arg in args if _is_typed_dict(arg) or typing.get_origin(arg) is list), None)
        return value if section is None else public_view(value, section)
    if origin is list and isinstance(value, list):
        return [public_view(item, args[0]) for item in value]
    return value


def public_keys(typed: Any = ScoreRecord, prefix: str = "") -> set[str]:
    """Every dotted field name that ``public_view`` keeps ("runs.index" for each run's index)."""
    keys: set[str] = set()
    if typing.get_origin(typed) is list:
        return public_keys(typing.get_args(typed)[0], prefix)
    if _is_typed_dict(typed):
        for key, (kind, audience, _) in fields(typed).items():
            if audience == PUBLIC:
                keys.add(prefix + key)
                keys |= public_keys(kind, f"{prefix}{key}.")
    return keys


if __name__ == "__main__":  # python -m scoring.record > scoring/score.schema.json
    print(schema_text(), end="")
