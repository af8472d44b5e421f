"""``python -m scoring <command>``: the scorer's command line.

The whole of it, parser and handlers, in this one module. Thin on purpose: parse, call
the function that does the work, print. Each command is one ``commands.add_parser``
block in ``parser()`` plus one handler ``_name(args) -> int`` set as its ``handler``:
``metric``, ``references``, ``score``, ``benchmark``, ``rehearse``, ``recompute``,
``leaderboard``, ``publish`` and ``codabench export|run``. Exit codes: 0 done (for
``score``: scored), 1 the submission was rejected or failed (its reason is printed and in
score.json; ``recompute``: the numbers differ); bad input of any kind ends with one
``error: ...`` line on stderr and exit code 2, never a traceback; an interruption, 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from scoring.backends.interface import Backend
from scoring.checks import parse_positive_int, parse_positive_number
from starter_kit.devices import parse_device

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

GIB = 2**30
DEFAULT_THREADS = 1  # tiny models run fastest, and time most steadily, on one thread
# Reference models trained at once per process on a GPU: 0.69 s per model-epoch in
# aggregate against 0.82 alone on an H100 (benchmarks/gpu_train_speed.py, rows f and g).
MODELS_TOGETHER_ON_CUDA = 4
T = TypeVar("T", bound="DataclassInstance")


class _UsageError(Exception):
    """A command line argparse rejects; main turns it into one error line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print the whole usage, then exit
        raise _UsageError(f"{message} (see {self.prog} --help)")


