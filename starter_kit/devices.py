"""The device names the kit's commands accept, and whether this machine has the device.

``--device`` of ``data_prep build`` and of ``scoring references`` / ``score``: a typo
(``tpu``, ``gpu``) is a one-line usage error at the door, not a torch traceback after
minutes of loading, nor silently ignored when nothing needs training. The name check
imports nothing; ``check_available`` imports torch only when called.
"""

from __future__ import annotations

import argparse
import re

DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")


def parse_device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` as given (argparse ``type=``); anything else is a usage error."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device the kit runs on: use cpu, cuda or cuda:N")
    return text


def check_available(device: str) -> None:
    """Raise a one-line ValueError when ``device`` is CUDA and torch sees none."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for, but torch sees no CUDA device: use --device cpu")
