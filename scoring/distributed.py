"""A submission's N runs split into chunks, each chunk a task on a :mod:`scoring.backends` backend.

``run_in_chunks`` is the distributed counterpart of ``scoring.ingestion.run_submission``
followed by evaluation: each chunk is one task (on Ray: one task per chunk on any node)
that starts one sandboxed worker with ``run_submission`` for the chunk's seeds and
evaluates every model it returns on the node, with the scorer's own
``scoring.outputs.Evaluator``, as soon as it returns. Only the outputs come back (forget
logits and confidences, three accuracies: |S| x (classes + 1) numbers per run), never a
model, so neither the task nor the scorer ever holds more than one model, and the
scorer receives each chunk's runs as that chunk finishes.

Runs, seeds and results are those of one worker doing all N runs (the run seed, not
the worker, decides a run), so on the CPU, with the same torch thread count, the score
is the local one bit for bit; only the timings differ.

The efficiency rule across chunks (``scoring.efficiency``): each run is timed by its
chunk's scorer side, outside the sandbox, exactly as locally. The submission loads once
per chunk; the rule charges the mean of those load times once, as one worker would pay
it: ``charged mean = (sum of all N run times + mean chunk load time) / N`` must be within
``limits.run_seconds``. A single run is still killed past ``limits.hard_seconds``, and a
chunk stops early, rejected, once its own runs and load exceed chunk size x the limit
(the bound ``run_submission`` applies to the runs it is given): with chunks of n runs,
a submission whose load alone exceeds n x the limit is rejected, so keep chunks large
enough (the default makes one chunk per task slot, at least ``MIN_CHUNK_RUNS`` runs).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from tqdm.auto import tqdm

from scoring.backends import Backend
from scoring.efficiency import Limits
from scoring.ingestion import Ingestion, RunRecord, WorkerJob, run_submission
from scoring.outputs import Evaluator, ModelOutputs
from scoring.references import SplitArrays

MIN_CHUNK_RUNS = 8


@dataclass
class ChunkResult:
    """What one chunk's task sends back: its ingestion (global run indices) and one output per completed run."""

    first: int
    ingestion: Ingestion
    outputs: list[ModelOutputs] = field(default_factory=list)


def chunk_bounds(n_runs: int, chunk_runs: int) -> list[tuple[int, int]]:
    """[(first, stop), ...] covering runs 0..n_runs-1 in order, each at most ``chunk_runs`` long."""
    if isinstance(chunk_runs, bool) or not isinstance(chunk_runs, int) or chunk_runs < 1:
        raise ValueError(f"chunk_runs must be an integer >= 1, got {chunk_runs!r}")
    return [(first, min(first + chunk_runs, n_runs)) for first in range(0, n_runs, chunk_runs)]


def default_chunk_runs(n_runs: int, slots: int) -> int:
    """One chunk per task slot, but no chunk shorter than MIN_CHUNK_RUNS runs (the load is paid per chunk)."""
    return max(MIN_CHUNK_RUNS, math.ceil(n_runs / max(1, slots)))


