"""A returned model as data: safetensors written by the worker, read by a strict parser of the scorer's own.

What crosses the seal is a safetensors file (the format of huggingface/safetensors, whose
``README.md`` and the Rust crate's ``safetensors/src/tensor.rs`` are its specification):
8 bytes, a little-endian u64 ``N``; ``N`` bytes of a UTF-8 JSON object mapping each tensor's
name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the byte buffer
that follows), with an optional ``__metadata__`` map of strings; then the byte buffer,
little-endian, C order. No pickle, no compression: nothing in it is code, and nothing
inflates.

The worker writes it with the library (:func:`encode`). The scorer trusts neither the
library nor the bytes: :func:`layout` checks, before anything the file declares is
allocated, everything ``SafeTensors::read_metadata`` and ``Metadata::validate`` check in
``tensor.rs`` (the 8-byte prefix is there: ``HeaderTooSmall``; the header length is
bounded: ``HeaderTooLarge``, here by what the original model's header can need, not
100 MB; it fits the file: ``InvalidHeaderLength``; UTF-8: ``InvalidHeader``; it starts with
``{``: ``InvalidHeaderStart``; JSON: ``InvalidHeaderDeserialization``; each tensor's byte
count is its shape times its dtype's size: ``TensorInvalidInfo``; sorted by offset, each
begins where the previous ended: ``InvalidOffset``; the last ends at the file's end:
``MetadataIncompleteBuffer``) and more, as a model hub's loader would insist: no
duplicate key (serde keeps the last one silently), ``__metadata__`` exactly as expected,
and every name, dtype and shape exactly the original model's. Only then
:func:`read_state` copies each tensor's bytes out (one copy of the model) and checks that
every weight is finite. The scorer's memory for a payload is thus the payload, bounded
by :func:`payload_limit` before it is read, plus one model.

Every refusal is a :class:`PayloadError`, one line that starts "returned a model ...".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NoReturn

import torch
from safetensors.torch import save as _save_safetensors

# safetensors' dtype names (``Dtype`` in tensor.rs) for the dtypes a model's state_dict may hold.
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
CODES = {dtype: code for code, dtype in DTYPES.items()}
ENTRY_KEYS = {"dtype", "shape", "data_offsets"}
HEADER_BASE = 1024  # the braces, padding and a small __metadata__
HEADER_PER_TENSOR = 128  # beyond its name: {"dtype":"BF16","shape":[...],"data_offsets":[...]} with slack


class PayloadError(ValueError):
    """Why a payload is not the original model's architecture as safetensors: one line."""


def _refuse(reason: str) -> NoReturn:
    raise PayloadError(" ".join(reason.split())[:300])


def _show(name: object) -> str:
    """A name the submission chose, safe on one line."""
    text = json.dumps(name) if isinstance(name, str) else type(name).__name__
    return text if len(text) <= 60 else text[:57] + '..."'


def model_bytes(reference: Mapping[str, torch.Tensor]) -> int:
    return sum(value.numel() * value.element_size() for value in reference.values())


def header_limit(reference: Mapping[str, torch.Tensor]) -> int:
    """The largest header a state_dict of the reference's names, dtypes and shapes needs, with slack."""
    per_tensor = (
        HEADER_PER_TENSOR + len(json.dumps(name)) + 21 * len(value.shape) for name, value in reference.items()
    )
    return HEADER_BASE + sum(per_tensor)


def payload_limit(reference: Mapping[str, torch.Tensor]) -> int:
    """The most bytes a payload for ``reference`` can hold: the prefix, the largest header, the tensors."""
    return 8 + header_limit(reference) + model_bytes(reference)


def encode(state: Mapping[str, torch.Tensor], like: Mapping[str, torch.dtype] | None = None) -> bytes:
    """``state`` as safetensors (the library's writer); a floating tensor is cast to ``like``'s
    floating dtype for its name, as ``load_state_dict`` would cast it into the original model."""
    tensors = {}
    for name, value in state.items():
        target = (like or {}).get(name)
        if target is not None and value.is_floating_point() and target.is_floating_point:
            value = value.to(target)
        tensors[name] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)  # tied weights apart
    return bytes(_save_safetensors(tensors))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"its header names {_show(key)} twice")
        found[key] = value
    return found


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"its header holds {name}, which is not JSON")


