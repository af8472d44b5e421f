"""The dependence test's calibration on digits: false alarms on honest runs, detection of shared work.

``scoring.assess.dependence`` flags groups of runs closer to one another than independent
runs are. Its thresholds are set here, on real models of a split:

- honest runs: the reference models (retraining, which is also the ``retrain`` sanity
  row), every baseline of ``starter_kit.baselines`` and the ``identity`` and ``noise``
  sanity rows, ``--runs`` runs of each (run k seeded as the scorer seeds it:
  ``benchmarks/unlearned_runs.py``), then
  ``--trials`` random draws of N of them, each tested against N other references as
  the yardstick: the share flagged is the false-alarm rate (draws overlap, so the
  rate is that of a draw, not of independent submissions);
- built attacks, "retrain once, hand out copies": ``--shared`` models retrained from
  scratch (the split's recipe, seeds of their own), each fine-tuned ``--copies`` times
  with the ``finetune`` baseline (one sixteenth of the recipe's epochs, the run's
  seed), or, ``noise``, perturbed with the noise sanity row's 2%. A trial draws k copies
  of one shared model and N - k independent retrains (references), or ``groups of 8``:
  N / 8 shared models, 8 copies each (one retrain per chunk of 8 runs). The share
  flagged is the detection rate.

The models are kept in ``--cache`` (one .npy per method), so a second call only draws.

    python benchmarks/dependence_calibration.py --split-dir D --refs R [--runs 48] [--trials 200] [--cache C]

R needs at least 2 x 32 + the largest k reference models (``python -m scoring references
--n-models 128``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from unlearned_runs import sanity_method, seeded_runs

from scoring.assess import dependence
from scoring.outputs import Evaluator
from scoring.references.build import count_references, load_references
from starter_kit.baselines import BASELINES
from starter_kit.baselines.finetune import finetune
from starter_kit.splits import Split, load_split
from starter_kit.submission import seed_everything
from starter_kit.training import train_model

SIZES = (8, 16, 32)  # 8: the smallest N the close-pair test runs at
GROUP = 8  # runs per chunk in the "groups of 8" attack


def _noise_copy(net: torch.nn.Module, *_loaders: object) -> torch.nn.Module:
    return sanity_method("noise")(net, None, None, None)


def collect(split: Split, n_runs: int, n_shared: int, n_copies: int, cache: Path) -> dict[str, np.ndarray]:
    """Every method's confidences, from ``cache`` where present (one .npy each)."""
    cache.mkdir(parents=True, exist_ok=True)
    found: dict[str, np.ndarray] = {}

    def kept(name: str, make: Callable[..., np.ndarray], *args: object) -> None:
        path = cache / f"{name}.npy"
        if not path.is_file():
            started = time.perf_counter()
            np.save(path, make(*args))
            print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)
        found[name] = np.load(path)

    original, evaluator = split.original_model(), Evaluator(split)
    methods = {name: BASELINES[name] for name in BASELINES} | {
        f"sanity {n}": sanity_method(n, split.recipe) for n in ("identity", "noise")
    }
    for name, method in methods.items():
        kept(name, seeded_runs, split, method, n_runs, original, evaluator)
    for s in range(n_shared):
        seed = 10_000 + s  # the shared models' own seeds: none is a reference's
        kept(f"shared {s} finetune", _shared_copies, split, seed, finetune, n_copies, evaluator)
        kept(f"shared {s} noise", _shared_copies, split, seed, _noise_copy, n_copies, evaluator)
    return found


def _shared_copies(
    split: Split, seed: int, change: Callable[..., torch.nn.Module], n_copies: int, evaluator: Evaluator
) -> np.ndarray:
    """[n_copies, |S|]: one model retrained from scratch with ``seed``, then ``change`` applied to copies of it."""
    seed_everything(seed)
    images, labels = split.images("retain"), split.labels("retain")
    model = train_model(split.recipe, images, labels, split.dataset.num_classes, seed=seed, progress=False)
    return seeded_runs(split, change, n_copies, model.eval(), evaluator)


