"""Limits and control of the processes a submission starts, seen from outside the sandbox.

This module owns what the kernel enforces on a submission besides its namespaces
(``scoring.ingestion.sandbox``) and how the scorer finds, freezes and counts its processes:

- :class:`ProcessLimits`: core dumps off, file size, open files, memory (the worker
  caps its own address space after importing torch), the CPUs (the affinity, set before
  bwrap: the floor under the cgroup's cpuset, which the seccomp filter keeps the
  sandbox from widening), and the number of processes and threads. The process cap
  is ``RLIMIT_NPROC`` for an ordinary user; the kernel does
  not apply that limit to root, so where cgroups can be made (``scoring.ingestion.cgroups``) the
  sandbox's ``pids.max`` caps it instead. A fork bomb hits the cap, fails inside the
  sandbox, and the machine is unharmed.
- :func:`namespace_processes`: every process of one PID namespace (the sandbox's),
  found through ``/proc/<pid>/ns/pid``, and :func:`descendants` (unsealed: a process's
  tree); used to end each run's processes and verify that nothing survived, stopping
  them first with ``SIGSTOP`` only where no cgroup freezer is available (SIGSTOP skips a
  process shown as a zombie whose other threads still run; the freezer does not).
- :func:`make_non_dumpable`: the scorer itself, so no process of the same user can
  read its memory or environment through ``/proc``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scoring.ingestion.cgroups import SandboxCgroup

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


def prctl(option: int, value: int) -> bool:
    """``prctl(option, value)`` on this process (Linux); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def make_non_dumpable() -> bool:
    """Mark this process non-dumpable (prctl PR_SET_DUMPABLE 0); False where that is not possible."""
    return prctl(PR_SET_DUMPABLE, 0)


@dataclass(frozen=True)
class ProcessLimits:
    """Kernel limits on everything the sandbox runs. ``processes`` counts threads too."""

    processes: int = 512
    file_bytes: int = 1 << 30
    open_files: int = 1024
    cpus: tuple[int, ...] = ()  # () leaves the affinity as it is

    def preexec(self, cgroup: SandboxCgroup | None) -> Callable[[], None]:
        """A function for ``subprocess.Popen(preexec_fn=...)``: set the limits in the child, before bwrap,
        and move it into the sandbox's cgroups (pids.max instead of RLIMIT_NPROC where they cap processes)."""
        capped = cgroup is not None and "pids" in cgroup.paths
        # Counted per user: add what this user already runs, so the cap is the sandbox's own.
        nproc = None if capped else _user_processes() + self.processes

        def apply() -> None:
            if self.cpus:
                os.sched_setaffinity(0, self.cpus)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
            if cgroup is not None:
                cgroup.join()
            if nproc is not None:  # not capped by the pids cgroup
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        return apply


def _user_processes() -> int:
    """Processes and threads of this user now (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass
    return count


def pid_namespace(pid: int) -> str | None:
    """``pid:[inode]`` of a process's PID namespace, None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def namespace_processes(namespace: str) -> list[int]:
    """Host pids of every process in PID namespace ``namespace``; never this process's own namespace.

    Everything here freezes or kills what this returns, so a namespace that is not a
    sandbox's (the scorer's own, were a pid ever misread) is refused outright.
    """
    if namespace == pid_namespace(os.getpid()):
        raise RuntimeError(f"refusing to act on the scorer's own PID namespace {namespace}")
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and pid_namespace(int(entry.name)) == namespace:
            found.append(int(entry.name))
    return found


def inner_pid(pid: int) -> int | None:
    """A process's pid inside its own (innermost) PID namespace, from NSpid in /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None


def _state(pid: int, tid: int | None = None) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def alive(pid: int) -> bool:
    """Whether any thread of process ``pid`` still runs: not gone, not a zombie waiting to be reaped (a process
    whose main thread exited shows state Z while its other threads run: it is alive)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(_state(pid, int(tid)) not in ("Z", "X", None) for tid in tasks)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def kill(pid: int) -> None:
    _signal(pid, signal.SIGKILL)


def resume(pid: int) -> None:
    _signal(pid, signal.SIGCONT)


def stop_all(processes: Callable[[], list[int]], rounds: int = 20) -> None:
    """SIGSTOP every process ``processes()`` lists, again until none is left running (a fork may race)."""
    for _ in range(rounds):
        running = [pid for pid in processes() if _state(pid) not in ("T", "t", "Z", "X", None)]
        if not running:
            return
        for pid in running:
            _signal(pid, signal.SIGSTOP)


def wait_until_gone(processes: Callable[[], list[int]], seconds: float = 5.0) -> list[int]:
    """Wait until ``processes()`` lists none; return those still listed when time ran out."""
    deadline = time.monotonic() + seconds
    while True:
        left = processes()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.005)


def kill_namespace(namespace: str) -> None:
    for pid in namespace_processes(namespace):
        _signal(pid, signal.SIGKILL)


def wait_until_empty(namespace: str, seconds: float = 5.0) -> list[int]:
    """Wait for the namespace to hold no process; return the pids still there when time ran out."""
    deadline = time.monotonic() + seconds
    while True:
        left = [pid for pid in namespace_processes(namespace) if _state(pid) not in ("Z", "X", None)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
