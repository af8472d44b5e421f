"""``python -m scoring codabench``: the parser of its two steps, ``export`` and ``run``.

Its own module because the bundle's options are many (phases, limits, the queue, storage);
``scoring.cli.parser`` adds it beside the other commands with :func:`add_codabench`.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

import scoring.cli.handlers as handlers


def add_codabench(commands: argparse._SubParsersAction[Any]) -> None:
    """The ``codabench`` command and its ``export`` and ``run`` steps, each with its handler."""
    codabench = commands.add_parser(
        "codabench",
        help="host the challenge on Codabench: export a bundle, run a submission through it offline",
        description="Export a Codabench competition bundle ('export'), or run a submission through one exactly "
        "as Codabench's compute worker would ('run'). 'python -m scoring codabench COMMAND --help' describes each.",
    )
    steps = codabench.add_subparsers(dest="codabench_command", required=True, parser_class=type(codabench))
    export = steps.add_parser(
        "export",
        help="write the competition bundle (folder and zip)",
        description="Write a Codabench competition bundle (competition.yaml, version 2) into OUT/bundle/ and "
        "OUT/bundle.zip: a development phase on the public split and, with --private-split, a final phase on the "
        "private one, each with its input data, reference data (precomputed: scoring never trains), ingestion and "
        "scoring programs, leaderboard and pages. Train each split's references first ('python -m scoring "
        "references', 2N of them for the ceiling at N).",
    )
    export.add_argument("--public-split", required=True, type=Path, help="the development phase's split directory")
    export.add_argument("--public-refs", type=Path, help="its reference folder (default results/references/...)")
    export.add_argument(
        "--private-split", type=Path, help="the final phase's split directory (left out: no final phase)"
    )
    export.add_argument("--private-refs", type=Path, help="its reference folder (default results/references/...)")
    export.add_argument("--n-models", required=True, type=int, help="N for the development phase")
    export.add_argument("--final-n-models", type=int, help="N for the final phase (default --n-models)")
    export.add_argument("--out", required=True, type=Path, help="writes OUT/bundle/ and OUT/bundle.zip")
    export.add_argument(
        "--title", default="Machine Unlearning Challenge", help="the competition's title (default %(default)s)"
    )
    export.add_argument(
        "--docker-image",
        help="the image the compute workers run (default unlearning-kit/codabench:<kit "
        "version>, built from scoring/hosting/Dockerfile and pushed where the workers pull from)",
    )
    export.add_argument(
        "--queue",
        help="your Codabench queue of compute workers, by its vhost: the UUID shown on the server's Queues page "
        "(default: the server's default queue, whose limit is --max-execution-time-limit)",
    )
    export.add_argument(
        "--max-execution-time-limit",
        type=int,
        default=600,
        help="without --queue, the server's MAX_EXECUTION_TIME_LIMIT in seconds (default 600, Codabench's): "
        "a phase that needs more is refused",
    )
    export.add_argument("--max-per-day", type=int, default=5, help="submissions per day and phase (default 5)")
    export.add_argument(
        "--max-submissions",
        type=int,
        default=100,
        help="submissions per participant and phase (default 100, Codabench's default when a phase sets none)",
    )
    export.add_argument(
        "--setup-seconds",
        type=float,
        help="set-up allowance not charged to the runs (default: measured here, from a do-nothing ingestion "
        "on --device, with a margin; export on a machine like the workers)",
    )
    export.add_argument(
        "--storage-quota-gb",
        type=float,
        default=15.0,
        help="each participant's storage quota on the server (default 15, Codabench's DEFAULT_USER_QUOTA)",
    )
    export.add_argument(
        "--quota-raised",
        action="store_true",
        help="you raised the participants' quota to --storage-quota-gb: export even where one submission's "
        "upload exceeds Codabench's default quota",
    )
    export.add_argument(
        "--time-limit", type=float, help="limit on the mean run time in seconds (default 20%% of retraining)"
    )
    export.add_argument("--threads", type=int, default=1, help="torch threads in both programs (default 1)")
    export.add_argument("--device", default="cpu", help="cpu or cuda: the workers' device (default cpu)")
    export.add_argument(
        "--start", type=date.fromisoformat, default=date.today(), help="the first day, YYYY-MM-DD (default today)"
    )
    export.add_argument(
        "--development-days", type=int, default=60, help="length of the development phase in days (default 60)"
    )
    export.add_argument(
        "--final-days", type=int, default=14, help="length of the final phase in days, after it (default 14)"
    )
    export.set_defaults(handler=handlers.codabench_export_command)

    run = steps.add_parser(
        "run",
        help="run a submission through a bundle's phase as Codabench's worker would",
        description="Run a submission zip through one phase of a bundle as Codabench's compute worker does: the "
        "ingestion step (the submission's N runs), its zipped output, then the scoring step, each in bubblewrap "
        "where it can start; print the scores.json Codabench would show. Exit 0 when scored, 1 when rejected or "
        "failed.",
    )
    run.add_argument("bundle", type=Path, help="bundle.zip or its folder")
    run.add_argument("submission", type=Path, help="the submission zip ('python -m starter_kit.notebook pack')")
    run.add_argument("--phase", required=True, choices=("development", "final"), help="the bundle's phase to run")
    run.add_argument(
        "--out", type=Path, help="folder for the steps' folders and scores.json (default: a new temporary one)"
    )
    run.add_argument("--pin-seeds", action="store_true", help="the run seeds 'scoring score' uses (to compare both)")
    run.add_argument(
        "--max-execution-time-limit",
        type=int,
        default=600,
        help="the server's MAX_EXECUTION_TIME_LIMIT for a bundle without a queue (default 600, Codabench's)",
    )
    run.set_defaults(handler=handlers.codabench_run_command)
