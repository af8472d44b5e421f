"""The documentation site: its generated reference matches the commands, its guides' commands parse, it builds.

The reference pages come from ``docs/hooks/reference.py`` at build time; these tests hold them
to the commands themselves (every ``--help``, run as a user runs it), hold every command the
guides and README write to the parsers (a renamed or removed flag fails here, not in a
reader's shell), and build the site strictly and browse it in headless Chromium (navigation
and search; skipped without MkDocs or Chromium). The guides' commands are *run* end to end
by ``tests/test_quickstart_paths.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# each command line's module, as `python -m` names it, and the module whose main() runs it
ENTRY_POINTS = {
    "data_prep": "data_prep.__main__",
    "scoring": "scoring.cli",
    "starter_kit.notebook": "starter_kit.notebook",
    "scoring.record": "scoring.record.__main__",
}
PARSERS = {
    "data_prep": "data_prep.__main__",
    "scoring": "scoring.cli.parser",
    "starter_kit.notebook": "starter_kit.notebook",
    "scoring.record": "scoring.record.__main__",
}


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", DOCS / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


def code_block(page: str, opener: str = "```text") -> str:
    start = page.index(opener) + len(opener) + 1
    return page[start : page.index("\n```", start)]


def run_help(prog: str) -> str:
    """``prog --help`` run in this process, as a terminal of the reference's width prints it."""
    words = prog.removeprefix("python -m ").split()
    main: Callable[[list[str]], int] = importlib.import_module(ENTRY_POINTS[words[0]]).main
    out = io.StringIO()
    with hook._columns(hook.HELP_COLUMNS), contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit:
        main([*words[1:], "--help"])
    assert exit.value.code == 0, prog
    return out.getvalue()


def test_every_commands_help_is_its_reference_page():
    pages = hook.cli_pages()
    progs = [prog for prog, _ in hook.commands()]
    assert len(progs) >= 19 and len(set(progs)) == len(progs)
    for prog in progs:
        page = pages[hook.page_name(prog)]
        assert code_block(page) == run_help(prog).rstrip("\n"), prog
        assert f"[`{prog}`]" in pages[hook.NAV_PLACEHOLDER], f"{prog} is missing from the commands' index"
    # the generated navigation lists every page, so that no command is left out of the site
    nav = json.dumps(hook._nav_with_commands([{"Commands": hook.NAV_PLACEHOLDER}]))
    assert all(hook.page_name(prog) in nav for prog in progs)


