"""Per-example metrics from the literature, reported beside the official score, never mixed in.

Both read only the saved confidence arrays, unlearned_conf and retrained_conf
[n_models, n_examples], so they are recomputable from a score folder.

KLoM (KL divergence of margins), from Georgiev, Rinberg, Park, Garg, Ilyas, Madry and
Neel, "Attribute-to-Delete: Machine Unlearning via Datamodel Matching" (2024,
arXiv:2410.23232, ICLR 2025; Appendix E.1), as implemented in EasyDUB
(github.com/easydub/EasyDUB-code, ``easydub/eval.py``): for each example, the margins of
the N unlearned models and of the N retrained ("oracle") models are binned into 20
equal-width bins over their joint range (after clipping to [-100, 100]), and
KL(unlearned || retrained) is taken between the two histograms, the retrained
probability floored at 1e-5 wherever the unlearned one is positive. The margin there is
logit(true class) - logsumexp(other logits), which is exactly the kit's logit-scaled
confidence ln p - ln(1 - p) (up to its 1e-45 offset), so KLoM needs no logits.
One deliberate difference: values equal to the joint maximum go in the last bin (as
``np.histogram`` does); EasyDUB's ``np.digitize`` drops them. Lower is better; 0 for
identical samples; with finite N, two samples of the same distribution still show a
positive KLoM, mostly from bins that only the unlearned sample fills (each costs about
p * ln(p / 1e-5)): measured on normal samples, about 1.7 at N = 32 and 0.05 at N = 512
(a shift of one sd: 2.8 and 0.63). KLoM is made for hundreds of models: compare it only
at the same N.

A U-LiRA-style likelihood-ratio attack (Hayes, Shumailov, Triantafillou, Khalifa and
Papernot, "Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense of
Privacy", 2024): per example, each model's confidence is scored by the log-ratio of
Gaussians fitted to the unlearned and to the retrained confidences (leaving that model
out of its own fit), and called "unlearned" when the ratio is > 0. Its balanced accuracy
is 0.5 when the two are indistinguishable and 1 when they are separated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scoring.checks import check_confidences, check_int

KLOM_BINS = 20  # equal-width bins over the joint range of one example's margins
KLOM_FLOOR = 1e-5  # retrained bin probability floor where the unlearned one is positive
KLOM_CLIP = 100.0  # margins are clipped to +-this before binning
PERCENTILES = (5, 25, 50, 75, 95, 99)
_VAR_FLOOR = 1e-12  # Gaussian fits of constant samples


def klom(
    unlearned_conf: ArrayLike,
    retrained_conf: ArrayLike,
    *,
    n_bins: int = KLOM_BINS,
    floor: float = KLOM_FLOOR,
    clip: float = KLOM_CLIP,
) -> np.ndarray:
    """KL(unlearned || retrained) of each example's binned margins (see module doc).

    Parameters
    ----------
    unlearned_conf, retrained_conf : arrays [n_models, n_examples]
        Logit-scaled confidences (margins) of the forget set.
    n_bins : int >= 1
    floor : float in (0, 1)
    clip : float > 0

    Returns
    -------
    kl : float64 array [n_examples], >= 0
    """
    unlearned, retrained = check_confidences(unlearned_conf, retrained_conf)
    n_bins = check_int(n_bins, "n_bins", 1)
    if not (isinstance(floor, (int, float)) and 0 < floor < 1):
        raise ValueError(f"floor must be a number in (0, 1), got {floor!r}")
    if not (isinstance(clip, (int, float)) and clip > 0):
        raise ValueError(f"clip must be a number > 0, got {clip!r}")
    unlearned = np.clip(unlearned, -clip, clip)
    retrained = np.clip(retrained, -clip, clip)
    low = np.minimum(unlearned.min(axis=0), retrained.min(axis=0))
    high = np.maximum(unlearned.max(axis=0), retrained.max(axis=0))
    width = np.where(high > low, high - low, 1.0)  # all values equal: one bin holds them all
    p = _histograms(unlearned, low, width, n_bins)  # [n_examples, n_bins]
    q = _histograms(retrained, low, width, n_bins)
    q = np.where(p > 0, np.maximum(q, floor), q)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    values: np.ndarray = np.maximum(terms.sum(axis=1), 0.0)
    return values


def klom_summary(unlearned_conf: ArrayLike, retrained_conf: ArrayLike, **options: Any) -> dict[str, Any]:
    """KLoM over the forget set: ``mean``, ``median``, ``percentiles`` {"5": ..., "99": ...},
    ``max``, and ``n_bins``, ``floor``, ``clip``, ``n_models``, ``n_examples``.

    ``options`` are those of ``klom``.
    """
    values = klom(unlearned_conf, retrained_conf, **options)
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "percentiles": {str(q): float(v) for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True)},
        "max": float(values.max()),
        "n_bins": options.get("n_bins", KLOM_BINS),
        "floor": options.get("floor", KLOM_FLOOR),
        "clip": options.get("clip", KLOM_CLIP),
        "n_models": int(np.shape(unlearned_conf)[0]),
        "n_examples": int(len(values)),
    }


def _histograms(values: np.ndarray, low: np.ndarray, width: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin probabilities [n_examples, n_bins] of values [n_models, n_examples], per-example edges."""
    n_models, n_examples = values.shape
    index = np.floor((values - low) / width * n_bins).astype(np.intp)
    index = np.clip(index, 0, n_bins - 1)  # the joint maximum goes in the last bin
    flat = index + n_bins * np.arange(n_examples)  # [n_models, n_examples]
    counts = np.bincount(flat.ravel(), minlength=n_bins * n_examples).reshape(n_examples, n_bins)
    probabilities: np.ndarray = counts / n_models
    return probabilities


