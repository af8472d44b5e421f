"""Ray backend on a real multi-node cluster; run only by tests/test_backends.py, inside ``unshare --net``.

Not collected by a plain ``pytest`` run (the name does not start with ``test_``), and
refuses to start anything unless this process is in a network namespace whose only
interface is loopback: every Ray process then binds and talks to 127.0.0.1 alone.

One cluster for the module (``ray.cluster_utils.Cluster``): a head node without CPUs
(it schedules, tasks never run there) and two worker nodes with one CPU each, small
object stores, no dashboard. The reference sets are built on the tiny digits split
of ``submissions/_fixtures.py`` (2 epochs), on one torch thread, and compared by sha256
with the same set built by the local backend; a submission's runs are compared, bit for
bit, with the same runs in this process. Two tests kill a worker node mid-task (Ray
retries its work elsewhere); one adds a node that declares a GPU it does not have (Ray
only reserves it and sets CUDA_VISIBLE_DEVICES), to test fractional GPUs without CUDA.
Tests wait for what they need to see (a file, a process's end), never for a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

# This process's network namespace (not /sys/class/net, which shows the namespace sysfs was mounted in).
if [name for _, name in socket.if_nameindex()] != ["lo"] or not os.environ.get("KIT_RAY_NAMESPACE_TESTS"):
    pytest.skip(
        "runs only inside a private network namespace (tests/test_backends.py starts it under 'unshare --net')",
        allow_module_level=True,
    )

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from submissions import _fixtures as kit  # noqa: E402

from scoring import score
from scoring.backends import make_backend  # noqa: E402
from scoring.backends.interface import LocalBackend  # noqa: E402
from scoring.backends.ray_cluster import LOOPBACK_HEX, RayBackend, listening_addresses  # noqa: E402
from scoring.cli import main  # noqa: E402
from scoring.ingestion.chunks import run_in_chunks  # noqa: E402
from scoring.ingestion.limits import Limits  # noqa: E402
from scoring.ingestion.run_seeds import derived_seed  # noqa: E402
from scoring.ingestion.runner import job_from_split  # noqa: E402
from scoring.metric import forgetting as metric  # noqa: E402
from scoring.references.build import build_references, load_references  # noqa: E402
from scoring.references.folder import model_file  # noqa: E402
from starter_kit.splits import load_split  # noqa: E402
from starter_kit.submission import submission_source  # noqa: E402

LOOPBACK = "127.0.0.1"
NODE = {"num_cpus": 1, "object_store_memory": 100 * 2**20, "node_ip_address": LOOPBACK}


@pytest.fixture(scope="module")
def cluster():
    temp = tempfile.mkdtemp(prefix="c-", dir=os.environ.get("RAY_TMPDIR", "/tmp"))  # short: socket paths <= 107 bytes
    head = {**NODE, "num_cpus": 0, "include_dashboard": False, "temp_dir": temp}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    workers = [cluster.add_node(**NODE) for _ in range(2)]
    ray.init(address=cluster.address, _node_ip_address=LOOPBACK, log_to_driver=False, logging_level="WARNING")
    assert len([n for n in ray.nodes() if n["Alive"]]) == 3
    assert listening_addresses() <= LOOPBACK_HEX, listening_addresses()  # every Ray port on loopback
    cluster.workers = workers
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return load_split(kit.split_dir(tmp_path_factory))


@pytest.fixture(scope="module")
def local(split, tmp_path_factory):
    """Six reference models built by the local backend, in this process, on one thread."""
    refs = tmp_path_factory.mktemp("local") / "refs"
    with kit.one_thread():
        build_references(split, 6, refs, progress=False)
    return refs


def test_references_on_ray_are_the_local_ones_bit_for_bit(split, cluster, local, tmp_path, capsys):
    refs = tmp_path / "ray"
    with kit.one_thread(), RayBackend(cpus=1) as backend:
        assert "3 node(s), 2 CPU(s)" in backend.describe() and backend.slots() == 2
        built = build_references(split, 4, refs, progress=False, backend=backend)
    assert built.sha256 == load_references(split, 4, local).sha256
    assert np.array_equal(built.forget_conf, load_references(split, 4, local).forget_conf)
    index = json.loads((refs / "index.json").read_text())
    assert [m["file_sha256"] for m in index["models"]] == [
        hashlib.sha256((refs / model_file(split, k)).read_bytes()).hexdigest() for k in range(4)
    ]
    assert ray.is_initialized()  # a connection the backend found is left open

    # The command line, pointed at the cluster's head: extends the set to 6 in one task of two
    # models (one CPU per task: --threads), the same as local.
    argv = [
        "references",
        "--split-dir",
        str(split.directory),
        "--n-models",
        "6",
        "--refs",
        str(refs),
        "--quiet",
        "--models-together",
        "2",
    ]
    with kit.one_thread():
        assert main([*argv, "--backend", "ray", "--ray-address", cluster.address, "--threads", "1"]) == 0
    assert load_references(split, 6, refs).sha256 == load_references(split, 6, local).sha256
    assert "6 reference models in" in capsys.readouterr().out


def test_a_node_lost_mid_build_loses_only_unfinished_models(split, cluster, local, tmp_path):
    refs = tmp_path / "refs"
    doomed = cluster.workers.pop()
    seen: dict[str, tuple] = {}
    errors = []

    def build():
        try:
            with kit.one_thread(), RayBackend(cpus=1) as backend:
                build_references(split, 6, refs, progress=False, backend=backend)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    builder = threading.Thread(target=build)
    builder.start()
    deadline = time.monotonic() + 120
    while not list(refs.glob("model-*.npz")) and time.monotonic() < deadline and builder.is_alive():
        time.sleep(0.01)
    cluster.remove_node(doomed, allow_graceful=False)  # kills its raylet, object store and workers
    for path in refs.glob("model-*.npz"):
        stat = path.stat()
        seen[path.name] = (stat.st_ino, stat.st_mtime_ns, path.read_bytes())
    print(f"node removed with {len(seen)} of 6 models written")
    builder.join(timeout=240)
    assert not builder.is_alive() and not errors, errors
    assert 1 <= len(seen) < 6  # killed with models finished and others not
    final = load_references(split, 6, refs)
    assert final.sha256 == load_references(split, 6, local).sha256
    for name, (inode, mtime, blob) in seen.items():  # finished files were kept, never rewritten
        stat = (refs / name).stat()
        assert (stat.st_ino, stat.st_mtime_ns) == (inode, mtime) and (refs / name).read_bytes() == blob
    cluster.workers.append(cluster.add_node(**NODE))  # two worker nodes again for the tests below


def test_a_damaged_or_missing_file_is_named_and_trained_again_on_ray(split, cluster, local, tmp_path, capsys):
    refs = tmp_path / "refs"
    shutil.copytree(local, refs)
    damaged, missing = refs / model_file(split, 1), refs / model_file(split, 4)
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated
    missing.unlink()
    kept = {k: (refs / model_file(split, k)).stat().st_mtime_ns for k in (0, 2, 3, 5)}
    with pytest.raises(ValueError, match=rf"{damaged} is damaged .*python -m scoring references"):
        load_references(split, 6, refs)
    with kit.one_thread(), RayBackend(cpus=1) as backend:
        repaired = build_references(split, 6, refs, progress=False, backend=backend)
    err = capsys.readouterr().err
    assert f"{damaged} is damaged" in err and f"{missing} is missing" in err
    assert repaired.retrained == (damaged.name, missing.name)
    assert repaired.sha256 == load_references(split, 6, local).sha256
    assert {k: (refs / model_file(split, k)).stat().st_mtime_ns for k in kept} == kept


def test_a_submission_run_in_chunks_on_ray_scores_the_local_score_bit_for_bit(split, cluster, local, tmp_path):
    refs = local
    submission = kit.HERE / "fine_tune.py"
    local = kit.score(split.directory, refs, submission, tmp_path / "local", n_models=4)  # sealed, one worker
    assert local["status"] == "scored"

    job = job_from_split(split, submission_source(submission), submission.name, threads=1)
    seeds = [score.run_seed(split.manifest_sha256, k) for k in range(4)]
    arrived = []
    with kit.one_thread(), RayBackend(cpus=1) as backend:
        ingestion, outputs = run_in_chunks(
            job,
            seeds,
            Limits(run_seconds=30.0),
            split,
            backend,
            chunk_runs=2,
            progress=False,
            on_outputs=lambda k, o: arrived.append(k),
        )
    assert ingestion.status == "completed", ingestion.reason
    assert [r.index for r in ingestion.runs] == [0, 1, 2, 3] and [r.seed for r in ingestion.runs] == seeds
    assert sorted(arrived) == [0, 1, 2, 3] and ingestion.sealed
    unlearned = np.stack([o.forget_conf for o in outputs])
    (saved,) = (tmp_path / "local").rglob("unlearned_conf.npy")
    assert np.array_equal(unlearned, np.load(saved))  # every run's confidences, bit for bit
    # ... hence the official score (scoring.metric.forgetting, as the scorer computes it) is the local one.
    retrained = load_references(split, 4, refs)
    quality = metric.forgetting_quality(unlearned, retrained.forget_conf)
    ra_u, ta_u = [o.retain_accuracy for o in outputs], [o.test_accuracy for o in outputs]
    official = metric.official_score(quality, ra_u, ta_u, retrained.retain_accuracy, retrained.test_accuracy)
    assert (official, quality, float(np.mean(ra_u)), float(np.mean(ta_u))) == (
        local["score"],
        local["F"],
        local["RA_U"],
        local["TA_U"],
    )

    # The command line: `score --backend ray` writes the local score.json's numbers, bit for bit.
    out = tmp_path / "cli"
    argv = [
        "score",
        str(submission),
        "--team",
        "t",
        "--split-dir",
        str(split.directory),
        "--n-models",
        "4",
        "--refs",
        str(refs),
        "--out",
        str(out),
        "--time-limit",
        "30",
        "--threads",
        "1",
        "--quiet",
    ]
    with kit.one_thread():
        assert main([*argv, "--backend", "ray", "--ray-address", cluster.address]) == 0
    distributed = json.loads((out / "score.json").read_text())
    for key in ("status", "score", "F", "RA_U", "TA_U", "RA_R", "TA_R", "intervals", "diagnostics", "auxiliary"):
        assert distributed[key] == local[key], key
    assert np.array_equal(np.load(out / "unlearned_conf.npy"), np.load(saved))


# A fine-tune whose runs with the seeds in WAIT stop at their start until the file GATE exists, after noting
# (in a file named after the seed and their worker's pid) the pid of the Ray worker running their chunk.
GATED = """
import os, time
from pathlib import Path

