"""Ingestion: run a submission N times in isolation and hand back the models it returns.

One fresh worker process per submission (``python -m scoring.ingestion.worker``, see
``scoring.ingestion.worker``) forks one fresh process per run (``scoring.ingestion.fork_server``),
which loads the submission and runs it once on a fresh copy of the original model: no
run starts from a process state an earlier run touched. The worker runs inside the OS
sandbox of ``scoring.ingestion.sandbox`` under the kernel limits of
``scoring.ingestion.confinement`` and ``scoring.ingestion.cgroups`` (or, with ``sealed=False``, as
a plain process with the same limits, for participants whose machine cannot build
the sandbox), on exactly ``job.threads`` CPUs of its own (``scoring.backends.cpu_share``)
and, on CUDA, its one GPU. It receives only what the contract gives a submission: the
original model's state, the retain, forget and validation tensors, and each run's seed
when that run starts. Starting that process, its pipes, ending each run's processes
and ending the worker are ``scoring.ingestion.worker_process``'s; this module is the contract
and the protocol.

The scorer's side, here, enforces ``scoring.ingestion.limits``'s rule with its own clock:
each run is timed from sending its command to receiving its whole model (the submission's
load included: it happens in each run's process); the run's process is forked, and on
CUDA its device warmed up, before the clock starts. Once the model is in, every process
of the run is frozen, killed and waited for, and only then does the model count: nothing
of the submission runs while the scorer checks and evaluates it. Too slow means
``rejected``; a crash, an exception, an exit, a forged or garbled message, or a return
value that is not a model of the original architecture with finite weights means
``failed``. Each returned state_dict comes as safetensors, at most
``tensor_payload.payload_limit`` bytes (known before a byte is read), and is read by
``scoring.ingestion.tensor_payload``'s own strict parser (no pickle, no library trusted:
the original's names, dtypes and shapes exactly, byte ranges that tile the file, finite
weights) and handed to ``on_model`` before the next run starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch
from tqdm.auto import tqdm

from scoring.backends.cpu_share import cpu_share
from scoring.checks import is_number
from scoring.ingestion import sandbox
from scoring.ingestion.channel import ChannelError, WorkerGone
from scoring.ingestion.limits import Limits
from scoring.ingestion.run_seeds import derived_seed
from scoring.ingestion.tensor_payload import PayloadError, payload_limit, read_state
from scoring.ingestion.worker_process import WorkerProcess, exit_code_description, exit_description

if TYPE_CHECKING:
    from starter_kit.splits import Split


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker receives (and nothing else): see ``job_from_split``."""

    source: str
    filename: str
    model: dict[str, Any]  # {"name", "in_channels", "num_classes"}
    state: dict[str, torch.Tensor]
    parts: dict[str, tuple[torch.Tensor, torch.Tensor]]  # retain, forget, val: (images, labels)
    batch_size: int
    threads: int
    recipe: dict[str, Any]  # the split's training recipe, which the loaders carry (submission_loaders)
    device: str = "cpu"


def job_from_split(
    split: Split, source: str, filename: str, threads: int | None = None, device: str = "cpu"
) -> WorkerJob:
    """The job for one submission on ``split``: the original model, retain, forget and val only."""
    return WorkerJob(
        source=source,
        filename=filename,
        model={
            "name": split.recipe.model,
            "in_channels": int(split.dataset.image_shape[0]),
            "num_classes": int(split.dataset.num_classes),
        },
        state={name: value.detach().cpu() for name, value in split.original_model().state_dict().items()},
        parts={part: (split.images(part), split.labels(part)) for part in ("retain", "forget", "val")},
        batch_size=int(split.recipe.batch_size),
        recipe=split.recipe.to_dict(),
        threads=int(threads or torch.get_num_threads()),
        device=str(device),
    )


@dataclass
class RunRecord:
    """One completed run: its seed, the scorer's time for it, and the time the worker reported.

    ``isolation_seconds``: what isolating it cost the scorer outside its clock (waiting for
    its process to be forked and ready, then ending every process of the run)."""

    index: int
    seed: int
    seconds: float
    reported_seconds: float | None
    isolation_seconds: float = 0.0


