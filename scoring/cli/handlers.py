"""The handlers of ``python -m scoring``'s commands: thin on purpose (options in, call, print).

Each takes the parsed arguments and returns the exit code: 0 done (for ``score``: scored),
1 the submission was rejected or failed (``recompute``: the numbers differ). Bad input
raises ValueError or OSError, which :func:`scoring.cli.main` prints as one line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from scoring.backends.interface import Backend

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


GIB = 2**30
# Reference models trained at once per process on a GPU: 0.69 s per model-epoch in
# aggregate against 0.82 alone on an H100 (benchmarks/gpu_train_speed.py, rows f and g).
MODELS_TOGETHER_ON_CUDA = 4
T = TypeVar("T", bound="DataclassInstance")


def options_from(cls: type[T], args: argparse.Namespace, **given: object) -> T:
    """An options dataclass from the arguments of the same names; ``given`` sets the others."""
    named = {f.name: getattr(args, f.name) for f in fields(cls) if f.name in vars(args) and f.name not in given}
    return cls(**named, **given)


def backend_from(args: argparse.Namespace, per_task: int = 1) -> Backend:
    """The backend that --backend and its options ask for; a task holds ``per_task`` units (models or chunks)."""
    from scoring.backends import make_backend

    return make_backend(
        args.backend,
        jobs=getattr(args, "jobs", 1),
        address=args.ray_address,
        cpus=None if args.cpus_per_model is None else args.cpus_per_model * per_task,
        gpus=None if args.gpus_per_model is None else args.gpus_per_model * per_task,
        threads=args.threads,
        device=args.device,
    )


def setup(args: argparse.Namespace) -> None:
    """Torch threads and the device as the command asked: the same for references and scores."""
    from starter_kit.devices import check_available
    from starter_kit.training import use_threads

    use_threads(args.threads)
    check_available(args.device)


def metric_command(args: argparse.Namespace) -> int:
    from scoring.metric.files import format_report, run_metric

    report = run_metric(args.unlearned, args.retrained, out=args.out, n_jobs=args.threads)
    print(format_report(report))
    if args.out is not None:
        print(f"epsilons written to {args.out}")
    return 0


def references_command(args: argparse.Namespace) -> int:
    from scoring.assess.recompute import reference_ceiling
    from scoring.html.summary import describe_ceiling
    from scoring.ingestion.cgroups import require_caps
    from scoring.references.build import build_references, describe_references
    from starter_kit.splits import load_split

    setup(args)
    require_caps(args.allow_missing_caps)  # the limit's basis measured where the runs will not be confined: refused
    together = args.models_together
    if together is None:
        together = MODELS_TOGETHER_ON_CUDA if args.device.startswith("cuda") else 1
    if together < 1:
        raise ValueError(f"--models-together must be at least 1, got {together}")
    split = load_split(args.split_dir)
    with backend_from(args, per_task=together) as backend:
        refs = build_references(
            split,
            args.n_models,
            args.refs,
            device=args.device,
            progress=not args.quiet,
            backend=backend,
            together=together,
            calibrate=args.calibrate,
        )
    print(describe_references(refs))
    print(describe_ceiling(reference_ceiling(split, args.n_models, refs.directory), args.n_models))
    return 0


def score_command(args: argparse.Namespace) -> int:
    from scoring.checks import check_team
    from scoring.html.summary import summary_text
    from scoring.score import ScoreOptions, score_submission

    check_team(args.team)
    setup(args)
    with backend_from(args) as backend:
        options = options_from(
            ScoreOptions,
            args,
            refs_dir=args.refs,
            backend=backend if args.backend == "ray" else None,
            memory_bytes=None if args.memory_limit is None else int(args.memory_limit * GIB),
            progress=not args.quiet,
        )
        record = score_submission(options)
    print(summary_text(record, args.out))
    return 0 if record["status"] == "scored" else 1


def benchmark_command(args: argparse.Namespace) -> int:
    from scoring.bench.zoo import default_out, run_benchmark
    from scoring.ranking.leaderboard import collect_scores, format_leaderboard, leaderboard, not_ranked
    from scoring.score import ScoreOptions
    from starter_kit.splits import load_split

    setup(args)
    out = args.out or default_out(load_split(args.split_dir), args.n_models)
    options = options_from(ScoreOptions, args, submission=Path("-"), out=out, refs_dir=args.refs)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    _, path = run_benchmark(options, names, progress=not args.quiet)
    scores = collect_scores(Path(out) / "scores")
    print(format_leaderboard(leaderboard(scores), not_ranked(scores)))
    if (Path(out) / "scores" / "sanity_retrain").is_dir():  # in the table, from this run or an earlier one
        print(
            "\nsanity_retrain: retrains from scratch with its time limit lifted "
            "(it takes as long as retraining by design)"
        )
    print(f"wrote {path} and {path.with_suffix('.html')}; each row's report under {Path(out) / 'scores'}")
    return 0


def rehearse_command(args: argparse.Namespace) -> int:
    from scoring.bench.rehearsal import RehearsalOptions, passed, run_rehearsal, verdict

    setup(args)
    options = options_from(RehearsalOptions, args, progress=not args.quiet)
    result = run_rehearsal(options)
    print(verdict(result))
    return 0 if passed(result) else 1


def recompute_command(args: argparse.Namespace) -> int:
    from scoring.assess.recompute import recompute
    from scoring.html.fields import with_interval

    found = recompute(args.folder)
    official, intervals = found["official"], found["assessment"]["intervals"]
    print(
        f"score {with_interval(official['score'], intervals.get('score'))} "
        f"= F {with_interval(official['F'], intervals.get('F'))} "
        f"x RA {official['RA_U']:.4f}/{official['RA_R']:.4f} x TA {official['TA_U']:.4f}/{official['TA_R']:.4f}"
    )
    if intervals.get("note"):  # too few models for the intervals' measured coverage
        print(f"  {intervals['note']}")
    if found["matches"]:
        print(f"matches {args.folder / 'score.json'}: every recorded number recomputed from the arrays alone")
        return 0
    print(f"DIFFERS from {args.folder / 'score.json'} in: {', '.join(found['differences'])}")
    return 1


def leaderboard_command(args: argparse.Namespace) -> int:
    from scoring.ranking.leaderboard import write_leaderboard_pages

    text, path, page = write_leaderboard_pages(args.results, args.csv, args.phase, args.rank_flagged)
    print(text)
    print(
        f"\nwrote {path} and {page} ({args.phase} phase; "
        "the organisers' view: publish with 'python -m scoring publish')"
    )
    return 0


def publish_command(args: argparse.Namespace) -> int:
    from scoring.ranking.publish import publish

    published = publish(args.results, args.out, args.phase, args.rank_flagged)
    print(
        f"published the {args.phase} leaderboard of {published['entries']} "
        f"entr{'y' if published['entries'] == 1 else 'ies'} "
        f"and {published['reports']} report(s) into {args.out}: {', '.join(published['files'])}"
    )
    return 0


def codabench_export_command(args: argparse.Namespace) -> int:
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
        options_from(ExportOptions, args, phases=phases, docker_image=args.docker_image or DEFAULT_IMAGE), say=print
    )
    print(f"wrote {path.with_suffix('')}/ and {path}: upload the zip on Codabench (Benchmarks > Management > Upload)")
    return 0


def codabench_run_command(args: argparse.Namespace) -> int:
    from scoring.hosting.codabench_run import run_bundle

    out = args.out or Path(tempfile.mkdtemp(prefix="codabench-run-"))
    scores = run_bundle(
        args.bundle,
        args.submission,
        args.phase,
        out,
        pin_seeds=args.pin_seeds,
        max_execution_time_limit=args.max_execution_time_limit,
    )
    print(json.dumps(scores, indent=2))
    print(f"steps' folders and logs in {out}")
    return 0 if scores.get("status") == "scored" else 1
