"""Everything a score folder reports beside the official score, from its saved arrays alone.

This module owns the step from a scoring run's arrays to the statistics that make a
score trustworthy (issue "Scores people can trust"), and the recomputation of all of
it from a score folder (``python -m scoring recompute DIR``). It only assembles: the
statistics themselves are ``scoring.assess.uncertainty`` (intervals), ``scoring.assess.ceiling`` (the
estimator's ceiling), ``scoring.assess.diagnostics`` (per-run diagnostics) and
``scoring.assess.auxiliary`` (metrics from the literature), the official score is
``scoring.metric.forgetting``. Nothing here changes the official score.

The arrays (shapes [N, |S|] for confidences, [N] for per-model accuracies) live in the
score folder: ``unlearned_conf.npy`` and ``runs.csv`` (participant-facing), and in
``organisers/``: ``retrained_conf.npy`` and ``retrained_accuracies.csv`` (reference
outputs, which participants never get).
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from scoring.assess import auxiliary, uncertainty
from scoring.assess import ceiling as estimator_ceiling  # not "ceiling": assess() takes an argument of that name
from scoring.assess.run_record import diagnostics_record
from scoring.metric import forgetting as metric
from scoring.record import SCORE_FILE, read_score
from scoring.record.types import Ceiling
from starter_kit.splits import Split

ASSESSMENT_SEED = 2023  # every resampling draws from this seed: same arrays, same intervals
ACCURACY_RESAMPLES = 9999
ORGANISERS_DIR = "organisers"
ACCURACY_COLUMNS = ("retain_accuracy", "forget_accuracy", "test_accuracy")
COVERAGE_MEASURED_FROM_N = 16  # benchmarks/coverage.py measures the 95% promise from this N up

Accuracies = Mapping[str, NDArray[np.float64]]  # {retain_accuracy, forget_accuracy, test_accuracy: [N]}


def mean_interval(
    values: ArrayLike, confidence_level: float = uncertainty.CONFIDENCE_LEVEL, seed: int = ASSESSMENT_SEED
) -> list[float]:
    """Percentile bootstrap interval of the mean of per-model values [N] (accuracies)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(ACCURACY_RESAMPLES, len(values)))].mean(axis=1)
    tail = 100 * (1 - confidence_level) / 2
    return [float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))]


def official(
    unlearned_conf: NDArray[np.float64],
    retrained_conf: NDArray[np.float64],
    unlearned_acc: Accuracies,
    retrained_acc: Accuracies,
) -> tuple[dict[str, Any], NDArray[np.float64]]:
    """The official score's fields (score, F, RA/TA/FA of both sides, ratios, epsilon summary) and the epsilons."""
    n_models = unlearned_conf.shape[0]
    epsilons, undefined = metric.per_example_epsilons(unlearned_conf, retrained_conf, return_undefined=True)
    quality = metric.forgetting_quality_from_epsilons(epsilons, n_models)
    ra_u, ta_u = unlearned_acc["retain_accuracy"], unlearned_acc["test_accuracy"]
    ra_r, ta_r = retrained_acc["retain_accuracy"], retrained_acc["test_accuracy"]
    fields: dict[str, Any] = {
        "score": metric.official_score(quality, ra_u, ta_u, ra_r, ta_r),
        "F": quality,
        "RA_U": float(np.mean(ra_u)),
        "TA_U": float(np.mean(ta_u)),
        "FA_U": float(np.mean(unlearned_acc["forget_accuracy"])),
        "RA_R": float(np.mean(ra_r)),
        "TA_R": float(np.mean(ta_r)),
        "FA_R": float(np.mean(retrained_acc["forget_accuracy"])),
        "epsilons": {
            "mean": float(epsilons.mean()),
            "median": float(np.median(epsilons)),
            "share_at_cap": float(np.mean(epsilons >= metric.EPSILON_CAP)),
            "bin_width": metric.BIN_WIDTH,
            "bin_counts": [int(c) for c in metric.epsilon_bin_counts(epsilons, n_models)],
            # docs/metric.md: where no threshold survives, epsilon 0 (full points), counted here
            "undefined_examples": int(np.sum(undefined)),
        },
    }
    fields["retain_ratio"] = fields["RA_U"] / fields["RA_R"]
    fields["test_ratio"] = fields["TA_U"] / fields["TA_R"]
    return fields, epsilons


