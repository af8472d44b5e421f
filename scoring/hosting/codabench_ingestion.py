"""The ingestion program's work: run the participant's ``unlearning`` N times, keep what scoring needs.

Run by the bundle's ``ingestion_program`` (``run.py ingest $input $output
$submission_program``) in Codabench's container, where the container is the sandbox.
This process imports torch and the kit, never the submission: each run is a fresh child
process (``scoring.hosting.codabench_child``) that loads the submission and runs it once
with the worker's functions (``scoring.ingestion.worker``: a fresh copy of the original
model, ``seed_everything``, ``submission_loaders``' seeded loaders), so the contract and
the derivation of a run's seeds are the scorer's, and no run starts from a state an
earlier one touched. Everything a run started is ended before its model counts; this
process alone writes ``runs/`` and ``ingestion.json``, and checks at the end that no run
rewrote an earlier run's file.

Run seeds are drawn here, each when its run starts (``secrets``), and recorded in the
output: input_data is readable by the submission, so they cannot be stored there. An
offline run pins them with ``$KIT_PINNED_SEEDS`` (comma-separated; Codabench never sets it).

Output (``/app/output``; Codabench also copies the submission's own files there)::

    runs/run-0000.safetensors ...  each returned model, exact, as its difference from the
                             original (``scoring.hosting.weights_delta``): safetensors of XOR
                             byte planes, which the worker's zip deflates well (untouched
                             tensors are zeros)
    ingestion.json           written last: status (completed, failed, rejected) and a one-line
                             reason, the run seeds, per run this program's own times (diagnostics
                             only: scoring times the step with the worker's metadata) and the size
                             of its file, versions

Why the weights and not the models' outputs: scoring must measure test accuracy, and
the prediction step must not see the test set, so the returned models themselves have
to reach the scoring step (Codabench gives the two steps nothing in common but this
zipped output: ``/app/shared`` is mounted in the scoring step only, and reaches an
ingestion only when it runs during scoring, beside ``/app/input/ref``, which a submission
must never read). From them scoring computes
forget confidences, retain, forget and test accuracy with ``scoring.outputs.Evaluator``,
the code ``scoring score`` uses, so the two paths agree bit for bit on the CPU. Outputs
the submission's process computed would be numbers it could write itself. A returned
model is read as the scorer reads it (``scoring.ingestion.tensor_payload``: the original's
names, dtypes and shapes, finite weights; a clear reason at once) and again by scoring,
which trusts nothing this step wrote.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import starter_kit
from scoring.checks import is_int, is_number
from scoring.hosting.codabench_child import RunJob, become_subreaper, drops_privileges, preload, run_in_child
from scoring.hosting.codabench_data import read_task
from scoring.hosting.weights_delta import SUFFIX, encode
from scoring.ingestion.limits import Limits
from scoring.ingestion.run_seeds import (
    derived_seed,  # the seed a run sees, as the scorer derives it
)
from scoring.ingestion.tensor_payload import PayloadError, payload_limit, read_state
from scoring.ingestion.worker import RunParts
from starter_kit.atomic import write_bytes, write_json
from starter_kit.submission import submission_source

RESULT_FILE = "ingestion.json"
RUNS_DIR = "runs"
PINNED_SEEDS_ENV = "KIT_PINNED_SEEDS"
SUBMISSION_BYTES = 1 << 20  # source only: anything larger carries data, not code
SUBMISSION_SUFFIXES = (".py", ".ipynb")
RESULT_BYTES = 1 << 20  # ingestion.json: a status, a reason and a few numbers a run


def run_file(index: int) -> str:
    return f"{RUNS_DIR}/run-{index:04d}{SUFFIX}"


def find_submission(folder: Path) -> Path:
    """The one .py or .ipynb of a submission folder; ValueError in one line otherwise."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and "__MACOSX" not in p.parts)
    sources = [p for p in files if p.suffix in SUBMISSION_SUFFIXES]
    others = [p.name for p in files if p.suffix not in SUBMISSION_SUFFIXES]
    if len(sources) != 1 or others:
        found = ", ".join(p.name for p in files[:5]) or "nothing"
        raise ValueError(
            f"a submission is one .py file or notebook and nothing else (found {found}): "
            "make it with 'python -m starter_kit.notebook pack NOTEBOOK --out submission.zip'"
        )
    if sources[0].stat().st_size > SUBMISSION_BYTES:
        raise ValueError(f"{sources[0].name} is over {SUBMISSION_BYTES >> 20} MiB: a submission is code, not data")
    return sources[0]