@dataclass
class Ingestion:
    """What running a submission produced. ``status`` is completed, rejected or failed."""

    status: str
    reason: str | None
    sealed: bool = True
    runs: list[RunRecord] = field(default_factory=list)
    setup_seconds: float | None = None
    wall_seconds: float = 0.0
    callback_seconds: float = 0.0
    output: str = ""
    output_bytes: int = 0
    output_truncated: bool = False
    processes_left: int = 0  # started by a run and still running when it handed back its model (all killed)
    processes_survived: int = 0  # still there after the kill: must be 0
    process_cap_hit: bool = False
    memory_cap_hit: bool = False  # the memory cgroup's cap was reached
    cgroups_missing: list[str] = field(default_factory=list)  # controllers this host did not give (fallbacks used)
    caps_missing: list[str] | None = None  # caps the kernel did not hold (cgroups.CAPS, "gpu"); None: no worker


def run_submission(
    job: WorkerJob,
    seeds: list[int],
    limits: Limits,
    on_model: Callable[[int, dict[str, torch.Tensor]], None],
    progress: bool = True,
    sealed: bool = True,
) -> Ingestion:
    """Run ``unlearning`` once per seed, each run in a fresh process; call ``on_model(k, state_dict)`` per run.

    Stops at the first run that fails and as soon as the time spent exceeds what N runs
    may take. Never raises for anything the submission does; the returned
    :class:`Ingestion` says what happened. ``on_model`` may raise ValueError("returned a
    model that ...") to fail the run. Raises ``sandbox.SandboxUnavailable`` when
    ``sealed`` and the sandbox cannot start here. Holds ``job.threads`` CPUs of this machine
    for the worker (``cpu_share``: it waits while other tasks of the kit hold them).
    """
    if sealed:
        sandbox.require_sandbox()
    with cpu_share(job.threads) as cpus:
        return _run_on(job, seeds, limits, on_model, progress, sealed, cpus)


def _run_on(
    job: WorkerJob,
    seeds: list[int],
    limits: Limits,
    on_model: Callable[[int, dict[str, torch.Tensor]], None],
    progress: bool,
    sealed: bool,
    cpus: tuple[int, ...],
) -> Ingestion:
    """``run_submission`` on ``cpus``."""
    gpu = sandbox.assigned_gpu(job.device) if sealed and job.device.startswith("cuda") else None
    device = "cuda" if gpu is not None and gpu.uuid is not None else job.device  # that GPU alone is cuda:0 inside
    workdir = Path(tempfile.mkdtemp(prefix="unlearning-worker-"))  # the unsealed worker's folders; bound nowhere
    result = Ingestion(status="completed", reason=None, sealed=sealed)
    with tempfile.TemporaryFile() as job_file:  # unnamed (O_TMPFILE): the worker reads it from a descriptor
        torch.save(
            {
                "source": job.source,
                "filename": job.filename,
                "model": job.model,
                "state": job.state,
                "parts": job.parts,
                "batch_size": job.batch_size,
                "recipe": job.recipe,
                "threads": job.threads,
                "device": device,
                "memory_bytes": limits.memory_for(job.device),
                "sealed": sealed,  # the sandbox's /dev/shm and IPC namespace are its own: wiped between runs
            },
            job_file,
        )
        job_file.flush()
        job_file.seek(0)
        started = time.monotonic()
        worker = WorkerProcess(os.dup(job_file.fileno()), workdir, job.threads, job.device, limits, sealed, cpus, gpu)
    bar = tqdm(total=len(seeds), desc="submission runs", unit="run", disable=not progress, leave=False)
    try:
        _drive(worker, job, seeds, limits, on_model, result, bar)
    finally:
        bar.close()
        for name, value in vars(worker.stop()).items():  # how the worker ended, into the record
            setattr(result, name, value)
        result.wall_seconds = time.monotonic() - started
        shutil.rmtree(workdir, ignore_errors=True)
    if result.memory_cap_hit and result.status != "completed":
        result.status = "rejected"
        result.reason = f"the submission exceeded its memory ({result.reason})"
    elif result.process_cap_hit and result.status != "completed":
        result.status = "rejected"
        result.reason = f"the submission reached the cap of {limits.processes} processes and threads ({result.reason})"
    return result


