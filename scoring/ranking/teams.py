"""Who a submission is from: the team (or participant) name a score records and the leaderboard ranks.

A file name is no identity: two teams may both hand in ``starter.ipynb``, byte for byte
the same. So ``scoring score`` records the team it was told (``--team``), and the
leaderboard keeps one entry per team, never merging teams whose files are identical.
A name is shown on pages and in CSV files, so it is kept plain: letters, digits,
spaces and ``. _ - + @``, at most 64 characters.
"""

from __future__ import annotations

import re

MAX_LENGTH = 64
_NAME = re.compile(r"[^\W_][\w .+@-]*", re.UNICODE)  # starts with a letter or digit


def check_team(name: object) -> str:
    """``name`` stripped, or ValueError saying what a team name may hold."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            "the team name is empty: give the team (or participant) that handed the submission in, e.g. --team team-a"
        )
    name = name.strip()
    if len(name) > MAX_LENGTH or not _NAME.fullmatch(name) or "  " in name:
        raise ValueError(
            f"team name {name[:80]!r} is not accepted: use at most {MAX_LENGTH} letters, digits, single spaces "
            "and . _ - + @, starting with a letter or digit"
        )
    return name
