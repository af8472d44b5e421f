"""The pool of real models that part ``pool`` of ``benchmarks/coverage.py`` draws from.

Part ``pool`` checks the ``models_only`` interval on real confidences: the truth at N is
the mean F over many draws of N runs and N references from a pool. This script makes
the pool on a split, so that it holds what scorings on that split would see:

- ``--references`` reference models, made by the scorer's own code
  (``scoring.references.build.build_references``: model k seeded as the scorer seeds it,
  into a reference folder that ``python -m scoring score --refs`` could use);
- ``--runs`` runs of each of ``--methods`` (baselines of ``starter_kit.baselines``, and
  the sanity rows of ``scoring.bench.sanity`` as ``sanity_<row>``: ``sanity_retrain``
  retrains from scratch, the ceiling's side), run k seeded and measured as run k of a
  scoring on this split (``benchmarks/unlearned_runs.py``).

Resumable: every model is a file of its own in ``--cache``, written atomically, so an
interrupted build continues where it stopped, and asking for more models extends the
pool. The references are the reference folder ``CACHE/references`` (or ``--refs``: an
existing one, which is extended); run k of a method is
``CACHE/runs-<manifest sha256[:12]>/<method>/run-<k>-seed-<its recorded seed>.npy``
(the seed follows ``$SCORING_SECRET``; a run's file does not record the method's code:
after changing a method, delete its folder).
The pool file, written atomically, holds:

    references  [R, |S|] float64   logit-scaled forget-set confidences, reference models 0..R-1
    <method>    [M, |S|] float64   the same, runs 0..M-1 of each method
    meta        JSON text: split manifest sha256, reference set sha256, run seeds as
                score.json records them, kit and torch versions

Everything runs on one CPU thread (``torch.set_num_threads(1)``), like a reference
folder built with ``--jobs 1``; the calibration of a new reference folder (a warm-up
and 3 models, ``scoring.references.calibration``) comes first.

    python benchmarks/coverage_pool.py --split-dir D --out POOL.npz [--references 256] [--runs 256]
        [--methods finetune,neggrad_plus] [--cache DIR] [--refs DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from unlearned_runs import Method, sanity_method, seen_seed, unlearned_confidences

import starter_kit
from scoring.bench.sanity import ROWS
from scoring.checks import check_int
from scoring.outputs import Evaluator
from scoring.references.build import build_references, count_references
from scoring.score import run_seed
from starter_kit.atomic import npy_bytes, write_bytes
from starter_kit.recipe import Recipe
from starter_kit.splits import Split, load_split


def method_runs(
    split: Split, name: str, method: Method, n_runs: int, cache: Path, progress: bool = True
) -> tuple[np.ndarray, int]:
    """([n_runs, |S|] confidences of runs 0..n_runs-1 of ``method``, how many were made now, not read from cache)."""
    folder = cache / f"runs-{split.manifest_sha256[:12]}" / name
    tools: tuple[Evaluator, torch.nn.Module] | None = None  # made with the first run made: a full cache needs none
    rows, made = [], 0
    for k in tqdm(range(n_runs), desc=name, unit="run", file=sys.stderr, leave=False, disable=not progress):
        path = folder / f"run-{k:04d}-seed-{run_seed(split.manifest_sha256, k)}.npy"
        row = _read_run(path, split)
        if row is None:
            tools = tools or (Evaluator(split), split.original_model())
            row = unlearned_confidences(split, method, seen_seed(split, k), tools[1], tools[0])
            write_bytes(path, npy_bytes(row))
            made += 1
        rows.append(row)
    return np.stack(rows), made


def _read_run(path: Path, split: Split) -> np.ndarray | None:
    """A cached run's confidences, or None where there is none or it is damaged (then made again)."""
    if not path.is_file():
        return None
    try:
        row = np.load(path)
    except (OSError, ValueError) as error:
        print(f"warning: {path} is damaged ({error}): making that run again", file=sys.stderr)
        return None
    if row.shape != (len(split.labels("forget")),) or not np.isfinite(row).all():
        print(f"warning: {path} is damaged (shape {row.shape}): making that run again", file=sys.stderr)
        return None
    return np.asarray(row, dtype=np.float64)


