"""Hosting on Codabench: the exported bundle, the submission zip, and the offline run of the compute worker."""

import itertools
import json
import shutil
import socket
import zipfile
from datetime import date
from pathlib import Path

import pytest
import torch
import yaml
from submissions import _fixtures as kit

from scoring.hosting import codabench_rules
from scoring.hosting.codabench_bundle import ExportOptions, PhaseSpec, export_bundle
from scoring.hosting.codabench_costs import SETUP_EXTRA_SECONDS, SETUP_MARGIN
from scoring.hosting.codabench_data import read_reference
from scoring.hosting.codabench_ingestion import run_file
from scoring.hosting.codabench_rules import BundleRefused, check_competition
from scoring.hosting.codabench_run import run_bundle
from scoring.hosting.codabench_scoring import (
    COLUMN_KEYS,
    SCORES_FILE,
    charged_time,
    program_beside_ingestion,
    score_prediction,
)
from scoring.hosting.weights_delta import encode
from scoring.ingestion import sandbox
from starter_kit.pack import pack_submission
from starter_kit.splits import load_split

N = 2
needs_sandbox = pytest.mark.skipif(sandbox.sandbox_problem() is not None, reason=f"{sandbox.sandbox_problem()}")


@pytest.fixture(scope="module")
def bundle(split, refs, tmp_path_factory) -> Path:
    """A two-phase bundle (the tiny split stands in for both), N = 2."""
    out = tmp_path_factory.mktemp("codabench")
    with kit.one_thread():
        return export_bundle(
            ExportOptions(
                out=out,
                phases=[
                    PhaseSpec("development", split, refs, N, 30),
                    PhaseSpec("final", split, refs, N, 7, downloadable=False),
                ],
                start=date(2030, 1, 1),
                time_limit=30.0,  # N x 30 s: room for a busy test machine; the set-up allowance is measured
            )
        )


def offline(bundle, tmp_path, source: str, **options) -> dict:
    submission = pack_submission(kit.write_py(tmp_path, source), tmp_path / "submission.zip")
    with kit.one_thread():
        return run_bundle(bundle, submission, "development", tmp_path / "run", **options)


def competition_of(bundle: Path) -> dict:
    return yaml.safe_load((bundle.with_suffix("") / "competition.yaml").read_text())


def test_competition_yaml_has_what_the_v2_unpacker_requires(bundle):
    root = bundle.with_suffix("")
    with zipfile.ZipFile(bundle) as archive:
        assert "competition.yaml" in archive.namelist()
    competition = yaml.safe_load((root / "competition.yaml").read_text())
    assert competition["version"] == 2 and competition["title"]
    assert (root / competition["image"]).read_bytes()[:4] == b"\x89PNG"
    assert (root / competition["terms"]).read_text().strip()
    assert competition["pages"] and all((root / page["file"]).read_text().strip() for page in competition["pages"])
    tasks = {task["index"]: task for task in competition["tasks"]}
    for task in tasks.values():
        for key in ("scoring_program", "ingestion_program", "input_data", "reference_data"):
            assert (root / task[key]).is_dir()
        for program in ("scoring_program", "ingestion_program"):
            assert "command" in yaml.safe_load((root / task[program] / "metadata.yaml").read_text())
    for solution in competition["solutions"]:
        assert set(solution["tasks"]) <= set(tasks) and (root / solution["path"] / "submission.py").is_file()
    phases = competition["phases"]
    assert [p["index"] for p in phases] == [0, 1] and all(set(p["tasks"]) <= set(tasks) for p in phases)
    for earlier, later in itertools.pairwise(phases):  # base_unpacker.py, _validate_phase_ordering
        assert date.fromisoformat(earlier["end"]) < date.fromisoformat(later["start"])
    for phase in phases:
        assert date.fromisoformat(phase["start"]) < date.fromisoformat(phase["end"])
        assert isinstance(phase["execution_time_limit"], int) and phase["execution_time_limit"] > 60
        assert (phase["max_submissions_per_day"], phase["max_submissions"]) == (5, 100)
        assert phase["hide_prediction_output"] is True  # N weight deltas: GBs, never offered for download
        assert set(phase) <= codabench_rules.PHASE_KEYS  # nothing v2.py's _unpack_phases never reads
    assert [p["hide_output"] for p in phases] == [False, True]  # the final phase's logs stay closed
    assert competition["make_input_data_available"] is False and phases[0]["public_data"] == "input_data_development"
    assert competition["enable_detailed_results"] is True and competition["docker_image"]
    (board,) = competition["leaderboards"]  # every phase gets leaderboards[0] (base_unpacker.py, _save_competition)
    assert board["title"] and board["key"] and board["submission_rule"] == "Force_Last"
    assert [c["key"] for c in board["columns"]] == list(COLUMN_KEYS)
    assert all(c["title"] and c["sorting"] in ("asc", "desc") for c in board["columns"])
    assert [c["index"] for c in board["columns"]] == list(range(len(COLUMN_KEYS)))
    check_competition(competition, root)  # every check of Codabench's that depends on the bundle alone


