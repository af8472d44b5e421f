"""One run of the Codabench ingestion in a fresh child process, and everything it started ended.

The ingestion program (``codabench_ingestion``) is the parent: it has imported torch and
the kit, never the submission, and on CUDA it never initialises the device. For each
run it forks a child that loads the submission (its import included), runs it once with
the scorer's ``run_one`` and sends the returned state_dict back through a pipe. The
parent alone writes ``runs/`` and ``ingestion.json``. Before the run's result counts the
parent ends the child's process group and every process the run left behind (the parent
is a child subreaper, so daemons that left the group are re-parented to it and killed),
and deletes what the run created in the scratch folders and the output. So no run starts from a process
state an earlier run touched: memory, threads, children, descriptors, GPU contexts and
scratch files die with it. Run as root (Codabench's containers), the child also drops
to an unprivileged user, so it can write nothing but scratch folders: not ``/app/output``,
not the program folders.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scoring.ingestion.confinement import PR_SET_CHILD_SUBREAPER, prctl
from scoring.ingestion.worker import RunParts, load_submission, run_one, warm_up

RUN_UID = 65534  # nobody: the child's user when the ingestion runs as root
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable: the only places a dropped run can write
SWEEP_SECONDS = 5.0
_HEADER_LINE_BYTES = 64 << 10  # the JSON line before the payload: a status and a one-line reason
GONE = (ProcessLookupError, ChildProcessError, PermissionError)  # a process already ended or reaped


@dataclass(frozen=True)
class RunJob:
    """What a child needs for one run; the parent holds it, the child inherits it by fork."""

    source: str
    filename: str
    original: bytes
    spec: dict[str, Any]
    parts: RunParts
    batch_size: int
    device: torch.device
    threads: int
    payload_limit: int  # the most bytes a returned model may take (``tensor_payload.payload_limit``)


@dataclass
class RunOutcome:
    """The child's message (ok, reason, seconds, load_seconds) and payload; ``timed_out`` past the deadline."""

    message: dict[str, Any]
    payload: bytes
    seconds: float
    timed_out: bool = False


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where it cannot."""
    return prctl(PR_SET_CHILD_SUBREAPER, 1)


def preload() -> None:
    """Import here, once, what torch imports lazily on a run's first optimizer (``torch._dynamo``,
    seconds): every child inherits it instead of paying it again, outside the set-up allowance."""
    with contextlib.suppress(ImportError):
        importlib.import_module("torch._dynamo")


def run_in_child(job: RunJob, index: int, seed: int, deadline: float, watched: tuple[Path, ...] = ()) -> RunOutcome:
    """Fork a child for run ``index``; its outcome once it and all it started have ended.

    ``deadline``: seconds the run may take (load included) before the child is killed.
    ``watched``: folders besides the scratch ones (the output) where whatever the run created is deleted.
    """
    before = _children()
    scratch = {path: _entries(path) for path in [*_scratch(), *(str(folder) for folder in watched)]}
    read_end, write_end = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(job, index, seed, write_end)
    os.close(write_end)
    with contextlib.suppress(OSError):  # the child did it first, or has already exited
        os.setpgid(pid, pid)
    try:
        message, payload, ended = _receive(read_end, started + deadline, job.payload_limit)
    finally:
        os.close(read_end)
        seconds = time.monotonic() - started
        _end(pid, before)
        for path, entries in scratch.items():
            _remove_new(path, entries)
    if ended == "timeout":
        return RunOutcome({"ok": False}, b"", seconds, timed_out=True)
    if message is None:
        why = "its process was killed or exited" if ended == "eof" else "its message to the ingestion was garbled"
        return RunOutcome({"ok": False, "reason": f"ended without returning a model ({why})"}, b"", seconds)
    return RunOutcome(message, payload, seconds)


def _child(job: RunJob, index: int, seed: int, write_end: int) -> None:
    """The child's whole life: isolate, warm up, load the submission, run it once, send, exit."""
    code = 0
    try:
        os.setpgid(0, 0)
        torch.set_num_threads(job.threads)  # the parent runs on one, so no OpenMP team is inherited
        _drop_privileges()
        home = tempfile.mkdtemp(prefix=f"run-{index}-")
        os.environ.update(HOME=home, TMPDIR=home)
        tempfile.tempdir = home
        os.chdir(home)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        warm_up(job.spec, job.original, job.parts, job.batch_size, job.device)
        load_started = time.perf_counter()
        unlearning, reason = load_submission(job.source, job.filename)
        load_seconds = time.perf_counter() - load_started
        message: dict[str, Any]
        if unlearning is None:
            message, payload = {"ok": False, "reason": reason, "stage": "load"}, b""
        else:
            message, payload = run_one(
                index, seed, unlearning, job.original, job.spec, job.parts, job.batch_size, job.device, job.filename
            )
            if job.device.type == "cuda":
                torch.cuda.synchronize(job.device)  # the run's kernels end inside its time
        message = {**message, "load_seconds": round(load_seconds, 4)}
        _send(write_end, message, payload)
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's code
        code = 1
    finally:
        os._exit(code)


