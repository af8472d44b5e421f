"""A rehearsal of a CIFAR-10 challenge on CIFAR-shaped synthetic data: every stage, one verdict.

``python -m scoring rehearse`` does what an organiser does before a challenge, with the
kit's own functions: builds a split of ``synthetic-cifar10`` (``data_prep.build``),
trains N reference models (``scoring.references.build``, with their calibration), scores the
starter notebook as a participant's submission and the three sanity rows
(``scoring.score``, ``scoring.bench.zoo``), and prints one screen: accuracies of the
original, the references and the notebook; the time limit and its basis; the
notebook's time against it; F against the ceiling; and a pass / fail line per check.

On a GPU the defaults are the challenge's: the full synthetic set and the CIFAR-10
recipe. A CPU cannot train ResNet-18 on 50,000 images in a rehearsal (about 5 images
a second per core), so there the defaults are reduced, and the verdict says so: the
smaller set ``CPU_DATASET``, ``CPU_EPOCHS`` epochs and the small ResNet ``CPU_MODEL``.

Folder layout::

    OUT/
      split/         the split directory (reused when it is this rehearsal's)
      references/    the reference folder (resumes, extends)
      notebook/      the starter notebook's score folder
      sanity/        the sanity rows' submissions, score folders and leaderboard
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "starter.ipynb"
CPU_DATASET = "synthetic-cifar10-2000-500"
CPU_EPOCHS = 8
CPU_MODEL = "resnet_digits"
SANITY = ("sanity_identity", "sanity_noise", "sanity_retrain")
RETAIN_SHARE = 0.8  # the notebook keeps at least this share of the original's retain accuracy


@dataclass
class RehearsalOptions:
    """One rehearsal; None means the device's default (module docstring)."""

    dataset: str
    n_models: int
    out: Path
    device: str = "cpu"
    epochs: int | None = None
    model: str | None = None
    jobs: int = 1
    threads: int = 1
    notebook: Path = NOTEBOOK
    unsealed: bool = False
    progress: bool = True

    def resolved(self) -> RehearsalOptions:
        """These options with the device's defaults filled in (reduced on a CPU)."""
        from dataclasses import replace

        from starter_kit.data import SYNTHETIC_CIFAR10, dataset_family

        if dataset_family(self.dataset) != SYNTHETIC_CIFAR10:
            raise ValueError(
                f"--dataset {self.dataset!r}: a rehearsal runs on {SYNTHETIC_CIFAR10} or "
                f"{SYNTHETIC_CIFAR10}-TRAIN-TEST (e.g. synthetic-cifar10-2000-500)"
            )
        if str(self.device).startswith("cuda"):
            return self
        return replace(
            self,
            dataset=CPU_DATASET if self.dataset == SYNTHETIC_CIFAR10 else self.dataset,
            epochs=CPU_EPOCHS if self.epochs is None else self.epochs,
            model=CPU_MODEL if self.model is None else self.model,
        )


def run_rehearsal(options: RehearsalOptions) -> dict[str, Any]:
    """Every stage into ``options.out`` (layout above); returns what the verdict needs."""
    import time

    from data_prep.build import BuildOptions, build_split
    from scoring.bench.zoo import run_benchmark
    from scoring.references.build import build_references
    from scoring.score import ScoreOptions, score_submission
    from starter_kit.splits import load_split

    options = options.resolved()
    out = Path(options.out)
    seconds = {}
    started = time.perf_counter()
    split_dir = out / "split"
    if not (split_dir / "manifest.json").is_file():
        build_split(
            BuildOptions(
                dataset=options.dataset,
                split="public",
                out=split_dir,
                epochs=options.epochs,
                model=options.model,
                device=options.device,
                progress=options.progress,
            )
        )
    split = load_split(split_dir)
    if split.dataset.name != options.dataset or (options.epochs or split.recipe.epochs) != split.recipe.epochs:
        raise ValueError(
            f"{split_dir} holds another rehearsal ({split.dataset.name}, {split.recipe.epochs} epochs): "
            "choose another --out"
        )
    seconds["split"] = time.perf_counter() - started
    started = time.perf_counter()
    together = 4 if str(options.device).startswith("cuda") else 1
    # 2N references: a score uses N, and the ceiling at N needs two halves of N.
    refs = build_references(
        split,
        2 * options.n_models,
        out / "references",
        device=options.device,
        progress=options.progress,
        jobs=options.jobs,
        together=together,
    )
    seconds["references"] = time.perf_counter() - started
    score = ScoreOptions(
        submission=options.notebook,
        split_dir=split_dir,
        n_models=options.n_models,
        out=out / "notebook",
        refs_dir=refs.directory,
        threads=options.threads,
        device=options.device,
        unsealed=options.unsealed,
        progress=options.progress,
    )
    started = time.perf_counter()
    notebook = score_submission(score)
    seconds["notebook"] = time.perf_counter() - started
    started = time.perf_counter()
    from dataclasses import replace

    records, _ = run_benchmark(replace(score, out=out / "sanity"), list(SANITY), progress=options.progress)
    seconds["sanity"] = time.perf_counter() - started
    sanity = {record["submission"]["name"].removesuffix(".py"): record for record in records}
    return {
        "options": options,
        "split": split,
        "refs": refs,
        "notebook": notebook,
        "sanity": sanity,
        "seconds": seconds,
    }


