"""The baselines page's zoo table and the registry's come from `scoring benchmark` (zoo_table.py) and agree."""

import json
import re
import sys
from pathlib import Path

import pytest
from submissions import _fixtures as kit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import zoo_table  # noqa: E402


def page_scores() -> dict[str, list[float]]:
    text = zoo_table.PAGE.read_text()
    table = text[text.index(zoo_table.PAGE_START) : text.index(zoo_table.PAGE_END)]
    rows = {}
    for line in table.splitlines()[4:]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].strip("`").replace("sanity: ", "")] = [float(cell.split()[0]) for cell in cells[2:]]
    return rows


def registry_scores() -> dict[str, list[float]]:
    lines = zoo_table.REGISTRY.read_text().splitlines()
    first = lines.index(zoo_table.REGISTRY_HEADER) + 1
    rows = {}
    for line in lines[first:]:
        if not line.strip():
            break
        name, *values = line.split()
        rows[name] = [float(value) for value in values]
    return rows


def test_the_page_and_the_registry_state_the_same_scores():
    page, registry = page_scores(), registry_scores()
    from starter_kit.baselines import BASELINES

    assert set(page) == set(registry) == set(BASELINES) | {"retrain", "noise", "identity"}
    for name, values in page.items():
        assert registry[name] == pytest.approx(values, abs=0.0006), name  # the registry rounds to 3 decimals


def fake_benchmark(folder: Path, template: dict, n: int, scores: dict[str, float]) -> Path:
    """A benchmark folder of valid score.json files: ``template``, its N and score replaced."""
    for name, score in scores.items():
        path = folder / "scores" / name / "score.json"
        path.parent.mkdir(parents=True)
        record = {**template, "N": n, "score": score}
        record["intervals"] = {**template["intervals"], "score": [score / 2, score * 2]}
        path.write_text(json.dumps(record))
    return folder


def test_the_script_writes_both_tables_from_benchmark_folders(tmp_path, tmp_path_factory, monkeypatch):
    template = json.loads((kit.fine_tune_score_dir(tmp_path_factory) / "score.json").read_text())
    page, registry = tmp_path / "baselines.md", tmp_path / "registry.py"
    page.write_text(zoo_table.PAGE.read_text())
    registry.write_text(zoo_table.REGISTRY.read_text())
    monkeypatch.setattr(zoo_table, "PAGE", page)
    monkeypatch.setattr(zoo_table, "REGISTRY", registry)
    small = fake_benchmark(tmp_path / "n32", template, 32, {"scrub": 0.25, "finetune": 0.125, "sanity_identity": 0.0})
    large = fake_benchmark(tmp_path / "n128", template, 128, {"scrub": 0.0625, "finetune": 0.5, "sanity_identity": 0.0})
    assert zoo_table.main([str(large), str(small), "--write"]) == 0
    assert (
        "| `finetune` | fine-tune on retain (NeurIPS 2023 starting kit) | 0.1250 [0.062, 0.250] | 0.5000"
        in page.read_text()
    )
    assert re.search(
        r"\n    finetune +0\.125 +0\.500\n    scrub +0\.250 +0\.062\n    identity +0\.000 +0\.000\n\n",
        registry.read_text(),
    )


def test_a_folder_without_scores_is_a_clear_error(tmp_path, capsys):
    assert zoo_table.main([str(tmp_path)]) == 2
    assert "holds no scores/*/score.json: give a 'python -m scoring benchmark' --out folder" in capsys.readouterr().err
