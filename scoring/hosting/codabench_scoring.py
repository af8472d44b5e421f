"""The scoring program's work: the official score of what ingestion returned, timed by the worker.

Run by the bundle's ``scoring_program`` (``run.py score $input $output``) with
``/app/input/res`` (the prediction step's output, beside the ``metadata`` file the compute
worker wrote) and ``/app/input/ref`` (reference_data). It never trains and never runs
participant code: each returned model is decoded from its exact difference with the
original (``scoring.hosting.weights_delta``: safetensors read by the scorer's strict parser,
no pickle; the original's names, dtypes and shapes, finite weights) and evaluated by
``scoring.outputs.Evaluator``; the score, its interval, the ceiling and the diagnostics
are ``scoring.assess.recompute``'s, the page ``scoring.html.pages``'s.

Efficiency comes from the worker's ``metadata`` alone, which the submission cannot write
(the worker refuses an output that already holds one; compute_worker.py, ``push_output``).
The worker times each container of the prediction step: the ingestion's
(``ingestionElapsedTime``) and, when the submission's zip holds a ``metadata`` file with a
command, the submission's own program, started beside the ingestion with the same
``/app/output`` (``exitCode``, ``elapsedTime``; without such a program ``exitCode`` is null
and ``elapsedTime`` is the ingestion's). One clock for everything a submission runs: a
prediction that shows a program of its own is ``rejected``, and the time charged is the
longest the worker recorded. The charged mean run time is (that time - the phase's set-up
allowance, measured at export) / N; over the limit is ``rejected``. The times
ingestion.json reports are shown as diagnostics, never judged.

Writes ``scores.json`` (the leaderboard columns, plus ``status`` and ``reason``; a failed or
rejected submission gets zeros in every column and exits 1, so Codabench marks it failed
and shows the reason in the scoring log) and ``detailed_results.html`` (the kit's report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import yaml

import starter_kit
from scoring.assess import recompute as assessment
from scoring.checks import is_number
from scoring.hosting.codabench_data import read_reference
from scoring.hosting.codabench_ingestion import RESULT_FILE, RUNS_DIR, read_result, run_file
from scoring.hosting.weights_delta import read
from scoring.html.pages import render_report
from scoring.outputs import Evaluator
from scoring.record import SCHEMA_VERSION, check_written
from scoring.references.build import ReferenceSet
from starter_kit.atomic import write_bytes, write_json

SCORES_FILE = "scores.json"
DETAILS_FILE = "detailed_results.html"
WORKER_METADATA = "metadata"
# (key, title, sorting, hidden): the leaderboard's columns, in order; competition.yaml is written from this.
COLUMNS = (
    ("score", "Score", "desc", False),
    ("F", "Forgetting quality F", "desc", False),
    ("retain_ratio", "RA_U / RA_R", "desc", False),
    ("test_ratio", "TA_U / TA_R", "desc", False),
    ("mean_run_seconds", "Mean run time (s)", "asc", False),
    ("N", "N runs", "desc", False),
    ("score_low", "Score, 95% low", "desc", True),
    ("score_high", "Score, 95% high", "desc", True),
)
COLUMN_KEYS = tuple(key for key, *_ in COLUMNS)


def read_worker_metadata(prediction_dir: Path) -> dict[str, Any]:
    """The compute worker's metadata of the prediction step; ValueError when missing or garbled."""
    try:
        found = yaml.safe_load((Path(prediction_dir) / WORKER_METADATA).read_text())
    except FileNotFoundError:
        raise ValueError(
            "the prediction output has no worker metadata: was this not run by a compute worker?"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        raise ValueError("the worker's metadata is not YAML") from None
    elapsed = found.get("ingestionElapsedTime") if isinstance(found, dict) else None
    if not is_number(elapsed):
        raise ValueError("the worker's metadata has no ingestionElapsedTime")
    return cast(dict[str, Any], found)


def check_prediction_output(prediction_dir: Path) -> None:
    """ValueError in one line when the prediction output is empty or, ingestion done, lacks runs/."""
    found = sorted(p.name for p in Path(prediction_dir).iterdir()) if Path(prediction_dir).is_dir() else []
    if not [name for name in found if name != WORKER_METADATA]:
        raise ValueError(
            "the prediction output is empty: the scoring job found nothing the prediction step uploaded "
            "(its upload failed or had not finished when scoring started; the organiser runs one compute worker "
            "per queue): submit again"
        )
    if RESULT_FILE in found and RUNS_DIR not in found:
        raise ValueError(
            f"the prediction output lacks {RUNS_DIR}/: the upload of the prediction step was cut short "
            "(worker disk or storage quota full?): submit again or ask the organiser"
        )


def program_beside_ingestion(metadata: dict[str, Any]) -> str | None:
    """Why the worker's metadata shows a program of the submission beside the ingestion, or None.

    compute_worker.py, ``Run.push_output``: ``exitCode`` is the submission program's (None when
    none ran) and ``elapsedTime`` is its time, or the ingestion's when none ran."""
    code, elapsed, ingestion = metadata.get("exitCode"), metadata.get("elapsedTime"), metadata["ingestionElapsedTime"]
    if code is None and (elapsed is None or elapsed == ingestion):
        return None
    shown = f"{float(elapsed):.1f} s" if is_number(elapsed) else "none"
    return (
        f"a program of the submission ran beside the ingestion (the worker recorded its exit code {code} and "
        f"{shown} against the ingestion's {float(ingestion):.1f} s): a submission is one .py file or notebook, "
        "with no metadata file or command"
    )


def score_prediction(input_dir: Path, output_dir: Path) -> dict[str, Any]:
    """Score /app/input (res and ref) into output_dir; return the record (status scored, rejected or failed)."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    reference = read_reference(input_dir / "ref")
    phase, refs = reference["phase"], reference["refs"]
    torch.set_num_threads(int(phase["threads"]))
    record = _base_record(phase, refs)
    arrays = {}
    try:
        check_prediction_output(input_dir / "res")
        metadata = read_worker_metadata(input_dir / "res")
        ingestion = read_result(input_dir / "res")
        record["time"].update(charged_time(metadata, phase))
        beside = program_beside_ingestion(metadata)
        if beside:
            raise _Stop("rejected", beside)
        n_runs = int(phase["n_runs"])
        if max(len(ingestion.get("seeds", [])), len(ingestion.get("runs", []))) > n_runs:
            raise ValueError(f"the ingestion program's results are garbled (more runs than the phase's {n_runs})")
        record["run_seeds"] = [int(s) for s in ingestion.get("seeds", [])]
        record["runs"] = [
            {"index": r["index"], "seed": r["seed"], "reported_seconds": r["reported_seconds"]}
            for r in ingestion.get("runs", [])
        ]
        if ingestion["status"] != "completed":
            raise _Stop(ingestion["status"], str(ingestion.get("reason") or "the ingestion program stopped"))
        if metadata.get("ingestionExitCode") not in (0, None):
            raise _Stop("failed", f"the ingestion program exited with code {metadata['ingestionExitCode']}")
        if record["time"]["charged_mean_seconds"] > phase["limit_seconds"]:
            raise _Stop(
                "rejected",
                (
                    f"mean run time {record['time']['charged_mean_seconds']:.3f} s (the worker's "
                    f"{record['time']['total_seconds']:.1f} s less {phase['setup_seconds']:g} s of set-up, "
                    f"over {phase['n_runs']} runs) is over the limit of {phase['limit_seconds']:.3f} s"
                ),
            )
        arrays = _score(record, input_dir / "res", reference)
    except _Stop as stop:
        record.update(status=stop.status, reason=stop.reason)
    except ValueError as error:
        record.update(status="failed", reason=" ".join(str(error).split()))
    output_dir.mkdir(parents=True, exist_ok=True)
    written = assessment.json_safe(record)
    check_written(written)
    write_bytes(output_dir / DETAILS_FILE, render_report(written, arrays).encode())
    write_json(output_dir / SCORES_FILE, scores_json(record))
    return record


class _Stop(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def scores_json(record: dict[str, Any]) -> dict[str, Any]:
    """The leaderboard's columns (zeros unless scored), the status and its one-line reason."""
    scored = record["status"] == "scored"
    interval = (record.get("intervals") or {}).get("score") or [None, None]
    values = {
        "score": record.get("score"),
        "F": record.get("F"),
        "retain_ratio": record.get("retain_ratio"),
        "test_ratio": record.get("test_ratio"),
        "mean_run_seconds": record["time"].get("charged_mean_seconds"),
        "N": record["N"],
        "score_low": interval[0],
        "score_high": interval[1],
    }
    columns = {key: float(values[key]) if scored and values[key] is not None else 0.0 for key in COLUMN_KEYS}
    return {**columns, "status": record["status"], "reason": record["reason"]}


def charged_time(metadata: dict[str, Any], phase: dict[str, Any]) -> dict[str, Any]:
    """The charged time: the longest the worker recorded for any program of the step, less the set-up."""
    times = [float(metadata[key]) for key in ("ingestionElapsedTime", "elapsedTime") if is_number(metadata.get(key))]
    elapsed = max(times)
    return {
        "ingestion_elapsed_seconds": round(float(metadata["ingestionElapsedTime"]), 3),
        "total_seconds": round(elapsed, 3),
        "charged_mean_seconds": round(max(0.0, elapsed - float(phase["setup_seconds"])) / int(phase["n_runs"]), 4),
        "measured_by": "the Codabench compute worker (the longest elapsed time of the prediction step's "
        f"programs), less a set-up allowance of {phase['setup_seconds']:g} s (measured at export), over N runs",
    }


def _base_record(phase: dict[str, Any], refs: ReferenceSet) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "status": None,
        "reason": None,
        "submission": {"name": f"codabench ({phase['phase']})"},
        "split": {key: phase["split"][key] for key in ("dataset", "name", "forget_strategy")},
        "sealed": True,
        "N": int(phase["n_runs"]),
        "n_forget": int(refs.forget_conf.shape[1]),
        "score": None,
        "F": None,
        "RA_U": None,
        "TA_U": None,
        "FA_U": None,
        "RA_R": float(refs.retain_accuracy.mean()),
        "TA_R": float(refs.test_accuracy.mean()),
        "FA_R": float(refs.forget_accuracy.mean()),
        "time": {
            "limit_seconds": phase["limit_seconds"],
            "limit_rule": phase["limit_rule"],
            "setup_seconds": phase["setup_seconds"],
            "reference_mean_training_seconds": phase["reference_mean_training_seconds"],
        },
        "sha256": {"split_manifest": phase["split"]["manifest_sha256"], "reference_set": phase["reference_set_sha256"]},
        "kit_version": starter_kit.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "torch_threads": int(phase["threads"]),
        "device": phase["device"],
        "runs": [],
    }


