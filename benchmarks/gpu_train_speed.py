"""Seconds per epoch of the cifar10 recipe on one GPU: the kit's loop, each step of the fast path,
several models per GPU.

ResNet-18 with the CIFAR stem (``resnet18_cifar``), the cifar10 recipe (SGD, batch 256,
flip + crop), on ``synthetic-cifar10`` images (same shapes as CIFAR-10, so the same
arithmetic; no data files needed). Rows, each adding one thing to the row above, all
measured in this run so the ratios compare like with like:

    (a) the kit's loop (starter_kit.training, fast=False): CPU-side batches and flip + crop, copied over
    (b) data resident on the device; order, flips and offsets still drawn on the host per batch
    (c) + augmentation on the device: each epoch shuffled, flipped and cropped in one gather
    (d) + bf16 autocast (channels_last in every row, as the kit's loop already trains)
    (e) + the whole step (forward, backward, SGD) captured in one CUDA graph and replayed
    (f) + torch.compile (default mode: inductor's fused kernels) inside that graph
    (i) (f), or (e) when nothing is compiled, + the SGD update as one fused kernel
        (FastOptions.fused_sgd) instead of six foreach passes
    (g) the best single-model row with k models in one process, each on its own CUDA stream
        (starter_kit.fast_training.train_fast_many)
    (h) the best single-model row in k processes sharing the GPU (spawn)

s per model-epoch = wall time / (models x epochs): the aggregate throughput, what 512
reference models cost. Every row first trains once on two batches (CUDA context,
cuDNN autotuning, compilation, capture), then times ``--epochs`` epochs; the warm-up is
its own column, paid once per process. Target (issue 14): at most 0.6 s per model-epoch
in aggregate on one H100 for 50,000 images.

    python benchmarks/gpu_train_speed.py                                  # the full table (minutes)
    python benchmarks/gpu_train_speed.py --epochs 2 --images 10000        # a quick look
    python benchmarks/gpu_train_speed.py --device cpu --images 512 --epochs 1   # smoke test of the script
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

RECIPE_DATASET = "cifar10"
REFERENCES, RETAIN_IMAGES = 512, 45_000  # a CIFAR-10 challenge: N = 512 references on 45,000 retain images


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test of this script)")
    parser.add_argument("--images", type=int, default=50_000, help="training images (default 50,000 as CIFAR-10)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per row, after a warm-up (default 3)")
    parser.add_argument(
        "--together", default=None, help="k for row (g), comma-separated (default 2,4,8 on cuda, 2 on cpu)"
    )
    parser.add_argument(
        "--processes", default=None, help="k for row (h), comma-separated (default 2,4 on cuda, 2 on cpu)"
    )
    parser.add_argument(
        "--compile-modes",
        default=None,
        help="torch.compile modes for row (f), comma-separated (default, max-autotune-no-cudagraphs); "
        "none to skip (default: default on cuda, none on cpu, where compiling takes minutes)",
    )
    parser.add_argument("--model", default=None, help="override the recipe's model (default resnet18_cifar)")
    parser.add_argument("--skip-kit", action="store_true", help="skip row (a), the slowest")
    parser.add_argument(
        "--rows", default="abcdefghi", help="which rows to run, by letter (default abcdefghi; e.g. fig)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.images < 2 or args.epochs < 1:
        parser.error("--images must be at least 2 and --epochs at least 1")
    cuda = args.device.startswith("cuda")

    def counts(text, default):
        try:
            values = [int(k) for k in (text or default).split(",") if k.strip()]
        except ValueError:
            parser.error(f"expected comma-separated whole numbers, got {text!r}")
        if any(k < 1 for k in values):
            parser.error(f"counts must be at least 1, got {text!r}")
        return values

    args.rows = set(args.rows.lower()) - ({"a"} if args.skip_kit else set())
    if not args.rows <= set("abcdefghi"):
        parser.error(f"--rows takes letters a to i, got {''.join(sorted(args.rows))!r}")
    args.together = counts(args.together, "2,4,8" if cuda else "2")
    args.processes = counts(args.processes, "2,4" if cuda else "2")
    modes = args.compile_modes if args.compile_modes is not None else ("default" if cuda else "none")
    args.compile_modes = [m.strip() for m in modes.split(",") if m.strip() and m.strip().lower() != "none"]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"error: --device {args.device} but torch sees no CUDA device: this benchmark times GPU training; "
            "run it on a GPU machine, or use --device cpu --images 512 --epochs 1 for a smoke test",
            file=sys.stderr,
        )
        return 2
    import pandas as pd

    from starter_kit.data import make_synthetic_cifar10
    from starter_kit.recipe import default_recipe

    if args.device == "cpu":
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    recipe = default_recipe(RECIPE_DATASET).with_epochs(args.epochs)
    if args.model:
        from dataclasses import replace

        recipe = replace(recipe, model=args.model)
    data = make_synthetic_cifar10(args.images, 20, seed=args.seed)
    images, labels = data.images[: args.images], data.labels[: args.images]
    card = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(
        f"{card}, torch {torch.__version__}: {recipe.model}, {args.images} images of 3x32x32 (synthetic-cifar10), "
        f"batch {recipe.batch_size}, {args.epochs} timed epochs per row after a warm-up",
        flush=True,
    )

    steps: list[tuple[str, dict | None]] = [("(a) kit loop (starter_kit.training)", None)]
    eager = dict(cuda_graph=False)
    steps += [
        ("(b) data on device", dict(eager, augment_on_device=False, autocast=False)),
        ("(c) + device augmentation", dict(eager, augment_on_device=True, autocast=False)),
        ("(d) + bf16 autocast", dict(eager, augment_on_device=True, autocast=True)),
        ("(e) + CUDA graph of the whole step", dict(augment_on_device=True, autocast=True, cuda_graph=True)),
    ]
    for mode in args.compile_modes:
        steps.append(
            (f"(f) + torch.compile {mode}", dict(augment_on_device=True, autocast=True, cuda_graph=True, compile=mode))
        )
    fused_mode = args.compile_modes[0] if args.compile_modes else None
    steps.append(
        (
            f"(i) {'(f)' if fused_mode else '(e)'} + fused SGD kernel",
            dict(augment_on_device=True, autocast=True, cuda_graph=True, compile=fused_mode, fused_sgd=True),
        )
    )
    steps = [(name, options) for name, options in steps if name[1] in args.rows]

    rows = []
    best = None

    def measure(name, models, processes, run):
        print(f"  {name} ...", end="", flush=True)
        try:
            warmup, wall, peak = run()
        except Exception as error:  # report and go on: one failing row must not hide the others
            print(f" failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}", flush=True)
            rows.append(
                {
                    "configuration": name,
                    "models": models,
                    "processes": processes,
                    "warm-up s": None,
                    "s per epoch": None,
                    "s per model-epoch": None,
                    "peak GiB": None,
                    "note": f"failed: {type(error).__name__}",
                }
            )
            return None
        per_model_epoch = wall / (models * args.epochs)
        print(f" {per_model_epoch:.3f} s per model-epoch", flush=True)
        rows.append(
            {
                "configuration": name,
                "models": models,
                "processes": processes,
                "warm-up s": round(warmup, 2),
                "s per epoch": round(wall / args.epochs, 4),
                "s per model-epoch": round(per_model_epoch, 4),
                "peak GiB": None if peak is None else round(peak / 2**30, 2),
                "note": "",
            }
        )
        return per_model_epoch

    for name, options in steps:
        per_model_epoch = measure(
            name, 1, 1, partial(time_in_process, recipe, images, labels, args.device, args.seed, options, 1)
        )
        if options is not None and per_model_epoch is not None and (best is None or per_model_epoch < best[1]):
            best = (options, per_model_epoch, name.split(" ", 1)[0])

    if best is not None:
        options, _, label = best
        for k in args.together if "g" in args.rows else []:
            measure(
                f"(g) {label} x {k} models in one process",
                k,
                1,
                partial(time_in_process, recipe, images, labels, args.device, args.seed, options, k),
            )
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "data.pt"
            torch.save({"images": images, "labels": labels}, path)
            for k in args.processes if "h" in args.rows else []:
                measure(
                    f"(h) {label} x {k} processes",
                    k,
                    k,
                    partial(time_processes, k, recipe, path, args.device, args.seed, options),
                )

    table = pd.DataFrame(rows)
    if not table["note"].astype(bool).any():
        table = table.drop(columns="note")  # nothing failed: no empty column
    if table["peak GiB"].isna().all():
        table = table.drop(columns="peak GiB")  # the CPU: no device memory to report
    baseline = table["s per model-epoch"].iloc[0] if "a" in args.rows else None
    if baseline is not None and baseline == baseline:
        table["speed-up vs (a)"] = (baseline / table["s per model-epoch"]).round(2)
    scale = RETAIN_IMAGES / args.images
    unit = "GPU-hours" if args.device.startswith("cuda") else "CPU-hours"
    full_epochs = default_recipe(RECIPE_DATASET).epochs
    table[f"{unit}, {REFERENCES} refs"] = (table["s per model-epoch"] * scale * full_epochs * REFERENCES / 3600).round(
        2
    )
    print()
    print(
        f"{card}: seconds per epoch of {args.images} images; s per model-epoch = wall time / (models x epochs); "
        f"{unit} = s per model-epoch scaled to {RETAIN_IMAGES} retain images x {full_epochs} epochs "
        f"x {REFERENCES} models"
    )
    print(table.to_string(index=False))
    if args.device.startswith("cuda"):
        print("target (issue 14): <= 0.6 s per model-epoch in aggregate for 50,000 images on one H100")
    return 0


def time_in_process(recipe, images, labels, device, seed, options, models) -> tuple[float, float, int | None]:
    """(warm-up seconds, wall seconds of the timed epochs, peak device bytes) of ``models`` trained at once here."""
    import torch

    from starter_kit.fast_training import FastOptions, forget_trainers, train_fast_many
    from starter_kit.training import train_model

    cuda = str(device).startswith("cuda")
    forget_trainers()  # each row starts from nothing: its own warm-up, its own memory
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    warm = slice(0, min(len(images), 2 * recipe.batch_size))  # the same batch shape as the timed run
    seeds = [seed + k for k in range(models)]
    started = time.perf_counter()
    if options is None:  # the kit's loop, forced even on CUDA
        train_model(recipe.with_epochs(1), images[warm], labels[warm], 10, seed, device, progress=False, fast=False)
        _sync(device)
        warmup = time.perf_counter() - started
        started = time.perf_counter()
        train_model(recipe, images, labels, 10, seed, device, progress=False, fast=False)
        _sync(device)
        wall = time.perf_counter() - started
    else:
        options = FastOptions(**options)
        train_fast_many(
            recipe.with_epochs(1), images[warm], labels[warm], 10, seeds, device, options=options, progress=False
        )
        warmup = time.perf_counter() - started
        results = train_fast_many(recipe, images, labels, 10, seeds, device, options=options, progress=False)
        _check(results, options)
        wall = sum(results[0].epoch_seconds)
    peak = torch.cuda.max_memory_allocated() if cuda else None
    forget_trainers()
    return warmup, wall, peak


def _check(results, options) -> None:
    """A row that silently fell back (no compilation, no graph) would be mislabelled: fail it instead."""
    for result in results:
        if (options.compile and not result.compiled) or (
            options.cuda_graph and not result.cuda_graph and result.device.startswith("cuda")
        ):
            raise RuntimeError(f"fell back: {result.notes}")


def _sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_processes(k, recipe, data_path, device, seed, options) -> tuple[float, float, None]:
    """(longest warm-up, wall seconds from the first start to the last finish, None) of k trainings at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(k)
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(recipe, str(data_path), device, seed + i, options, barrier, results))
        for i in range(k)
    ]
    for worker in workers:
        worker.start()
    outcomes: list[Any] = []
    try:
        while len(outcomes) < k:
            try:
                outcomes.append(results.get(timeout=5))
            except queue.Empty:
                if not any(worker.is_alive() for worker in workers) and results.empty():
                    codes = [worker.exitcode for worker in workers]
                    raise RuntimeError(f"worker processes ended without a result (exit codes {codes})") from None
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.terminate()
    errors = [o[1] for o in outcomes if o[0] == "error"]
    if errors:
        raise RuntimeError(errors[0])
    starts, ends, warmups = zip(*(o[1:] for o in outcomes), strict=True)
    return max(warmups), max(ends) - min(starts), None


def _worker(recipe, data_path, device, seed, options, barrier, results) -> None:
    try:
        import torch

        from starter_kit.fast_training import FastOptions, train_fast

        if device == "cpu":
            torch.set_num_threads(1)
        data = torch.load(data_path, weights_only=True)
        images, labels = data["images"], data["labels"]
        options = FastOptions(**options)
        started = time.perf_counter()
        warm = slice(0, min(len(images), 2 * recipe.batch_size))
        train_fast(recipe.with_epochs(1), images[warm], labels[warm], 10, seed, device, options=options, progress=False)
        warmup = time.perf_counter() - started
    except Exception as error:
        barrier.abort()
        results.put(("error", f"{type(error).__name__}: {error}"))
        return
    try:
        barrier.wait(timeout=3600)  # every process warmed up: start the clock together
        start = time.time()
        result = train_fast(recipe, images, labels, 10, seed, device, options=options, progress=False)
        _check([result], options)
        results.put(("ok", start, time.time(), warmup))
    except Exception as error:
        results.put(("error", f"{type(error).__name__}: {error}"))


if __name__ == "__main__":
    sys.exit(main())
