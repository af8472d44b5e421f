"""Scoring: run a submission through ingestion, evaluate what it returns, compute the official score.

The participant's code runs only inside ingestion's worker; here the returned weights
are loaded into the scorer's own model of the split's architecture, evaluated on the
forget, retain and test sets, and compared with the first N reference models through
``scoring.metric.forgetting`` (pure functions on arrays).

Folder layout of a scoring run (one folder per submission and split, written in a
hidden staging folder and renamed into place, ``score.json`` last)::

    OUT/
      score.json           (typed in scoring.record, which says which fields are public; its
                           schema_version) the team that handed it in; status (scored / rejected / failed)
                           and reason; score, F, RA_U,
                           TA_U, RA_R, TA_R, FA_U, FA_R; N and |S|; run times and the limits
                           applied; sha256 of the submission, split manifest and reference
                           set; kit and torch versions; whether sealed; run times as the
                           scorer measured them, their mean and 95th percentile and the rule;
                           the processes left behind; one record per run; run seeds only
                           when no scoring secret is set
      unlearned_conf.npy   [N, |S|] float64  forget-set confidences of the N unlearned models
      epsilons.npy         [|S|] float64     per-example epsilons
      runs.csv             per run, its public fields: index, seconds, reported seconds, accuracies, diagnostics
      report.html          all of score.json as one self-contained page
      score.png            epsilon histogram and the score's three factors
      organisers/          the organisers' alone, never handed to participants:
        retrained_conf.npy        [N, |S|] float64 the same for the first N reference models
        retrained_accuracies.csv  [N] accuracies of those reference models (with the files
                                  above, every number of score.json can be recomputed)
        seeds.json                with $SCORING_SECRET set: the run seeds
      submission.log       the worker's stdout and stderr (first and last 128 KiB)

A rejected or failed submission gets score.json, runs.csv and submission.log (the
arrays and the figure only when scored). Scoring the same submission twice with the
same references gives the same values: the run seeds derive from the split manifest
(and the organisers' secret).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

import starter_kit
from scoring.assess import recompute as assessment
from scoring.backends.interface import Backend
from scoring.checks import check_team
from scoring.html.pages import render_report
from scoring.html.summary import score_figure
from scoring.ingestion.cgroups import require_caps
from scoring.ingestion.confinement import make_non_dumpable
from scoring.ingestion.limits import Limits, limit_basis, time_limit, time_statistics
from scoring.ingestion.runner import Ingestion, job_from_split, run_submission
from scoring.outputs import SECRET_ENV, Evaluator, ModelOutputs, derive_seed
from scoring.record import SCHEMA_VERSION, SCORE_FILE, check_written, public_fields, public_view
from scoring.record.fields import fields
from scoring.record.types import Ceiling, PerRun, Run
from scoring.references.build import ReferenceSet, load_references
from starter_kit.atomic import npy_bytes, staged_directory, write_bytes, write_json
from starter_kit.splits import Split, load_split
from starter_kit.submission import submission_source

_OUTPUT_FILES = (
    SCORE_FILE,
    "unlearned_conf.npy",
    "retrained_conf.npy",
    "epsilons.npy",
    "runs.csv",
    "score.png",
    "submission.log",
    "report.html",
    assessment.ORGANISERS_DIR,
)


@dataclass
class ScoreOptions:
    """One scoring run. None means the default described in ``score_submission``."""

    submission: Path
    split_dir: Path
    n_models: int
    out: Path
    refs_dir: Path | None = None
    time_limit: float | None = None
    memory_bytes: int | None = None
    setup_limit: float = 120.0
    threads: int | None = None
    device: str = "cpu"
    progress: bool = True
    unsealed: bool = False
    allow_missing_caps: bool = False  # score even where a cap cannot be held (recorded as sealed: false)
    limit_note: str | None = None  # says why --time-limit was set (e.g. lifted for a sanity row)
    backend: Backend | None = None  # runs in chunks there (None: one local worker)
    team: str | None = None  # who handed it in (scoring.checks.check_team); the command line requires it
    replace: bool = False  # True: an OUT that already holds a score is replaced


def run_seed(manifest_sha256: str, index: int) -> int:
    """The seed of run ``index`` on a split: fixed, so a rescore repeats every run."""
    return derive_seed("run", manifest_sha256, index)


def score_submission(options: ScoreOptions) -> dict[str, Any]:
    """Score ``options.submission``; write ``options.out`` (layout above); return score.json's record.

    Raises ValueError or OSError for what the organiser must fix (no split, too few
    reference models, an OUT that is not a score folder, or one that holds a score
    without ``options.replace``, a bad team name); anything wrong with the
    submission itself is a status in the record instead.

    Defaults: the limit on the mean run time is 20% of retraining one model alone (the
    reference set's calibration; for an older set without one, of the mean training time
    of the N reference models used), the memory allowance half of the machine's memory. Raises
    ``SandboxUnavailable`` (an OSError) when the sandbox cannot start and
    ``options.unsealed`` is not set.
    """
    if not options.unsealed:
        make_non_dumpable()  # nothing of the same user reads this process's memory or environment
    caps_missing = require_caps(options.allow_missing_caps or options.unsealed)
    submission = Path(options.submission)
    out = Path(options.out)
    team = None if options.team is None else check_team(options.team)
    _check_out(out, options.replace)
    if not submission.is_file():
        raise FileNotFoundError(f"submission {submission} not found: give a .ipynb notebook or a .py file")
    split = load_split(options.split_dir)
    refs = load_references(split, options.n_models, options.refs_dir)
    limit, rule = time_limit(options, refs)
    limits = Limits(run_seconds=limit, memory_bytes=options.memory_bytes, setup_seconds=options.setup_limit)
    seeds = [run_seed(split.manifest_sha256, k) for k in range(options.n_models)]
    record = _base_record(options, submission, split, refs, seeds, limits, rule)
    record["team"] = team

    outputs: list[ModelOutputs] = []  # one per completed run, in run order
    try:
        source = submission_source(submission)
    except ValueError as error:
        ingestion = Ingestion(status="failed", reason=str(error))
    else:
        evaluator = Evaluator(split, device=options.device)

        def evaluate(index: int, state: dict[str, torch.Tensor]) -> None:
            try:
                outputs.append(evaluator.from_state(state))
            except ValueError as error:
                raise ValueError(f"returned a model whose outputs cannot be scored ({error})") from None

        job = job_from_split(split, source, submission.name, threads=options.threads, device=options.device)
        if options.backend is None:
            ingestion = run_submission(
                job, seeds, limits, evaluate, progress=options.progress, sealed=not options.unsealed
            )
        else:
            from scoring.ingestion.chunks import run_in_chunks

            ingestion, chunk_outputs = run_in_chunks(
                job,
                seeds,
                limits,
                split,
                options.backend,
                sealed=not options.unsealed,
                device=options.device,
                progress=options.progress,
            )
            outputs.extend(chunk_outputs)
        if ingestion.status == "completed":
            ceiling = assessment.reference_ceiling(split, options.n_models, refs.directory)

    record.update(status=ingestion.status, reason=ingestion.reason)
    if ingestion.caps_missing is not None:  # a worker started: what its kernel held
        caps_missing = list(ingestion.caps_missing)
    record.update(sealed=not options.unsealed and not caps_missing, caps_missing=caps_missing)
    record["time"].update(
        time_statistics([r.seconds for r in ingestion.runs], None, options.n_models)  # each run's time has its load
    )
    record["time"]["setup_seconds"] = _round(ingestion.setup_seconds)
    record["processes"] = {
        "left_running": ingestion.processes_left,
        "survived_kill": ingestion.processes_survived,
        "cap": limits.processes,
        "cap_reached": ingestion.process_cap_hit,
        "memory_cap_reached": ingestion.memory_cap_hit,
        "cgroups_missing": list(ingestion.cgroups_missing),
    }
    record["output"] = {
        "bytes": ingestion.output_bytes,
        "truncated": ingestion.output_truncated,
        "file": "submission.log",
    }
    record["timing"] = {
        "ingestion_seconds": round(ingestion.wall_seconds - ingestion.callback_seconds, 3),
        "evaluation_seconds": round(ingestion.callback_seconds, 3),
    }
    arrays: dict[str, NDArray[np.float64]] = {}
    if ingestion.status == "completed":
        started = time.perf_counter()
        try:
            arrays = _score(record, outputs, refs, ceiling)
        except ValueError as error:  # outputs the metric cannot take (the estimator's own edge cases are no error)
            record.update(status="failed", reason=f"the official score is undefined for these outputs: {error}")
        record["timing"]["metric_seconds"] = round(time.perf_counter() - started, 3)
    record["runs"] = [
        {
            "index": run.index,
            "seconds": round(run.seconds, 4),
            "reported_seconds": _round(run.reported_seconds),
            **outputs[i].accuracies(),
        }
        for i, run in enumerate(ingestion.runs)
    ]
    organisers: dict[str, Any] = {"references": _reference_runs(refs)}
    if os.environ.get(SECRET_ENV):  # seeds derived from the secret are the organisers' alone
        organisers["seeds"] = {"run_seeds": [int(s) for s in seeds], "submission": record["submission"]["name"]}
    else:
        record["run_seeds"] = [int(s) for s in seeds]
        for run in record["runs"]:
            run["seed"] = int(seeds[run["index"]])
    record["scored_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write_outputs(out, record, arrays, ingestion.output, organisers, refs.forget_conf if arrays else None)
    return record


def _check_out(out: Path, replace: bool) -> None:
    """OUT may be new, empty, or an earlier score folder with ``replace``; anything else is refused."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory: choose another --out")
    names = {p.name for p in out.iterdir()}
    if names and (SCORE_FILE not in names or not names <= set(_OUTPUT_FILES)):
        raise FileExistsError(
            f"{out} exists and is not a score folder (it holds {', '.join(sorted(names)[:3])}...): choose another --out"
        )
    if names and not replace:
        raise FileExistsError(
            f"{out} already holds a score{_whose(out / SCORE_FILE)}: pass --replace to replace it, "
            "or choose another --out"
        )


