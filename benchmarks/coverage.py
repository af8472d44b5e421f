"""Coverage of the kit's 95% intervals against a known truth: a simulator, and a pool of real models.

Does the interval of ``scoring.assess.uncertainty`` cover the true F 95% of the time, and
is it no wider than it needs to be? Each cell of the table draws many fresh data sets,
computes an interval on each, and counts how often it covers the truth.

Part ``sim``: confidences drawn from a simulator whose true F at each N is known by
Monte Carlo (the mean F over ``--truth-draws`` fresh data sets, far more than the
estimator ever resamples). Every data set draws its forget examples afresh (each with
its own mean and spread, as real confidences have) and its 2N models afresh, so the
truth is E[F] over new forget examples and new seeds: the promise of ``low``/``high``.
Settings:

- ``identical``: unlearned and retrained models from the same distribution (the ceiling);
- ``mixture``: 30% of the examples shifted by one sd under the unlearned models;
- ``shift``: every example shifted by 0.35 sd;
- ``shared``: the shift, plus a per-model effect (sd 0.3) shared by all examples of a run;
- ``scaled``: the shift, plus a per-model temperature: every confidence of a run times
  exp(0.1 g), g standard normal (a run more or less confident overall);
- ``heavy``: Student t (3 df) noise instead of normal, and the shift;
- ``coarse``: the shift, confidences rounded to 0.5 (few distinct values, many ties).

Part ``ceiling``: on one forget set (the ``shift`` setting), 2N references give the
ceiling; its interval should hold the F of a fresh retraining scored against fresh
references on that forget set (the width is compared with the spread of that F around
the ceiling), and the normalised score's interval (F / ceiling) should cover the true
E[F] / E[ceiling].

Part ``pool``: real confidences (``--pool``, an .npz with ``references`` [R, S] and one
array per method [M, S], as ``benchmarks/coverage_pool.py`` builds it; its ``meta`` is
not a method). The truth at N is the mean F over ``--truth-draws`` draws of N runs and
N references from the pool; each interval is computed on one draw. Only the
``models_only`` interval (this forget set, new seeds) has a truth here: the pool is one
forget set, so every draw has the same examples, and the total interval (``low``/``high``:
new forget examples too) would be judged against a spread that leaves out its examples'
part. Its width is compared with the spread of F over the draws. Draws without
replacement from a pool of P models vary less than fresh seeds would, by about
sqrt((P - N) / (P - 1)) in sd (0.94 at N = 32, 0.87 at N = 64 of 256): keep N well
below P, or read the coverage at large N as slightly flattering.

Every cell reports: the coverage, its 95% Wilson interval, the mean interval width over
the width of the true 95% spread of F (its 2.5% to 97.5% quantiles over the truth
draws), and the share of misses below the truth. Seeds: ``--seed`` picks the set (the
kit's defaults were tuned on seed set 0; the README's table is seed set 1).

    python benchmarks/coverage.py [--part sim] [--settings all] [--n-models 8,16,32,64,128]
        [--intervals 400] [--truth-draws 2000] [--examples 60] [--seed 1] [--jobs 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from scoring.assess import ceiling as estimator_ceiling
from scoring.assess import uncertainty
from scoring.metric import forgetting as metric

SETTINGS = ("identical", "mixture", "shift", "shared", "scaled", "heavy", "coarse")
Z95 = 1.959963984540054


def draw_examples(setting: str, n_examples: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A fresh forget set: each example's mean, spread and shift under the unlearned models."""
    mean = rng.normal(2.5, 2.5, n_examples)
    spread = rng.uniform(0.5, 2.0, n_examples)
    shift = np.zeros(n_examples)
    if setting == "mixture":
        shift[rng.random(n_examples) < 0.3] = 1.0
    elif setting != "identical":
        shift[:] = 0.35
    return mean, spread, shift