def table(found: dict[str, np.ndarray], refs: np.ndarray, trials: int, seed: int) -> pd.DataFrame:
    """False alarms of every honest method and detections of every attack, per N, over ``trials`` draws."""
    rng = np.random.default_rng(seed)
    honest: dict[str, np.ndarray | None] = {"references (retraining, sanity retrain)": None}
    honest |= {name: runs for name, runs in found.items() if not name.startswith("shared")}
    shared = sorted({name.split(" ")[1] for name in found if name.startswith("shared")})
    rows = []
    for n_models in SIZES:
        draw = _drawer(rng, n_models)
        for name, runs in honest.items():
            rate, lowest = _flagged(rng, refs, n_models, trials, _honest(runs, draw))
            rows.append(_row(n_models, name, "honest", rate, lowest))
        for flavour in ("finetune", "noise"):
            pools = [found[f"shared {s} {flavour}"] for s in shared]
            for k in sorted({2, 4, GROUP, n_models // 2, 3 * n_models // 4, n_models}):
                if k <= len(pools[0]):
                    rate, lowest = _flagged(rng, refs, n_models, trials, _copies(rng, draw, pools, k, n_models))
                    rows.append(
                        _row(n_models, f"{k} copies ({flavour}) + {n_models - k} retrains", "attack", rate, lowest)
                    )
            if n_models > GROUP and len(pools) >= n_models // GROUP:  # one group of all N: the k = N row
                rate, lowest = _flagged(rng, refs, n_models, trials, _chunks(rng, draw, pools, n_models))
                what = f"{n_models // GROUP} groups of {GROUP} copies ({flavour})"
                rows.append(_row(n_models, what, "attack", rate, lowest))
    return pd.DataFrame(rows)


Draw = Callable[[np.ndarray], np.ndarray]


def _honest(runs: np.ndarray | None, draw: Draw) -> Draw:
    """N runs of an honest method; None: N references (retraining) from the pool the yardstick left."""

    def make(pool: np.ndarray) -> np.ndarray:
        return draw(pool if runs is None else runs)

    return make


def _copies(rng: np.random.Generator, draw: Draw, pools: list[np.ndarray], k: int, n_models: int) -> Draw:
    """k copies of one shared model among n_models - k retrains (references), in random order."""
    return lambda pool: rng.permutation(
        np.concatenate([draw(pools[rng.integers(len(pools))])[:k], pool[: n_models - k]])
    )


def _chunks(rng: np.random.Generator, draw: Draw, pools: list[np.ndarray], n_models: int) -> Draw:
    """n_models / GROUP shared models, GROUP copies of each: one retraining per chunk of runs."""
    return lambda pool: rng.permutation(
        np.concatenate([draw(pools[p])[:GROUP] for p in rng.choice(len(pools), n_models // GROUP, replace=False)])
    )


def _drawer(rng: np.random.Generator, n_models: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function drawing ``n_models`` rows of an array at random, without replacement."""
    return lambda runs: runs[rng.choice(len(runs), n_models, replace=False)]


def _flagged(
    rng: np.random.Generator,
    refs: np.ndarray,
    n_models: int,
    trials: int,
    runs_of: Callable[[np.ndarray], np.ndarray],
) -> tuple[float, np.ndarray | list[float]]:
    """(share of draws flagged, the smallest closeness and neighbour spread): each draw tests
    ``runs_of(references not in the yardstick)`` against ``n_models`` random references."""
    hits, statistic = 0, []
    for _ in range(trials):
        order = rng.permutation(len(refs))
        yardstick, pool = refs[order[:n_models]], refs[order[n_models:]]
        result = dependence.dependence(runs_of(pool), yardstick)
        hits += bool(result["flagged"])
        if result["closeness"] is not None:  # None: every run identical (the identity row)
            statistic.append((result["closeness"], result["neighbour_spread"]))
    return hits / trials, np.min(statistic, axis=0) if statistic else [float("nan")] * 2


def _row(n_models: int, runs: str, kind: str, rate: float, lowest: np.ndarray | list[float]) -> dict[str, object]:
    """One line of the table: the share flagged and the smallest value of each statistic over the draws."""
    return {
        "N": n_models,
        "runs": runs,
        "kind": kind,
        "flagged": rate,
        "min closeness": float(lowest[0]),
        "min neighbour spread": float(lowest[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-dir", type=Path, required=True, help="a digits split (python -m data_prep build)")
    parser.add_argument("--refs", type=Path, required=True, help="its reference folder, >= 2 x 32 + 32 models")
    parser.add_argument("--runs", type=int, default=48, help="runs of each honest method (default 48)")
    parser.add_argument("--shared", type=int, default=6, help="shared models retrained for the attacks (default 6)")
    parser.add_argument("--copies", type=int, default=32, help="copies of each shared model (default 32)")
    parser.add_argument("--trials", type=int, default=200, help="random draws per row (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="the draws' seed (default 0)")
    parser.add_argument("--cache", type=Path, help="folder keeping the models' confidences (default: temporary)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = load_split(args.split_dir)
    refs = load_references(split, count_references(split, args.refs), args.refs).forget_conf
    with tempfile.TemporaryDirectory(prefix="dependence-") as temporary:
        found = collect(split, args.runs, args.shared, args.copies, args.cache or Path(temporary))
    result = table(found, refs, args.trials, args.seed)
    with pd.option_context("display.width", 200, "display.max_rows", 200, "display.max_colwidth", 60):
        print(result.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"\nthresholds: {dependence.describe_thresholds()}; {args.trials} draws per row; "
        f"{len(refs)} references, {args.runs} runs per honest method"
    )


if __name__ == "__main__":
    main()
