"""The ingestion worker: a warm parent that forks one fresh process per run of a submission.

Started by ``scoring.ingestion.worker_process`` for ``scoring.ingestion.runner`` (never by hand), inside the sandbox of
``scoring.ingestion.sandbox`` or, with ``--unsealed``, as a plain process::

    python -s -P -m scoring.ingestion.worker JOB_FD COMMAND_FD RESULT_FD

with a private temporary folder as its working directory. ``JOB_FD``, a descriptor of
an unnamed file (read with ``weights_only=True``, closed before any run), holds only
what the contract gives a submission: its source, the architecture's name and sizes,
the original model's state_dict, the retain, forget and validation tensors, the batch
size, the torch thread count, the device and the memory allowance (``memory_bytes``, 0
for none). Never the test set, the split directory, or a run's seed before that run
starts.

This process never loads the submission: it forks a child per run
(``scoring.ingestion.fork_server``), which loads it and runs ``unlearning`` once, inside the
scorer's clock, and whose processes the scorer kills before the next child is forked.

Protocol, one JSON object per line (``scoring.ingestion.channel`` reads the scorer's end):

- worker -> scorer on RESULT_FD: ``{"event": "warm"}`` once torch is imported and warmed
  up on the CPU (a forward, backward and optimizer step of the original model: ``warm_up``);
  then, per ``arm``, ``{"event": "ready", "pid": p}`` once the run's child is forked (and,
  on CUDA, has warmed the device up) or ``{"event": "arm_failed", "reason": ...}``. The
  child itself, once given its run, writes ``{"event": "run", "index": k, "ok": true,
  "bytes": n, "seconds": t}`` followed at once by the ``n`` bytes of the returned
  state_dict as safetensors (``scoring.ingestion.tensor_payload.encode``: data, no
  pickle), or ``{"event": "run", "index": k, "ok": false, "reason": ...}``, or
  ``{"event": "setup_failed", "reason": ...}`` when the submission cannot be loaded.
  ``seconds`` is the child's own measure, a diagnostic: the scorer times runs itself.
  Then, once the child has ended (by itself, or killed by the scorer), ``{"event":
  "exited", "code": c}`` (``os.waitstatus_to_exitcode``: negative for a signal).
- scorer -> worker on COMMAND_FD: ``{"cmd": "arm"}`` (the previous run's processes are
  gone: wipe what they left, fork the next child), then ``{"cmd": "run", "run": k,
  "seed": s}``; end of file means stop.

The scorer never unpickles anything this process sends: it reads a returned model with
its own strict safetensors parser (``scoring.ingestion.tensor_payload``), so a submission
cannot reach into the scorer.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from scoring.ingestion import fork_server
from scoring.ingestion.tensor_payload import encode
from starter_kit.loaders import make_loader
from starter_kit.models import build_model
from starter_kit.recipe import Recipe
from starter_kit.submission import ENTRY_POINT, seed_everything, submission_loaders

REASON_CHARS = 300  # a reason is one line on a screen and in score.json


class RunParts:
    """The retain, forget and validation tensors and the recipe: what submission_loaders uses."""

    def __init__(self, parts: dict[str, tuple[torch.Tensor, torch.Tensor]], recipe: dict[str, Any]) -> None:
        self.parts = parts
        self.recipe = Recipe.from_dict(recipe)

    def loader(
        self, part: str, batch_size: int = 64, shuffle: bool = False, seed: int | None = None
    ) -> DataLoader[tuple[torch.Tensor, ...]]:
        images, labels = self.parts[part]  # KeyError for "test": it is not here
        return make_loader(images, labels, batch_size, shuffle=shuffle, seed=seed)


def describe_exception(error: BaseException, filename: str) -> str:
    """``ZeroDivisionError: division by zero (line 12)``: one line, the submission's last frame."""
    if isinstance(error, SystemExit):
        text = f"SystemExit: the submission called sys.exit({error.code!r}) instead of returning"
    else:
        # A SyntaxError's str() ends with its own "(file, line N)"; the line is added below.
        message = " ".join((error.msg if isinstance(error, SyntaxError) and error.msg else str(error)).split())
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if len(text) > REASON_CHARS:
        text = text[: REASON_CHARS - 3] + "..."
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    if isinstance(error, SyntaxError) and error.filename == filename:
        lines.append(error.lineno)
    return f"{text} ({filename}, line {lines[-1]})" if lines and lines[-1] else text


