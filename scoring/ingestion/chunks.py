"""A submission's N runs split into chunks, each chunk a task on a :mod:`scoring.backends.interface` backend.

``run_in_chunks`` is the distributed counterpart of ``scoring.ingestion.runner.run_submission``
followed by evaluation: each chunk is one task (on Ray: one task per chunk on any node)
that starts one sandboxed worker with ``run_submission`` for the chunk's seeds and
evaluates every model it returns on the node, with the scorer's own
``scoring.outputs.Evaluator``, as soon as it returns. Only the outputs come back (forget
logits and confidences, three accuracies: |S| x (classes + 1) numbers per run), never a
model, so neither the task nor the scorer ever holds more than one model.

Each chunk is a stream (``Backend.stream``; on Ray a streaming generator task): it
yields each run's outputs as soon as that run is evaluated, then the chunk's
:class:`~scoring.ingestion.runner.Ingestion`, so the scorer receives every run as it finishes
(its progress bar advances per run), not when the whole chunk ends. A chunk whose node
dies is run again by Ray from its first run, whole, and the chunk's last item carries
every run's outputs with their times: the result takes both from the one attempt that
finished the chunk (the runs an earlier attempt streamed only advance the progress
bar, once each; Ray does not even hand over a retried stream's items whose places were
already delivered). Run outputs are the run seed's alone, so the result is that of an
undisturbed run.

Runs, seeds and results are those of one worker doing all N runs (the run seed, not
the worker, decides a run), so on the CPU, with the same torch thread count, the score
is the local one bit for bit; only the timings differ.

The efficiency rule across chunks (``scoring.ingestion.limits``): each run is timed by its
chunk's scorer side, outside the sandbox, exactly as locally (the submission's load
included: every run loads it in its own process). The mean of all N run times must be
within ``limits.run_seconds``. A single run is still killed past ``limits.hard_seconds``,
and a chunk stops early, rejected, once its own runs exceed chunk size x the limit (the
bound ``run_submission`` applies to the runs it is given).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from scoring.backends.cpu_share import confine_process, cpu_share
from scoring.backends.interface import Backend
from scoring.checks import check_int
from scoring.ingestion.cgroups import CAPS
from scoring.ingestion.limits import Limits
from scoring.ingestion.runner import Ingestion, WorkerJob, run_submission
from scoring.outputs import Evaluator, ModelOutputs
from scoring.references.split_arrays import SplitArrays

if TYPE_CHECKING:
    from starter_kit.splits import Split

MIN_CHUNK_RUNS = 8


@dataclass
class RunOutputs:
    """What a chunk's stream yields per run, as soon as the run is evaluated: its global index and outputs."""

    index: int
    outputs: ModelOutputs


@dataclass
class ChunkResult:
    """A chunk's stream's last item: its ingestion (global run indices) and, in run order, the outputs of the
    same attempt's runs (those streamed ahead may come from an attempt that did not finish)."""

    first: int
    ingestion: Ingestion
    outputs: list[ModelOutputs]


def chunk_bounds(n_runs: int, chunk_runs: int) -> list[tuple[int, int]]:
    """[(first, stop), ...] covering runs 0..n_runs-1 in order, each at most ``chunk_runs`` long."""
    chunk_runs = check_int(chunk_runs, "chunk_runs", 1)
    return [(first, min(first + chunk_runs, n_runs)) for first in range(0, n_runs, chunk_runs)]


def default_chunk_runs(n_runs: int, slots: int) -> int:
    """One chunk per task slot, but no chunk shorter than MIN_CHUNK_RUNS runs (a worker starts per chunk)."""
    return max(MIN_CHUNK_RUNS, math.ceil(n_runs / max(1, slots)))


