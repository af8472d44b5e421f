"""scoring.assess.ceiling: the estimator's ceiling (references against references) and the normalised score."""

from __future__ import annotations

import numpy as np
import pytest
from test_uncertainty import FAST, _runs  # the simulated confidences and cheap settings of the interval tests

from scoring.assess import ceiling
from scoring.metric import forgetting as metric


def test_ceiling_of_one_distribution_and_retraining_lands_in_it():
    rng = np.random.default_rng(9)
    mean, scale = rng.normal(2, 2, 40), rng.uniform(0.5, 1.5, 40)
    references = mean + scale * rng.standard_normal((16, 40))
    top = ceiling.ceiling(references, 8, n_splits=3, **FAST)
    assert 0.1 < top["value"] < 0.3  # identical distributions: about 0.19 at N = 8
    assert top["low"] < top["value"] < top["high"]
    assert len(top["splits"]) == 3 and top["value"] == pytest.approx(np.mean(top["splits"]))
    assert (top["n_models"], top["n_references"], top["n_references_used"], top["reduced"]) == (8, 16, 16, False)
    assert top["interval"]["n_models"] == 8
    retrain = metric.forgetting_quality(mean + scale * rng.standard_normal((8, 40)), references[:8])
    assert top["low"] <= retrain <= top["high"]
    poor = metric.forgetting_quality(mean + scale * (3.0 + rng.standard_normal((8, 40))), references[:8])
    assert poor < top["low"]


def test_ceiling_with_too_few_references_uses_smaller_halves():
    rng = np.random.default_rng(10)
    top = ceiling.ceiling(rng.normal(0, 1, (13, 20)), 8, n_splits=2, **FAST)
    assert top["reduced"] and top["n_models"] == 6 and top["n_models_requested"] == 8
    assert "13 references" in top["note"] and "N = 6" in top["note"]
    assert top["n_references_used"] >= 12
    with pytest.raises(ValueError, match="at least 6 references"):
        ceiling.ceiling(rng.normal(0, 1, (5, 20)), 8)
    with pytest.raises(ValueError, match="2-D"):
        ceiling.ceiling(rng.normal(0, 1, 20), 8)
    with pytest.raises(ValueError, match="n_splits"):
        ceiling.ceiling(rng.normal(0, 1, (16, 20)), 8, n_splits=0)


def test_normalised_score():
    assert ceiling.normalised_score(0.09, 0.18) == pytest.approx(0.5)
    np.testing.assert_allclose(ceiling.normalised_score([0.09, 0.0, 0.2], 0.2), [0.45, 0.0, 1.0])
    for bad in (0.0, -0.1, np.nan, [0.2]):
        with pytest.raises(ValueError, match="ceiling_value"):
            ceiling.normalised_score(0.1, bad)
    with pytest.raises(ValueError, match="forgetting_quality"):
        ceiling.normalised_score(-0.1, 0.2)


def test_the_ceiling_is_plain_json():
    import json

    rng = np.random.default_rng(15)
    top = ceiling.ceiling(_runs(16, 20, rng), 8, n_splits=1, **FAST)
    assert json.loads(json.dumps(top, allow_nan=False)) == top


def test_the_printed_ceiling_gives_the_n_it_was_measured_at():
    from scoring.html.summary import describe_ceiling

    reduced = {
        "value": 0.34,
        "low": 0.3,
        "high": 0.38,
        "n_models": 16,
        "n_models_requested": 32,
        "n_splits": 5,
        "n_references_used": 32,
        "reduced": True,
        "note": "only 32 references: halves of 16 models, not 32; the ceiling is measured at N = 16",
    }
    text = describe_ceiling(reduced, 32)
    assert text.splitlines()[0].startswith("  ceiling: F of retraining itself at N = 16: 0.3400")
    assert "not 32" in text.splitlines()[1]
    assert "no normalised score; train 64 references for a ceiling at N = 32" in text.splitlines()[1]
