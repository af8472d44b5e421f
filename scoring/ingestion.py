"""Ingestion: run a submission N times in isolation and hand back the models it returns.

The submission runs in one fresh worker process (``python -P -m scoring.worker``, see
``scoring.worker``) per submission, which performs the N runs one after another, each
on a fresh copy of the original model. The worker:

- receives only what the contract gives a submission: the original model's state, the
  retain, forget and validation tensors, and one seed per run, sent when the run
  starts (never the test set, the split directory or the scorer's results folder);
- works in a temporary directory of its own (its cwd), deleted afterwards;
- has its address space capped (RLIMIT_AS: its size after importing torch plus
  ``Limits.memory_bytes``, default half of the machine's memory; no cap on CUDA), so a
  huge allocation fails inside the submission instead of taking the machine down;
- has its stdout and stderr captured, keeping the first and last ``output_bytes / 2``
  bytes, so a submission printing megabytes floods neither the screen nor memory.

The scorer's side enforces the limits: a run gets ``run_seconds`` (as the worker times
its ``unlearning`` call) and is killed when it has taken ``run_seconds + grace`` on the
scorer's clock; all runs together get ``budget_seconds`` of wall time. Too slow means
``rejected``. A crash, an exception, an exit, a return value that is not a model of
the original architecture with finite weights means ``failed``. Each returned
state_dict is read with ``torch.load(weights_only=True)``, checked, and handed to
``on_model`` before the next run starts, so evaluation never competes with a timed run.

Isolation is that of a separate process of the same user, not a sandbox: a hostile
submission could still read files the user can read. Organisers who need more run
the scorer in a container or as a dedicated user.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from scoring.outputs import SECRET_ENV

# The project root, so that ``python -m scoring.worker`` imports this very kit.
_ROOT = Path(__file__).resolve().parent.parent
_MAX_MESSAGE = 1 << 20  # a protocol line longer than this is not one the worker wrote


def machine_memory() -> int:
    """Physical memory of this machine, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Limits:
    """What a submission may use. Seconds are wall-clock seconds on the scoring machine.

    ``memory_bytes``: how much the worker may allocate beyond its own size after
    importing torch (None: half of the machine's memory; 0: no cap).
    ``grace_seconds``: how long past ``run_seconds`` the scorer waits before killing a
    run (default: max(2 s, half the limit)); covers saving the returned model.
    """

    run_seconds: float
    budget_seconds: float
    memory_bytes: int | None = None
    setup_seconds: float = 120.0
    grace_seconds: float | None = None
    output_bytes: int = 256 * 1024

    def __post_init__(self):
        for name in ("run_seconds", "budget_seconds", "setup_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.memory_bytes is not None and self.memory_bytes < 0:
            raise ValueError(f"memory_bytes must be >= 0 (0: no cap), got {self.memory_bytes}")

    @property
    def grace(self) -> float:
        return self.grace_seconds if self.grace_seconds is not None else max(2.0, 0.5 * self.run_seconds)

    @property
    def memory(self) -> int:
        return machine_memory() // 2 if self.memory_bytes is None else int(self.memory_bytes)

    def memory_for(self, device: str) -> int:
        """The allowance on ``device``: none on CUDA, whose driver maps far more address space than it uses."""
        return 0 if str(device).startswith("cuda") else self.memory


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker receives (and nothing else): see ``job_from_split``."""

    source: str
    filename: str
    model: dict  # {"name", "in_channels", "num_classes"}
    state: dict[str, torch.Tensor]
    parts: dict[str, tuple[torch.Tensor, torch.Tensor]]  # retain, forget, val: (images, labels)
    batch_size: int
    threads: int
    device: str = "cpu"


def job_from_split(split, source: str, filename: str, threads: int | None = None, device: str = "cpu") -> WorkerJob:
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
        threads=int(threads or torch.get_num_threads()),
        device=str(device),
    )


@dataclass
class RunRecord:
    """One completed run: its seed, its ``unlearning`` time and the scorer's wall time."""

    index: int
    seed: int
    seconds: float
    wall_seconds: float


@dataclass
class Ingestion:
    """What running a submission produced. ``status`` is completed, rejected or failed."""

    status: str
    reason: str | None
    runs: list[RunRecord] = field(default_factory=list)
    setup_seconds: float | None = None
    wall_seconds: float = 0.0
    callback_seconds: float = 0.0
    output: str = ""
    output_bytes: int = 0
    output_truncated: bool = False


def check_state(state: object, reference: dict[str, torch.Tensor]) -> str | None:
    """Why ``state`` is not a state_dict of the reference's architecture with finite weights, or None."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        return "returned a model whose state_dict is not a mapping of names to tensors"
    missing = [name for name in reference if name not in state]
    unexpected = [name for name in state if name not in reference]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
        return f"returned a model of another architecture ({'; '.join(parts)})"
    for name, expected in reference.items():
        value = state[name]
        if tuple(value.shape) != tuple(expected.shape):
            return (
                f"returned a model of another architecture ({name} has shape {list(value.shape)}, "
                f"expected {list(expected.shape)})"
            )
        if value.is_floating_point() != expected.is_floating_point() or value.is_complex():
            return f"returned a model whose {name} is {value.dtype}, expected {expected.dtype}"
        if value.is_floating_point() and not torch.isfinite(value).all():
            kind = "NaN" if torch.isnan(value).any() else "infinite"
            return f"returned a model with {kind} weights in {name}"
    return None


class _CappedOutput:
    """Drains a pipe in a thread, keeping its first and last ``cap / 2`` bytes."""

    def __init__(self, pipe, cap: int):
        self.pipe, self.half = pipe, max(1, cap // 2)
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        fd = self.pipe.fileno()
        while chunk := os.read(fd, 1 << 16):
            self.total += len(chunk)
            room = self.half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        self.thread.join(timeout=5)
        middle = b""
        if self.truncated:
            skipped = self.total - len(self.head) - len(self.tail)
            middle = f"\n[... {skipped} bytes of output left out ...]\n".encode()
        return bytes(self.head + middle + self.tail).decode(errors="replace")


class _WorkerGone(Exception):
    """The worker's result pipe closed: it exited or was killed."""


class _Messages:
    """JSON lines from the worker's result pipe, with a timeout per message."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def next(self, timeout: float) -> dict | None:
        """The next message, None on timeout; raises _WorkerGone on end of file, ValueError if garbled."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise _WorkerGone()
            self.buffer += chunk
            if len(self.buffer) > _MAX_MESSAGE:
                raise ValueError("the worker sent an oversized message")
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("the worker sent a garbled message") from None
        if not isinstance(message, dict):
            raise ValueError("the worker sent a garbled message")
        return message


def run_submission(
    job: WorkerJob,
    seeds: list[int],
    limits: Limits,
    on_model: Callable[[int, dict[str, torch.Tensor]], None],
    progress: bool = True,
) -> Ingestion:
    """Run ``unlearning`` once per seed in one fresh worker; call ``on_model(k, state_dict)`` per run.

    Stops at the first run that fails or is too slow. Never raises for anything the
    submission does; the returned :class:`Ingestion` says what happened. ``on_model``
    may raise ValueError("returned a model that ...") to fail the run.
    """
    workdir = Path(tempfile.mkdtemp(prefix="unlearning-worker-"))
    reference = job.state
    max_file = 2 * sum(v.numel() * v.element_size() for v in reference.values()) + (1 << 20)
    torch.save(
        {
            "source": job.source,
            "filename": job.filename,
            "model": job.model,
            "state": job.state,
            "parts": job.parts,
            "batch_size": job.batch_size,
            "threads": job.threads,
            "device": job.device,
            "memory_bytes": limits.memory_for(job.device),
        },
        workdir / "job.pt",
    )
    command_read, command_write = os.pipe()
    result_read, result_write = os.pipe()
    env = {name: value for name, value in os.environ.items() if name != SECRET_ENV}  # the worker never sees it
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(OMP_NUM_THREADS=str(job.threads), MKL_NUM_THREADS=str(job.threads), PYTHONUNBUFFERED="1")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "scoring.worker", "job.pt", str(command_read), str(result_write)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(command_read, result_write),
        start_new_session=True,  # its own process group: a kill reaches whatever it started
    )
    os.close(command_read)
    os.close(result_write)
    output = _CappedOutput(process.stdout, limits.output_bytes)
    messages = _Messages(result_read)
    result = Ingestion(status="completed", reason=None)
    bar = tqdm(total=len(seeds), desc="submission runs", unit="run", disable=not progress, leave=False)
    try:
        _drive(process, messages, command_write, workdir, job, seeds, limits, reference, max_file, on_model, result, bar)
    finally:
        bar.close()
        os.close(command_write)
        _stop(process)
        os.close(result_read)
        result.wall_seconds = time.monotonic() - started
        result.output = output.text()
        result.output_bytes = output.total
        result.output_truncated = output.truncated
        process.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _drive(process, messages, command_write, workdir, job, seeds, limits, reference, max_file, on_model, result, bar):
    """The scorer's side of the protocol; fills ``result`` (status completed unless something stops it)."""

    def fail(status: str, reason: str) -> None:
        result.status, result.reason = status, reason

    def gone(during: str) -> None:
        fail("failed", f"the worker process {_exit_description(process)} {during}")

    started = time.monotonic()
    try:
        message = messages.next(limits.setup_seconds)
    except _WorkerGone:
        return gone("while loading the submission")
    except ValueError as error:
        return fail("failed", f"{error} while loading the submission")
    if message is None:
        return fail("rejected", f"loading the submission took longer than {limits.setup_seconds:g} s")
    result.setup_seconds = time.monotonic() - started
    if message.get("event") == "setup_failed":
        return fail("failed", str(message.get("reason", "the submission could not be loaded"))[:500])
    if message.get("event") != "ready":
        return fail("failed", "the worker sent an unexpected message while loading the submission")

    total = 0.0
    for index, seed in enumerate(seeds):
        budget_left = limits.budget_seconds - total
        wait = min(limits.run_seconds, budget_left) + limits.grace
        sent = time.monotonic()
        try:
            os.write(command_write, (json.dumps({"run": index, "seed": int(seed)}) + "\n").encode())
            message = messages.next(wait)
        except (_WorkerGone, BrokenPipeError):
            return gone(f"during run {index}")
        except ValueError as error:
            return fail("failed", f"{error} during run {index}")
        wall = time.monotonic() - sent
        if message is None:
            if budget_left < limits.run_seconds:
                return fail(
                    "rejected",
                    f"run {index} was stopped after {wall:.1f} s: the {len(seeds)} runs exceed the total budget "
                    f"of {limits.budget_seconds:.1f} s",
                )
            return fail(
                "rejected", f"run {index} was stopped after {wall:.1f} s: over the limit of {limits.run_seconds:.2f} s per run"
            )
        if message.get("event") != "run" or message.get("index") != index:
            return fail("failed", f"the worker sent an unexpected message during run {index}")
        if not message.get("ok"):
            return fail("failed", f"run {index} {str(message.get('reason', 'failed'))[:500]}")
        seconds = message.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            return fail("failed", f"the worker sent an unexpected message during run {index}")
        total += wall
        if seconds > limits.run_seconds:
            return fail("rejected", f"run {index} took {seconds:.2f} s, over the limit of {limits.run_seconds:.2f} s per run")
        if total > limits.budget_seconds:
            return fail(
                "rejected",
                f"runs 0-{index} took {total:.1f} s in all, over the total budget of {limits.budget_seconds:.1f} s",
            )
        state, reason = _load_state(workdir / f"run-{index}.pt", max_file, reference)
        if reason is not None:
            return fail("failed", f"run {index} {reason}")
        callback_started = time.monotonic()
        try:
            on_model(index, state)
        except ValueError as error:  # e.g. a model whose outputs are not finite
            return fail("failed", f"run {index} {error}")
        result.callback_seconds += time.monotonic() - callback_started
        result.runs.append(RunRecord(index=index, seed=int(seed), seconds=seconds, wall_seconds=wall))
        bar.update(1)
        bar.set_postfix(run=f"{seconds:.2f}s", limit=f"{limits.run_seconds:.2f}s")


def _load_state(path: Path, max_file: int, reference: dict) -> tuple[dict | None, str | None]:
    """The state_dict a run saved, read with weights_only=True and checked; or a reason."""
    try:
        size = path.stat().st_size
    except OSError:
        return None, "returned no model file"
    if size > max_file:
        return None, f"returned a model of {size / 2**20:.1f} MiB, more than twice the original's size"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - whatever the file holds, it is the submission's failure
        return None, f"returned a model that cannot be read as a state_dict ({type(error).__name__})"
    finally:
        path.unlink(missing_ok=True)
    reason = check_state(state, reference)
    return (None, reason) if reason else (state, None)


def _exit_description(process: subprocess.Popen) -> str:
    try:
        code = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return "closed its result channel"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory, or the submission killed its own process)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code} (did the submission call os._exit or exit the interpreter?)"


def _stop(process: subprocess.Popen) -> None:
    """End the worker and whatever it started: kill its process group (nothing of it is needed now)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # also whatever the submission started
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
