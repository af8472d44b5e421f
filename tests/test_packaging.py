"""pyproject.toml and environment.yml ask for the same packages, with the same pins."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", requirement.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():  # test, ray: environment.yml holds every extra
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


def test_packages_are_the_three_top_level_folders():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(setuptools["packages"]) == ["data_prep", "scoring", "starter_kit"]


def test_make_test_installs_every_extra():
    """The Ray tests are part of make test: its install step must bring Ray along."""
    extras = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert extras == ["ray", "test"]
    assert "pip install --quiet -e '.[test,ray]'" in (ROOT / "Makefile").read_text()