def run_in_chunks(
    job: WorkerJob,
    seeds: list[int],
    limits: Limits,
    split,
    backend: Backend,
    chunk_runs: int | None = None,
    slots: int | None = None,
    sealed: bool = True,
    device: str = "cpu",
    on_outputs: Callable[[int, ModelOutputs], None] | None = None,
    progress: bool = True,
) -> tuple[Ingestion, list[ModelOutputs]]:
    """Run ``job`` once per seed in chunks on ``backend``; return the combined Ingestion and outputs in run order.

    Parameters
    ----------
    job, seeds, limits, sealed
        As for ``scoring.ingestion.run_submission`` (``job.threads`` torch threads per
        worker; the chunk's task evaluates with the same count).
    split
        The split (shared with the tasks once): the evaluator's retain, forget and
        test sets and the architecture.
    backend
        Where chunks run: ``LocalBackend`` (one after another here, or in worker
        processes) or ``RayBackend`` (one Ray task per chunk, ``max_retries`` on a lost
        node: a chunk lost with its node is run again from its first run).
    chunk_runs
        Runs per chunk; None: ``default_chunk_runs(len(seeds), slots)``.
    slots
        How many chunks can run at once, for the default chunk size; None:
        ``backend.slots()`` (on Ray: the cluster's CPUs and GPUs over one task's).
    device
        Where the chunk's worker runs the submission and its models are evaluated.
    on_outputs
        Called here with (run index, outputs) for every run of a chunk as that chunk
        arrives (chunks in the order they finish, runs in order within a chunk).

    Returns
    -------
    (Ingestion, list of ModelOutputs)
        ``status`` completed only when all N runs completed and the charged mean run
        time (module docstring) is within the limit; otherwise the first failing
        chunk's status and reason (prefixed with its runs), or rejected for time.
        ``runs`` and the outputs are in run order; ``load_seconds`` is the mean chunk
        load time, ``setup_seconds`` the slowest chunk's; the log holds every chunk's.
    """
    n_runs = len(seeds)
    if chunk_runs is None:
        chunk_runs = default_chunk_runs(n_runs, backend.slots() if slots is None else slots)
    bounds = chunk_bounds(n_runs, chunk_runs)
    started = time.monotonic()
    task_device = backend.task_device(device)
    job = replace(job, device=task_device)  # on Ray a task's GPU is always its cuda:0
    shared_job, shared_split = backend.share(job), backend.share(SplitArrays.from_split(split))
    tasks = {
        backend.submit(_run_chunk, shared_job, shared_split, list(seeds[a:b]), a, limits, sealed, task_device): (a, b)
        for a, b in bounds
    }
    results: dict[int, ChunkResult] = {}
    bar = tqdm(total=n_runs, desc="submission runs", unit="run", disable=not progress, leave=False)
    try:
        for task in backend.as_completed(tasks):
            chunk: ChunkResult = task.result()
            results[chunk.first] = chunk
            for offset, outputs in enumerate(chunk.outputs):
                if on_outputs is not None:
                    on_outputs(chunk.first + offset, outputs)
            bar.update(len(chunk.outputs))
            if chunk.ingestion.status != "completed":
                break  # the submission failed: the other chunks are cancelled (backend.close)
    finally:
        bar.close()
    combined = _combine([results[a] for a, _ in bounds if a in results], n_runs, limits, sealed)
    combined.wall_seconds = time.monotonic() - started
    outputs = [o for a, _ in bounds if a in results for o in results[a].outputs]
    return combined, outputs


def _run_chunk(job: WorkerJob, split: SplitArrays, seeds: list[int], first: int, limits: Limits, sealed: bool, device: str) -> ChunkResult:
    """One chunk, where the backend runs it: a fresh sandboxed worker for ``seeds``, each model evaluated here."""
    torch.set_num_threads(job.threads)
    evaluator = Evaluator(split, device=device)
    outputs: list[ModelOutputs] = []

    def evaluate(index: int, state: dict[str, torch.Tensor]) -> None:
        try:
            outputs.append(evaluator.from_state(state))
        except ValueError as error:
            raise ValueError(f"returned a model whose outputs cannot be scored ({error})") from None

    ingestion = run_submission(job, seeds, limits, evaluate, progress=False, sealed=sealed)
    for run in ingestion.runs:
        run.index += first
    if ingestion.status != "completed":
        last = first + len(seeds) - 1
        ingestion.reason = f"in the worker for runs {first}-{last} (its run k is run {first}+k): {ingestion.reason}"
    return ChunkResult(first=first, ingestion=ingestion, outputs=outputs[: len(ingestion.runs)])


def _combine(chunks: list[ChunkResult], n_runs: int, limits: Limits, sealed: bool) -> Ingestion:
    """One Ingestion for all chunks (in run order), with the efficiency rule applied to all N runs."""
    combined = Ingestion(status="completed", reason=None, sealed=sealed)
    logs = []
    loads = []
    for chunk in chunks:
        part = chunk.ingestion
        combined.runs.extend(part.runs)
        if part.load_seconds is not None:
            loads.append(part.load_seconds)
        if part.setup_seconds is not None:
            combined.setup_seconds = max(combined.setup_seconds or 0.0, part.setup_seconds)
        combined.callback_seconds += part.callback_seconds
        combined.output_bytes += part.output_bytes
        combined.output_truncated |= part.output_truncated
        combined.processes_left += part.processes_left
        combined.processes_survived += part.processes_survived
        combined.process_cap_hit |= part.process_cap_hit
        last = chunk.first + max(len(part.runs), 1) - 1
        logs.append(f"--- runs {chunk.first}-{last} (one worker) ---\n{part.output}")
        if part.status != "completed" and combined.status == "completed":
            combined.status, combined.reason = part.status, part.reason
    combined.load_seconds = sum(loads) / len(loads) if loads else None
    combined.output = "\n".join(logs)
    if combined.status == "completed" and len(combined.runs) != n_runs:
        combined.status, combined.reason = "failed", f"{len(combined.runs)} of {n_runs} runs came back"
    if combined.status == "completed":
        spent = sum(r.seconds for r in combined.runs) + (combined.load_seconds or 0.0)
        if spent > limits.allowance(n_runs):
            combined.status = "rejected"
            combined.reason = (
                f"the {n_runs} runs and the submission's mean load took {spent:.2f} s, more than they may take in all "
                f"({n_runs} x {limits.run_seconds:.3f} s: the mean run time must be within the limit)"
            )
    return combined
