"""Packaging: pyproject.toml and environment.yml ask for the same packages, with the same
pins; the wheel holds the whole kit, and the kit runs installed from it."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT = ("data_prep", "scoring", "starter_kit")


def _normalise(requirement: str) -> tuple[str, str]:
    match = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", requirement.strip())
    assert match is not None, requirement
    name, spec = match.groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():  # test, ray, docs: environment.yml holds every extra
        requirements += extra
    return dict(_normalise(r) for r in requirements)


def _environment_requirements() -> dict[str, str]:
    found = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"\s*-\s+([A-Za-z0-9_.\-]+\s*[=<>!~].*)$", line)
        if match and not match.group(1).startswith(("python=", "pip:")):
            name, spec = _normalise(match.group(1))
            found[name] = spec
    return found


def test_environment_yml_matches_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_torch_and_torchvision_are_pinned():
    requirements = _pyproject_requirements()
    assert requirements["torch"] == "==2.14.1" and requirements["torchvision"] == "==0.29.1"


def test_make_test_installs_every_extra_and_make_demo_none():
    """The Ray and documentation tests are part of make test: its install step must bring Ray and
    MkDocs along; the demo needs none of them, nor pytest."""
    extras = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert extras == ["docs", "ray", "test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[test,ray,docs]'" in makefile and "pip install --quiet -e .\n" in makefile
    assert re.search(r"^demo: \$\(DEMO_STAMP\)$", makefile, re.MULTILINE) and re.search(
        r"^test: \$\(TEST_STAMP\)$", makefile, re.MULTILINE
    )


def _kit_files() -> set[str]:
    """Every file of the three package folders (modules and templates), as the wheel names them."""
    return {
        path.relative_to(ROOT).as_posix()
        for top in KIT
        for path in (ROOT / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` builds, from a copy of the tree (the build writes into its source)."""
    root = tmp_path_factory.mktemp("wheel")
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "results", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"
    )
    shutil.copytree(ROOT, root / "source", ignore=ignore)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(root / "dist"),
            ".",
        ],
        cwd=root / "source",
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (found,) = (root / "dist").glob("unlearning_kit-*.whl")
    return found


def test_the_three_folders_are_the_only_packages():
    assert sorted(p.parent.name for p in ROOT.glob("*/__init__.py")) == sorted(KIT)


def test_the_wheel_holds_every_module_and_template_of_the_kit(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n for n in names if ".dist-info/" not in n} == _kit_files()
    assert "starter_kit/baselines/scrub.py" in names and "scoring/html/templates/report.html" in names


def test_the_kit_installed_from_its_wheel_scores_the_starter_notebook(wheel, split, refs, tmp_path):
    """Installed with `pip install --target` and run from elsewhere: neither the source
    tree nor the venv's editable install can stand in for the wheel's copy."""
    from scoring.ingestion import sandbox
    from starter_kit.baselines import BASELINES

    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def python(*args):
        done = subprocess.run(
            [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    where = json.loads(
        python(
            "-c",
            "import json, data_prep, scoring, starter_kit.baselines as b; print(json.dumps("
            "{'files': [m.__file__ for m in (data_prep, scoring, b)], 'baselines': list(b.BASELINES)}))",
        )
    )
    assert all(Path(f).is_relative_to(site) for f in where["files"]), where["files"]
    assert where["baselines"] == list(BASELINES)
    assert "score" in python("-m", "scoring", "--help")
    out = tmp_path / "score"
    unsealed = ["--unsealed"] if sandbox.sandbox_problem() else []  # the sandbox is tested where it runs
    python(
        "-m",
        "scoring",
        "score",
        str(ROOT / "notebooks" / "starter.ipynb"),
        "--team",
        "t",
        "--split-dir",
        str(split),
        "--refs",
        str(refs),
        "--n-models",
        "2",
        "--out",
        str(out),
        "--threads",
        "1",
        "--time-limit",
        "60",
        "--quiet",
        *unsealed,
    )
    record = json.loads((out / "score.json").read_text())
    assert record["status"] == "scored" and record["N"] == 2, record["reason"]
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
