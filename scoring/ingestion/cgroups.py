"""The sandbox's control groups: its process, memory and CPU caps and its freezer, from the host's side.

One :class:`SandboxCgroup` per worker holds every process the sandbox starts (the
scorer's child joins it before it executes bwrap, so nothing escapes it by forking):

- ``pids.max`` caps processes and threads (the kernel does not apply RLIMIT_NPROC to root);
- the memory limit (v1 ``memory.limit_in_bytes``, v2 ``memory.max``) caps the whole
  footprint: processes, the sandbox's tmpfs files and the page cache it dirties;
- the CPUs: a cpuset of exactly the worker's CPUs (``scoring.backends.cpu_share``), so
  no affinity call or thread count inside reaches another core; where cpusets cannot be
  had, a CPU quota of as many cores' time (v1 ``cpu.cfs_quota_us``, v2 ``cpu.max``);
- the freezer (v1 ``freezer.state``, v2 ``cgroup.freeze``) stops every task of the
  group while the scorer ends a run, whatever its state: a process whose main thread has
  exited (state ``Z``) while its other threads run is frozen too, which SIGSTOP misses.

cgroup v1 hierarchies (one per controller) and a cgroup v2 tree with the controllers
enabled are both served; where a controller is missing or its folder is not writable
(an ordinary user, a container), that part is absent and :attr:`missing` names it, so
the scorer can say what it falls back to (RLIMIT_NPROC, RLIMIT_AS, SIGSTOP, the
affinity alone). :func:`caps_missing` turns that into the caps score.json names
(``processes``, ``memory``, ``cpu``, ``freezer``): a fallback the kernel does not enforce
(RLIMIT_NPROC for uid 0, an affinity the sandbox could widen) is not a cap held.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

CONTROLLERS = ("pids", "memory", "cpuset", "cpu", "freezer")
CAPS = ("processes", "memory", "cpu", "freezer")
PERIOD_US = 100_000  # the CPU quota's period


def hierarchies() -> dict[str, tuple[Path, int]]:
    """{controller: (writable mount point, cgroup version)} for the controllers this process may use."""
    found: dict[str, tuple[Path, int]] = {}
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in mounts:
        fields = line.split()
        separator = fields.index("-")
        kind, options, mount_point = fields[separator + 1], fields[separator + 3], Path(fields[4])
        if kind == "cgroup":
            for name in CONTROLLERS:
                if name in options.split(",") and name not in found and os.access(mount_point, os.W_OK):
                    found[name] = (mount_point, 1)
        elif kind == "cgroup2" and os.access(mount_point, os.W_OK):
            try:
                enabled = (mount_point / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            for name in ("pids", "memory", "cpuset", "cpu"):
                if name in enabled:
                    found.setdefault(name, (mount_point, 2))
            found.setdefault("freezer", (mount_point, 2))  # cgroup.freeze: checked once the folder exists
    return found


class SandboxCgroup:
    """One folder per controller (one in all for v2), made for one sandbox and removed after it."""

    def __init__(self, processes: int, memory_bytes: int | None, cpus: tuple[int, ...] = ()):
        """``cpus``: the CPUs the sandbox may run on (a cpuset; a quota of ``len(cpus)`` cores without one)."""
        self.name = f"unlearning-sandbox-{uuid.uuid4().hex[:12]}"
        self.paths: dict[str, tuple[Path, int]] = {}
        self.fds: list[int] = []
        memory = memory_bytes or 0
        found = hierarchies()
        for controller in sorted(found, key=CONTROLLERS.index):  # the cpuset before the quota it replaces
            mount_point, version = found[controller]
            if (controller == "memory" and not memory) or (controller in ("cpuset", "cpu") and not cpus):
                continue
            if controller == "cpu" and "cpuset" in self.paths:
                continue  # the cpuset holds it to its cores already
            path = mount_point / self.name
            try:
                path.mkdir(exist_ok=version == 2)
                if controller == "cpuset":
                    if version == 1:  # v1 needs its memory nodes too: the parent's
                        (path / "cpuset.mems").write_text((mount_point / "cpuset.mems").read_text().strip())
                    (path / "cpuset.cpus").write_text(",".join(str(cpu) for cpu in cpus))
                elif controller == "cpu" and version == 1:
                    (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                    (path / "cpu.cfs_quota_us").write_text(str(PERIOD_US * len(cpus)))
                elif controller == "cpu":
                    (path / "cpu.max").write_text(f"{PERIOD_US * len(cpus)} {PERIOD_US}")
                elif controller == "pids":
                    (path / "pids.max").write_text(str(processes))
                elif controller == "memory" and version == 1:
                    (path / "memory.limit_in_bytes").write_text(str(memory))
                    _try_write(path / "memory.memsw.limit_in_bytes", memory)  # no swapping past it either
                elif controller == "memory":
                    (path / "memory.max").write_text(str(memory))
                    _try_write(path / "memory.swap.max", 0)
                elif version == 2 and not (path / "cgroup.freeze").exists():  # v2 freezer: kernel 5.2 and later
                    continue
            except OSError:
                if version == 1:
                    _remove(path)
                continue
            self.paths[controller] = (path, version)
        for path in {p for p, _ in self.paths.values()}:
            self.fds.append(os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))

    @property
    def missing(self) -> list[str]:
        """Controllers this sandbox did not get (the CPU quota only counts where the cpuset is missing)."""
        return [
            name for name in CONTROLLERS if name not in self.paths and not (name == "cpu" and "cpuset" in self.paths)
        ]

    def caps_missing(self, rlimit_processes: bool) -> list[str]:
        """The caps (``CAPS``) the kernel does not hold for this sandbox. ``rlimit_processes``: RLIMIT_NPROC was
        set instead of ``pids.max``, which caps processes only for a uid other than 0."""
        held = {
            "processes": "pids" in self.paths or (rlimit_processes and os.geteuid() != 0),
            "memory": "memory" in self.paths,
            "cpu": "cpuset" in self.paths or "cpu" in self.paths,
            "freezer": "freezer" in self.paths,
        }
        return [cap for cap in CAPS if not held[cap]]

    def join(self) -> None:
        """Move the calling process into every folder (for preexec_fn: the child, before bwrap)."""
        for fd in self.fds:
            os.write(fd, b"0")

    def freeze(self, seconds: float = 5.0) -> bool:
        """Freeze every task; True once the kernel says all are frozen."""
        return self._set_frozen(True, seconds)

    def thaw(self) -> None:
        self._set_frozen(False, 5.0)

    def _set_frozen(self, frozen: bool, seconds: float) -> bool:
        if "freezer" not in self.paths:
            return False
        path, version = self.paths["freezer"]
        deadline = time.monotonic() + seconds
        try:
            if version == 1:
                want = "FROZEN" if frozen else "THAWED"
                (path / "freezer.state").write_text(want)
                while (path / "freezer.state").read_text().strip() != want:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.0005)
                    (path / "freezer.state").write_text(want)
                return True
            (path / "cgroup.freeze").write_text("1" if frozen else "0")
            want = f"frozen {int(frozen)}"
            while want not in (path / "cgroup.events").read_text().splitlines():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.0005)
            return True
        except OSError:
            return False

    def process_cap_hit(self) -> bool:
        """Whether a fork failed on ``pids.max`` (pids.events counts refusals)."""
        if "pids" not in self.paths:
            return False
        return _counter(self.paths["pids"][0] / "pids.events", "max") > 0

    def memory_cap_hit(self) -> bool:
        """Whether the memory cap was reached (v1 failcnt or OOM kills, v2 memory.events max/oom_kill)."""
        if "memory" not in self.paths:
            return False
        path, version = self.paths["memory"]
        if version == 1:
            return _counter(path / "memory.oom_control", "oom_kill") > 0 or _read_int(path / "memory.failcnt") > 0
        return _counter(path / "memory.events", "oom_kill") > 0 or _counter(path / "memory.events", "max") > 0

    def remove(self) -> None:
        """Thaw, then remove the folders (the kernel empties a cgroup a moment after its last process ends)."""
        self.thaw()
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        for path in {p for p, _ in self.paths.values()}:
            _remove(path)


ALLOW_FLAG = "--allow-missing-caps"


def require_caps(allow: bool) -> list[str]:
    """The caps a sandbox would lack here (:func:`caps_missing`); raises ``PermissionError`` (one line: what is
    missing and how to fix it) when any is, unless ``allow`` (the organiser's explicit choice)."""
    missing = caps_missing()
    if missing and not allow:
        raise PermissionError(
            f"the sandbox would run here without its {', '.join(missing)} cap(s) (cgroup controllers this process "
            "cannot write: not root, or cgroups mounted read-only, as Docker does by default), so a score would not "
            "be sealed: score as root where /sys/fs/cgroup is writable (Docker: --privileged, or a writable "
            f"cgroup mount), or pass {ALLOW_FLAG} to go on (score.json then records sealed: false and what was missing)"
        )
    return missing


def caps_missing() -> list[str]:
    """The caps a sandbox started now would lack here: one is made (one CPU, 1 GiB), read, and removed."""
    cpus = tuple(sorted(os.sched_getaffinity(0)))[:1] if hasattr(os, "sched_getaffinity") else ()
    probe = SandboxCgroup(processes=64, memory_bytes=1 << 30, cpus=cpus)
    try:
        return probe.caps_missing(rlimit_processes=True)
    finally:
        probe.remove()


def _remove(path: Path) -> None:
    """Remove a cgroup folder (the kernel empties it a moment after its last process ends)."""
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def _try_write(path: Path, value: int) -> None:
    with contextlib.suppress(OSError):
        path.write_text(str(value))


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _counter(path: Path, key: str) -> int:
    """``key``'s number in a flat-keyed cgroup file (``max 3``, ``oom_kill 1``), 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except (OSError, ValueError):
        pass
    return 0
