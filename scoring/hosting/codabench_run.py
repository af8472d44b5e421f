"""``python -m scoring codabench run BUNDLE SUBMISSION --phase NAME``: Codabench's compute worker, offline.

Follows the worker (codalab/codabench, compute_worker/compute_worker.py) step by step,
after the bundle has passed Codabench's own checks (``codabench_rules``): unpack the bundle
and the submission; for the prediction step lay out ``program/`` (the submission),
``ingestion_program/``, ``input_data/``, an empty ``input/`` and ``output/``; run the
ingestion and, when the submission holds a ``metadata`` file with a command, the
submission's own program at the same time (``Run.start`` gathers both;
``_run_program_directory``), each with the worker's binds: ``/app/program`` (the ingestion
program, or the submission for its own program), ``/app/output`` (the same for both),
``/app/data`` (read-only), ``/app/input_data``, ``/app/input`` (empty) and, for the
ingestion, ``/app/ingested_program``; without a ``metadata`` file the worker copies the
submission into the output instead. Commands get the worker's ``$input``, ``$output``,
``$program``, ``$submission_program`` ... substitution, working directory ``/app/program``,
environment ``PYTHONUNBUFFERED=1``. Each program is timed from its start to its end
(the worker times each container) and the step's ``metadata`` written as the worker's
``push_output`` writes it (``exitCode`` and ``elapsedTime`` the submission program's, or
null and the ingestion's time; ``ingestionExitCode``, ``ingestionElapsedTime``), refusing
an output that already holds one; the output is zipped as the worker does before
uploading it (``shutil.make_archive``, kept as ``prediction_result.zip``: its size is what
each submission costs the server's storage and network); then the scoring step, with
``/app/input/res`` (that zip, extracted) and ``/app/input/ref`` (reference_data, laid out
only now) and ``/app/shared``. Every program still running past the phase's
``execution_time_limit`` is killed, which the worker reports as a failure.

Each step runs in bubblewrap where it can start (``scoring.ingestion.sandbox``: no network, the
Python runtime read-only, nothing of this machine but the bound folders), standing in
for the worker's container; elsewhere as plain processes with the host folders
substituted for ``/app/...`` (recorded as ``sandboxed: false``). ``--pin-seeds`` gives the
ingestion program the seeds ``scoring score`` uses for the split (``$KIT_PINNED_SEEDS``),
so both paths can be compared bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import yaml

from scoring.hosting import codabench_rules
from scoring.hosting.codabench_ingestion import PINNED_SEEDS_ENV
from scoring.hosting.codabench_scoring import SCORES_FILE, WORKER_METADATA
from scoring.ingestion import sandbox
from scoring.score import run_seed
from starter_kit.atomic import write_bytes, write_json

TMP_BYTES = 2 << 30  # the private /tmp of a step


def substitute(command: str, kind: str, is_scoring: bool, paths: dict[str, str]) -> str:
    """The worker's substitution of a metadata command (ingestion_only_during_scoring off), onto ``paths``."""
    table = (
        ("$input", paths["/app/input_data"] if kind == "ingestion" else paths["/app/input"]),
        ("$output", paths["/app/output"]),
        ("$program", paths["/app/program"]),
        ("$ingestion_program", paths["/app/program"]),
        ("$hidden", paths["/app/input/ref"]),
        ("$shared", paths["/app/shared"]),
        ("$submission_program", paths["/app/ingested_program"]),
        ("$tmp", paths["/app/output"]),
        ("$predictions", paths["/app/input/res"] if is_scoring else paths["/app/output"]),
    )
    for name, value in table:
        command = command.replace(name, value)
    return command


def _unzip(archive: Path, target: Path) -> Path:
    if Path(archive).is_dir():
        shutil.copytree(archive, target)
        return target
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(target)
    except zipfile.BadZipFile:
        raise ValueError(f"{archive} is not a zip file") from None
    return target