def assess(
    unlearned_conf: NDArray[np.float64],
    retrained_conf: NDArray[np.float64],
    unlearned_acc: Accuracies,
    retrained_acc: Accuracies,
    epsilons: NDArray[np.float64],
    ceiling: Ceiling | None,
    seed: int = ASSESSMENT_SEED,
) -> dict[str, Any]:
    """Intervals, normalised score, per-run diagnostics and auxiliary metrics of one scoring.

    ``unlearned_acc`` / ``retrained_acc``: {retain_accuracy, forget_accuracy,
    test_accuracy: arrays [N]}, run k pairing with reference k. ``ceiling``: the
    reference set's ``scoring.assess.ceiling.ceiling`` at this N (None: not reported). The
    normalised score F / ceiling is given only against a ceiling measured at this N
    (2N references); against a smaller one it is None and ``normalised_score_note`` says why.
    Below ``COVERAGE_MEASURED_FROM_N``, ``intervals.note`` says that the intervals of the
    score, F, the normalised score and the ceiling are approximate (``interval_note``).
    """
    n_models = unlearned_conf.shape[0]
    record: dict[str, Any] = {"intervals": {}, "confidence_level": uncertainty.CONFIDENCE_LEVEL}
    if n_models >= 3:  # the jackknife over model pairs needs three
        both = uncertainty.score_interval(
            unlearned_conf,
            retrained_conf,
            unlearned_acc["retain_accuracy"],
            unlearned_acc["test_accuracy"],
            retrained_acc["retain_accuracy"],
            retrained_acc["test_accuracy"],
            random_state=seed,
            epsilons=epsilons,
        )
        quality, score = both["forgetting_quality"], both["score"]
        record["intervals"].update(score=[score["low"], score["high"]], F=[quality["low"], quality["high"]])
        record["uncertainty"] = {
            key: quality[key]
            for key in (
                "method",
                "confidence_level",
                "n_resamples",
                "n_groups",
                "n_redraws",
                "group_size",
                "n_model_examples",
                "random_state",
                "standard_error",
                "standard_errors",
                "models_only",
            )
            if key in quality
        }
        record["uncertainty"]["score_standard_error"] = score["standard_error"]
    for side, accuracies in (("U", unlearned_acc), ("R", retrained_acc)):
        for short, column in zip(("RA", "FA", "TA"), ACCURACY_COLUMNS, strict=True):
            record["intervals"][f"{short}_{side}"] = mean_interval(accuracies[column], seed=seed)
    record["accuracy_intervals"] = {
        "method": "percentile bootstrap of the mean over models",
        "n_resamples": ACCURACY_RESAMPLES,
        "random_state": seed,
    }
    if ceiling is not None:
        record["ceiling"] = ceiling
        record["normalised_score"] = None
        if ceiling["n_models"] != n_models:  # F at N against a ceiling at fewer models would flatter it
            record["normalised_score_note"] = omitted_normalised_score(ceiling["n_models"], n_models)
        else:
            value = float(metric.forgetting_quality_from_epsilons(epsilons, n_models))
            record["normalised_score"] = float(estimator_ceiling.normalised_score(value, ceiling["value"]))
        if record["normalised_score"] is not None and "F" in record["intervals"]:
            # F's uncertainty and the ceiling's, by the delta method (scoring.assess.ceiling).
            _, low, high = estimator_ceiling.normalised_interval(quality, dict(ceiling))
            record["intervals"]["normalised_score"] = [low, high]
    note = interval_note(n_models)
    if note is not None and "score" in record["intervals"]:
        record["intervals"]["note"] = note
    record["diagnostics"] = diagnostics_record(unlearned_conf, retrained_conf)
    record["auxiliary"] = _auxiliary(unlearned_conf, retrained_conf)
    return record


def omitted_normalised_score(ceiling_n: int, n_models: int) -> str:
    """Why a score has no normalised score: its ceiling was measured at another N."""
    return (
        f"no normalised score: the ceiling was measured at N = {ceiling_n}, not at this N = {n_models} "
        f"(a ceiling at N needs 2N = {2 * n_models} references)"
    )


def interval_note(n_models: int) -> str | None:
    """Why the intervals of a score at N are approximate; None from ``COVERAGE_MEASURED_FROM_N`` up.

    The coverage benchmark holds the intervals to their 95% promise only from that N up;
    below, what it reports is kept out of this line (it changes with the estimator).
    """
    if n_models >= COVERAGE_MEASURED_FROM_N:
        return None
    return (
        f"approximate at N = {n_models}: the coverage of the intervals of the score, F, the normalised score "
        f"and the ceiling is measured at N >= {COVERAGE_MEASURED_FROM_N} only (benchmarks/coverage.py; "
        'docs/explanation/uncertainty.md, "What the intervals promise")'
    )


def _auxiliary(unlearned_conf: NDArray[np.float64], retrained_conf: NDArray[np.float64]) -> dict[str, Any]:
    found: dict[str, Any] = {
        "klom": {
            **auxiliary.klom_summary(unlearned_conf, retrained_conf),
            "paper": "Georgiev et al. 2024, Attribute-to-Delete: Machine Unlearning via Datamodel Matching (KLoM)",
            "better": "lower",
        }
    }
    if unlearned_conf.shape[0] >= 3:
        lira = auxiliary.likelihood_ratio_accuracy(unlearned_conf, retrained_conf)
        found["ulira"] = {
            "mean": lira["mean"],
            "median": lira["median"],
            "paper": "Hayes et al. 2024, Inexact Unlearning Needs More Careful Evaluations (U-LiRA)",
            "better": "closer to 0.5",
        }
    return found


