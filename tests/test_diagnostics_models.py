"""scoring.assess.diagnostics on real models of the tiny digits split: honest submissions stay
unflagged, the original model in half the runs is flagged (issue 20's calibration check).

The simulated confidences of tests/test_diagnostics.py say how the tests behave by
construction; these say the thresholds hold on what a submission really returns."""

from __future__ import annotations

import numpy as np
import pytest
from submissions import _fixtures as kit

from scoring.assess import diagnostics
from scoring.metric import forgetting as metric
from scoring.references.build import build_references
from starter_kit.baselines.finetune import finetune
from starter_kit.baselines.random_labels import random_labels
from starter_kit.evaluation import predict
from starter_kit.splits import load_split
from starter_kit.submission import seed_everything, submission_loaders

N = 8  # runs of each honest submission; the references: 2N, half the yardstick, half retraining's runs


@pytest.fixture(scope="module")
def models(split, tmp_path_factory):
    """Forget-set confidences [runs, |S|]: 2N references, N runs of each baseline, the original model."""
    loaded = load_split(split)
    with kit.one_thread():
        refs = build_references(loaded, 2 * N, tmp_path_factory.mktemp("refs-2n"), progress=False)
        forget = loaded.loader("forget", shuffle=False)

        def confidences(net):
            logits, targets = predict(net, forget)
            return metric.logit_scaled_confidence(logits.double().numpy(), targets.numpy())

        found = {"references": refs.forget_conf, "original": confidences(loaded.original_model())}
        for method in (finetune, random_labels):
            runs = []
            for seed in range(N):
                seed_everything(seed)
                runs.append(confidences(method(loaded.original_model(), *submission_loaders(loaded, seed))))
            found[method.__name__] = np.stack(runs)
    return found


@pytest.mark.parametrize("submission", ["retraining", "finetune", "random_labels"])
def test_honest_submissions_are_not_flagged(models, submission):
    yardstick, retraining = models["references"][:N], models["references"][N:]
    runs = retraining if submission == "retraining" else models[submission]
    found = diagnostics.run_diagnostics(runs, yardstick)
    assert found["n_distinct_runs"] == N and found["duplicate_groups"] == []
    assert not (found["mixture"] or found["duplicates"] or found["identical"]), found["mixture_separation"]


def test_the_original_in_half_of_16_runs_is_flagged(models):
    """Issue 20's mixture: the original model in half the runs, a new model (here finetune's) in the others."""
    runs = np.concatenate([np.tile(models["original"], (N, 1)), models["finetune"]])
    found = diagnostics.run_diagnostics(runs, models["references"])
    assert found["duplicates"] and found["duplicate_groups"] == [list(range(N))]
    assert not found["identical"]
