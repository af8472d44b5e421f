"""report.html and leaderboard.html: what they show, what they never show, and how they look in a browser.

The records are real: a fine-tune scored at N = 4, a submission that fails and one that
is rejected for time, on the tiny test split. Fields that issue 11 adds (intervals,
ceiling, diagnostics, auxiliary metrics) are added to copies of the real record in the
shapes the renderer accepts. The browser tests open the pages from file:// in headless
Chromium inside ``unshare --net`` (no network at all) and read the DOM after scripts
ran; they skip, saying why, where there is no Chromium or no network namespace.
"""

from __future__ import annotations

import base64
import copy
import html as htmllib
import json
import os
import re
import shutil
import subprocess
import tempfile
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import IPython.display
import markupsafe
import numpy as np
import pandas as pd
import pytest
from submissions import _fixtures as kit

from scoring.html import pages as html_report
from scoring.html.pages import fmt, render_leaderboard, render_report, report_links
from scoring.outputs import SECRET_ENV
from scoring.ranking.leaderboard import collect_scores, leaderboard, not_ranked

SLOW = (
    "import time\n\ndef unlearning(net, retain_loader, forget_loader, val_loader):\n"
    "    time.sleep(0.3)\n    return net\n"
)
BROKEN = "def unlearning(net, retain_loader, forget_loader, val_loader):\n    return None\n"


# ----------------------------------------------------------------------------------
# Fixtures: three real scorings.


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """{name: (score folder, record, arrays)} for a scored, a failed and a rejected submission."""
    split, refs = kit.split_dir(tmp_path_factory), kit.refs_dir(tmp_path_factory)
    root = tmp_path_factory.mktemp("html-report")
    results = root / "scores"
    shutil.copytree(kit.fine_tune_score_dir(tmp_path_factory), results / "fine-tune")  # scored with no secret set, as:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(SECRET_ENV, raising=False)  # run seeds land in score.json: the pages must still hide them
        kit.score(split, refs, kit.write_py(root, BROKEN, "broken.py"), results / "broken", n_models=2)
        kit.score(split, refs, kit.write_py(root, SLOW, "slow.py"), results / "slow", n_models=4, time_limit=0.2)
    found = {}
    for name in ("fine-tune", "broken", "slow"):
        folder = results / name
        record = json.loads((folder / "score.json").read_text())
        arrays = {p.stem: np.load(p) for p in folder.glob("*.npy")}
        found[name] = (folder, record, arrays)
    assert found["fine-tune"][1]["status"] == "scored"
    assert found["broken"][1]["status"] == "failed" and found["slow"][1]["status"] == "rejected"
    return found


def sealed_strings(record: dict) -> list[str]:
    """What must never appear on a page: run seeds and the organisers' paths."""
    strings = [str(s) for s in record.get("run_seeds", [])]
    strings += [str(run["seed"]) for run in record.get("runs", []) if "seed" in run]
    strings += [record["split"]["dir"], record["references"]["dir"], record["submission"]["path"]]
    return strings


STATISTICS = (
    "intervals",
    "uncertainty",
    "accuracy_intervals",
    "confidence_level",
    "ceiling",
    "normalised_score",
    "normalised_score_note",
    "diagnostics",
    "auxiliary",
)
RUN_KEYS = ("index", "seed", "seconds", "reported_seconds", "retain_accuracy", "forget_accuracy", "test_accuracy")


def without_statistics(record: dict) -> dict:
    """The record as a scorer without issue 11's fields writes it."""
    record = {k: copy.deepcopy(v) for k, v in record.items() if k not in STATISTICS}
    record["runs"] = [{k: v for k, v in run.items() if k in RUN_KEYS} for run in record["runs"]]
    return record


