"""The Ray implementation of :mod:`scoring.backends.interface`' interface: tasks and streams on a Ray cluster.

:class:`RayBackend` runs each task as a Ray task and each stream as a Ray streaming
generator task (``num_returns="streaming"``), with ``num_cpus`` / ``num_gpus`` (a
fractional GPU lets several tasks share one) and ``max_retries``: a task whose worker
process or node dies is run again elsewhere by Ray. A retried stream starts again from
its beginning; Ray hands the caller each item index once, so what was already received
is not received again (callers that must be exact also key items by what they are, as
``scoring.ingestion.chunks`` does). Shared values go to Ray's object store once. It connects
to ``address`` (``host:port`` of a cluster's head, or ``auto``), or starts a private Ray
instance on this machine, bound to 127.0.0.1, when none is given. Before connecting, it
checks that something answers at ``host:port`` (Ray would retry for ever) and sends this
machine's Ray token when it has one, as ``ray start`` does.

This module also owns what keeps a private instance on loopback (``LOOPBACK_ONLY_ENV``)
and how the Ray tests and the scaling benchmark check it (``listening_addresses``).
Importing it does not import Ray; ``RayBackend`` does, and says how to install it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from scoring.backends.interface import Backend, Task, TaskLost
from scoring.checks import check_int, check_number

DEFAULT_MAX_RETRIES = 3  # Ray re-runs a task whose worker or node died this many times
TOKEN_FILE = Path.home() / ".ray" / "auth_token"  # where Ray keeps this machine's token


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
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                found.add(fields[1].split(":")[0])
    return found


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--backend ray needs Ray, which is not installed here: pip install -e '.[ray]' "
            "(on every machine of the cluster)"
        ) from None
    return ray


def _get(backend: RayBackend, ref: Any) -> Any:
    """The value of ``ref``; raises what the task's function raised, or TaskLost when Ray gave up on it."""
    ray = backend.ray
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:  # the function raised: raise what it raised
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as error:
        raise TaskLost(
            f"a task was lost {backend.max_retries + 1} times (its worker process or node died: "
            f"{type(error).__name__}); finished results are kept, run the command again"
        ) from None


class _RayTask(Task):
    def __init__(self, backend: RayBackend, ref: Any) -> None:
        self.backend, self.ref = backend, ref

    def result(self) -> Any:
        try:
            return _get(self.backend, self.ref)
        finally:
            self.backend._outstanding.pop(self.ref, None)  # finished: never cancelled (see RayBackend.close)


class _RayStream(Task):
    """A streaming generator task: ``generator`` is Ray's ObjectRefGenerator, one ObjectRef per item."""

    def __init__(self, backend: RayBackend, generator: Any) -> None:
        self.backend, self.generator = backend, generator

    def result(self) -> None:
        """None once the stream has ended; raises its error."""
        _get(self.backend, self.generator.completed())


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a ``host:port`` where nothing listens: ``ray.init`` would retry it for ever."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return  # resolved by Ray itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address}: nothing answers there ({error.strerror or error}); "
            "give the address 'ray start --head' printed"
        ) from None


