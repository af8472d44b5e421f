"""Where the scorer's expensive tasks run: one small interface, a local and a Ray implementation.

The shape is ``concurrent.futures``: a caller shares its large read-only inputs once,
submits a function with arguments per task, and collects the tasks as they finish::

    with make_backend("ray", address="head:6379", cpus=1, gpus=0.25) as backend:
        data = backend.share(split)                     # sent once, not once per task
        tasks = [backend.submit(train_one, data, k) for k in range(512)]
        for task in backend.as_completed(tasks):
            write(task.result())                        # as each finishes, in the caller's process

Everything above this module (``scoring.references``, ``scoring.distributed``) is
unaware which implementation runs. A task function must be importable by name (a
module-level function of the kit) and its arguments and result picklable.

- :class:`LocalBackend`: ``jobs=1`` runs each task in this process, lazily, when
  ``as_completed`` reaches it (so an interruption loses only the task in progress);
  ``jobs>1`` runs them in a pool of fresh (spawned) worker processes that receive the
  shared values once, when they start.
- :class:`RayBackend`: each task is a Ray task with ``num_cpus`` / ``num_gpus`` (fractional
  GPUs let several tasks share one GPU) and ``max_retries``: a task whose worker process
  or node dies is run again elsewhere by Ray. Shared values go to Ray's object store
  once. Connects to ``address`` (``host:port`` of a cluster's head, or ``auto``), or
  starts a private Ray instance on this machine, bound to 127.0.0.1, when none is given.

Results come back to the caller, which alone writes files: a task never writes on the
node it runs on, so a lost node loses only unfinished tasks.
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

BACKENDS = ("local", "ray")
DEFAULT_MAX_RETRIES = 3  # Ray re-runs a task whose worker or node died this many times


# Ray would otherwise try addresses beyond loopback on its own: "resolving" 127.0.0.1 to the
# machine's outward address by a UDP connect to 8.8.8.8:53, and the head's usage module (which
# runs even without a dashboard) probing cloud metadata (169.254.169.254) and sending a
# "disabled" report. These settings keep every attempt on 127.0.0.1: no usage stats, and any
# HTTP request through a loopback port where nothing listens. Ray's own gRPC ignores proxies.
# Set for a private instance (RayBackend without an address), the Ray tests and benchmark.
_NOWHERE = "http://127.0.0.1:9"
LOOPBACK_ONLY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_REPORT_URL": _NOWHERE + "/",
    **{name: _NOWHERE for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
    **{name: "" for name in ("no_proxy", "NO_PROXY")},
}

# Listening addresses as /proc/net/tcp{,6} write them: 127.0.0.1, ::ffff:127.0.0.1 and ::1.
LOOPBACK_HEX = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def listening_addresses() -> set[str]:
    """Addresses (hex, as /proc/net shows them) of every listening TCP socket in this network namespace.

    The Ray tests and benchmark check it is a subset of ``LOOPBACK_HEX``: Ray listens on loopback only.
    """
    from pathlib import Path

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                found.add(fields[1].split(":")[0])
    return found


class TaskLost(OSError):
    """A task could not be completed by the backend (its worker or node died more often than retried)."""


@dataclass(frozen=True)
class Shared:
    """A handle to a value given to :meth:`Backend.share`; pass it as a task argument."""

    key: int


class Task(ABC):
    """One submitted task: ``result()`` waits for it and returns its value or raises its error."""

    @abstractmethod
    def result(self) -> Any:
        """The task's value, once it has finished; raises its error."""