def with_statistics(record: dict) -> dict:
    """The record plus issue 11's fields, laid out as scoring.assess.recompute writes them, with known values."""
    record = without_statistics(record)
    n_runs = len(record["runs"])
    record["confidence_level"] = 0.95
    record["intervals"] = {
        "score": [0.0511, 0.0993],
        "F": [0.0522, 0.1001],
        "RA_U": [0.9971, 0.9989],
        "normalised_score": [0.2788, 0.5344],
    }
    record["uncertainty"] = {
        "method": "bootstrap + jackknife",
        "n_resamples": 9999,
        "random_state": 2023,
        "models_only": {"low": 0.061, "high": 0.089, "standard_error": 0.007},
    }
    record["ceiling"] = {
        "value": 0.1873,
        "low": 0.1701,
        "high": 0.2045,
        "splits": [0.18, 0.19],
        "n_models": 4,
        "n_references": 8,
        "note": "halves of 4 models from 8 references",
    }
    record["normalised_score"] = 0.4025
    record["diagnostics"] = {
        "per_run": {"distance": [0.61 + 0.01 * k for k in range(n_runs)], "group": [k % 2 for k in range(n_runs)]},
        "flags": ["mixture: the runs fall into two clearly different groups of 2 and 2"],
        "identical": False,
        "mixture": True,
        "n_distinct_runs": n_runs,
        "statistic": "Kolmogorov-Smirnov distance to the references",
    }
    record["auxiliary"] = {
        "klom": {
            "mean": 9.8765,
            "median": 10.47,
            "percentiles": {"5": 7.6, "95": 10.95},
            "n_bins": 20,
            "paper": "Georgiev et al. 2024, Attribute-to-Delete (arXiv:2410.23232)",
            "better": "lower",
        },
        "ulira": {"mean": 0.8185, "median": 0.875, "better": "closer to 0.5"},
    }
    return record


