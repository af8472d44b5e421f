"""The estimator's ceiling: the F that retraining itself reaches at this N and |S|.

Owns the yardstick that F is read against, reported *beside* the official score (issue
11) and never fed back into it. Identical distributions do not reach F = 1: the maximum
over ~160,000 attacks finds chance separations (about 0.18-0.20 at any N), so a perfect
unlearning scores well below 1. The ceiling measures that level on the competition's own
forget set by scoring retraining against retraining, and ``normalised_score`` = F /
ceiling reads a score against it (1: as good as retraining, more by chance).

The references split into halves: each of ``n_splits`` splits draws two disjoint halves
of N references at random and scores one as "unlearned" against the other; the ceiling
is the mean F over splits. Its interval is where a retrain-from-scratch submission's F,
on this forget set with new seeds, should land: a prediction interval, value +- t *
(s^2 + Var value)^(1/2), s the first split's ``models_only`` standard error
(``scoring.assess.uncertainty``: the same estimator as every F interval) and Var value
the value's own variance over new references (``value_variance``). Without Var value it
covered 97.0, 94.5 and 92.2% at N = 16, 32, 64 (``benchmarks/coverage.py --part ceiling``,
seed set 1, 400 intervals): too narrow where N is large. The normalised score's interval
(``normalised_interval``) combines F's interval and the value's variance by the delta
method.

"Reduced": the halves need 2N references. With fewer, each half holds n_refs // 2
models (at least 3), the ceiling is measured at that smaller N, and the result says so
(``reduced`` is True, ``note`` gives both N's). The ceiling moves little with N (0.19 at
N = 8, 0.185 from 32 to 512), but F at N read against a ceiling at N/2 is not the same
ratio, so ``scoring.assess.recompute`` reports a reduced ceiling beside the score and gives no
normalised score against it: train 2N references for a ceiling at N.

Pure functions of the references' confidences [n_refs, n_examples] and an integer seed;
the cost (n_splits official F's plus one interval's model part) is in the table of
``scoring.assess.uncertainty``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scoring.assess.resampling import student_quantile
from scoring.assess.uncertainty import (
    CONFIDENCE_LEVEL,
    N_GROUPS,
    N_MODEL_EXAMPLES,
    N_REDRAWS,
    N_RESAMPLES,
    forgetting_quality_interval,
)
from scoring.checks import check_int, real_array
from scoring.metric import forgetting as metric

N_SPLITS = 5  # random splits of the references for the ceiling


def ceiling(
    reference_conf: ArrayLike,
    n_models: int,
    *,
    n_splits: int = N_SPLITS,
    confidence_level: float = CONFIDENCE_LEVEL,
    n_resamples: int = N_RESAMPLES,
    n_groups: int = N_GROUPS,
    n_redraws: int = N_REDRAWS,
    n_model_examples: int = N_MODEL_EXAMPLES,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """The F a perfect unlearning reaches at this N and |S|: references scored against references.

    Identical distributions do not reach F = 1 (the max over ~160,000 attacks finds chance
    separations; about 0.18-0.20 at any N), so F is read against this. Each split draws
    two disjoint halves of ``n_models`` references at random and scores one as "unlearned"
    against the other; the value is the mean over splits.

    Parameters
    ----------
    reference_conf : array [n_refs, n_examples]
        Logit-scaled confidences of the forget set under every reference (retrained) model.
    n_models : int
        The N of the scores it will be compared with. Needs n_refs >= 2 N; with fewer,
        the halves hold n_refs // 2 models each (``reduced`` is True and ``note`` says
        so): the ceiling moves little with N (0.19 at N = 8, 0.185 from 32 to 512).
    n_splits : int >= 1
    confidence_level, n_resamples, n_groups, n_redraws, n_model_examples, random_state, n_jobs
        As in ``forgetting_quality_interval``; the interval's width comes from the first
        split.

    Returns
    -------
    dict
        ``value`` (mean F over splits), ``low``, ``high``: where the F of retraining
        itself, on this forget set, lands with the confidence level (value +- t * the
        first split's ``models_only`` standard error; a retrain-from-scratch submission
        should land there); ``standard_error``; ``splits`` (F of each split), ``spread``
        (their sd, 0 for one split); ``n_models`` (models per half, used),
        ``n_models_requested``, ``n_references``, ``n_references_used`` (distinct
        references over all splits), ``reduced``, ``note``; ``interval`` (the first
        split's ``forgetting_quality_interval``); ``n_splits``, ``random_state``.
    """
    refs = real_array(reference_conf, "reference_conf")
    if refs.ndim != 2:
        raise ValueError(f"reference_conf must be 2-D [n_refs, n_examples], got shape {refs.shape}")
    requested = check_int(n_models, "n_models", 3)
    n_splits = check_int(n_splits, "n_splits", 1)
    random_state = check_int(random_state, "random_state", 0)
    n_refs = refs.shape[0]
    half = min(requested, n_refs // 2)
    if half < 3:
        raise ValueError(f"the ceiling needs at least 6 references (two halves of 3), got {n_refs}")
    rng = np.random.default_rng(random_state)
    values: list[float] = []
    used = np.zeros(n_refs, dtype=bool)
    first: dict[str, Any] | None = None
    orders = [rng.permutation(n_refs) for _ in range(n_splits)]
    # The splits' halves side by side, one wide forget set: one vectorised call for all.
    halves = [
        np.concatenate([refs[order[part]] for order in orders], axis=1)
        for part in (slice(0, half), slice(half, 2 * half))
    ]
    all_epsilons = metric.per_example_epsilons(*halves, n_jobs=n_jobs).reshape(n_splits, -1)
    for split, order in enumerate(orders):
        a, b = order[:half], order[half : 2 * half]
        used[order[: 2 * half]] = True
        epsilons = all_epsilons[split]
        values.append(metric.forgetting_quality_from_epsilons(epsilons, half))
        if split == 0:
            first = forgetting_quality_interval(
                refs[a],
                refs[b],
                confidence_level=confidence_level,
                n_resamples=n_resamples,
                n_groups=n_groups,
                n_redraws=n_redraws,
                n_model_examples=n_model_examples,
                random_state=random_state,
                n_jobs=n_jobs,
                epsilons=epsilons,
            )
    value = float(np.mean(values))
    assert first is not None  # n_splits >= 1: split 0 always runs
    se = first["models_only"]["standard_error"]  # a retraining's F on this forget set, new seeds
    spread = float(np.std(values, ddof=1)) if n_splits > 1 else 0.0
    # A prediction interval: the new retraining's own spread plus the value's (an estimate too).
    landing = math.sqrt(se * se + value_variance(se * se, spread * spread, n_splits))
    z_level = student_quantile(first["confidence_level"], first["models_only"]["degrees_of_freedom"])
    reduced = half < requested
    note = (
        f"only {n_refs} references: halves of {half} models, not {requested}; the ceiling is measured at N = {half}"
        if reduced
        else f"halves of {half} models from {n_refs} references"
    )
    return {
        "value": value,
        "low": max(value - z_level * landing, 0.0),
        "high": min(value + z_level * landing, 1.0),
        "standard_error": se,
        "splits": [float(v) for v in values],
        "spread": spread,
        "n_models": half,
        "n_models_requested": requested,
        "n_references": n_refs,
        "n_references_used": int(used.sum()),
        "reduced": reduced,
        "note": note,
        "interval": first,
        "n_splits": n_splits,
        "random_state": random_state,
    }


def value_variance(one_split: float, spread: float, n_splits: int) -> float:
    """Variance of the ceiling's value (the mean F over splits) over new references.

    One split's F varies by ``one_split`` (its models-only variance) over new references;
    part of that, ``spread`` (the variance between splits of the same references, the
    partition's chance), averages out over n_splits splits, the rest (which references
    were drawn) does not: one_split - spread + spread / n_splits.
    """
    spread = min(spread, one_split)
    return one_split - spread + spread / n_splits


def recorded_value_variance(ceiling_result: dict[str, Any]) -> float:
    """``value_variance`` of a recorded ceiling, from its standard_error, spread and n_splits."""
    one_split = float(ceiling_result["standard_error"]) ** 2
    return value_variance(one_split, float(ceiling_result["spread"]) ** 2, int(ceiling_result["n_splits"]))


def normalised_interval(f_result: dict[str, Any], ceiling_result: dict[str, Any]) -> tuple[float, float, float]:
    """F / ceiling and its interval by the delta method: (estimate, low, high).

    Var(F / c) = (Var F + (F / c)^2 Var c) / c^2, with Var F the F interval's squared
    standard error (new forget examples and new seeds) and Var c the ceiling value's
    (``recorded_value_variance``); the quantile is F's Student quantile. Low is clipped at 0.
    """
    top = float(ceiling_result["value"])
    if top <= 0:
        raise ValueError(f"the ceiling must be > 0 to normalise by it, got {top!r}")
    ratio = f_result["estimate"] / top
    se = math.sqrt(f_result["standard_error"] ** 2 + ratio**2 * recorded_value_variance(ceiling_result)) / top
    df = f_result.get("degrees_of_freedom", math.inf)
    half = student_quantile(f_result["confidence_level"], df) * se
    return ratio, max(ratio - half, 0.0), ratio + half


def normalised_score(forgetting_quality: ArrayLike, ceiling_value: float) -> float | np.ndarray:
    """F / ceiling: 1 means "as good as retraining at this N and |S|" (can exceed 1 by chance).

    Meaningful only where the ceiling was measured at the N of ``forgetting_quality``.

    Parameters
    ----------
    forgetting_quality : float or array (e.g. [estimate, low, high])
        Values >= 0.
    ceiling_value : float > 0
        ``ceiling(...)["value"]``.

    Returns
    -------
    float, or float64 array of the shape of ``forgetting_quality``.
    """
    quality = real_array(forgetting_quality, "forgetting_quality").astype(np.float64)
    if not np.isfinite(quality).all() or (quality < 0).any():
        raise ValueError(f"forgetting_quality must be finite and >= 0, got {forgetting_quality!r}")
    top = np.asarray(ceiling_value)
    if top.ndim != 0 or top.dtype.kind not in "iuf" or not np.isfinite(top) or top <= 0:
        raise ValueError(f"ceiling_value must be a number > 0, got {ceiling_value!r}")
    ratio = quality / float(top)
    return float(ratio) if ratio.ndim == 0 else ratio
