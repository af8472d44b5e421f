"""What the sandbox costs: start-up per submission and time per run, sealed vs a plain worker.

    .venv/bin/python benchmarks/sandbox_cost.py [--repeats 5] [--runs 16]

Builds a small digits split (2-epoch recipe) in a temporary folder, then runs an
identity submission (it returns its model at once, so a run's time is the scorer's and
the worker's own overhead) through ``run_submission`` with ``sealed=True`` and
``sealed=False``, alternating, on one torch thread. Prints the median over repeats of:
the worker's start-up (process start, torch import, device warm-up), the submission's
load, the mean and 95th percentile of the per-run time, and the whole ingestion wall
time; then the sealed / plain ratios, all measured in this one run.
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
        "load (s)": result.load_seconds,
        "run mean (ms)": 1e3 * seconds.mean(),
        "run p95 (ms)": 1e3 * np.percentile(seconds, 95),
        "ingestion wall (s)": result.wall_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="submissions per mode (default 5)")
    parser.add_argument("--runs", type=int, default=16, help="runs per submission (default 16)")
    args = parser.parse_args()
    problem = sandbox_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        split = load_split(
            build_split(
                BuildOptions(dataset="digits", split="public", out=Path(folder) / "split", epochs=2, progress=False)
            )
        )
        job = job_from_split(split, IDENTITY, "identity.py", threads=1)
        rows: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for _ in range(args.repeats):
            for sealed in (False, True):
                rows[sealed].append(measure(job, args.runs, sealed))
    table = pd.DataFrame(
        {("sealed (bwrap)" if sealed else "plain worker"): pd.DataFrame(r).median() for sealed, r in rows.items()}
    ).T
    table.loc["sealed - plain"] = table.loc["sealed (bwrap)"] - table.loc["plain worker"]
    table.loc["sealed / plain"] = table.loc["sealed (bwrap)"] / table.loc["plain worker"]
    print(f"digits, identity submission, {args.runs} runs per submission, median of {args.repeats} submissions each:")
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(table.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
