"""The ``references``, ``score``, ``leaderboard`` and ``publish`` subcommands of ``python -m scoring``.

Thin: parse, call one function, print. Hook them into a parser with
``add_commands(subparsers)``; each subparser sets ``handler(args) -> exit code``.
Exit codes: 0 done (for ``score``: scored), 1 the submission was rejected or failed
(its reason is printed and in score.json); ``scoring.__main__`` turns errors to fix into
one line on stderr and exit code 2, and an interruption into 130.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from starter_kit.devices import parse_device

GIB = 2**30
DEFAULT_THREADS = 1  # tiny models run fastest, and time most steadily, on one thread
# Reference models trained at once per process on a GPU: 0.69 s per model-epoch in
# aggregate against 0.82 alone on an H100 (benchmarks/gpu_train_speed.py, rows f and g).
MODELS_TOGETHER_ON_CUDA = 4


def add_commands(subparsers) -> None:
    """Add ``references``, ``score`` and ``leaderboard`` to an argparse subparsers object."""
    refs = subparsers.add_parser(
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
    refs.set_defaults(handler=references_command)

    score = subparsers.add_parser(
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
        help=(
            "limit on the mean run time in seconds "
            "(default 20%% of retraining one model alone, the references' calibration)"
        ),
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
    score.set_defaults(handler=score_command)

    bench = subparsers.add_parser(
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
    bench.set_defaults(handler=benchmark_command)

    rehearse = subparsers.add_parser(
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
    rehearse.set_defaults(handler=rehearse_command)

    again = subparsers.add_parser(
        "recompute",
        help="recompute a score folder's score and statistics from its saved arrays alone",
        description="Read OUT's confidence arrays and accuracies (unlearned_conf.npy, runs.csv, organisers/) and "
        "recompute the official score, its intervals, the normalised score, the diagnostics and the auxiliary "
        "metrics, without any model; say whether they match score.json (exit 0) or not (exit 1).",
    )
    again.add_argument("folder", type=Path, help="a folder written by 'python -m scoring score'")
    again.set_defaults(handler=recompute_command)

    board = subparsers.add_parser(
        "leaderboard",
        help="rank every scored submission under a results folder",
        description="Collect every score.json under a folder and rank the teams, public and private split side "
        "by side; write the table as CSV and HTML. The page links into the score folders, which hold organisers/: "
        "it is the organisers' view; publish with 'python -m scoring publish'.",
    )
    board.add_argument("--results", required=True, type=Path, help="folder the score folders were written under")
    board.add_argument("--csv", type=Path, help="where to write the table (default RESULTS/leaderboard.csv)")
    _phase(board, "final")
    board.set_defaults(handler=leaderboard_command)

    publish = subparsers.add_parser(
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
    publish.set_defaults(handler=publish_command)

    from scoring.hosting.cli import add_codabench

    add_codabench(subparsers)


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


def _backend(args, per_task: int = 1):
    """The :mod:`scoring.backends.interface` backend that --backend and its options ask for; a task holds
    ``per_task`` units."""
    from scoring.backends.interface import make_backend

    return make_backend(
        args.backend,
        jobs=getattr(args, "jobs", 1),
        address=args.ray_address,
        cpus=None if args.cpus_per_model is None else args.cpus_per_model * per_task,
        gpus=None if args.gpus_per_model is None else args.gpus_per_model * per_task,
        threads=args.threads,
        device=args.device,
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _setup(args) -> None:
    from starter_kit.devices import check_available
    from starter_kit.training import use_threads

    use_threads(args.threads)
    check_available(args.device)


def references_command(args) -> int:
    from scoring.assess import recompute as assessment
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
    print(describe_ceiling(assessment.reference_ceiling(split, args.n_models, refs.directory), args.n_models))
    return 0


def describe_ceiling(ceiling: dict | None, n_models: int) -> str:
    """The estimator's ceiling in two lines: what a perfect unlearning scores at this N."""
    if ceiling is None:
        return f"  ceiling: needs N >= 3 and at least 6 references (N = {n_models})"
    text = (
        f"  ceiling: F of retraining itself at N = {ceiling['n_models']}: {ceiling['value']:.4f} "
        f"[{ceiling['low']:.3f}, {ceiling['high']:.3f}], over {ceiling['n_splits']} random splits of "
        f"{ceiling['n_references_used']} references into halves of {ceiling['n_models']}"
    )
    if ceiling.get("reduced"):
        text += (
            f"\n           ({ceiling['note']}: scores at N = {n_models} get no normalised score; "
            f"train {2 * n_models} references for a ceiling at N = {n_models})"
        )
    return text


