"""Executors: the local backend here; the Ray backend on a real two-node cluster in a private network namespace.

The Ray tests live in ``tests/ray_in_namespace.py`` and run in a child pytest under
``unshare --net`` (a network namespace with nothing but loopback), so every Ray process
binds and talks to 127.0.0.1 only. They are skipped, with the reason, where this
machine does not allow a private network namespace (not root, no ``unshare``).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scoring.backends import make_backend
from scoring.backends.interface import LocalBackend
from scoring.backends.ray_cluster import LOOPBACK_ONLY_ENV

ROOT = Path(__file__).resolve().parents[1]


def square(x):
    return x * x


def scaled(shared, x):
    return shared["factor"] * x


def fail_on(x, bad):
    if x == bad:
        raise ValueError(f"task {x} failed")
    return x


def test_serial_runs_each_task_when_its_turn_comes():
    calls = []

    def record(x):
        calls.append(x)
        return x

    with LocalBackend(1) as backend:
        tasks = [backend.submit(record, k) for k in range(3)]
        assert calls == []  # nothing runs at submit: an interruption loses only the task in progress
        seen = []
        for task in backend.as_completed(tasks):
            seen.append(task.result())
            assert calls == seen  # one at a time, each collected before the next starts
    assert seen == [0, 1, 2]


def test_a_pool_shares_values_once_and_returns_every_result():
    with LocalBackend(2) as backend:
        shared = backend.share({"factor": 3})
        tasks = [backend.submit(scaled, shared, k) for k in range(4)]
        assert sorted(t.result() for t in backend.as_completed(tasks)) == [0, 3, 6, 9]
        with pytest.raises(RuntimeError, match="before the first submit"):
            backend.share(1)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_task_error_is_raised_by_its_result(jobs):
    with LocalBackend(jobs) as backend:
        tasks = [backend.submit(fail_on, k, 1) for k in range(3)]
        results, errors = [], []
        for task in backend.as_completed(tasks):
            try:
                results.append(task.result())
            except ValueError as error:
                errors.append(str(error))
    assert sorted(results) == [0, 2] and errors == ["task 1 failed"]


def test_options_are_checked_against_the_backend():
    with pytest.raises(ValueError, match="--jobs must be an integer >= 1"):
        LocalBackend(0)
    with pytest.raises(ValueError, match="--backend must be one of local, ray"):
        make_backend("dask")
    with pytest.raises(ValueError, match="--ray-address applies to --backend ray only"):
        make_backend("local", address="127.0.0.1:6379")
    with pytest.raises(ValueError, match="--gpus-per-model applies to --backend ray only"):
        make_backend("local", gpus=0.25)
    with pytest.raises(ValueError, match="--jobs applies to --backend local"):
        make_backend("ray", jobs=2)
    with pytest.raises(ValueError, match="needs --gpus-per-model > 0"):
        make_backend("ray", gpus=0, device="cuda")
    with pytest.raises(ValueError, match="--gpus-per-model applies to --device cuda"):
        make_backend("ray", gpus=0.5, device="cpu")
    assert make_backend("local", jobs=2).slots() == 2


def _private_network_namespace() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) not installed"
    probe = subprocess.run(
        ["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return f"'unshare --net' is not permitted here ({probe.stderr.strip()[:200] or probe.returncode})"
    return None


def test_ray_on_a_two_node_cluster_in_a_private_network_namespace():
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (make test does)")
    reason = _private_network_namespace()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    started = time.monotonic()
    process, logs = _run_namespaced_ray_tests()
    output = process.stdout + process.stderr
    print(output[-6000:])
    print(f"Ray tests in the namespace: {time.monotonic() - started:.1f} s")
    failures = "\n".join(line for line in output.splitlines() if line.startswith(("E ", "FAILED", "ERROR", "_____")))
    assert process.returncode == 0, f"{failures}\n...\n{output[-3000:]}\n{logs}"
    assert " passed" in process.stdout and " failed" not in process.stdout and " skipped" not in process.stdout


def _run_namespaced_ray_tests() -> tuple[subprocess.CompletedProcess, str]:
    """Run tests/ray_in_namespace.py under 'unshare --net'; return it and the tail of Ray's logs."""
    # Ray's sessions and logs in a folder of our own, removed afterwards.
    private = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    os.mkdir(os.path.join(private, "ray"))  # $RAY_TMPDIR/ray: where Ray notes the address of the cluster it started
    env = {
        **os.environ,
        **LOOPBACK_ONLY_ENV,
        "OMP_NUM_THREADS": "1",
        "KIT_RAY_NAMESPACE_TESTS": "1",
        "RAY_TMPDIR": private,
    }
    # -u: nothing lost if it dies
    inner = f"{sys.executable} -u -m pytest -v -p no:cacheprovider --durations=6 tests/ray_in_namespace.py"
    try:
        process = subprocess.run(
            ["unshare", "--net", "sh", "-c", f"ip link set lo up && exec {inner}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
        logs = []
        if process.returncode != 0:
            for path in (
                sorted(Path(private).rglob("*.out"))[-6:] + sorted(Path(private).rglob("python-core-driver*.log"))[-1:]
            ):
                lines = path.read_text(errors="replace").splitlines()[-15:]
                logs.append(f"--- {path.name}\n" + "\n".join(lines))
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return process, "\n".join(logs)


class _FakeRay:
    """Stands in for the ray module: records how the backend starts and uses it."""

    def __init__(self):
        self.calls, self.initialized = [], False
        self.refs, self.done, self.cancelled = [], set(), []

    def is_initialized(self):
        return self.initialized

    def init(self, **options):
        self.calls.append(("init", options))
        self.initialized = True

    def shutdown(self):
        self.calls.append(("shutdown", {}))
        self.initialized = False

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": 2.0}}]

    def cluster_resources(self):
        return {"CPU": 2.0}

    def cancel(self, ref, force):
        self.cancelled.append(ref)

    # Tasks: remote(fn).options(...).remote(*args) returns a ref; a ref in ``done`` has finished.
    def remote(self, fn):
        fake = self

        class Remote:
            def options(self, **options):
                return self

            def remote(self, *args):
                fake.refs.append(f"ref-{len(fake.refs)}")
                return fake.refs[-1]

        return Remote()

    def wait(self, refs, num_returns=1, timeout=None):
        ready = [r for r in refs if r in self.done]
        return ready[: len(refs) if timeout == 0 else num_returns], [r for r in refs if r not in self.done]

    def get(self, ref):
        return ref.upper()


def test_without_an_address_ray_starts_a_private_instance_on_loopback(monkeypatch):
    from scoring.backends import ray_cluster as backends

    fake = _FakeRay()
    monkeypatch.setattr(backends, "_import_ray", lambda: fake)
    with backends.RayBackend(cpus=1, local_cpus=2) as backend:
        assert backend.task_device("cuda:3") == "cuda" and backend.task_device("cpu") == "cpu"
        assert backend.slots() == 2
    name, options = fake.calls[0]
    assert name == "init" and options["address"] == "local" and options["_node_ip_address"] == "127.0.0.1"
    assert options["include_dashboard"] is False and fake.calls[-1][0] == "shutdown"

    fake = _FakeRay()
    monkeypatch.setattr(backends, "_import_ray", lambda: fake)
    monkeypatch.setattr(backends, "_check_reachable", lambda address: None)  # tests reach loopback only
    monkeypatch.setattr(backends, "TOKEN_FILE", Path("/nonexistent/auth_token"))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    backends.RayBackend(address="10.0.0.1:6379").close()  # never contacted: the fake records the call
    assert fake.calls[0][1]["address"] == "10.0.0.1:6379" and "_node_ip_address" not in fake.calls[0][1]

    fake = _FakeRay()
    monkeypatch.setattr(backends, "_import_ray", lambda: fake)
    with pytest.raises(ValueError, match=r"no node of the Ray cluster has 1 CPU\(s\) and 1 GPU\(s\)"):
        backends.RayBackend(gpus=1)
    assert [name for name, _ in fake.calls] == ["init", "shutdown"]


@pytest.mark.timing
def test_an_address_where_nothing_listens_is_refused_at_once(monkeypatch):
    """ray.init would retry it for ever (Ray 2.60): the backend checks the port first, on loopback here."""
    import socket

    from scoring.backends import ray_cluster as ray_backend

    fake = _FakeRay()
    monkeypatch.setattr(ray_backend, "_import_ray", lambda: fake)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ray_backend._check_reachable(f"127.0.0.1:{listener.getsockname()[1]}")  # something answers: no error
        with socket.socket() as probe:  # a port that was free a moment ago
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(
        ConnectionError, match=rf"cannot reach the Ray cluster at 127.0.0.1:{closed}: nothing answers there"
    ):
        ray_backend.RayBackend(address=f"127.0.0.1:{closed}")
    assert time.monotonic() - started < 10 and fake.calls == []  # Ray was never asked
    ray_backend._check_reachable("auto")  # Ray resolves that one itself


def test_a_driver_sends_this_machines_token_as_ray_start_does(monkeypatch, tmp_path):
    """Ray 2.60 turns token authentication on for a head started where ~/.ray/auth_token exists;
    a driver must then send it, which Ray does only with RAY_AUTH_MODE=token."""
    pytest.importorskip("ray")
    from scoring.backends import ray_cluster as ray_backend

    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ray_backend, "TOKEN_FILE", tmp_path / "auth_token")
    assert ray_backend._use_token_if_present() is None and "RAY_AUTH_MODE" not in os.environ
    (tmp_path / "auth_token").write_text("0" * 64)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's choice stands
    assert ray_backend._use_token_if_present() is None and os.environ["RAY_AUTH_MODE"] == "disabled"
    monkeypatch.delenv("RAY_AUTH_MODE")
    try:
        assert ray_backend._use_token_if_present() == str(tmp_path / "auth_token")
        assert os.environ["RAY_AUTH_MODE"] == "token"
    finally:  # this process's Ray config back to what the environment says
        monkeypatch.undo()
        from ray._raylet import Config

        Config.initialize("")


def test_closing_cancels_only_tasks_never_collected(monkeypatch):
    # Cancelling a task that has just finished races with Ray's completion of it and kills
    # the driver (Ray 2.60: "Tried to complete task that was not pending"): a collected task
    # is never cancelled, nor one that has finished by the time the backend closes.
    from scoring.backends import ray_cluster as ray_backend

    fake = _FakeRay()
    monkeypatch.setattr(ray_backend, "_import_ray", lambda: fake)
    with ray_backend.RayBackend(cpus=1, local_cpus=2) as backend:
        collected, finished, running = (backend.submit(square, k) for k in range(3))
        fake.done.add(collected.ref)
        assert [t.result() for t in backend.as_completed([collected])] == ["REF-0"]
        fake.done.add(finished.ref)
    assert fake.cancelled == [running.ref]
