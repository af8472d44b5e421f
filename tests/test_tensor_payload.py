"""A returned model crosses the seal as safetensors, read by the scorer's own strict parser.

The checks follow huggingface/safetensors' ``safetensors/src/tensor.rs`` (``SafeTensors::read_metadata``
and ``Metadata::validate``): HeaderTooSmall, HeaderTooLarge, InvalidHeaderLength, InvalidHeader (UTF-8),
InvalidHeaderStart, InvalidHeaderDeserialization, TensorInvalidInfo, InvalidOffset and
MetadataIncompleteBuffer, each a test case below; and stricter ones a hub's loader would want
(duplicate keys, ``__metadata__``, the original's names, dtypes and shapes exactly).
"""

import json
import struct
import tracemalloc

import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.ingestion.tensor_payload import PayloadError, encode, header_limit, payload_limit, read_state

REFERENCE = {
    "conv.weight": torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0)),
    "bn.weight": torch.ones(8),
    "bn.num_batches_tracked": torch.tensor(7),
    "fc.weight": torch.randn(10, 8, generator=torch.Generator().manual_seed(1)),
    "empty": torch.zeros(0, 4),
}
MODEL_BYTES = sum(v.numel() * v.element_size() for v in REFERENCE.values())


def honest(state=None) -> bytes:
    return encode(state or REFERENCE)


def assemble(header: object, buffer: bytes, raw: bytes | None = None) -> bytes:
    """A safetensors file with this header (any JSON, or ``raw`` bytes) and buffer, as tensor.rs lays it out."""
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + buffer