def _score(record: dict[str, Any], prediction_dir: Path, reference: dict[str, Any]) -> dict[str, Any]:
    """Evaluate every returned model and fill the score's fields; return the arrays for the report."""
    refs, n_runs = reference["refs"], int(reference["phase"]["n_runs"])
    evaluator = Evaluator(reference["split"], device=reference["phase"]["device"])
    outputs = []
    for index in range(n_runs):
        path = prediction_dir / run_file(index)
        try:
            state = read(path, reference["original"])
        except FileNotFoundError:
            raise _Stop("failed", f"run {index}'s model is missing from the prediction output") from None
        except (ValueError, OSError) as error:
            raise _Stop("failed", f"run {index}'s model cannot be read: {' '.join(str(error).split())}") from None
        try:
            outputs.append(evaluator.from_state(state))
        except ValueError as error:
            raise _Stop("failed", f"run {index} returned a model whose outputs cannot be scored ({error})") from None
        if index < len(record["runs"]):
            record["runs"][index].update(outputs[-1].accuracies())
    unlearned = np.stack([o.forget_conf for o in outputs])
    unlearned_acc = {c: np.array([getattr(o, c) for o in outputs]) for c in assessment.ACCURACY_COLUMNS}
    retrained_acc = {c: getattr(refs, c) for c in assessment.ACCURACY_COLUMNS}
    fields, epsilons = assessment.official(unlearned, refs.forget_conf, unlearned_acc, retrained_acc)
    record.update(status="scored", reason=None, **fields)
    record.update(
        assessment.assess(unlearned, refs.forget_conf, unlearned_acc, retrained_acc, epsilons, reference["ceiling"])
    )
    return {"unlearned_conf": unlearned, "epsilons": epsilons}
