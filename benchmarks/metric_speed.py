"""Speed of scoring.metric.forgetting beside the literal dense transcription, in one run.

The fast metric runs on every example (the competition's N = 512, |S| = 5,000 by
default); the dense one (scoring.metric.transcription: every sample against every
threshold and interval) on the first few only: it takes about 0.3 s each at N = 512.
Both see the same realistic input, and their epsilons must agree on the shared
examples. Seconds per example are comparable; the ratio is dense / fast.

    python benchmarks/metric_speed.py [--n-models 512] [--n-examples 5000] [--dense-examples 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import time

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


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-models", type=int, default=512, help="N, models per side")
    parser.add_argument("--n-examples", type=int, default=5000, help="|S| for the fast metric")
    parser.add_argument("--dense-examples", type=int, default=3, help="examples for the dense one")
    parser.add_argument("--serial-examples", type=int, default=500, help="examples for the fast one on one core")
    parser.add_argument("--jobs", type=int, help="workers for the fast metric (default: every core)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    unlearned, retrained = realistic_confidences(args.n_models, args.n_examples, args.seed)
    metric.per_example_epsilons(unlearned[:, :1], retrained[:, :1])  # builds the (TP, FP) table once
    fast, fast_s = _timed(lambda: metric.per_example_epsilons(unlearned, retrained, n_jobs=args.jobs))
    k = min(args.serial_examples, args.n_examples)
    _, serial_s = _timed(lambda: metric.per_example_epsilons(unlearned[:, :k], retrained[:, :k], n_jobs=1))
    d = min(args.dense_examples, args.n_examples)
    dense, dense_s = _timed(lambda: metric_reference.per_example_epsilons(unlearned[:, :d], retrained[:, :d]))
    if not np.allclose(fast[:d], dense, rtol=1e-12, atol=0):
        raise SystemExit(f"fast and dense epsilons differ: {fast[:d]} vs {dense}")

    dense_per = dense_s / d
    rows = [
        ("scoring.metric.forgetting, all cores", args.n_examples, fast_s),
        ("scoring.metric.forgetting, one core", k, serial_s),
        ("metric_reference (dense)", d, dense_s),
    ]
    table = pd.DataFrame(
        [
            {
                "implementation": name,
                "examples": n,
                "seconds": round(seconds, 3),
                "ms / example": round(1e3 * seconds / n, 3),
                "dense / this": round(dense_per / (seconds / n), 1),
            }
            for name, n, seconds in rows
        ]
    )
    f = metric.forgetting_quality_from_epsilons(fast, args.n_models)
    print(
        f"N = {args.n_models} models, S = {args.n_examples} forget examples, F = {f:.4f}; "
        f"fast and dense agree on the first {d} epsilons"
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
