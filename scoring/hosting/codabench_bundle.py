"""``python -m scoring codabench export``: the competition bundle an organiser uploads to Codabench.

Layout (a folder, and the same as a zip beside it; ``competition.yaml`` at the root)::

    competition.yaml                  version 2: title, image, terms, pages, tasks, solutions,
                                      phases, leaderboards (Codabench's v2 unpacker's keys)
    logo.png, terms.md, pages/*.md    from ``scoring.hosting.pages``
    ingestion_program/, scoring_program/
                                      run.py, metadata.yaml (the command) and the kit's packages
    input_data_<phase>/               what a submission may see (``codabench_data``)
    reference_data_<phase>/           what scoring needs, precomputed (``codabench_data``)
    solution/submission.py            the starter notebook's submission cells
    starting_kit/                     the notebook, the kit's packages, pyproject.toml, README.md, docs/ (participants)

One task per phase (development: the public split; final: the private split, whose
input data is not downloadable and whose logs are hidden), each phase starting the day
after the one before ends. Per phase, ``execution_time_limit`` is
2 x (set-up allowance + N x the limit on the mean run time) + N x the references' mean
evaluation time + 60 s: the efficiency rule rejects a slow submission with a reason
long before the worker's limit kills it (which shows only "Execution Time Limit exceeded").
The set-up allowance is measured here (``codabench_costs``), as is what one submission
uploads against the participant's storage quota. Before anything is written, the bundle
passes every check of Codabench's that depends on it alone (``codabench_rules``).
"""

from __future__ import annotations

import math
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

import scoring
import starter_kit
from scoring.hosting import codabench_costs, codabench_data, codabench_programs, codabench_rules, pages
from scoring.hosting.codabench_scoring import COLUMNS
from starter_kit.atomic import write_bytes
from starter_kit.splits import load_split
from starter_kit.submission import submission_source

DEFAULT_IMAGE = f"unlearning-kit/codabench:{starter_kit.__version__}"  # built from scoring/hosting/Dockerfile
DEFAULT_PER_DAY = 5  # v2.py, _unpack_phases: Codabench's defaults when a phase sets none
DEFAULT_MAX_SUBMISSIONS = 100
REPO_ROOT = Path(starter_kit.__file__).resolve().parent.parent
# the participants' pages of the documentation too: the starting kit is their copy of the kit
STARTING_KIT_FILES = (
    "notebooks/starter.ipynb",
    "pyproject.toml",
    "environment.yml",
    "README.md",
    "Makefile",
    "docs/participants/quickstart.md",
    "docs/participants/rules.md",
    "docs/participants/reading-a-score.md",
    "docs/participants/baselines.md",
    "docs/protocol.md",
    "docs/metric.md",
)
KIT_PACKAGES = {
    "starter_kit": Path(starter_kit.__file__).resolve().parent,
    "scoring": Path(scoring.__file__).resolve().parent,
}
STARTING_KIT_PACKAGES = ("data_prep",)  # beside the two above: participants build splits too


@dataclass
class PhaseSpec:
    """One phase: its name, split directory, reference folder (None: the default) and N."""

    name: str
    split_dir: Path
    refs_dir: Path | None
    n_models: int
    days: int
    downloadable: bool = True


@dataclass
class ExportOptions:
    out: Path
    phases: list[PhaseSpec]
    title: str = "Machine Unlearning Challenge"
    docker_image: str = DEFAULT_IMAGE
    queue: str | None = None
    max_per_day: int = DEFAULT_PER_DAY
    max_submissions: int = DEFAULT_MAX_SUBMISSIONS
    setup_seconds: float | None = None  # None: measured (codabench_costs.measure_setup)
    time_limit: float | None = None
    max_execution_time_limit: int = codabench_rules.MAX_EXECUTION_TIME_LIMIT
    storage_quota_gb: float = codabench_costs.DEFAULT_QUOTA_GB
    quota_raised: bool = False
    threads: int = 1
    device: str = "cpu"
    start: date = field(default_factory=date.today)
    notebook: Path = REPO_ROOT / "notebooks" / "starter.ipynb"