def build_pool(
    split: Split,
    n_references: int,
    n_runs: int,
    methods: dict[str, Method],
    cache: Path,
    refs_dir: Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """(the pool's arrays, a table of what it holds and what making it cost: CPU seconds of this call)."""
    rows = []
    started = time.process_time()
    before = time.process_time()
    refs_dir = refs_dir or cache / "references"
    had = min(count_references(split, refs_dir), n_references) if refs_dir.is_dir() else 0
    refs = build_references(split, n_references, refs_dir, jobs=1, progress=progress)
    made = n_references - had + len(refs.retrained)
    rows.append(_row("references", refs.forget_conf, made, time.process_time() - before))
    arrays = {"references": refs.forget_conf}
    for name, method in methods.items():
        before = time.process_time()
        arrays[name], made = method_runs(split, name, method, n_runs, cache, progress)
        rows.append(_row(name, arrays[name], made, time.process_time() - before))
    meta = {
        "split_manifest_sha256": split.manifest_sha256,
        "reference_set_sha256": refs.sha256,
        "reference_dir": str(refs.directory),
        "run_seeds": [run_seed(split.manifest_sha256, k) for k in range(n_runs)],
        "methods": list(methods),
        "kit_version": starter_kit.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "cpu_seconds": round(time.process_time() - started, 1),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays, pd.DataFrame(rows)


def _row(name: str, conf: np.ndarray, made: int, cpu: float) -> dict[str, Any]:
    return {
        "method": name,
        "models": len(conf),
        "made now": made,
        "mean confidence": round(float(conf.mean()), 3),
        "CPU s": round(cpu, 1),
    }


def write_pool(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The pool as an .npz, written to a temporary file beside ``path`` and renamed into place."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stubs type **kwds as bool
    write_bytes(path, buffer.getvalue())


def chosen_methods(names: str, recipe: Recipe) -> dict[str, Method]:
    """{name: its unlearning function} for a comma-separated list of baselines and sanity rows
    (``sanity_retrain``: runs that retrain from scratch, the ceiling's side); ValueError naming unknown ones."""
    from starter_kit.baselines import BASELINES

    rows = {f"sanity_{row}": row for row in ROWS}
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in BASELINES and n not in rows]
    if unknown or not chosen:
        raise ValueError(
            f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}: choose from "
            f"{', '.join([*BASELINES, *rows])}"
        )
    return {n: BASELINES[n] if n in BASELINES else sanity_method(rows[n], recipe) for n in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-dir", type=Path, required=True, help="a split (python -m data_prep build)")
    parser.add_argument("--out", type=Path, required=True, help="the pool file to write (.npz)")
    parser.add_argument("--references", type=int, default=256, help="reference models (default 256)")
    parser.add_argument("--runs", type=int, default=256, help="runs of each method (default 256)")
    parser.add_argument(
        "--methods", default="finetune,neggrad_plus", help="comma-separated baselines and sanity rows (sanity_retrain)"
    )
    parser.add_argument(
        "--cache", type=Path, help="folder keeping every model made (default: OUT without .npz, -models)"
    )
    parser.add_argument(
        "--refs", type=Path, help="an existing reference folder to use and extend (default CACHE/references)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        n_references = check_int(args.references, "--references", 2)
        n_runs = check_int(args.runs, "--runs", 2)
        if args.out.suffix != ".npz":
            raise ValueError(f"--out {args.out} must end in .npz (np.load reads the pool by its keys)")
        split = load_split(args.split_dir)
        methods = chosen_methods(args.methods, split.recipe)
        cache = args.cache or args.out.with_name(f"{args.out.stem}-models")
        arrays, table = build_pool(split, n_references, n_runs, methods, cache, args.refs)
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    write_pool(args.out, arrays)
    print(table.to_string(index=False))
    print(f"\nwrote {args.out}: {', '.join(f'{k} {list(v.shape)}' for k, v in arrays.items() if k != 'meta')}, meta")


if __name__ == "__main__":
    main()
