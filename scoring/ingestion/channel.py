"""The pipes between the scorer and a worker, read defensively.

This module owns the scorer's end of the worker's two output channels:

- the result pipe (:class:`ResultChannel`): one JSON object per line, bounded in
  length, where a message may announce a binary payload (``"bytes": n``) that follows it
  at once; the payload is a state_dict as safetensors, which the scorer reads only with
  ``scoring.ingestion.tensor_payload``'s strict parser. Everything is read against a deadline, and anything that
  is not exactly that shape (a garbled or oversized line, a payload larger than
  allowed, a pipe closed mid-message) raises :class:`ChannelError` with a reason the
  scorer can give the submission;
- stdout and stderr (:class:`CappedOutput`): drained in a thread, the first and last
  halves of a byte cap kept, so a submission printing megabytes floods nothing.

The submission runs in the worker's process and can write onto the result pipe too;
what it forges this way is at best what it could have returned, since the scorer
times every run itself and checks every model it reads.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
from typing import IO, Any

from scoring.checks import is_int

MAX_LINE = 64 * 1024  # a protocol line longer than this is not one the worker wrote


class ChannelError(Exception):
    """The worker sent something that is not a valid message; the text says what."""


class WorkerGone(Exception):
    """The result pipe closed: the worker exited or was killed."""


class ResultChannel:
    """Messages from the worker's result pipe, each read within a deadline."""

    def __init__(self, fd: int):
        # A bytearray: a pipe gives 64 KiB per read, and appending to bytes copies the whole
        # buffer each time (a ResNet-18 of 43 MiB took 6.3 s to read that way, 0.13 s this way).
        self.fd, self.buffer = fd, bytearray()

    def _fill(self, deadline: float) -> bool:
        """Read what is there before ``deadline``; False on timeout; WorkerGone at end of file."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            return False
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise WorkerGone()
        self.buffer += chunk
        return True

    def message(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON message, None on timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise ChannelError("the worker sent an oversized message")
            if not self._fill(deadline):
                return None
        end = self.buffer.index(b"\n")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]  # from the front of a bytearray: no copy of the rest
        if len(line) > MAX_LINE:
            raise ChannelError("the worker sent an oversized message")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):  # bad JSON or UTF-8, numbers of too many digits, nesting too deep
            raise ChannelError("the worker sent a garbled message") from None
        if not isinstance(message, dict):
            raise ChannelError("the worker sent a garbled message")
        return message

    def payload(self, size: object, limit: int, timeout: float) -> bytes | None:
        """The ``size`` bytes that follow a message, None on timeout; refused above ``limit``."""
        if not is_int(size) or size < 0:
            raise ChannelError("the worker announced a model of no valid size")
        if size > limit:
            raise ChannelError(
                f"the worker announced a model of {size / 2**20:.1f} MiB, more than one of the original's can hold"
            )
        deadline = time.monotonic() + timeout
        while len(self.buffer) < size:
            if not self._fill(deadline):
                return None
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def pending(self) -> bool:
        """Whether anything was sent that no message has read yet (a message nobody asked for);
        the end of the pipe is not (the next read reports it as WorkerGone)."""
        if self.buffer:
            return True
        ready, _, _ = select.select([self.fd], [], [], 0)
        if not ready:
            return False
        chunk = os.read(self.fd, 1 << 20)
        self.buffer += chunk
        return bool(chunk)


class CappedOutput:
    """Drains a pipe in a thread, keeping its first and last ``cap / 2`` bytes."""

    def __init__(self, pipe: IO[bytes], cap: int):
        self.pipe, self.half = pipe, max(1, cap // 2)
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        fd = self.pipe.fileno()
        while chunk := os.read(fd, 1 << 16):
            self.total += len(chunk)
            room = self.half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        self.thread.join(timeout=5)
        middle = b""
        if self.truncated:
            skipped = self.total - len(self.head) - len(self.tail)
            middle = f"\n[... {skipped} bytes of output left out ...]\n".encode()
        return bytes(self.head + middle + self.tail).decode(errors="replace")
