"""The scorer's refactorings change no number: score.json equals one recorded before them.

``tests/data/score_recorded.json`` is the fine-tuning submission's score.json (the
shared fixture: digits at 2 epochs, 4 references, N = 4), recorded before the scorer
moved into subpackages, with its volatile fields (times, dates, paths, this machine's
memory) replaced by a marker. Training in float32 is bitwise reproducible only on the
same kind of CPU, so the recorded numbers are compared byte for byte where torch
reports the CPU capability they were recorded on; elsewhere every key, every
non-float value and the file's shape still must match.

Re-record after a change that is meant to change the score:
``python tests/test_score_unchanged.py record SCORE_DIR`` with the fixture's folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "data" / "score_recorded.json"
VOLATILE = "<volatile>"
# Dotted paths whose values depend on the clock, the machine or where folders sit;
# "runs.*" stands for every run's field of that name.
VOLATILE_FIELDS = {
    "scored_at",
    "time",
    "timing",
    "limits.memory_bytes",
    "split.dir",
    "references.dir",
    "submission.path",
    "runs.*.seconds",
    "runs.*.reported_seconds",
}


def cpu_capability() -> str:
    return torch.backends.cpu.get_cpu_capability()


def normalised(record: dict) -> dict:
    """``record`` with every volatile field's value replaced by the marker."""
    record = json.loads(json.dumps(record))
    for dotted in VOLATILE_FIELDS:
        head, *rest = dotted.split(".")
        if head not in record:
            continue
        if not rest:
            record[head] = VOLATILE
        elif rest[0] == "*":
            for item in record[head]:
                item[rest[1]] = VOLATILE
        else:
            record[head][rest[0]] = VOLATILE
    return record


def as_bytes(record: dict) -> bytes:
    return json.dumps(record, indent=2, sort_keys=True).encode()


def shape(value):
    """Everything but the floats: keys, strings, ints, booleans, list lengths."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return "float" if isinstance(value, float) else value


def test_score_json_is_the_recorded_one(tmp_path_factory):
    sys.path.insert(0, str(HERE))
    from submissions import _fixtures as kit

    folder = kit.fine_tune_score_dir(tmp_path_factory)
    now = normalised(json.loads((folder / "score.json").read_text()))
    recorded = json.loads(RECORDED.read_text())
    assert shape(now) == shape(recorded["score"]), "score.json's fields or non-float values changed"
    if recorded["cpu_capability"] == cpu_capability():
        assert as_bytes(now) == as_bytes(recorded["score"]), "numbers changed on the CPU of the recording"


def record(folder: Path) -> None:
    record = normalised(json.loads((folder / "score.json").read_text()))
    text = json.dumps({"cpu_capability": cpu_capability(), "score": record}, indent=2, sort_keys=True) + "\n"
    RECORDED.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "record":
        sys.exit("usage: python tests/test_score_unchanged.py record SCORE_DIR")
    record(Path(sys.argv[2]))
