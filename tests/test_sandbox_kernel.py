"""Issue 20's attacks on the sealed scorer, run as root where CI runs it: each shows, from
outside, that the leak did not happen. Only harmless knobs are touched, and any that
changed would be restored (they must not change)."""

import ctypes
import os
import resource
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from submissions import _fixtures as kit

from scoring.ingestion import cgroups, sandbox, worker_process
from scoring.ingestion.limits import Limits
from scoring.ingestion.run_seeds import derived_seed
from scoring.ingestion.runner import job_from_split, run_submission
from starter_kit.splits import load_split

needs_sandbox = pytest.mark.skipif(
    sandbox.sandbox_problem() is not None, reason=f"no sandbox here: {sandbox.sandbox_problem()}"
)
KNOB = Path("/proc/sys/fs/lease-break-time")
KEY = "unlearning-issue20"
SYSCALLS = {  # the calls the attacks make, by machine (asm/unistd.h)
    "x86_64": {
        "add_key": 248,
        "keyctl": 250,
        "ptrace": 101,
        "perf_event_open": 298,
        "userfaultfd": 323,
        "unshare": 272,
        "exit": 60,
    },
    "aarch64": {
        "add_key": 217,
        "keyctl": 219,
        "ptrace": 117,
        "perf_event_open": 241,
        "userfaultfd": 282,
        "unshare": 97,
        "exit": 93,
    },
}


def run_source(split, source: str, n_runs: int = 1, **limits):
    job = job_from_split(load_split(split), textwrap.dedent(source), "s.py", threads=1)
    with kit.one_thread():
        return run_submission(job, list(range(n_runs)), Limits(**limits), lambda k, s: None, progress=False)


@needs_sandbox
def test_no_host_setting_key_or_file_is_writable_inside(split):
    if os.uname().machine not in SYSCALLS:
        pytest.skip(f"the system call numbers this test uses are x86-64's and arm64's, not {os.uname().machine}'s")
    before = KNOB.read_text()
    numbers = SYSCALLS[os.uname().machine]
    source = f"""\
    import ctypes, errno, os
    libc = ctypes.CDLL(None, use_errno=True)
    found = []
    try:
        with open("{KNOB}", "w") as knob:
            knob.write("{int(before) + 2}")
        found.append("sysctl written")
    except OSError:
        pass
    for root, dirs, files in os.walk("/"):
        if root == "/proc":
            dirs[:] = [d for d in dirs if not d.isdigit() and d not in ("self", "thread-self")]
        if root in ("/tmp", "/dev/shm", "/dev/pts"):
            dirs[:] = []
            continue
        for name in dirs + files:
            path = os.path.join(root, name)
            if not os.path.islink(path) and os.access(path, os.W_OK) and path not in (
                "/tmp", "/dev/shm", "/dev/pts", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                "/dev/tty"):
                found.append(path)
    # add_key("user", "issue20", "x", 1, KEY_SPEC_USER_KEYRING); keyctl; ptrace(PTRACE_TRACEME); ...
    numbers = {numbers}
    for name, args in (("add_key", (b"user", b"{KEY}", b"x", 1, -4)), ("keyctl", (0, -4, 0)), ("ptrace", (0, 0, 0, 0)),
                       ("perf_event_open", (0, 0, -1, -1, 0)), ("userfaultfd", (0,)), ("unshare", (0x20000,))):
        if libc.syscall(numbers[name], *args) != -1:
            found.append(name)
    status = open("/proc/self/status").read()
    if "Seccomp:\\t2" not in status:
        found.append("no seccomp filter")
    if "unlearning-worker-" in open("/proc/1/cmdline").read():  # bwrap's options come through --args
        found.append("/proc/1/cmdline shows the job folder")
    def unlearning(net, retain_loader, forget_loader, val_loader):
        assert not found, found
        return net
    """
    try:
        result = run_source(split, source, run_seconds=60.0)
    finally:  # never expected to change: put the host back before failing
        after = KNOB.read_text()
        if after != before:
            KNOB.write_text(before)
        key = _user_key(KEY)
    assert after == before and key is None, (after, key)
    assert result.status == "completed", result.reason


def _user_key(description: str) -> int | None:
    """The key of this description in the scorer's user keyring (removed at once), None if there is none.

    Seen from outside: what a submission's add_key left behind for the next one."""
    libc = ctypes.CDLL(None, use_errno=True)
    found = libc.syscall(SYSCALLS[os.uname().machine]["keyctl"], 10, -4, b"user", description.encode(), 0)  # SEARCH
    if found < 0:
        return None  # ENOKEY; or keyctl is refused here too, and nothing could have been added either
    libc.syscall(SYSCALLS[os.uname().machine]["keyctl"], 21, found)  # KEYCTL_INVALIDATE
    return found


