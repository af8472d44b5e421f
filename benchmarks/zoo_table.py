"""The baseline zoo's table, regenerated from `scoring benchmark` output folders.

The documentation's zoo table (``docs/participants/baselines.md``) and the registry's
(``starter_kit/baselines/__init__.py``) state only what ``python -m scoring benchmark``
measured; this script writes both from the benchmark's score folders, one folder per N,
so neither is ever typed by hand:

    .venv/bin/python benchmarks/zoo_table.py results/benchmark/digits-public-N32 results/benchmark/digits-public-N128
    .venv/bin/python benchmarks/zoo_table.py ... --write   # replace both tables in place

Rows are sorted by the score at the last N, highest first; the sanity rows keep their
``sanity:`` label. ``tests/test_zoo_table.py`` checks that the two tables agree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scoring.record import ScoreRecord, read_score

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "participants" / "baselines.md"
REGISTRY = ROOT / "starter_kit" / "baselines" / "__init__.py"
PAGE_START, PAGE_END = "<!-- zoo table: benchmarks/zoo_table.py -->", "<!-- end of zoo table -->"
REGISTRY_HEADER = "    name            N=32   N=128"
SANITY = {
    "sanity_retrain": "retraining from scratch, limit lifted",
    "sanity_noise": "the original plus 2% noise",
    "sanity_identity": "the original model",
}


def read_benchmark(folder: Path) -> tuple[int, dict[str, ScoreRecord]]:
    """(N, {row name: its score.json}) of one ``scoring benchmark`` output folder."""
    records = {path.parent.name: read_score(path) for path in sorted(folder.glob("scores/*/score.json"))}
    if not records:
        raise ValueError(f"{folder} holds no scores/*/score.json: give a 'python -m scoring benchmark' --out folder")
    sizes = {int(record["N"]) for record in records.values()}
    if len(sizes) != 1:
        raise ValueError(f"{folder} mixes scores at N = {sorted(sizes)}: one benchmark folder per N")
    return sizes.pop(), records


def methods() -> dict[str, str]:
    """{baseline: "method (source)"}, as each baseline's ``@register`` line states them."""
    from starter_kit.baselines import DESCRIPTIONS

    return {name: f"{about.method} ({about.source})" for name, about in DESCRIPTIONS.items()}


def tables(folders: list[Path]) -> tuple[str, str]:
    """(the page's markdown table, the registry's text table) from one benchmark folder per N."""
    benchmarks = sorted(read_benchmark(folder) for folder in folders)
    sizes = [n for n, _ in benchmarks]
    names = sorted(
        set().union(*(records for _, records in benchmarks)),
        key=lambda name: -(_value(benchmarks[-1][1].get(name)) or 0.0),
    )
    described = methods()
    header = "| baseline | method (source) | " + " | ".join(f"score at N = {n}" for n in sizes) + " |"
    markdown = [header, "|" + "---|" * (2 + len(sizes))]
    text = [
        REGISTRY_HEADER if sizes == [32, 128] else "    name          " + "".join(f"{'N=' + str(n):>7}" for n in sizes)
    ]
    for name in names:
        label = f"sanity: {name.removeprefix('sanity_')}" if name in SANITY else f"`{name}`"
        cells = [_score(records.get(name)) for _, records in benchmarks]
        markdown.append(f"| {label} | {SANITY.get(name) or described.get(name, '')} | " + " | ".join(cells) + " |")
        short = [_short(records.get(name)) for _, records in benchmarks]
        text.append(
            f"    {name.removeprefix('sanity_') if name in SANITY else name:<14}" + "".join(f"{s:>7}" for s in short)
        )
    return "\n".join(markdown), "\n".join(text)


def _value(record: ScoreRecord | None) -> float | None:
    return None if record is None else record.get("score")


def _score(record: ScoreRecord | None) -> str:
    score = _value(record)
    if record is None or score is None:
        return "not scored" if record is None else record["status"]
    low, high = (record.get("intervals") or {}).get("score") or (None, None)
    return f"{score:.4f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and score > 0 else "")


def _short(record: ScoreRecord | None) -> str:
    score = _value(record)
    return "-" if score is None else f"{score:.3f}"


def replace_tables(markdown: str, text: str) -> None:
    """Write both tables in place: the page's between its markers, the registry's under its header."""
    page = PAGE.read_text()
    start, end = page.index(PAGE_START) + len(PAGE_START), page.index(PAGE_END)
    PAGE.write_text(page[:start] + "\n\n" + markdown + "\n\n" + page[end:])
    registry = REGISTRY.read_text().splitlines()
    first = next(i for i, line in enumerate(registry) if line.startswith("    name ") and "N=" in line)
    last = next(i for i in range(first, len(registry)) if not registry[i].strip())
    REGISTRY.write_text("\n".join(registry[:first] + text.splitlines() + registry[last:]) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="'scoring benchmark' --out folders, one per N")
    parser.add_argument("--write", action="store_true", help="replace the baselines page's and the registry's tables")
    args = parser.parse_args(argv)
    try:
        markdown, text = tables(args.folders)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(markdown, text, sep="\n\n")
    if args.write:
        replace_tables(markdown, text)
        print(f"\nwrote {PAGE} and {REGISTRY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