def limit_memory(allowance: int) -> int:
    """Cap this process's address space at its current size plus ``allowance`` bytes.

    Set after torch is imported (which alone maps a few GB of address space), so the
    allowance is what the submission itself may allocate. Soft and hard limits are
    both set, so the submission cannot raise them again. Returns the cap.
    """
    with open("/proc/self/status") as status:
        size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    cap = size_kb * 1024 + int(allowance)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return cap


def warm_up(
    model_spec: dict[str, Any], original: bytes, parts: RunParts, batch_size: int, device: torch.device
) -> None:
    """One forward, backward and optimizer step of the original model on a retain batch: the CUDA
    context, cuDNN's algorithm choice, the allocator's first blocks and torch's lazy imports (the
    first optimizer of a process imports ``torch._dynamo``: seconds) are paid for here, before any
    run, as the calibration's discarded warm-up pays them (docs/protocol.md: timed warm)."""
    net = _fresh_model(model_spec, original, device).train()
    images, labels = next(iter(parts.loader("retain", batch_size)))
    loss = nn.functional.cross_entropy(net(images.to(device)), labels.to(device))
    loss.backward()
    torch.optim.SGD(net.parameters(), lr=0.0, momentum=0.9).step()  # a copy, discarded: nothing changes
    with torch.no_grad():
        net.eval()(images.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fresh_model(model_spec: dict[str, Any], original: bytes, device: torch.device) -> nn.Module:
    net = build_model(model_spec["name"], int(model_spec["in_channels"]), int(model_spec["num_classes"]))
    net.load_state_dict(torch.load(io.BytesIO(original), map_location="cpu", weights_only=True))
    return net.to(device).eval()


def load_submission(source: str, filename: str) -> tuple[Callable[..., Any] | None, str | None]:
    """(``unlearning``, None) from the submission's source, or (None, why it cannot be used)."""
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, ValueError) as error:
        return None, f"the submission does not compile: {describe_exception(error, filename)}"
    module = types.ModuleType("submission")
    module.__file__ = filename
    sys.modules["submission"] = module
    try:
        exec(code, module.__dict__)
    except BaseException as error:  # noqa: BLE001 - anything the submission raises is its failure
        traceback.print_exc()
        return None, f"loading the submission raised {describe_exception(error, filename)}"
    unlearning = module.__dict__.get(ENTRY_POINT)
    if not callable(unlearning):
        found = "is not a function" if ENTRY_POINT in module.__dict__ else "is not defined"
        return None, (
            f"{ENTRY_POINT} {found} in the submission: define "
            f"{ENTRY_POINT}(net, retain_loader, forget_loader, val_loader) returning the model"
        )
    return unlearning, None


