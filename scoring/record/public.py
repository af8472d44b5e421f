"""What participants see: a record's public fields, and nothing its types do not declare public."""

from __future__ import annotations

import types
import typing
from typing import Any

from scoring.record.fields import fields, is_typed_dict
from scoring.record.types import PUBLIC, ScoreRecord


def public_view(value: Any, typed: Any = ScoreRecord) -> Any:
    """A copy of a record (or of one of its sections, with its type) holding its public fields only.

    Keys the types do not name are dropped too: only what is declared public is ever shown.
    """
    if is_typed_dict(typed):
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
        section = next((arg for arg in args if is_typed_dict(arg) or typing.get_origin(arg) is list), None)
        return value if section is None else public_view(value, section)
    if origin is list and isinstance(value, list):
        return [public_view(item, args[0]) for item in value]
    return value


def public_fields(typed: Any) -> list[str]:
    """A TypedDict's public field names, in their declared order."""
    return [key for key, (_, audience, _) in fields(typed).items() if audience == PUBLIC]


def public_keys(typed: Any = ScoreRecord, prefix: str = "") -> set[str]:
    """Every dotted field name that ``public_view`` keeps ("runs.index" for each run's index)."""
    keys: set[str] = set()
    if typing.get_origin(typed) is list:
        return public_keys(typing.get_args(typed)[0], prefix)
    if is_typed_dict(typed):
        known = fields(typed)
        for key in public_fields(typed):
            keys.add(prefix + key)
            keys |= public_keys(known[key][0], f"{prefix}{key}.")
    return keys
