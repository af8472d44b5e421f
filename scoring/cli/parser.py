"""The parser of ``python -m scoring``: every subcommand, its options and its handler.

Each command is one ``commands.add_parser`` block in ``parser()`` whose ``handler`` is a
function of :mod:`scoring.cli.handlers`; argparse's own errors become one line
(``UsageError``), never the whole usage.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from scoring.bench.rehearsal import CPU_EPOCHS, CPU_MODEL
from scoring.checks import parse_positive_int, parse_positive_number
from starter_kit.devices import parse_device

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

import scoring.cli.handlers as handlers
from scoring.cli.codabench_parser import add_codabench

DEFAULT_THREADS = 1  # tiny models run fastest, and time most steadily, on one thread
# What ``python -m scoring --help`` says first: plain text for a terminal, not this module's docstring.
DESCRIPTION = (
    "The sealed official scorer of the unlearning challenge: train reference models, score submissions in a "
    "sandbox, rank and publish them, host the challenge on Codabench. 'python -m scoring COMMAND --help' "
    "describes each command; exit codes: 0 done, 1 the submission was rejected or failed (recompute: the "
    "numbers differ), 2 bad input (one error line), 130 interrupted."
)
T = TypeVar("T", bound="DataclassInstance")


class UsageError(Exception):
    """A command line argparse rejects; main turns it into one error line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print the whole usage, then exit
        raise UsageError(f"{message} (see {self.prog} --help)")


def _argument(parse: Callable[[str], object]) -> Callable[[str], object]:
    """``parse`` as an argparse type: its ValueError becomes argparse's message for the option."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


_positive = _argument(parse_positive_number)
_threads = _argument(lambda text: parse_positive_int(text, "threads"))


def parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand, each with its handler."""
    top = _Parser(prog="python -m scoring", description=DESCRIPTION)
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
    metric.add_argument("--threads", type=_threads, help="threads computing F (default: every core)")
    metric.set_defaults(handler=handlers.metric_command)

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
        f"throughput per GPU (default {handlers.MODELS_TOGETHER_ON_CUDA} with --device cuda, 1 on the CPU); "
        "on Ray a task reserves K x --cpus-per-model and K x --gpus-per-model",
    )
    refs.add_argument(
        "--calibrate",
        action="store_true",
        help="time one model trained alone again (the default time limit's basis; measured once per folder "
        "otherwise, before the references): do it when nothing else runs on the machine",
    )
    _allow_missing_caps(refs)
    _backend_options(refs, "model", "a task of K models (--models-together) reserves K x {}")
    _common(refs)
    refs.set_defaults(handler=handlers.references_command)

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
        required=True,
        help="the team (or participant) that handed the submission in: letters, digits, spaces and . _ - + @, "
        "up to 64; the leaderboard ranks teams, never file names",
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
    _allow_missing_caps(score)
    score.add_argument(
        "--memory-limit", type=_positive, help="GiB the submission may allocate (default half of the machine's memory)"
    )
    score.add_argument("--setup-limit", type=_positive, default=120.0, help="seconds to start the worker (default 120)")
    _backend_options(score, "chunk of runs", "a task runs one chunk and reserves {} (0.25: four tasks a GPU)")
    _common(score)
    score.set_defaults(handler=handlers.score_command)

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
    bench.set_defaults(handler=handlers.benchmark_command)

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
        "--epochs", type=int, help=f"the recipe's epochs (default: the recipe's on CUDA, {CPU_EPOCHS} on the CPU)"
    )
    rehearse.add_argument("--model", help=f"the architecture (default: the recipe's on CUDA, {CPU_MODEL} on the CPU)")
    rehearse.add_argument("--jobs", type=int, default=1, help="references trained at once on the CPU (default 1)")
    rehearse.add_argument(
        "--unsealed", action="store_true", help="score without the sandbox (recorded as sealed: false)"
    )
    _common(rehearse)
    rehearse.set_defaults(handler=handlers.rehearse_command)

    again = commands.add_parser(
        "recompute",
        help="recompute a score folder's score and statistics from its saved arrays alone",
        description="Read OUT's confidence arrays and accuracies (unlearned_conf.npy, runs.csv, organisers/) and "
        "recompute the official score, its intervals, the normalised score, the diagnostics and the auxiliary "
        "metrics, without any model; say whether they match score.json (exit 0) or not (exit 1).",
    )
    again.add_argument(
        "folder", type=Path, metavar="OUT", help="a score folder, the --out of 'python -m scoring score'"
    )
    again.set_defaults(handler=handlers.recompute_command)

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
    _rank_flagged(board)
    board.set_defaults(handler=handlers.leaderboard_command)

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
    _rank_flagged(publish)
    publish.set_defaults(handler=handlers.publish_command)

    add_codabench(commands)
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


def _rank_flagged(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rank-flagged",
        action="store_true",
        help="rank scores flagged for dependence between their runs too (groups of runs closer to one another "
        "than independent runs are: scoring.assess.dependence); by default they are listed as not ranked, "
        "with the reason",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch CPU threads for training, runs and evaluation (default {DEFAULT_THREADS}); use the same for "
        "references and scores, since the time limit derives from the references' training time",
    )
    parser.add_argument(
        "--device", default="cpu", type=parse_device, help="cpu (bitwise reproducible), cuda or cuda:N (default cpu)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _allow_missing_caps(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--allow-missing-caps",
        action="store_true",
        help="go on where the kernel cannot hold every cap of the sandbox (processes, memory, cpu, freezer: "
        "cgroups not writable); scores record sealed: false and what was missing",
    )


def _backend_options(parser: argparse.ArgumentParser, unit: str, per_task: str) -> None:
    """--backend, --ray-address and what Ray reserves for one task; ``per_task`` says how, with {} for the value."""
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
        help=f"CPUs Ray reserves for each {unit}: {per_task.format('CPUS')} (default: --threads a task)",
    )
    parser.add_argument(
        "--gpus-per-model",
        type=_positive,
        metavar="GPUS",
        help=f"GPUs Ray reserves for each {unit}: {per_task.format('GPUS')}; a fraction shares a GPU "
        "between tasks (default: one GPU a task with --device cuda; leave it out on the CPU)",
    )
