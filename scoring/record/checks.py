"""A record against the shipped schema: when score.json is written, and when a file is read."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from scoring.record.types import SCHEMA_FILE, SCHEMA_VERSION, ScoreRecord


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
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
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