def find_phase(competition: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(phase, its task) by phase name, case-insensitive; ValueError naming the phases there are."""
    for phase in competition.get("phases", []):
        if str(phase.get("name", "")).lower() == name.lower():
            task = next(t for t in competition["tasks"] if t["index"] == phase["tasks"][0])
            return phase, task
    names = ", ".join(str(p.get("name")).lower() for p in competition.get("phases", []))
    raise ValueError(f"no phase {name!r} in the bundle: choose one of {names}")


def run_bundle(
    bundle: Path,
    submission: Path,
    phase_name: str,
    out: Path,
    pin_seeds: bool = False,
    sandboxed: bool | None = None,
    max_execution_time_limit: int = codabench_rules.MAX_EXECUTION_TIME_LIMIT,
) -> dict[str, Any]:
    """Run SUBMISSION through BUNDLE's phase as the worker would; write OUT (the steps' folders); return scores.json.

    The bundle must first pass Codabench's own checks (``codabench_rules``), as at upload."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty: choose another --out")
    if not Path(submission).exists():
        raise FileNotFoundError(
            f"submission {submission} not found: make one with 'python -m starter_kit.notebook pack'"
        )
    sandboxed = sandbox.sandbox_problem() is None if sandboxed is None else sandboxed
    root = _unzip(Path(bundle), out / "bundle")
    if not (root / "competition.yaml").is_file():
        raise ValueError(
            f"{bundle} has no competition.yaml at its root: export one with 'python -m scoring codabench export'"
        )
    competition = yaml.safe_load((root / "competition.yaml").read_text())
    codabench_rules.check_competition(competition, root, max_execution_time_limit)
    phase, task = find_phase(competition, phase_name)
    limit = int(phase.get("execution_time_limit") or codabench_rules.MAX_EXECUTION_TIME_LIMIT)
    env = {}
    if pin_seeds:
        settings = json.loads((root / task["reference_data"] / "phase.json").read_text())
        manifest = settings["split"]["manifest_sha256"]
        env[PINNED_SEEDS_ENV] = ",".join(str(run_seed(manifest, k)) for k in range(settings["n_runs"]))

    prediction = out / "prediction"
    _unzip(Path(submission), prediction / "program")
    shutil.copytree(root / task["ingestion_program"], prediction / "ingestion_program")
    shutil.copytree(root / task["input_data"], prediction / "input_data")
    command = program_command(prediction / "program")
    if command is False:
        shutil.copytree(
            prediction / "program", prediction / "output"
        )  # what the worker does with a metadata-less program
    (prediction / "output").mkdir(exist_ok=True)
    (prediction / "input").mkdir()  # empty, as the worker mounts it in the prediction step
    shared = {
        "/app/output": prediction / "output",
        "/app/input_data": prediction / "input_data",
        "/app/input": prediction / "input",
    }
    steps = {
        "ingestion": (
            prediction / "ingestion_program",
            {
                **shared,
                "/app/program": prediction / "ingestion_program",
                "/app/ingested_program": prediction / "program",
            },
        )
    }
    if isinstance(command, str):  # the submission's own program, beside the ingestion (compute_worker.py, start)
        steps["program"] = (prediction / "program", {**shared, "/app/program": prediction / "program"})
    ended = _steps(prediction, steps, False, limit, env, sandboxed)
    if any(code is None for code, _ in ended.values()):
        return _finish(
            out, {"status": "failed", "reason": f"Execution Time Limit exceeded. Limit was {limit} seconds"}, sandboxed
        )
    if (prediction / "output" / WORKER_METADATA).exists():
        return _finish(
            out,
            {
                "status": "failed",
                "reason": "the output directory already contains a metadata file "
                "(the worker writes it; a submission must not)",
            },
            sandboxed,
        )
    code, seconds = ended["ingestion"]
    program_code, program_seconds = ended.get("program", (None, None))
    metadata = {  # compute_worker.py, Run.push_output
        "exitCode": program_code,
        "elapsedTime": program_seconds or seconds,
        "ingestionExitCode": code,
        "ingestionElapsedTime": seconds,
    }
    write_bytes(prediction / "output" / WORKER_METADATA, yaml.dump(metadata, default_flow_style=False).encode())

    scoring = out / "scoring"
    shutil.copytree(root / task["scoring_program"], scoring / "program")
    archive = Path(
        shutil.make_archive(str(out / "prediction_result"), "zip", prediction / "output")
    )  # the worker's _put_dir
    with zipfile.ZipFile(archive) as result:
        result.extractall(scoring / "input" / "res")
    shutil.copytree(root / task["reference_data"], scoring / "input" / "ref")
    (scoring / "output").mkdir()
    (scoring / "shared").mkdir()
    binds = {
        "/app/program": scoring / "program",
        "/app/output": scoring / "output",
        "/app/shared": scoring / "shared",
        "/app/input": scoring / "input",
    }
    code, _ = _steps(scoring, {"program": (scoring / "program", binds)}, True, limit, {}, sandboxed)["program"]
    if code is None:
        return _finish(
            out, {"status": "failed", "reason": f"Execution Time Limit exceeded. Limit was {limit} seconds"}, sandboxed
        )
    try:
        scores = json.loads((scoring / "output" / SCORES_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        scores = {
            "status": "failed",
            "reason": f"the scoring program (exit code {code}) wrote no readable {SCORES_FILE}",
        }
    return _finish(out, {**scores, "prediction_result_bytes": archive.stat().st_size}, sandboxed, competition)


def _finish(
    out: Path, scores: dict[str, Any], sandboxed: bool, competition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check scores.json's keys against the leaderboard columns; keep it as OUT/scores.json."""
    if competition is not None:
        keys = [c["key"] for board in competition["leaderboards"] for c in board["columns"]]
        missing = [key for key in keys if key not in scores]
        if missing:
            scores = {
                **scores,
                "status": "failed",
                "reason": f"scores.json lacks the leaderboard columns {', '.join(missing)}",
            }
    scores = {**scores, "sandboxed": sandboxed}
    write_json(out / SCORES_FILE, scores)
    return scores


def program_command(folder: Path) -> str | bool | None:
    """The submission's own command as the worker reads it (compute_worker.py, _run_program_directory):
    False without a metadata file (the worker copies the submission into the output), None with one
    but no command (nothing runs), else the command."""
    for name in ("metadata.yaml", "metadata"):
        if (folder / name).is_file():
            try:
                found = yaml.safe_load((folder / name).read_text())
            except (yaml.YAMLError, UnicodeDecodeError):
                return None
            command = found.get("command") if isinstance(found, dict) else None
            return str(command) if command else None
    return False


def _steps(
    folder: Path,
    programs: dict[str, tuple[Path, dict[str, Path]]],
    is_scoring: bool,
    limit: int,
    env: dict[str, str],
    sandboxed: bool,
) -> dict[str, tuple[int | None, float]]:
    """Run a step's programs at once, as the worker gathers them; per kind (exit code, or None past the
    limit; its elapsed seconds). Logs go to FOLDER/KIND.log."""
    data = folder / "data"
    data.mkdir(exist_ok=True)
    for path in folder.rglob("*"):
        path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    for _, binds in programs.values():
        for target in ("/app/output", "/app/shared", "/app/ingested_program"):
            if target in binds:  # the sandbox's user (nobody) writes there, as the container's root user does
                binds[target].chmod(0o777)
    if "program" in programs and not is_scoring:
        programs["program"][0].chmod(0o777)
    running = {}
    for kind, (program, binds) in programs.items():
        argv, cwd, environment = _command(
            folder, program, {"/app/data": data, **binds}, kind, is_scoring, env, sandboxed
        )
        log = open(folder / f"{kind}.log", "wb")  # noqa: SIM115 - closed when the program ends
        process = subprocess.Popen(
            argv, cwd=cwd, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        running[kind] = (process, time.monotonic(), log)
    ended: dict[str, tuple[int | None, float]] = {}
    deadline = min(start for _, start, _ in running.values()) + limit
    while len(ended) < len(running):
        for kind, (process, start, log) in running.items():
            if kind not in ended and process.poll() is not None:
                ended[kind] = (process.returncode, time.monotonic() - start)
                log.close()
        if time.monotonic() > deadline:  # the worker's alarm: every program still running is stopped
            for kind, (process, start, log) in running.items():
                if kind not in ended:
                    os.killpg(process.pid, 9)
                    process.wait()
                    ended[kind] = (None, time.monotonic() - start)
                    log.close()
        time.sleep(0.02)
    return ended


def _command(
    folder: Path,
    program: Path,
    binds: dict[str, Path],
    kind: str,
    is_scoring: bool,
    env: dict[str, str],
    sandboxed: bool,
) -> tuple[list[str], str | None, dict[str, str] | None]:
    """(argv, working directory, environment) of one program of a step."""
    command = program_command(program)
    if not isinstance(command, str):
        raise ValueError(f"{program.name} has no metadata.yaml with a command")
    names = (
        "/app/input_data",
        "/app/input",
        "/app/output",
        "/app/program",
        "/app/input/ref",
        "/app/shared",
        "/app/ingested_program",
        "/app/input/res",
    )
    if sandboxed:
        paths = {name: name for name in names}
        return _bwrap(binds, substitute(command, kind, is_scoring, paths), env), None, None
    host = {name: str(binds.get(name, folder / name.lstrip("/"))) for name in names}
    host["/app/input/ref"], host["/app/input/res"] = str(folder / "input" / "ref"), str(folder / "input" / "res")
    line = substitute(command, kind, is_scoring, host).replace("python3 ", f"{sys.executable} ", 1)
    return line.split(), str(program), {**os.environ, "PYTHONUNBUFFERED": "1", **env}


def _bwrap(binds: dict[str, Path], command: str, env: dict[str, str]) -> list[str]:
    """bwrap argv from ``scoring.ingestion.sandbox`` (runtime read-only, no network) plus the worker's /app binds."""
    environment = {**sandbox.sandbox_environment(threads=1), "PYTHONUNBUFFERED": "1", **env}
    environment["PATH"] = f"{Path(sys.executable).parent}:{environment['PATH']}"  # python3: this runtime's
    mounts = tuple((str(source), target, target != "/app/data") for target, source in sorted(binds.items()))
    plan = sandbox.SandboxPlan(
        read_only=sandbox.runtime_paths(), env=environment, tmp_bytes=TMP_BYTES, binds=mounts, workdir="/app/program"
    )
    return sandbox.bwrap_argv(plan, command.split(), sandbox.find_bwrap())
