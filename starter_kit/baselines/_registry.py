"""The registry the baselines file themselves into, one ``@register`` line each.

It lives apart from the package's ``__init__`` so that a baseline's module imports
only this, never the package that imports it (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

from torch import nn

Unlearning = Callable[..., nn.Module]
Value = TypeVar("Value")


class Description(NamedTuple):
    """What a baseline does, in a few words, and where it comes from (a paper, a challenge)."""

    method: str
    source: str


BASELINES: dict[str, Unlearning] = {}
DESCRIPTIONS: dict[str, Description] = {}


def register(name: str, method: str, source: str) -> Callable[[Unlearning], Unlearning]:
    """Decorator: file the function under ``name`` with its ``method`` and ``source``; returns it unchanged.

    Import it as ``from starter_kit.baselines import register``.

    Parameters
    ----------
    name : str
        A Python identifier: what ``METHOD``, ``get_baseline`` and ``benchmark --only`` accept.
    method : str
        What the method does, in a few words (the baselines' table).
    source : str
        Where it comes from: authors, venue, year.

    Raises
    ------
    ValueError
        When ``name`` is not an identifier or another function is already registered under it.
    """
    if not name.isidentifier():
        raise ValueError(f"baseline name {name!r} is not a Python identifier: use letters, digits and underscores")

    def file_under_name(function: Unlearning) -> Unlearning:
        if name in BASELINES and BASELINES[name] is not function:
            raise ValueError(f"two baselines named {name!r}: rename one of them")
        BASELINES[name] = function
        DESCRIPTIONS[name] = Description(method, source)
        return function

    return file_under_name


def sort_by_name() -> None:
    """Order both registries by name, so that their order never depends on which module loaded first."""
    _sort_in_place(BASELINES)
    _sort_in_place(DESCRIPTIONS)


def _sort_in_place(registry: dict[str, Value]) -> None:
    entries = sorted(registry.items())
    registry.clear()
    registry.update(entries)


def methods_table() -> str:
    """The registered baselines as a text table: name, method, source."""
    width = max(map(len, [*DESCRIPTIONS, "name"])) + 2
    method_width = max(len(d.method) for d in DESCRIPTIONS.values()) + 2 if DESCRIPTIONS else 8
    rows = [("name", "method", "source"), *((name, d.method, d.source) for name, d in DESCRIPTIONS.items())]
    return "\n".join(f"    {name:<{width}}{method:<{method_width}}{source}".rstrip() for name, method, source in rows)
