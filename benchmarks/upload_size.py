"""What one run costs the Codabench prediction output, per baseline: full state_dict against the weights delta.

    .venv/bin/python benchmarks/upload_size.py --split-dir results/digits-public [--baselines finetune ssd]

Runs each baseline once (run seed 1, one thread) on the split's original model and
prints, per run: the bytes of the returned state_dict as safetensors (what a run sends
the scorer, ``scoring.ingestion.tensor_payload``), of ``scoring.hosting.weights_delta``
(what the prediction step writes: safetensors of XOR byte planes), both zipped with
deflate as Codabench's worker zips its output (``shutil.make_archive``), the share of
tensors the run changed, and the time to encode (charged to the submission) and to
decode. For ResNet-18, build a CIFAR-shaped split on the CPU
(``python -m data_prep build --dataset synthetic-cifar10-512-128 --epochs 2``).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import zipfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.hosting.weights_delta import decode, encode  # noqa: E402
from scoring.ingestion.tensor_payload import encode as payload  # noqa: E402
from starter_kit.baselines import BASELINES  # noqa: E402
from starter_kit.splits import load_split  # noqa: E402
from starter_kit.submission import seed_everything, submission_loaders  # noqa: E402


def zipped(data: bytes) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("run", data)
    return len(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--baselines", nargs="*", default=sorted(BASELINES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = load_split(args.split_dir)
    original = {name: value.detach().clone() for name, value in split.original_model().state_dict().items()}
    print(f"{split.manifest['dataset']['name']}, {split.manifest['recipe']['model']}: one run per baseline")
    print(
        f"{'baseline':<15} {'changed':>8} {'payload':>11} {'zipped':>10} {'delta':>11} {'zipped':>10} "
        f"{'zip ratio':>9} {'encode s':>8} {'decode s':>8}"
    )
    for name in args.baselines:
        seed_everything(1)
        net = BASELINES[name](split.original_model(), *submission_loaders(split, 1))
        state = {key: value.detach().to("cpu").clone() for key, value in net.state_dict().items()}
        full = payload(state)
        started = time.perf_counter()
        delta = encode(state, original)
        encoding = time.perf_counter() - started
        started = time.perf_counter()
        decode(delta, original)
        decoding = time.perf_counter() - started
        changed = sum(not torch.equal(value, original[key]) for key, value in state.items())
        full_zip, delta_zip = zipped(full), zipped(delta)
        print(
            f"{name:<15} {changed:>3}/{len(state):<4} {len(full):>11,} {full_zip:>10,} {len(delta):>11,} "
            f"{delta_zip:>10,} {delta_zip / full_zip:>9.2f} {encoding:>8.3f} {decoding:>8.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