def test_the_entry_point_prints_the_same_help():
    """``python -m scoring --help`` through the interpreter, as a user types it: plain text, not a docstring."""
    done = subprocess.run(
        [sys.executable, "-m", "scoring", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": str(hook.HELP_COLUMNS), "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.rstrip("\n") == code_block(hook.cli_pages()["reference/cli/scoring.md"])
    assert "``" not in done.stdout and ":mod:" not in done.stdout


def test_every_option_of_every_command_says_what_it_does_and_its_default():
    for prog, parser in hook.commands():
        assert parser.description, f"{prog} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{prog} {name} has no help"
            shown = action.default not in (None, False, [], (), argparse.SUPPRESS) and action.option_strings
            if shown and not isinstance(action.default, bool):
                assert "default" in action.help, f"{prog} {name} hides its default {action.default!r}"


def test_the_mismatches_found_are_gone():
    pages = hook.cli_pages()
    usage = code_block(pages["reference/cli/scoring-score.md"]).split("\n\n")[0]
    assert "--team TEAM" in usage and "[--team" not in usage  # required, and shown so
    from scoring.bench.rehearsal import CPU_EPOCHS

    assert f"{CPU_EPOCHS} on the CPU" in pages["reference/cli/scoring-rehearse.md"]
    recompute = code_block(pages["reference/cli/scoring-recompute.md"])
    assert "OUT" in recompute and "folder" not in recompute.split("\n\n")[0]  # one name for its argument
    metric = code_block(pages["reference/cli/scoring-metric.md"])
    assert "--threads" in metric and "--jobs" not in metric
    references = code_block(pages["reference/cli/scoring-references.md"])
    assert "K x CPUS" in " ".join(references.split()) and "K x GPUS" in " ".join(references.split())
    record = run_help("python -m scoring.record")
    assert len(record.splitlines()) < 15 and "$defs" not in record  # a help, not the schema
    assert "default" in pages["reference/cli/data-prep-build.md"]


# ----------------------------------------------------------------------------------
# Every command the guides write parses with the real parsers.


def guide_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every ``python -m <kit module>`` line in a code block of docs/ and README."""
    found = []
    files = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
    for path in files:
        text = path.read_text()
        blocks = re.findall(r"```[a-z]*\n(.*?)\n```", text, re.S) + [
            "\n".join(line[4:] for line in block.splitlines())
            for block in re.findall(r"(?:^|\n\n)((?:    [^\n]*\n?)+)", re.sub(r"```.*?```", "", text, flags=re.S))
        ]
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" && ")[0] if "python -m" in line.split(" && ")[0] else line
                match = re.search(r"python3? -m (data_prep|scoring\.record|scoring|starter_kit\.notebook)( .*|$)", line)
                if match and not line.lstrip().startswith(("def ", "#")):
                    words = shlex.split(match.group(2).split(" # ")[0].split(" | ")[0], comments=True)
                    found.append((f"{path.relative_to(ROOT)}: {line.strip()}", [match.group(1), *words]))
    return found


def test_every_command_the_guides_write_parses():
    commands = guide_commands()
    assert len(commands) >= 30
    for where, (module, *argv) in commands:
        parser = importlib.import_module(PARSERS[module]).parser()
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                parser.parse_args(argv)
        except (SystemExit, Exception) as error:  # noqa: BLE001 - argparse exits, the scorer's parser raises
            pytest.fail(f"{where}\n  does not parse: {error}")


# ----------------------------------------------------------------------------------
# The generated pages' content.


def test_score_json_page_lists_every_field_with_its_audience():
    schema = json.loads((ROOT / "scoring" / "score.schema.json").read_text())
    page = hook.schema_page()
    sections = {"score.json": schema, **schema["$defs"]}
    for name, section in sections.items():
        for key, node in section.get("properties", {}).items():
            assert f"| `{key}` |" in page and f"| {node['x-audience']} |" in page, (name, key)
    assert "| organisers |" in page and "| public |" in page


def test_the_notebook_page_is_the_notebook():
    import nbformat

    notebook = nbformat.read(ROOT / "notebooks" / "starter.ipynb", as_version=4)
    page = hook.notebook_page()
    submission = next(c for c in notebook.cells if "submission" in c.metadata.get("tags", []))
    assert submission.source in page and "pack notebooks/starter.ipynb --out submission.zip" in page


def test_the_protocol_and_metric_pages_are_the_specs_words():
    for name in ("protocol.md", "metric.md"):
        page = (DOCS / name).read_text()
        assert page.startswith("# The ") and len(page.splitlines()) > 90
    # the docstrings and README send readers to these pages, never to a specs folder outside the repository
    sources = [p for folder in ("scoring", "starter_kit", "data_prep") for p in (ROOT / folder).rglob("*.py")]
    for path in [*sources, ROOT / "README.md"]:
        text = path.read_text()
        assert "/".join(("shared", "spec")) not in text, path
        assert not re.search(
            r"(?<![/\w])(protocol|metric)\.md",
            text.replace("docs/protocol.md", "").replace("docs/metric.md", "").replace('"metric.md"', ""),
        ), path


def test_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for target in re.findall(r"\]\(((?:docs|notebooks|scoring)/[^)#]+)", readme):
        assert (ROOT / target).is_file(), f"README links to {target}, which does not exist"


# ----------------------------------------------------------------------------------
# The site itself, built and browsed.


def _offline_prefix() -> list[str]:
    for prefix in (["unshare", "--net"], ["unshare", "--user", "--map-root-user", "--net"]):
        if shutil.which(prefix[0]) and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    pytest.skip("cannot turn the network off here: `unshare --net` is not permitted")


def test_the_site_builds_strictly_and_its_navigation_and_search_work(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if importlib.util.find_spec("mkdocs") is None or not mkdocs.is_file():
        pytest.skip("MkDocs is not installed: `make docs` installs the docs extra (.ci/run does)")
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    site = tmp_path / "site"
    built = subprocess.run(
        [str(mkdocs), "build", "--strict", "--quiet", "--site-dir", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (site / "reference" / "cli" / "scoring-score" / "index.html").is_file()
    # the API pages document every public function and class of each facade's __all__
    for module_name, page in (
        ("scoring.metric", "metric"),
        ("starter_kit.submission", "submission"),
        ("starter_kit.evaluation", "evaluation"),
        ("starter_kit.baselines", "baselines"),
    ):
        module = importlib.import_module(module_name)
        html = (site / "reference" / "api" / page / "index.html").read_text()
        for name in module.__all__:
            if callable(getattr(module, name)) and (page != "baselines" or name in ("get_baseline", "register")):
                assert f'id="{module_name}.{name}"' in html, f"{module_name}.{name} is missing from its API page"
    if not browser:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; .ci/run installs it)")
    if not shutil.which("ip"):
        pytest.skip("no `ip` here to bring up the private namespace's loopback (Debian: iproute2)")
    # The browser and the page's server share a network namespace of their own: loopback only.
    command = [*_offline_prefix(), "sh", "-c", 'ip link set lo up && exec "$@"', "--"]
    command += [sys.executable, str(ROOT / "tests" / "docs_browser.py"), str(site), browser, "sandbox"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["title"] == "Machine-unlearning competition kit"
    pages = {re.sub(r"^http://[^/]+/", "", link).split("#")[0] for link in seen["links"]}
    for expected in ("participants/quickstart/", "organisers/quickstart/", "explanation/sealed/", "metric/"):
        assert expected in pages, f"the navigation has no link to {expected}"
    assert "reference/cli/scoring-codabench-export/" in pages and "reference/score-json/" in pages
    assert seen["followed"] and seen["followed_heading"].startswith("python -m scoring score")
    assert seen["followed_active"] == "scoring score"  # the navigation marks where the reader is
    assert any("/explanation/sealed/" in link for link in seen["results"]), seen["results"]
    assert seen["results_meta"] and "matching" in seen["results_meta"]
