"""The official metric: pure functions on confidence arrays that know nothing of models or files.

Import the public functions from here (``from scoring.metric import forgetting_quality``),
as ``sklearn.metrics`` re-exports its private modules' functions; the steps they number
are those of the metric's page (``docs/metric.md``). The modules behind the facade:

- ``forgetting``: the official score, exact and fast (epsilons, F, the score);
- ``attacks``, ``pairs``, ``thresholds``, ``grids``: each example's best attack, vectorised across
  examples, with bounds that skip attacks which cannot beat the best found (exact: the same max);
- ``transcription``: the same metric transcribed literally from the spec, dense and slow (the tests' oracle);
- ``files``: ``python -m scoring metric``'s work, F of two saved .npy arrays.
"""

from scoring.metric.files import MetricReport, load_confidences, run_metric
from scoring.metric.forgetting import (
    epsilon_bin_counts,
    epsilon_bin_index,
    epsilon_points,
    forgetting_quality,
    forgetting_quality_from_epsilons,
    logit_scaled_confidence,
    n_epsilon_bins,
    official_score,
    per_example_epsilons,
)

__all__ = [
    "MetricReport",
    "epsilon_bin_counts",
    "epsilon_bin_index",
    "epsilon_points",
    "forgetting_quality",
    "forgetting_quality_from_epsilons",
    "load_confidences",
    "logit_scaled_confidence",
    "n_epsilon_bins",
    "official_score",
    "per_example_epsilons",
    "run_metric",
]