def accuracies_from_frame(frame: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    return {column: frame[column].to_numpy(dtype=np.float64) for column in ACCURACY_COLUMNS}


def _confidences(path: Path) -> NDArray[np.float64]:
    """A saved (models, forget examples) array of finite floats: no pickle; ValueError in one line otherwise."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path}: not a .npy array of numbers ({' '.join(str(error).split())[:120]})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "fiu" or 0 in array.shape:
        raise ValueError(f"{path}: expected a non-empty 2-D array of numbers (models x forget examples)")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: holds values that are not finite numbers")
    return array.astype(np.float64, copy=False)


def _accuracies(path: Path, n_models: int) -> dict[str, NDArray[np.float64]]:
    """The accuracy columns of a saved runs table, one row per model; ValueError in one line otherwise."""
    try:
        found = accuracies_from_frame(pd.read_csv(path))
    except (KeyError, ValueError, TypeError, OSError) as error:
        columns = ", ".join(ACCURACY_COLUMNS)
        raise ValueError(f"{path}: not a table with the columns {columns} ({type(error).__name__})") from None
    if any(values.shape != (n_models,) or not np.isfinite(values).all() for values in found.values()):
        raise ValueError(f"{path}: expected {n_models} rows of finite accuracies, one per model of its .npy")
    return found


def recompute(folder: str | Path) -> dict[str, Any]:
    """Every number of a score folder's score.json, recomputed from its saved arrays alone.

    Returns {"official": ..., "assessment": ..., "matches": bool, "differences": [...]}:
    the official fields and the statistics recomputed, and where they differ from what
    score.json says.
    """
    folder = Path(folder)
    record_path = folder / SCORE_FILE
    if not record_path.is_file():
        raise FileNotFoundError(f"{folder} has no score.json: give a folder written by 'python -m scoring score'")
    record = read_score(record_path)  # ValueError: one line naming the file and the field
    if record.get("status") != "scored":
        raise ValueError(
            f"{folder} holds a {record.get('status')} submission: only scored ones have arrays to recompute"
        )
    organisers = folder / ORGANISERS_DIR
    needed = [
        folder / "unlearned_conf.npy",
        folder / "runs.csv",
        organisers / "retrained_conf.npy",
        organisers / "retrained_accuracies.csv",
    ]
    missing = [str(p.relative_to(folder)) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}: recomputing needs the organisers' copy of the folder"
        )
    unlearned, retrained = _confidences(needed[0]), _confidences(needed[2])
    if unlearned.shape[1] != retrained.shape[1]:
        raise ValueError(
            f"{folder}: its arrays cover {unlearned.shape[1]} and {retrained.shape[1]} forget examples, not the same"
        )
    unlearned_acc, retrained_acc = _accuracies(needed[1], len(unlearned)), _accuracies(needed[3], len(retrained))
    fields, epsilons = official(unlearned, retrained, unlearned_acc, retrained_acc)
    assessment = assess(
        unlearned,
        retrained,
        unlearned_acc,
        retrained_acc,
        epsilons,
        record.get("ceiling"),
        seed=int(record.get("accuracy_intervals", {}).get("random_state", ASSESSMENT_SEED)),
    )
    differences = [key for key, value in fields.items() if not _same(value, record.get(key))]
    differences += [
        key
        for key in ("intervals", "normalised_score", "diagnostics", "auxiliary")
        if key in record and not _same(assessment.get(key), record.get(key))
    ]
    return {"official": fields, "assessment": assessment, "matches": not differences, "differences": differences}


def _same(a: Any, b: Any) -> bool:
    """Equal as score.json stores them (JSON round trip; floats to 12 significant digits)."""
    return bool(_canonical(a) == _canonical(b))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(f"{float(value):.12g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


def reference_ceiling(split: Split, n_models: int, refs_dir: str | os.PathLike[str] | None = None) -> Ceiling | None:
    """The estimator's ceiling at N for a split's reference set, using every reference there.

    Computed once per (reference set, N) and kept as ``ceiling-N<N>.json`` in the
    reference folder (keyed by the sha256 of the references it used, so a larger set
    recomputes it). None where N is too small for it (N < 3).
    """
    from scoring.references.build import count_references, load_references
    from starter_kit.atomic import write_json

    if n_models < 3:
        return None
    refs = load_references(split, max(count_references(split, refs_dir), n_models), refs_dir)
    cache = Path(refs.directory) / f"ceiling-N{n_models}.json"
    if cache.is_file():
        try:
            kept = json.loads(cache.read_text())
            if kept.get("reference_set_sha256") == refs.sha256:
                return typing.cast(Ceiling, kept)
        except (json.JSONDecodeError, OSError):
            pass
    try:
        found = estimator_ceiling.ceiling(refs.forget_conf, n_models, random_state=ASSESSMENT_SEED)
    except ValueError:  # too few references to split in two halves of three or more
        return None
    found.pop("interval", None)  # the first split's full interval record: bulky, not needed beside the value
    result = typing.cast(Ceiling, {**json_safe(found), "reference_set_sha256": refs.sha256})
    write_json(cache, result)
    return result


def json_safe(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays to Python, NaN and infinity to None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value
