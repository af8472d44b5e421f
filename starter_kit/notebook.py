"""Run a notebook headless, as ``make demo`` does: parameters injected, figures saved.

    python -m starter_kit.notebook run notebooks/starter.ipynb --out results/notebook -p SEED=1
    python -m starter_kit.notebook pack notebooks/starter.ipynb --out submission.zip   (starter_kit.pack)

The kernel runs in the notebook's own folder, as when it is opened in Jupyter, so the
relative paths of its parameters cell work the same both ways (and so do relative
paths given with ``-p``: they are relative to the notebook's folder). Parameters follow
the papermill convention: a cell tagged ``parameters`` holds the defaults, and a cell
tagged ``injected-parameters`` is inserted after it with the values given. The executed
copy is written atomically into ``--out``, its figures as PNG files into ``--out/figures``.
The kernel gets the notebook's path in ``$NOTEBOOK_PATH``, so that a notebook that
scores itself (``this_notebook``) scores the file that runs, whatever its name.
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

from starter_kit.atomic import write_bytes

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
PATH_ENV = "NOTEBOOK_PATH"


class NotebookError(RuntimeError):
    """A notebook could not be run; the message is one line that says where and why."""


@dataclass
class NotebookRun:
    """Where a run wrote its executed copy and its figures, and how long it took."""

    notebook: Path
    figures: list[Path]
    seconds: float


def parse_parameters(pairs: list[str]) -> dict[str, object]:
    """``["SEED=1", "SPLIT_DIR=/tmp/s"]`` -> ``{"SEED": 1, "SPLIT_DIR": "/tmp/s"}``.

    A value is read as a Python literal when it is one (numbers, None, True, lists,
    quoted strings), and as a plain string otherwise.
    """
    parameters = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(f"parameter {pair!r} is not NAME=VALUE with NAME a Python identifier")
        try:
            parameters[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parameters[name] = text
    return parameters


def this_notebook(namespace: dict | None = None) -> Path:
    """The ``.ipynb`` file of the running notebook, as saved on disk, for it to score itself.

    A kernel does not know its notebook's file, so it is looked up in order:
    ``$NOTEBOOK_PATH`` (``run_notebook`` sets it; set it yourself where nothing else
    works), VS Code's ``__vsc_ipynb_file__`` in ``namespace`` (the notebook's globals),
    then Jupyter Server's ``$JPY_SESSION_NAME`` or IPython's ``__session__``: the
    notebook's path from the server's root, found by its name in the kernel's folder,
    which is the notebook's own. Raises ValueError, asking for ``NOTEBOOK_PATH``, when
    none names an existing notebook.
    """
    namespace = namespace or {}
    explicit = os.environ.get(PATH_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValueError(f"${PATH_ENV} is {explicit!r}, which is no .ipynb file: set it to this notebook's path")
        return path.resolve()
    for name in (namespace.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME"), namespace.get("__session__")):
        if isinstance(name, str) and name.endswith(".ipynb"):
            for path in (Path(name), Path.cwd() / Path(name).name):
                if path.is_file():
                    return path.resolve()
    raise ValueError(
        f"cannot tell which file this notebook is: set {PATH_ENV} to its path, e.g. "
        f"os.environ['{PATH_ENV}'] = 'starter.ipynb' (relative to the notebook's folder)"
    )


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict[str, object]) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with a cell assigning ``parameters`` after its ``parameters`` cell.

    Raises ValueError when the notebook has no ``parameters`` cell, or when a name is
    not one the ``parameters`` cell assigns (most often a typo).
    """
    notebook = copy.deepcopy(notebook)
    notebook.cells = [cell for cell in notebook.cells if INJECTED_TAG not in _tags(cell)]
    if not parameters:
        return notebook
    positions = [i for i, cell in enumerate(notebook.cells) if PARAMETERS_TAG in _tags(cell)]
    if not positions:
        raise ValueError(f"the notebook has no cell tagged '{PARAMETERS_TAG}': it takes no parameters")
    known = _assigned_names(notebook.cells[positions[0]].source)
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)}: the parameters cell defines {', '.join(sorted(known))}"
        )
    source = "# Parameters injected by python -m starter_kit.notebook\n" + "".join(
        f"{name} = {value!r}\n" for name, value in parameters.items()
    )
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    notebook.cells.insert(positions[0] + 1, cell)
    return notebook


