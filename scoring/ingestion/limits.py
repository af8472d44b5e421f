"""The efficiency rule: what a submission may use, and its run times as the scorer measured them.

This module owns the limits a submission runs under and the statistics of its run
times. Time is the scorer's, taken outside the sandbox: a run lasts from sending its
command to receiving its whole model; whatever the worker reports is a diagnostic.
The rule (docs/protocol.md, "Efficiency"):

- the mean run time over the N runs must be within ``run_seconds`` (default 20% of
  retraining: one model trained alone on the same machine and device, the reference
  set's calibration; see ``default_limit``). Each run loads the submission in its own
  process (its module body runs in every run, inside the clock), so work done at import
  is no escape from the limit and no run can reuse another's;
- a single run is killed only past ``hard_seconds`` = max(5 x the limit, limit + 10 s),
  so a hang cannot stall scoring, while one slow run (a cold cache, a busy machine)
  does not reject an honest submission;
- the worker starts and warms torch up before run 0, within ``setup_seconds``, and each
  run's process is forked (on CUDA, its device context made and warmed up: cuDNN
  autotuning, the first allocation) before that run's clock starts: neither is charged;
- scoring stops, rejected, as soon as the time spent exceeds N x the limit: the mean
  can no longer come back under it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, SupportsFloat

import numpy as np
from numpy.typing import NDArray

from scoring.checks import check_seconds
from scoring.references.calibration import TIME_LIMIT_FRACTION

if TYPE_CHECKING:
    from scoring.references.build import ReferenceSet

HARD_MULTIPLE = 5.0
HARD_EXTRA_SECONDS = 10.0


def machine_memory() -> int:
    """Physical memory of this machine, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Limits:
    """What a submission may use. Seconds are wall-clock seconds on the scoring machine.

    ``run_seconds``: the limit on the mean run time. ``memory_bytes``: what the worker
    may allocate beyond its own size after importing torch (None: half of the machine's
    memory; 0: no cap). ``tmp_bytes``: the sandbox's private /tmp. ``processes``:
    processes and threads the sandbox may hold at once.
    """

    run_seconds: float
    memory_bytes: int | None = None
    setup_seconds: float = 120.0
    output_bytes: int = 256 * 1024
    tmp_bytes: int = 512 * 2**20
    processes: int = 512
    open_files: int = 1024

    def __post_init__(self) -> None:
        for name in ("run_seconds", "setup_seconds"):
            check_seconds(getattr(self, name), name)
        if self.memory_bytes is not None and self.memory_bytes < 0:
            raise ValueError(f"memory_bytes must be >= 0 (0: no cap), got {self.memory_bytes}")
        for name in ("tmp_bytes", "processes", "open_files"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def hard_seconds(self) -> float:
        """A single run is killed past this: max(5 x the limit, limit + 10 s)."""
        return max(HARD_MULTIPLE * self.run_seconds, self.run_seconds + HARD_EXTRA_SECONDS)

    def allowance(self, n_runs: int) -> float:
        """Seconds that N runs may take together: N x the limit."""
        return n_runs * self.run_seconds

    @property
    def memory(self) -> int:
        return machine_memory() // 2 if self.memory_bytes is None else int(self.memory_bytes)

    def memory_for(self, device: str) -> int:
        """The allowance on ``device``: none on CUDA, whose driver maps far more address space than it uses."""
        return 0 if str(device).startswith("cuda") else self.memory

    def rule(self) -> str:
        return (
            f"mean run time (each run loads the submission in its own process) <= {self.run_seconds:.3f} s; "
            f"a single run is killed after {self.hard_seconds:.1f} s"
        )


def default_limit(
    calibration: dict[str, Any] | None, shared_seconds: Sequence[float] | NDArray[np.float64], together: int = 1
) -> tuple[float, str, dict[str, Any]]:
    """(limit on the mean run time, its rule in words, its basis for score.json) by default.

    ``calibration``: the reference set's record of one model trained alone (its
    ``seconds``; :mod:`scoring.references.calibration`), the basis docs/protocol.md defines. A set built
    before calibrations existed has none: the mean of the references' own training
    times (``shared_seconds`` [N], each its share when ``together`` > 1 trained at once)
    is the basis then, as it used to be, and the rule says so and how to add one.
    """
    shared = float(np.mean(shared_seconds))
    basis: dict[str, Any] = {
        "used": "alone" if calibration else "shared",
        "alone_seconds": None,
        "shared_seconds": _round(shared),
    }
    if calibration:
        alone = float(calibration["seconds"])
        basis.update(
            alone_seconds=_round(alone),
            calibration={
                k: calibration.get(k)
                for k in ("when", "measured_at", "device", "torch_threads", "host", "excludes", "statistic", "times")
                if k in calibration or k not in ("statistic", "times")  # older sets: one model, no statistic
            },
        )
        rule = (
            f"{TIME_LIMIT_FRACTION:.0%} of retraining one model alone ({alone:.2f} s, the reference set's calibration, "
            f"measured {calibration.get('when', 'alone')}); "
            f"the {len(shared_seconds)} references took {shared:.2f} s each as timed"
        )
        return TIME_LIMIT_FRACTION * alone, rule, basis
    rule = (
        f"{TIME_LIMIT_FRACTION:.0%} of the mean retraining time ({shared:.2f} s over {len(shared_seconds)} models): "
        "the reference set has no calibration (one model timed alone), so the references' own times are the basis"
    )
    if together > 1:
        rule += f"; up to {together} were trained at once per device, each timed as its share"
    rule += "; run 'python -m scoring references' on the set again to add one"
    return TIME_LIMIT_FRACTION * shared, rule, basis


def time_statistics(run_seconds: list[float], load_seconds: float | None, n_runs: int) -> dict[str, Any]:
    """Mean, 95th percentile and the rest of the scorer-measured run times; ``charged_mean`` is what the rule checks."""
    seconds = np.asarray(run_seconds, dtype=np.float64)
    stats: dict[str, Any] = {"runs_completed": int(len(seconds)), "load_seconds": _round(load_seconds)}
    if len(seconds):
        stats.update(
            mean_seconds=_round(seconds.mean()),
            p95_seconds=_round(np.percentile(seconds, 95)),
            std_seconds=_round(seconds.std()),
            min_seconds=_round(seconds.min()),
            median_seconds=_round(np.median(seconds)),
            max_seconds=_round(seconds.max()),
            total_seconds=_round(seconds.sum()),
            charged_mean_seconds=_round((seconds.sum() + (load_seconds or 0.0)) / max(n_runs, len(seconds))),
        )
    return stats


def _round(value: SupportsFloat | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


class LimitChoice(Protocol):
    """What ``time_limit`` reads of its options: ``ScoreOptions``, or a Codabench export's two settings."""

    @property
    def time_limit(self) -> float | None: ...

    @property
    def limit_note(self) -> str | None: ...


def time_limit(options: LimitChoice, refs: ReferenceSet) -> tuple[float, str]:
    """(limit on the mean run time, how it was set): by default 20% of one model trained alone (``default_limit``)."""
    if options.time_limit is not None:
        return float(options.time_limit), options.limit_note or "--time-limit"
    limit, rule, _ = default_limit(refs.calibration, refs.training_seconds, int(refs.models_together.max()))
    return limit, rule


def limit_basis(options: LimitChoice, refs: ReferenceSet) -> dict[str, Any]:
    """score.json's ``time.limit_basis``: the alone and shared times, and which one the limit used."""
    _, _, basis = default_limit(refs.calibration, refs.training_seconds, int(refs.models_together.max()))
    return {**basis, "used": "--time-limit"} if options.time_limit is not None else basis