def visible_text(page: str) -> str:
    """The page's text without tags (and without the inline figures' data)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", page))
    return re.sub(r"\s+", " ", text)


# ----------------------------------------------------------------------------------
# The report.


def test_a_scored_report_shows_status_score_terms_runs_and_hashes(scored):
    _, record, arrays = scored["fine-tune"]
    page = render_report(record, arrays)
    text = visible_text(page)
    assert 'id="status">scored<' in page
    assert fmt(record["score"]) in text and fmt(record["F"]) in text
    assert fmt(record["retain_ratio"]) in text and fmt(record["test_ratio"]) in text
    for key in ("RA_U", "RA_R", "TA_U", "TA_R", "FA_U", "FA_R"):
        assert fmt(record[key]) in text, key
    assert f"N = {record['N']}" in text and f"|S| = {record['n_forget']}" in text
    for value in record["sha256"].values():
        assert value in text
    assert record["kit_version"] in text
    assert "sealed" in text and "Not an official score" not in text
    # one row per run, with its time and accuracies; the epsilon, time and accuracy figures
    rows = re.findall(r"<tr>(.*?)</tr>", page.split('id="run-table"')[1].split("</table>")[0], flags=re.S)
    assert len(rows) == 1 + record["N"]
    first = visible_text(rows[1]).split()
    assert first[:2] == ["0", fmt(record["runs"][0]["seconds"])] and fmt(record["runs"][0]["retain_accuracy"]) in first
    assert page.count('src="data:image/svg+xml;base64,') == 3


def test_no_page_shows_run_seeds_organiser_paths_or_reference_outputs(scored):
    for name, (_folder, record, arrays) in scored.items():
        assert record["run_seeds"], "the fixture must hold seeds for this test to mean anything"
        page = render_report(with_statistics(record) if record["runs"] else record, arrays)
        for secret in sealed_strings(record):
            assert secret not in page, (name, secret)
        for figure in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page):
            svg = base64.b64decode(figure).decode()
            assert not any(secret in svg for secret in sealed_strings(record))
    # confidence arrays beside score.json (the reference models' outputs) change nothing on the page
    _, record, arrays = scored["fine-tune"]
    assert render_report(record, arrays) == render_report(record, {"epsilons": arrays["epsilons"]})


def test_pages_are_self_contained(scored):
    _, record, arrays = scored["fine-tune"]
    page = render_report(with_statistics(record), arrays)
    assert "<link" not in page and "@import" not in page and "<script" not in page
    for target in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert target.startswith(("data:", "#")), target
    for figure in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page):
        root = ElementTree.fromstring(base64.b64decode(figure))  # a well-formed SVG document
        assert root.tag.endswith("svg") and b"<text" not in base64.b64decode(figure)  # glyphs as paths: no font needed


@pytest.mark.parametrize("name", ["broken", "slow"])
def test_rejected_and_failed_reports_show_the_status_and_reason(scored, name):
    _, record, arrays = scored[name]
    page = render_report(record, arrays)
    assert f'id="status">{record["status"]}<' in page
    assert str(markupsafe.escape(record["reason"])) in page
    assert 'id="score-value"' not in page and 'id="ceiling"' not in page
    text = visible_text(page)
    assert html_report.short(record["time"]["limit_seconds"], 3) + " s" in text
    assert record["sha256"]["submission"] in text
    if record["runs"]:
        assert 'id="run-table"' in page
    # and a bare record, as an older scorer or an early failure writes it
    bare = {"status": record["status"], "reason": record["reason"], "submission": {"name": "x.py"}, "split": {}, "N": 2}
    assert record["status"] in render_report(bare)


def test_an_unsealed_score_says_it_is_not_official(scored):
    _, record, arrays = scored["fine-tune"]
    assert 'id="unsealed"' not in render_report(record, arrays)
    page = render_report({**record, "sealed": False}, arrays)
    assert 'id="unsealed"' in page and "Not an official score" in page and "unsealed" in visible_text(page)


def test_statistics_fields_are_shown_when_present_and_absent_otherwise(scored):
    _, record, arrays = scored["fine-tune"]
    plain = render_report(without_statistics(record), arrays)
    for section in ('id="ceiling"', 'id="uncertainty"', 'id="auxiliary"', 'id="diagnostics"', "mixture:", "% interval"):
        assert section not in plain
    page = render_report(with_statistics(record), arrays)
    text = visible_text(page)
    assert "95% interval [0.0511, 0.0993]" in text  # the score's
    assert "95% interval [0.0522, 0.1001]" in text  # F's
    assert "[0.9971, 0.9989]" in text  # RA_U's, in the accuracy table
    assert "0.1873" in text and "[0.1701, 0.2045]" in text and "0.4025" in text and "[0.2788, 0.5344]" in text
    assert "mixture: the runs fall into two clearly different groups of 2 and 2" in text
    assert "mixes two algorithms" in text  # why it matters
    run_table = visible_text(page.split('id="run-table"')[1].split("</table>")[0])
    assert "distance" in run_table and "group" in run_table and fmt(0.62) in run_table  # per-run columns
    assert "Kolmogorov-Smirnov distance to the references" in text
    assert "klom" in text and "9.8765" in text and "lower is better" in text and "Attribute-to-Delete" in text
    assert "0.8185" in text and "closer to 0.5 is better" in text
    assert 'id="uncertainty"' in page and "bootstrap + jackknife" in text and "models_only" in text
    # an interval is read where score.json records it, never guessed from other spellings
    shown = visible_text(render_report({**without_statistics(record), "score_interval": [0.0511, 0.0993]}, arrays))
    assert "[0.0511, 0.0993]" not in shown
    older = {
        **without_statistics(record),
        "diagnostics": {"distance": [0.5] * record["N"], "mixture": True},
        "ceiling": 0.19,  # not the record's shape (a section): never shown as a ceiling
        "normalised_score": [0.39, 0.29, 0.5],
    }
    shown = visible_text(render_report(older, arrays))
    assert "mixture: the runs fall into two clearly different groups" in shown
    assert "0.1900" not in shown and "[0.2900, 0.5000]" not in shown


def test_the_ceiling_box_names_its_n_and_a_ceiling_at_another_n_gets_no_normalised_score(scored):
    _, record, arrays = scored["fine-tune"]
    text = visible_text(render_report(with_statistics(record), arrays))
    assert "ceiling at N = 4 · retraining vs retraining" in text and "reaches at N = 4 and this |S|" in text
    halved = with_statistics(record)
    halved["ceiling"]["n_models"] = 2
    halved["normalised_score"] = None
    del halved["intervals"]["normalised_score"]
    halved["normalised_score_note"] = "no normalised score: the ceiling was measured at N = 2, not at this N = 4"
    page = render_report(halved, arrays)
    text = visible_text(page)
    assert "ceiling at N = 2 · retraining vs retraining" in text and 'id="normalised-note"' in page
    assert halved["normalised_score_note"] in text and "0.4025" not in text


NOTE = "approximate at N = 4: the coverage of the intervals of the score, F, the normalised score and the ceiling is"


def test_an_approximate_interval_says_so_next_to_the_score_and_in_the_uncertainty_section(scored):
    from scoring.html.summary import summary_text

    _, record, arrays = scored["fine-tune"]
    note = record["intervals"]["note"]
    assert note.startswith(NOTE)  # the scorer's record at N = 4 carries it
    assert note in summary_text(record)  # what `score` prints, under the score
    page = render_report(record, arrays)
    assert note in visible_text(page.split('id="score"')[1].split("</section>")[0]) and 'id="interval-note"' in page
    noted = with_statistics(record)
    noted["intervals"]["note"] = note
    page = render_report(noted, arrays)
    card = visible_text(page.split('id="score"')[1].split("</section>")[0])
    for marked in (
        "95% interval [0.0511, 0.0993] *",  # the score's
        "95% interval [0.0522, 0.1001] *",  # F's
        "retraining lands in [0.1701, 0.2045] *",  # the ceiling's
        "interval [0.2788, 0.5344] *",  # the normalised score's
    ):
        assert marked in card, marked
    assert f"* {note}" in card and 'id="uncertainty-note"' in page
    assert "[0.9971, 0.9989] *" not in visible_text(page)  # RA_U's: an accuracy's, which the note does not name
    plain = render_report(with_statistics(record), arrays)  # no note: as at N >= 16
    assert note not in visible_text(plain) and "] *" not in visible_text(plain) and 'id="interval-note"' not in plain


def test_the_epsilon_histogram_falls_back_to_the_recorded_bin_counts(scored):
    _, record, arrays = scored["fine-tune"]
    assert render_report(record, {}).count("data:image/svg+xml") == 3


def test_text_from_the_record_is_escaped(scored):
    _, record, arrays = scored["broken"]
    hostile = {
        **record,
        "submission": {"name": "<script>alert(1)</script>.py"},
        "reason": "<img src=x onerror=alert(1)>",
    }
    page = render_report(hostile)
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;script&gt;" in page


# ----------------------------------------------------------------------------------
# The leaderboard.


def synthetic_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for n, names in ((32, ["alpha.py", "bravo.ipynb", "charlie.py"]), (128, ["alpha.py", "delta.py"])):
        for k, name in enumerate(names):
            score = 0.11 - 0.03 * k
            rows.append(
                {
                    "rank": k + 1,
                    "dataset": "digits",
                    "N": n,
                    "submission": name,
                    "sha256": f"{k:012d}",
                    "public score": score + 0.004,
                    "public score_low": score - 0.02,
                    "public score_high": score + 0.03,
                    "public F": score * 1.01,
                    "public sealed": True,
                    "private score": score,
                    "private score_low": score - 0.021,
                    "private score_high": score + 0.022,
                    "private F": score * 1.02,
                    "private sealed": k != 1,
                    "overlaps_above": k == 2,
                }
            )
    others = pd.DataFrame(
        [
            {
                "submission": "echo.py",
                "dataset": "digits",
                "split": "private",
                "N": 32,
                "status": "rejected",
                "reason": "mean run time 9.1 s is over the limit 2.0 s",
            }
        ]
    )
    return pd.DataFrame(rows), others


def test_the_leaderboard_groups_by_n_and_shows_intervals_sealing_and_links():
    table, others = synthetic_table()
    links = {"digits/32/alpha.py/private": "alpha-private/report.html", "digits/32/echo.py/private": "echo/report.html"}
    table["public path"] = "/home/organiser/scores/x"  # a column of organiser paths is never shown
    page = render_leaderboard(table, others, links)
    text = visible_text(page)
    assert "/home/organiser" not in page
    assert "digits · N = 32" in text and "digits · N = 128" in text
    assert "never ranked together" in text
    assert page.index("digits · N = 32") < page.index("charlie.py") < page.index("digits · N = 128")
    assert "public" in text and "private" in text
    assert "[0.0900, 0.1400]" in text and "[0.0890, 0.1320]" in text  # the first row's public and private intervals
    assert "score_low" not in text and "score_high" not in text  # shown inside the score, not as columns
    assert 'class="badge small unsealed"' in page and "Unsealed entries are not official" in text
    assert "≈" in text and "within noise" in text
    assert 'href="alpha-private/report.html"' in page and 'href="echo/report.html"' in page
    assert "Not ranked" in text and "echo.py" in text and "mean run time 9.1 s is over the limit" in text
    assert page.count("<script>") == 1 and "src=" not in page


def test_the_leaderboard_marks_approximate_intervals_and_says_why_below_their_group():
    table, others = synthetic_table()
    note = "approximate at N = 32: the coverage of the intervals ... is measured at N >= 16 only"
    table["public score_note"] = [note if n == 32 else None for n in table["N"]]
    page = render_leaderboard(table, others)
    text = visible_text(page)
    assert "score_note" not in text  # folded into the score, not a column
    at_32 = visible_text(page.split("digits · N = 32")[1].split("digits · N = 128")[0])
    at_128 = visible_text(page.split("digits · N = 128")[1].split("Not ranked")[0])
    assert "[0.0900, 0.1400] *" in at_32 and at_32.count(note) == 1  # each interval marked, the note said once
    assert at_32.count("] *") == 3 and "[0.0890, 0.1320] *" not in at_32  # the private score's have no note
    assert "*" not in at_128 and note not in at_128


def test_the_banner_names_the_private_score_only_where_one_is_shown():
    table, others = synthetic_table()
    assert "the private score decides" in visible_text(render_leaderboard(table, others))
    public_only = table[[c for c in table.columns if not c.startswith("private ")]]
    text = visible_text(render_leaderboard(public_only, others.iloc[0:0]))
    assert "private" not in text and "Within a group the public score decides." in text


def test_the_leaderboard_of_real_scores_links_each_report(scored, tmp_path):
    results = next(iter(scored.values()))[0].parent
    for folder, record, arrays in scored.values():
        (folder / html_report.REPORT_FILE).write_text(render_report(record, arrays))
    scores = collect_scores(results)
    links = report_links(scores, results)
    page = render_leaderboard(leaderboard(scores), not_ranked(scores), links)
    text = visible_text(page)
    assert "digits · N = 4" in text and "fine_tune.py" in text and fmt(scored["fine-tune"][1]["score"]) in text
    assert f"references {scored['fine-tune'][1]['sha256']['reference_set'][:12]}" in text  # the group's reference set
    assert "broken.py" in text and "slow.py" in text and "failed" in text and "rejected" in text
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert hrefs and all(not h.startswith("/") and (results / h).is_file() for h in hrefs)
    assert {"fine-tune/report.html", "broken/report.html", "slow/report.html"} <= set(hrefs)
    for _, record, _ in scored.values():
        for secret in sealed_strings(record):
            assert secret not in page
    assert "No scored submission yet" in render_leaderboard(leaderboard(scores.iloc[0:0]), not_ranked(scores.iloc[0:0]))


# ----------------------------------------------------------------------------------
# In a real browser, with no network.


def _browser() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; .ci/run installs it)")
    return found


def _offline_prefix() -> list[str]:
    """``unshare --net`` (as root) or ``unshare --user --map-root-user --net``: a namespace with no network."""
    for prefix in (["unshare", "--net"], ["unshare", "--user", "--map-root-user", "--net"]):
        if shutil.which(prefix[0]) is None:
            break
        probe = subprocess.run([*prefix, "true"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    pytest.skip("cannot turn the network off here: `unshare --net` is not permitted")


def chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    browser, prefix = _browser(), _offline_prefix()
    with tempfile.TemporaryDirectory() as profile:
        command = [
            *prefix,
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": profile})
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def screenshot_is_not_blank(path: Path) -> None:
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] >= 1000 and image.shape[1] == 1200
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    background = np.all(image == image[0, 0], axis=-1).mean()  # the page's own background colour
    assert colours > 50, f"only {colours} colours"
    assert background < 0.97, f"{background:.1%} of the screenshot is background"


def test_reports_render_in_a_browser_without_network(scored, tmp_path):
    _browser(), _offline_prefix()
    for name in ("fine-tune", "broken"):
        _, record, arrays = scored[name]
        record = with_statistics(record) if record["runs"] else record
        page = tmp_path / f"{name}.html"
        page.write_text(render_report(record, arrays))
        dom = chromium(page.as_uri(), "--dump-dom").stdout
        text = visible_text(dom)
        assert re.search(rf'id="status"[^>]*>{record["status"]}<', dom)
        if record["status"] == "scored":
            assert f'id="score-value">{fmt(record["score"])}<' in dom
            run_rows = re.findall(r"<tr>(.*?)</tr>", dom.split('id="run-table"')[1], flags=re.S)
            assert visible_text(run_rows[1]).split()[:2] == ["0", fmt(record["runs"][0]["seconds"])]
        else:
            assert record["reason"] in text
        shot = tmp_path / f"{name}.png"
        chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=1200,1600")
        screenshot_is_not_blank(shot)


def _rows(dom: str, heading: str) -> list[str]:
    """Submission names in DOM order in the group under ``heading``."""
    section = dom.split(heading, 1)[1].split("</table>", 1)[0]
    body = section.split("<tbody>", 1)[1]
    rows = [visible_text(r).split() for r in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]
    return [next(word for word in row if word.endswith((".py", ".ipynb"))) for row in rows]


def _aria(dom: str, key: str) -> str | None:
    header = re.search(rf'<th[^>]*data-key="{re.escape(key)}"[^>]*>', dom)
    assert header is not None, key
    th = header.group(0)
    found = re.search(r'aria-sort="(\w+)"', th)
    return found.group(1) if found else None


def test_the_leaderboard_sorts_by_clicking_a_header_in_a_browser(tmp_path):
    _browser(), _offline_prefix()
    table, others = synthetic_table()
    page = tmp_path / "leaderboard.html"
    page.write_text(render_leaderboard(table, others))
    as_written = _rows(chromium(page.as_uri(), "--dump-dom").stdout, "N = 32")
    assert as_written == ["alpha.py", "bravo.ipynb", "charlie.py"]
    # #sort=<column> makes the page click that header once on load (twice for :desc)
    ascending = chromium(page.as_uri() + "#sort=private%20score", "--dump-dom").stdout
    assert _rows(ascending, "N = 32") == ["charlie.py", "bravo.ipynb", "alpha.py"]
    assert _rows(ascending, "N = 128") == ["delta.py", "alpha.py"]
    assert _aria(ascending, "private score") == "ascending"
    descending = chromium(page.as_uri() + "#sort=private%20score:desc", "--dump-dom").stdout
    assert _rows(descending, "N = 32") == ["alpha.py", "bravo.ipynb", "charlie.py"]
    assert _aria(descending, "private score") == "descending"
    by_name = chromium(page.as_uri() + "#sort=submission:desc", "--dump-dom").stdout
    assert _rows(by_name, "N = 32") == ["charlie.py", "bravo.ipynb", "alpha.py"]
    shot = tmp_path / "leaderboard.png"
    chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=1200,1600")
    screenshot_is_not_blank(shot)


def test_report_links_are_relative_and_skip_folders_without_a_report(tmp_path):
    for name in ("a-public", "a-private", "b-public"):
        (tmp_path / "scores" / name).mkdir(parents=True)
    (tmp_path / "scores" / "a-public" / html_report.REPORT_FILE).write_text("<html></html>")
    scores = pd.DataFrame(
        [
            {
                "submission": "a.py",
                "submission_sha256": "a" * 64,
                "dataset": "digits",
                "split": split,
                "N": 32,
                "scored_at": "2026-01-01",
                "path": str(tmp_path / "scores" / f"a-{split}"),
            }
            for split in ("public", "private")
        ]
    )
    links = report_links(scores, tmp_path / "site")
    assert links == {
        "digits/32/aaaaaaaaaaaa/public": "../scores/a-public/report.html",
        "digits/32/a.py/public": "../scores/a-public/report.html",
    }
    assert len(report_links(scores, tmp_path, only_existing=False)) == 4


def test_inline_frame_shows_a_report_in_a_notebook_cell(scored):
    _, record, arrays = scored["broken"]
    frame = html_report.inline_frame(render_report(record, arrays), height=600)
    assert frame.startswith("<div><iframe srcdoc=") and frame.endswith("</iframe></div>") and "height:600px" in frame
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # IPython warns "Consider using IPython.display.IFrame" for a bare iframe
        IPython.display.HTML(frame)
    assert "<html" not in frame and htmllib.unescape(frame.split('srcdoc="', 1)[1].split('" style=')[0]).startswith(
        "<!DOCTYPE"
    )
