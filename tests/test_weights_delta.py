"""The prediction step's upload format: a returned model as an exact difference from the original.

It is safetensors (huggingface/safetensors, ``safetensors/src/tensor.rs``) read by the scorer's strict
parser, ``scoring.ingestion.tensor_payload``, whose checks ``tests/test_tensor_payload.py`` tries one by one."""

import zipfile

import pytest
import torch

from scoring.hosting.weights_delta import decode, encode, read
from scoring.ingestion.tensor_payload import PayloadError
from starter_kit.models import build_model


@pytest.fixture(scope="module")
def original() -> dict:
    torch.manual_seed(0)
    return {name: value.detach().clone() for name, value in build_model("resnet_digits", 1, 10).state_dict().items()}


def bits(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def test_a_returned_model_comes_back_bit_for_bit(original):
    state = {name: value.clone() for name, value in original.items()}
    first = next(name for name, value in state.items() if value.is_floating_point() and value.numel() > 2)
    state[first] = state[first] * 1.001
    state[first].view(-1)[0] = -0.0  # bit patterns, not values
    back = decode(encode(state, original), original)
    assert list(back) == list(state)
    for name, value in state.items():
        assert (
            back[name].dtype == value.dtype and back[name].shape == value.shape and bits(back[name]) == bits(value)
        ), name


def test_a_model_of_another_dtype_is_not_stored(original):
    last = next(name for name in reversed(original) if original[name].is_floating_point())
    with pytest.raises(ValueError, match=f"{last} is torch.bfloat16"):
        encode({**original, last: original[last].to(torch.bfloat16)}, original)


def test_untouched_tensors_cost_their_names_and_small_updates_zip_small(original, tmp_path):
    full = sum(v.numel() * v.element_size() for v in original.values())
    with zipfile.ZipFile(tmp_path / "same.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("run-0000.safetensors", encode(original, original))
    assert (tmp_path / "same.zip").stat().st_size < 0.02 * full  # zeros deflate about 1000:1
    torch.manual_seed(1)
    nudged = {
        n: v + 1e-3 * v.abs().mean() * torch.randn_like(v) if v.is_floating_point() else v for n, v in original.items()
    }
    with zipfile.ZipFile(tmp_path / "out.zip", "w", zipfile.ZIP_DEFLATED) as archive:  # as the worker zips
        archive.writestr("run-0000.safetensors", encode(nudged, original))
    assert (tmp_path / "out.zip").stat().st_size < 0.75 * full


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: b"", "fewer than its 8-byte prefix"),
        (lambda data: data[:-1], "its header declares"),
        (lambda data: data + b"\0", "its header declares"),
        (lambda data: data.replace(b"kit xor byte planes 1", b"kit xor byte planes 2", 1), "__metadata__"),
        (lambda data: data.replace(b"conv", b"vnoc", 1), "another architecture"),
        (lambda data: data.replace(b'"F32"', b'"F64"', 1), "expected F32"),
    ],
)
def test_damaged_files_are_refused_in_one_line(original, damage, reason):
    state = {name: value + 1 if value.is_floating_point() else value for name, value in original.items()}
    with pytest.raises(PayloadError, match=reason) as caught:
        decode(damage(encode(state, original)), original)
    assert "\n" not in str(caught.value)


def test_a_delta_that_decodes_to_nan_and_an_oversized_file_are_refused(original, tmp_path):
    state = {name: value.clone() for name, value in original.items()}
    first = next(name for name, value in state.items() if value.is_floating_point())
    state[first].view(-1)[0] = float("nan")
    with pytest.raises(PayloadError, match=f"NaN weights in {first}"):
        decode(encode(state, original), original)
    (tmp_path / "big").write_bytes(b"\0" * (sum(v.numel() * v.element_size() for v in original.values()) + (1 << 20)))
    with pytest.raises(PayloadError, match="more than a model of the original's can need"):
        read(tmp_path / "big", original)  # refused by its size, before it is read


def test_scalars_empty_tensors_and_integers_come_back_too():
    original = {"count": torch.tensor(7), "empty": torch.zeros(0, 4), "mask": torch.tensor([True, False])}
    state = {"count": torch.tensor(9), "empty": torch.zeros(0, 4), "mask": torch.tensor([False, False])}
    back = decode(encode(state, original), original)
    assert all(back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in state.items())
