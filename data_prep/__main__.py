"""``python -m data_prep build|show``: build a split directory, or describe one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.build import SPLIT_SEEDS, BuildOptions, build_split, describe_split
from data_prep.splitting import STRATEGIES
from starter_kit.data import CIFAR10_ENV, DATASETS
from starter_kit.devices import parse_device
from starter_kit.training import use_threads


def _classes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated class numbers like 3,7, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Build a split directory (the split's indices and its original model), or describe one. "
        "'python -m data_prep COMMAND --help' describes each command.",
    )
    commands = top.add_subparsers(dest="command", required=True)

    build = commands.add_parser(
        "build",
        help="build a split directory with its original model",
        description="Split a dataset into train (= retain + forget), validation and test, train the original "
        "model on train with the dataset's public recipe, and write both into --out (atomically: an interrupted "
        "build leaves nothing that looks done). The same options give byte-identical indices and manifest.",
    )
    build.add_argument(
        "--dataset",
        required=True,
        help=f"one of {', '.join(DATASETS)}; synthetic-cifar10-TRAIN-TEST (e.g. synthetic-cifar10-400-100) for a "
        "small synthetic one, to rehearse without the real CIFAR-10 files",
    )
    build.add_argument(
        "--split",
        default="public",
        help="which split: "
        + ", ".join(f"{name} (seed {seed})" for name, seed in SPLIT_SEEDS.items())
        + " (default public)",
    )
    build.add_argument("--out", required=True, type=Path, help="split directory to write")
    build.add_argument("--seed", type=int, help="split seed (default: the split's own, as --split says)")
    build.add_argument(
        "--forget",
        default="random",
        help=f"forget-set strategy, one of {', '.join(STRATEGIES)}: random examples, whole classes "
        "(--forget-classes) or whole groups (--groups) (default random)",
    )
    build.add_argument(
        "--forget-fraction", type=float, default=0.1, help="share of train to forget (random, group; default 0.1)"
    )
    build.add_argument(
        "--forget-classes", type=_classes, default=(), help="classes to forget, e.g. 3,7 (class; required there)"
    )
    build.add_argument("--groups", type=Path, help=".npy with one integer group id per image (group; required there)")
    build.add_argument("--data-root", type=Path, help=f"CIFAR-10 archive or folder (default ${CIFAR10_ENV})")
    build.add_argument(
        "--epochs", type=int, help="override the recipe's epochs (default: the recipe's; recorded in the manifest)"
    )
    build.add_argument(
        "--device", default="cpu", type=parse_device, help="cpu (bitwise reproducible), cuda or cuda:N (default cpu)"
    )
    build.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: fastest and steadiest for digits)"
    )
    build.add_argument("--force", action="store_true", help="replace an existing output directory")
    build.add_argument("--quiet", action="store_true", help="no progress bar")

    show = commands.add_parser(
        "show",
        help="print a split's sizes, class counts and original accuracies",
        description="Print a split directory's dataset, sizes, class counts and its original model's accuracies.",
    )
    show.add_argument("split_dir", type=Path, metavar="SPLIT_DIR", help="a split directory from 'build'")
    show.add_argument("--data-root", type=Path, help=f"CIFAR-10 archive or folder (default ${CIFAR10_ENV})")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "build":
            use_threads(args.threads)
            out = build_split(
                BuildOptions(
                    dataset=args.dataset,
                    split=args.split,
                    out=args.out,
                    seed=args.seed,
                    forget=args.forget,
                    forget_fraction=args.forget_fraction,
                    forget_classes=args.forget_classes,
                    groups_file=args.groups,
                    data_root=args.data_root,
                    force=args.force,
                    epochs=args.epochs,
                    device=args.device,
                    progress=not args.quiet,
                )
            )
            print(describe_split(out, args.data_root))
        else:
            print(describe_split(args.split_dir, args.data_root))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
