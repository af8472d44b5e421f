"""score.json, defined once: its typed fields, who may see each, its JSON Schema and its checks.

Every field is a ``TypedDict`` item annotated with its audience: ``Public`` (what a
participant may receive: their report, a published leaderboard, a public copy of the
record) or ``Organisers`` (seeds, the organisers' paths and machines: what would help
an attacker or is no one else's business). An organisers-only section hides everything
under it; a public section lists its own fields' audiences. Organisers-only fields are
never required, so the participants' copy is a valid score.json of the same version.

The types are ``scoring.record.types``; how they read as fields with their audiences,
``fields``; from them come the published JSON Schema (``schema``: ``schema()``, shipped as
``scoring/score.schema.json``, regenerated with ``python -m scoring.record``), the checks
of a record when it is written (``checks.check_written``) and when a file is read
(``checks.read_score``: one line naming the file and the field), and the participants'
copy (``public``: ``public_view``, the public fields only).
Nothing here imports torch or the sandbox: readers (leaderboards, pages) import it cheaply.
"""

from scoring.record.checks import check_written, problem, read_score
from scoring.record.public import public_fields, public_keys, public_view
from scoring.record.types import SCHEMA_FILE, SCHEMA_VERSION, SCORE_FILE, ScoreRecord

__all__ = [
    "SCHEMA_FILE",
    "SCHEMA_VERSION",
    "SCORE_FILE",
    "ScoreRecord",
    "check_written",
    "problem",
    "public_fields",
    "public_keys",
    "public_view",
    "read_score",
]
