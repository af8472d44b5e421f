"""The calibration of a reference set: one model trained alone, the basis of the default time limit.

docs/protocol.md defines the time limit against retraining: one model trained alone, from
scratch, with the kit's default training path on that device, compilation and capture
excluded. References are often trained several at a time (``--jobs`` processes on the
CPU, ``--models-together`` on CUDA, many Ray tasks), and then each records its share of
a busy machine, which is longer than that, by how busy it was. So
:func:`scoring.references.build.build_references` trains one more model, alone (one task,
nothing else of the kit submitted, before any reference), and index.json records its
time. Why it is not one of the references: the reference models, their seeds and the
set's sha256 stay what they are whether, when or how often it was measured, and an
organiser can measure it again (``--calibrate``) on a quieter machine without touching
the set. Its cost is one model more per folder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def calibration_record(result: dict[str, Any], seed: int, backend: str, before: int, together: int) -> dict[str, Any]:
    """index.json's record of the calibration model from its task's ``result`` (see ``_reference_task``).

    ``seconds`` is the time the limit uses: on the fast path (CUDA) its epochs alone,
    since compilation and capture come before them; on the CPU loop, the whole training.
    ``before`` reference models were trained after it on ``backend``, ``together`` per task.
    """
    training = result["training"]
    fast = "epochs_seconds" in training
    when = (
        f"before training {before} reference model(s) on {backend}"
        if before
        else f"on {backend}, nothing else training"
    )
    if before and together > 1:
        when += f", {together} at once per task"
    return {
        "seconds": round(float(training["epochs_seconds"] if fast else result["training_seconds"]), 4),
        "wall_seconds": round(float(result["training_seconds"]), 4),
        "excludes": "set-up, compilation and capture (the epochs alone)"
        if fast
        else "nothing (no compilation on this path)",
        "seed": seed,
        "when": "alone, " + when,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": result["device"],
        "torch_threads": int(result["torch_threads"]),
        "host": result["host"],
        "training": training,
        "accuracies": result["outputs"].accuracies(),
        "kit_version": result["kit_version"],
    }
