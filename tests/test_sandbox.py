"""The sealed scorer under attack: each test is what a hostile submission would try.

Each attack must end with a clear status, the scorer unharmed, and, checked from
outside, the leak not having happened (not merely the status). The tests that start
a sandbox are skipped, with the reason, only where the kernel cannot provide the
namespaces; the argv and the limits are checked everywhere.
"""

import json
import os
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest
from submissions import _fixtures as kit

from scoring.cli import main as scoring_main
from scoring.ingestion import sandbox
from scoring.ingestion.limits import Limits
from scoring.ingestion.runner import job_from_split, run_submission
from starter_kit.splits import load_split

SECRET = "organiser-secret-4f1c9a"
needs_sandbox = pytest.mark.skipif(
    sandbox.sandbox_problem() is not None, reason=f"no sandbox here: {sandbox.sandbox_problem()}"
)


@pytest.fixture(scope="module")
def secret_refs(split, tmp_path_factory):
    """Two reference models trained with the organisers' secret set (it changes their seeds)."""
    from scoring.references.build import build_references

    out = tmp_path_factory.mktemp("secret-refs") / "refs"
    with pytest.MonkeyPatch.context() as patch, kit.one_thread():
        patch.setenv("SCORING_SECRET", SECRET)
        build_references(load_split(split), 2, out, progress=False)
    return out


def score_source(split, refs, tmp_path, source, **options) -> dict:
    return kit.score(split, refs, kit.write_py(tmp_path, textwrap.dedent(source)), tmp_path / "out", **options)


def run_source(split, source: str, n_runs: int = 1, **limits):
    job = job_from_split(load_split(split), textwrap.dedent(source), "s.py", threads=1)
    with kit.one_thread():
        return run_submission(job, list(range(n_runs)), Limits(**limits), lambda k, s: None, progress=False)


def test_the_argv_binds_only_what_a_run_needs():
    plan = sandbox.SandboxPlan(
        read_only=sandbox.runtime_paths(),
        env=sandbox.sandbox_environment(threads=1),
        tmp_bytes=2**20,
        files=((7, sandbox.KIT_ARCHIVE),),
    )
    argv = sandbox.bwrap_argv(plan, ["python", "-c", "pass"])
    for flag in (
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--disable-userns",
    ):
        assert flag in argv, flag
    assert argv[argv.index("--uid") + 1] == "65534"
    sources = [argv[i + 1] for i, arg in enumerate(argv) if arg in ("--bind", "--ro-bind", "--dev-bind")]
    assert "--bind" not in argv  # nothing of the host is writable
    project = Path(__file__).resolve().parents[1]
    assert str(project) not in sources and str(project / "results") not in sources and str(Path.home()) not in sources
    system = {
        f"/{d}"
        for d in ("usr", "bin", "lib", "lib64", "sbin")
        if Path(f"/{d}").is_dir() and not Path(f"/{d}").is_symlink()
    }
    assert set(sources) == system | set(sandbox.runtime_paths())  # the kit and the job come in by descriptor
    assert argv[argv.index("--ro-bind-data") + 1 : argv.index("--ro-bind-data") + 3] == ["7", "/kit/kit.zip"]
    assert not any(arg.startswith("/dev/nvidia") for arg in argv)  # only with device cuda
    # (name, value) pairs from --setenv on; past them the pairs are nonsense that no lookup below asks for
    env = dict(zip(argv[argv.index("--clearenv") + 2 :: 3], argv[argv.index("--clearenv") + 3 :: 3], strict=False))
    assert "SCORING_SECRET" not in env and env["PYTHONPATH"] == "/kit/kit.zip"
    assert argv[argv.index("--tmpfs") - 1] == str(2**20)


def test_a_runtime_under_tmp_stays_visible_above_the_private_tmp(tmp_path):
    # bwrap mounts in order: the private /tmp must come before the binds that may lie in it
    # (a checkout or virtual environment under /tmp, as CI's clone may be).
    venv = str(tmp_path / "venv")
    plan = sandbox.SandboxPlan(read_only=(venv,), env={}, tmp_bytes=2**20, files=((7, "/kit/kit.zip"),))
    argv = sandbox.bwrap_argv(plan, ["true"])
    tmpfs = argv.index("--tmpfs")
    assert argv[tmpfs + 1] == "/tmp" and tmpfs < argv.index(venv) and tmpfs < argv.index("--ro-bind-data")


