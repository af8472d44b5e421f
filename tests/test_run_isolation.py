"""Issue 28: each run gets exactly what the clock assumes (its CPUs, its GPU) and nothing from any other run.

Each channel a submission could use to share work between runs, or to work off the
clock, is tried by a tiny submission under ``tests/submissions/`` and shown, from
outside, to gain nothing: what one run leaves, the next does not find; nothing a run
started still runs while the scorer evaluates; widening affinity or threads reaches no
other core; a missing cgroup is named, and the official commands refuse to score
without it unless told to.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from submissions import _fixtures as kit

from scoring.backends import cpu_share
from scoring.cli import main as scoring_main
from scoring.ingestion import cgroups, sandbox
from scoring.ingestion.limits import Limits
from scoring.ingestion.runner import job_from_split, run_submission
from starter_kit.splits import load_split

needs_sandbox = pytest.mark.skipif(
    sandbox.sandbox_problem() is not None, reason=f"no sandbox here: {sandbox.sandbox_problem()}"
)
SUBMISSIONS = Path(kit.HERE)


def run_file(split, name: str, n_runs: int, on_model=lambda k, s: None, sealed: bool = True):
    job = job_from_split(load_split(split), (SUBMISSIONS / name).read_text(), name, threads=1)
    with kit.one_thread():
        return run_submission(job, list(range(n_runs)), Limits(run_seconds=60.0), on_model, False, sealed)


@needs_sandbox
def test_nothing_a_run_leaves_reaches_the_next(split):
    """A module global, files in /tmp, the working directory and /dev/shm, a descriptor, an environment
    variable, a thread, a child process and a System V segment: each run finds none of the last run's."""
    result = run_file(split, "carry_over.py", n_runs=3)
    assert result.status == "completed", result.reason
    assert result.processes_left == 3 and result.processes_survived == 0  # each run's child, killed after it


@needs_sandbox
def test_nothing_of_a_run_works_while_the_scorer_evaluates(split):
    """A thread, a child and a helper whose main thread exited (state Z, which SIGSTOP skipped) keep
    printing the time: none of their ticks falls inside the scorer's evaluation of a run's model."""
    windows = []

    def evaluate(index, state):
        started = time.monotonic()
        time.sleep(0.3)
        windows.append((started, time.monotonic()))

    result = run_file(split, "ticker.py", n_runs=2, on_model=evaluate)
    assert result.status == "completed", result.reason
    ticks = [(m[1], float(m[2])) for m in re.finditer(r"TICK (\S+) (\d+\.\d+)", result.output)]
    expected = {"thread", "child"} | ({"zombie-leader"} if os.uname().machine in ("x86_64", "aarch64") else set())
    assert {who for who, _ in ticks} == expected  # they did run, during the runs
    inside = [(who, t) for who, t in ticks for a, b in windows if a <= t <= b]
    assert inside == [] and len(windows) == 2, inside


@needs_sandbox
@pytest.mark.parametrize("held_by", ["cpuset", "quota"])
def test_widened_affinity_and_threads_reach_no_other_core(split, monkeypatch, held_by):
    """Held to one CPU by its cpuset (and the seccomp filter), or where cpusets cannot be had by a quota of one
    core's time, two processes spinning 0.6 s get at most about 0.6 s of CPU."""
    if len(cpu_share.usable_cpus()) < 2:
        pytest.skip("one CPU here: nothing to widen to")
    found = cgroups.hierarchies()
    if held_by not in ("cpuset" if "cpuset" in found else "", "quota" if "cpu" in found else ""):
        pytest.skip(f"no writable {held_by} controller here")
    if held_by == "quota":
        monkeypatch.setattr(cgroups, "hierarchies", lambda: {k: v for k, v in found.items() if k != "cpuset"})
    result = run_file(split, "widen_cpus.py", n_runs=1)
    assert result.status == "completed", result.reason
    line = re.search(r"CPUS given (\d+) widened (\d+) threads (\d+) cpu (\S+) wall (\S+)", result.output)
    given, widened, _, cpu, wall = (float(x) for x in line.groups())
    assert given == widened == 1 and result.caps_missing == []
    assert cpu <= 0.6 * 1.25 and cpu <= wall * 1.15, line.group(0)  # unconfined: up to 1.2 s on two cores


def test_tasks_side_by_side_hold_cores_of_their_own():
    """Two tasks at once (here: this process and another) hold different CPUs; nested, one process keeps its own."""
    if len(cpu_share.usable_cpus()) < 2:
        pytest.skip("one CPU here")
    other = "from scoring.backends.cpu_share import cpu_share\nwith cpu_share(1) as cpus:\n    print(cpus[0])\n"
    with cpu_share.cpu_share(1) as first, cpu_share.cpu_share(1) as nested:
        assert nested == first and len(first) == 1
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        seen = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True, env=env, check=True)
    assert int(seen.stdout) != first[0]


def test_only_the_assigned_gpus_node_is_bound():
    plan = sandbox.SandboxPlan(
        read_only=(),
        env=sandbox.sandbox_environment(1, "cuda", sandbox.Gpu(3, "GPU-0123")),
        tmp_bytes=1 << 20,
        device="cuda",
        gpu=sandbox.Gpu(3, "GPU-0123"),
    )
    argv = sandbox.bwrap_argv(plan, ["true"])
    nodes = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--dev-bind"]
    assert [n for n in nodes if re.fullmatch(r"/dev/nvidia\d+", n)] == ["/dev/nvidia3"]
    assert plan.env["CUDA_VISIBLE_DEVICES"] == "GPU-0123"


def test_scoring_refuses_without_every_cap_unless_told(split, refs, tmp_path, capsys, monkeypatch):
    """Here: no freezer (Docker mounts cgroups read-only; a user without delegation has none)."""
    found = cgroups.hierarchies()
    monkeypatch.setattr(cgroups, "hierarchies", lambda: {k: v for k, v in found.items() if k != "freezer"})
    submission = kit.write_py(tmp_path, "def unlearning(net, r, f, v):\n    return net\n")
    args = ["score", str(submission), "--team", "t", "--split-dir", str(split), "--n-models", "2"]
    args += ["--refs", str(refs), "--quiet", "--time-limit", "30"]
    with kit.one_thread():
        code = scoring_main([*args, "--out", str(tmp_path / "refused")])
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and "freezer" in stderr and "--allow-missing-caps" in stderr
    if sandbox.sandbox_problem() is not None:
        return
    with kit.one_thread():
        code = scoring_main([*args, "--out", str(tmp_path / "allowed"), "--allow-missing-caps"])
    record = json.loads((tmp_path / "allowed" / "score.json").read_text())
    assert code == 0 and record["status"] == "scored" and record["sealed"] is False
    assert "freezer" in record["caps_missing"]
