"""Where the sealed scorer spends its time, per stage, for digits at N = 32 and N = 128.

Builds a digits split (the public recipe, unless --epochs), trains the reference
models once for the largest N (N = 32 uses the first 32 of them), then scores a
one-epoch fine-tuning submission at each N. Stages, in seconds:

- references: training   N models trained from scratch on the retain set
- references: evaluation their forget logits and retain / forget / test accuracies
- worker start           spawning the worker, importing torch, loading the submission
- submission runs        the N runs of ``unlearning`` (scorer's wall clock)
- unlearned evaluation   evaluating the N returned models in the scorer
- metric                 per-example epsilons, F and the score (scoring.metric.forgetting)

    python benchmarks/score_speed.py [--n-models 32 128] [--threads 1] [--epochs E] [--work DIR]
    python benchmarks/score_speed.py --n-models 4 --epochs 1 --time-limit 10   # a quick look

A shorter recipe (--epochs) shortens retraining and with it the default limit (20% of
it), below what the one-epoch fine-tune takes: it is then rejected and its stages are
not timed, unless --time-limit lifts the limit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from data_prep.build import BuildOptions, build_split
from scoring.references.build import build_references
from scoring.score import ScoreOptions, score_submission
from starter_kit.splits import load_split

FINE_TUNE = "from starter_kit.baselines import finetune as unlearning\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-models", type=int, nargs="+", default=[32, 128], help="values of N (default 32 128)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads everywhere (default 1)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (default: the public recipe)")
    parser.add_argument("--time-limit", type=float, help="seconds per run (default: 20%% of retraining)")
    parser.add_argument("--submission", type=Path, help="a submission to time instead of the fine-tuning one")
    parser.add_argument(
        "--work", type=Path, help="folder to keep the split, references and scores (default: temporary)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="score-speed-") as temporary:
        work = args.work or Path(temporary)
        split_dir = work / "digits-public"
        started = time.perf_counter()
        if not (split_dir / "manifest.json").is_file():
            build_split(
                BuildOptions(dataset="digits", split="public", out=split_dir, epochs=args.epochs, progress=False)
            )
        print(f"split built in {time.perf_counter() - started:.1f} s ({split_dir})")
        split = load_split(split_dir)
        refs = build_references(split, max(args.n_models), work / "references", progress=True)
        submission = args.submission or work / "fine_tune.py"
        if args.submission is None:
            submission.write_text(FINE_TUNE)

        rows = []
        for n in args.n_models:
            started = time.perf_counter()
            record = score_submission(
                ScoreOptions(
                    submission=submission,
                    split_dir=split_dir,
                    n_models=n,
                    out=work / f"score-n{n}",
                    replace=True,  # this benchmark's scratch folder
                    refs_dir=work / "references",
                    time_limit=args.time_limit,
                    threads=args.threads,
                    progress=True,
                )
            )
            total = time.perf_counter() - started
            times, timing = record["time"], record["timing"]
            runs = times.get("total_wall_seconds", 0.0)
            setup = times.get("setup_seconds") or 0.0
            stages = {
                "references: training": refs.training_seconds[:n].sum(),
                "references: evaluation": refs.evaluation_seconds[:n].sum(),
                "worker start": setup,
                "submission runs": runs,
                "unlearned evaluation": timing["evaluation_seconds"],
                "metric": timing.get("metric_seconds", float("nan")),
            }
            rows.append(
                {
                    "N": n,
                    **{k: round(float(v), 2) for k, v in stages.items()},
                    "score total": round(total, 2),
                    "slowest": max(stages, key=lambda k: stages[k] if stages[k] == stages[k] else -1),
                    "status": record["status"],
                    "score": record["score"],
                    "run limit": times["limit_seconds"],
                }
            )
            if record["status"] != "scored":
                hint = (
                    " (--epochs shortened the default limit: add --time-limit 10)"
                    if args.epochs and args.time_limit is None
                    else ""
                )
                print(f"N = {n}: {record['status']}: {record['reason']}{hint}")

    table = pd.DataFrame(rows).set_index("N").T
    print(f"\nseconds per stage (digits, {split.recipe.epochs}-epoch recipe, {args.threads} torch thread(s)):")
    print(table.to_string())


if __name__ == "__main__":
    main()
