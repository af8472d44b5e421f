"""The reference pages MkDocs generates from the code at build time, so that they cannot drift.

A MkDocs hook (``hooks:`` in mkdocs.yml): ``on_config`` lists one page per command in the
navigation, ``on_files`` adds the pages themselves, written here from

- the argparse parsers (``COMMANDS``): each command's ``--help`` exactly as a terminal of
  ``HELP_COLUMNS`` columns prints it (``tests/test_docs.py`` runs every ``--help`` and
  compares), with a table of its options;
- the published JSON Schema of score.json (``scoring/score.schema.json``): every field with
  its type and audience;
- the starter notebook (``notebooks/starter.ipynb``), converted to Markdown by nbconvert.

Plain functions of the repository, importable by the tests (``load_hook()`` there).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELP_COLUMNS = 100
CLI_DIR = "reference/cli"
SCHEMA_PAGE = "reference/score-json.md"
NOTEBOOK_PAGE = "participants/notebook.md"
NAV_PLACEHOLDER = f"{CLI_DIR}/index.md"
# (module whose parser() builds the command line, what it is for): every command line of the kit
COMMANDS = (
    ("data_prep.__main__", "organisers: build and describe split directories"),
    ("scoring.cli.parser", "organisers: the sealed scorer (references, scores, leaderboards, Codabench)"),
    ("starter_kit.notebook", "participants: run the notebook headless, pack the file to submit"),
    ("scoring.record.__main__", "anyone: score.json's JSON Schema"),
)


@contextlib.contextmanager
def _columns(columns: int) -> Iterator[None]:
    """argparse wraps help to $COLUMNS: fix it, so the pages do not depend on the terminal that builds them."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command line, (prog, parser), depth first: ``python -m scoring``, ``python -m scoring score``, ..."""
    found: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        found.append((parser.prog, parser))
        for child in _subcommands(parser).values():
            walk(child)

    for module, _ in COMMANDS:
        factory: Callable[[], argparse.ArgumentParser] = importlib.import_module(module).parser
        walk(factory())
    return found


def help_text(parser: argparse.ArgumentParser) -> str:
    """``--help`` as the command prints it in a terminal of HELP_COLUMNS columns."""
    with _columns(HELP_COLUMNS):
        return parser.format_help()


def page_name(prog: str) -> str:
    """``python -m scoring codabench export`` -> ``reference/cli/scoring-codabench-export.md``."""
    words = prog.removeprefix("python -m ").replace(".__main__", "").split()
    return f"{CLI_DIR}/{'-'.join(words).replace('.', '-').replace('_', '-')}.md"


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.option_strings and action.nargs != 0:
            name += f" {action.metavar or action.dest.upper()}"
        required = "yes" if action.required or not action.option_strings else ""
        default = "" if action.default in (None, False, [], (), argparse.SUPPRESS) else f"`{action.default}`"
        text = (action.help or "").replace("%%", "%").replace("%(default)s", str(action.default)).replace("|", "\\|")
        rows.append(f"| `{name}` | {required} | {default} | {text} |")
    return rows


def command_page(prog: str, parser: argparse.ArgumentParser) -> str:
    lines = [f"# `{prog}`", "", "*Generated from the command's own parser when the documentation is built.*", ""]
    if parser.description:
        lines += [parser.description, ""]
    children = _subcommands(parser)
    if children:
        lines += ["| command | what it does |", "|---|---|"]
        for name, child in children.items():
            summary = next((a.help for a in _choices_actions(parser) if a.dest == name), "") or ""
            lines.append(f"| [`{child.prog}`]({Path(page_name(child.prog)).name}) | {summary} |")
        lines.append("")
    rows = _option_rows(parser)
    if rows:
        lines += ["| argument | required | default | what it does |", "|---|---|---|---|", *rows, ""]
    lines += ["`--help` prints:", "", "```text", help_text(parser).rstrip("\n"), "```", ""]
    return "\n".join(lines)


def _choices_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action._choices_actions)
    return []


def cli_pages() -> dict[str, str]:
    """One page per command (every subcommand included) and an index of them all."""
    pages = {}
    index = [
        "# Commands",
        "",
        "Every command line of the kit, one page each, generated from the parsers themselves "
        "(`--help` prints the same text).",
        "",
    ]
    for module, purpose in COMMANDS:
        index += [f"## `{module.replace('.__main__', '').replace('.cli.parser', '')}`: {purpose}", ""]
        factory: Callable[[], argparse.ArgumentParser] = importlib.import_module(module).parser
        stack = [factory()]
        while stack:
            parser = stack.pop(0)
            pages[page_name(parser.prog)] = command_page(parser.prog, parser)
            description = (parser.description or "").split(". ")[0].rstrip(".")
            index.append(f"- [`{parser.prog}`]({Path(page_name(parser.prog)).name}): {description}")
            stack = list(_subcommands(parser).values()) + stack
        index.append("")
    pages[NAV_PLACEHOLDER] = "\n".join(index)
    return pages


