"""Training speed of the public recipe beside a tutorial-style loop, in one run.

The kit's loop cuts whole batches from in-memory tensors (starter_kit.loaders); the
baseline is what most tutorials write: a DataLoader over a TensorDataset that indexes
one example at a time and collates. Same model, recipe, epochs and data. Each loop runs with one torch thread (the kit's
default for digits) and with torch's default thread count.

    python benchmarks/train_speed.py [--dataset digits] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from starter_kit.data import load_dataset
from starter_kit.models import build_model
from starter_kit.recipe import default_recipe, lr_factor
from starter_kit.training import train_model


def tutorial_loop(recipe, images, labels, num_classes, seed):
    """The plain loop: per-example indexing and default collation, else the same recipe."""
    torch.manual_seed(seed)
    model = build_model(recipe.model, images.shape[1], num_classes)
    loader = DataLoader(TensorDataset(images, labels), batch_size=recipe.batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    total = recipe.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(recipe, step, total))
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(recipe.epochs):
        for inputs, targets in loader:
            loss = criterion(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, args.data_root)
    recipe = default_recipe(args.dataset)
    n = int(0.7 * len(dataset.labels))  # about the size of a training part
    images, labels = dataset.images[:n], dataset.labels[:n]
    default_threads = torch.get_num_threads()
    loops = {
        "kit recipe (batched tensor indexing)": lambda s: train_model(
            recipe, images, labels, dataset.num_classes, s, progress=False
        ),
        "tutorial loop (per-sample DataLoader)": lambda s: tutorial_loop(
            recipe, images, labels, dataset.num_classes, s
        ),
    }
    runs = [(name, threads) for threads in sorted({1, default_threads}) for name in loops]
    seconds: dict[tuple[str, int], list[float]] = {run: [] for run in runs}
    for repeat in range(args.repeats):  # interleaved, so load on the machine hits all alike
        for name, threads in runs:
            torch.set_num_threads(threads)
            started = time.perf_counter()
            loops[name](repeat)
            seconds[(name, threads)].append(time.perf_counter() - started)
    baseline = min(seconds[("tutorial loop (per-sample DataLoader)", default_threads)])
    rows = []
    for (name, threads), times in seconds.items():
        best = min(times)
        rows.append(
            {
                "loop": name,
                "threads": threads,
                "seconds per model": round(best, 2),
                "images per second": round(n * recipe.epochs / best),
                f"speed-up vs tutorial, {default_threads} threads": round(baseline / best, 2),
            }
        )
    print(
        f"{args.dataset}: {n} images x {recipe.epochs} epochs, model {recipe.model}, "
        f"batch {recipe.batch_size}, best of {args.repeats}"
    )
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
