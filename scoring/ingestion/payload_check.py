"""What a run's returned model may be before the scorer reads it: checked without allocating.

A run sends ``torch.save`` of its state_dict: a zip archive of stored entries, one
pickle (``data.pkl``) naming each tensor's storage record (``data/<key>``), dtype, size
and the storage's declared element count, and the records' bytes. ``torch.load`` trusts
both: a deflated entry inflates to far more than the payload (1 MB to 1 GiB), and the
storages and shapes the pickle declares are what it sets up. So before ``torch.load``
sees a byte, :func:`payload_problem` reads the archive's directory and the pickle alone,
with an unpickler that builds no tensor (:class:`_Declared`), and compares every
declared key, kind of dtype, shape and storage element count with the original model's,
and each record's stored size with its storage's: what ``torch.load`` then allocates is
at most the original's element count in dtypes of at most 8 bytes (2 x a float32
model), whatever the submission sends.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from scoring.checks import is_int

# Storage classes torch.save names (the legacy typed names its pickle still uses).
STORAGE_TYPES = {
    f"{name}Storage": getattr(torch, dtype)
    for name, dtype in (
        ("Float", "float32"),
        ("Double", "float64"),
        ("Half", "float16"),
        ("BFloat16", "bfloat16"),
        ("Long", "int64"),
        ("Int", "int32"),
        ("Short", "int16"),
        ("Char", "int8"),
        ("Byte", "uint8"),
        ("Bool", "bool"),
    )
}
CANNOT_READ = "returned a model that cannot be read as a state_dict"


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _Storage, offset: int, size: Iterable[int], stride: Iterable[int], *_: object
) -> _Tensor:
    """Stands in for torch's: records what the pickle declares, allocates nothing."""
    return _Tensor(storage, offset, tuple(size), tuple(stride))


class _Declared(pickle.Unpickler):
    """Reads a state_dict's pickle into {name: _Tensor}; any global but the few torch.save uses is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_TYPES:
            return STORAGE_TYPES[name]
        raise pickle.UnpicklingError(f"names {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError("declares a storage torch.save does not write")
        _, dtype, key, _location, numel = pid
        if not isinstance(key, str) or not is_int(numel) or numel < 0:
            raise pickle.UnpicklingError("declares a storage torch.save does not write")
        return _Storage(key, dtype, int(numel))


def payload_problem(payload: bytes, reference: dict[str, torch.Tensor]) -> str | None:
    """Why ``payload`` may not be handed to ``torch.load``, or None; nothing it declares is allocated.

    Refused: an archive that is not torch.save's, a compressed entry, a key the original
    lacks or lacks one of its, a shape other than the original's, a float for an integer
    or back, a storage declaring more elements than the original tensor, or a record
    whose size is not its storage's.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        entries = {entry.filename: entry for entry in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError):
        return f"{CANNOT_READ} (not a torch.save archive)"
    if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries.values()):
        return "returned a model saved with compressed entries (torch.save writes them uncompressed)"
    if sum(entry.file_size for entry in entries.values()) > len(payload):
        return "returned a model whose archive declares more data than it holds"
    pickles = [name for name in entries if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        return f"{CANNOT_READ} (not a torch.save archive)"
    prefix = pickles[0][: -len("data.pkl")]
    try:
        state = _Declared(io.BytesIO(archive.read(pickles[0]))).load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError) as error:
        return f"{CANNOT_READ} (its pickle {error})"[:300] if isinstance(error, pickle.UnpicklingError) else CANNOT_READ
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor) for k, v in state.items()):
        return "returned a model whose state_dict is not a mapping of names to tensors"
    unexpected = [name for name in state if name not in reference]
    missing = [name for name in reference if name not in state]
    if unexpected or missing:
        parts = [
            f"{what} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
            for what, names in (("missing", missing), ("unexpected", unexpected))
            if names
        ]
        return f"returned a model of another architecture ({'; '.join(parts)})"
    for name, tensor in state.items():
        expected = reference[name]
        if tensor.size != tuple(expected.shape):
            shape = list(tensor.size) if len(tensor.size) <= 8 else f"of {len(tensor.size)} dimensions"
            return (
                f"returned a model of another architecture ({name} has shape {shape}, expected {list(expected.shape)})"
            )
        dtype = tensor.storage.dtype
        if dtype.is_floating_point != expected.is_floating_point():
            return f"returned a model whose {name} is {dtype}, expected {expected.dtype}"
        if tensor.storage.numel > expected.numel():
            return (
                f"returned a model whose {name} declares a storage of {tensor.storage.numel} elements, "
                f"more than the original's {expected.numel()}"
            )
        nbytes = tensor.storage.numel * dtype.itemsize
        record = entries.get(f"{prefix}data/{tensor.storage.key}")
        if record is None or record.file_size != nbytes:
            return f"returned a model whose {name} is not stored as torch.save stores it (record of another size)"
    return None
