"""Starting the worker process and talking to it, from the scorer's side.

What it owns: the worker's command line (``WORKER``; inside the OS sandbox of
``scoring.ingestion.sandbox`` or, with ``sealed=False``, as a plain process with the same
environment), starting it under ``scoring.ingestion.confinement``'s limits with its pipes
(:class:`WorkerProcess`) on its CPUs (its affinity, set before bwrap, and the cgroup's
cpuset or quota), reading the sandbox's PID namespace from bwrap, sending commands,
ending each run (:meth:`WorkerProcess.end_run`: every process of the run frozen,
killed and gone before its model counts), ending the worker and everything it
started, and saying how it ended (:func:`exit_description`). The program
it starts is ``scoring.ingestion.worker``; what the messages mean, the clock and the verdicts are
``scoring.ingestion.runner``'s. Kept apart so that the protocol reads without the process
plumbing, and the plumbing without the protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring.ingestion import confinement, sandbox, syscall_filter
from scoring.ingestion.cgroups import SandboxCgroup
from scoring.ingestion.channel import CappedOutput, ResultChannel
from scoring.ingestion.limits import Limits


@dataclass
class WorkerExit:
    """How a worker ended: what it printed, what it left running, which caps it hit (the runner records it)."""

    output: str = ""
    output_bytes: int = 0
    output_truncated: bool = False
    processes_left: int = 0  # still running in the sandbox when the worker ended (all killed)
    processes_survived: int = 0  # still there after the kill: must be 0
    process_cap_hit: bool = False
    memory_cap_hit: bool = False  # the memory cgroup's cap was reached
    cgroups_missing: list[str] = field(default_factory=list)  # controllers this host did not give (fallbacks used)
    caps_missing: list[str] = field(default_factory=list)  # caps the kernel did not hold (cgroups.CAPS)


class WorkerProcess:
    """One started worker: its process, pipes, and (sealed) the sandbox's PID namespace and cgroup."""

    def __init__(
        self,
        job_fd: int,
        workdir: Path,
        threads: int,
        device: str,
        limits: Limits,
        sealed: bool,
        cpus: tuple[int, ...] = (),
        gpu: sandbox.Gpu | None = None,
    ) -> None:
        """``job_fd``: a readable descriptor of the job (an unnamed file: no job folder's path reaches the worker);
        ``threads`` and ``device``: the job's, which the worker's environment sets; ``cpus``: the CPUs it runs on
        (``scoring.backends.cpu_share``); ``gpu``: on CUDA, the one GPU whose device node it gets."""
        command_read, self.command_write = os.pipe()
        result_read, result_write = os.pipe()
        fds = [command_read, result_write, job_fd]
        sandbox_fds = []
        if sealed:
            info_read, info_write = os.pipe()
            fds.append(info_write)
            sandbox_fds = [syscall_filter.filter_fd(), sandbox.data_fd(sandbox.kit_archive(), "unlearning-kit")]
            argv, cwd, env = _sandboxed_command(threads, device, gpu, limits, fds, *sandbox_fds)
            split = argv.index("--")
            sandbox_fds.append(
                sandbox.data_fd(b"".join(arg.encode() + b"\0" for arg in argv[1:split]), "unlearning-bwrap-args")
            )
            # Inside, /proc/1/cmdline shows bwrap's options as "--args N" (bwrap's --args FD).
            argv = [argv[0], "--args", str(sandbox_fds[-1]), *argv[split:]]
        else:
            argv, cwd, env = _plain_command(workdir, threads, device, fds)
        self.namespace: str | None = None
        self.run_child: int | None = None  # the current run's process, as the worker saw its pid
        self.processes_left = self.processes_survived = 0  # counted by end_run and stop
        self.gpu_missing = device.startswith("cuda") and (gpu is None or gpu.minor is None)
        self.cgroup = SandboxCgroup(limits.processes, memory_cap(limits), cpus)
        process_limits = confinement.ProcessLimits(limits.processes, limits.tmp_bytes, limits.open_files, cpus)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(fds + sandbox_fds),
            start_new_session=True,
            preexec_fn=process_limits.preexec(self.cgroup),
        )
        for fd in sandbox_fds:
            os.close(fd)
        os.close(command_read)
        os.close(result_write)
        os.close(job_fd)
        if sealed:
            os.close(info_write)
            self.namespace = _read_namespace(info_read, limits.setup_seconds)
        assert self.process.stdout is not None  # stdout=PIPE
        self.output = CappedOutput(self.process.stdout, limits.output_bytes)
        self.channel = ResultChannel(result_read)

    def send(self, message: dict[str, Any]) -> None:
        os.write(self.command_write, (json.dumps(message) + "\n").encode())

    def run_processes(self) -> list[int]:
        """Host pids of the run's processes: everything in the sandbox but its init (1) and the worker (2);
        unsealed, every descendant of the worker (it reaps every orphan: they stay its descendants)."""
        if self.namespace:
            found = confinement.namespace_processes(self.namespace)
            return [pid for pid in found if confinement.inner_pid(pid) not in (1, 2) and confinement.alive(pid)]
        return [pid for pid in confinement.descendants(self.process.pid) if confinement.alive(pid)]

    def end_run(self) -> bool:
        """End every process of the run: frozen, killed, thawed, waited for; True when none survived.

        Those still running besides the run's own process (``run_child``, its pid as the worker
        saw it) add to ``processes_left``, survivors to ``processes_survived``."""
        self.freeze()
        running = self.run_processes()
        own = [pid for pid in running if (confinement.inner_pid(pid) if self.namespace else pid) == self.run_child]
        for pid in running:
            confinement.kill(pid)
        self.thaw()
        survivors = confinement.wait_until_gone(self.run_processes)
        self.processes_left += len(running) - len(own)
        self.processes_survived += len(survivors)
        self.run_child = None
        return not survivors

    def freeze(self) -> None:
        """Stop every task of the worker: the cgroup freezer, or SIGSTOP of the run's processes where there is none."""
        if "freezer" in self.cgroup.paths:
            self.cgroup.freeze()
        else:
            confinement.stop_all(self.run_processes)

    def thaw(self) -> None:
        if "freezer" in self.cgroup.paths:
            self.cgroup.thaw()
        else:
            for pid in self.run_processes():
                confinement.resume(pid)

    def stop(self) -> WorkerExit:
        """End the worker and everything it started; count what was still running, and what survived."""
        result = WorkerExit()
        os.close(self.command_write)
        self.end_run()  # a run stopped while it was on (a hang, a failure): its processes first
        if self.namespace:
            confinement.kill_namespace(self.namespace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.cgroup.thaw()  # a frozen task dies of its pending SIGKILL only once thawed
        self.process.wait()
        result.processes_left, result.processes_survived = self.processes_left, self.processes_survived
        if self.namespace:
            result.processes_survived += len(confinement.wait_until_empty(self.namespace))
        result.process_cap_hit = self.cgroup.process_cap_hit()
        result.memory_cap_hit = self.cgroup.memory_cap_hit()
        result.cgroups_missing = self.cgroup.missing
        result.caps_missing = self.cgroup.caps_missing(rlimit_processes=True) + (["gpu"] if self.gpu_missing else [])
        self.cgroup.remove()
        os.close(self.channel.fd)
        result.output = self.output.text()
        result.output_bytes = self.output.total
        result.output_truncated = self.output.truncated
        if self.process.stdout is not None:
            self.process.stdout.close()
        return result


WORKER = [sys.executable, "-s", "-P", "-m", "scoring.ingestion.worker"]


RUNTIME_BYTES = 2 << 30  # the worker's own footprint (torch, the job's tensors) under the memory cgroup


def memory_cap(limits: Limits) -> int | None:
    """The memory cgroup's cap: the allowance, both tmpfs (/tmp, /dev/shm) and the runtime; None: no cap."""
    if limits.memory_bytes == 0:
        return None
    return limits.memory + 2 * limits.tmp_bytes + RUNTIME_BYTES


def _sandboxed_command(
    threads: int, device: str, gpu: sandbox.Gpu | None, limits: Limits, fds: list[int], seccomp_fd: int, kit_fd: int
) -> tuple[list[str], Path, dict[str, str]]:
    """(argv, cwd, env) of the worker inside the sandbox; ``fds``: command, result, job and bwrap's info pipe."""
    plan = sandbox.SandboxPlan(
        read_only=sandbox.runtime_paths(),
        env=sandbox.sandbox_environment(threads, device, gpu),
        tmp_bytes=limits.tmp_bytes,
        files=((kit_fd, sandbox.KIT_ARCHIVE),),
        device=device,
        gpu=gpu,
    )
    command = [*WORKER, str(fds[2]), str(fds[0]), str(fds[1])]
    argv = sandbox.bwrap_argv(plan, command, sandbox.find_bwrap(), info_fd=fds[3], seccomp_fd=seccomp_fd)
    return argv, Path("/"), {"PATH": "/usr/bin:/bin"}


def _plain_command(workdir: Path, threads: int, device: str, fds: list[int]) -> tuple[list[str], Path, dict[str, str]]:
    """(argv, cwd, env) of the worker as a plain process (``--unsealed``): same environment, own folders."""
    cwd = workdir / "tmp" / "work"
    cwd.mkdir(parents=True)
    env = sandbox.sandbox_environment(threads, device)
    env.update(HOME=str(cwd), TMPDIR=str(cwd.parent), PYTHONPATH=str(Path(sandbox.kit_packages()["scoring"]).parent))
    return [*WORKER, str(fds[2]), str(fds[0]), str(fds[1])], cwd, env


def _read_namespace(fd: int, timeout: float) -> str | None:
    """The sandbox's PID namespace, from bwrap's --info-fd JSON ({"child-pid": ...}); None if bwrap said nothing."""
    data, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                break
            data += chunk
            try:
                namespace = confinement.pid_namespace(int(json.loads(data)["child-pid"]))
            except ValueError:
                continue  # not all of it yet
            # The sandbox's own namespace, never the scorer's (a pid that is gone or reused).
            return namespace if namespace != confinement.pid_namespace(os.getpid()) else None
    except (KeyError, TypeError, OSError):
        pass
    finally:
        os.close(fd)
    return None


def exit_description(process: subprocess.Popen[bytes]) -> str:
    """How the worker's process ended, worded to follow "the worker process" in a reason.

    A process still running 5 s after its result channel closed "closed its result channel".
    """
    try:
        code = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return "closed its result channel"
    if code > 128:  # bwrap passes on a signal's death as 128 + its number, as shells do
        code = 128 - code
    return exit_code_description(code)


def exit_code_description(code: object) -> str:
    """How a process with exit code ``code`` ended (negative: killed by that signal), worded to follow its name."""
    if not isinstance(code, int):
        return "ended"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory, or the submission killed its own process)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code} (did the submission call os._exit or exit the interpreter?)"
