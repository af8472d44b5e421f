"""score.json's sections as TypedDicts, each item annotated with its audience (``Public`` or ``Organisers``)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Literal, NotRequired, TypedDict

SCORE_FILE = "score.json"
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "score.schema.json"
SCHEMA_VERSION = 1  # raise on any change to the types below; ``schema()`` then changes the shipped file


class Audience(str):
    """Who may see a field: the marker in ``Annotated[type, PUBLIC]``."""


PUBLIC = Audience("public")
ORGANISERS = Audience("organisers")

# Shorthands: Public[float] is a float participants may see, Organisers[str] one they never see.
T = typing.TypeVar("T")
Public = Annotated[T, PUBLIC]
Organisers = Annotated[T, ORGANISERS]
Number = float | None  # NaN and infinity are written as null
Interval = tuple[float, float]  # (low, high)
Status = Literal["scored", "rejected", "failed"]


class Submission(TypedDict):
    name: Public[str]
    path: NotRequired[Organisers[str]]  # where the organisers kept the file


class Split(TypedDict):
    dataset: Public[str]
    name: Public[str]
    forget_strategy: Public[str]
    dir: NotRequired[Organisers[str]]


class Calibration(TypedDict):
    when: Public[str | None]
    measured_at: Public[str | None]
    device: Public[str | None]
    torch_threads: Public[int | None]
    host: NotRequired[Organisers[str | None]]  # the organisers' machine
    excludes: Public[str | None]
    statistic: NotRequired[Public[str]]  # how the timed models make the basis (sets from before: one model)
    times: NotRequired[Public[list[float]]]  # every timed model's seconds


class LimitBasis(TypedDict):
    used: Public[str]
    alone_seconds: Public[Number]
    shared_seconds: Public[Number]
    calibration: NotRequired[Public[Calibration]]


class Time(TypedDict):
    """Run times as the scorer measured them, and the rule they are held to (local or Codabench)."""

    limit_seconds: Public[float]
    limit_rule: Public[str]
    rule: NotRequired[Public[str]]
    hard_kill_seconds: NotRequired[Public[float]]
    measured_by: NotRequired[Public[str]]
    reference_mean_training_seconds: Public[Number]
    alone_training_seconds: NotRequired[Public[Number]]
    limit_basis: NotRequired[Public[LimitBasis]]
    reference_torch_threads: NotRequired[Public[list[int]]]
    setup_seconds: NotRequired[Public[Number]]
    runs_completed: NotRequired[Public[int]]
    load_seconds: NotRequired[Public[Number]]
    mean_seconds: NotRequired[Public[Number]]
    p95_seconds: NotRequired[Public[Number]]
    std_seconds: NotRequired[Public[Number]]
    min_seconds: NotRequired[Public[Number]]
    median_seconds: NotRequired[Public[Number]]
    max_seconds: NotRequired[Public[Number]]
    total_seconds: NotRequired[Public[Number]]
    charged_mean_seconds: NotRequired[Public[Number]]
    ingestion_elapsed_seconds: NotRequired[Public[float]]  # Codabench: the worker's wall time


class Limits(TypedDict):
    memory_bytes: Public[int]
    setup_seconds: Public[float]


class Sha256(TypedDict):
    submission: NotRequired[Public[str]]
    split_manifest: Public[str]
    reference_set: Public[str]


class References(TypedDict):
    dir: NotRequired[Organisers[str]]
    n_used: Public[int]


class Processes(TypedDict):
    left_running: Public[int]
    survived_kill: Public[int]
    cap: Public[int]
    cap_reached: Public[bool]
    memory_cap_reached: Public[bool]
    cgroups_missing: Public[list[str]]


class Output(TypedDict):
    bytes: Public[int]
    truncated: Public[bool]
    file: Public[str]


class Timing(TypedDict):
    ingestion_seconds: Public[float]
    evaluation_seconds: Public[float]
    metric_seconds: NotRequired[Public[float]]


class Run(TypedDict):
    """One run: its times and accuracies, and (scored) its diagnostics."""

    index: Public[int]
    seed: NotRequired[Organisers[int]]
    seconds: NotRequired[Public[float]]
    reported_seconds: Public[Number]
    retain_accuracy: NotRequired[Public[float]]
    forget_accuracy: NotRequired[Public[float]]
    test_accuracy: NotRequired[Public[float]]
    distance: NotRequired[Public[float]]
    mean_z: NotRequired[Public[float]]
    retrained_like: NotRequired[Public[bool]]
    group: NotRequired[Public[int]]


class Epsilons(TypedDict):
    mean: Public[float]
    median: Public[float]
    share_at_cap: Public[float]
    bin_width: Public[float]
    bin_counts: Public[list[int]]
    undefined_examples: Public[int]


class Intervals(TypedDict):
    """(low, high) at ``confidence_level`` of each term that has one. ``note``, only below the N from which the
    coverage benchmark measures their 95% promise (``scoring.assess.recompute.interval_note``): that the
    intervals of the score, F, the normalised score and the ceiling are approximate."""

    score: NotRequired[Public[Interval]]
    F: NotRequired[Public[Interval]]
    normalised_score: NotRequired[Public[Interval]]
    RA_U: NotRequired[Public[Interval]]
    FA_U: NotRequired[Public[Interval]]
    TA_U: NotRequired[Public[Interval]]
    RA_R: NotRequired[Public[Interval]]
    FA_R: NotRequired[Public[Interval]]
    TA_R: NotRequired[Public[Interval]]
    note: NotRequired[Public[str]]  # only where they are approximate (too few models): see above


class ModelsOnly(TypedDict):
    degrees_of_freedom: Public[Number]
    low: Public[Number]
    high: Public[Number]
    standard_error: Public[Number]


class StandardErrors(TypedDict):
    examples: Public[Number]
    models: Public[Number]
    models_shared: Public[Number]


class Uncertainty(TypedDict):
    method: Public[str]
    confidence_level: Public[float]
    n_resamples: Public[int]
    n_groups: Public[int]
    n_redraws: Public[int]
    group_size: Public[int]
    n_model_examples: Public[int]
    random_state: Public[int]  # the kit's fixed resampling seed (public code), not a run seed
    standard_error: Public[Number]
    standard_errors: Public[StandardErrors]
    models_only: Public[ModelsOnly]
    score_standard_error: Public[Number]


class AccuracyIntervals(TypedDict):
    method: Public[str]
    n_resamples: Public[int]
    random_state: Public[int]


class Ceiling(TypedDict):
    """The estimator's ceiling at N: F of retraining against retraining (``scoring.assess.ceiling``)."""

    value: Public[float]
    low: Public[float]
    high: Public[float]
    standard_error: Public[float]
    splits: Public[list[float]]
    spread: Public[float]
    n_models: Public[int]
    n_models_requested: Public[int]
    n_references: Public[int]
    n_references_used: Public[int]
    reduced: Public[bool]
    note: Public[str | None]
    n_splits: Public[int]
    random_state: Public[int]
    reference_set_sha256: Public[str]


