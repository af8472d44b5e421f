"""How fast the scorer reads a returned model from the worker's result pipe.

    .venv/bin/python benchmarks/channel_speed.py [--repeats 3]

A writer thread sends one message and a payload the size of a model's ``torch.save``
(ResNet-18 for CIFAR-10 is 42.7 MiB) through a real pipe, as the worker does; the
scorer's ``ResultChannel`` reads it. This time is inside every run's measured time, so
it must stay small next to the limit: reading into bytes (copying the buffer on every
64 KiB a pipe delivers) took 6.3 s for 43 MiB, longer than a fast submission's run.
Prints the median read time and throughput per size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.ingestion.channel import ResultChannel  # noqa: E402

SIZES_MIB = {
    "resnet_digits (digits)": 0.3,
    "resnet18_cifar (CIFAR-10)": 42.7,
    "resnet18 (ImageNet stem)": 44.8,
    "4x resnet18": 179.0,
}


def read_once(size: int) -> float:
    read, write = os.pipe()
    payload = b"\x01" * size

    def writer():
        with os.fdopen(write, "wb") as handle:
            handle.write(json.dumps({"event": "run", "bytes": size}).encode() + b"\n" + payload)

    thread = threading.Thread(target=writer)
    thread.start()
    channel = ResultChannel(read)
    started = time.perf_counter()
    message = channel.message(timeout=120)
    if message is None:
        raise SystemExit("error: the writer sent nothing within 120 s")
    data = channel.payload(message["bytes"], limit=size, timeout=120)
    seconds = time.perf_counter() - started
    thread.join()
    os.close(read)
    assert data is not None and len(data) == size
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"{'model':<28} {'MiB':>7} {'read s (median)':>16} {'MiB/s':>9}")
    for name, mib in SIZES_MIB.items():
        size = int(mib * 2**20)
        seconds = statistics.median(read_once(size) for _ in range(args.repeats))
        print(f"{name:<28} {mib:>7.1f} {seconds:>16.4f} {mib / seconds:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
