"""The seed a run sees, derived from the seed the scorer records: the one derivation every scorer uses.

The recorded seed (``organisers/seeds.json`` with a secret, ``score.json`` without) is
the organisers'; a run sees only :func:`derived_seed` of it, a one-way hash, so nothing a
submission prints (``torch.initial_seed()``, numpy's state) reveals the recorded one.
The official scorer, its Ray backend and any other ingestion program (a Codabench one)
must call this function and nothing else, so that a run is seeded identically everywhere.
"""

from __future__ import annotations

import hashlib

DOMAIN = b"unlearning-kit/run-seed/v1:"


def derived_seed(recorded_seed: int) -> int:
    """The seed run ``recorded_seed`` is given: the first 62 bits of SHA-256 of a fixed label and
    the decimal seed (below 2**62, so the loaders' ``seed + 1`` and torch's seed range still hold)."""
    digest = hashlib.sha256(DOMAIN + str(int(recorded_seed)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2