# ----------------------------------------------------------------------------------
# score.json from its schema


def _type_of(node: dict) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in node:
        return " or ".join(_type_of(option) for option in node["anyOf"])
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    kind = node.get("type", "any")
    if kind == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(_type_of(item) for item in node["prefixItems"]) + "]"
        return f"array of {_type_of(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        return f"object of {_type_of(node['additionalProperties'])}"
    return str(kind)


def _field_table(section: dict) -> list[str]:
    required = set(section.get("required", ()))
    rows = ["| field | type | audience | always there |", "|---|---|---|---|"]
    for key, node in section.get("properties", {}).items():
        audience = node.get("x-audience", "")
        rows.append(f"| `{key}` | {_type_of(node)} | {audience} | {'yes' if key in required else ''} |")
    return rows


def schema_page() -> str:
    schema = json.loads((ROOT / "scoring" / "score.schema.json").read_text())
    lines = [
        "# score.json",
        "",
        "*Generated from `scoring/score.schema.json`, the published JSON Schema (itself generated from "
        "`scoring.record.types`; `python -m scoring.record` prints it), when the documentation is built.*",
        "",
        f"**{schema['title']}.** Every field says its audience: **public** (what a participant may receive: "
        "their report, a published leaderboard, a public copy of the record) or **organisers** (seeds, the "
        "organisers' paths and machines). An organisers-only section hides everything under it. Organisers-only "
        "fields are never required, so the participants' copy is a valid score.json of the same version. "
        "Pages (`report.html`, Codabench's detailed results) render the public fields only.",
        "",
        "## score.json",
        "",
    ]
    if schema.get("description"):
        lines += [schema["description"], ""]
    lines += _field_table(schema)
    for name, section in schema.get("$defs", {}).items():
        lines += ["", f"## {name}", ""]
        if section.get("description"):
            lines += [section["description"], ""]
        if section.get("properties"):
            lines += _field_table(section)
        else:
            lines += [f"Type: {_type_of(section)}."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------
# The starter notebook


def notebook_page() -> str:
    import nbformat
    from nbconvert import MarkdownExporter

    notebook = nbformat.read(ROOT / "notebooks" / "starter.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and "submission" in cell.metadata.get("tags", []):
            cell.source = "# the cell tagged `submission`: your submission\n" + cell.source
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            cell.source = "# the cell tagged `parameters` (python -m starter_kit.notebook run -p NAME=VALUE)\n" + (
                cell.source
            )
    body, _ = MarkdownExporter().from_notebook_node(notebook)
    intro = (
        '!!! note "The file itself"\n'
        "    This page is `notebooks/starter.ipynb` as the repository holds it, converted when the "
        "documentation is built (its cells not run). Open it in Jupyter (`.venv/bin/jupyter lab notebooks/`), or "
        "run it headless: `make demo` writes an executed copy, with its figures, into `results/notebook/`.\n\n"
    )
    return intro + body


def pages() -> dict[str, str]:
    """Every generated page, by its path under docs/."""
    return {**cli_pages(), SCHEMA_PAGE: schema_page(), NOTEBOOK_PAGE: notebook_page()}


# ----------------------------------------------------------------------------------
# The MkDocs hook


def _nav_with_commands(nav: list) -> list:
    """``nav`` with the placeholder entry replaced by a section: the index, then one page per command."""
    entries = [NAV_PLACEHOLDER] + [{f"{prog.removeprefix('python -m ')}": page_name(prog)} for prog, _ in commands()]
    out: list = []
    for item in nav:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if value == NAV_PLACEHOLDER:
                out.append({title: entries})
            elif isinstance(value, list):
                out.append({title: _nav_with_commands(value)})
            else:
                out.append(item)
        else:
            out.append(item)
    return out


def on_config(config):  # noqa: ANN001, ANN201 - MkDocs' hook signature
    import sys

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    config["nav"] = _nav_with_commands(config["nav"])
    return config


def on_files(files, config):  # noqa: ANN001, ANN201 - MkDocs' hook signature
    from mkdocs.structure.files import File

    for path, content in pages().items():
        files.append(File.generated(config, path, content=content))
    return files
