"""The participants' and the organisers' quickstarts, run end to end exactly as their pages write them.

Each ```` ```bash ```` block of ``docs/participants/quickstart.md`` and
``docs/organisers/quickstart.md`` runs, in order, in a fresh folder laid out like a clone
(``notebooks/``, ``.venv`` linked to this one's), with the same commands and the same
paths; only the scale shrinks, by rewriting the numbers a reader would choose for real
(``TINY``): N, and two epochs for the splits' recipe. At a tiny N the submission's load
weighs on every run, as the organisers' page warns, so ``score`` gets ``--time-limit 60``.
The organisers score the ``submission.zip`` the participants' path packed.

About a minute and a half of CPU: too slow for ``make test``, so it runs only with
``KIT_QUICKSTART_PATHS=1``, which ``.ci/run`` sets in a step of its own.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTICIPANTS = ROOT / "docs" / "participants" / "quickstart.md"
ORGANISERS = ROOT / "docs" / "organisers" / "quickstart.md"
# The set-up a clone needs once; the test runs in this checkout's environment instead.
SET_UP = ("python3 -m venv ",)
TINY_N = {"1024": "6", "512": "3", "64": "6", "32": "3"}  # 2N references: a ceiling at N needs halves of 3 or more

pytestmark = pytest.mark.skipif(
    os.environ.get("KIT_QUICKSTART_PATHS") != "1",
    reason="about 90 s of CPU: set KIT_QUICKSTART_PATHS=1 (.ci/run does, in a step of its own)",
)


def bash_blocks(page: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", page.read_text(), re.S)


def tiny(line: str) -> str:
    """The same command at a tiny scale: N shrunk, two epochs, a generous limit."""
    line = re.sub(r"--n-models (\d+)", lambda m: f"--n-models {TINY_N.get(m.group(1), m.group(1))}", line)
    if " -m data_prep build " in line:
        line += " --epochs 2 --quiet"
    if " -m scoring references " in line or " -m scoring score " in line:
        line += " --quiet"
    if " -m scoring score " in line:
        line += " --time-limit 60"
    return line


def run_page(page: Path, folder: Path, env: dict[str, str]) -> list[str]:
    """Every command of the page's bash blocks, in one shell, as a reader types them (an ``export`` lasts)."""
    ran = []
    for block in bash_blocks(page):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#") and not line.startswith(SET_UP):
                ran.append(line)
    script = "".join(f"echo {shlex.quote('+ ' + line)} >&2\n{tiny(line)}\n" for line in ran)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{page.name}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return ran


LAYOUTS = ROOT / "docs" / "reference" / "layouts.md"


def layout(section: str) -> list[str]:
    """The glob patterns of the files a section of the layouts page lists (``<seed>`` -> ``*``, braces expanded)."""
    text = LAYOUTS.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    patterns = []
    for line in text.splitlines():
        if not line.startswith("    ") or line.startswith("     "):
            continue  # not a listing line, or a description's continuation
        names = re.split(r"  +", line.strip())[0].removesuffix(" with SCORING_SECRET set: the run seeds")
        for name in names.split(", "):
            name = re.sub(r"<[^>]+>", "*", name.split(" with ")[0])
            braces = re.search(r"\{([^}]+)\}", name)
            options = braces.group(1).split(",") if braces else [""]
            patterns += [name.replace(braces.group(0), option) if braces else name for option in options]
    assert patterns, f"no files listed under {section!r}"
    return patterns


def holds_its_layout(folder: Path, section: str, leave_out: tuple[str, ...] = ()) -> None:
    """Every file the layouts page lists for ``section`` is in ``folder`` (the page says what commands write)."""
    for pattern in layout(section):
        if pattern not in leave_out:
            assert list(folder.glob(pattern)), f"{folder} has no {pattern}, which the layouts page lists"


def clone_like(folder: Path) -> Path:
    """A folder laid out like a fresh clone: the notebook, and the environment at `.venv`."""
    (folder / "notebooks").mkdir(parents=True)
    (folder / "notebooks" / "starter.ipynb").write_bytes((ROOT / "notebooks" / "starter.ipynb").read_bytes())
    (folder / ".venv").symlink_to(Path(sys.prefix))
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    environment = {k: v for k, v in os.environ.items() if k != "SCORING_SECRET"}
    return {**environment, "HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_the_participants_path(tmp_path_factory, env):
    folder = clone_like(tmp_path_factory.mktemp("participant"))
    ran = run_page(PARTICIPANTS, folder, env)
    assert [line.split()[2] for line in ran] == [
        "data_prep",
        "scoring",
        "starter_kit.notebook",
        "scoring",
        "starter_kit.notebook",
    ]
    assert (folder / "results" / "scores" / "starter-public" / "score.json").is_file()
    assert (folder / "results" / "notebook" / "starter.ipynb").is_file()
    # the page runs the notebook before scoring: its last section looked for the report where `score` then wrote it
    executed = (folder / "results" / "notebook" / "starter.ipynb").read_text()
    assert "no local score yet in ../results/scores/starter-public:" in executed  # relative to notebooks/
    assert "no baseline run (BASELINES_TO_RUN is empty)" in executed
    assert (folder / "submission.zip").is_file()
    holds_its_layout(folder / "results" / "digits-public", "A split directory")
    holds_its_layout(next((folder / "results" / "references").iterdir()), "A reference folder")
    scored = folder / "results" / "scores" / "starter-public"
    holds_its_layout(scored, "A score folder", leave_out=("organisers/seeds.json",))  # no secret here


def test_the_organisers_path(tmp_path_factory, env):
    folder = clone_like(tmp_path_factory.mktemp("organiser"))
    participant = tmp_path_factory.getbasetemp() / "participant0" / "submission.zip"
    if participant.is_file():  # what the participants' path handed in
        (folder / "submission.zip").write_bytes(participant.read_bytes())
    else:  # run alone: pack it as that path does
        pack = [".venv/bin/python", "-m", "starter_kit.notebook", "pack", "notebooks/starter.ipynb"]
        subprocess.run([*pack, "--out", "submission.zip"], cwd=folder, env=env, check=True, capture_output=True)
    ran = run_page(ORGANISERS, folder, env)
    assert any("SCORING_SECRET" in line for line in ran)
    secret = Path(env["HOME"]) / ".scoring-secret"
    assert secret.is_file() and secret.stat().st_mode & 0o077 == 0  # readable by its owner only
    for split in ("public", "private"):
        assert (folder / "results" / "scores" / "team-a" / f"3-{split}" / "organisers" / "seeds.json").is_file()
    holds_its_layout(folder / "results" / "scores" / "team-a" / "3-private", "A score folder")  # with the secret
    holds_its_layout(folder / "public", "A published tree")
    assert sorted(p.name for p in (folder / "public").iterdir()) == ["leaderboard.csv", "leaderboard.html", "reports"]
    assert sorted(p.name for p in (folder / "public" / "reports").iterdir()) == ["001-private.html", "001-public.html"]
    assert (folder / "results" / "scores" / "leaderboard.html").is_file()