def score_command(args) -> int:
    from scoring.html.summary import summary_text
    from scoring.ranking.teams import check_team

    if args.team is None:
        raise ValueError(
            f"--team is missing: name the team (or participant) that handed in {args.submission.name}, "
            "e.g. --team team-a (the leaderboard ranks teams; a file name is no identity)"
        )
    check_team(args.team)
    _setup(args)
    with _backend(args) as backend:
        record = _score(args, backend if args.backend == "ray" else None)
    print(summary_text(record, args.out))
    return 0 if record["status"] == "scored" else 1


def _score(args, backend) -> dict:
    from scoring.score import ScoreOptions, score_submission

    return score_submission(
        ScoreOptions(
            submission=args.submission,
            team=args.team,
            replace=args.replace,
            split_dir=args.split_dir,
            n_models=args.n_models,
            out=args.out,
            refs_dir=args.refs,
            time_limit=args.time_limit,
            unsealed=args.unsealed,
            backend=backend,
            memory_bytes=None if args.memory_limit is None else int(args.memory_limit * GIB),
            setup_limit=args.setup_limit,
            threads=args.threads,
            device=args.device,
            progress=not args.quiet,
        )
    )


def leaderboard_command(args) -> int:
    from scoring.html.pages import render_leaderboard, report_links
    from scoring.ranking.leaderboard import (
        LEADERBOARD_FILE,
        collect_scores,
        format_leaderboard,
        leaderboard,
        not_ranked,
        write_leaderboard,
    )
    from starter_kit.atomic import write_bytes

    scores = collect_scores(args.results)
    if scores.empty:
        raise ValueError(f"no score.json under {args.results}: score a submission with 'python -m scoring score'")
    table, others = leaderboard(scores, args.phase), not_ranked(scores, args.phase)
    path = write_leaderboard(table, args.csv or args.results / LEADERBOARD_FILE)
    page = path.with_suffix(".html")
    write_bytes(page, render_leaderboard(table, others, report_links(scores, page.parent)).encode())
    print(format_leaderboard(table, others))
    print(
        f"\nwrote {path} and {page} ({args.phase} phase; "
        f"the organisers' view: publish with 'python -m scoring publish')"
    )
    return 0


def publish_command(args) -> int:
    from scoring.ranking.publish import publish

    published = publish(args.results, args.out, args.phase)
    print(
        f"published the {args.phase} leaderboard of {published['entries']} "
        f"entr{'y' if published['entries'] == 1 else 'ies'} "
        f"and {published['reports']} report(s) into {args.out}: {', '.join(published['files'])}"
    )
    return 0


def recompute_command(args) -> int:
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


def benchmark_command(args) -> int:
    from scoring.bench.zoo import run_benchmark
    from scoring.ranking.leaderboard import collect_scores, format_leaderboard, leaderboard, not_ranked
    from scoring.score import ScoreOptions
    from starter_kit.splits import load_split

    _setup(args)
    split = load_split(args.split_dir)
    out = (
        args.out
        or Path("results") / "benchmark" / f"{split.dataset.name}-{split.manifest['split']['name']}-N{args.n_models}"
    )
    options = ScoreOptions(
        submission=Path("-"),
        split_dir=args.split_dir,
        n_models=args.n_models,
        out=out,
        refs_dir=args.refs,
        time_limit=args.time_limit,
        threads=args.threads,
        device=args.device,
        unsealed=args.unsealed,
    )
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


def rehearse_command(args) -> int:
    from scoring.bench.rehearsal import RehearsalOptions, passed, run_rehearsal, verdict

    _setup(args)
    result = run_rehearsal(
        RehearsalOptions(
            dataset=args.dataset,
            n_models=args.n_models,
            out=args.out,
            device=args.device,
            epochs=args.epochs,
            model=args.model,
            jobs=args.jobs,
            threads=args.threads,
            unsealed=args.unsealed,
            progress=not args.quiet,
        )
    )
    print(verdict(result))
    return 0 if passed(result) else 1
