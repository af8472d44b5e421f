"""The prediction step's upload format: a returned model as an exact difference from the original."""

import zipfile

import pytest
import torch

from scoring.hosting.weights_delta import decode, encode
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
    state[first].view(-1)[0], state[first].view(-1)[1] = float("nan"), -0.0  # bit patterns, not values
    last = next(name for name in reversed(state) if state[name].is_floating_point())
    state[last] = state[last].to(torch.bfloat16)  # another dtype is carried as itself
    back = decode(encode(state, original), original)
    assert list(back) == list(state)
    for name, value in state.items():
        assert (
            back[name].dtype == value.dtype and back[name].shape == value.shape and bits(back[name]) == bits(value)
        ), name


def test_untouched_tensors_cost_their_names_and_small_updates_zip_small(original, tmp_path):
    full = sum(v.numel() * v.element_size() for v in original.values())
    assert len(encode(original, original)) < 0.02 * full  # the header alone
    torch.manual_seed(1)
    nudged = {
        n: v + 1e-3 * v.abs().mean() * torch.randn_like(v) if v.is_floating_point() else v for n, v in original.items()
    }
    with zipfile.ZipFile(tmp_path / "out.zip", "w", zipfile.ZIP_DEFLATED) as archive:  # as the worker zips
        archive.writestr("run-0000.delta", encode(nudged, original))
    assert (tmp_path / "out.zip").stat().st_size < 0.75 * full


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: b"", "not a weights delta"),
        (lambda data: data[:-1], "the header declares"),
        (lambda data: data + b"\0", "the header declares"),
        (lambda data: data.replace(b'"kind":"xor"', b'"kind":"zip"', 1), "header entry"),
        (lambda data: data.replace(b"conv", b"vnoc", 1), "does not have"),
    ],
)
def test_damaged_files_are_refused_in_one_line(original, damage, reason):
    state = {name: value + 1 if value.is_floating_point() else value for name, value in original.items()}
    with pytest.raises(ValueError, match=reason) as caught:
        decode(damage(encode(state, original)), original)
    assert "\n" not in str(caught.value)
