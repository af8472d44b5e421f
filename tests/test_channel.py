"""The result pipe: messages and large payloads arrive whole, in order, however the pipe splits them."""

from __future__ import annotations

import json
import os
import threading

import pytest

from scoring.ingestion.channel import MAX_LINE, ChannelError, ResultChannel, WorkerGone


def _send_in_pieces(chunks: list[bytes], piece: int):
    """A writer thread on a new pipe that writes ``chunks`` in ``piece``-byte writes; returns the read end."""
    read, write = os.pipe()

    def writer():
        with os.fdopen(write, "wb", buffering=0) as handle:
            data = b"".join(chunks)
            for start in range(0, len(data), piece):
                handle.write(data[start : start + piece])

    threading.Thread(target=writer, daemon=True).start()
    return read


def _message(**fields) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def test_a_model_sized_payload_arrives_whole_between_messages():
    payload = os.urandom(9 * 2**20 + 17)  # many pipe-fulls, not a multiple of any of them
    fd = _send_in_pieces([_message(event="run", bytes=len(payload)), payload, _message(event="run", index=1)], 4093)
    channel = ResultChannel(fd)
    first = channel.message(timeout=30)
    assert first == {"event": "run", "bytes": len(payload)}
    assert channel.payload(first["bytes"], limit=len(payload), timeout=30) == payload
    assert channel.message(timeout=30) == {"event": "run", "index": 1}
    assert not channel.pending()
    with pytest.raises(WorkerGone):
        channel.message(timeout=30)
    os.close(fd)


def test_oversized_garbled_and_too_large_are_refused():
    fd = _send_in_pieces([b"x" * (MAX_LINE + 10)], 1 << 16)
    with pytest.raises(ChannelError, match="oversized"):
        ResultChannel(fd).message(timeout=30)
    os.close(fd)
    for garbled in (b"{not json\n", b"[" * 30_000 + b"]" * 30_000 + b"\n", b'{"a": ' + b"9" * 5000 + b"}\n"):
        fd = _send_in_pieces([garbled], 1 << 12)  # bad JSON; nested past the parser's depth; an int too long
        with pytest.raises(ChannelError, match="garbled"):
            ResultChannel(fd).message(timeout=30)
        os.close(fd)
    fd = _send_in_pieces([_message(event="run", bytes=100)], 64)
    channel = ResultChannel(fd)
    with pytest.raises(ChannelError, match="more than one of the original's can hold"):
        channel.payload(channel.message(timeout=30)["bytes"], limit=99, timeout=30)
    os.close(fd)