class Backend(ABC):
    """The executor interface: ``share``, ``submit``, ``as_completed``, ``close`` (or ``with``)."""

    name = "?"

    @abstractmethod
    def share(self, value: Any) -> Any:
        """A handle to ``value`` (read-only) that tasks receive as the value itself."""

    @abstractmethod
    def submit(self, fn: Callable, *args: Any) -> Task:
        """Start ``fn(*args)`` (shared handles among ``args`` arrive as their values)."""

    @abstractmethod
    def as_completed(self, tasks: Iterable[Task]) -> Iterator[Task]:
        """Yield each of ``tasks`` as soon as it has finished (successfully or not)."""

    def describe(self) -> str:
        """One line: what runs the tasks (for progress bars and records)."""
        return self.name

    def task_device(self, device: str) -> str:
        """The torch device a task should use for ``device`` as the command line gave it."""
        return str(device)

    def slots(self) -> int:
        """How many tasks can run at once (for sizing chunks)."""
        return 1

    def close(self) -> None:
        """Cancel what has not finished and release the workers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- local: this process, or a pool of worker processes ------------------------------------------


_SHARED: dict[int, Any] = {}  # in a local pool's worker process: the values shared with it


def _install_shared(values: dict[int, Any]) -> None:
    _SHARED.update(values)


def _resolve(args: tuple, shared: dict[int, Any]) -> tuple:
    return tuple(shared[a.key] if isinstance(a, Shared) else a for a in args)


def _call_with_shared(fn: Callable, args: tuple) -> Any:
    return fn(*_resolve(args, _SHARED))


class _SerialTask(Task):
    def __init__(self, fn: Callable, args: tuple):
        self._fn, self._args, self._done, self._value, self._error = fn, args, False, None, None

    def run(self) -> None:
        if not self._done:
            try:
                self._value = self._fn(*self._args)
            except Exception as error:  # noqa: BLE001 - kept and raised by result(), as a future does
                self._error = error
            self._done = True

    def result(self) -> Any:
        self.run()
        if self._error is not None:
            raise self._error
        return self._value


class _FutureTask(Task):
    def __init__(self, future):
        self.future = future

    def result(self) -> Any:
        return self.future.result()


class LocalBackend(Backend):
    """Tasks on this machine: in this process (``jobs=1``) or in ``jobs`` spawned worker processes."""

    name = "local"

    def __init__(self, jobs: int = 1):
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"--jobs must be an integer >= 1, got {jobs!r}")
        self.jobs = jobs
        self._shared: dict[int, Any] = {}
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        return "this process" if self.jobs == 1 else f"{self.jobs} local worker processes"

    def slots(self) -> int:
        return self.jobs

    def share(self, value: Any) -> Any:
        if self.jobs == 1:
            return value
        if self._pool is not None:
            raise RuntimeError("share() every value before the first submit(): worker processes receive them at start")
        key = len(self._shared)
        self._shared[key] = value
        return Shared(key)

    def submit(self, fn: Callable, *args: Any) -> Task:
        if self.jobs == 1:
            return _SerialTask(fn, args)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),  # fresh interpreters: no inherited state or threads
                initializer=_install_shared,
                initargs=(self._shared,),
            )
        return _FutureTask(self._pool.submit(_call_with_shared, fn, args))

    def as_completed(self, tasks: Iterable[Task]) -> Iterator[Task]:
        tasks = list(tasks)
        if self.jobs == 1:
            for task in tasks:  # run lazily, in order: each is written before the next starts
                task.run()
                yield task
            return
        pending = {task.future: task for task in tasks}
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


# --- Ray: tasks on a cluster ---------------------------------------------------------------------


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--backend ray needs Ray, which is not installed here: pip install -e '.[ray]' "
            "(on every machine of the cluster)"
        ) from None
    return ray


class _RayTask(Task):
    def __init__(self, backend: "RayBackend", ref):
        self.backend, self.ref = backend, ref

    def result(self) -> Any:
        ray = self.backend.ray
        try:
            return ray.get(self.ref)
        except ray.exceptions.RayTaskError as error:  # the function raised: raise what it raised
            cause = getattr(error, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as error:
            raise TaskLost(
                f"a task was lost {self.backend.max_retries + 1} times (its worker process or node died: "
                f"{type(error).__name__}); finished results are kept, run the command again"
            ) from None


class RayBackend(Backend):
    """Ray tasks with ``cpus`` / ``gpus`` each (fractions allowed) and ``max_retries`` on worker or node loss.

    ``address``: a running cluster (``host:port`` of its head, or ``auto`` for the one
    this machine belongs to). None starts a private Ray instance on this machine, bound
    to 127.0.0.1, and stops it on ``close``. When this process is already connected to
    Ray (``ray.init`` called before), that connection is used and left open.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        local_cpus: int | None = None,
    ):
        self.cpus, self.gpus = _check_resource("--cpus-per-model", cpus, 0.0), _check_resource("--gpus-per-model", gpus, 0.0)
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"--gpus-per-model above 1 must be a whole number, got {gpus!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        self.ray = ray = _import_ray()
        self._owns_connection = False
        if ray.is_initialized():
            self.address = address or "this process's Ray connection"
        else:
            self.address = address or "a private local instance (127.0.0.1)"
            options: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
            if address is None:
                # A fresh instance on this machine that listens on loopback only, and reaches nothing else.
                os.environ.update(LOOPBACK_ONLY_ENV)
                options.update(address="local", _node_ip_address="127.0.0.1", num_cpus=local_cpus)
            else:
                options.update(address=address)
            try:
                ray.init(**options)
            except ConnectionError as error:
                raise ConnectionError(f"cannot reach the Ray cluster at {address}: {error}") from None
            self._owns_connection = True
        self._remotes: dict[Callable, Any] = {}
        self._refs: list = []
        try:
            self._check_fits()
        except ValueError:
            self.close()  # a private instance started for nothing is stopped again
            raise

    def _check_fits(self) -> None:
        """Refuse a request no node can ever satisfy (Ray would wait for it forever)."""
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if not any(n.get("CPU", 0) >= self.cpus and n.get("GPU", 0) >= self.gpus for n in nodes):
            have = ", ".join(f"{n.get('CPU', 0):g} CPU / {n.get('GPU', 0):g} GPU" for n in nodes) or "none"
            raise ValueError(
                f"no node of the Ray cluster has {self.cpus:g} CPU(s) and {self.gpus:g} GPU(s) for one task "
                f"(nodes: {have}): lower --cpus-per-model / --gpus-per-model"
            )

    def describe(self) -> str:
        resources = self.ray.cluster_resources()
        return (
            f"Ray at {self.address}: {len([n for n in self.ray.nodes() if n.get('Alive')])} node(s), "
            f"{resources.get('CPU', 0):g} CPU(s), {resources.get('GPU', 0):g} GPU(s); "
            f"{self.cpus:g} CPU(s) and {self.gpus:g} GPU(s) per task"
        )

    def slots(self) -> int:
        """Tasks the cluster can run at once now: its CPUs (and GPUs) over what one task reserves."""
        resources = self.ray.cluster_resources()
        fits = [int(resources.get(name, 0) // need) for name, need in (("CPU", self.cpus), ("GPU", self.gpus)) if need > 0]
        return max(1, min(fits)) if fits else 1

    def task_device(self, device: str) -> str:
        # Ray gives a task its GPUs as CUDA_VISIBLE_DEVICES: the task's first is always cuda:0.
        return "cuda" if str(device).startswith("cuda") else str(device)

    def share(self, value: Any) -> Any:
        return self.ray.put(value)  # an ObjectRef given as a task argument arrives as the value

    def submit(self, fn: Callable, *args: Any) -> Task:
        remote = self._remotes.get(fn)
        if remote is None:
            remote = self._remotes[fn] = self.ray.remote(fn).options(
                num_cpus=self.cpus,
                num_gpus=self.gpus,
                max_retries=self.max_retries,  # worker process or node died: run it again elsewhere
                retry_exceptions=False,  # an exception the function raised is an answer, not a fault
            )
        ref = remote.remote(*args)
        self._refs.append(ref)
        return _RayTask(self, ref)

    def as_completed(self, tasks: Iterable[Task]) -> Iterator[Task]:
        pending = {task.ref: task for task in tasks}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref)

    def close(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            for ref in self._refs:
                try:
                    ray.cancel(ref, force=True)  # finished ones are unaffected
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self._refs = []
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._owns_connection = False


def _check_resource(flag: str, value, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum or value != value:
        raise ValueError(f"{flag} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def make_backend(
    name: str,
    jobs: int = 1,
    address: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    threads: int | None = None,
    device: str = "cpu",
) -> Backend:
    """The backend the command line asked for, its options checked against each other.

    ``local``: ``jobs`` worker processes (1: this process). ``ray``: one task per model or
    chunk with ``cpus`` (default ``threads``) and ``gpus`` (default 1 on CUDA, 0 on the
    CPU) each; ``address`` of a running cluster or None for a private local instance.
    """
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    cuda = str(device).startswith("cuda")
    if name == "local":
        for flag, value in (("--ray-address", address), ("--cpus-per-model", cpus), ("--gpus-per-model", gpus)):
            if value is not None:
                raise ValueError(f"{flag} applies to --backend ray only")
        return LocalBackend(jobs)
    if jobs != 1:
        raise ValueError("--jobs applies to --backend local: on Ray, --cpus-per-model and --gpus-per-model decide how many run at once")
    if gpus is None:
        gpus = 1.0 if cuda else 0.0
    if cuda and not gpus > 0:
        raise ValueError(f"--device {device} on Ray needs --gpus-per-model > 0 (a fraction shares a GPU)")
    if not cuda and gpus:
        raise ValueError("--gpus-per-model applies to --device cuda: on the CPU leave it out")
    cpus = float(threads or 1) if cpus is None else cpus
    return RayBackend(address=address, cpus=cpus, gpus=gpus, local_cpus=os.cpu_count())