def _whose(path: Path) -> str:
    """`` (team's file, scored at ...)`` from an earlier score.json, as far as it can be read."""
    try:
        record = json.loads(path.read_text())
        team = f"{record['team']}'s " if record.get("team") else ""
        return f" ({team}{record['submission']['name']}, scored {record['scored_at']})"
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return ""


def _sha256(path: Path) -> str:
    """The file's digest, read in blocks: a submission of any size costs no memory."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _base_record(
    options: ScoreOptions,
    submission: Path,
    split: Split,
    refs: ReferenceSet,
    seeds: list[int],
    limits: Limits,
    rule: str,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "status": None,
        "reason": None,
        "submission": {"name": submission.name, "path": str(submission)},
        "split": {
            "dataset": split.dataset.name,
            "name": split.manifest["split"]["name"],
            "dir": str(split.directory),
            "forget_strategy": split.manifest["split"]["forget"]["strategy"],
        },
        "sealed": not options.unsealed,
        "caps_missing": [],
        "N": options.n_models,
        "n_forget": int(len(split.indices["forget"])),
        "score": None,
        "F": None,
        "RA_U": None,
        "TA_U": None,
        "FA_U": None,
        "RA_R": float(refs.retain_accuracy.mean()),
        "TA_R": float(refs.test_accuracy.mean()),
        "FA_R": float(refs.forget_accuracy.mean()),
        "time": {
            "limit_seconds": round(limits.run_seconds, 4),
            "limit_rule": rule,
            "rule": limits.rule(),
            "hard_kill_seconds": round(limits.hard_seconds, 4),
            "measured_by": "the scorer, outside the sandbox: from sending a run its command to receiving its model",
            "reference_mean_training_seconds": round(float(refs.training_seconds.mean()), 4),
            "alone_training_seconds": refs.calibration["seconds"] if refs.calibration else None,
            "limit_basis": limit_basis(options, refs),
            # Compare with torch_threads below: a limit derived from references trained
            # with other thread counts than the runs get is not a fair 20%.
            "reference_torch_threads": sorted({int(t) for t in refs.torch_threads}),
        },
        "limits": {"memory_bytes": limits.memory_for(options.device), "setup_seconds": limits.setup_seconds},
        "sha256": {
            "submission": _sha256(submission),
            "split_manifest": split.manifest_sha256,
            "reference_set": refs.sha256,
        },
        "references": {"dir": str(refs.directory), "n_used": refs.n_models},
        "kit_version": starter_kit.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "torch_threads": int(options.threads or torch.get_num_threads()),
        "device": str(options.device),
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _score(
    record: dict[str, Any], outputs: list[ModelOutputs], refs: ReferenceSet, ceiling: Ceiling | None
) -> dict[str, NDArray[np.float64]]:
    """Fill the score fields of ``record`` and what is reported beside them; return the arrays to write."""
    unlearned = np.stack([o.forget_conf for o in outputs])
    unlearned_acc = {column: np.array([getattr(o, column) for o in outputs]) for column in assessment.ACCURACY_COLUMNS}
    retrained_acc = assessment.accuracies_from_frame(_reference_runs(refs))
    fields, epsilons = assessment.official(unlearned, refs.forget_conf, unlearned_acc, retrained_acc)
    record.update(status="scored", reason=None, **fields)
    record.update(assessment.assess(unlearned, refs.forget_conf, unlearned_acc, retrained_acc, epsilons, ceiling))
    return {"unlearned_conf": unlearned, "epsilons": epsilons}


def _reference_runs(refs: ReferenceSet) -> pd.DataFrame:
    """Per reference model: its accuracies (organisers' data: reference outputs)."""
    return pd.DataFrame(
        {
            "index": np.arange(refs.n_models),
            "retain_accuracy": refs.retain_accuracy,
            "forget_accuracy": refs.forget_accuracy,
            "test_accuracy": refs.test_accuracy,
        }
    )


def runs_table(runs: list[dict[str, Any]], diagnostics: bool) -> pd.DataFrame:
    """runs.csv: a run's public fields (``Run``'s allow-list, in its order), never a seed.

    The columns are the same whatever the runs hold (a header even with no run); the
    per-run diagnostics' columns only where the record has diagnostics.
    """
    columns = [c for c in public_fields(Run) if diagnostics or c not in fields(PerRun)]
    return pd.DataFrame(public_view(runs, list[Run]), columns=columns)


def _write_outputs(
    out: Path,
    record: dict[str, Any],
    arrays: dict[str, NDArray[np.float64]],
    log: str,
    organisers: dict[str, Any],
    retrained_conf: NDArray[np.float64] | None,
) -> None:
    """The folder: participant-facing files at the top, reference outputs and seeds under organisers/."""
    if "diagnostics" in record:
        for name, values in record["diagnostics"]["per_run"].items():
            for run, value in zip(record["runs"], values, strict=True):
                run[name] = value
    runs = runs_table(record["runs"], "diagnostics" in record)
    with staged_directory(out, replace=True) as staging:
        private = staging / assessment.ORGANISERS_DIR
        private.mkdir()
        write_bytes(private / "retrained_accuracies.csv", organisers["references"].to_csv(index=False).encode())
        if retrained_conf is not None:
            write_bytes(private / "retrained_conf.npy", npy_bytes(retrained_conf))
        if "seeds" in organisers:
            write_json(private / "seeds.json", organisers["seeds"])
        for name, array in arrays.items():
            write_bytes(staging / f"{name}.npy", npy_bytes(array))
        write_bytes(staging / "runs.csv", runs.to_csv(index=False).encode())
        write_bytes(staging / "submission.log", log.encode())
        if record["status"] == "scored":
            write_bytes(staging / "score.png", score_figure(record, arrays["epsilons"]))
        record["files"] = sorted([*(p.name for p in staging.iterdir()), "report.html", SCORE_FILE])
        written = assessment.json_safe(record)
        check_written(written)
        write_bytes(staging / "report.html", render_report(written, arrays).encode())
        write_json(staging / SCORE_FILE, written)
