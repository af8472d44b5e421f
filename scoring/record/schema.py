"""The JSON Schema of score.json, generated from ``scoring.record.types`` (never written by hand)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal

from scoring.record.fields import fields, is_typed_dict
from scoring.record.types import SCHEMA_VERSION, ScoreRecord


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
    if is_typed_dict(hint):
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