class PerRun(TypedDict):
    distance: Public[list[float]]
    mean_z: Public[list[float]]
    retrained_like: Public[list[bool]]
    group: Public[list[int]]


class Dependence(TypedDict):
    """Groups of runs closer to one another than independent runs are (``scoring.assess.dependence``).

    Public: the leaderboard says why a flagged score is not ranked, and the team sees which runs."""

    flagged: Public[bool]
    reason: Public[str | None]  # one line for the leaderboard; None when not flagged
    closeness: Public[Number]  # the closest pair / the median pair (None: every run identical)
    threshold: Public[float]
    neighbour_spread: Public[Number]  # the smallest / the largest nearest-neighbour distance
    neighbour_threshold: Public[float]
    min_runs: Public[int]
    close_groups: Public[list[list[int]]]
    duplicate_groups: Public[list[list[int]]]
    statistic: Public[str]


class Diagnostics(TypedDict):
    per_run: Public[PerRun]
    flags: Public[list[str]]
    identical: Public[bool]
    mixture: Public[bool]
    duplicates: Public[bool]
    duplicate_groups: Public[list[list[int]]]
    n_distinct_runs: Public[int]
    mixture_separation: Public[Number]
    mixture_threshold: Public[Number]
    reference_distance_max: Public[float]
    statistic: Public[str]
    dependence: NotRequired[Public[Dependence]]  # scores from before issue 28 lack it


class Klom(TypedDict):
    mean: Public[float]
    median: Public[float]
    percentiles: Public[dict[str, float]]
    max: Public[float]
    n_bins: Public[int]
    floor: Public[float]
    clip: Public[float]
    n_models: Public[int]
    n_examples: Public[int]
    paper: Public[str]
    better: Public[str]


class Ulira(TypedDict):
    mean: Public[float]
    median: Public[float]
    paper: Public[str]
    better: Public[str]


class Auxiliary(TypedDict):
    klom: Public[Klom]
    ulira: NotRequired[Public[Ulira]]


class ScoreRecord(TypedDict):
    """score.json (``scoring.score``; the Codabench scoring program's record has the same type)."""

    schema_version: Public[int]
    status: Public[Status]
    reason: Public[str | None]  # the team's own: it may quote their submission's output
    team: NotRequired[Public[str | None]]
    submission: Public[Submission]
    split: Public[Split]
    sealed: Public[bool]  # true only where the sandbox ran and every cap held
    caps_missing: NotRequired[Public[list[str]]]  # caps the kernel did not hold: processes, memory, cpu, freezer, gpu
    N: Public[int]
    n_forget: Public[int]
    score: Public[Number]
    F: Public[Number]
    RA_U: Public[Number]
    TA_U: Public[Number]
    FA_U: Public[Number]
    RA_R: Public[Number]
    TA_R: Public[Number]
    FA_R: Public[Number]
    retain_ratio: NotRequired[Public[Number]]
    test_ratio: NotRequired[Public[Number]]
    time: Public[Time]
    limits: NotRequired[Public[Limits]]
    sha256: Public[Sha256]
    references: NotRequired[Public[References]]
    kit_version: Public[str]
    torch_version: Public[str]
    torch_threads: Public[int]
    device: Public[str]
    processes: NotRequired[Public[Processes]]
    output: NotRequired[Public[Output]]
    timing: NotRequired[Public[Timing]]
    runs: Public[list[Run]]
    run_seeds: NotRequired[Organisers[list[int]]]  # only without a scoring secret; still no one else's
    scored_at: NotRequired[Public[str]]
    files: NotRequired[Public[list[str]]]
    epsilons: NotRequired[Public[Epsilons]]
    confidence_level: NotRequired[Public[float]]
    intervals: NotRequired[Public[Intervals]]
    uncertainty: NotRequired[Public[Uncertainty]]
    accuracy_intervals: NotRequired[Public[AccuracyIntervals]]
    ceiling: NotRequired[Public[Ceiling]]
    normalised_score: NotRequired[Public[Number]]
    normalised_score_note: NotRequired[Public[str]]
    diagnostics: NotRequired[Public[Diagnostics]]
    auxiliary: NotRequired[Public[Auxiliary]]
