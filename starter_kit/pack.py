"""Turn a notebook or ``.py`` into the file Codabench accepts: a zip holding one ``submission.py``.

``python -m starter_kit.notebook pack NOTEBOOK_OR_PY --out submission.zip``. The file
holds the submission's source only (a notebook's ``submission``-tagged cells, extracted
as the scorer extracts them, ``starter_kit.submission.submission_source``), so what runs
on Codabench is exactly what ``python -m scoring score`` runs locally.
"""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

from starter_kit.atomic import write_bytes
from starter_kit.submission import ENTRY_POINT, submission_source

ARCHIVE_NAME = "submission.py"


def defines_entry_point(source: str) -> bool:
    """Whether the source defines ``unlearning`` at its top level (a def, an assignment or an import)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == ENTRY_POINT:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == ENTRY_POINT for t in targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name.split(".")[0]) == ENTRY_POINT for alias in node.names
        ):
            return True
    return False


def pack_submission(path: str | Path, out: str | Path) -> Path:
    """Write ``out`` (a zip with ``submission.py``); ValueError in one line for what Codabench would refuse."""
    path, out = Path(path), Path(out)
    source = submission_source(path)  # refuses a notebook without a 'submission'-tagged cell
    try:
        found = defines_entry_point(source)
    except SyntaxError as error:
        raise ValueError(f"the submission of {path} does not compile (line {error.lineno}: {error.msg})") from None
    if not found:
        raise ValueError(
            f"the submission of {path} does not define {ENTRY_POINT}(net, retain_loader, forget_loader, "
            "val_loader): define it in a cell tagged 'submission'"
        )
    if out.suffix != ".zip":
        raise ValueError(f"--out {out} must end in .zip: Codabench takes a zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(ARCHIVE_NAME, date_time=(1980, 1, 1, 0, 0, 0)), source)
    write_bytes(out, buffer.getvalue())
    return out