def _header(payload: bytes | memoryview, limit: int) -> tuple[dict[str, Any], int]:
    """The parsed header and where the byte buffer starts; checked against the file's size first."""
    if len(payload) < 8:
        _refuse(f"returned a model that is not a safetensors file ({len(payload)} bytes, fewer than its 8-byte prefix)")
    length = int.from_bytes(payload[:8], "little")
    if length > limit:
        _refuse(
            f"returned a model whose safetensors header declares {length} bytes, more than this model needs ({limit})"
        )
    if 8 + length > len(payload):
        _refuse(f"returned a model whose safetensors header declares {length} bytes, more than the file holds")
    raw = bytes(payload[8 : 8 + length])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _refuse("returned a model whose safetensors header is not UTF-8")
    if not text.startswith("{"):
        _refuse("returned a model whose safetensors header does not start with '{'")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        reason = str(error) if str(error).startswith("its header") else "its header is not JSON"
        _refuse(f"returned a model that cannot be read as safetensors ({reason})")
    if not isinstance(header, dict):
        _refuse("returned a model whose safetensors header is not a JSON object")
    return header, 8 + length


def _architecture(names: set[str], reference: Mapping[str, torch.Tensor]) -> None:
    missing = [name for name in reference if name not in names]
    unexpected = sorted(_show(name) for name in names if name not in reference)
    if missing or unexpected:
        parts = [
            f"{what} {', '.join(found[:3])}{' ...' if len(found) > 3 else ''}"
            for what, found in (("missing", missing), ("unexpected", unexpected))
            if found
        ]
        _refuse(f"returned a model of another architecture ({'; '.join(parts)})")


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def layout(
    payload: bytes | memoryview,
    reference: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> dict[str, tuple[int, int]]:
    """Each tensor's byte range in ``payload`` (from its start), every check done; PayloadError otherwise.

    ``metadata`` is the ``__metadata__`` the writer put there (None: none at all)."""
    header, start = _header(payload, header_limit(reference))
    present = "__metadata__" in header
    found = header.pop("__metadata__", None)
    if present != (metadata is not None) or (present and found != dict(metadata or {})):
        _refuse("returned a model whose safetensors __metadata__ is not the one the kit writes")
    _architecture(set(header), reference)
    ranges = []
    for name, expected in reference.items():
        entry = header[name]
        if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
            _refuse(f"returned a model whose safetensors entry for {name} is not dtype, shape and data_offsets")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if code != CODES.get(expected.dtype):
            _refuse(f"returned a model whose {name} is {_show(code)}, expected {CODES.get(expected.dtype)}")
        if not isinstance(shape, list) or shape != list(expected.shape) or not all(map(_is_count, shape)):
            shown = shape if isinstance(shape, list) and len(shape) <= 8 and all(map(_is_count, shape)) else "another"
            _refuse(
                f"returned a model of another architecture ({name} has shape {shown}, expected {list(expected.shape)})"
            )
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
            _refuse(f"returned a model whose safetensors data_offsets for {name} are not two byte offsets")
        begin, end = offsets
        if end - begin != math.prod(shape) * expected.element_size():
            _refuse(f"returned a model whose {name} covers {end - begin} bytes, not its shape's")
        ranges.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(ranges):
        if begin != position:
            gap = "overlaps the tensor before it" if begin < position else "leaves a gap before it"
            _refuse(f"returned a model whose {name} {gap} in the safetensors buffer")
        position = end
    if start + position != len(payload):
        _refuse(
            f"returned a model whose safetensors file holds {len(payload) - start} bytes of tensors, "
            f"its header declares {position}"
        )
    return {name: (start + begin, start + end) for begin, end, name in ranges}


def finite_problem(state: Mapping[str, torch.Tensor]) -> str | None:
    """Why ``state`` has a weight that is not a finite number, or None."""
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            kind = "NaN" if bool(torch.isnan(value).any()) else "infinite"
            return f"returned a model with {kind} weights in {name}"
    return None


def read_state(payload: bytes | memoryview, reference: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state_dict in ``payload``, in the reference's order: checked (:func:`layout`), copied, finite."""
    ranges, view = layout(payload, reference), memoryview(payload)
    state = {}
    for name, expected in reference.items():
        begin, end = ranges[name]
        if begin == end:
            tensor = torch.empty(expected.shape, dtype=expected.dtype)
        else:  # a copy of its own (aligned, writable): nothing refers to the payload afterwards
            tensor = torch.frombuffer(bytearray(view[begin:end]), dtype=expected.dtype).reshape(expected.shape)
        state[name] = tensor
    problem = finite_problem(state)
    if problem:
        _refuse(problem)
    return state