def test_the_set_up_allowance_is_measured_and_recorded_with_its_margin(bundle):
    root = bundle.with_suffix("")
    for phase in ("development", "final"):
        public = json.loads((root / f"input_data_{phase}" / "phase.json").read_text())
        private = json.loads((root / f"reference_data_{phase}" / "phase.json").read_text())
        measured = public["setup_measurement"]
        assert measured == private["setup_measurement"] and public["setup_seconds"] == private["setup_seconds"]
        assert 0 < measured["per_run_seconds"] < measured["do_nothing_seconds"]
        expected = (measured["fixed_seconds"] + N * measured["per_run_seconds"]) * SETUP_MARGIN + SETUP_EXTRA_SECONDS
        assert public["setup_seconds"] == pytest.approx(expected, abs=1.0) and public["setup_seconds"] < 60


def _mutated(competition: dict, change) -> dict:
    copy = yaml.safe_load(yaml.safe_dump(competition))
    change(copy)
    return copy


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["phases"][1].update(start=c["phases"][0]["end"]), "Phases dates conflict"),
        (lambda c: c["phases"][1].update(start="2030-01-15"), "must start strictly after"),
        (lambda c: c["phases"][0].pop("end"), "must have an end time"),
        (lambda c: c["phases"][0].update(make_input_data_available=True), "never reads"),
        (lambda c: c["phases"][0].update(execution_time_limit_ms=1000), "never reads"),
        (lambda c: c["phases"][0].update(execution_time_limit=601), "set up a queue of compute workers"),
        (lambda c: c.update(queue="MY_GPU_QUEUE"), "is not a UUID"),
        (lambda c: c.pop("tasks"), "no tasks"),
        (lambda c: c["tasks"][0].pop("scoring_program"), "no scoring program"),
        (lambda c: c["tasks"][1].update(index=0), "duplicate task index"),
        (lambda c: c["solutions"][0].update(tasks=[7]), "task index that does not exist"),
        (lambda c: c["solutions"][0].update(path="nowhere"), "is not in the bundle"),
        (lambda c: c["leaderboards"][0]["columns"][1].update(index=0), "unique indexes"),
        (lambda c: c["leaderboards"][0]["columns"][1].update(key="score"), "unique keys"),
        (lambda c: c["leaderboards"][0]["columns"][0].update(title="x" * 37), "over the 36 allowed"),
        (lambda c: c["leaderboards"][0].update(submission_rule="Force_best"), "is not one of"),
        (lambda c: c["leaderboards"][0].update(primary_index=99), "is no column's index"),
        (lambda c: c["leaderboards"][0]["columns"][0].update(sorting="up"), "desc or asc"),
        (lambda c: c["leaderboards"][0].update(columns=[]), "at least 1 column"),
        (lambda c: c.pop("leaderboards"), "could not find leaderboards"),
        (lambda c: c.update(version=1), "version: 2"),
    ],
)
def test_codabench_s_checks_refuse_what_its_unpacker_would(bundle, change, message):
    competition = competition_of(bundle)
    with pytest.raises(BundleRefused, match=message) as refused:
        check_competition(_mutated(competition, change), bundle.with_suffix(""))
    assert "\n" not in str(refused.value) and ".py" in str(refused.value)  # names Codabench's file


