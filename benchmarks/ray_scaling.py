"""How reference training and a submission's N runs scale with the number of Ray nodes, on this machine, loopback only.

    .venv/bin/python benchmarks/ray_scaling.py [--references 8] [--runs 16] [--run-epochs 1] [--repeats 3]

Ray runs whatever it is sent and listens on the addresses it is given, so this script
never lets it near a real network interface: started normally, it re-executes itself
under ``unshare --net`` (a private network namespace whose only interface is loopback,
as tests/test_backends.py does for Ray's tests; needs root) and the ``--inner`` mode
refuses to run unless ``lo`` is this process's only interface. Every Ray process then
binds and talks to 127.0.0.1 alone (listening sockets checked once each cluster is up),
and ``LOOPBACK_ONLY_ENV`` below stops the few outward attempts Ray makes on its own (an
address probe, cloud-metadata and usage-stats requests) before they are made.

Inside, on the tiny digits split (2-epoch recipe, built in a temporary folder), on one
torch thread, each row times, as the median over ``--repeats``:

- references: ``scoring.references.build.build_references`` of R models into a fresh folder;
- submission runs: ``scoring.ingestion.chunks.run_in_chunks`` of the fine-tune submission of
  tests/submissions/fine_tune.py, N runs, sealed, with the default chunk size (one chunk
  per task slot, at least 8 runs per chunk), evaluation included. Each chunk starts its
  own sandboxed worker (about 2 s), and one epoch of fine-tuning is about 0.1 s of CPU,
  so tiny runs show that start more than scaling: ``--run-epochs 6`` makes each run
  about 0.6 s of the same deterministic work, and ``--runs 32`` enough of them.

Rows: the local backend (``LocalBackend(1)``: this process, no Ray running), then Ray
clusters (``ray.cluster_utils.Cluster``: a head without CPUs, K worker nodes of 1 CPU
each, small object stores, no dashboard) for K = 1 and 2 (``--nodes``). Before timing,
each row trains max(2, K) reference models untimed (Ray's worker processes start and
import torch once per cluster, as on a long-lived cluster). Reference sets and run outputs must be the
same bit for bit on every row; the script fails otherwise. Speed-ups are relative to
Ray with K = 1, all measured in this one run. On a 2-core machine K = 2 is the most
that can show scaling (each node's task needs a core of its own).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scoring.backends.ray_cluster import LOOPBACK_ONLY_ENV  # noqa: E402  (imports no Ray)

SUBMISSION = ROOT / "tests" / "submissions" / "fine_tune.py"
LOOPBACK = "127.0.0.1"
T = TypeVar("T")
NODE: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 100 * 2**20, "node_ip_address": LOOPBACK}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", type=int, default=8, help="R, reference models per timing (default 8)")
    parser.add_argument("--runs", type=int, default=16, help="N, submission runs per timing (default 16)")
    parser.add_argument(
        "--run-epochs", type=int, default=1, help="epochs of fine-tuning per submission run (default 1)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timings per row; the median is shown (default 3)")
    parser.add_argument("--nodes", default="1,2", help="Ray worker node counts K, comma-separated (default 1,2)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)  # set by the re-execution only
    args = parser.parse_args(argv)
    args.nodes = [int(k) for k in args.nodes.split(",") if k.strip()]
    if (
        args.references < 2
        or min(args.runs, args.run_epochs, args.repeats) < 1
        or not args.nodes
        or min(args.nodes) < 1
    ):
        parser.error(
            "--references must be at least 2, --runs, --run-epochs, --repeats and every --nodes count at least 1"
        )
    if 1 not in args.nodes:
        parser.error("--nodes must include 1: speed-ups are relative to Ray with one worker node")
    return args


# --- outside: re-execute in a private network namespace --------------------------------------------


def namespace_problem() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) is not installed"
    probe = subprocess.run(
        ["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        why = " ".join(probe.stderr.split())[:200] or f"exit {probe.returncode}"
        return f"'unshare --net' is not permitted here (it needs root): {why}"
    return None


def outer(argv: list[str]) -> int:
    try:
        import ray  # noqa: F401
    except ImportError:
        print("error: Ray is not installed: pip install -e '.[ray]'", file=sys.stderr)
        return 2
    problem = namespace_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    # Ray's sessions and logs in a folder of our own, removed afterwards (short: socket paths <= 107 bytes).
    private = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.mkdir(os.path.join(private, "ray"))  # $RAY_TMPDIR/ray: where Ray notes the cluster it started
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_TMPDIR": private, **LOOPBACK_ONLY_ENV}
    inner = " ".join(shlex.quote(a) for a in [sys.executable, str(Path(__file__).resolve()), "--inner", *argv])
    try:
        command = ["unshare", "--net", "sh", "-c", f"ip link set lo up && exec {inner}"]
        return subprocess.run(command, cwd=ROOT, env=env).returncode
    finally:
        shutil.rmtree(private, ignore_errors=True)


# --- inside: loopback only -------------------------------------------------------------------------


def median_of(repeats: int, measure: Callable[[], T]) -> tuple[float, T]:
    """(median seconds over ``repeats`` (>= 1) calls of ``measure()``, the last call's result)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = measure()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def time_row(split, job, seeds, backend, args, scratch: Path, warm_models: int) -> dict:
    from scoring.ingestion.chunks import run_in_chunks
    from scoring.ingestion.limits import Limits
    from scoring.references.build import build_references

    warm = max(2, warm_models)  # a reference set has at least 2 models
    build_references(split, warm, tempfile.mkdtemp(dir=scratch), progress=False, backend=backend)  # untimed warm-up

    def references():
        return build_references(split, args.references, tempfile.mkdtemp(dir=scratch), progress=False, backend=backend)

    def submission():
        ingestion, outputs = run_in_chunks(job, seeds, Limits(run_seconds=30.0), split, backend, progress=False)
        if ingestion.status != "completed":
            raise SystemExit(
                f"error: the submission was {ingestion.status} on {backend.describe()}: {ingestion.reason}"
            )
        return outputs

    refs_seconds, refs = median_of(args.repeats, references)
    runs_seconds, outputs = median_of(args.repeats, submission)
    digest = hashlib.sha256(b"".join(o.forget_conf.tobytes() for o in outputs)).hexdigest()
    return {"references": refs_seconds, "runs": runs_seconds, "refs_sha256": refs.sha256, "runs_sha256": digest}


def inner(args: argparse.Namespace) -> int:
    interfaces = [name for _, name in socket.if_nameindex()]  # this process's namespace (not /sys/class/net)
    if interfaces != ["lo"]:
        print(
            f"error: --inner runs only in a private network namespace with loopback alone, here: {interfaces}",
            file=sys.stderr,
        )
        return 2
    os.environ.update(LOOPBACK_ONLY_ENV)  # before Ray is imported; its node and worker processes inherit it
    import ray
    import torch
    from ray.cluster_utils import Cluster

    from data_prep.build import BuildOptions, build_split
    from scoring.backends.interface import LocalBackend
    from scoring.backends.ray_cluster import LOOPBACK_HEX, RayBackend, listening_addresses
    from scoring.ingestion.runner import job_from_split
    from scoring.score import run_seed
    from starter_kit.splits import load_split
    from starter_kit.submission import submission_source

    torch.set_num_threads(1)
    ray_tmp = os.environ.get("RAY_TMPDIR", "/tmp")
    scratch = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    rows: dict[str, dict] = {}
    try:
        options = BuildOptions(dataset="digits", split="public", out=scratch / "split", epochs=2, progress=False)
        split = load_split(build_split(options))
        source = submission_source(SUBMISSION)
        if "EPOCHS = 1\n" not in source:
            raise SystemExit(f"error: {SUBMISSION} no longer sets EPOCHS = 1: --run-epochs cannot change it")
        job = job_from_split(
            split, source.replace("EPOCHS = 1\n", f"EPOCHS = {args.run_epochs}\n"), SUBMISSION.name, threads=1
        )
        seeds = [run_seed(split.manifest_sha256, k) for k in range(args.runs)]

        with LocalBackend(1) as backend:
            rows["local (this process)"] = time_row(split, job, seeds, backend, args, scratch, 1)
        for k in args.nodes:
            temp = tempfile.mkdtemp(prefix="c-", dir=ray_tmp)  # short: socket paths <= 107 bytes
            head = {**NODE, "num_cpus": 0, "include_dashboard": False, "temp_dir": temp}
            cluster = Cluster(initialize_head=True, head_node_args=head)
            try:
                for _ in range(k):
                    cluster.add_node(**NODE)
                ray.init(
                    address=cluster.address,
                    _node_ip_address=LOOPBACK,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
                alive = len([n for n in ray.nodes() if n["Alive"]])
                if alive != k + 1:
                    raise SystemExit(f"error: {alive} Ray nodes alive, expected {k + 1}")
                if not listening_addresses() <= LOOPBACK_HEX:
                    raise SystemExit(f"error: a Ray port listens beyond loopback: {sorted(listening_addresses())}")
                with RayBackend(cpus=1) as backend:
                    rows[f"Ray, K={k} worker node{'s' if k > 1 else ''}"] = time_row(
                        split, job, seeds, backend, args, scratch, k
                    )
            finally:
                ray.shutdown()
                cluster.shutdown()
                shutil.rmtree(temp, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    for what in ("refs_sha256", "runs_sha256"):
        if len({row[what] for row in rows.values()}) != 1:
            raise SystemExit(f"error: the rows disagree on {what}: {[row[what][:12] for row in rows.values()]}")
    base = rows["Ray, K=1 worker node"]
    print(
        f"digits (2-epoch recipe), {args.references} reference models and {args.runs} fine-tune runs "
        f"({args.run_epochs} epoch{'s' if args.run_epochs > 1 else ''} each) per timing, "
        f"median of {args.repeats}; {os.cpu_count()} CPU(s), 1 CPU per Ray node, one torch thread:"
    )
    header = f"{'':26} {'references (s)':>15} {'speed-up':>9} {'submission runs (s)':>20} {'speed-up':>9}"
    print(header)
    for name, row in rows.items():
        print(
            f"{name:26} {row['references']:15.2f} {base['references'] / row['references']:8.2f}x "
            f"{row['runs']:20.2f} {base['runs'] / row['runs']:8.2f}x"
        )
    print("reference sets and run outputs: identical on every row (sha256)")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return inner(args) if args.inner else outer(argv)


if __name__ == "__main__":
    sys.exit(main())
