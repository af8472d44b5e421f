"""The record's types read as fields: each item's type, audience and whether it is required."""

from __future__ import annotations

import typing
from typing import Any, NotRequired

from scoring.record.types import ORGANISERS, Audience


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


def is_typed_dict(value: Any) -> bool:
    return isinstance(value, type) and typing.is_typeddict(value)