def parts(payload: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack_from("<Q", payload)
    return json.loads(payload[8 : 8 + length]), payload[8 + length :]


def test_what_the_library_writes_comes_back_bit_for_bit_and_the_library_reads_what_we_read():
    payload = honest()
    state = read_state(payload, REFERENCE)
    assert list(state) == list(REFERENCE)
    for name, value in REFERENCE.items():
        assert state[name].dtype == value.dtype and torch.equal(state[name], value), name
    assert safetensors.torch.load(payload).keys() == REFERENCE.keys()  # the format is the library's
    assert len(payload) <= payload_limit(REFERENCE)


def test_the_worker_casts_a_float_model_to_the_original_dtypes_as_load_state_dict_would():
    doubled = {k: v.double() if v.is_floating_point() else v for k, v in REFERENCE.items()}
    dtypes = {k: v.dtype for k, v in REFERENCE.items()}
    back = read_state(encode(doubled, dtypes), REFERENCE)
    assert all(back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in REFERENCE.items())
    with pytest.raises(PayloadError, match='conv.weight is "F64", expected F32'):
        read_state(encode(doubled), REFERENCE)


def _lying(edit) -> bytes:
    header, buffer = parts(honest())
    return assemble(*edit(header, buffer))


CASES = {
    # tensor.rs: HeaderTooSmall
    "fewer than its 8-byte prefix": b"\x10\x00",
    # tensor.rs: HeaderTooLarge (here: more than this model's header can need)
    "more than this model needs": struct.pack("<Q", 10**12) + b"{}",
    # tensor.rs: InvalidHeaderLength
    "more than the file holds": struct.pack("<Q", 100) + b"{}",
    # tensor.rs: InvalidHeader
    "not UTF-8": assemble(None, b"", raw=b'{"\xff": 1}'),
    # tensor.rs: InvalidHeaderStart
    "does not start with": assemble(None, b"", raw=b' {"a": 1}'),
    # tensor.rs: InvalidHeaderDeserialization
    "not JSON": assemble(None, b"", raw=b'{"a": '),
    "NaN, which is not JSON": assemble(None, b"", raw=b'{"a": NaN}'),
    # stricter than serde, which keeps the last of two equal keys
    'names "bn.weight" twice': assemble(None, b"", raw=b'{"bn.weight": 1, "bn.weight": 2}'),
    "__metadata__": _lying(lambda h, b: ({**h, "__metadata__": {"format": "pickle"}}, b)),
    "__metadata__ is not": _lying(lambda h, b: ({**h, "__metadata__": None}, b)),
    "missing fc.weight": _lying(lambda h, b: ({k: v for k, v in h.items() if k != "fc.weight"}, b)),
    'unexpected "extra\\nline"': _lying(lambda h, b: ({**h, "extra\nline": h["bn.weight"]}, b)),
    "expected F32": _lying(lambda h, b: ({**h, "bn.weight": {**h["bn.weight"], "dtype": "F64"}}, b)),
    "shape [16]": _lying(lambda h, b: ({**h, "bn.weight": {**h["bn.weight"], "shape": [16]}}, b)),
    "shape another": _lying(lambda h, b: ({**h, "bn.weight": {**h["bn.weight"], "shape": [8.0]}}, b)),
    "not dtype, shape and data_offsets": _lying(lambda h, b: ({**h, "bn.weight": {**h["bn.weight"], "x": 1}}, b)),
    "are not two byte offsets": _lying(lambda h, b: ({**h, "bn.weight": {**h["bn.weight"], "data_offsets": [-1]}}, b)),
    # tensor.rs: TensorInvalidInfo (a range of another size than shape x dtype)
    "not its shape's": _lying(
        lambda h, b: (
            {**h, "bn.weight": {**h["bn.weight"], "data_offsets": [h["bn.weight"]["data_offsets"][0], 10**15]}},
            b,
        )
    ),
    # tensor.rs: InvalidOffset (overlap: two tensors on one range)
    "overlaps": _lying(lambda h, b: ({**h, "fc.weight": {**h["fc.weight"], "data_offsets": [0, 320]}}, b)),
    # tensor.rs: MetadataIncompleteBuffer
    "its header declares": honest() + b"\0\0\0\0",
    "NaN weights in fc.weight": encode({**REFERENCE, "fc.weight": torch.full((10, 8), float("nan"))}),
    "infinite weights in bn.weight": encode({**REFERENCE, "bn.weight": torch.full((8,), float("inf"))}),
}


@pytest.mark.parametrize("expected", CASES)
def test_each_lie_is_one_line_naming_what_is_wrong(expected):
    with pytest.raises(PayloadError) as caught:
        read_state(CASES[expected], REFERENCE)
    reason = str(caught.value)
    assert "\n" not in reason and reason.startswith("returned a model"), reason
    key = expected.replace("shape another", "shape another, expected [8]")
    assert key in reason or expected in reason, (expected, reason)


def test_a_header_nested_past_the_parsers_depth_is_refused_in_one_line():
    wide = {f"t{i}": torch.zeros(1) for i in range(100)}  # a header limit of some 16 kB
    nested = assemble(None, b"", raw=b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    with pytest.raises(PayloadError, match="its header is not JSON"):
        read_state(nested, wide)


def test_a_gap_in_the_buffer_is_refused():
    header, buffer = parts(honest())
    moved = {k: v for k, v in header.items()}
    last = max((v["data_offsets"][1], k) for k, v in header.items())[1]
    begin, end = moved[last]["data_offsets"]
    moved[last] = {**moved[last], "data_offsets": [begin + 4, end + 4]}
    with pytest.raises(PayloadError, match="leaves a gap"):
        read_state(assemble(moved, buffer + b"\0" * 4), REFERENCE)


def mutations():
    """Honest payloads damaged as an attacker or a bad disk would: bytes flipped, cut, spliced, headers rewritten."""
    payload = honest()
    header, buffer = parts(payload)
    names = list(header)
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    )
    flipped = st.tuples(st.integers(0, len(payload) - 1), st.integers(1, 255)).map(
        lambda f: payload[: f[0]] + bytes([payload[f[0]] ^ f[1]]) + payload[f[0] + 1 :]
    )
    cut = st.integers(0, len(payload)).map(lambda n: payload[:n])
    spliced = st.tuples(st.integers(0, len(payload)), st.binary(max_size=64)).map(
        lambda s: payload[: s[0]] + s[1] + payload[s[0] :]
    )
    prefix = st.integers(0, 2**64 - 1).map(lambda n: struct.pack("<Q", n) + payload[8:])
    field = st.tuples(st.sampled_from(names), st.sampled_from(["dtype", "shape", "data_offsets", "x"]), json_values)

    def rewrite(change):
        name, key, value = change
        edited = {**header, name: {**header[name], key: value} if isinstance(header[name], dict) else value}
        return assemble(edited, buffer)

    rewritten = field.map(rewrite)
    renamed = st.tuples(st.sampled_from(names), st.text(max_size=12)).map(
        lambda r: assemble({(r[1] if k == r[0] else k): v for k, v in header.items()}, buffer)
    )
    return st.one_of(flipped, cut, spliced, prefix, rewritten, renamed, st.binary(max_size=256))


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutations())
def test_thousands_of_mutated_payloads_raise_only_the_readers_error_within_the_bound(payload):
    """No exception but PayloadError escapes, and the reader allocates at most one model and its header."""
    tracemalloc.start()
    try:
        state = read_state(payload, REFERENCE)
    except PayloadError as error:
        assert "\n" not in str(error)
        state = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 2 * MODEL_BYTES + 64 * header_limit(REFERENCE), peak
    if state is not None:  # a flip in the buffer (a weight's bits) reads, with the original's architecture
        assert [(k, v.dtype, v.shape) for k, v in state.items()] == [
            (k, v.dtype, v.shape) for k, v in REFERENCE.items()
        ]