@needs_sandbox
def test_no_path_of_the_repository_job_or_results_is_visible_inside(split):
    """Mount sources, command lines, environments and open files, as a submission reads them.

    The runtime's own folders are the one exception (the kernel prints a bind's source in
    mountinfo): they are cut out first, so a runtime inside the repository still passes
    only through its own paths."""
    source = """\
    import os
    seen = [open("/proc/self/mountinfo").read()]
    for pid in ("1", "2", "self"):
        for name in ("cmdline", "environ"):
            try:
                seen.append(open(f"/proc/{pid}/{name}", "rb").read().replace(b"\\0", b" ").decode())
            except OSError:
                pass
    for fd in os.listdir("/proc/self/fd"):
        try:
            seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    import scoring
    seen += [scoring.__file__, os.getcwd()]
    print("SEEN", repr("\\n".join(seen)), flush=True)
    def unlearning(net, retain_loader, forget_loader, val_loader):
        return net
    """
    result = run_source(split, source, run_seconds=60.0)
    assert result.status == "completed", result.reason
    seen = next(eval(line[5:]) for line in result.output.splitlines() if line.startswith("SEEN "))
    assert "/kit/kit.zip" in seen and "bwrap --args" in seen  # what was read is what the worker sees
    for path in sorted(sandbox.runtime_paths(), key=len, reverse=True):
        seen = seen.replace(path, "<runtime>")
    project = Path(__file__).resolve().parents[1]
    for host in (str(project), str(project / "results"), str(Path(split).resolve()), "unlearning-worker-"):
        assert host not in seen, (host, seen)


@needs_sandbox
def test_the_sandbox_root_is_read_only_and_memory_is_capped(split, monkeypatch):
    if "memory" not in cgroups.hierarchies():
        pytest.skip("no writable memory cgroup here (not root, or no memory controller): RLIMIT_AS is the cap")
    source = """\
    import os
    for path in ("/big", "/dev/big"):
        try:
            open(path, "wb").write(b"x")
            raise SystemExit("wrote " + path)
        except OSError:
            pass
    def unlearning(net, retain_loader, forget_loader, val_loader):
        for path in ("/dev/shm/fill", "/tmp/fill"):  # tmpfs pages count against the cgroup
            with open(path, "wb") as out:
                for _ in range(63):
                    out.write(b"x" * (1 << 20))
        held = [bytearray(64 << 20) for _ in range(32)]
        return net
    """
    # A cap of 1 GiB on the whole sandbox, RLIMIT_AS off (as on a GPU): 64 MiB in each tmpfs,
    # then 2 GiB of anonymous memory touched page by page; the cgroup stops it at 1 GiB.
    monkeypatch.setattr(worker_process, "memory_cap", lambda limits: 1 << 30)
    result = run_source(split, source, run_seconds=60.0, memory_bytes=0, tmp_bytes=64 << 20)
    assert result.status == "rejected" and "memory" in result.reason, (result.status, result.reason)


MUTATING_SUBMISSION = """\
import os, sys
from safetensors.torch import save

def unlearning(net, retain_loader, forget_loader, val_loader):
    data = bytearray(save({k: v.detach().clone() for k, v in net.state_dict().items()}))
    for kind, at, value in OPS:  # the scorer's test chose these
        at %= len(data) + 1
        if kind == "flip" and at < len(data):
            data[at] ^= value % 255 + 1
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value % 256]) * (value % 64)
        elif kind == "prefix":
            data[:8] = value.to_bytes(8, "little")
    header = ('{"event": "run", "index": 0, "ok": true, "bytes": %d}\\n' % len(data)).encode()
    os.write(int(sys.argv[-1]), header + bytes(data))
    os._exit(0)
"""


@needs_sandbox
@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "cut", "insert", "prefix"]), st.integers(0, 10**6), st.integers(0, 2**64 - 1)
        ),
        min_size=1,
        max_size=3,
    )
)
@example([("prefix", 0, 2**63)]).via("a header that declares 8 EiB")
def test_mutated_payloads_through_the_whole_run_path_fail_the_run_in_one_line(split, ops):
    """A submission that sends its model's safetensors damaged: the run fails with the reader's one line,
    or (a flip inside a weight) is read as a model; nothing escapes run_submission."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run_source(split, MUTATING_SUBMISSION.replace("OPS", repr(ops)), run_seconds=60.0)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 64 << 10  # KiB: the scorer's peak stays put
    assert result.status in ("completed", "failed"), (result.status, result.reason)
    if result.status == "failed":
        assert result.reason.startswith("run 0 returned a model") and "\n" not in result.reason, result.reason


@needs_sandbox
def test_a_run_never_sees_its_recorded_seed(split):
    source = """\
    import torch
    def unlearning(net, retain_loader, forget_loader, val_loader):
        print("seen", torch.initial_seed(), flush=True)
        return net
    """
    result = run_source(split, source, n_runs=2, run_seconds=60.0)
    seen = [int(line.split()[1]) for line in result.output.splitlines() if line.startswith("seen ")]
    assert seen == [derived_seed(0), derived_seed(1)] and not {0, 1} & set(seen)
    assert derived_seed(12345) == derived_seed(12345) and 0 <= derived_seed(2**63) < 2**62


@needs_sandbox
def test_without_writable_cgroups_the_sandbox_falls_back_and_says_so(split, monkeypatch):
    """A non-root scorer or a cgroup-v2-only host without delegation: RLIMIT_NPROC, RLIMIT_AS, the affinity
    and SIGSTOP; the caps the kernel then does not hold are named (as root, RLIMIT_NPROC is none)."""
    monkeypatch.setattr(cgroups, "hierarchies", dict)
    result = run_source(split, "def unlearning(net, r, f, v):\n    return net\n", n_runs=2, run_seconds=60.0)
    assert result.status == "completed", result.reason
    assert result.cgroups_missing == ["pids", "memory", "cpuset", "cpu", "freezer"]
    processes = [] if os.geteuid() != 0 else ["processes"]
    assert result.caps_missing == [*processes, "memory", "cpu", "freezer"]
