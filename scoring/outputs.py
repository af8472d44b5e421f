"""What the scorer keeps of a model: forget-set logits and confidences, three accuracies.

Shared by the reference models and the unlearned ones, so both sides of the official
score are measured by the same code: logits in the scorer's own process, with the
architecture built from the split's recipe, never with a submission's objects.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.utils.data import DataLoader

from scoring.metric import forgetting as metric
from starter_kit.evaluation import predict

EVAL_BATCH_SIZE = 1024  # inference only: large batches, the result does not depend on it
SCORED_PARTS = ("retain", "forget", "test")


@dataclass(frozen=True)
class ModelOutputs:
    """One model's outputs on a split.

    ``forget_logits`` is [|S|, classes] float32 and ``forget_conf`` [|S|] float64 (the
    logit-scaled confidence of the true label, in the manifest's forget order).
    """

    forget_logits: np.ndarray
    forget_conf: np.ndarray
    retain_accuracy: float
    forget_accuracy: float
    test_accuracy: float
    seconds: float = 0.0

    def accuracies(self) -> dict[str, float]:
        return {
            "retain_accuracy": self.retain_accuracy,
            "forget_accuracy": self.forget_accuracy,
            "test_accuracy": self.test_accuracy,
        }


class EvaluatedSplit(Protocol):
    """What ``Evaluator`` reads of a split: a ``starter_kit.splits.Split``, or the arrays a remote task gets."""

    def loader(self, part: str, batch_size: int = ...) -> DataLoader[Any]: ...

    def labels(self, part: str) -> torch.Tensor: ...

    def new_model(self) -> nn.Module: ...


class Evaluator:
    """Evaluates models on a split's retain, forget and test sets (loaders built once)."""

    def __init__(
        self, split: EvaluatedSplit, device: str | torch.device = "cpu", batch_size: int = EVAL_BATCH_SIZE
    ) -> None:
        self.split = split
        self.device = torch.device(device)
        self.loaders = {part: split.loader(part, batch_size) for part in SCORED_PARTS}
        self.forget_targets = split.labels("forget").numpy()

    def new_model(self) -> nn.Module:
        """A fresh model of the split's architecture (to load a state_dict into)."""
        return self.split.new_model()

    def from_state(self, state: dict[str, torch.Tensor]) -> ModelOutputs:
        """Outputs of the split's architecture with ``state`` loaded (strictly)."""
        model = self.new_model()
        model.load_state_dict(state, strict=True)
        return self(model)

    def __call__(self, model: nn.Module) -> ModelOutputs:
        started = time.perf_counter()
        model = model.to(self.device).eval()
        accuracies: dict[str, float] = {}
        forget_logits: NDArray[np.float32] | None = None
        for part, loader in self.loaders.items():
            logits, targets = predict(model, loader)
            accuracies[part] = float((logits.argmax(1) == targets).double().mean())
            if part == "forget":
                forget_logits = logits.numpy().astype(np.float32)
        assert forget_logits is not None  # SCORED_PARTS holds "forget"
        conf = metric.logit_scaled_confidence(forget_logits.astype(np.float64), self.forget_targets)
        return ModelOutputs(
            forget_logits=forget_logits,
            forget_conf=conf,
            retain_accuracy=accuracies["retain"],
            forget_accuracy=accuracies["forget"],
            test_accuracy=accuracies["test"],
            seconds=time.perf_counter() - started,
        )


SECRET_ENV = "SCORING_SECRET"


def derive_seed(purpose: str, manifest_sha256: str, index: int, secret: str | None = None) -> int:
    """A 31-bit seed from (purpose, split manifest, index, organiser secret): stable, distinct per purpose.

    Reference models use purpose ``reference`` and submission runs ``run``, so no run
    ever shares a seed with a reference model of the same split. Without a secret, anyone
    with the manifest can compute the seeds; an organiser sets ``$SCORING_SECRET`` so that
    participants cannot (the seeds are still recorded in the organiser's outputs).
    ``secret`` overrides the environment (``""``: the seed without a secret).
    """
    secret = os.environ.get(SECRET_ENV, "") if secret is None else secret
    digest = hashlib.sha256(f"unlearning-kit/{secret}/{purpose}/{manifest_sha256}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