def _use_token_if_present() -> str | None:
    """Send this machine's Ray token if it has one, as ``ray start`` does. Ray 2.60 turns token
    authentication on for a head started where ``~/.ray/auth_token`` exists (a private instance
    writes one), but a driver that connects sends no token unless ``RAY_AUTH_MODE=token``.
    Returns where the token is, or None; a ``RAY_AUTH_MODE`` the user set is left as it is."""
    if os.environ.get("RAY_AUTH_MODE") not in (None, "token"):
        return None
    found = ("$RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN") else None) or os.environ.get("RAY_AUTH_TOKEN_PATH")
    found = found or (str(TOKEN_FILE) if TOKEN_FILE.is_file() else None)
    if found and "RAY_AUTH_MODE" not in os.environ:
        try:  # Ray's own switch (what `ray start` calls): sets the variable and refreshes Ray's cached config
            from ray._private.authentication.authentication_token_setup import _enable_token_auth
        except ImportError:  # a Ray without token authentication: nothing to send
            return None
        _enable_token_auth()
    return found


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
        self.cpus, self.gpus = (
            check_number(cpus, "--cpus-per-model", 0.0),
            check_number(gpus, "--gpus-per-model", 0.0),
        )
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"--gpus-per-model above 1 must be a whole number, got {gpus!r}")
        self.max_retries = check_int(max_retries, "max_retries", 0)
        self.ray = ray = _import_ray()
        self._owns_connection = False
        if ray.is_initialized():
            self.address = address or "this process's Ray connection"
        else:
            self.address = address or "a private local instance (127.0.0.1)"
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
            token = None  # where this machine's Ray token is, when connecting to a cluster sends it
            if address is None:
                # A fresh instance on this machine that listens on loopback only, and reaches nothing else.
                os.environ.update(LOOPBACK_ONLY_ENV)
                options.update(address="local", _node_ip_address="127.0.0.1", num_cpus=local_cpus)
            else:
                _check_reachable(address)
                token = _use_token_if_present()
                options.update(address=address)
            try:
                ray.init(**options)
            except ConnectionError as error:
                hint = f" (token authentication: {token} must hold the head's token)" if token else ""
                raise ConnectionError(f"cannot reach the Ray cluster at {address}: {error}{hint}") from None
            self._owns_connection = True
        self._remotes: dict[tuple[Callable[..., Any], str | int], Any] = {}
        # What close() may cancel: each task's ref (each stream's generator) -> the ref that is ready when it ends.
        self._outstanding: dict[Any, Any] = {}
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
        fits = [
            int(resources.get(name, 0) // need) for name, need in (("CPU", self.cpus), ("GPU", self.gpus)) if need > 0
        ]
        return max(1, min(fits)) if fits else 1

    def task_device(self, device: str) -> str:
        # Ray gives a task its GPUs as CUDA_VISIBLE_DEVICES: the task's first is always cuda:0.
        return "cuda" if str(device).startswith("cuda") else str(device)

    def share(self, value: Any) -> Any:
        return self.ray.put(value)  # an ObjectRef given as a task argument arrives as the value

    def _remote(self, fn: Callable[..., Any], returns: str | int) -> Any:
        """``fn`` as a Ray remote function with this backend's resources and retries (made once per kind)."""
        remote = self._remotes.get((fn, returns))
        if remote is None:
            remote = self._remotes[(fn, returns)] = self.ray.remote(fn).options(
                num_cpus=self.cpus,
                num_gpus=self.gpus,
                num_returns=returns,
                max_retries=self.max_retries,  # worker process or node died: run it again elsewhere
                retry_exceptions=False,  # an exception the function raised is an answer, not a fault
            )
        return remote

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        ref = self._remote(fn, 1).remote(*args)
        self._outstanding[ref] = ref
        return _RayTask(self, ref)

    def stream(self, fn: Callable[..., Any], *args: Any) -> Task:
        generator = self._remote(fn, "streaming").remote(*args)  # an ObjectRefGenerator: items as yielded
        self._outstanding[generator] = generator.completed()
        return _RayStream(self, generator)

    def as_yielded(self, streams: Iterable[Task]) -> Iterator[tuple[Task, Any]]:
        pending = {cast(_RayStream, stream).generator: stream for stream in streams}
        while pending:
            # A generator is ready when its next item is here, or when it has ended.
            ready, _ = self.ray.wait(list(pending), num_returns=1)
            for generator in ready:
                try:
                    ref = next(generator)
                except StopIteration:
                    del pending[generator]
                    self._outstanding.pop(generator, None)
                    continue
                try:
                    item = _get(self, ref)
                except BaseException:  # the function's error, or TaskLost: the stream has ended
                    self._outstanding.pop(generator, None)
                    raise
                yield pending[generator], item

    def as_completed(self, tasks: Iterable[Task]) -> Iterator[Task]:
        pending = {cast(_RayTask, task).ref: task for task in tasks}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                self._outstanding.pop(ref, None)
                yield pending.pop(ref)

    def close(self) -> None:
        """Stop the tasks still running (force: their workers are killed), then the private instance if any.

        Only tasks whose results were never collected are cancelled. Cancelling one that
        has just finished races with Ray's own completion of it, and Ray 2.60's driver
        then dies on an internal check ("Tried to complete task that was not pending",
        ray-project/ray#54798): exit code 1, from a Ray thread, with no Python cleanup.
        """
        ray = self.ray
        if self._outstanding and ray.is_initialized():
            ends = list(self._outstanding.values())
            ended, _ = ray.wait(ends, num_returns=len(ends), timeout=0)  # finished meanwhile: leave them be
            ended = set(ended)
            for waitable, end in self._outstanding.items():
                if end not in ended:
                    with contextlib.suppress(Exception):  # already gone
                        ray.cancel(waitable, force=True)
        self._outstanding = {}
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._owns_connection = False