def main(argv: list[str]) -> int:
    job_fd, command_fd, result_fd = int(argv[0]), int(argv[1]), int(argv[2])
    for fd in (command_fd, result_fd):  # the worker's alone: no process the submission execs inherits them
        os.set_inheritable(fd, False)
    results = os.fdopen(result_fd, "wb")
    commands = os.fdopen(command_fd, "r")

    def send(message: dict[str, Any], payload: bytes = b"") -> None:
        results.write(json.dumps(message).encode() + b"\n" + payload)
        results.flush()

    workdir = os.getcwd()  # every run starts here, whatever the submission does with its cwd
    tmp_dir = os.environ.get("TMPDIR", os.path.dirname(workdir))
    torch.set_num_threads(1)  # GNU OpenMP's pool does not survive a fork: the parent computes on one thread
    with os.fdopen(job_fd, "rb") as job_file:
        job = torch.load(job_file, map_location="cpu", weights_only=True)
    threads, private_ipc = int(job["threads"]), bool(job.get("sealed", False))
    filename, device, batch_size = job["filename"], torch.device(job["device"]), int(job["batch_size"])
    parts = RunParts(job["parts"], job["recipe"])
    buffer = io.BytesIO()
    torch.save(job.pop("state"), buffer)
    original = buffer.getvalue()  # bytes cannot be changed in place: each run loads a fresh copy
    model_spec, source, memory = job["model"], job["source"], int(job["memory_bytes"] or 0)
    del job
    warm_up(model_spec, original, parts, batch_size, torch.device("cpu"))  # torch warm; on CUDA the device untouched
    if memory > 0:
        limit_memory(memory)
    fork_server.harden_parent()
    send({"event": "warm"})

    fresh: list[nn.Module] = []  # in the child: the run's copy of the original model, made before the clock

    def prepare() -> None:
        torch.set_num_threads(threads)
        if device.type == "cuda":  # the child's own context, before the clock
            warm_up(model_spec, original, parts, batch_size, device)
        fresh.append(_fresh_model(model_spec, original, device))  # handing the run its inputs: not its work

    def run(order: dict[str, Any]) -> None:
        os.chdir(workdir)
        unlearning, reason = load_submission(source, filename)
        if unlearning is None:
            send({"event": "setup_failed", "reason": reason})
            return
        index, seed = int(order["run"]), int(order["seed"])
        args = (index, seed, unlearning, original, model_spec, parts, batch_size, device, filename)
        send(*run_one(*args, net=fresh.pop()))

    child: fork_server.RunChild | None = None
    for line in commands:
        command = json.loads(line)
        if command.get("cmd") == "arm":
            fork_server.reap()
            fork_server.reset_run_state(tmp_dir, workdir, private_ipc)
            child = fork_server.fork_run(prepare, run, close_fds=(command_fd,))
            if child is None:
                send({"event": "arm_failed", "reason": "the run's process could not be started"})
                return 0
            send({"event": "ready", "pid": child.pid})
        elif command.get("cmd") == "run" and child is not None:
            child.start({"run": int(command["run"]), "seed": int(command["seed"])})
            _, status = os.waitpid(child.pid, 0)  # ended by itself, or killed by the scorer once it has the model
            send({"event": "exited", "code": os.waitstatus_to_exitcode(status)})
            child = None
    return 0


def run_one(
    index: int,
    seed: int,
    unlearning: Callable[..., Any],
    original: bytes,
    model_spec: dict[str, Any],
    parts: RunParts,
    batch_size: int,
    device: torch.device,
    filename: str,
    net: nn.Module | None = None,
) -> tuple[dict[str, Any], bytes]:
    """One run: a fresh copy of the original model (``net``, made already, or made here), seeded, loaders
    seeded. Returns (message, payload).

    Public: Codabench's ingestion program (``scoring.hosting.codabench_ingestion``) runs the same."""
    net = _fresh_model(model_spec, original, device) if net is None else net
    dtypes = {name: value.dtype for name, value in net.state_dict().items()}  # before the submission has net
    seed_everything(seed)
    retain, forget, val = submission_loaders(parts, seed, batch_size)
    started = time.perf_counter()
    try:
        returned = unlearning(net, retain, forget, val)
    except BaseException as error:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
        traceback.print_exc()
        return {
            "event": "run",
            "index": index,
            "ok": False,
            "reason": f"raised {describe_exception(error, filename)}",
        }, b""
    if device.type == "cuda":  # the clock ends when the work does: every stream's kernels, not only the last
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    if not isinstance(returned, nn.Module):
        reason = f"returned {type(returned).__name__}, expected the model (a torch.nn.Module)"
        return {"event": "run", "index": index, "ok": False, "reason": reason}, b""
    try:
        payload = encode(returned.state_dict(), dtypes)
    except BaseException as error:  # noqa: BLE001
        traceback.print_exc()
        reason = f"its returned model could not be saved: {describe_exception(error, filename)}"
        return {"event": "run", "index": index, "ok": False, "reason": reason}, b""
    return {"event": "run", "index": index, "ok": True, "bytes": len(payload), "seconds": seconds}, payload


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
