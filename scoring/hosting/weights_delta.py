"""A returned model as an exact difference from the original, laid out to compress: what the prediction step uploads.

Codabench zips the prediction step's output (``shutil.make_archive``, deflate, after the
ingestion container has ended, so on the worker's time, not the participant's) and
uploads it to the server's storage; the scoring step, which alone holds the test set,
downloads it (a separate job, possibly on another worker). A full ResNet-18 state_dict
is 44.7 MB a run, and deflate shrinks float32 weights by only about 10%.

This format keeps the scored numbers bit for bit and zips far smaller, because
unlearning starts from the original and moves it little:

- a tensor bit-identical to the original's is stored as its name alone (methods that
  touch a few layers, such as selective synaptic dampening, upload those layers only);
- any other tensor of the original's dtype and shape is stored as the XOR of its bits
  with the original's, byte planes apart (all first bytes, then all second bytes ...):
  a small update leaves the sign, exponent and high mantissa bits unchanged, so the
  planes of high bytes are mostly zero and deflate to almost nothing;
- a tensor of another dtype, as its own bytes, planes apart.

The ingestion program only XORs and transposes (about as fast as ``torch.save``);
compressing is left to the worker's zip, whose time is not charged to the submission.

Layout: ``MAGIC``, a 4-byte little-endian header length, the header (JSON: format and a
list of ``name``, ``dtype``, ``shape``, ``kind`` in {same, xor, raw}), then the planes of
every xor and raw tensor in header order. Decoding reads no pickle, checks every name
and shape against the original and the length against the header: anything else is
one ValueError line.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import torch

MAGIC = b"KITDLT1\n"
DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float64,
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    )
}
SUFFIX = ".delta"


def _bytes(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's bytes as an (elements, itemsize) uint8 array (native byte order)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().reshape(flat.numel(), flat.element_size())


def encode(state: dict[str, torch.Tensor], original: dict[str, torch.Tensor]) -> bytes:
    """``state`` as a delta from ``original``; ValueError for a dtype this format does not carry."""
    entries, chunks = [], []
    for name, tensor in state.items():
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise ValueError(f"{name} is {tensor.dtype}, which a returned model may not hold")
        base = original.get(name)
        planes = _bytes(tensor)
        if base is not None and base.dtype == tensor.dtype and tuple(base.shape) == tuple(tensor.shape):
            planes = planes ^ _bytes(base)
            kind = "xor" if planes.any() else "same"
        else:
            kind = "raw"
        entries.append({"name": name, "dtype": dtype, "shape": list(tensor.shape), "kind": kind})
        if kind != "same":
            chunks.append(np.ascontiguousarray(planes.T).tobytes())
    header = json.dumps({"format": "kit weights delta 1", "tensors": entries}, separators=(",", ":")).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + b"".join(chunks)


def decode(data: bytes, original: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state_dict ``encode`` wrote, bit for bit; ValueError (one line) for anything else."""
    entries, payload = _header(data, original)
    sizes = [_size(entry) for entry in entries]
    expected = sum(size for entry, size in zip(entries, sizes, strict=True) if entry["kind"] != "same")
    if len(payload) != expected:
        raise ValueError(f"its weights hold {len(payload)} bytes, the header declares {expected}")
    state, offset = {}, 0
    for entry, size in zip(entries, sizes, strict=True):
        dtype, shape, base = DTYPES[entry["dtype"]], tuple(entry["shape"]), original[entry["name"]]
        if entry["kind"] == "same":
            state[entry["name"]] = base.detach().to("cpu").clone()
            continue
        itemsize = torch.empty((), dtype=dtype).element_size()
        planes = np.frombuffer(payload, np.uint8, size, offset).reshape(itemsize, size // itemsize).T
        offset += size
        if entry["kind"] == "xor":
            planes = planes ^ _bytes(base)
        flat = torch.from_numpy(planes.copy(order="C").reshape(-1)).view(dtype)
        state[entry["name"]] = flat.reshape(shape)
    return state


def _header(data: bytes, original: dict[str, torch.Tensor]) -> tuple[list[dict[str, Any]], memoryview]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ValueError("it is not a weights delta written by the ingestion program")
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        entries = json.loads(data[start : start + length])["tensors"]
    except (ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError("its header is not valid")
    seen = set()
    for entry in entries:
        name, dtype, shape, kind = (entry.get(k) for k in ("name", "dtype", "shape", "kind"))
        if name not in original or name in seen:
            raise ValueError(f"it names a tensor the original does not have once ({str(name)[:40]})")
        seen.add(name)
        if dtype not in DTYPES or kind not in ("same", "xor", "raw") or not isinstance(shape, list):
            raise ValueError(f"its header entry for {name} is not valid")
        if shape != list(original[name].shape):
            raise ValueError(f"{name} has shape {shape[:6]}, expected {list(original[name].shape)}")
        if kind != "raw" and DTYPES[dtype] != original[name].dtype:
            raise ValueError(f"its {name} is stored as a difference from a tensor of another dtype")
    return entries, memoryview(data)[start + length :]


def _size(entry: dict[str, Any]) -> int:
    numel = 1
    for extent in entry["shape"]:
        numel *= int(extent)
    return numel * torch.empty((), dtype=DTYPES[entry["dtype"]]).element_size()