def seed_source(n_runs: int) -> Callable[[], int]:
    """Run seeds, one a call: pinned by $KIT_PINNED_SEEDS (offline runs), else each drawn when its run starts
    (31 bits), so no seed of a later run exists while an earlier one runs."""
    pinned = os.environ.get(PINNED_SEEDS_ENV)
    if pinned:
        seeds = [int(s) for s in pinned.split(",")]
        if len(seeds) != n_runs:
            raise ValueError(f"${PINNED_SEEDS_ENV} holds {len(seeds)} seeds, the phase runs {n_runs}")
        return iter(seeds).__next__
    return lambda: secrets.randbelow(2**31)


def ingest(input_dir: Path, output_dir: Path, submission_dir: Path) -> dict[str, Any]:
    """Run the submission; write output_dir/runs and output_dir/ingestion.json; return the record.

    Runs as the ingestion program's whole process: it becomes the reaper of the runs' orphans
    (``codabench_child``) and kills every child process it did not have before a run.
    """
    output_dir = Path(output_dir)
    started = time.monotonic()
    record: dict[str, Any] = {
        "status": "failed",
        "reason": None,
        "runs": [],
        "seeds": [],
        "kit_version": starter_kit.__version__,
        "torch_version": torch.__version__.split("+")[0],
    }
    try:
        task, phase = read_task(Path(input_dir))
        record.update(phase=phase["phase"], n_runs=int(phase["n_runs"]), device=phase["device"])
        seeds = seed_source(int(phase["n_runs"]))
        path = find_submission(Path(submission_dir))
        record["submission"] = path.name
        source = submission_source(path)
    except ValueError as error:
        record["reason"] = " ".join(str(error).split())
        write_json(output_dir / RESULT_FILE, record)
        return record
    # One thread here, the phase's in each run: a child forked after its parent ran an OpenMP
    # parallel region hangs at its own first one (GNU libgomp), so this process never runs one.
    torch.set_num_threads(1)
    device = torch.device(phase["device"])
    if device.type == "cuda" and not cuda_available():
        record["reason"] = f"the phase runs on {device} and this compute worker has no GPU: use a GPU queue"
        write_json(output_dir / RESULT_FILE, record)
        return record
    record["isolation"] = {
        "process_per_run": True,
        "subreaper": become_subreaper(),
        "unprivileged_runs": drops_privileges(),
    }
    preload()
    limits = Limits(run_seconds=float(phase["limit_seconds"]))
    allowance = float(phase["setup_seconds"]) + limits.allowance(int(phase["n_runs"]))
    state = task.pop("state")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    job = RunJob(
        source, path.name, buffer.getvalue(), task["model"], RunParts(task["parts"], task["recipe"]),
        int(task["batch_size"]), device, int(phase["threads"]), payload_limit(state),
    )  # fmt: skip
    (output_dir / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    record["status"], record["reason"] = _runs(record, job, state, seeds, limits, allowance, started, output_dir)
    record["ingestion_seconds"] = round(time.monotonic() - started, 3)
    write_json(output_dir / RESULT_FILE, record)
    return record


def cuda_available() -> bool:
    """Whether a GPU is there, asked through NVML: the parent must never initialise CUDA, or no forked run could."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    return torch.cuda.is_available()


def _runs(
    record: dict[str, Any],
    job: RunJob,
    original_state: dict[str, torch.Tensor],
    seeds: Callable[[], int],
    limits: Limits,
    allowance: float,
    started: float,
    output_dir: Path,
) -> tuple[str, str | None]:
    """The N runs, each in a fresh child under its deadline; (status, reason)."""
    over = (
        f"the submission ran past its allowance of {allowance:.1f} s (set-up plus N x the limit of "
        f"{limits.run_seconds:.3f} s on the mean run time)"
    )
    written: dict[int, str] = {}
    for index in range(int(record["n_runs"])):
        remaining = allowance - (time.monotonic() - started)
        if remaining <= 0:
            return "rejected", over
        seed = seeds()
        record["seeds"].append(int(seed))
        try:
            outcome = run_in_child(
                job, index, derived_seed(seed), min(limits.hard_seconds, remaining), (output_dir, output_dir / RUNS_DIR)
            )
        except RuntimeError as error:  # a process of the run survived every kill
            return "failed", f"run {index}: {error}"
        if outcome.timed_out:
            if remaining < limits.hard_seconds:
                return "rejected", over
            return "rejected", (
                f"run {index} was stopped after {outcome.seconds:.1f} s, the most a single run may take "
                f"(the limit on the mean is {limits.run_seconds:.2f} s)"
            )
        message = outcome.message
        if not message.get("ok"):
            if message.get("stage") == "load":
                return "failed", str(message.get("reason"))
            return "failed", f"run {index} {message.get('reason', 'failed')}"
        try:
            data = encode(read_state(outcome.payload, original_state), original_state)
        except PayloadError as error:
            return "failed", f"run {index} {error}"
        write_bytes(output_dir / run_file(index), data)
        written[index] = hashlib.sha256(data).hexdigest()
        record["runs"].append(
            {
                "index": index,
                "seed": int(seed),
                "reported_seconds": round(outcome.seconds, 4),
                "load_seconds": message.get("load_seconds"),
                "bytes": len(data),
            }
        )
    return _unchanged(written, output_dir)


def _unchanged(written: dict[int, str], output_dir: Path) -> tuple[str, str | None]:
    """("completed", None) when every run file is still what this program wrote: no run rewrote another's."""
    for index, digest in written.items():
        try:
            now = hashlib.sha256((output_dir / run_file(index)).read_bytes()).hexdigest()
        except OSError:
            now = None
        if now != digest:
            return "failed", f"run {index}'s output was changed after the ingestion wrote it: runs must share nothing"
    return "completed", None


def read_result(prediction_dir: Path) -> dict[str, Any]:
    """ingestion.json of a prediction output, checked field by field (the submission ran in the process
    that wrote it); ValueError in one line when it is missing, oversized or garbled."""
    path = Path(prediction_dir) / RESULT_FILE
    try:
        if path.stat().st_size > RESULT_BYTES:
            raise ValueError(f"the ingestion program's results are garbled (over {RESULT_BYTES >> 10} KiB)")
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError("the ingestion program ended without writing its results (it crashed or was killed)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, OSError) as error:
        raise ValueError(f"the ingestion program's results are garbled ({type(error).__name__})") from None
    problem = _result_problem(record)
    if problem:
        raise ValueError(f"the ingestion program's results are garbled ({problem})")
    return dict(record, reason=" ".join(str(record.get("reason") or "").split())[:500] or None)


def _result_problem(record: object) -> str | None:
    """What in an ingestion.json is not as ``ingest`` writes it, or None."""
    if not isinstance(record, dict) or record.get("status") not in ("completed", "failed", "rejected"):
        return "no valid status"
    seeds, runs = record.get("seeds", []), record.get("runs", [])
    if not isinstance(seeds, list) or not all(is_int(seed) for seed in seeds):
        return "its seeds are not a list of integers"
    fields = (("index", is_int), ("seed", is_int), ("reported_seconds", is_number))
    if not isinstance(runs, list) or not all(
        isinstance(run, dict) and all(check(run.get(key)) for key, check in fields) for run in runs
    ):
        return "its runs are not a list of index, seed and reported_seconds"
    return None
