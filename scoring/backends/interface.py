"""Where the scorer's expensive tasks run: one small interface, a local and a Ray implementation.

The shape is ``concurrent.futures``: a caller shares its large read-only inputs once,
submits a function with arguments per task, and collects the tasks as they finish::

    with make_backend("ray", address="head:6379", cpus=1, gpus=0.25) as backend:  # scoring.backends
        data = backend.share(split)                     # sent once, not once per task
        tasks = [backend.submit(train_one, data, k) for k in range(512)]
        for task in backend.as_completed(tasks):
            write(task.result())                        # as each finishes, in the caller's process

A task that produces many results (a chunk of a submission's runs) is a generator
function started with ``stream``; ``as_yielded`` hands back each item as soon as it is
yielded, from whichever task yields it, so the caller never waits for a whole task::

        streams = [backend.stream(run_chunk, data, a, b) for a, b in chunks]
        for stream, item in backend.as_yielded(streams):
            keep(item)                                  # one run at a time

Everything above this module (``scoring.references.build``, ``scoring.ingestion.chunks``) is
unaware which implementation runs. A task function must be importable by name (a
module-level function of the kit) and its arguments and items picklable.

- :class:`LocalBackend`: ``jobs=1`` runs each task in this process, lazily, when
  ``as_completed`` or ``as_yielded`` reaches it (so an interruption loses only the task
  in progress, and a stream's items arrive as it yields them); ``jobs>1`` runs them in a
  pool of fresh (spawned) worker processes that receive the shared values once, when
  they start (a pool returns whole results: a stream's items arrive when it ends).
- :class:`scoring.backends.ray_cluster.RayBackend`: each task is a Ray task, each stream a Ray
  streaming generator task, with ``num_cpus`` / ``num_gpus`` (fractional GPUs let
  several tasks share one GPU) and ``max_retries``: a task whose worker process or node
  dies is run again elsewhere by Ray. Shared values go to Ray's object store once.

Results come back to the caller, which alone writes files: a task never writes on the
node it runs on, so a lost node loses only unfinished tasks.
"""

from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Self, cast

from scoring.checks import check_int


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
    """The executor interface: ``share``, ``submit`` and ``as_completed``, ``stream`` and ``as_yielded``,
    ``close`` (or ``with``)."""

    name = "?"

    @abstractmethod
    def share(self, value: Any) -> Any:
        """A handle to ``value`` (read-only) that tasks receive as the value itself."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Start ``fn(*args)`` (shared handles among ``args`` arrive as their values)."""

    @abstractmethod
    def as_completed(self, tasks: Iterable[Task]) -> Iterator[Task]:
        """Yield each of ``tasks`` as soon as it has finished (successfully or not)."""

    @abstractmethod
    def stream(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Start the generator function ``fn(*args)``; collect its items with ``as_yielded``."""

    @abstractmethod
    def as_yielded(self, streams: Iterable[Task]) -> Iterator[tuple[Task, Any]]:
        """(stream, item) for each item any of ``streams`` yields, as soon as it is here; raises a stream's error."""

    def describe(self) -> str:
        """One line: what runs the tasks (for progress bars and records)."""
        return self.name

    def task_device(self, device: str) -> str:
        """The torch device a task should use for ``device`` as the command line gave it."""
        return str(device)

    def slots(self) -> int:
        """How many tasks can run at once (for sizing chunks)."""
        return 1

    def close(self) -> None:  # noqa: B027 - a default, not abstract: a backend with nothing to release keeps it
        """Cancel what has not finished and release the workers."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- local: this process, or a pool of worker processes ------------------------------------------


_SHARED: dict[int, Any] = {}  # in a local pool's worker process: the values shared with it


def _install_shared(values: dict[int, Any]) -> None:
    _SHARED.update(values)


def _resolve(args: tuple[Any, ...], shared: dict[int, Any]) -> tuple[Any, ...]:
    return tuple(shared[a.key] if isinstance(a, Shared) else a for a in args)


def _call_with_shared(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(*_resolve(args, _SHARED))


def _collect(fn: Callable[..., Iterable[Any]], *args: Any) -> list[Any]:
    """A stream run to its end in a pool's worker process: a pool returns whole results."""
    return list(fn(*args))


class _SerialTask(Task):
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._fn, self._args, self._done = fn, args, False
        self._value: Any = None
        self._error: Exception | None = None

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

    def items(self) -> Iterator[Any]:
        """A stream's items, computed here one by one as the caller asks for them."""
        yield from self._fn(*self._args)


class _FutureTask(Task):
    def __init__(self, future: Future[Any]) -> None:
        self.future = future

    def result(self) -> Any:
        return self.future.result()


class LocalBackend(Backend):
    """Tasks on this machine: in this process (``jobs=1``) or in ``jobs`` spawned worker processes."""

    name = "local"

    def __init__(self, jobs: int = 1):
        self.jobs = check_int(jobs, "--jobs", 1)
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

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
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

    def stream(self, fn: Callable[..., Any], *args: Any) -> Task:
        if self.jobs == 1:
            return _SerialTask(fn, args)
        return self.submit(_collect, fn, *args)

    def as_yielded(self, streams: Iterable[Task]) -> Iterator[tuple[Task, Any]]:
        streams = list(streams)
        if self.jobs == 1:
            for stream in streams:  # lazily, in order: each item is handed back as it is yielded
                for item in cast(_SerialTask, stream).items():
                    yield stream, item
            return
        for stream in self.as_completed(streams):
            for item in stream.result():
                yield stream, item

    def as_completed(self, tasks: Iterable[Task]) -> Iterator[Task]:
        tasks = list(tasks)
        if self.jobs == 1:
            for task in tasks:  # run lazily, in order: each is written before the next starts
                cast(_SerialTask, task).run()
                yield task
            return
        pending = {cast(_FutureTask, task).future: task for task in tasks}
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