def test_a_queue_lifts_the_execution_time_limit_and_is_named_by_its_uuid(bundle):
    competition = competition_of(bundle)
    check_competition(_mutated(competition, lambda c: c["phases"][0].update(execution_time_limit=601)), None, 3600)
    queued = _mutated(
        competition,
        lambda c: (
            c.update(queue="6b1d8a55-2f32-4c3e-9d8e-0a5c1e6f7b90"),
            c["phases"][0].update(execution_time_limit=36000),
        ),
    )
    check_competition(queued, None)
    assert codabench_rules.MAX_EXECUTION_TIME_LIMIT == 600


def test_export_refuses_in_one_line_what_codabench_would_not_keep(split, refs, tmp_path):
    def export(**options):
        with kit.one_thread():
            return export_bundle(
                ExportOptions(
                    out=tmp_path, phases=[PhaseSpec("development", split, refs, N, 30)], setup_seconds=5.0, **options
                )
            )

    with pytest.raises(BundleRefused, match="'MY_GPU_QUEUE' is not a UUID"):
        export(queue="MY_GPU_QUEUE")
    with pytest.raises(BundleRefused, match="over the 10 s .* set up a queue"):
        export(max_execution_time_limit=10)
    lines = []
    with pytest.raises(ValueError, match="one submission uploads about .* --quota-raised"):
        export_bundle(
            ExportOptions(
                out=tmp_path, phases=[PhaseSpec("development", split, refs, N, 30)], setup_seconds=5.0,
                storage_quota_gb=1e-6,
            ),
            say=lines.append,
        )  # fmt: skip
    assert any("against a storage quota of 1e-06 GB" in line for line in lines)
    assert not (tmp_path / "bundle").exists() and not (tmp_path / ".bundle-staging").exists()


def test_input_data_holds_only_what_a_submission_may_see(bundle, split):
    root = bundle.with_suffix("")
    split = load_split(split)
    for phase in ("development", "final"):
        folder = root / f"input_data_{phase}"
        assert sorted(p.name for p in folder.rglob("*")) == ["phase.json", "task.pt"]
        task = torch.load(folder / "task.pt", weights_only=True)
        assert sorted(task) == ["batch_size", "model", "parts", "recipe", "state"]
        assert sorted(task["parts"]) == ["forget", "retain", "val"]
        assert task["recipe"] == split.recipe.to_dict()  # public: the protocol publishes the recipe
        for part, (images, labels) in task["parts"].items():
            assert torch.equal(images, split.images(part)) and torch.equal(labels, split.labels(part))
        test_rows = {bytes(row.numpy().tobytes()) for row in split.images("test")}
        assert not any(row.numpy().tobytes() in test_rows for _, (images, _) in task["parts"].items() for row in images)
        public = json.loads((folder / "phase.json").read_text())
        assert not {"split", "reference_set_sha256", "recipe", "seeds"} & set(public)
        assert "manifest" not in json.dumps(public) and split.manifest_sha256 not in json.dumps(public)


def test_pack_refuses_in_one_line_what_codabench_would_not_run(tmp_path):
    untagged = kit.write_notebook(tmp_path, [("def unlearning(net, r, f, v):\n    return net", [])])
    with pytest.raises(ValueError, match="no code cell tagged 'submission'"):
        pack_submission(untagged, tmp_path / "a.zip")
    no_entry = kit.write_notebook(tmp_path, [("import torch", ["submission"])], name="b.ipynb")
    with pytest.raises(ValueError, match="does not define unlearning"):
        pack_submission(no_entry, tmp_path / "b.zip")
    good = kit.write_notebook(
        tmp_path, [("import torch", ["submission"]), (kit_identity(), ["submission"])], name="c.ipynb"
    )
    with zipfile.ZipFile(pack_submission(good, tmp_path / "c.zip")) as archive:
        assert archive.namelist() == ["submission.py"] and "def unlearning" in archive.read("submission.py").decode()


def kit_identity() -> str:
    return "def unlearning(net, retain_loader, forget_loader, val_loader):\n    return net\n"


