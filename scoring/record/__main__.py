"""``python -m scoring.record > scoring/score.schema.json``: the schema the shipped file must equal."""

import argparse
import sys

from scoring.record.schema import schema_text


def parser() -> argparse.ArgumentParser:
    """The command line: no options but --help."""
    return argparse.ArgumentParser(
        prog="python -m scoring.record",
        description="Print the JSON Schema of score.json, generated from scoring.record.types; the shipped "
        "scoring/score.schema.json must equal it (regenerate it with: python -m scoring.record > "
        "scoring/score.schema.json).",
    )


def main(argv: list[str] | None = None) -> int:
    parser().parse_args(argv)
    print(schema_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
