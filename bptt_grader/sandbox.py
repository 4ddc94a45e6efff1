"""Run one submission inside bubblewrap, with limits for all its processes, and talk to it.

The sandbox (:func:`bwrap_command`): a new root on a tmpfs holding, read-only, only ``/usr`` (and
the ``/bin``, ``/lib`` links), the interpreter's prefix, its site-packages and the stage
(:mod:`bptt_grader.stage`); a private, size-limited ``/tmp`` (the working folder) and
``/dev/shm``; no network (``--unshare-net``), its own PID, IPC and UTS namespaces, a new session,
an empty environment, and ``--die-with-parent``. When the grader runs as root the sandbox runs
under an unprivileged user id of its own per concurrent slot (``SLOT_UID + slot``), so the
process-count limit holds and the submission can signal neither the grader nor a classmate. A
slot is locked by one grader at a time on the machine (:func:`claimed_slots`): two graders
sharing a user id would kill, and count the memory of, each other's processes.

Limits for the whole submission: a wall-clock timeout; memory and processes of all its processes
together through a cgroup v2 of its own where the machine allows it (:mod:`bptt_grader.cgroup`),
otherwise a watchdog here that kills the sandbox when their memory together (proportional set
size) passes ``memory_mb``; in the sandbox, per-process rlimits on address space, CPU time, file
size and process count; the tmpfs sizes bound the disk. At the end every process of the sandbox
is killed and waited for.

Probing (:func:`probe`) says whether bubblewrap exists and which namespaces this machine allows;
a namespace that is not permitted is dropped with the reason recorded in every report row.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import io
import json
import os
import pickle
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bptt.grading.errors import shorten

from . import cgroup as cgroups

SLOT_UID = 61000
MAX_SLOTS = 1000
SLOT_LOCKS = Path("/tmp/bptt-grade-slots")
"""One lock file per slot: graders running at once on one machine never share a slot."""
MAX_OUTPUT_BYTES = 64 * 2**20
MAX_LINE_BYTES = 32 * 2**20
INSTALL_HINT = (
    "bubblewrap (bwrap) is not installed: the grader runs every submission inside it. Install it "
    "(Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap), or "
    "grade inside a Linux container or VM that has it. On macOS or Windows use such a container. "
    "--no-sandbox grades without it (trusted notebooks only; every report row is marked)."
)


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot run here; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Limits of one submission (all its processes together, where the text says so)."""

    timeout_s: float = 300.0
    """Wall-clock seconds for the whole submission, then the sandbox is killed."""
    cell_time_limit_s: float = 60.0
    """Seconds one code cell may run before it is interrupted (the run goes on)."""
    part_time_limit_s: float | None = None
    """Seconds for one part's COLLECT; None keeps each part's own limit."""
    memory_mb: int = 2048
    """Total resident memory of the sandbox's processes (and each one's address space)."""
    file_mb: int = 64
    """Largest file, and the size of the private /tmp."""
    pids: int = 64
    """Processes and threads at once (torch starts a few threads)."""

    def __post_init__(self):
        for field in ("timeout_s", "cell_time_limit_s", "memory_mb", "file_mb", "pids"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{field}: expected a positive number, got {value!r}")
        if self.part_time_limit_s is not None and not self.part_time_limit_s > 0:
            raise ValueError(
                f"part_time_limit_s: expected a positive number or None, got {self.part_time_limit_s!r}"
            )

    @property
    def cpu_s(self) -> float:
        """CPU seconds per process: the wall-clock budget plus a margin."""
        return self.timeout_s + 10


@dataclasses.dataclass(frozen=True)
class Support:
    """What this machine allows: None for ``bwrap`` means no sandbox (``--no-sandbox``)."""

    bwrap: str | None
    flags: tuple[str, ...]
    unprivileged: bool
    notes: tuple[str, ...] = ()
    cgroup: Path | None = None
    """Where each submission gets a cgroup v2 of its own; None: rlimits and the watchdog."""
    limited_by: str = "rlimits and a memory watchdog"


NAMESPACES = ("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts")


def _probe_runs(bwrap: str, flags: list[str], user: int | None = None) -> bool:
    command = [bwrap, *_root_binds(), "--proc", "/proc", "--dev", "/dev", *flags,
               "--die-with-parent", "--new-session", "--", "/bin/true"]  # fmt: skip
    try:
        return subprocess.run(command, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def limits_support(cgroups_found: cgroups.CgroupSupport | None = None) -> dict:
    """The ``cgroup``/``limited_by`` fields of :class:`Support`: cgroup v2 where it can be used."""
    found = cgroups.prepare(cgroups.detect() if cgroups_found is None else cgroups_found)
    if found.base is not None:
        return {"cgroup": found.base, "limited_by": f"{found.reason} (memory, pids)"}
    return {"cgroup": None, "limited_by": f"rlimits and a memory watchdog ({found.reason})"}


def probe(no_sandbox: bool = False, which=None, runs=_probe_runs, cgroups_found=None) -> Support:
    """Find bubblewrap and the namespaces it may use here; :class:`SandboxUnavailable` if none.

    As root, bubblewrap needs no user namespace, and the child drops to its slot's user id
    itself before any submitted code runs (``unprivileged``). ``cgroups_found`` (for tests):
    what :func:`bptt_grader.cgroup.detect` would say.
    """
    if no_sandbox:
        return Support(
            None, (), False, ("NOT SANDBOXED (--no-sandbox)",), **limits_support(cgroups_found)
        )
    bwrap = (which or shutil.which)("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(INSTALL_HINT)
    root = os.geteuid() == 0
    flags = [f for f in NAMESPACES if not (root and f == "--unshare-user")]
    notes = []
    if not runs(bwrap, flags, None):
        for flag in list(flags):
            if runs(bwrap, [f for f in flags if f != flag], None):
                flags.remove(flag)
                notes.append(f"bwrap {flag} is not permitted on this machine; running without it")
                break
        else:
            raise SandboxUnavailable(
                "bubblewrap is installed but cannot create a sandbox here (namespaces not "
                "permitted; in Docker run with --security-opt seccomp=unconfined, or use a VM). "
                + INSTALL_HINT.split(": ", 1)[1]
            )
    if not root:
        notes.append(
            "not run as root: the sandbox keeps your user id, without a process-count limit"
        )
    return Support(bwrap, tuple(flags), root, tuple(notes), **limits_support(cgroups_found))


def _root_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    if Path("/etc/ld.so.cache").exists():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def interpreter() -> str:
    """The real interpreter behind ``sys.executable`` (a venv's python is a link to it)."""
    return os.path.realpath(sys.executable)


def bwrap_command(support: Support, stage: Path, site: list[str], limits: Limits) -> list[str]:
    """The command that runs the child inside the sandbox."""
    python = interpreter()
    prefix = os.path.realpath(sys.base_prefix)
    args = [support.bwrap, *_root_binds()]
    if not python.startswith(prefix + os.sep) and not python.startswith("/usr/"):
        args += ["--ro-bind", os.path.dirname(python), os.path.dirname(python)]
    if not prefix.startswith("/usr"):
        args += ["--ro-bind", prefix, prefix]
    # Installed packages go to fixed places inside: their own path may lie under /tmp (a
    # checkout in a temporary folder), which the private /tmp below would hide.
    inside = [f"/site/{i}" for i in range(len(site))]
    for path, target in zip(site, inside):
        args += ["--ro-bind", path, target]
    parents = []
    for i in range(len(args) - 2):
        if args[i] == "--ro-bind":
            parents += [str(p) for p in reversed(Path(args[i + 2]).parents) if str(p) != "/"]
    made = []
    for parent in dict.fromkeys(parents):  # traversable after the child drops to its user id
        made += ["--perms", "0755", "--dir", parent]
    args[1:1] = made
    size = str(limits.file_mb * 2**20)
    args += [
        "--ro-bind", str(stage), "/grader",
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
        "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
        "--chdir", "/tmp",
        *support.flags,
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]  # fmt: skip
    for key, value in child_environment().items():
        args += ["--setenv", key, value]
    return [*args, "--", python, "-I", "-S", "/grader/child.py", *inside]


def child_command(
    support: Support, stage: Path, site: list[str], limits: Limits, uid: int | None
) -> list[str]:
    """The sandboxed command, with the user id the child drops to (``--uid=N``) if any."""
    command = bwrap_command(support, stage, site, limits)
    if uid is None:
        return command
    # the child's arguments are the in-sandbox package folders; --uid goes before them
    head, inside = command[: len(command) - len(site)], command[len(command) - len(site) :]
    return [*head, f"--uid={uid}", *inside]


def child_environment(home: str = "/tmp") -> dict[str, str]:
    """The whole environment of the child: nothing of the grader's is passed on."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": home,
        "BPTT_PROGRESS": "0",
        "BPTT_DEVICE": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
    }


@dataclasses.dataclass
class ChildRun:
    """What came back from a child: part records by name, failed cells, how it ended, and the
    records collected with references substituted (:attr:`bptt.grading.parts.Part.substitutes`)."""

    records: dict[str, object]
    cell_errors: list[str]
    failure: str | None
    substituted: dict[str, object] = dataclasses.field(default_factory=dict)


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stream:
                fields = stream.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _uid_processes(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                continue
    return found


@contextlib.contextmanager
def claimed_slots(count: int):
    """``count`` slots that no other grader on this machine holds while the block runs (an
    exclusive lock on a file per slot) and under whose user id no process runs."""
    SLOT_LOCKS.mkdir(mode=0o700, exist_ok=True)
    info = SLOT_LOCKS.lstat()
    if not os.path.isdir(SLOT_LOCKS) or SLOT_LOCKS.is_symlink() or info.st_uid != os.geteuid():
        raise SandboxUnavailable(f"{SLOT_LOCKS} is not a folder of this user's; remove it")
    with contextlib.ExitStack() as held:
        slots = []
        for slot in range(MAX_SLOTS):
            if len(slots) == count:
                break
            stream = held.enter_context(open(SLOT_LOCKS / f"slot-{slot}", "a"))
            try:
                fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # another grader's
            if not _uid_processes(SLOT_UID + slot):
                slots.append(slot)
        if len(slots) < count:
            raise SandboxUnavailable(f"fewer than {count} free sandbox slots on this machine")
        yield slots


def _memory_mb(pids: list[int]) -> float:
    """Memory of ``pids`` together: the sum of their proportional set sizes (shared pages are
    split between the processes sharing them, so a fork is not counted twice), else of RSS."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as stream:
                for line in stream:
                    if line.startswith(b"Pss:"):
                        total_kb += int(line.split()[1])
                        break
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(f"/proc/{pid}/statm", "rb") as stream:
                total_kb += int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, IndexError, ValueError):
            continue
    return total_kb / 1024


def kill_all(
    process: subprocess.Popen, uid: int | None, group: cgroups.SubmissionCgroup | None = None
) -> None:
    """Kill the sandbox and every process in it, and wait until none is left."""
    if group is not None:
        group.close()
    deadline = time.monotonic() + 10
    while True:
        pids = set(_tree(process.pid)) if process.poll() is None else set()
        if uid is not None:
            pids |= set(_uid_processes(uid))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if process.poll() is None:
            try:
                process.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.05)


def memory_failure(limits: Limits) -> str:
    return f"used more than {limits.memory_mb} MB of memory (all its processes together)"


class _Conversation:
    """Read the child's JSON lines (size-limited) while the watchdog watches the sandbox."""

    def __init__(self, process, limits: Limits, uid: int | None, group=None):
        self.process, self.limits, self.uid, self.group = process, limits, uid, group
        self.deadline = time.monotonic() + limits.timeout_s
        self.buffer = b""
        self.total = 0
        self.messages: list[dict] = []
        self.failure: str | None = None
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.next_watch = 0.0

    def _watch(self) -> None:
        now = time.monotonic()
        if now < self.next_watch:
            return
        self.next_watch = now + 0.5
        if self.group is not None:  # the kernel holds memory.max; this only names the cause
            over = self.group.oom_killed() or self.group.memory_mb() > self.limits.memory_mb
        else:
            # the slot's user id (a stat per process) is cheaper to find than the process tree
            pids = _uid_processes(self.uid) if self.uid is not None else _tree(self.process.pid)
            over = _memory_mb(pids) > self.limits.memory_mb
        if over:
            self.failure = memory_failure(self.limits)

    def until(self, key: str) -> bool:
        """Read messages until one has ``key``; False when the child ended or failed first."""
        while self.failure is None:
            if any(key in m for m in self.messages):
                return True
            self._watch()
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.failure = f"timed out after {self.limits.timeout_s:g} s"
                break
            for _ in self.selector.select(min(left, 0.2)):
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
                if not chunk:
                    return any(key in m for m in self.messages)
                self.total += len(chunk)
                if self.total > MAX_OUTPUT_BYTES:
                    self.failure = "sent more output than the grader accepts"
                    break
                self.buffer += chunk
                *lines, self.buffer = self.buffer.split(b"\n")
                if len(self.buffer) > MAX_LINE_BYTES:
                    self.buffer = b""
                for line in lines:
                    try:
                        message = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(message, dict):
                        self.messages.append(message)
        return False


class _InputsPickler(pickle.Pickler):
    """Pickles the parts' inputs for the child, keeping the ``.grad`` of torch leaves."""

    def reducer_override(self, obj):
        if (
            type(obj).__module__.startswith("torch")
            and getattr(obj, "is_leaf", False) is True
            and obj.grad is not None
        ):
            from bptt.grading.exercises._support import tensor_with_grad

            grad = obj.grad.detach().clone()
            return tensor_with_grad, (obj.detach().clone(), grad, obj.requires_grad)
        return NotImplemented


def encode_parts(parts: list[dict]) -> bytes:
    buffer = io.BytesIO()
    _InputsPickler(buffer, protocol=4).dump(parts)
    return base64.b64encode(buffer.getvalue())


def run_in_sandbox(
    support: Support,
    stage: Path,
    cells: list[dict],
    parts: list[dict],
    limits: Limits,
    slot: int,
    again: list[dict] = (),
) -> ChildRun:
    """Run ``cells``, COLLECT ``parts`` (each with its inputs), then the parts ``again`` with
    references substituted, in a fresh sandbox."""
    header = {
        "cells": cells,
        "cell_time_limit": limits.cell_time_limit_s,
        "limits": {
            "memory_mb": limits.memory_mb,
            "cpu_s": limits.cpu_s,
            "file_mb": limits.file_mb,
            "pids": limits.pids if support.unprivileged else 0,
        },
    }
    site = __import__("bptt_grader.stage", fromlist=["site_packages"]).site_packages()
    uid = SLOT_UID + slot if support.unprivileged else None
    if support.bwrap is None:  # --no-sandbox: a plain child process
        command = [interpreter(), "-I", "-S", str(stage / "child.py"), *site]
        kwargs = {
            "cwd": str(stage.parent / f"work-{slot}"),
            "env": child_environment(str(stage.parent / f"work-{slot}")),
        }
        Path(kwargs["cwd"]).mkdir(exist_ok=True)
    else:
        command = child_command(support, stage, site, limits, uid)
        kwargs = {"env": {}, "cwd": "/"}
    group = None
    if support.cgroup is not None:
        try:
            name = f"bptt-{os.getpid()}-{slot}-{time.monotonic_ns()}"
            group = cgroups.SubmissionCgroup(support.cgroup, name, limits.memory_mb, limits.pids)
        except OSError:  # the cgroup went away: the watchdog still holds the memory limit
            group = None
        else:
            command = group.wrap(command)
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        **kwargs,
    )
    talk = _Conversation(process, limits, uid, group)
    try:
        try:
            process.stdin.write(json.dumps(header).encode() + b"\n")
            process.stdin.flush()
            if talk.until("cells_done"):
                process.stdin.write(encode_parts(parts) + b"\n")
                process.stdin.flush()
                if talk.until("parts_done"):
                    process.stdin.write(encode_parts(list(again)) + b"\n")
                    process.stdin.flush()
                    talk.until("done")
        except (BrokenPipeError, OSError):
            pass
    finally:
        if group is not None and talk.failure is None and group.oom_killed():
            talk.failure = memory_failure(limits)
        kill_all(process, uid, group)
        talk.selector.close()
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
    return _summarise(talk, process.returncode)


