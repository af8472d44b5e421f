"""Where the expensive tasks run: one interface, a local and a Ray implementation, and the choice between them.

- ``interface``: ``Backend`` and ``Task`` (the ``concurrent.futures`` shape), ``LocalBackend``
  (this process, or a pool of spawned worker processes);
- ``ray_cluster``: ``RayBackend``, one Ray task per model or chunk of runs (imported only when asked for);
- ``cpu_share``: the CPUs a task holds on its machine, none shared with another task of the kit.

``make_backend`` (here) turns the command line's ``--backend`` and its options into one of them.
"""

from __future__ import annotations

import os

from scoring.backends.interface import Backend, LocalBackend

BACKENDS = ("local", "ray")


def make_backend(
    name: str,
    jobs: int = 1,
    address: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    threads: int | None = None,
    device: str = "cpu",
) -> Backend:
    """The backend the command line asked for, its options checked against each other.

    ``local``: ``jobs`` worker processes (1: this process). ``ray``: one task per model or
    chunk with ``cpus`` (default ``threads``) and ``gpus`` (default 1 on CUDA, 0 on the
    CPU) each; ``address`` of a running cluster or None for a private local instance.
    """
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    cuda = str(device).startswith("cuda")
    if name == "local":
        for flag, value in (("--ray-address", address), ("--cpus-per-model", cpus), ("--gpus-per-model", gpus)):
            if value is not None:
                raise ValueError(f"{flag} applies to --backend ray only")
        return LocalBackend(jobs)
    if jobs != 1:
        raise ValueError(
            "--jobs applies to --backend local: on Ray, --cpus-per-model and --gpus-per-model "
            "decide how many run at once"
        )
    if gpus is None:
        gpus = 1.0 if cuda else 0.0
    if cuda and not gpus > 0:
        raise ValueError(f"--device {device} on Ray needs --gpus-per-model > 0 (a fraction shares a GPU)")
    if not cuda and gpus:
        raise ValueError("--gpus-per-model applies to --device cuda: on the CPU leave it out")
    cpus = float(threads or 1) if cpus is None else cpus
    from scoring.backends.ray_cluster import RayBackend  # imports Ray only when it is asked for

    return RayBackend(address=address, cpus=cpus, gpus=gpus, local_cpus=os.cpu_count())
