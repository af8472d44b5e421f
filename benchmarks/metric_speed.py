"""Speed of scoring.metric.forgetting beside the code it replaced and the dense transcription, in one run.

For each N, the same realistic input (a fine-tuning-like submission, every example its
own mean and spread) goes through three implementations of the per-example epsilons:

- today's ``scoring.metric.forgetting`` (``scoring.metric.attacks``: distinct attack
  counts enumerated directly, coarse to fine, those bounded below the best skipped), on
  one core and on every core;
- the implementation before issue 31, frozen in ``benchmarks/metric_before.py`` (one
  binary search per left end, example by example), on one core;
- the literal dense transcription (``scoring.metric.transcription``), on a few examples.

All three must give the same epsilons, bit for bit, on the examples they share. Times are
CPU seconds of this process (``time.process_time``), so the ratios hold on a loaded
machine; "before / today" is the speed-up of F at that N (F is the mean of points of
these epsilons, which costs nothing beside them).

    python benchmarks/metric_speed.py [--sizes 16x512,512x200] [--dense-examples 2] [--jobs N]
"""

from __future__ import annotations

import argparse
import time

import metric_before  # run as a script: benchmarks/ is on sys.path
import numpy as np
import pandas as pd

from scoring.metric import forgetting as metric
from scoring.metric import transcription as metric_reference


def realistic_confidences(n_models: int, n_examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(unlearned, retrained) [n_models, n_examples], normal per example as real confidences are.

    Each forget example has its own mean and spread under the retrained models (training
    examples are mostly confidently right: means around 2-3, some negative); the unlearned
    models, like a fine-tuning baseline, sit a little higher and a little narrower.
    """
    rng = np.random.default_rng(seed)
    mean = rng.normal(2.5, 2.5, n_examples)
    spread = rng.uniform(0.5, 2.0, n_examples)
    retrained = rng.normal(mean, spread, (n_models, n_examples))
    unlearned = rng.normal(
        mean + rng.normal(0.5, 0.5, n_examples), spread * rng.uniform(0.6, 1.1, n_examples), (n_models, n_examples)
    )
    return unlearned, retrained


def _cpu(fn):
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def _wall(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _rows(n_models: int, n_examples: int, dense_examples: int, jobs: int | None, seed: int) -> tuple[list[dict], float]:
    unlearned, retrained = realistic_confidences(n_models, n_examples, seed)
    metric.per_example_epsilons(unlearned[:, :1], retrained[:, :1])  # builds the (TP, FP) table once
    today, today_s = _cpu(lambda: metric.per_example_epsilons(unlearned, retrained, n_jobs=1))
    _, all_cores_s = _wall(lambda: metric.per_example_epsilons(unlearned, retrained, n_jobs=jobs))
    before, before_s = _cpu(lambda: metric_before.per_example_epsilons(unlearned, retrained))
    if not np.array_equal(today, before):
        raise SystemExit(f"N = {n_models}: today's epsilons differ from the frozen implementation's")
    d = min(dense_examples, n_examples)
    dense, dense_s = _cpu(lambda: metric_reference.per_example_epsilons(unlearned[:, :d], retrained[:, :d]))
    if not np.array_equal(today[:d], dense):
        raise SystemExit(f"N = {n_models}: today's epsilons differ from the dense transcription's")
    f = metric.forgetting_quality_from_epsilons(today, n_models)
    per = {"today": today_s / n_examples, "before": before_s / n_examples, "dense": dense_s / d}
    size = {"N": n_models, "F": round(f, 4)}
    return [
        {**size, "implementation": "today, one core (CPU s)", "examples": n_examples, "ms / example": per["today"]},
        {
            **size,
            "implementation": "today, all cores (wall s)",
            "examples": n_examples,
            "ms / example": all_cores_s / n_examples,
        },
        {**size, "implementation": "before issue 31, one core", "examples": n_examples, "ms / example": per["before"]},
        {**size, "implementation": "dense transcription, one core", "examples": d, "ms / example": per["dense"]},
    ], per["before"] / per["today"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16x512,512x200", help="comma-separated NxS pairs (N models, S examples)")
    parser.add_argument("--dense-examples", type=int, default=2, help="examples for the dense transcription")
    parser.add_argument("--jobs", type=int, help="threads for the all-cores row (default: every core)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows: list[dict] = []
    ratios: list[str] = []
    for size in args.sizes.split(","):
        n_models, n_examples = (int(part) for part in size.lower().split("x"))
        new_rows, ratio = _rows(n_models, n_examples, args.dense_examples, args.jobs, args.seed)
        rows += new_rows
        ratios.append(f"N = {n_models}: before / today = {ratio:.1f}x")
    table = pd.DataFrame(rows)
    table["ms / example"] = (1e3 * table["ms / example"]).round(4)
    print(table.to_string(index=False))
    print("; ".join(ratios) + " (CPU time, one core, same input; epsilons equal bit for bit)")


if __name__ == "__main__":
    main()
