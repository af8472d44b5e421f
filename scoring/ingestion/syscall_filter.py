"""The seccomp filter every sandboxed process runs under: system calls no unlearning needs are refused.

A deny list, as Docker's and Flatpak's default profiles: everything else stays allowed,
so the CUDA driver (``ioctl``, ``mmap`` on its device nodes) and every library keep
working. Refused with ``EPERM``:

- keyrings (``keyctl``, ``add_key``, ``request_key``): a key linked into the scorer's
  user keyring outlives the sandbox and is readable by a later submission;
- reading or writing other processes (``ptrace``, ``process_vm_readv/writev``,
  ``kcmp``, ``pidfd_getfd``), ``perf_event_open``, ``userfaultfd``, ``bpf``;
- widening the CPUs the scorer gave (``sched_setaffinity``: the cpuset holds where
  cgroups exist, this holds the affinity set from outside where they do not), and POSIX
  message queues (``mq_open``: they outlive every process of a run, and no run needs one);
- mounts and namespaces (``mount``, ``umount2``, the new mount API, ``pivot_root``,
  ``unshare``, ``setns``, and ``clone`` with any ``CLONE_NEW*`` flag);
- kernel modules, ``reboot``, ``kexec``, swap, ``acct``, ``quotactl``, ``syslog``,
  the clock (``settimeofday``, ``clock_settime``, ``adjtimex``), file handles.

``clone3`` is refused with ``ENOSYS``: its flags sit in memory a filter cannot read, and
the C library falls back to ``clone`` on ENOSYS (Docker's choice). Calls of another
architecture's ABI (32-bit calls on x86-64) kill the process: libseccomp's default.

Built with libseccomp (``pyseccomp``, a binding of the system's ``libseccomp.so.2``) and
handed to bwrap's ``--seccomp FD`` as compiled BPF.
"""

from __future__ import annotations

import errno
import os
from typing import Any

DENIED = (
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "perf_event_open",
    "userfaultfd",
    "bpf",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "lookup_dcookie",
    "name_to_handle_at",
    "open_by_handle_at",
    "iopl",
    "ioperm",
    "sched_setaffinity",
    "mq_open",
)
CLONE_NEW_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)


class FilterUnavailable(OSError):
    """libseccomp (the pyseccomp binding or the system's libseccomp.so.2) is missing."""


def _rules() -> Any:
    """The libseccomp filter object."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError, RuntimeError) as error:
        raise FilterUnavailable(
            f"no seccomp library ({error}): install the kit's dependencies (pip install pyseccomp) "
            "and the system's libseccomp (Debian and Ubuntu: apt-get install libseccomp2)"
        ) from None
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    refuse = seccomp.ERRNO(errno.EPERM)
    for name in DENIED:
        _add(rules, refuse, name)
    for flag in CLONE_NEW_FLAGS:
        _add(rules, refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    _add(rules, seccomp.ERRNO(errno.ENOSYS), "clone3")
    return rules


def _add(rules: Any, action: Any, name: str, *args: Any) -> None:
    """One rule. libseccomp ignores a call this architecture lacks (``iopl`` on arm64) and
    refuses (EINVAL) a name older versions do not know (``mount_setattr`` before 2.5.2):
    such a call is left out, the kernels those versions target lacking it too."""
    try:
        rules.add_rule(action, name, *args)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise


def filter_fd() -> int:
    """A readable file descriptor holding the compiled BPF program, for bwrap's ``--seccomp FD`` (caller closes it)."""
    rules = _rules()
    fd = os.memfd_create("unlearning-seccomp", os.MFD_CLOEXEC)
    with os.fdopen(fd, "wb", closefd=False) as out:
        rules.export_bpf(out)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
