"""The bundle's two programs: their ``metadata.yaml`` commands and their entry point.

Each program folder of the bundle holds ``run.py`` (standard library only: it puts the
folder on ``sys.path``, checks the image with ``scoring.hosting.image`` and calls
:func:`main`), the kit's ``starter_kit`` and ``scoring`` packages, and ``metadata.yaml``.
The kit travels with the programs so the Docker image holds only third-party packages
and a bundle always scores with the kit version it was exported from.
"""

from __future__ import annotations

import sys
from pathlib import Path

# $program, $input, $output and $submission_program are the compute worker's substitutions.
INGESTION_COMMAND = "python3 -s $program/run.py ingest $input $output $submission_program"
SCORING_COMMAND = "python3 -s $program/run.py score $input $output"
LAUNCHER = '''"""Start a program of the unlearning kit's Codabench bundle
(written by 'python -m scoring codabench export')."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scoring.hosting.image import require_image  # noqa: E402  (standard library only)

require_image()
from scoring.hosting.codabench_programs import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
'''


def main(argv: list[str]) -> int:
    """``ingest INPUT_DATA OUTPUT SUBMISSION`` or ``score INPUT OUTPUT``; exit 0, or 1 with the reason on stderr."""
    if len(argv) == 4 and argv[0] == "ingest":
        from scoring.hosting.codabench_ingestion import ingest

        record = ingest(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        print(
            f"ingestion {record['status']}: {len(record['runs'])} run(s)"
            + (f"; {record['reason']}" if record["reason"] else "")
        )
        return 0  # the scoring step reports the status; a nonzero exit here would hide it
    if len(argv) == 3 and argv[0] == "score":
        from scoring.hosting.codabench_scoring import score_prediction

        record = score_prediction(Path(argv[1]), Path(argv[2]))
        if record["status"] != "scored":
            print(f"{record['status']}: {record['reason']}", file=sys.stderr)
            return 1
        print(f"scored: score {record['score']:.4f}, F {record['F']:.4f}")
        return 0
    print("usage: run.py ingest INPUT_DATA OUTPUT SUBMISSION | run.py score INPUT OUTPUT", file=sys.stderr)
    return 2