def test_the_offline_run_gives_scoring_score_s_numbers_bit_for_bit(bundle, split, refs, tmp_path):
    scores = offline(bundle, tmp_path, (kit.HERE / "fine_tune.py").read_text(), pin_seeds=True)
    assert scores["status"] == "scored", scores["reason"]
    assert set(COLUMN_KEYS) <= set(scores)
    record = kit.score(split, refs, kit.HERE / "fine_tune.py", tmp_path / "score", n_models=N)
    for key in ("F", "score", "retain_ratio", "test_ratio"):
        assert scores[key] == record[key], key
    ingested = json.loads((tmp_path / "run" / "prediction" / "output" / "ingestion.json").read_text())
    assert ingested["seeds"] == record["run_seeds"]
    assert (tmp_path / "run" / "scoring" / "output" / "detailed_results.html").read_text().startswith("<!")


@needs_sandbox
def test_a_hostile_submission_can_neither_read_references_nor_reach_the_network(bundle, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    source = (
        "import os, socket\n"
        "def unlearning(net, retain_loader, forget_loader, val_loader):\n"
        "    found = [p for p in ('/app/input/ref', '/app/input/res', '/app/input/ref/references.npz')\n"
        "             if os.path.exists(p)]\n"
        "    found += ['/app/input/' + name for name in os.listdir('/app/input')]  # mounted, and empty\n"
        "    found += [d for d in os.listdir('/app') if 'ref' in d]\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "        found.append('network')\n"
        "    except OSError:\n"
        "        pass\n"
        "    if found:\n"
        "        raise RuntimeError('LEAK ' + ' '.join(found))\n"
        "    return net\n"
    )
    try:
        scores = offline(bundle, tmp_path, source)
    finally:
        listener.close()
    assert scores["sandboxed"] is True and scores["status"] == "scored", scores["reason"]


@needs_sandbox
@pytest.mark.parametrize(
    "case, source, reason",
    [
        (
            "crash",
            "import os, signal\ndef unlearning(net, r, f, v):\n    os.kill(os.getppid(), signal.SIGKILL)\n",
            "ended without writing its results",
        ),
    ],
)
def test_a_crash_or_garbage_output_fails_with_a_one_line_reason(bundle, tmp_path, case, source, reason):
    scores = offline(bundle, tmp_path, source)
    assert scores["status"] == "failed" and reason in scores["reason"] and "\n" not in scores["reason"]
    assert all(scores[key] == 0.0 for key in COLUMN_KEYS)


@needs_sandbox
def test_a_submission_past_the_execution_time_limit_fails(bundle, tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(bundle.with_suffix(""), folder)
    competition = yaml.safe_load((folder / "competition.yaml").read_text())
    competition["phases"][0]["execution_time_limit"] = 4
    (folder / "competition.yaml").write_text(yaml.safe_dump(competition))
    scores = offline(folder, tmp_path, "import time\ntime.sleep(600)\n" + kit_identity())
    assert scores["status"] == "failed" and scores["reason"] == "Execution Time Limit exceeded. Limit was 4 seconds"


def _prediction(res: Path, original: dict, n_runs: int) -> None:
    """A prediction output as the worker hands it to scoring: metadata, ingestion.json, each run's delta."""
    (res / "runs").mkdir(parents=True)
    (res / "metadata").write_text("ingestionElapsedTime: 1.0\ningestionExitCode: 0\n")
    runs = [{"index": k, "seed": k, "reported_seconds": 0.1} for k in range(n_runs)]
    (res / "ingestion.json").write_text(json.dumps({"status": "completed", "seeds": list(range(n_runs)), "runs": runs}))
    for k in range(n_runs):
        (res / run_file(k)).write_bytes(encode(original, original))


PREDICTION_DAMAGE = {
    "no worker metadata": lambda res: [p.unlink() for p in res.rglob("*") if p.is_file()],
    "run 1's model is missing": lambda res: (res / run_file(1)).unlink(),
    "run 0's model cannot be read: returned a model whose safetensors": lambda res: (res / run_file(0)).write_bytes(
        b"\xff" * 64
    ),
    "over 1024 KiB": lambda res: (res / "ingestion.json").write_bytes(b" " * (2 << 20)),
    "garbled (UnicodeDecodeError)": lambda res: (res / "ingestion.json").write_bytes(b"\xff\xfe"),
    "garbled (RecursionError)": lambda res: (res / "ingestion.json").write_text("[" * 100_000),
    "its seeds are not a list of integers": lambda res: (res / "ingestion.json").write_text(
        '{"status": "completed", "seeds": ["x"], "runs": []}'
    ),
    "its runs are not a list": lambda res: (res / "ingestion.json").write_text(
        '{"status": "completed", "seeds": [], "runs": [{"index": "0"}]}'
    ),
    "more runs than the phase's": lambda res: (res / "ingestion.json").write_text(
        '{"status": "completed", "seeds": [1, 2, 3], "runs": []}'
    ),
    "the worker's metadata is not YAML": lambda res: (res / "metadata").write_bytes(b"\xff\xfe: ["),
}


@pytest.mark.parametrize("expected", [None, *PREDICTION_DAMAGE])
def test_a_damaged_prediction_output_fails_scoring_in_one_line(bundle, tmp_path, expected):
    """What the scoring step reads of the prediction output (written where the submission ran): each
    damage is a failed score with one line, and scores.json is written."""
    (tmp_path / "input").mkdir()
    shutil.copytree(bundle.with_suffix("") / "reference_data_development", tmp_path / "input" / "ref")
    _prediction(tmp_path / "input" / "res", read_reference(tmp_path / "input" / "ref")["original"], N)
    if expected is not None:
        PREDICTION_DAMAGE[expected](tmp_path / "input" / "res")
    with kit.one_thread():
        record = score_prediction(tmp_path / "input", tmp_path / "output")
    if expected is None:  # undamaged, the original model itself: scored
        assert record["status"] == "scored", record["reason"]
        return
    assert record["status"] == "failed" and expected in record["reason"] and "\n" not in record["reason"], record
    assert json.loads((tmp_path / "output" / SCORES_FILE).read_text())["status"] == "failed"


ATTACK = """import json, pathlib, sys, time
here, out = pathlib.Path.cwd(), pathlib.Path(sys.argv[1])
for name in ("metadata.yaml", "attack.py"):  # gone before the ingestion looks: it finds one .py file
    (here / name).unlink()
while not (out / "ingestion.json").exists():  # let the trivial unlearning finish ...
    time.sleep(0.05)
time.sleep(0.3)
record = json.loads((out / "ingestion.json").read_text())
runs = sorted((out / "runs").iterdir())
for path in runs[1:]:  # ... then keep working: rewrite runs/ and ingestion.json, off the ingestion's clock
    path.write_bytes(runs[0].read_bytes())
for run in record["runs"]:
    run["reported_seconds"] = 0.001
(out / "ingestion.json").write_text(json.dumps(record))
time.sleep(2.0)
print("ATTACK DONE", flush=True)
"""


def test_a_program_of_the_submission_beside_the_ingestion_is_refused_end_to_end(bundle, tmp_path):
    """The worker runs a submission's metadata command beside the ingestion, same /app/output (compute_worker.py,
    Run.start and _run_program_directory), timed apart (Run.push_output): one clock refuses it."""
    submission = tmp_path / "attack.zip"
    with zipfile.ZipFile(submission, "w") as archive:
        archive.writestr("submission.py", kit_identity())
        archive.writestr("metadata.yaml", "command: python3 attack.py $output\n")
        archive.writestr("attack.py", ATTACK)
    with kit.one_thread():
        scores = run_bundle(bundle, submission, "development", tmp_path / "run")
    prediction = tmp_path / "run" / "prediction"
    assert "ATTACK DONE" in (prediction / "program.log").read_text()  # the attack ran to its end
    assert json.loads((prediction / "output" / "ingestion.json").read_text())["runs"][0]["reported_seconds"] == 0.001
    metadata = yaml.safe_load((prediction / "output" / "metadata").read_text())
    assert metadata["exitCode"] == 0 and metadata["elapsedTime"] != metadata["ingestionElapsedTime"]
    assert scores["status"] == "rejected" and "\n" not in scores["reason"]
    assert scores["reason"].startswith("a program of the submission ran beside the ingestion")
    assert all(scores[key] == 0.0 for key in COLUMN_KEYS)


def test_the_worker_metadata_is_one_clock():
    alone = {"exitCode": None, "elapsedTime": 12.5, "ingestionExitCode": 0, "ingestionElapsedTime": 12.5}
    assert program_beside_ingestion(alone) is None
    for beside in ({"exitCode": 0, "elapsedTime": 30.0}, {"exitCode": None, "elapsedTime": 30.0}, {"exitCode": 1}):
        assert "ran beside the ingestion" in program_beside_ingestion({**alone, **beside})
    phase = {"setup_seconds": 2.5, "n_runs": 4}
    assert charged_time(alone, phase)["charged_mean_seconds"] == 2.5
    assert charged_time({**alone, "exitCode": 0, "elapsedTime": 42.5}, phase)["charged_mean_seconds"] == 10.0


ISOLATION = """import os, sys, threading, time, tempfile
LOADS = globals().setdefault("LOADS", [])
LOADS.append(1)

def linger(tag, started):
    print(tag, flush=True)
    started()
    while True:
        time.sleep(0.05)
        print(tag, flush=True)

def unlearning(net, retain_loader, forget_loader, val_loader):
    leaks = [name for name, found in (
        ("global", len(LOADS) > 1),
        ("file", os.path.exists(os.path.join(tempfile.gettempdir(), "kit-run-marker"))),
        ("tmp", os.path.exists("/tmp/kit-run-marker")),
    ) if found]
    print("RUN STARTS", flush=True)
    time.sleep(0.5)  # a thread or process an earlier run left would print meanwhile
    print("RUN ENDS", flush=True)
    if leaks:
        raise RuntimeError("LEAK " + " ".join(leaks))
    if os.path.exists("/app/output/runs/run-0000.safetensors"):  # run 1 rewrites run 0's model
        open("/app/output/runs/run-0000.safetensors", "wb").write(b"not a model")
    for path in ("/tmp/kit-run-marker", os.path.join(tempfile.gettempdir(), "kit-run-marker")):
        open(path, "w").close()
    ready = threading.Event()
    threading.Thread(target=linger, args=("THREAD", ready.set), daemon=True).start()
    ready.wait(30)
    read_end, write_end = os.pipe()
    if os.fork() == 0:  # a daemon that leaves the run's process group
        os.setsid()
        if os.fork() == 0:
            linger("DAEMON", lambda: os.write(write_end, b"x"))
        os._exit(0)
    os.read(read_end, 1)  # returns once the daemon runs
    return net
"""


@needs_sandbox
def test_no_run_starts_from_anything_an_earlier_run_left(bundle, tmp_path):
    """A global, a scratch file, a thread and a daemon started by run 0 are all gone when run 1 starts;
    run 1's rewrite of run 0's model is caught."""
    scores = offline(bundle, tmp_path, ISOLATION)
    assert scores["status"] == "failed", scores["reason"]  # not "LEAK ...": nothing of run 0 reached run 1
    assert scores["reason"] == "run 0's output was changed after the ingestion wrote it: runs must share nothing"
    log = (tmp_path / "run" / "prediction" / "ingestion.log").read_text()
    first, second = log.index("RUN STARTS"), log.rindex("RUN STARTS")
    assert first < second and "DAEMON" in log[:second]  # run 0's daemon did run ...
    during = log[second : log.rindex("RUN ENDS")]
    assert "THREAD" not in during and "DAEMON" not in during  # ... and nothing of run 0 outlived it
    ingested = json.loads((tmp_path / "run" / "prediction" / "output" / "ingestion.json").read_text())
    assert ingested["isolation"]["process_per_run"] is True


def test_an_empty_or_cut_prediction_output_fails_with_one_line(bundle, tmp_path):
    inputs = tmp_path / "input"
    shutil.copytree(bundle.with_suffix("") / "reference_data_development", inputs / "ref")
    (inputs / "res").mkdir()
    with kit.one_thread():
        record = score_prediction(inputs, tmp_path / "out")
    assert record["status"] == "failed" and record["reason"].startswith("the prediction output is empty")
    (inputs / "res" / "ingestion.json").write_text(json.dumps({"status": "completed", "runs": []}))
    (inputs / "res" / "metadata").write_text("ingestionElapsedTime: 3.0\n")
    with kit.one_thread():
        record = score_prediction(inputs, tmp_path / "out")
    assert record["status"] == "failed" and record["reason"].startswith("the prediction output lacks runs/")
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["score"] == 0.0
