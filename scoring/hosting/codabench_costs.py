"""What a phase costs on Codabench, measured at export: the set-up time the clock forgives, and the upload.

**The set-up allowance.** The scoring program charges the worker's elapsed time of the
prediction step less a set-up allowance, over N. The allowance is what the ingestion of
a submission that does nothing (returns the model unchanged) takes on this machine: the
bundle's own ingestion program, started as the worker starts it (a fresh ``python3 -s
run.py ingest``), with two runs, so its time splits into a fixed part (interpreter, torch
and the kit's import, reading input_data) and a per-run part (a fresh child process,
its warm-up, the model sent back, checked and written). At N runs the allowance is::

    (fixed + N x per run) x SETUP_MARGIN + SETUP_EXTRA_SECONDS

the margin for a busier worker, the extra seconds for what the worker times and this
does not (starting a container from a pulled image). Export on the kind of machine the
workers are, on the phase's device: the measurement, its parts and the margin are
recorded in both phase.json files.

**The upload.** Each submission's prediction output (N weight deltas, zipped by the
worker) counts against its owner's storage quota on the server (``DEFAULT_USER_QUOTA``,
15 GB, in codalab/codabench ``src/settings/base.py``). A run's share is measured on the
phase's own model: the original, every float tensor moved by ``PERTURBATION`` of its own
standard deviation (seeded), as a fine-tune moves it, encoded by
``scoring.hosting.weights_delta`` and deflated as the worker zips it.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch

from scoring.hosting.weights_delta import encode

SETUP_MARGIN = 1.25
SETUP_EXTRA_SECONDS = 5.0
SETUP_RUNS = 2
PERTURBATION = 0.01
DEFAULT_QUOTA_GB = 15.0  # codalab/codabench src/settings/base.py, DEFAULT_USER_QUOTA
NOTHING = "def unlearning(net, retain_loader, forget_loader, val_loader):\n    return net\n"


def measure_setup(program: Path, input_dir: Path, n_runs: int, timeout: float = 600.0) -> dict[str, Any]:
    """Time the ingestion PROGRAM on a do-nothing submission; the allowance at ``n_runs`` and how it was found.

    ValueError in one line when the ingestion cannot run here (no GPU for a CUDA phase ...).
    """
    with tempfile.TemporaryDirectory(prefix="setup-") as folder:
        root = Path(folder)
        shutil.copytree(input_dir, root / "input_data")
        settings = json.loads((root / "input_data" / "phase.json").read_text())
        settings.update(n_runs=SETUP_RUNS, setup_seconds=timeout, limit_seconds=timeout)
        (root / "input_data" / "phase.json").write_text(json.dumps(settings))
        (root / "submission").mkdir()
        (root / "submission" / "submission.py").write_text(NOTHING)
        (root / "output").mkdir()
        argv = [
            sys.executable,
            "-s",
            str(program / "run.py"),
            "ingest",
            *(str(root / p) for p in ("input_data", "output", "submission")),
        ]
        environment = {key: value for key, value in os.environ.items() if key != "KIT_PINNED_SEEDS"}
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, env=environment, check=False)
        except subprocess.TimeoutExpired:
            raise ValueError(
                f"measuring the set-up allowance: a do-nothing ingestion took over {timeout:.0f} s"
            ) from None
        total = time.monotonic() - started
        try:
            record = json.loads((root / "output" / "ingestion.json").read_text())
        except (OSError, json.JSONDecodeError):
            record = {"status": "crashed", "reason": done.stderr.decode(errors="replace").strip().splitlines()[-1:]}
    if record.get("status") != "completed":
        raise ValueError(
            f"measuring the set-up allowance, a do-nothing ingestion did not complete ({record.get('reason')}): "
            "export on a machine like the workers, on the phase's device, or pass --setup-seconds"
        )
    per_run = sum(float(run["reported_seconds"]) for run in record["runs"]) / SETUP_RUNS
    fixed = max(0.0, total - SETUP_RUNS * per_run)
    return {
        "seconds": float(math.ceil((fixed + n_runs * per_run) * SETUP_MARGIN + SETUP_EXTRA_SECONDS)),
        "measured": {
            "do_nothing_runs": SETUP_RUNS,
            "do_nothing_seconds": round(total, 3),
            "fixed_seconds": round(fixed, 3),
            "per_run_seconds": round(per_run, 4),
            "rule": f"(fixed + N x per run) x {SETUP_MARGIN:g} + {SETUP_EXTRA_SECONDS:g} s, rounded up",
        },
    }


def given_setup(seconds: float) -> dict[str, Any]:
    """The allowance an organiser passed (--setup-seconds): recorded as given, not measured."""
    return {"seconds": float(seconds), "measured": None}


def upload_per_run(original: dict[str, torch.Tensor], seed: int = 0) -> int:
    """Bytes one run adds to the zipped prediction output: a fine-tune-like move of the original, encoded."""
    generator = torch.Generator().manual_seed(seed)
    moved = {}
    for name, tensor in original.items():
        if tensor.is_floating_point() and tensor.numel() > 1:
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32).to(tensor.dtype)
            moved[name] = tensor + PERTURBATION * tensor.float().std().to(tensor.dtype) * noise
        else:
            moved[name] = tensor.clone()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:  # as the worker's make_archive
        archive.writestr("run", encode(moved, original))
    return len(buffer.getvalue())


def storage_line(phase: str, n_runs: int, per_run: int, quota_gb: float, max_submissions: int) -> tuple[str, bool]:
    """(what one submission of the phase uploads against the quota, in one line; whether it is over)."""
    gigabytes = n_runs * per_run / 1e9
    over = gigabytes > quota_gb
    line = (
        f"{phase}: one submission uploads about {gigabytes:.3g} GB (N = {n_runs} runs x {per_run / 1e6:.3g} MB zipped, "
        f"measured on the original moved like a fine-tune) against a storage quota of {quota_gb:g} GB per participant; "
        f"{max_submissions} submissions: up to {max_submissions * gigabytes:.3g} GB"
    )
    return line, over