def checks(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(PASS / FAIL / SKIP, check, what was found) for every check of the rehearsal."""
    split, refs, notebook, sanity = result["split"], result["refs"], result["notebook"], result["sanity"]
    original = split.original_metrics()
    chance = 1 / split.dataset.num_classes
    found = []

    def check(name: str, ok: bool | None, detail: str) -> None:
        found.append(("SKIP" if ok is None else "PASS" if ok else "FAIL", name, detail))

    test = original["test_accuracy"]
    check("the original model learns", test > 1.5 * chance, f"test accuracy {test:.3f}, chance {chance:.3f}")
    gap = refs.test_accuracy.mean() - test
    check(
        "references match the original", abs(gap) <= 0.1, f"test accuracy {refs.test_accuracy.mean():.3f} ({gap:+.3f})"
    )
    check("the notebook is scored", notebook["status"] == "scored", notebook["reason"] or "scored")
    times = notebook["time"]
    mean = times.get("charged_mean_seconds")
    # A run stopped at the allowance never completes, so the mean of the completed runs
    # understates a time rejection: a rejected notebook is outside the limit whatever it says.
    rejected = notebook["status"] == "rejected"
    check(
        "the notebook is within the time limit",
        False if rejected else None if mean is None else mean <= times["limit_seconds"],
        f"{_num(mean)} s against {times['limit_seconds']:.2f} s" + (" (rejected: see above)" if rejected else ""),
    )
    retain = notebook.get("RA_U")
    check(
        f"the notebook keeps {RETAIN_SHARE:.0%} of the retain accuracy",
        None if retain is None else retain >= RETAIN_SHARE * original["retain_accuracy"],
        f"{_num(retain)} against {original['retain_accuracy']:.3f}",
    )
    identity = sanity["sanity_identity"].get("F")
    check("sanity identity: F = 0", None if identity is None else identity == 0, f"F {_num(identity)}")
    ceiling = sanity["sanity_retrain"].get("ceiling")
    noise, retrain = sanity["sanity_noise"].get("F"), sanity["sanity_retrain"].get("F")
    if ceiling is None:
        check("sanity noise: F below the ceiling", None, "no ceiling (needs N >= 3 and 6 references)")
        check("sanity retrain: F inside the ceiling's interval", None, "no ceiling (needs N >= 3 and 6 references)")
    else:
        check(
            "sanity noise: F below the ceiling",
            None if noise is None else noise < ceiling["value"],
            f"F {_num(noise)}, ceiling {ceiling['value']:.3f}",
        )
        same_n = ceiling.get("n_models") == notebook.get("N")  # F falls with N: compare at one N only
        check(
            "sanity retrain: F inside the ceiling's interval",
            None if retrain is None or not same_n else ceiling["low"] <= retrain <= ceiling["high"],
            f"F {_num(retrain)}, interval [{ceiling['low']:.3f}, {ceiling['high']:.3f}]"
            + ("" if same_n else f" (ceiling at N = {ceiling.get('n_models')}, not the score's N)"),
        )
    return found


def verdict(result: dict[str, Any]) -> str:
    """The one-screen verdict of a rehearsal."""
    options, split, refs, notebook = result["options"], result["split"], result["refs"], result["notebook"]
    original = split.original_metrics()
    recipe = split.recipe
    times, seconds = notebook["time"], result["seconds"]
    basis = times["limit_basis"]
    ceiling = notebook.get("ceiling")
    lines = [
        f"rehearsal   {split.dataset.name}, {len(split.indices['retain'])} retain / "
        f"{len(split.indices['forget'])} forget / "
        f"{len(split.indices['test'])} test images, {recipe.model} x {recipe.epochs} epochs, N = {options.n_models}, "
        f"{options.device}",
    ]
    if not str(options.device).startswith("cuda"):
        lines.append("            reduced for a CPU: not the challenge's model or size (run it on a GPU for that)")
    lines += [
        "accuracy    retain  test",
        f"  original  {original['retain_accuracy']:.3f}   {original['test_accuracy']:.3f}",
        f"  refs      {refs.retain_accuracy.mean():.3f}   {refs.test_accuracy.mean():.3f}   (mean of {refs.n_models})",
        f"  notebook  {_num(notebook.get('RA_U'))}   {_num(notebook.get('TA_U'))}   ({notebook['status']})",
        f"limit       {times['limit_seconds']:.2f} s per run, basis: {basis['used']} (one model alone "
        f"{_num(basis['alone_seconds'], 2)} s, references as timed {_num(basis['shared_seconds'], 2)} s)",
        f"notebook    {_num(times.get('charged_mean_seconds'), 2)} s per run (charged mean) "
        f"against {times['limit_seconds']:.2f} s",
        f"score       F {_num(notebook.get('F'))} against the ceiling "
        + (
            f"{ceiling['value']:.3f} [{ceiling['low']:.3f}, {ceiling['high']:.3f}]"
            if ceiling
            else "(none: needs N >= 3)"
        )
        + f"; score {_num(notebook.get('score'))}",
        f"time        split {seconds['split']:.0f} s, references {seconds['references']:.0f} s, "
        f"notebook {seconds['notebook']:.0f} s, "
        f"sanity rows {seconds['sanity']:.0f} s",
    ]
    found = checks(result)
    lines += [f"{status:<4}        {name}: {detail}" for status, name, detail in found]
    failed = sum(status == "FAIL" for status, _, _ in found)
    lines.append(
        f"verdict     {'FAIL: ' + str(failed) + ' check(s) failed' if failed else 'PASS'}; files under {options.out}"
    )
    return "\n".join(lines)


def passed(result: dict[str, Any]) -> bool:
    return not any(status == "FAIL" for status, _, _ in checks(result))


def _num(value: SupportsFloat | None, digits: int = 3) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"