def _argument(parse: Callable[[str], object]) -> Callable[[str], object]:
    """``parse`` as an argparse type: its ValueError becomes argparse's message for the option."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _options(cls: type[T], args: argparse.Namespace, **given: object) -> T:
    """An options dataclass from the arguments of the same names; ``given`` sets the others."""
    named = {f.name: getattr(args, f.name) for f in fields(cls) if f.name in vars(args) and f.name not in given}
    return cls(**named, **given)


_positive = _argument(parse_positive_number)
_threads = _argument(lambda text: parse_positive_int(text, "threads"))


def parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand, each with its handler."""
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
    metric.add_argument("--jobs", type=_threads, help="threads (default: every core)")
    metric.set_defaults(handler=_metric)

    refs = commands.add_parser(
        "references",
        help="train reference models from scratch on the retain set (resumes, extends)",
        description="Train N reference models with the split's public recipe on the retain set, each with its "
        "own sealed seed; keep their forget-set confidences and accuracies. Resumes and extends: "
        "only missing models are trained.",
    )
    refs.add_argument("--split-dir", required=True, type=Path, help="split directory from 'python -m data_prep build'")
    refs.add_argument("--n-models", required=True, type=int, help="how many reference models (N)")
    refs.add_argument("--refs", type=Path, help="reference folder (default results/references/<dataset>-<split>-<sha>)")
    refs.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="models trained at once, in local worker processes (default 1; --backend local)",
    )
    refs.add_argument(
        "--models-together",
        type=int,
        metavar="K",
        help=f"models per task, trained at once in one process: on CUDA each on its own stream, the best "
        f"throughput per GPU (default {MODELS_TOGETHER_ON_CUDA} with --device cuda, 1 on the CPU); on Ray a task "
        "reserves K x --cpus-per-model and K x --gpus-per-model",
    )
    refs.add_argument(
        "--calibrate",
        action="store_true",
        help="time one model trained alone again (the default time limit's basis; measured once per folder "
        "otherwise, before the references): do it when nothing else runs on the machine",
    )
    _backend_options(refs, "model")
    _common(refs)
    refs.set_defaults(handler=_references)

    score = commands.add_parser(
        "score",
        help="run a submission N times in isolation and compute the official score",
        description="Run a submission's unlearning() N times in a sandboxed worker process, evaluate the models "
        "it returns, and write OUT/score.json with the official score against the first N reference models.",
    )
    score.add_argument("submission", type=Path, help="a .ipynb notebook (its 'submission'-tagged cells) or a .py file")
    score.add_argument("--split-dir", required=True, type=Path, help="split directory from 'python -m data_prep build'")
    score.add_argument(
        "--n-models", required=True, type=int, help="N: runs of the submission and reference models used"
    )
    score.add_argument(
        "--team",
        help="the team (or participant) that handed the submission in: the leaderboard "
        "ranks teams, never file names (required)",
    )
    score.add_argument("--out", required=True, type=Path, help="folder for score.json and its arrays (new or empty)")
    score.add_argument("--replace", action="store_true", help="replace the score that --out already holds")
    score.add_argument(
        "--refs", type=Path, help="reference folder (default results/references/<dataset>-<split>-<sha>)"
    )
    score.add_argument(
        "--time-limit",
        type=_positive,
        help="limit on the mean run time in seconds (default 20%% of retraining one model alone, "
        "the references' calibration)",
    )
    score.add_argument(
        "--unsealed",
        action="store_true",
        help="run the submission without the OS sandbox, where it cannot start; the score records sealed: false",
    )
    score.add_argument(
        "--memory-limit", type=_positive, help="GiB the submission may allocate (default half of the machine's memory)"
    )
    score.add_argument("--setup-limit", type=_positive, default=120.0, help="seconds to start the worker (default 120)")
    _backend_options(score, "chunk of runs")
    _common(score)
    score.set_defaults(handler=_score)

    bench = commands.add_parser(
        "benchmark",
        help="score every baseline and the sanity rows as sealed submissions into one leaderboard",
        description="Write every baseline of starter_kit.baselines and the sanity rows (identity, noise-only, "
        "retrain-from-scratch with its time limit lifted) as submissions, score each like a participant's "
        "(sealed, N runs, the first N reference models, reused), and rank them in OUT/leaderboard.csv and .html.",
    )
    bench.add_argument("--split-dir", required=True, type=Path, help="split directory from 'python -m data_prep build'")
    bench.add_argument(
        "--n-models", required=True, type=int, help="N: runs of each submission and reference models used"
    )
    bench.add_argument(
        "--out",
        type=Path,
        help="folder for the submissions, scores and leaderboard (default results/benchmark/<dataset>-<split>-N<N>)",
    )
    bench.add_argument(
        "--refs", type=Path, help="reference folder (default results/references/<dataset>-<split>-<sha>)"
    )
    bench.add_argument(
        "--only",
        help="comma-separated rows to score (baseline names, sanity_identity, sanity_noise, "
        "sanity_retrain; default all)",
    )
    bench.add_argument("--time-limit", type=_positive, help="limit on the mean run time (default 20%% of retraining)")
    bench.add_argument("--unsealed", action="store_true", help="score without the sandbox (recorded as sealed: false)")
    _common(bench)
    bench.set_defaults(handler=_benchmark)

    rehearse = commands.add_parser(
        "rehearse",
        help="rehearse a CIFAR-10 challenge on synthetic data: split, references, the notebook, sanity rows, a verdict",
        description="Build a synthetic CIFAR-shaped split, train N references, score the starter notebook and the "
        "sanity rows, and print a one-screen verdict with a pass/fail line per check. On the CPU the defaults are "
        "reduced (a smaller set, fewer epochs, a small ResNet); on a GPU they are the challenge's.",
    )
    rehearse.add_argument(
        "--dataset",
        default="synthetic-cifar10",
        help="synthetic-cifar10 or synthetic-cifar10-TRAIN-TEST (default synthetic-cifar10; on the "
        "CPU it stands for synthetic-cifar10-2000-500)",
    )
    rehearse.add_argument("--n-models", type=int, default=8, help="N: references and runs (default 8)")
    rehearse.add_argument(
        "--out", type=Path, default=Path("results") / "rehearsal", help="folder (default results/rehearsal)"
    )
    rehearse.add_argument(
        "--epochs", type=int, help="the recipe's epochs (default: the recipe's on CUDA, 4 on the CPU)"
    )
    rehearse.add_argument("--model", help="the architecture (default: the recipe's on CUDA, resnet_digits on the CPU)")
    rehearse.add_argument("--jobs", type=int, default=1, help="references trained at once on the CPU (default 1)")
    rehearse.add_argument(
        "--unsealed", action="store_true", help="score without the sandbox (recorded as sealed: false)"
    )
    _common(rehearse)
    rehearse.set_defaults(handler=_rehearse)

    again = commands.add_parser(
        "recompute",
        help="recompute a score folder's score and statistics from its saved arrays alone",
        description="Read OUT's confidence arrays and accuracies (unlearned_conf.npy, runs.csv, organisers/) and "
        "recompute the official score, its intervals, the normalised score, the diagnostics and the auxiliary "
        "metrics, without any model; say whether they match score.json (exit 0) or not (exit 1).",
    )
    again.add_argument("folder", type=Path, help="a folder written by 'python -m scoring score'")
    again.set_defaults(handler=_recompute)

    board = commands.add_parser(
        "leaderboard",
        help="rank every scored submission under a results folder",
        description="Collect every score.json under a folder and rank the teams, public and private split side "
        "by side; write the table as CSV and HTML. The page links into the score folders, which hold organisers/: "
        "it is the organisers' view; publish with 'python -m scoring publish'.",
    )
    board.add_argument("--results", required=True, type=Path, help="folder the score folders were written under")
    board.add_argument("--csv", type=Path, help="where to write the table (default RESULTS/leaderboard.csv)")
    _phase(board, "final")
    board.set_defaults(handler=_leaderboard)

    publish = commands.add_parser(
        "publish",
        help="write the leaderboard to publish: public fields and the ranked entries' reports only",
        description="Rank the teams of a phase and write into OUT only what may be published: leaderboard.csv "
        "and leaderboard.html with the allow-listed public columns, and the report.html of each ranked entry's "
        "counted score(s) under reports/. Nothing of organisers/, no arrays, logs or paths.",
    )
    publish.add_argument("--results", required=True, type=Path, help="folder the score folders were written under")
    publish.add_argument(
        "--out", required=True, type=Path, help="folder to publish (new, empty, or an earlier publish)"
    )
    _phase(publish, None)
    publish.set_defaults(handler=_publish)

    codabench = commands.add_parser(
        "codabench",
        help="host the challenge on Codabench: export a bundle, run one offline",
        description="Export a Codabench competition bundle, or run a submission through "
        "one exactly as Codabench's compute worker would.",
    )
    steps = codabench.add_subparsers(dest="codabench_command", required=True, parser_class=_Parser)
    export = steps.add_parser("export", help="write the competition bundle (folder and zip)")
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
    export.set_defaults(handler=_codabench_export)

    run = steps.add_parser("run", help="run a submission through a bundle's phase as Codabench's worker would")
    run.add_argument("bundle", type=Path, help="bundle.zip or its folder")
    run.add_argument("submission", type=Path, help="the submission zip ('python -m starter_kit.notebook pack')")
    run.add_argument("--phase", required=True, help="development or final")
    run.add_argument(
        "--out", type=Path, help="folder for the steps' folders and scores.json (default: a new temporary one)"
    )
    run.add_argument("--pin-seeds", action="store_true", help="the run seeds 'scoring score' uses (to compare both)")
    run.set_defaults(handler=_codabench_run)
    return top


