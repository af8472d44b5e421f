"""``python -m scoring codabench export|run``: parse, call ``codabench_bundle`` or ``codabench_run``, print."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path


def add_codabench(subparsers) -> None:
    """Add ``codabench`` (with ``export`` and ``run``) to ``python -m scoring``'s subparsers."""
    top = subparsers.add_parser(
        "codabench",
        help="host the challenge on Codabench: export a bundle, run one offline",
        description="Export a Codabench competition bundle, or run a submission through "
        "one exactly as Codabench's compute worker would.",
    )
    commands = top.add_subparsers(dest="codabench_command", required=True, parser_class=type(top))
    export = commands.add_parser("export", help="write the competition bundle (folder and zip)")
    export.add_argument("--public-split", required=True, type=Path, help="the development phase's split directory")
    export.add_argument("--public-refs", type=Path, help="its reference folder (default results/references/...)")
    export.add_argument(
        "--private-split", type=Path, help="the final phase's split directory (left out: no final phase)"
    )
    export.add_argument("--private-refs", type=Path, help="its reference folder")
    export.add_argument("--n-models", required=True, type=int, help="N for the development phase")
    export.add_argument("--final-n-models", type=int, help="N for the final phase (default --n-models)")
    export.add_argument("--out", required=True, type=Path, help="writes OUT/bundle/ and OUT/bundle.zip")
    export.add_argument("--title", default="Machine Unlearning Challenge")
    export.add_argument(
        "--docker-image",
        help="the image the compute workers run (default unlearning-kit/codabench:<kit "
        "version>, built from scoring/hosting/Dockerfile and pushed where the workers pull from)",
    )
    export.add_argument("--queue", help="a Codabench queue of GPU compute workers (default: the public queue)")
    export.add_argument("--max-per-day", type=int, default=5, help="submissions per day and phase (default 5)")
    export.add_argument("--max-submissions", type=int, help="submissions per participant and phase (default unlimited)")
    export.add_argument(
        "--setup-seconds",
        type=float,
        default=60.0,
        help="set-up allowance not charged to the runs (container, imports, data; default 60)",
    )
    export.add_argument("--time-limit", type=float, help="limit on the mean run time (default 20%% of retraining)")
    export.add_argument("--threads", type=int, default=1, help="torch threads in both programs (default 1)")
    export.add_argument("--device", default="cpu", help="cpu or cuda (the workers' device)")
    export.add_argument("--start", type=date.fromisoformat, default=date.today(), help="first day, YYYY-MM-DD")
    export.add_argument("--development-days", type=int, default=60)
    export.add_argument("--final-days", type=int, default=14)
    export.set_defaults(handler=_export)

    run = commands.add_parser("run", help="run a submission through a bundle's phase as Codabench's worker would")
    run.add_argument("bundle", type=Path, help="bundle.zip or its folder")
    run.add_argument("submission", type=Path, help="the submission zip ('python -m starter_kit.notebook pack')")
    run.add_argument("--phase", required=True, help="development or final")
    run.add_argument(
        "--out", type=Path, help="folder for the steps' folders and scores.json (default: a new temporary one)"
    )
    run.add_argument("--pin-seeds", action="store_true", help="the run seeds 'scoring score' uses (to compare both)")
    run.set_defaults(handler=_run)


def _export(args: argparse.Namespace) -> int:
    from scoring.hosting.codabench_bundle import DEFAULT_IMAGE, ExportOptions, PhaseSpec, export_bundle

    phases = [PhaseSpec("development", args.public_split, args.public_refs, args.n_models, args.development_days)]
    if args.private_split:
        phases.append(
            PhaseSpec(
                "final",
                args.private_split,
                args.private_refs,
                args.final_n_models or args.n_models,
                args.final_days,
                downloadable=False,
            )
        )
    path = export_bundle(
        ExportOptions(
            out=args.out,
            phases=phases,
            title=args.title,
            docker_image=args.docker_image or DEFAULT_IMAGE,
            queue=args.queue,
            max_per_day=args.max_per_day,
            max_submissions=args.max_submissions,
            setup_seconds=args.setup_seconds,
            time_limit=args.time_limit,
            threads=args.threads,
            device=args.device,
            start=args.start,
        )
    )
    print(f"wrote {path.with_suffix('')}/ and {path}: upload the zip on Codabench (Benchmarks > Management > Upload)")
    return 0


def _run(args: argparse.Namespace) -> int:
    import tempfile

    from scoring.hosting.codabench_run import run_bundle

    out = args.out or Path(tempfile.mkdtemp(prefix="codabench-run-"))
    scores = run_bundle(args.bundle, args.submission, args.phase, out, pin_seeds=args.pin_seeds)
    print(json.dumps(scores, indent=2))
    print(f"steps' folders and logs in {out}")
    return 0 if scores.get("status") == "scored" else 1
