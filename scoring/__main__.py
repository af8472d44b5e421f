"""``python -m scoring <command>``: the scorer's command line.

Thin on purpose: parse, call the function that does the work, print. Each command is
one ``commands.add_parser`` block in ``parser()`` plus one handler ``_name(args) -> int``
set as its ``handler``. Bad input of any kind ends with one ``error: ...`` line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scoring.cli import add_commands


class _UsageError(Exception):
    """A command line argparse rejects; main turns it into one error line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage, then exit
        raise _UsageError(f"{message} (see {self.prog} --help)")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of threads, got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m scoring", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)

    metric = commands.add_parser(
        "metric",
        help="forgetting quality F of unlearned vs retrained confidences",
        description="F, N, S and examples per epsilon bin for two [n_models, n_examples] .npy "
        "arrays of logit-scaled confidences of the forget set.",
    )
    metric.add_argument("unlearned", type=Path, help=".npy [n_models, n_examples] under the unlearned models")
    metric.add_argument("retrained", type=Path, help=".npy [n_models, n_examples] under the retrained models")
    metric.add_argument("--out", type=Path, help="write the per-example epsilons [n_examples] to this .npy")
    metric.add_argument("--jobs", type=_jobs, help="threads (default: every core)")
    metric.set_defaults(handler=_metric)
    add_commands(commands)  # references, score, leaderboard
    return top


def _metric(args: argparse.Namespace) -> int:
    from scoring.metric.files import format_report, run_metric

    report = run_metric(args.unlearned, args.retrained, out=args.out, n_jobs=args.jobs)
    print(format_report(report))
    if args.out is not None:
        print(f"epsilons written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return args.handler(args)
    except (_UsageError, ValueError, OSError) as error:
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


if __name__ == "__main__":
    sys.exit(main())