def _phase(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--phase",
        choices=("public", "final"),
        default=default,
        required=default is None,
        help="public: during the challenge, public scores only, each team's best; final: each team's latest "
        "private score beside that submission's public one" + (f" (default {default})" if default else " (required)"),
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch CPU threads for training, runs and evaluation (default {DEFAULT_THREADS}); use the same for "
        "references and scores, since the time limit derives from the references' training time",
    )
    parser.add_argument("--device", default="cpu", type=parse_device, help="cpu (bitwise reproducible), cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _backend_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """--backend, --ray-address and the resources of one Ray task (one ``unit``: a model or a chunk of runs)."""
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where the work runs: this machine (default) or a Ray cluster, one task per " + unit,
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="the Ray cluster's head, host:port as 'ray start --head' printed it, or 'auto' "
        "(default: start a private Ray instance on this machine, on 127.0.0.1)",
    )
    parser.add_argument(
        "--cpus-per-model",
        type=_positive,
        metavar="CPUS",
        help=f"CPUs Ray reserves for the task of each {unit} (default --threads)",
    )
    parser.add_argument(
        "--gpus-per-model",
        type=_positive,
        metavar="GPUS",
        help=f"GPUs Ray reserves for the task of each {unit}, a fraction to share a GPU: 0.25 runs four on one "
        "(default 1 with --device cuda; leave it out on the CPU)",
    )


def _backend(args: argparse.Namespace, per_task: int = 1) -> Backend:
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


def _setup(args: argparse.Namespace) -> None:
    from starter_kit.devices import check_available
    from starter_kit.training import use_threads

    use_threads(args.threads)
    check_available(args.device)


def _metric(args: argparse.Namespace) -> int:
    from scoring.metric.files import format_report, run_metric

    report = run_metric(args.unlearned, args.retrained, out=args.out, n_jobs=args.jobs)
    print(format_report(report))
    if args.out is not None:
        print(f"epsilons written to {args.out}")
    return 0


def _references(args: argparse.Namespace) -> int:
    from scoring.assess.ceiling import describe_ceiling
    from scoring.assess.recompute import reference_ceiling
    from scoring.references.build import build_references, describe_references
    from starter_kit.splits import load_split

    _setup(args)
    together = args.models_together
    if together is None:
        together = MODELS_TOGETHER_ON_CUDA if args.device.startswith("cuda") else 1
    if together < 1:
        raise ValueError(f"--models-together must be at least 1, got {together}")
    split = load_split(args.split_dir)
    with _backend(args, per_task=together) as backend:
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


def _score(args: argparse.Namespace) -> int:
    from scoring.checks import check_team
    from scoring.html.summary import summary_text
    from scoring.score import ScoreOptions, score_submission

    if args.team is None:
        raise ValueError(
            f"--team is missing: name the team (or participant) that handed in {args.submission.name}, "
            "e.g. --team team-a (the leaderboard ranks teams; a file name is no identity)"
        )
    check_team(args.team)
    _setup(args)
    with _backend(args) as backend:
        options = _options(
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


def _benchmark(args: argparse.Namespace) -> int:
    from scoring.bench.zoo import default_out, run_benchmark
    from scoring.ranking.leaderboard import collect_scores, format_leaderboard, leaderboard, not_ranked
    from scoring.score import ScoreOptions
    from starter_kit.splits import load_split

    _setup(args)
    out = args.out or default_out(load_split(args.split_dir), args.n_models)
    options = _options(ScoreOptions, args, submission=Path("-"), out=out, refs_dir=args.refs)
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


def _rehearse(args: argparse.Namespace) -> int:
    from scoring.bench.rehearsal import RehearsalOptions, passed, run_rehearsal, verdict

    _setup(args)
    options = _options(RehearsalOptions, args, progress=not args.quiet)
    result = run_rehearsal(options)
    print(verdict(result))
    return 0 if passed(result) else 1


def _recompute(args: argparse.Namespace) -> int:
    from scoring.assess.recompute import recompute
    from scoring.html.fields import with_interval

    found = recompute(args.folder)
    official, intervals = found["official"], found["assessment"]["intervals"]
    print(
        f"score {with_interval(official['score'], intervals.get('score'))} "
        f"= F {with_interval(official['F'], intervals.get('F'))} "
        f"x RA {official['RA_U']:.4f}/{official['RA_R']:.4f} x TA {official['TA_U']:.4f}/{official['TA_R']:.4f}"
    )
    if found["matches"]:
        print(f"matches {args.folder / 'score.json'}: every recorded number recomputed from the arrays alone")
        return 0
    print(f"DIFFERS from {args.folder / 'score.json'} in: {', '.join(found['differences'])}")
    return 1


def _leaderboard(args: argparse.Namespace) -> int:
    from scoring.ranking.leaderboard import write_leaderboard_pages

    text, path, page = write_leaderboard_pages(args.results, args.csv, args.phase)
    print(text)
    print(
        f"\nwrote {path} and {page} ({args.phase} phase; "
        "the organisers' view: publish with 'python -m scoring publish')"
    )
    return 0


def _publish(args: argparse.Namespace) -> int:
    from scoring.ranking.publish import publish

    published = publish(args.results, args.out, args.phase)
    print(
        f"published the {args.phase} leaderboard of {published['entries']} "
        f"entr{'y' if published['entries'] == 1 else 'ies'} "
        f"and {published['reports']} report(s) into {args.out}: {', '.join(published['files'])}"
    )
    return 0


def _codabench_export(args: argparse.Namespace) -> int:
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
    path = export_bundle(_options(ExportOptions, args, phases=phases, docker_image=args.docker_image or DEFAULT_IMAGE))
    print(f"wrote {path.with_suffix('')}/ and {path}: upload the zip on Codabench (Benchmarks > Management > Upload)")
    return 0


def _codabench_run(args: argparse.Namespace) -> int:
    from scoring.hosting.codabench_run import run_bundle

    out = args.out or Path(tempfile.mkdtemp(prefix="codabench-run-"))
    scores = run_bundle(args.bundle, args.submission, args.phase, out, pin_seeds=args.pin_seeds)
    print(json.dumps(scores, indent=2))
    print(f"steps' folders and logs in {out}")
    return 0 if scores.get("status") == "scored" else 1


def main(argv: list[str] | None = None) -> int:
    """Run one command line; its exit code (0, 1 rejected or differs, 2 bad input, 130 interrupted)."""
    try:
        args = parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
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
