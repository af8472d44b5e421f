"""What the sandbox and per-run isolation cost: start-up per submission, time per run, sealed vs a plain worker.

    .venv/bin/python benchmarks/sandbox_cost.py [--repeats 5] [--runs 16]
    .venv/bin/python benchmarks/sandbox_cost.py --dataset synthetic-cifar10-5000-1000 --model resnet18 --repeats 2

Builds a small split (digits, or a CIFAR-shaped synthetic one: 32x32x3 images, a
ResNet-18) with a 1- or 2-epoch recipe in a temporary folder, then runs an identity
submission (it returns its model at once, so a run's time is the scorer's and the
worker's own overhead) through ``run_submission`` with ``sealed=True`` and
``sealed=False``, alternating, on one torch thread. Prints the median over repeats of:
the worker's start-up (process start, torch import, warm-up), the mean and 95th
percentile of the per-run time (the clock: the submission's load and run, the model's
transfer), the isolation per run outside the clock (each run's process forked and
ready, then every process of the run killed and waited for: ``RunRecord.isolation_seconds``),
and the whole ingestion wall time; then the sealed / plain ratios, all measured in this
one run. The start-up is what a fresh process per run would add to every run instead
of the isolation column.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.build import BuildOptions, build_split  # noqa: E402
from scoring.ingestion.limits import Limits  # noqa: E402
from scoring.ingestion.runner import job_from_split, run_submission  # noqa: E402
from scoring.ingestion.sandbox import sandbox_problem  # noqa: E402
from starter_kit.splits import load_split  # noqa: E402

IDENTITY = "def unlearning(net, retain_loader, forget_loader, val_loader):\n    return net\n"


def measure(job, runs: int, sealed: bool) -> dict:
    result = run_submission(
        job, list(range(runs)), Limits(run_seconds=30.0), lambda k, s: None, progress=False, sealed=sealed
    )
    if result.status != "completed":
        raise SystemExit(f"error: the identity submission was {result.status}: {result.reason}")
    seconds = np.array([run.seconds for run in result.runs])
    return {
        "start-up (s)": result.setup_seconds,
        "run mean (ms)": 1e3 * seconds.mean(),
        "run p95 (ms)": 1e3 * np.percentile(seconds, 95),
        "isolation/run (ms)": 1e3 * np.mean([run.isolation_seconds for run in result.runs]),
        "ingestion wall (s)": result.wall_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="submissions per mode (default 5)")
    parser.add_argument("--runs", type=int, default=16, help="runs per submission (default 16)")
    parser.add_argument("--dataset", default="digits", help="digits or synthetic-cifar10-TRAIN-TEST (default digits)")
    parser.add_argument("--model", help="the architecture (default the dataset's; resnet18 is CIFAR's cheaper one)")
    args = parser.parse_args()
    problem = sandbox_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        split = load_split(
            build_split(
                BuildOptions(
                    dataset=args.dataset,
                    split="public",
                    out=Path(folder) / "split",
                    epochs=2 if args.dataset == "digits" else 1,
                    model=args.model,
                    progress=False,
                )
            )
        )
        job = job_from_split(split, IDENTITY, "identity.py", threads=1)
        shape = "x".join(str(d) for d in split.dataset.image_shape)
        described = f"{shape}, {split.recipe.model}, {len(split.indices['retain'])} retain"
        rows: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for _ in range(args.repeats):
            for sealed in (False, True):
                rows[sealed].append(measure(job, args.runs, sealed))
    table = pd.DataFrame(
        {("sealed (bwrap)" if sealed else "plain worker"): pd.DataFrame(r).median() for sealed, r in rows.items()}
    ).T
    table.loc["sealed - plain"] = table.loc["sealed (bwrap)"] - table.loc["plain worker"]
    table.loc["sealed / plain"] = table.loc["sealed (bwrap)"] / table.loc["plain worker"]
    print(
        f"{args.dataset} ({described}), identity submission, "
        f"{args.runs} runs per submission, median of {args.repeats} submissions each:"
    )
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(table.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