def _summarise(talk: _Conversation, returncode: int | None) -> ChildRun:
    messages = talk.messages
    # part records count only before the first "parts_done", substituted ones only after it
    cut = next((i for i, m in enumerate(messages) if "parts_done" in m), len(messages))
    records = {m["part"]: m.get("record") for m in messages[:cut] if isinstance(m.get("part"), str)}
    again = {
        m["substituted"]: m.get("record")
        for m in messages[cut:]
        if isinstance(m.get("substituted"), str)
    }
    cell_errors = [
        shorten(m["cell_error"]) for m in messages if isinstance(m.get("cell_error"), str)
    ]
    stages = [m["stage"] for m in messages if isinstance(m.get("stage"), str)]
    stage = stages[-1] if stages else "start-up"
    failure = None
    if talk.failure:
        failure = f"{talk.failure} while running {stage}"
    elif not any(m.get("done") is True for m in messages):
        faults = [m["fault"] for m in messages if isinstance(m.get("fault"), str)]
        if faults:
            failure = f"internal grader error while running {stage}: {shorten(faults[-1], 200)}"
        else:
            failure = (
                f"the grading process ended early while running {stage}; does the notebook "
                "call os._exit(), end the interpreter or use too much memory?"
            )
    return ChildRun(records, cell_errors, failure, again)
