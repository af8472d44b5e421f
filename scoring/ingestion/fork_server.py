"""One process per run, forked from a warm parent that never runs the submission: nothing carries between runs.

Inside the worker (``scoring.ingestion.worker``), the parent has imported torch and the
kit, read the job and warmed torch up on the CPU; it never loads the submission and, on
CUDA, never touches the device. For each run it forks a child (:func:`fork_run`), which
warms the device up (on CUDA: its own context, before the clock), says it is ready,
and waits for its run; only then does it load the submission, inside the clock. So a
run starts from a process state no earlier run touched: memory, module globals,
descriptors, threads, children and device contexts are the parent's, copied fresh.

What outlives a process is wiped before the next child is forked
(:func:`reset_run_state`): the files of the private ``/tmp`` and ``/dev/shm`` and the
System V IPC objects of the sandbox's own IPC namespace (POSIX message queues are
refused by the seccomp filter). The run's processes themselves are killed from outside,
by the scorer (``scoring.ingestion.worker_process``), before its model counts.

Why fork rather than a fresh process per run: a fresh process pays torch's import and
first-use costs again (about 2 s), which are not the submission's work; a fork costs a
few milliseconds, spent before the clock starts (``benchmarks/sandbox_cost.py``
measures both). GNU OpenMP does not survive a fork once its thread pool exists, so the
parent computes on one thread and each child sets the job's thread count itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.ingestion.confinement import PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, prctl

# System V IPC (linux/ipc.h, shm.h, msg.h, sem.h): the *_STAT_ANY commands read an object
# whatever its mode (Linux 4.17), so a segment made unreadable is still found and removed.
IPC_RMID = 0
SHM_INFO, SHM_STAT_ANY = 14, 15
MSG_INFO, MSG_STAT_ANY = 12, 13
SEM_INFO, SEM_STAT_ANY = 19, 20


def harden_parent() -> None:
    """The parent: non-dumpable (a run's process cannot read or write its memory through /proc) and
    the reaper of every orphan a run leaves (so all of a run's processes stay its descendants)."""
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)


@dataclass
class RunChild:
    """A forked child waiting for its run: its pid, and the pipe that hands it the run."""

    pid: int
    go_fd: int

    def start(self, order: dict[str, Any]) -> None:
        """Hand the child its run (index and seed); it starts at once."""
        os.write(self.go_fd, json.dumps(order).encode())
        os.close(self.go_fd)


def fork_run(
    prepare: Callable[[], None], run: Callable[[dict[str, Any]], None], close_fds: tuple[int, ...]
) -> RunChild | None:
    """Fork a child that calls ``prepare()`` (its device warm-up), reports ready, waits for its order and calls
    ``run(order)``; the child never returns. Returns once the child is ready; None when it died first.

    ``close_fds``: the parent's descriptors the child must not hold (the scorer's command pipe).
    """
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's loop
        code = 1
        try:
            for fd in (ready_read, go_write, *close_fds):
                os.close(fd)
            prctl(PR_SET_DUMPABLE, 1)  # an ordinary process again
            prepare()
            os.write(ready_write, b"r")
            os.close(ready_write)
            order = json.loads(_read_all(go_read))
            os.close(go_read)
            run(order)
            code = 0
        except BaseException:  # noqa: BLE001 - whatever happens, the child ends here
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(ready_write)
    os.close(go_read)
    ready = _read_all(ready_read)
    os.close(ready_read)
    if ready != b"r":
        os.close(go_write)
        return None
    return RunChild(pid=pid, go_fd=go_write)


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    return data


def reap() -> None:
    """Collect every ended child (the run's processes, killed by the scorer, and the orphans this parent reaps)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def reset_run_state(tmp_dir: str, work_dir: str, private_ipc: bool) -> None:
    """Wipe what a run may have left outside its processes: the files under ``tmp_dir`` (and ``/dev/shm`` and the
    System V IPC objects where they are the sandbox's own, ``private_ipc``); ``work_dir`` is made again, empty."""
    folders = [tmp_dir, "/dev/shm"] if private_ipc else [tmp_dir]
    for folder in folders:
        _empty(Path(folder))
    os.makedirs(work_dir, exist_ok=True)
    if private_ipc:
        remove_ipc_objects()


def _empty(folder: Path) -> None:
    """Remove everything in ``folder``, giving back write permission where a run took it away."""

    def retry(function: Callable[..., Any], path: str, _: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            function(path)

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o1777 if str(folder) in ("/tmp", "/dev/shm") else 0o700)
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.chmod(path, 0o700)
            shutil.rmtree(path, onerror=retry)
        else:
            with contextlib.suppress(OSError):
                path.unlink()


def remove_ipc_objects() -> int:
    """Remove every System V shared memory segment, message queue and semaphore set this IPC namespace holds.

    Only ever called inside the sandbox (its own IPC namespace). Returns how many were removed."""
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(512)  # larger than any of the kernel's *_ds and *_info structures
    removed = 0
    for kind, info, stat in (
        ("shm", SHM_INFO, SHM_STAT_ANY),
        ("msg", MSG_INFO, MSG_STAT_ANY),
        ("sem", SEM_INFO, SEM_STAT_ANY),
    ):
        for index in range(_ipc_control(libc, kind, 0, info, buffer) + 1):
            identifier = _ipc_control(libc, kind, index, stat, buffer)
            if identifier >= 0 and _ipc_control(libc, kind, identifier, IPC_RMID, None) == 0:
                removed += 1
    return removed


def _ipc_control(libc: ctypes.CDLL, kind: str, identifier: int, command: int, argument: object) -> int:
    """``shmctl``, ``msgctl`` or ``semctl`` (semaphore number 0) of ``identifier``."""
    if kind == "sem":
        return int(libc.semctl(identifier, 0, command, argument))
    return int(getattr(libc, f"{kind}ctl")(identifier, command, argument))
