"""A returned model as an exact difference from the original, laid out to compress: what the prediction step uploads.

Codabench zips the prediction step's output (``shutil.make_archive``, deflate, after the
ingestion container has ended, so on the worker's time, not the participant's) and
uploads it to the server's storage; the scoring step, which alone holds the test set,
downloads it (a separate job, possibly on another worker). A full ResNet-18 state_dict
is 44.7 MB a run, and deflate shrinks float32 weights by only about 10%.

This format keeps the scored numbers bit for bit and zips far smaller, because
unlearning starts from the original and moves it little: each tensor is stored as the
XOR of its bits with the original's, byte planes apart (all first bytes, then all
second bytes ...). A tensor the run left untouched is all zeros, which deflate about
1000:1 (methods that touch a few layers, such as selective synaptic dampening, cost
little more than those layers); a small update leaves the sign, exponent and high
mantissa bits unchanged, so the planes of high bytes are mostly zero too.

The file is safetensors, the format a run's model crosses the seal in
(``scoring.ingestion.tensor_payload``), with ``__metadata__`` ``{"format": FORMAT}``:
each tensor under its own name, dtype and shape, its bytes the XOR planes. So the
scoring step reads it with the same strict parser and the same checks (the original's
names, dtypes and shapes exactly, byte ranges that tile the file, nothing allocated
before; no pickle), then undoes the planes and the XOR and checks the weights are finite.
The ingestion program only XORs and transposes; compressing is left to the worker's zip,
whose time is not charged to the submission.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as _save_safetensors

from scoring.ingestion.tensor_payload import PayloadError, finite_problem, layout, payload_limit

FORMAT = "kit xor byte planes 1"
SUFFIX = ".safetensors"


def _bytes(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's bytes as an (elements, itemsize) uint8 array (little-endian, as safetensors)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().reshape(flat.numel(), flat.element_size())


def encode(state: Mapping[str, torch.Tensor], original: Mapping[str, torch.Tensor]) -> bytes:
    """``state`` as XOR planes against ``original``; ValueError unless names, dtypes and shapes are the original's."""
    if list(state) != list(original):
        raise ValueError("its names are not the original's")
    tensors = {}
    for name, tensor in state.items():
        base = original[name]
        if tensor.dtype != base.dtype or tuple(tensor.shape) != tuple(base.shape):
            raise ValueError(
                f"{name} is {tensor.dtype} {list(tensor.shape)}, the original's {base.dtype} {list(base.shape)}"
            )
        planes = np.ascontiguousarray((_bytes(tensor) ^ _bytes(base)).T).reshape(-1)
        tensors[name] = torch.from_numpy(planes).view(base.dtype).reshape(base.shape)
    return bytes(_save_safetensors(tensors, metadata={"format": FORMAT}))


def decode(data: bytes, original: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state_dict ``encode`` wrote, bit for bit, finite; PayloadError (one line) for anything else."""
    ranges = layout(data, original, metadata={"format": FORMAT})
    state = {}
    for name, base in original.items():
        begin, end = ranges[name]
        itemsize, numel = base.element_size(), base.numel()
        planes = np.frombuffer(data, np.uint8, end - begin, begin).reshape(itemsize, numel).T
        flat = np.ascontiguousarray(planes ^ _bytes(base)).reshape(-1)
        state[name] = torch.from_numpy(flat).view(base.dtype).reshape(base.shape)
    problem = finite_problem(state)
    if problem:
        raise PayloadError(problem)
    return state


def read(path: Path, original: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`decode` of a file, whose size is checked before it is read (FileNotFoundError when absent)."""
    size, limit = Path(path).stat().st_size, payload_limit(original)
    if size > limit:
        raise PayloadError(f"its file holds {size} bytes, more than a model of the original's can need ({limit})")
    return decode(Path(path).read_bytes(), original)
