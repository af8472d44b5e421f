"""The time limit's basis on this machine: references trained together vs one model trained alone.

Builds the public and the private digits split of one challenge (the public recipe,
unless --epochs), trains N reference models for each with --jobs J worker processes
(each split's folder first trains its calibration model alone), and prints, per split,
the mean training time of the references as timed (each one's time while J trained at
once: the "shared" basis the limit used to take), the calibration's time (one model
alone: the basis now), and the default limit (20%) from each. On one machine the
alone-based limits of the two splits should agree within noise, whatever J was.

    python benchmarks/limit_basis.py [--n-models 8] [--jobs 2] [--epochs E] [--work DIR]
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
from scoring.references.calibration import TIME_LIMIT_FRACTION
from starter_kit.splits import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-models", type=int, default=8, help="reference models per split (default 8)")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once, in worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (default: the public recipe)")
    parser.add_argument(
        "--work", type=Path, help="folder to keep splits and references (default: temporary; reused if given)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory(prefix="limit-basis-") as temporary:
        work = args.work or Path(temporary)
        for name in ("public", "private"):
            split_dir = work / f"digits-{name}"
            if not (split_dir / "manifest.json").is_file():
                build_split(
                    BuildOptions(dataset="digits", split=name, out=split_dir, epochs=args.epochs, progress=False)
                )
            split = load_split(split_dir)
            started = time.perf_counter()
            refs = build_references(split, args.n_models, work / f"refs-{name}", progress=False, jobs=args.jobs)
            wall = time.perf_counter() - started
            assert refs.calibration is not None  # a fresh set is calibrated
            shared, alone = float(refs.training_seconds.mean()), float(refs.calibration["seconds"])
            rows.append(
                {
                    "split": name,
                    "references (wall s)": round(wall, 1),
                    "shared: s per model as timed": round(shared, 3),
                    "alone: calibration s": round(alone, 3),
                    "shared / alone": round(shared / alone, 2),
                    "limit from shared (old)": round(TIME_LIMIT_FRACTION * shared, 3),
                    "limit from alone (default)": round(TIME_LIMIT_FRACTION * alone, 3),
                }
            )
    table = pd.DataFrame(rows).set_index("split").T
    print(
        f"\ndigits, {split.recipe.epochs}-epoch recipe, N = {args.n_models} per split, --jobs {args.jobs}, "
        f"{args.threads} torch thread(s):"
    )
    print(table.to_string())
    limits = table.loc["limit from alone (default)"]
    old = table.loc["limit from shared (old)"]
    print(
        f"\nthe two splits' limits differ by {abs(limits.iloc[0] / limits.iloc[1] - 1):.1%} (alone basis), "
        f"{abs(old.iloc[0] / old.iloc[1] - 1):.1%} (shared basis)"
    )


if __name__ == "__main__":
    main()