def _drive(
    worker: WorkerProcess,
    job: WorkerJob,
    seeds: list[int],
    limits: Limits,
    on_model: Callable[[int, dict[str, torch.Tensor]], None],
    result: Ingestion,
    bar: tqdm[NoReturn],
) -> None:
    """The scorer's side of the protocol; fills ``result`` (status completed unless something stops it)."""
    process, channel = worker.process, worker.channel
    reference = job.state
    max_model = payload_limit(reference)  # the channel refuses more before reading it
    allowance = limits.allowance(len(seeds))

    def fail(status: str, reason: str) -> None:
        result.status, result.reason = status, reason

    def gone(during: str) -> None:
        fail("failed", f"the worker process {exit_description(process)} {during}")

    def untimed(event: str, during: str) -> dict[str, Any] | None:
        """The worker's next message, which must be ``event`` (None after failing the submission)."""
        try:
            message = channel.message(limits.setup_seconds)
        except WorkerGone:
            gone(during)
            return None
        except ChannelError as error:
            fail("failed", f"{error} {during}")
            return None
        if message is None:
            fail("failed", f"the worker did not answer within {limits.setup_seconds:g} s {during}")
        elif message.get("event") != event:
            fail("failed", f"the worker sent an unexpected message {during}")
        else:
            return message
        return None

    if untimed("warm", "while starting") is None:
        return
    result.setup_seconds = time.monotonic() - worker.started

    def over_allowance(spent: float, what: str) -> None:
        fail(
            "rejected",
            f"{what} took {spent:.2f} s, more than the {len(seeds)} runs may take in all "
            f"({len(seeds)} x {limits.run_seconds:.3f} s: the mean run time must be within the limit)",
        )

    spent = 0.0
    worker.send({"cmd": "arm"})  # run 0's process, forked (and its device warmed up) before the clock
    for index, seed in enumerate(seeds):
        isolating = time.monotonic()
        ready = untimed("ready", f"before run {index}")
        if ready is None:
            return
        worker.run_child = ready.get("pid") if isinstance(ready.get("pid"), int) else None
        wait = min(limits.hard_seconds, allowance - spent)
        sent = time.monotonic()
        try:
            worker.send({"cmd": "run", "run": index, "seed": derived_seed(int(seed))})
            message = channel.message(wait)
            payload = None
            if message is not None and message.get("ok") is True:
                payload = channel.payload(message.get("bytes"), max_model, wait - (time.monotonic() - sent))
        except (WorkerGone, BrokenPipeError):
            return gone(f"during run {index}")
        except ChannelError as error:
            return fail("failed", f"{error} during run {index}")
        received = time.monotonic()
        seconds = received - sent
        isolation = received - isolating - seconds
        # The clock has stopped: every process of the run ends before anything it sent counts.
        if not worker.end_run():
            return fail("failed", f"processes of run {index} survived being killed")
        if message is None or (message.get("ok") is True and payload is None):
            if wait < limits.hard_seconds:
                return over_allowance(spent + seconds, _runs_upto(index))
            return fail(
                "rejected",
                f"run {index} was stopped after {seconds:.1f} s, the most a single run may take "
                f"(the limit on the mean is {limits.run_seconds:.2f} s)",
            )
        if message.get("event") == "exited":  # the run's process ended without an answer
            return fail("failed", f"run {index}'s process {exit_code_description(message.get('code'))}")
        if message.get("event") == "setup_failed":
            return fail("failed", str(message.get("reason", "the submission could not be loaded"))[:500])
        if message.get("event") != "run" or message.get("index") != index:
            return fail("failed", f"the worker sent an unexpected message during run {index}")
        if message.get("ok") is not True:
            return fail("failed", f"run {index} {str(message.get('reason', 'failed'))[:500]}")
        if untimed("exited", f"after run {index}") is None:
            return
        isolation += time.monotonic() - received
        if channel.pending():
            return fail("failed", f"the worker sent more than one answer to run {index}")
        spent += seconds
        if spent > allowance:
            return over_allowance(spent, _runs_upto(index))
        assert payload is not None  # a run that answered ok without its payload has failed above
        if index + 1 < len(seeds):
            worker.send({"cmd": "arm"})  # the next run's process is forked while this one's model is evaluated
        state, reason = _read_state(payload, reference)
        if state is None:
            return fail("failed", f"run {index} {reason}")
        callback_started = time.monotonic()
        try:
            on_model(index, state)
        except ValueError as error:  # e.g. a model whose outputs are not finite
            return fail("failed", f"run {index} {error}")
        result.callback_seconds += time.monotonic() - callback_started
        reported = message.get("seconds")
        reported = float(reported) if is_number(reported) else None
        result.runs.append(RunRecord(index, int(seed), seconds, reported, isolation))
        bar.update(1)
        bar.set_postfix(run=f"{seconds:.2f}s", limit=f"{limits.run_seconds:.2f}s")


def _read_state(
    payload: bytes, reference: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """The state_dict a run sent, read by ``tensor_payload.read_state`` (nothing trusted); or a reason."""
    try:
        return read_state(payload, reference), None
    except PayloadError as error:
        return None, str(error)


def _runs_upto(index: int) -> str:
    """``run 0`` or ``runs 0-3``: the runs so far, for a reason."""
    return "run 0" if index == 0 else f"runs 0-{index}"
