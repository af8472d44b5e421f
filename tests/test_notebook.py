"""The starter notebook: its tagged cell is a whole submission, and it runs headless."""

import json
import time
from pathlib import Path

import nbformat
import pytest
import torch

from scoring.references.build import default_refs_dir
from starter_kit.baselines import BASELINES
from starter_kit.notebook import inject_parameters, main, parse_parameters, run_notebook, this_notebook
from starter_kit.submission import seed_everything, submission_loaders, submission_source

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "starter.ipynb"
PREMADE_REPORT = "<!DOCTYPE html><html><body><p>premade report</p></body></html>"


def cell_source(condition):
    """The source of the notebook's first cell that meets ``condition``."""
    return next(cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells if condition(cell))


def tagged(tag):
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return [cell for cell in cells if tag in cell.get("metadata", {}).get("tags", [])]


def test_notebook_ships_clean_with_one_parameters_and_one_submission_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert len(tagged("parameters")) == 1 and len(tagged("submission")) == 1


@pytest.mark.parametrize("method", ["scrub", None])
def test_exported_submission_alone_submits_its_method(digits_split, single_torch_thread, method):
    # METHOD = "scrub" (the default) submits that baseline; None, the fine-tune written out in the cell.
    # Compared bitwise: the same machine, seed and torch thread, as the kit promises.
    source = submission_source(NOTEBOOK)
    assert 'METHOD = "scrub"' in source
    namespace = {}
    exec(compile(source.replace('METHOD = "scrub"', f"METHOD = {method!r}"), "<submission>", "exec"), namespace)
    unlearning = namespace["unlearning"]

    def run(function):
        seed_everything(5)
        retain, forget, val = submission_loaders(digits_split, 5)
        return function(digits_split.original_model(), retain, forget, val)

    ours, baseline = run(unlearning), run(BASELINES[method or "finetune"])
    assert not ours.training
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, baseline.state_dict()[name]), name


