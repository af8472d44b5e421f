"""``python -m scoring metric``: forgetting quality of two saved confidence arrays.

The work behind the command, in functions that tests call directly: read the two
[n_models, n_examples] .npy files, compute the per-example epsilons and F, optionally
save the epsilons (atomically), and format the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import scoring.metric.forgetting as metric
from starter_kit.atomic import npy_bytes, write_bytes

_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class MetricReport:
    """F with what it depends on: N, S and how the epsilons spread over the bins."""

    forgetting_quality: float
    n_models: int
    n_examples: int
    epsilons: np.ndarray  # [n_examples]
    bin_counts: np.ndarray  # [n_bins + 1]: examples per bin, the last one beyond every bin


def load_confidences(path: Path) -> np.ndarray:
    """One [n_models, n_examples] array from a .npy file, or a one-line ValueError saying why not."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(_NPY_MAGIC))
            if magic != _NPY_MAGIC:
                kind = "an .npz archive" if magic.startswith(b"PK") else "not a .npy file"
                raise ValueError(f"{path} is {kind}; expected one .npy array [n_models, n_examples]")
            handle.seek(0)
            array: np.ndarray = np.load(handle, allow_pickle=False)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ValueError(str(error) if str(error).startswith(str(path)) else f"cannot read {path}: {error}") from None
    except Exception as error:  # a damaged .npy: numpy raises several kinds
        raise ValueError(f"cannot read {path}: {error}") from None
    if array.dtype.kind not in "iuf" or array.ndim != 2:
        raise ValueError(
            f"{path} holds a {array.dtype} array of shape {array.shape}; expected real numbers [n_models, n_examples]"
        )
    return array


def run_metric(
    unlearned_path: Path, retrained_path: Path, out: Path | None = None, n_jobs: int | None = None
) -> MetricReport:
    """Compute F from two confidence files; write the epsilons [n_examples] to ``out`` if given."""
    unlearned = load_confidences(unlearned_path)
    retrained = load_confidences(retrained_path)
    epsilons = metric.per_example_epsilons(unlearned, retrained, n_jobs=n_jobs)
    n_models = unlearned.shape[0]
    if out is not None:
        write_bytes(Path(out), npy_bytes(epsilons))  # temp file beside it, then os.replace
    return MetricReport(
        forgetting_quality=metric.forgetting_quality_from_epsilons(epsilons, n_models),
        n_models=n_models,
        n_examples=len(epsilons),
        epsilons=epsilons,
        bin_counts=metric.epsilon_bin_counts(epsilons, n_models),
    )


def format_report(report: MetricReport) -> str:
    """F, N, S and a table of examples per epsilon bin, as the command prints them."""
    n_bins = len(report.bin_counts) - 1
    lines = [
        f"F = {report.forgetting_quality:.6f}  (N = {report.n_models} models, S = {report.n_examples} "
        "forget examples; compare F only at the same N)",
        f"{'epsilon bin':<20}{'points':>12}{'examples':>10}",
    ]
    for k in range(n_bins):
        low, high = k * metric.BIN_WIDTH, (k + 1) * metric.BIN_WIDTH
        lines.append(f"{f'[{low:.1f}, {high:.1f})':<20}{2.0**-k:>12.6g}{report.bin_counts[k]:>10}")
    lines.append(f"{f'>= {n_bins * metric.BIN_WIDTH:.1f} (50 = cap)':<20}{0:>12}{report.bin_counts[n_bins]:>10}")
    return "\n".join(lines)
