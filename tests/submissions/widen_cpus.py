"""Test submission: tries to use more CPUs than it was given, and prints what it got.

It widens its affinity to every CPU, raises torch's thread count to the machine's, then
has two processes spin for 0.6 s and sums their CPU time: held to one core, that is at
most 0.6 s however many cores the machine has.
"""

import contextlib
import os
import resource
import time

import torch

SPIN = 0.6


def unlearning(net, retain_loader, forget_loader, val_loader):
    given = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError):  # refused by the seccomp filter; the cpuset would hold anyway
        os.sched_setaffinity(0, range(os.cpu_count()))
    torch.set_num_threads(os.cpu_count())
    start = time.monotonic()
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, range(os.cpu_count()))
            while time.monotonic() < start + SPIN:
                pass
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"CPUS given {given} widened {len(os.sched_getaffinity(0))} threads {torch.get_num_threads()} "
        f"cpu {usage.ru_utime + usage.ru_stime:.3f} wall {time.monotonic() - start:.3f}",
        flush=True,
    )
    return net