def drops_privileges() -> bool:
    """Whether runs drop to ``RUN_UID``: as root, where that user can read the Python runtime
    (every folder on sys.path and its parents world-readable), or its lazy imports would fail."""
    if os.geteuid() != 0:
        return False
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.exists() and not all(folder.stat().st_mode & 0o005 == 0o005 for folder in (path, *path.parents)):
            return False
    return True


def _drop_privileges() -> None:
    if not drops_privileges():
        return
    os.setgroups([])
    os.setgid(RUN_UID)
    os.setuid(RUN_UID)


def _send(fd: int, message: dict[str, Any], payload: bytes) -> None:
    data = json.dumps({**message, "bytes": len(payload)}).encode() + b"\n" + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int, deadline: float, limit: int) -> tuple[dict[str, Any] | None, bytes, str]:
    """(message, payload, how it ended): ``ok`` (the header line, then exactly its payload),
    ``timeout``, ``eof`` (the child ended before a whole message) or ``garbled``, which is also
    a message whose header line or declared payload is past what the original model can need
    (``limit`` bytes): the parent holds no more than that, whatever the child sends."""
    data = bytearray()
    header: dict[str, Any] | None = None
    while True:
        if header is not None and len(data) >= int(header["bytes"]):
            return header, bytes(data[: int(header["bytes"])]), "ok"
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None, b"", "timeout"
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None, b"", "eof"
        data += chunk
        if len(data) > limit + _HEADER_LINE_BYTES:
            return None, b"", "garbled"
        if header is None and b"\n" in data:
            line, _, rest = bytes(data).partition(b"\n")
            try:
                parsed = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                parsed = None
            declared = parsed.get("bytes") if isinstance(parsed, dict) else None
            if not isinstance(declared, int) or not 0 <= declared <= limit:
                return None, b"", "garbled"
            header, data = parsed, bytearray(rest)


def _end(pid: int, before: set[int]) -> None:
    """Kill the run's process group, reap the child, then kill every descendant re-parented here."""
    with contextlib.suppress(*GONE):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(*GONE):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(*GONE):
        os.waitpid(pid, 0)
    stop = time.monotonic() + SWEEP_SECONDS
    while time.monotonic() < stop:
        left = _children() - before
        if not left:
            return
        for child in left:
            with contextlib.suppress(*GONE):
                os.kill(child, signal.SIGKILL)
        for child in left:
            with contextlib.suppress(*GONE):
                os.waitpid(child, 0)
    raise RuntimeError("a process a run started could not be ended")


def _children() -> set[int]:
    """This process's direct children, from /proc."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 1 and int(fields[1]) == me:
                found.add(int(entry))
    return found


def _scratch() -> list[str]:
    paths = {*SCRATCH, tempfile.gettempdir()}
    return sorted(path for path in paths if os.path.isdir(path) and os.access(path, os.W_OK))


def _entries(path: str) -> set[str]:
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


def _remove_new(path: str, before: set[str]) -> None:
    for name in _entries(path) - before:
        target = os.path.join(path, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(target)