def run_notebook(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    parameters: dict[str, object] | None = None,
    timeout: int = 1800,
    kernel_name: str = "python3",
) -> NotebookRun:
    """Execute the notebook at ``path`` in its own folder; write the executed copy and figures.

    Parameters
    ----------
    path : the ``.ipynb`` file to run (not modified).
    out_dir : receives ``<name>.ipynb`` (executed, with outputs) and ``figures/*.png``.
    parameters : {name: value} to inject after the ``parameters`` cell.
    timeout : seconds allowed per cell.
    kernel_name : the Jupyter kernel; ``python3`` runs the interpreter running this.

    Returns
    -------
    run : the executed copy's path, the figure paths and the seconds it took.

    Raises NotebookError, with a one-line message naming the failing cell and its
    exception; the executed copy up to that cell is still written, for the traceback.
    """
    import zmq
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    path, out_dir = Path(path), Path(out_dir)
    if path.suffix != ".ipynb" or not path.is_file():
        raise FileNotFoundError(f"notebook {path} not found: give an existing .ipynb file")
    if timeout < 1:
        raise ValueError(f"timeout must be at least 1 second, got {timeout}")
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several types for a damaged file
        raise ValueError(f"{path} is not a readable notebook ({error})") from None
    notebook = inject_parameters(notebook, parameters or {})
    executed = out_dir / path.name
    if executed.resolve() == path.resolve():
        raise ValueError(f"--out {out_dir} would overwrite the notebook itself: choose another folder")

    config = Config()
    if hasattr(KernelManager, "transport_encryption") and zmq.has("curve"):
        # Encrypt the kernel's sockets where the kernel supports it (ipykernel 7 warns otherwise).
        config.KernelManager.transport_encryption = "auto"
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        config=config,
    )
    started = time.perf_counter()
    try:
        client.execute(env={**os.environ, PATH_ENV: str(path.resolve())})
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        # Keep what ran, tracebacks included, for the participant to open.
        write_bytes(executed, nbformat.writes(notebook).encode())
        if isinstance(error, CellExecutionError):
            reason = _describe_failure(notebook)
        elif isinstance(error, CellTimeoutError):
            reason = f"a cell ran longer than {timeout} s (raise --timeout)"
        else:
            reason = "the kernel died (out of memory?)"
        raise NotebookError(f"{path}: {reason} (executed copy with the traceback: {executed})") from None
    except Exception as error:  # the kernel did not start: no such kernel, no ipykernel...
        first_line = (str(error).splitlines() or [""])[0]
        reason = f"could not start the {kernel_name!r} kernel: {type(error).__name__}: {first_line}"
        raise NotebookError(f"{path}: {reason}") from None
    seconds = time.perf_counter() - started
    write_bytes(executed, nbformat.writes(notebook).encode())
    figures = save_figures(notebook, out_dir / "figures", prefix=path.stem)
    return NotebookRun(notebook=executed, figures=figures, seconds=seconds)


def save_figures(notebook: nbformat.NotebookNode, folder: Path, prefix: str) -> list[Path]:
    """Write every PNG output of ``notebook`` to ``folder/<prefix>-cell<NN>-<k>.png``.

    ``NN`` counts the cells of the notebook as written, injected parameters left out.
    """
    for stale in folder.glob(f"{prefix}-cell*.png"):  # from an earlier run of the same notebook
        stale.unlink()
    paths = []
    for number, cell in _numbered_cells(notebook):
        outputs = cell.get("outputs", [])
        pngs = [output["data"]["image/png"] for output in outputs if "image/png" in output.get("data", {})]
        for k, png in enumerate(pngs, start=1):
            target = folder / f"{prefix}-cell{number:02d}-{k}.png"
            write_bytes(target, base64.b64decode(png))
            paths.append(target)
    return paths


def _numbered_cells(notebook: nbformat.NotebookNode) -> Iterator[tuple[int, nbformat.NotebookNode]]:
    """(number, cell) pairs, numbered as in the notebook before parameters were injected."""
    number = 0
    for cell in notebook.cells:
        if INJECTED_TAG not in _tags(cell):
            number += 1
        yield number, cell


def _describe_failure(notebook: nbformat.NotebookNode) -> str:
    for number, cell in _numbered_cells(notebook):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                lines = [line.strip() for line in cell.source.splitlines()]
                lines = [line for line in lines if line and not line.startswith("#")]
                if INJECTED_TAG in _tags(cell):
                    where = "the injected parameters"
                else:
                    where = f"cell {number} ({lines[0][:60]!r})" if lines else f"cell {number}"
                message = str(output.get("evalue", "")).strip().splitlines()
                return f"{where} raised {output.get('ename', 'an error')}: {message[0] if message else ''}".rstrip(": ")
    return "a cell raised an error"


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _assigned_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"the parameters cell is not valid Python ({error})") from None
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m starter_kit.notebook",
        description="Run a notebook headless ('run'), or pack its submission into the zip Codabench accepts "
        "('pack'). 'python -m starter_kit.notebook COMMAND --help' describes each command.",
    )
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="execute a notebook headless and save the executed copy and its figures",
        description="Execute a notebook headless in its own folder, with the parameters given (-p) injected in a "
        "cell after the one tagged 'parameters', and write the executed copy into --out and its figures as PNG "
        "files into --out/figures.",
    )
    run.add_argument("notebook", type=Path, help="the .ipynb file to run")
    run.add_argument("--out", type=Path, required=True, help="folder for the executed copy and figures/")
    run.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter (repeatable): VALUE is read as a Python literal when it is one (1, 0.5, None, "
        "True, [], ['scrub'], 'quoted text') and as a plain string otherwise (results/x); relative paths are "
        "relative to the notebook's folder",
    )
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    pack = commands.add_parser(
        "pack",
        help="make the zip Codabench accepts from a notebook or .py",
        description="Write the file to submit: a zip holding submission.py, the notebook's 'submission'-tagged "
        "cells (or the .py file), refused in one line without such a cell or without unlearning().",
    )
    pack.add_argument("submission", type=Path, help="the .ipynb (its 'submission'-tagged cells) or .py file")
    pack.add_argument("--out", type=Path, required=True, help="the zip to write, e.g. submission.zip")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "pack":
        from starter_kit.pack import pack_submission

        try:
            path = pack_submission(args.submission, args.out)
        except (ValueError, OSError) as error:
            print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
        print(f"wrote {path}: upload it on the phase's My Submissions tab")
        return 0
    try:
        result = run_notebook(args.notebook, args.out, parse_parameters(args.parameter), timeout=args.timeout)
    except (NotebookError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"executed {args.notebook} in {result.seconds:.0f} s: {result.notebook}")
    if result.figures:
        names = ", ".join(path.name for path in result.figures)
        print(f"{len(result.figures)} figure(s) in {result.figures[0].parent}/: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