def test_notebook_runs_headless_without_errors_or_warnings(digits_split_dir, tmp_path):
    shipped = NOTEBOOK.read_bytes()
    # A score folder of the test's own: whatever a demo left in results/scores is never read.
    score_dir = tmp_path / "scores"
    score_dir.mkdir()
    (score_dir / "report.html").write_text(PREMADE_REPORT)
    parameters = {
        "SPLIT_DIR": str(digits_split_dir),
        "RETRAIN_EPOCHS": 4,
        "BASELINES_TO_RUN": ["finetune", "erase_repair"],
        "SCORE_DIR": str(score_dir),
    }
    result = run_notebook(NOTEBOOK, tmp_path / "out", parameters, timeout=300)

    executed = nbformat.read(result.notebook, as_version=4)
    outputs = [output for cell in executed.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, stderr  # the report shown inline included: IPython warns about a bare <iframe>
    tables = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "MIA" in tables and "erase_repair" in tables and "retrained" in tables
    assert len(result.figures) == 2 and all(path.read_bytes()[:4] == b"\x89PNG" for path in result.figures)
    report = executed.cells[-1].outputs
    assert [o.output_type for o in report] == ["stream", "display_data"]
    assert f"the latest local score in {score_dir.resolve()}, written " in report[0].text
    assert "premade report" in report[1].data["text/html"]
    assert NOTEBOOK.read_bytes() == shipped  # the notebook itself is left untouched


def run_report_cell(monkeypatch, tmp_path, digits_split, digits_split_dir, local_score_n, name="starter.ipynb"):
    """Run the notebook's last cell in ``tmp_path/notebooks``, as Jupyter runs ``name`` there: (printed, displayed)."""
    source = cell_source(lambda cell: cell.get("id") == "local-report")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "starter.ipynb").write_bytes(NOTEBOOK.read_bytes())
    (folder / name).write_bytes(NOTEBOOK.read_bytes())
    monkeypatch.delenv("NOTEBOOK_PATH", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", f"notebooks/{name}")  # Jupyter Server: the path from its root folder
    score_dir = tmp_path / "scores"
    score_dir.mkdir()
    (score_dir / "score.json").write_text("{}")  # a score folder, which the scorer may replace
    (score_dir / "report.html").write_text(PREMADE_REPORT)
    monkeypatch.chdir(folder)
    shown, printed = [], []
    monkeypatch.setattr("IPython.display.display", shown.append)
    namespace = {
        "Path": Path,
        "time": time,
        "print": lambda *args: printed.append(" ".join(map(str, args))),
        "split": digits_split,
        "split_dir": Path(digits_split_dir),
        "device": torch.device("cpu"),
        "THREADS": 1,
        "SPLIT": "public",
        "SCORE_DIR": str(score_dir),
        "LOCAL_SCORE_N": local_score_n,
        "UNSEALED": True,
    }
    exec(compile(source, "<local-report>", "exec"), namespace)
    return printed, shown


def test_the_report_cell_says_where_an_earlier_report_is_from(monkeypatch, tmp_path, digits_split, digits_split_dir):
    printed, shown = run_report_cell(monkeypatch, tmp_path, digits_split, digits_split_dir, local_score_n=0)
    where = f"the latest local score in {(tmp_path / 'scores').resolve()}, written "
    assert len(printed) == 1 and printed[0].startswith(where)
    assert len(shown) == 1 and "premade report" in shown[0].data


def test_the_report_cell_shows_no_stale_report_if_scoring_fails(monkeypatch, tmp_path, digits_split, digits_split_dir):
    # No reference models in ../results/references (beside the notebook's folder, as section 5 builds them).
    printed, shown = run_report_cell(monkeypatch, tmp_path, digits_split, digits_split_dir, local_score_n=2)
    assert not shown
    assert len(printed) == 2 and printed[1].startswith("not scored: ")
    assert "save the notebook first" in printed[0]
    # absolute, so that the command the error suggests works from the repository's root too
    assert str(default_refs_dir(digits_split, tmp_path.resolve() / "results" / "references")) in printed[1]


def test_the_report_cell_scores_the_notebook_that_runs_not_starter(
    monkeypatch, tmp_path, digits_split, digits_split_dir
):
    """A renamed copy scored starter.ipynb beside it, silently: it must score itself."""
    asked = []
    monkeypatch.setattr("scoring.score.score_submission", asked.append)
    printed, _ = run_report_cell(
        monkeypatch, tmp_path, digits_split, digits_split_dir, local_score_n=2, name="mine v2.ipynb"
    )
    copy = (tmp_path / "notebooks" / "mine v2.ipynb").resolve()
    assert [options.submission for options in asked] == [copy]
    assert asked[0].team == "local" and asked[0].replace
    assert (
        printed[0]
        == f"scoring {copy} as saved on disk: save the notebook first (Ctrl+S), or your latest edits are not scored"
    )


def test_this_notebook_asks_for_notebook_path_where_it_cannot_tell(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("NOTEBOOK_PATH", raising=False)
    with pytest.raises(ValueError, match="cannot tell which file this notebook is: set NOTEBOOK_PATH"):
        this_notebook({})
    (tmp_path / "a.ipynb").write_text("{}")
    assert this_notebook({"__vsc_ipynb_file__": str(tmp_path / "a.ipynb")}) == tmp_path / "a.ipynb"
    assert this_notebook({"__session__": "elsewhere/a.ipynb"}) == tmp_path / "a.ipynb"  # found in the kernel's folder
    monkeypatch.setenv("NOTEBOOK_PATH", "b.ipynb")
    with pytest.raises(ValueError, match="NOTEBOOK_PATH is 'b.ipynb', which is no .ipynb file"):
        this_notebook({"__session__": "a.ipynb"})


def test_the_headless_runner_tells_the_kernel_its_notebook(tmp_path):
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("from starter_kit.notebook import this_notebook\nprint(this_notebook(globals()))")
        ]
    )
    path = tmp_path / "renamed copy.ipynb"
    nbformat.write(notebook, path)
    executed = nbformat.read(run_notebook(path, tmp_path / "out", timeout=120).notebook, as_version=4)
    assert executed.cells[0].outputs[0].text.strip() == str(path.resolve())


def test_section_4_names_every_baseline():
    section = cell_source(lambda cell: cell.source.startswith("## 4."))
    assert [name for name in BASELINES if f"`{name}`" not in section] == []


def test_a_failing_cell_is_one_line_and_exit_2(tmp_path, capsys):
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("# X is injected as 0\n1 / X"),
        ]
    )
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "-p", "X=0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "cell 2 ('1 / X') raised ZeroDivisionError" in error
    assert (tmp_path / "out" / "broken.ipynb").is_file()  # kept, with the traceback


def test_parameters_are_literals_or_strings_and_must_exist():
    assert parse_parameters(["SEED=3", "SPLIT_DIR=/tmp/a b", "NAMES=['x']", "ROOT=None"]) == {
        "SEED": 3,
        "SPLIT_DIR": "/tmp/a b",
        "NAMES": ["x"],
        "ROOT": None,
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_parameters(["SEED"])
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    injected = inject_parameters(notebook, {"SEED": 4})
    position = next(i for i, cell in enumerate(injected.cells) if "parameters" in cell.metadata.get("tags", []))
    assert injected.cells[position + 1].source.endswith("SEED = 4\n")
    with pytest.raises(ValueError, match="unknown parameter.*SEEED"):
        inject_parameters(notebook, {"SEEED": 4})
