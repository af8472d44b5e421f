"""Runs of an unlearning method in this process, seeded and measured as the scorer does them.

Shared by the benchmarks that need many real runs of a method without the sandbox
(``dependence_calibration.py``, ``coverage_pool.py``). A run here is what the scorer's
worker does (``scoring.ingestion.worker.run_one``): a fresh copy of the original model,
``seed_everything`` and ``submission_loaders`` with the seed the run sees, the method;
then what the scorer keeps of the returned model (``scoring.outputs.Evaluator.from_state``:
its state loaded into a fresh model of the split's architecture). Run k sees the seed
the scorer gives it: ``derived_seed(run_seed(manifest sha256, k))``, with
``$SCORING_SECRET`` as set (``scoring.score``, ``scoring.ingestion.runner``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from scoring.bench.sanity import sanity_source
from scoring.ingestion.run_seeds import derived_seed
from scoring.outputs import Evaluator
from scoring.score import run_seed
from starter_kit.recipe import Recipe
from starter_kit.splits import Split
from starter_kit.submission import seed_everything, submission_loaders

Method = Callable[..., torch.nn.Module]


def sanity_method(name: str, recipe: Recipe | None = None) -> Method:
    """The ``unlearning`` function of sanity row ``name`` (``scoring.bench.sanity``: ``retrain`` needs the
    split's recipe), from the row's own source."""
    namespace: dict[str, object] = {}
    exec(compile(sanity_source(name, recipe), f"sanity_{name}.py", "exec"), namespace)
    return namespace["unlearning"]  # type: ignore[return-value]


def seen_seed(split: Split, index: int) -> int:
    """The seed run ``index`` of a scoring on ``split`` sees."""
    return derived_seed(run_seed(split.manifest_sha256, index))


def unlearned_confidences(
    split: Split, method: Method, seed: int, start: torch.nn.Module, evaluator: Evaluator
) -> np.ndarray:
    """[|S|]: forget-set logit-scaled confidences of ``method`` applied to a copy of ``start``, seeded ``seed``."""
    seed_everything(seed)
    returned = method(copy.deepcopy(start), *submission_loaders(split, seed))
    return evaluator.from_state(returned.state_dict()).forget_conf


def seeded_runs(split: Split, method: Method, n_runs: int, start: torch.nn.Module, evaluator: Evaluator) -> np.ndarray:
    """[n_runs, |S|]: runs 0..n_runs-1 of ``method`` from ``start``, each seeded as the scorer seeds it."""
    return np.stack(
        [unlearned_confidences(split, method, seen_seed(split, k), start, evaluator) for k in range(n_runs)]
    )