def simulate(
    setting: str,
    n_models: int,
    n_examples: int,
    rng: np.random.Generator,
    examples: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(unlearned, retrained) confidences [n_models, n_examples]: fresh models on a fresh forget
    set, or on ``examples`` (from ``draw_examples``) where given."""
    mean, spread, shift = draw_examples(setting, n_examples, rng) if examples is None else examples

    def noise(size: tuple[int, int]) -> np.ndarray:
        if setting == "heavy":
            return rng.standard_t(3, size) / math.sqrt(3.0)  # unit variance
        return rng.standard_normal(size)

    shape = (n_models, n_examples)
    retrained = mean + spread * noise(shape)
    unlearned = mean + spread * (shift + noise(shape))
    if setting == "shared":  # one unusual run moves every example
        retrained += spread * rng.normal(0, 0.3, (n_models, 1))
        unlearned += spread * rng.normal(0, 0.3, (n_models, 1))
    if setting == "scaled":  # one run more confident than another on every example
        retrained *= np.exp(rng.normal(0, 0.1, (n_models, 1)))
        unlearned *= np.exp(rng.normal(0, 0.1, (n_models, 1)))
    if setting == "coarse":
        unlearned, retrained = np.round(unlearned * 2) / 2, np.round(retrained * 2) / 2
    return unlearned, retrained


def wilson(hits: int, total: int) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    p = hits / total
    centre = (p + Z95**2 / (2 * total)) / (1 + Z95**2 / total)
    half = Z95 * math.sqrt(p * (1 - p) / total + Z95**2 / (4 * total**2)) / (1 + Z95**2 / total)
    return centre - half, centre + half


def truth(draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]], draws: int, seed: int) -> np.ndarray:
    """F of ``draws`` fresh data sets: their mean is the truth, their quantiles its spread."""
    rng = np.random.default_rng(seed)
    return np.array([metric.forgetting_quality(*draw(rng), n_jobs=1) for _ in range(draws)])


def cell(
    draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
    true_f: np.ndarray,
    intervals: int,
    seed: int,
    part: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Coverage of ``intervals`` intervals (``part``: "total" or "models_only") of the true mean F."""
    rng = np.random.default_rng(seed)
    value = float(true_f.mean())
    low_q, high_q = np.quantile(true_f, [0.025, 0.975])
    hits = below = 0
    widths, errors = [], []
    for trial in range(intervals):
        result = uncertainty.forgetting_quality_interval(*draw(rng), random_state=trial, n_jobs=1, **options)
        low, high = (
            (result["low"], result["high"])
            if part == "total"
            else (
                result["models_only"]["low"],
                result["models_only"]["high"],
            )
        )
        hits += low <= value <= high
        below += high < value
        widths.append(high - low)
        errors.append(result["standard_error"] if part == "total" else result["models_only"]["standard_error"])
    lo, hi = wilson(hits, intervals)
    return {
        "true F": round(value, 4),
        "coverage %": round(100 * hits / intervals, 1),
        "95% CI": f"[{100 * lo:.1f}, {100 * hi:.1f}]",
        "width / true": round(float(np.mean(widths)) / (high_q - low_q), 2),
        "se / true sd": round(float(np.mean(errors)) / float(true_f.std(ddof=1)), 2),
        "misses below": f"{below}/{intervals - hits}",
        "intervals": intervals,
    }


def simulator_rows(args: argparse.Namespace, options: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    settings = SETTINGS if args.settings == "all" else args.settings.split(",")
    for setting in settings:
        for n_models in (int(n) for n in args.n_models.split(",")):
            start = time.process_time()

            def draw(rng: np.random.Generator, s: str = setting, n: int = n_models) -> tuple[np.ndarray, np.ndarray]:
                return simulate(s, n, args.examples, rng)

            seed = 1_000_003 * args.seed + 7919 * n_models + SETTINGS.index(setting) if setting in SETTINGS else 0
            true_f = truth(draw, args.truth_draws, seed)
            row = cell(draw, true_f, args.intervals, seed + 1, "total", options)
            rows.append({"setting": setting, "N": n_models, **row, "CPU s": round(time.process_time() - start, 1)})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return rows


def read_pool(path: str) -> dict[str, np.ndarray]:
    """{"references": [R, S], method: [M, S], ...} from a pool file; exits with one line where it is not one."""
    try:
        with np.load(path) as pool:
            arrays = {name: pool[name] for name in pool.files if name != "meta"}
    except (OSError, ValueError) as error:
        sys.exit(f"--pool {path} cannot be read as an .npz ({error}): build one with benchmarks/coverage_pool.py")
    shapes = {name: array.shape for name, array in arrays.items()}
    width = shapes.get("references", (0, 0))[1:]
    if len(arrays) < 2 or any(len(shape) != 2 or shape[1:] != width for shape in shapes.values()):
        sys.exit(
            f"--pool {path} holds {shapes}: it needs 'references' [R, S] and at least one method [M, S] "
            "(build it with benchmarks/coverage_pool.py)"
        )
    return arrays


def pool_rows(args: argparse.Namespace, options: dict[str, Any]) -> list[dict[str, Any]]:
    pool = read_pool(args.pool)
    references = pool.pop("references")
    rows = []
    for method, runs in pool.items():
        for n_models in (int(n) for n in args.n_models.split(",")):
            if n_models > min(len(runs), len(references)):
                print(f"{method}: N = {n_models} skipped: the pool holds {len(runs)} runs, {len(references)} refs")
                continue
            start = time.process_time()

            def draw(
                rng: np.random.Generator, r: np.ndarray = runs, n: int = n_models
            ) -> tuple[np.ndarray, np.ndarray]:
                return r[rng.choice(len(r), n, replace=False)], references[
                    rng.choice(len(references), n, replace=False)
                ]

            seed = 1_000_003 * args.seed + 7919 * n_models + zlib.crc32(method.encode())  # a seed per method
            true_f = truth(draw, args.truth_draws, seed)
            row = cell(draw, true_f, args.intervals, seed + 1, "models_only", options)
            rows.append({"method": method, "N": n_models, **row, "CPU s": round(time.process_time() - start, 1)})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return rows


def ceiling_rows(args: argparse.Namespace, options: dict[str, Any]) -> list[dict[str, Any]]:
    """The ceiling's interval (where a retraining's F on this forget set lands) and the
    normalised score's (F / ceiling, truth E[F] / E[ceiling]) on the simulator."""
    rows = []
    for n_models in (int(n) for n in args.n_models.split(",")):
        start = time.process_time()
        seed = 1_000_003 * args.seed + 7919 * n_models + 99
        rng = np.random.default_rng(seed)
        truths = {}
        for i, name in enumerate(("identical", "shift")):

            def draw(r: np.random.Generator, s: str = name, n: int = n_models) -> tuple[np.ndarray, np.ndarray]:
                return simulate(s, n, args.examples, r)

            truths[name] = truth(draw, args.truth_draws, seed + i)
        target = truths["shift"].mean() / truths["identical"].mean()
        landed = covered = 0
        ceiling_widths, spreads, normalised_widths, ratios = [], [], [], []
        for trial in range(args.intervals):
            forget = draw_examples("shift", args.examples, rng)
            unlearned, retrained = simulate("shift", n_models, args.examples, rng, forget)
            more = simulate("shift", n_models, args.examples, rng, forget)[1]
            top = estimator_ceiling.ceiling(np.concatenate([retrained, more]), n_models, random_state=trial, n_jobs=1)
            # A fresh retraining scored against fresh references, on the same forget set.
            unshifted = (forget[0], forget[1], np.zeros(args.examples))
            fresh = metric.forgetting_quality(*simulate("identical", n_models, args.examples, rng, unshifted), n_jobs=1)
            landed += top["low"] <= fresh <= top["high"]
            ceiling_widths.append(top["high"] - top["low"])
            spreads.append(fresh - top["value"])
            f = uncertainty.forgetting_quality_interval(unlearned, retrained, random_state=trial, n_jobs=1, **options)
            ratio, low, high = estimator_ceiling.normalised_interval(f, top)
            covered += low <= target <= high
            ratios.append(ratio)
            normalised_widths.append(high - low)
        n = args.intervals
        for name, hits, widths, spread in (
            ("ceiling (a retraining lands)", landed, ceiling_widths, np.quantile(spreads, [0.025, 0.975])),
            # F / ceiling's own spread over fresh data sets (each trial draws a new forget
            # set, runs and references), not F's alone: both vary.
            ("normalised score", covered, normalised_widths, np.quantile(ratios, [0.025, 0.975])),
        ):
            lo, hi = wilson(hits, n)
            rows.append(
                {
                    "interval": name,
                    "N": n_models,
                    "coverage %": round(100 * hits / n, 1),
                    "95% CI": f"[{100 * lo:.1f}, {100 * hi:.1f}]",
                    "width / true": round(float(np.mean(widths)) / float(spread[1] - spread[0]), 2),
                    "intervals": n,
                    "CPU s": round(time.process_time() - start, 1),
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("sim", "ceiling", "pool"), default="sim")
    parser.add_argument("--settings", default="all", help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--n-models", default="8,16,32,64,128", help="comma-separated N")
    parser.add_argument("--intervals", type=int, default=400, help="intervals per cell")
    parser.add_argument("--truth-draws", type=int, default=2000, help="fresh data sets for the true F")
    parser.add_argument("--examples", type=int, default=60, help="forget examples per simulated data set")
    parser.add_argument("--pool", help="part pool: .npz with 'references' and one array per method")
    parser.add_argument("--seed", type=int, default=1, help="seed set (0: tuning, 1: the reported table)")
    parser.add_argument("--option", action="append", default=[], help="estimator option NAME=INT, e.g. n_groups=8")
    args = parser.parse_args()
    options = {name: int(value) for name, value in (o.split("=") for o in args.option)}
    if args.part == "pool" and not args.pool:
        sys.exit("--part pool needs --pool FILE.npz (references and runs: see the module docstring)")
    parts = {"sim": simulator_rows, "ceiling": ceiling_rows, "pool": pool_rows}
    rows = parts[args.part](args, options)
    print()
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