def execution_time_limit(settings: dict[str, Any], evaluation_seconds: float) -> int:
    """Seconds the worker allows each step of a phase (see the module docstring)."""
    budget = settings["setup_seconds"] + settings["n_runs"] * settings["limit_seconds"]
    return int(math.ceil(2 * budget + settings["n_runs"] * evaluation_seconds + 60))


def export_bundle(options: ExportOptions, say: Callable[[str], None] = lambda line: None) -> Path:
    """Write OUT/bundle/ and OUT/bundle.zip; return the zip's path. ``say`` gets what the organiser must read.

    Refuses, in one line, an existing OUT/bundle, a queue that is not a UUID, a bundle Codabench
    would refuse, and a submission that would upload more than the storage quota (unless raised).
    """
    folder = Path(options.out) / "bundle"
    if folder.exists():
        raise FileExistsError(f"{folder} exists: remove it or choose another --out")
    if not options.phases:
        raise ValueError("a bundle needs at least one phase")
    if not options.notebook.is_file():
        raise FileNotFoundError(f"starter notebook {options.notebook} not found: pass --notebook")
    if options.queue is not None:
        codabench_rules.check_queue(options.queue)
    staging = folder.with_name(".bundle-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        competition = _stage(options, staging, say)
        codabench_rules.check_competition(competition, staging, options.max_execution_time_limit)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_bytes(staging / "competition.yaml", yaml.safe_dump(competition, sort_keys=False).encode())
    for path in staging.rglob("*"):  # files come 0600 from atomic writes; workers and sandboxes read them as others
        path.chmod(0o755 if path.is_dir() else 0o644)
    staging.rename(folder)
    return _zip(folder)


def _stage(options: ExportOptions, staging: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Write every file of the bundle into STAGING; return competition.yaml's contents."""
    _write_programs(staging)
    tasks, phases, described, start = [], [], [], options.start
    final = len(options.phases) > 1
    for index, spec in enumerate(options.phases):
        split = load_split(spec.split_dir)
        inputs, references = staging / f"input_data_{spec.name}", staging / f"reference_data_{spec.name}"
        settings = codabench_data.write_phase_data(
            split,
            spec.refs_dir,
            spec.n_models,
            inputs,
            references,
            spec.name,
            options.time_limit,
            options.setup_seconds or 0.0,
            options.threads,
            options.device,
        )
        if options.setup_seconds is None:
            setup = codabench_costs.measure_setup(staging / "ingestion_program", inputs, spec.n_models)
        else:
            setup = codabench_costs.given_setup(options.setup_seconds)
        settings = codabench_data.set_setup(inputs, references, setup["seconds"], setup["measured"])
        say(f"{spec.name}: set-up allowance {setup['seconds']:g} s" + _measured(setup["measured"]))
        reference = codabench_data.read_reference(references)
        per_run = codabench_costs.upload_per_run(reference["original"])
        line, over = codabench_costs.storage_line(
            spec.name, spec.n_models, per_run, options.storage_quota_gb, options.max_submissions
        )
        say(line)
        if over and not options.quota_raised:
            raise ValueError(
                f"{line}: lower N, or raise the participants' quota on the server (Django admin, each user's "
                "quota) and pass --quota-raised with the new --storage-quota-gb"
            )
        limit = execution_time_limit(settings, float(reference["refs"].evaluation_seconds.mean()))
        end = start + timedelta(days=spec.days)
        tasks.append(
            {
                "index": index,
                "name": f"{spec.name} ({settings['split']['name']} split)",
                "description": (
                    f"{spec.n_models} runs on the {settings['split']['dataset']} {settings['split']['name']} split"
                ),
                "input_data": inputs.name,
                "reference_data": references.name,
                "ingestion_program": "ingestion_program",
                "scoring_program": "scoring_program",
            }
        )
        phase = {
            "index": index,
            "name": spec.name.capitalize(),
            "description": tasks[-1]["description"],
            "start": start.isoformat(),
            "end": end.isoformat(),
            "tasks": [index],
            "execution_time_limit": limit,
            "max_submissions_per_day": options.max_per_day,
            "max_submissions": options.max_submissions,
            # the prediction step's output is N weight deltas (GBs at N = 512): participants
            # download their scores and detailed results, never the models
            "hide_prediction_output": True,
            # a phase whose data is private hides its logs too: code could print that data into them
            "hide_output": not spec.downloadable,
        }
        if index == 0:
            phase["starting_kit"] = "starting_kit"
            phase["public_data"] = inputs.name
        phases.append(phase)
        described.append(
            {
                **settings,
                "name": phase["name"],
                "start": phase["start"],
                "end": phase["end"],
                "execution_time_limit": limit,
                "max_per_day": options.max_per_day,
            }
        )
        start = end + timedelta(days=1)  # base_unpacker.py, _validate_phase_ordering: strictly after
    _write_pages(staging, options.title, described)
    _write_solution_and_kit(staging, options.notebook)
    competition: dict[str, Any] = {
        "version": 2,
        "title": options.title,
        "description": "Machine unlearning: forget a forget set, quickly.",
        "image": "logo.png",
        "terms": "terms.md",
        "docker_image": options.docker_image,
        "enable_detailed_results": True,
        "registration_auto_approve": False,
        # read for the whole competition only (v2.py): the final phase's input data stays private;
        # the development phase's is its public_data
        "make_input_data_available": False,
        "pages": [
            {"title": name.split(".")[0].capitalize(), "file": f"pages/{name}"}
            for name in ("overview.md", "data.md", "metric.md", "rules.md", "submit.md")
        ],
        "tasks": tasks,
        "solutions": [
            {"index": 0, "name": "starter notebook", "path": "solution", "tasks": [t["index"] for t in tasks]}
        ],
        "phases": phases,
        "leaderboards": [
            {
                "title": "Results",
                "key": "main",
                "primary_index": 0,
                # every phase gets this one leaderboard (base_unpacker.py, _save_competition): with a
                # final phase, each participant's last submission counts; without, their best
                "submission_rule": codabench_rules.FORCE_LAST if final else codabench_rules.FORCE_BEST,
                "columns": [
                    {"title": title, "key": key, "index": i, "sorting": sorting, "hidden": hidden, "precision": 4}
                    for i, (key, title, sorting, hidden) in enumerate(COLUMNS)
                ],
            }
        ],
    }
    if options.queue:
        competition["queue"] = str(options.queue)
    return competition


def _measured(measured: dict[str, Any] | None) -> str:
    if not measured:
        return " (as given, not measured)"
    return (
        f" (a do-nothing ingestion of {measured['do_nothing_runs']} runs took {measured['do_nothing_seconds']:.1f} s: "
        f"{measured['fixed_seconds']:.1f} s fixed, {measured['per_run_seconds']:.2f} s a run; "
        f"{measured['rule']})"
    )


def _write_programs(root: Path) -> None:
    for name, command in (
        ("ingestion_program", codabench_programs.INGESTION_COMMAND),
        ("scoring_program", codabench_programs.SCORING_COMMAND),
    ):
        program = root / name
        program.mkdir()
        _copy_packages(program)
        write_bytes(program / "run.py", codabench_programs.LAUNCHER.encode())
        write_bytes(program / "metadata.yaml", yaml.safe_dump({"command": command}).encode())


def _copy_packages(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name, source in KIT_PACKAGES.items():
        shutil.copytree(source, target / name, ignore=ignore)


def _write_pages(root: Path, title: str, phases: list[dict[str, Any]]) -> None:
    (root / "pages").mkdir()
    for name, text in pages.pages(title, phases).items():
        write_bytes(root / ("terms.md" if name == "terms.md" else f"pages/{name}"), text.encode())
    write_bytes(root / "logo.png", pages.logo_png(title))


def _write_solution_and_kit(root: Path, notebook: Path) -> None:
    (root / "solution").mkdir()
    write_bytes(root / "solution" / "submission.py", submission_source(notebook).encode())
    kit = root / "starting_kit"
    kit.mkdir()
    _copy_packages(kit)
    for name in STARTING_KIT_PACKAGES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, kit / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in STARTING_KIT_FILES:
        source = notebook if name == "notebooks/starter.ipynb" else REPO_ROOT / name
        if source.is_file():
            (kit / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, kit / name)


def _zip(folder: Path) -> Path:
    """folder.zip with every file of folder at the zip's root, written atomically."""
    target = folder.with_suffix(".zip")
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    partial.replace(target)
    return target
