"""Cost of scoring.assess.uncertainty, .ceiling, .diagnostics and .auxiliary beside the official F, in one table.

For each (N, |S|) the same realistic confidences as benchmarks/metric_speed.py (a
fine-tuning-like submission) are scored: the official epsilons and F, the F and score
intervals (one call, default settings), the ceiling from 2N references (default splits),
the per-run diagnostics, KLoM and the likelihood-ratio attack.

    python benchmarks/uncertainty_speed.py [--sizes 32x126,512x5000] [--jobs N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from metric_speed import realistic_confidences  # run as a script: benchmarks/ is on sys.path

from scoring.assess import auxiliary, ceiling, diagnostics, uncertainty
from scoring.metric import forgetting as metric


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _rows(n_models: int, n_examples: int, jobs: int | None, seed: int) -> list[dict]:
    unlearned, retrained = realistic_confidences(n_models, n_examples, seed)
    references = np.concatenate([retrained, realistic_confidences(n_models, n_examples, seed + 1)[1]])
    rng = np.random.default_rng(seed)
    accuracies = [rng.uniform(0.85, 0.95, n_models) for _ in range(4)]
    metric.per_example_epsilons(unlearned[:, :1], retrained[:, :1])  # builds the (TP, FP) table once
    epsilons, official_s = _timed(lambda: metric.per_example_epsilons(unlearned, retrained, n_jobs=jobs))
    intervals, interval_s = _timed(
        lambda: uncertainty.score_interval(unlearned, retrained, *accuracies, n_jobs=jobs, epsilons=epsilons)
    )
    top, ceiling_s = _timed(lambda: ceiling.ceiling(references, n_models, n_jobs=jobs))
    _, diagnostics_s = _timed(lambda: diagnostics.run_diagnostics(unlearned, retrained))
    _, klom_s = _timed(lambda: auxiliary.klom_summary(unlearned, retrained))
    _, lira_s = _timed(lambda: auxiliary.likelihood_ratio_accuracy(unlearned, retrained))
    f = intervals["forgetting_quality"]
    size = {"N": n_models, "|S|": n_examples}
    return [
        {**size, "step": "official epsilons and F", "seconds": official_s, "result": f"F = {f['estimate']:.4f}"},
        {
            **size,
            "step": "F and score intervals",
            "seconds": interval_s,
            "result": f"[{f['low']:.4f}, {f['high']:.4f}], {f['n_groups']} groups x {f['n_model_examples']} examples",
        },
        {
            **size,
            "step": f"ceiling ({top['n_splits']} splits)",
            "seconds": ceiling_s,
            "result": f"{top['value']:.4f} [{top['low']:.4f}, {top['high']:.4f}]",
        },
        {**size, "step": "run diagnostics", "seconds": diagnostics_s, "result": ""},
        {**size, "step": "KLoM", "seconds": klom_s, "result": ""},
        {**size, "step": "likelihood-ratio attack", "seconds": lira_s, "result": ""},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32x126,512x5000", help="comma-separated NxS pairs")
    parser.add_argument("--jobs", type=int, help="threads for the epsilons (default: every core)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for size in args.sizes.split(","):
        n_models, n_examples = (int(part) for part in size.lower().split("x"))
        rows += _rows(n_models, n_examples, args.jobs, args.seed)
    table = pd.DataFrame(rows)
    table["seconds"] = table["seconds"].round(2)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