def test_the_sandbox_environment_is_fixed(monkeypatch):
    monkeypatch.setenv("SCORING_SECRET", SECRET)
    monkeypatch.setenv("HOME", "/home/organiser")
    env = sandbox.sandbox_environment(threads=2)
    assert SECRET not in env.values() and "/home/organiser" not in env.values()
    assert env["OMP_NUM_THREADS"] == "2" and env["HOME"] == "/tmp/work"
    assert env["USER"] == env["LOGNAME"] == "nobody"


@needs_sandbox
def test_libraries_that_ask_who_the_user_is_work_inside(split):
    """The sandbox's uid has no passwd entry; torch 2.11 asks getpass.getuser() when
    torchvision imports torch._dynamo, which failed every GPU worker before USER was set."""
    source = """\
    import getpass
    import torch._dynamo  # what torchvision imports
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    assert getpass.getuser() == "nobody", getpass.getuser()
    assert default_cache_dir().startswith("/tmp/"), default_cache_dir()

    def unlearning(net, retain_loader, forget_loader, val_loader):
        return net
    """
    result = run_source(split, source, run_seconds=30.0)
    assert result.status == "completed", result.reason


def test_the_scorer_can_make_itself_non_dumpable():
    import subprocess
    import sys

    code = (
        "import ctypes; from scoring.ingestion.confinement import make_non_dumpable as m; m(); "
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"  # PR_GET_DUMPABLE


class Listener:
    """A TCP listener on loopback that counts connections (what an exfiltrating submission would reach)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port, self.connections, self.running = self.server.getsockname()[1], 0, True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                connection, _ = self.server.accept()
                self.connections += 1
                connection.close()
            except OSError:
                continue

    def close(self):
        self.running = False
        self.thread.join()
        self.server.close()


SPY = """\
import os, socket

SECRET, SPLIT, REFS, ESCAPE, PORT = {secret!r}, {split!r}, {refs!r}, {escape!r}, {port}
FOUND = []


def leak(what):
    FOUND.append(what)
    print("LEAK: " + what, flush=True)


def probe(where):
    # ancestors' and every other visible process's /proc files
    for pid in [p for p in os.listdir("/proc") if p.isdigit()] + [str(os.getppid())]:
        for name in ("cmdline", "environ"):
            try:
                text = open(f"/proc/{{pid}}/{{name}}", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if SECRET in text or SPLIT in text or REFS in text:
                leak(f"/proc/{{pid}}/{{name}}")
        try:
            if SPLIT in os.readlink(f"/proc/{{pid}}/cwd"):
                leak(f"/proc/{{pid}}/cwd")
        except OSError:
            pass
    if SECRET in " ".join(os.environ.values()):
        leak("environment")
    # the split, the test indices and the references, by path
    for path in (SPLIT + "/indices/test.npy", SPLIT + "/manifest.json", REFS + "/index.json", SPLIT, REFS):
        if os.path.exists(path):
            leak("path " + path)
    # writing outside
    for path in (ESCAPE, SPLIT + "/planted.txt", "/usr/planted.txt"):
        try:
            with open(path, "w") as handle:
                handle.write("x")
            leak("wrote " + path)
        except OSError:
            pass
    # the network: a listener on the host's loopback
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
        leak("connected")
    except OSError:
        pass
    print(f"SPY DONE {{where}} {{len(FOUND)}}", flush=True)


def search():
    # the split, test indices and references, by search of the whole file system
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
        if root.endswith("indices") and "test.npy" in files:
            leak("found " + root)
        if "index.json" in files and any(f.startswith("model-") for f in files):
            leak("found " + root)
        if "manifest.json" in files and "original" in dirs:
            leak("found " + root)
    print("SEARCH DONE", flush=True)


probe("load")
search()


def unlearning(net, retain_loader, forget_loader, val_loader):
    probe("run")
    return net
"""


@needs_sandbox
def test_a_spy_finds_nothing_and_reaches_nothing(split, secret_refs, tmp_path, monkeypatch):
    refs = secret_refs
    monkeypatch.setenv("SCORING_SECRET", SECRET)
    listener = Listener()
    escape = tmp_path / "escaped.txt"
    source = SPY.format(secret=SECRET, split=str(split), refs=str(refs), escape=str(escape), port=listener.port)
    try:
        record = score_source(split, refs, tmp_path, source)
    finally:
        listener.close()
    log = (tmp_path / "out" / "submission.log").read_text()
    assert record["status"] == "scored", record["reason"]
    assert "SPY DONE load 0" in log and "SEARCH DONE" in log and log.count("SPY DONE run 0") == 2, log[-2000:]
    assert "LEAK" not in log
    assert listener.connections == 0
    assert not escape.exists() and not (split / "planted.txt").exists()
    assert record["sealed"] is True


@needs_sandbox
def test_with_a_secret_participants_never_see_run_seeds(split, secret_refs, tmp_path, monkeypatch):
    refs = secret_refs
    monkeypatch.setenv("SCORING_SECRET", SECRET)
    record = score_source(split, refs, tmp_path, "def unlearning(net, r, f, v):\n    return net\n")
    out = tmp_path / "out"
    seeds = json.loads((out / "organisers" / "seeds.json").read_text())["run_seeds"]
    assert len(seeds) == 2
    for name in ("score.json", "runs.csv", "submission.log"):
        text = (out / name).read_text()
        assert SECRET not in text and not any(str(seed) in text for seed in seeds), name
    assert "run_seeds" not in record and all("seed" not in run for run in record["runs"])
    assert "seed" not in (out / "runs.csv").read_text().splitlines()[0]


@needs_sandbox
def test_a_process_left_behind_is_killed_and_reported(split, refs, tmp_path):
    source = """\
    import os
    def unlearning(net, retain_loader, forget_loader, val_loader):
        if os.fork() == 0:  # a double-forked daemon in a session of its own
            os.setsid()
            if os.fork() == 0:
                os.execv("/usr/bin/sleep", ["sleep", "171.717"])
            os._exit(0)
        os.wait()
        return net
    """
    record = score_source(split, refs, tmp_path, source)
    assert record["status"] == "scored", record["reason"]
    assert record["processes"]["left_running"] >= 1 and record["processes"]["survived_kill"] == 0
    assert _processes_with("171.717") == []


@needs_sandbox
def test_a_fork_bomb_is_rejected_and_the_machine_unharmed(split):
    before = len(list(Path("/proc").glob("[0-9]*")))
    source = """\
    import os
    def unlearning(net, retain_loader, forget_loader, val_loader):
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    result = run_source(split, source, n_runs=2, run_seconds=1.0, processes=48)
    assert result.status == "rejected", result.reason
    assert result.processes_survived == 0
    if os.geteuid() == 0 and result.process_cap_hit:  # root: the pids cgroup saw the refusals
        assert "cap of 48 processes" in result.reason
    time.sleep(0.5)
    assert len(list(Path("/proc").glob("[0-9]*"))) < before + 10


@needs_sandbox
def test_a_huge_file_fails_inside_the_sandbox(split):
    source = """\
    def unlearning(net, retain_loader, forget_loader, val_loader):
        with open("huge", "wb") as handle:
            for _ in range(256):
                handle.write(b"0" * 2**20)
        return net
    """
    result = run_source(split, source, run_seconds=30.0, tmp_bytes=32 * 2**20)
    assert result.status == "failed"
    assert "run 0 raised OSError" in result.reason and (
        "No space left" in result.reason or "too large" in result.reason
    )


@needs_sandbox
def test_a_forged_clock_does_not_change_the_measured_time(split, refs, tmp_path):
    source = """\
    import time
    sleep = time.sleep
    for name in ("perf_counter", "monotonic", "time", "process_time"):
        setattr(time, name, lambda: 0.0)
    def unlearning(net, retain_loader, forget_loader, val_loader):
        sleep(0.4)
        return net
    """
    record = score_source(split, refs, tmp_path, source, time_limit=1.0)
    assert record["status"] == "scored", record["reason"]
    assert all(run["seconds"] >= 0.4 and run["reported_seconds"] == 0.0 for run in record["runs"])
    assert record["time"]["mean_seconds"] >= 0.4
    record = score_source(split, refs, tmp_path, source, time_limit=0.3, replace=True)
    assert record["status"] == "rejected" and "mean run time" in record["reason"]


FORGERIES = {
    "at-load": (
        "import os, sys\n"
        'os.write(int(sys.argv[-1]), b\'{"event": "run", "index": 0, "ok": true, "bytes": 5}\\nhello\')\n'
        "def unlearning(net, r, f, v):\n    return net\n",
        "run 0 returned a model that is not a safetensors file",  # the load is run 0's: its forgery is run 0's answer
    ),
    "other-index": (
        "import os, sys\ndef unlearning(net, r, f, v):\n"
        '    os.write(int(sys.argv[-1]), b\'{"event": "run", "index": 1, "ok": false, "reason": "x"}\\n\')\n'
        "    return net\n",
        "unexpected message during run 0",
    ),
    "oversized": (
        "import os, sys\ndef unlearning(net, r, f, v):\n"
        "    os.write(int(sys.argv[-1]), b'x' * 200_000)\n    return net\n",
        "oversized message during run 0",
    ),
    "huge-payload": (
        "import os, sys\ndef unlearning(net, r, f, v):\n"
        '    os.write(int(sys.argv[-1]), b\'{"event": "run", "index": 0, "ok": true, "bytes": 99999999999}\\n\')\n'
        "    return net\n",
        "more than one of the original's can hold",
    ),
    "forged-failure": (
        "import os, sys\ndef unlearning(net, r, f, v):\n"
        '    os.write(int(sys.argv[-1]), b\'{"event": "run", "index": 0, "ok": false, "reason": "forged"}\\n\')\n'
        "    return net\n",
        "run 0 forged",
    ),
}


@needs_sandbox
def test_forged_result_messages_fail_the_submission(split, refs, tmp_path):
    for name, (source, fragment) in FORGERIES.items():
        (tmp_path / name).mkdir()
        record = score_source(split, refs, tmp_path / name, source)
        assert record["status"] == "failed" and fragment in record["reason"], (name, record["reason"])
    (tmp_path / "next").mkdir()
    record = score_source(split, refs, tmp_path / "next", "def unlearning(net, r, f, v):\n    return net\n")
    assert record["status"] == "scored"  # and the next submission, after all of them, is scored as usual


@needs_sandbox
def test_a_malicious_pickle_is_never_unpickled(split, refs, tmp_path):
    marker = tmp_path / "pwned"
    source = f"""\
    import io, os, pickle, sys

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch {marker}",))

    def unlearning(net, retain_loader, forget_loader, val_loader):
        data = pickle.dumps({{"fc.weight": Payload()}})
        header = ('{{"event": "run", "index": 0, "ok": true, "bytes": %d}}\\n' % len(data)).encode()
        os.write(int(sys.argv[-1]), header + data)
        os._exit(0)
    """
    record = score_source(split, refs, tmp_path, source)
    assert record["status"] == "failed" and "safetensors" in record["reason"], record["reason"]
    assert not marker.exists()


@pytest.fixture()
def no_sandbox(monkeypatch):
    """A machine where bwrap cannot start (here: a bwrap that always fails)."""
    monkeypatch.setenv(sandbox.BWRAP_ENV, "/bin/false")
    sandbox.sandbox_problem.cache_clear()
    yield
    sandbox.sandbox_problem.cache_clear()


def test_without_a_sandbox_scoring_stops_with_one_line_unless_unsealed(split, refs, tmp_path, capsys, no_sandbox):
    submission = kit.write_py(tmp_path, "def unlearning(net, r, f, v):\n    return net\n")
    args = [
        "score",
        str(submission),
        "--team",
        "t",
        "--split-dir",
        str(split),
        "--n-models",
        "2",
        "--refs",
        str(refs),
        "--quiet",
    ]
    with kit.one_thread():
        code = scoring_main([*args, "--out", str(tmp_path / "sealed")])
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and "--unsealed" in stderr and "sandbox cannot start" in stderr
    assert not (tmp_path / "sealed").exists()
    with kit.one_thread():
        code = scoring_main([*args, "--out", str(tmp_path / "unsealed"), "--unsealed", "--time-limit", "30"])
    record = json.loads((tmp_path / "unsealed" / "score.json").read_text())
    assert code == 0 and record["status"] == "scored" and record["sealed"] is False
    assert "UNSEALED" in capsys.readouterr().out


@needs_sandbox
def test_no_process_of_the_sandbox_outlives_a_killed_worker(split):
    source = """\
    import os, time
    def unlearning(net, retain_loader, forget_loader, val_loader):
        for _ in range(3):
            if os.fork() == 0:
                os.execv("/usr/bin/sleep", ["sleep", "272.727"])
        time.sleep(600)
    """
    result = run_source(split, source, run_seconds=0.5)
    assert result.status == "rejected" and result.processes_survived == 0
    assert _processes_with("272.727") == []


def _processes_with(token: str) -> list[str]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if token.encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            pass
    return found


def test_the_scorer_never_freezes_or_kills_its_own_namespace():
    from scoring.ingestion import confinement

    own = confinement.pid_namespace(os.getpid())
    for act in (confinement.kill_namespace, confinement.namespace_processes, confinement.wait_until_empty):
        with pytest.raises(RuntimeError, match="own PID namespace"):
            act(own)
