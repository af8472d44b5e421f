"""Which CPUs a task may use: exactly ``threads`` cores of this machine, none shared with another task of the kit.

The efficiency rule compares a run with retraining on the same machine share
(docs/protocol.md, "The submission contract"), so every task that computes (a chunk of a
submission's runs, its sandboxed worker, a reference model, the calibration) holds a
share of its own: :func:`cpu_share` reserves ``threads`` CPUs that no other task of the
kit on this machine holds (any process, any backend: a local pool, Ray workers) and
:func:`confine_process` pins every thread of the calling process to them. The sandboxed
worker gets the same CPUs from outside, by the kernel (``scoring.ingestion.cgroups``:
a cpuset, or a CPU quota; ``scoring.ingestion.worker_process``: its affinity), so two
chunks running side by side on two cores get one core each, and neither can take the
other's.

A CPU is held by binding an abstract Unix socket named for it (``unlearning-cpu-<uid>-<cpu>``):
machine-wide, and released by the kernel when its holder ends, however it ends (a
killed Ray worker, a lost node's process). A task that finds too few CPUs free waits
for them. A process that already holds a share gets that share again (a chunk's
task and the worker it starts), so nesting never waits on itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

_START_CPUS = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()
_HELD: list[tuple[int, ...]] = []  # the share this process holds now (innermost last)
WAIT_SECONDS = 0.05


def usable_cpus() -> tuple[int, ...]:
    """The CPUs this process could use when it started (a cgroup's cpuset or a container's limit already applied)."""
    return _START_CPUS


def affinity_available() -> bool:
    """Whether this system lets a process choose its CPUs (Linux: sched_setaffinity)."""
    return bool(_START_CPUS) and hasattr(os, "sched_setaffinity")


@contextlib.contextmanager
def cpu_share(threads: int) -> Iterator[tuple[int, ...]]:
    """Hold ``threads`` CPUs no other task of the kit holds on this machine, for the ``with`` block; yields them.

    Raises ValueError when this process cannot use that many CPUs at all. Waits while
    other tasks hold the rest. Where the system has no CPU affinity, yields ``()``.
    """
    if not affinity_available():
        yield ()
        return
    if _HELD and len(_HELD[-1]) >= threads:
        yield _HELD[-1][:threads]
        return
    cpus = usable_cpus()
    if threads > len(cpus):
        raise ValueError(
            f"--threads {threads} is more than the {len(cpus)} CPU(s) this machine lets the scorer use: "
            f"give --threads {len(cpus)} or less"
        )
    held: dict[int, socket.socket] = {}
    try:
        while True:
            for cpu in cpus:
                if len(held) == threads:
                    break
                if cpu not in held:
                    claim = _claim(cpu)
                    if claim is not None:
                        held[cpu] = claim
            if len(held) == threads:
                break
            time.sleep(WAIT_SECONDS)  # other tasks hold the rest: one of them ends soon
        share = tuple(sorted(held))
        _HELD.append(share)
        try:
            yield share
        finally:
            _HELD.pop()
    finally:
        for claim in held.values():
            claim.close()


def _claim(cpu: int) -> socket.socket | None:
    """The socket that holds ``cpu`` for this process, None when another process holds it."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # not inheritable: the sandbox never gets it
    try:
        claim.bind(f"\0unlearning-cpu-{os.getuid()}-{cpu}")
    except OSError:
        claim.close()
        return None
    return claim


@contextlib.contextmanager
def confine_process(cpus: tuple[int, ...]) -> Iterator[None]:
    """Pin every thread of this process (and the threads it starts) to ``cpus`` for the block; restore after.

    For the kit's own tasks (training, evaluation), which never widen it; a submission is
    confined from outside, by the kernel (``scoring.ingestion.cgroups``)."""
    if not cpus or not affinity_available():
        yield
        return
    before = {tid: _affinity(tid) for tid in _threads()}
    _set_all(set(cpus))
    try:
        yield
    finally:
        for tid in _threads():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, before.get(tid) or set(usable_cpus()))


def _threads() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _affinity(tid: int) -> set[int] | None:
    try:
        return os.sched_getaffinity(tid)
    except OSError:
        return None


def _set_all(cpus: set[int]) -> None:
    """Every thread now; again for threads started meanwhile (a thread pool growing)."""
    done: set[int] = set()
    for _ in range(3):
        todo = [tid for tid in _threads() if tid not in done]
        if not todo:
            return
        for tid in todo:
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(tid, cpus)
            done.add(tid)
