"""Test submission: looks for anything an earlier run left behind, then leaves one of each for the next run.

The channels: a module global, a file in /tmp, in its working directory and in /dev/shm,
an inherited descriptor, an environment variable, a thread and a child process still
running, a System V shared memory segment. Runs share nothing, so every run must find
none of them (the first finding fails the run, naming what it found).
"""

import ctypes
import os
import threading
import time

FILES = ("/tmp/carried", "carried", "/dev/shm/carried")
DESCRIPTOR = 77
SHM_KEY = 0x5EED
IPC_CREAT = 0o1000
libc = ctypes.CDLL(None, use_errno=True)
left: list[int] = []


def carried() -> list[str]:
    seen = ["a module global"] if left else []
    seen += [path for path in FILES if os.path.exists(path)]
    try:
        os.fstat(DESCRIPTOR)
        seen.append("a descriptor")
    except OSError:
        pass
    if os.environ.get("CARRIED"):
        seen.append("an environment variable")
    if any(thread.name == "carried" for thread in threading.enumerate()):
        seen.append("a thread")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if cmdline.read().startswith(b"carried-child"):
                    seen.append("a child process")
        except OSError:
            pass
    if libc.shmget(SHM_KEY, 0, 0) >= 0:
        seen.append("a shared memory segment")
    return seen


def leave() -> None:
    left.append(1)
    for path in FILES:
        with open(path, "w") as out:
            out.write("the last run's work")
    os.dup2(os.open(FILES[0], os.O_RDONLY), DESCRIPTOR)
    os.environ["CARRIED"] = "1"
    threading.Thread(target=time.sleep, args=(600,), name="carried", daemon=True).start()
    if os.fork() == 0:
        os.execv("/usr/bin/sleep", ["carried-child", "600"])
    assert libc.shmget(SHM_KEY, 4096, IPC_CREAT | 0o600) >= 0


def unlearning(net, retain_loader, forget_loader, val_loader):
    seen = carried()
    if seen:
        raise RuntimeError("found what an earlier run left: " + ", ".join(seen))
    leave()
    return net