_fine_tune = unlearning


def unlearning(net, retain_loader, forget_loader, val_loader):
    seed = torch.initial_seed()
    if seed in WAIT:  # this run's process is the worker's child, the worker the Ray worker's
        worker = os.getppid()
        ray_worker = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1]
        Path(FOLDER, f"waiting-{seed}-{worker}").write_text(ray_worker)
        while not Path(FOLDER, "gate").exists():
            time.sleep(0.02)
    return _fine_tune(net, retain_loader, forget_loader, val_loader)
"""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _until(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what} after {seconds:g} s"
        time.sleep(0.02)


def test_a_chunk_lost_with_its_node_after_streaming_runs_counts_each_run_once(split, cluster, tmp_path):
    seeds = [score.run_seed(split.manifest_sha256, k) for k in range(6)]
    source = (kit.HERE / "fine_tune.py").read_text() + GATED.replace(
        "WAIT", repr({derived_seed(seeds[1]), derived_seed(seeds[4])})
    ).replace("FOLDER", repr(str(tmp_path)))
    job = job_from_split(split, source, "gated_fine_tune.py", threads=1)
    limits = Limits(run_seconds=60.0)
    (tmp_path / "gate").touch()
    with kit.one_thread(), LocalBackend(1) as backend:  # undisturbed, in this process
        _, undisturbed = run_in_chunks(job, seeds, limits, split, backend, chunk_runs=3, progress=False, sealed=False)
    for path in tmp_path.iterdir():
        path.unlink()

    arrived, done = [], {}

    def score_on_ray():
        try:
            with kit.one_thread(), RayBackend(cpus=1) as backend:
                done["result"] = run_in_chunks(
                    job,
                    seeds,
                    limits,
                    split,
                    backend,
                    chunk_runs=3,
                    progress=False,
                    sealed=False,
                    on_outputs=lambda k, o: arrived.append(k),
                )
        except BaseException as error:  # noqa: BLE001 - reported below
            done["error"] = error

    scorer = threading.Thread(target=score_on_ray)
    scorer.start()
    # Both chunks (runs 0-2 and 3-5, one per node) have sent their first run and wait in their second.
    _until(lambda: len(list(tmp_path.glob("waiting-*"))) == 2 and {0, 3} <= set(arrived), "runs 0 and 3")
    (waiting,) = tmp_path.glob(f"waiting-{derived_seed(seeds[1])}-*")
    ray_worker = int(waiting.read_text())
    (doomed,) = [node for node in cluster.workers if _parent(ray_worker) == node.all_processes["raylet"][0].process.pid]
    cluster.workers.remove(doomed)
    cluster.remove_node(doomed, allow_graceful=False)  # the chunk of runs 0-2 is lost after sending run 0
    _until(lambda: _gone(ray_worker), "the lost node's Ray worker to end")
    orphan = int(waiting.name.rsplit("-", 1)[1])  # its submission worker, orphaned, its run at the gate
    for pid in [*_children(orphan), orphan]:
        os.kill(pid, signal.SIGKILL)
    (tmp_path / "gate").touch()
    scorer.join(timeout=300)
    assert not scorer.is_alive() and "error" not in done, done.get("error")

    ingestion, outputs = done["result"]
    assert (
        len(list(tmp_path.glob(f"waiting-{derived_seed(seeds[1])}-*"))) == 2
    )  # runs 0-2 were run again (on the other node)
    assert ingestion.status == "completed", ingestion.reason
    assert [r.index for r in ingestion.runs] == list(range(6)) and [r.seed for r in ingestion.runs] == seeds
    assert sorted(arrived) == list(range(6))  # run 0 was received once, though its chunk ran twice
    for mine, theirs in zip(outputs, undisturbed, strict=True):  # the result of an undisturbed run, bit for bit
        assert np.array_equal(mine.forget_conf, theirs.forget_conf) and mine.accuracies() == theirs.accuracies()
    cluster.workers.append(cluster.add_node(**NODE))  # two worker nodes again


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if _parent(int(p.name)) == pid]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_a_quarter_gpu_per_task_runs_four_tasks_on_one_gpu_and_the_fifth_waits(cluster, tmp_path):
    # Ray lets a node declare a GPU it does not have: it only reserves it and sets CUDA_VISIBLE_DEVICES.
    gpu_node = cluster.add_node(**{**NODE, "num_cpus": 4, "num_gpus": 1})
    folder = str(tmp_path)

    def hold(k: int):
        """Note the GPU Ray gave this task and which tasks had ended when it started; end when told."""
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ended = sorted(int(p.name.split("-")[1]) for p in Path(folder).glob("ended-*"))
        Path(folder, f"started-{k}").write_text(json.dumps({"visible": visible, "ended": ended}))
        while not Path(folder, f"go-{k}").exists():
            time.sleep(0.02)
        Path(folder, f"ended-{k}").touch()
        return visible, ray.get_gpu_ids()

    try:
        # --device cuda --gpus-per-model 0.25, half a CPU each: the GPU, not the node's 4 CPUs, limits them to 4.
        with make_backend("ray", device="cuda", gpus=0.25, cpus=0.5) as backend:
            assert (backend.gpus, backend.task_device("cuda:1")) == (0.25, "cuda")
            tasks = [backend.submit(hold, k) for k in range(5)]
            _until(lambda: len(list(tmp_path.glob("started-*"))) == 4, "four tasks to start")
            started = {int(p.name.split("-")[1]) for p in tmp_path.glob("started-*")}
            (fifth,) = set(range(5)) - started
            first = min(started)
            (tmp_path / f"go-{first}").touch()  # one task ends: its quarter of the GPU goes to the fifth
            _until(lambda: (tmp_path / f"started-{fifth}").exists(), "the fifth task to start")
            for k in started:
                (tmp_path / f"go-{k}").touch()
            (tmp_path / f"go-{fifth}").touch()
            results = [task.result() for task in tasks]
        notes = {k: json.loads((tmp_path / f"started-{k}").read_text()) for k in range(5)}
        assert all(notes[k]["ended"] == [] for k in started)  # four ran at once, on one GPU
        assert notes[fifth]["ended"] == [first]  # the fifth waited for a quarter to be free
        assert results == [("0", [0])] * 5 and all(note["visible"] == "0" for note in notes.values())
    finally:
        cluster.remove_node(gpu_node)
