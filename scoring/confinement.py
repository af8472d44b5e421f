"""Limits and control of the processes a submission starts, seen from outside the sandbox.

This module owns what the kernel enforces on a submission besides its namespaces
(``scoring.sandbox``) and how the scorer finds, freezes and counts its processes:

- :class:`ProcessLimits`: core dumps off, file size, open files, memory (the worker
  caps its own address space after importing torch), and the number of processes and
  threads. The process cap is ``RLIMIT_NPROC`` for an ordinary user; the kernel does
  not apply that limit to root, so a scorer running as root puts the sandbox in a
  ``pids`` cgroup of its own with ``pids.max`` instead. A fork bomb hits the cap,
  fails inside the sandbox, and the machine is unharmed.
- :func:`namespace_processes`: every process of one PID namespace (the sandbox's),
  found through ``/proc/<pid>/ns/pid``; used to freeze the submission between runs
  (``SIGSTOP``, so no background thread computes while the scorer evaluates) and to
  verify that nothing survived the worker.
- :func:`make_non_dumpable`: the scorer itself, so no process of the same user can
  read its memory or environment through ``/proc``.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PR_SET_DUMPABLE = 4


def make_non_dumpable() -> bool:
    """Mark this process non-dumpable (prctl PR_SET_DUMPABLE 0); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class ProcessLimits:
    """Kernel limits on everything the sandbox runs. ``processes`` counts threads too."""

    processes: int = 512
    file_bytes: int = 1 << 30
    open_files: int = 1024

    def preexec(self, cgroup_fd: int | None):
        """A function for ``subprocess.Popen(preexec_fn=...)``: set the limits in the child, before bwrap."""

        # Counted per user: add what this user already runs, so the cap is the sandbox's own.
        nproc = None if cgroup_fd is not None else _user_processes() + self.processes

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
            if cgroup_fd is not None:
                os.write(cgroup_fd, b"0")  # "0": move the writing process (this child) into the cgroup
            else:
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


class PidsCgroup:
    """A ``pids`` cgroup of its own for one sandbox (root only): ``pids.max`` caps its processes."""

    def __init__(self, root: Path, limit: int):
        self.path = root / f"unlearning-sandbox-{uuid.uuid4().hex[:12]}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(limit))
        self.fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)

    @classmethod
    def create(cls, limit: int) -> "PidsCgroup | None":
        """A new cgroup where this process may make one (root, pids controller mounted), else None."""
        if os.geteuid() != 0:
            return None
        root = _pids_hierarchy()
        if root is None:
            return None
        try:
            return cls(root, limit)
        except OSError:
            return None

    def peak_reached(self) -> bool:
        """Whether a fork failed on the cap (the kernel counts refusals in pids.events)."""
        try:
            events = (self.path / "pids.events").read_text().split()
        except OSError:
            return False
        return len(events) >= 2 and events[0] == "max" and int(events[1]) > 0

    def remove(self) -> None:
        os.close(self.fd)
        for _ in range(50):  # the kernel empties the cgroup a moment after its last process ends
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.02)


def _pids_hierarchy() -> Path | None:
    """The writable cgroup folder where the pids controller is: cgroup v1's pids, or v2 with it enabled."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        fields = line.split()
        separator = fields.index("-")
        kind, options, mount_point = fields[separator + 1], fields[separator + 3], Path(fields[4])
        if kind == "cgroup" and "pids" in options.split(","):
            return mount_point if os.access(mount_point, os.W_OK) else None
        if kind == "cgroup2":
            controllers = mount_point / "cgroup.subtree_control"
            try:
                if "pids" in controllers.read_text().split() and os.access(mount_point, os.W_OK):
                    return mount_point
            except OSError:
                continue
    return None


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


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def freeze(namespace: str, rounds: int = 20) -> None:
    """SIGSTOP every process of the namespace, again until none is left running (a fork may race)."""
    for _ in range(rounds):
        running = [pid for pid in namespace_processes(namespace) if _state(pid) not in ("T", "t", "Z", "X", None)]
        if not running:
            return
        for pid in running:
            _signal(pid, signal.SIGSTOP)


def thaw(namespace: str) -> None:
    """SIGCONT every process of the namespace."""
    for pid in namespace_processes(namespace):
        _signal(pid, signal.SIGCONT)


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
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