def likelihood_ratio_accuracy(unlearned_conf: ArrayLike, retrained_conf: ArrayLike) -> dict[str, Any]:
    """Balanced accuracy of a per-example Gaussian likelihood-ratio attack (U-LiRA style).

    Parameters
    ----------
    unlearned_conf, retrained_conf : arrays [n_models, n_examples], N >= 3

    Returns
    -------
    dict
        ``per_example``: float array [n_examples] in [0, 1], the balanced accuracy of
        telling unlearned from retrained models on that example; ``mean``, ``median``,
        ``n_models``, ``n_examples``.
    """
    unlearned, retrained = check_confidences(unlearned_conf, retrained_conf)
    n_models = unlearned.shape[0]
    if n_models < 3:
        raise ValueError(f"the attack fits Gaussians leaving one model out: needs N >= 3, got {n_models}")
    # Each model is scored with the fits of the others: its own side without it.
    u_hit = _log_ratio(unlearned, _loo_fit(unlearned), _fit(retrained)) > 0
    r_hit = _log_ratio(retrained, _fit(unlearned), _loo_fit(retrained)) <= 0
    per_example = (u_hit.mean(axis=0) + r_hit.mean(axis=0)) / 2
    return {
        "per_example": per_example,
        "mean": float(per_example.mean()),
        "median": float(np.median(per_example)),
        "n_models": n_models,
        "n_examples": int(per_example.size),
    }


def _fit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance [n_examples] of each example's sample."""
    return values.mean(axis=0), np.maximum(values.var(axis=0, ddof=1), _VAR_FLOOR)


def _loo_fit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out mean and variance [n_models, n_examples]: row k fitted without model k."""
    n = values.shape[0]
    total, squares = values.sum(axis=0), (values**2).sum(axis=0)
    mean = (total - values) / (n - 1)
    var = ((squares - values**2) - (n - 1) * mean**2) / (n - 2)
    return mean, np.maximum(var, _VAR_FLOOR)


def _log_ratio(
    x: np.ndarray, unlearned_fit: tuple[np.ndarray, np.ndarray], retrained_fit: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """log N(x; unlearned fit) - log N(x; retrained fit), elementwise."""
    (mu_u, var_u), (mu_r, var_r) = unlearned_fit, retrained_fit
    ratio: np.ndarray = -0.5 * (np.log(var_u) + (x - mu_u) ** 2 / var_u) + 0.5 * (
        np.log(var_r) + (x - mu_r) ** 2 / var_r
    )
    return ratio
