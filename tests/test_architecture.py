"""The architecture, enforced: no import cycle, scoring's layers import downwards only, short modules.

Every module of ``scoring``, ``starter_kit`` and ``data_prep`` is parsed (``ast``, nothing is
imported), with every import it makes, those inside functions included: a module depends
on the modules it names. A package's ``__init__`` is a module like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scoring", "starter_kit", "data_prep")
MAX_LINES = 400
# Exceptions, each with its reason and its own cap (none today).
TOO_LONG_FOR_NOW: dict[str, int] = {}

# scoring's units from the bottom up: a unit may import only from units in lower layers
# (and from itself). Peers in one layer do not import each other. Data flows one way:
# checks and the metric know nothing of files or models; the command line sits on top.
LAYERS = (
    ("scoring", "scoring.checks", "scoring.record"),  # the package's root (its path), input checks, score.json's type
    ("scoring.metric",),  # the official metric: pure functions on arrays
    ("scoring.outputs", "scoring.backends"),  # what a model yields for the metric; where tasks run
    ("scoring.references",),  # reference models and their folder
    ("scoring.ingestion",),  # a submission's runs in the sandbox
    ("scoring.assess", "scoring.html"),  # what is reported beside the score; the pages
    ("scoring.score",),  # one submission scored
    ("scoring.ranking",),  # scores ranked and published
    ("scoring.bench", "scoring.hosting"),  # the scorer checking itself; Codabench
    ("scoring.cli",),  # the command line
    ("scoring.__main__",),
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name ``path`` imports: ``import a.b``, ``from a import b`` (a and a.b), relative ones resolved."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def _module_of(dotted: str) -> str | None:
    """The kit's module that ``dotted`` names or lies in; None outside the kit."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        targets = {_module_of(dotted) for dotted in _imported_names(name, path)}
        graph[name] = {target for target in targets if target is not None and target != name}
    return graph


GRAPH = _graph()


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def _unit(module: str) -> str:
    """scoring's unit a module belongs to: its subpackage or top-level module (``scoring.assess``, ``scoring.cli``)."""
    return ".".join(module.split(".")[:2])


def _layer_of(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"{unit} is in no layer of tests/test_architecture.py's LAYERS: add it where it belongs")


def test_the_checks_see_every_package_and_their_imports() -> None:
    assert {"scoring.cli", "scoring.checks", "starter_kit.training", "data_prep.build"} <= set(MODULES)
    assert "scoring.checks" in GRAPH["scoring.metric.forgetting"]
    assert "scoring.ingestion.worker_process" in GRAPH["scoring.ingestion.runner"]


def test_the_cycle_finder_names_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = _find_cycle(GRAPH)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_every_scoring_unit_has_a_layer() -> None:
    units = {_unit(module) for module in MODULES if module.startswith("scoring")}
    for unit in units:
        _layer_of(unit)
    declared = {unit for layer in LAYERS for unit in layer}
    assert declared <= units, f"LAYERS names units that do not exist: {sorted(declared - units)}"


@pytest.mark.parametrize("layer", range(len(LAYERS)), ids=[" ".join(layer) for layer in LAYERS])
def test_scoring_imports_only_from_lower_layers(layer: int) -> None:
    upward = []
    for module, targets in sorted(GRAPH.items()):
        unit = _unit(module)
        if not module.startswith("scoring") or unit not in LAYERS[layer]:
            continue
        for target in sorted(targets):
            if target.startswith("scoring") and _unit(target) != unit and _layer_of(_unit(target)) >= layer:
                upward.append(f"{module} imports {target}")
    assert not upward, "imports that go up or sideways in scoring's layers: " + "; ".join(upward)


def test_no_module_is_past_the_limit() -> None:
    long = []
    for path in MODULES.values():
        relative = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > TOO_LONG_FOR_NOW.get(relative, MAX_LINES):
            long.append(f"{relative} ({lines} lines)")
    assert not long, f"modules past {MAX_LINES} lines, split them by what they own: {', '.join(long)}"