def run_in_chunks(
    job: WorkerJob,
    seeds: list[int],
    limits: Limits,
    split: Split,
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
        As for ``scoring.ingestion.runner.run_submission`` (``job.threads`` torch threads per
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
        Called here with (run index, outputs) once per run, as soon as the run arrives
        (runs in order within a chunk; chunks interleaved as they run). A run that
        arrives and is then lost to a failure later in its chunk is not in the result.

    Returns
    -------
    (Ingestion, list of ModelOutputs)
        ``status`` completed only when all N runs completed and the charged mean run
        time (module docstring) is within the limit; otherwise the first failing
        chunk's status and reason (prefixed with its runs), or rejected for time.
        ``runs`` and the outputs are in run order; ``setup_seconds`` is the slowest
        chunk's; the log holds every chunk's.
    """
    n_runs = len(seeds)
    if chunk_runs is None:
        chunk_runs = default_chunk_runs(n_runs, backend.slots() if slots is None else slots)
    bounds = chunk_bounds(n_runs, chunk_runs)
    started = time.monotonic()
    task_device = backend.task_device(device)
    job = replace(job, device=task_device)  # on Ray a task's GPU is always its cuda:0
    shared_job, shared_split = backend.share(job), backend.share(SplitArrays.from_split(split))
    streams = [
        backend.stream(_run_chunk, shared_job, shared_split, list(seeds[a:b]), a, limits, sealed, task_device)
        for a, b in bounds
    ]
    announced: set[int] = set()  # run indices handed to on_outputs and the progress bar: each once
    results: dict[int, ChunkResult] = {}
    bar = tqdm(total=n_runs, desc="submission runs", unit="run", disable=not progress, leave=False)
    try:
        for _, item in backend.as_yielded(streams):
            if isinstance(item, RunOutputs):
                if item.index not in announced:
                    announced.add(item.index)
                    if on_outputs is not None:
                        on_outputs(item.index, item.outputs)
                    bar.update(1)
                continue
            results[item.first] = item
            if item.ingestion.status != "completed":
                break  # the submission failed: the other chunks are cancelled (backend.close)
    finally:
        bar.close()
    chunks = [results[a] for a, _ in bounds if a in results]
    combined = _combine(chunks, n_runs, limits, sealed)
    combined.wall_seconds = time.monotonic() - started
    # Each run's outputs from the attempt that timed it: the one that finished its chunk.
    outputs = [output for chunk in chunks for output in chunk.outputs]
    return combined, outputs


def _run_chunk(
    job: WorkerJob, split: SplitArrays, seeds: list[int], first: int, limits: Limits, sealed: bool, device: str
) -> Iterator[RunOutputs | ChunkResult]:
    """One chunk, where the backend runs it: a fresh sandboxed worker for ``seeds``, each model evaluated here.

    Yields each run's :class:`RunOutputs` as soon as it is evaluated, then the chunk's
    :class:`ChunkResult`. ``run_submission`` hands models to a callback, so it runs in a
    thread of this process and the callback passes each run's outputs over a queue to
    this generator, which yields them to the backend (on Ray: to the scorer).
    """
    with cpu_share(job.threads) as cpus, confine_process(cpus):  # the worker below gets the same CPUs
        yield from _chunk_on(job, split, seeds, first, limits, sealed, device)


def _chunk_on(
    job: WorkerJob, split: SplitArrays, seeds: list[int], first: int, limits: Limits, sealed: bool, device: str
) -> Iterator[RunOutputs | ChunkResult]:
    torch.set_num_threads(job.threads)
    evaluator = Evaluator(split, device=device)
    ready: queue.Queue[RunOutputs | None] = queue.Queue()  # None after the last run: the ingestion is in ``outcome``
    outcome: dict[str, Any] = {}

    def evaluate(index: int, state: dict[str, torch.Tensor]) -> None:
        try:
            ready.put(RunOutputs(first + index, evaluator.from_state(state)))
        except ValueError as error:
            raise ValueError(f"returned a model whose outputs cannot be scored ({error})") from None

    def ingest() -> None:
        try:
            outcome["ingestion"] = run_submission(job, seeds, limits, evaluate, progress=False, sealed=sealed)
        except BaseException as error:  # noqa: BLE001 - raised again by the generator, in the task
            outcome["error"] = error
        ready.put(None)

    thread = threading.Thread(target=ingest, name=f"runs {first}+", daemon=True)
    thread.start()
    # A plain loop, not ``yield from``: Ray drives a streaming generator with ``send``, which
    # ``yield from`` would pass on to this iterator, and a callable iterator has no ``send``.
    outputs = []
    for item in iter(ready.get, None):
        outputs.append(item.outputs)
        yield item
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    ingestion = outcome["ingestion"]
    for run in ingestion.runs:
        run.index += first
    if ingestion.status != "completed":
        last = first + len(seeds) - 1
        ingestion.reason = f"in the worker for runs {first}-{last} (its run k is run {first}+k): {ingestion.reason}"
    yield ChunkResult(first=first, ingestion=ingestion, outputs=outputs)


def _combine(chunks: list[ChunkResult], n_runs: int, limits: Limits, sealed: bool) -> Ingestion:
    """One Ingestion for all chunks (in run order), with the efficiency rule applied to all N runs."""
    combined = Ingestion(status="completed", reason=None, sealed=sealed)
    logs = []
    for chunk in chunks:
        part = chunk.ingestion
        combined.runs.extend(part.runs)
        if part.setup_seconds is not None:
            combined.setup_seconds = max(combined.setup_seconds or 0.0, part.setup_seconds)
        combined.callback_seconds += part.callback_seconds
        combined.output_bytes += part.output_bytes
        combined.output_truncated |= part.output_truncated
        combined.processes_left += part.processes_left
        combined.processes_survived += part.processes_survived
        combined.process_cap_hit |= part.process_cap_hit
        combined.memory_cap_hit |= part.memory_cap_hit
        combined.cgroups_missing = sorted(set(combined.cgroups_missing) | set(part.cgroups_missing))
        if part.caps_missing is not None:
            union = set(combined.caps_missing or []) | set(part.caps_missing)
            combined.caps_missing = [cap for cap in (*CAPS, "gpu") if cap in union]
        last = chunk.first + max(len(part.runs), 1) - 1
        logs.append(f"--- runs {chunk.first}-{last} (one worker) ---\n{part.output}")
        if part.status != "completed" and combined.status == "completed":
            combined.status, combined.reason = part.status, part.reason
    combined.output = "\n".join(logs)
    if combined.status == "completed" and len(combined.runs) != n_runs:
        combined.status, combined.reason = "failed", f"{len(combined.runs)} of {n_runs} runs came back"
    if combined.status == "completed":
        spent = sum(r.seconds for r in combined.runs)
        if spent > limits.allowance(n_runs):
            combined.status = "rejected"
            combined.reason = (
                f"the {n_runs} runs took {spent:.2f} s, more than they may take in all "
                f"({n_runs} x {limits.run_seconds:.3f} s: the mean run time must be within the limit)"
            )
    return combined
