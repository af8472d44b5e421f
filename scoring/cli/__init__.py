"""``python -m scoring <command>``: the scorer's command line.

The whole of it in this subpackage: ``parser`` (every subcommand and its options; the
``codabench`` command's in ``codabench_parser``) and ``handlers`` (one function a
command), with ``main`` here. Thin on purpose: parse, call the function that does the
work, print. Each command is one ``commands.add_parser``
block in ``parser.parser()`` plus one ``handlers.<name>_command(args) -> int``:
``metric``, ``references``, ``score``, ``benchmark``, ``rehearse``, ``recompute``,
``leaderboard``, ``publish`` and ``codabench export|run``. Exit codes: 0 done (for
``score``: scored), 1 the submission was rejected or failed (its reason is printed and in
score.json; ``recompute``: the numbers differ); bad input of any kind ends with one
``error: ...`` line on stderr and exit code 2, never a traceback; an interruption, 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from scoring.cli.parser import UsageError, parser


def main(argv: list[str] | None = None) -> int:
    """Run one command line; its exit code (0, 1 rejected or differs, 2 bad input, 130 interrupted)."""
    try:
        args = parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (UsageError, ValueError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished files are kept, nothing half-written", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - a bug of the scorer, still one line
        if os.environ.get("SCORING_DEBUG"):
            raise
        print(
            f"error: unexpected {type(error).__name__}: {error} (set SCORING_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 2
