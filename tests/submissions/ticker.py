"""Test submission: leaves a thread, a child and a helper whose main thread has exited, all printing
the time every 5 ms, for ever. Nothing of a run may run once it has handed back its model: the
scorer reads the ticks from the log and finds none inside the time it spent evaluating."""

import ctypes
import os
import sys
import threading
import time

EXIT = {"x86_64": 60, "aarch64": 93}.get(os.uname().machine)  # exit(2) of one thread: the main one


def tick(who: str) -> None:
    while True:
        print(f"TICK {who} {time.monotonic():.6f}", flush=True)
        time.sleep(0.005)


def unlearning(net, retain_loader, forget_loader, val_loader):
    threading.Thread(target=tick, args=("thread",), daemon=True).start()
    if os.fork() == 0:
        tick("child")
    if EXIT is not None and os.fork() == 0:
        threading.Thread(target=tick, args=("zombie-leader",), daemon=True).start()
        time.sleep(0.05)
        ctypes.CDLL(None).syscall(EXIT, 0)
    time.sleep(0.2)
    sys.stdout.flush()
    return net
