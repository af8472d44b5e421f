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

from scoring.hosting.codabench_bundle import ExportOptions, PhaseSpec, export_bundle
from scoring.hosting.codabench_data import read_reference
from scoring.hosting.codabench_ingestion import run_file
from scoring.hosting.codabench_run import run_bundle
from scoring.hosting.codabench_scoring import COLUMN_KEYS, SCORES_FILE, score_prediction
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
            )
        )


def offline(bundle, tmp_path, source: str, **options) -> dict:
    submission = pack_submission(kit.write_py(tmp_path, source), tmp_path / "submission.zip")
    with kit.one_thread():
        return run_bundle(bundle, submission, "development", tmp_path / "run", **options)


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
    for earlier, later in itertools.pairwise(phases):
        assert date.fromisoformat(earlier["end"]) <= date.fromisoformat(later["start"])
    for phase in phases:
        assert date.fromisoformat(phase["start"]) < date.fromisoformat(phase["end"])
        assert isinstance(phase["execution_time_limit"], int) and phase["execution_time_limit"] > 60
        assert phase["max_submissions_per_day"] == 5
        assert phase["hide_prediction_output"] is True  # N weight deltas: GBs, never offered for download
    assert [p["make_input_data_available"] for p in phases] == [True, False]
    assert competition["enable_detailed_results"] is True and competition["docker_image"]
    (board,) = competition["leaderboards"]
    assert board["title"] and board["key"]
    assert [c["key"] for c in board["columns"]] == list(COLUMN_KEYS)
    assert all(c["title"] and c["sorting"] in ("asc", "desc") for c in board["columns"])
    assert [c["index"] for c in board["columns"]] == list(range(len(COLUMN_KEYS)))


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
        "    found = [p for p in ('/app/input/ref', '/app/input', '/app/input/ref/references.npz')\n"
        "             if os.path.exists(p)]\n"
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
        ("crash", "import os\ndef unlearning(net, r, f, v):\n    os._exit(3)\n", "ended without writing its results"),
        (
            "garbage",
            "import os\ndef unlearning(net, r, f, v):\n"
            "    if os.path.exists('/app/output/runs/run-0000.safetensors'):\n"
            "        open('/app/output/runs/run-0000.safetensors', 'wb').write(b'not a model')\n    return net\n",
            "run 0's model cannot be read",
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
