"""Limits for all the processes of one submission through cgroup v2, where the machine allows it.

:func:`detect` finds whether this process may make cgroups of its own: a cgroup v2 hierarchy
mounted, this process's cgroup in it, the ``memory`` and ``pids`` controllers available there,
and the grader allowed to write to it (root, or a cgroup delegated to the user, for example by
``systemd-run --user --scope -p Delegate=yes bptt-grade ...``). Where the controllers are not yet
enabled for children, the grader's cgroup must hold the grader alone: it then moves itself into a
leaf ``grader`` and enables them (cgroup v2 lets only a cgroup without processes of its own have
limited children). Anything else (cgroup v1, as on many CI machines and containers; no write
access; other processes sharing the cgroup) gives a reason, and the sandbox falls back to
per-process rlimits plus its watchdog on the total memory (:mod:`bptt_grader.sandbox`).

:class:`SubmissionCgroup` is one submission's cgroup: ``memory.max`` (no swap) and ``pids.max``
hold for all its processes together; the sandbox is started inside it (:meth:`wrap`), its OOM
kills are counted (:meth:`oom_killed`), and at the end every process in it is killed and the
cgroup removed (:meth:`close`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

REQUIRED = ("memory", "pids")
LEAF = "grader"


@dataclasses.dataclass(frozen=True)
class CgroupSupport:
    """Where per-submission cgroups go (``base``), or why there are none (``reason``)."""

    base: Path | None
    reason: str
    move_self: bool = False
    """True when the grader must first move itself into ``base/grader`` and enable controllers."""


def _cgroup2_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """``(root inside the hierarchy, mount point)`` of every cgroup2 mount in ``mountinfo``."""
    mounts = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if sep and tail.split()[:1] == ["cgroup2"] and len(fields) >= 5:
            mounts.append((fields[3], fields[4]))
    return mounts


def _own_path(self_cgroup: str) -> str | None:
    """This process's path in the v2 hierarchy (the ``0::`` line of /proc/self/cgroup)."""
    for line in self_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def detect(
    mountinfo: str | None = None,
    self_cgroup: str | None = None,
    root: Path = Path("/"),
    pid: int | None = None,
) -> CgroupSupport:
    """Whether the grader can limit submissions with cgroup v2 here (arguments: for tests)."""
    mountinfo = _read(Path("/proc/self/mountinfo")) if mountinfo is None else mountinfo
    self_cgroup = _read(Path("/proc/self/cgroup")) if self_cgroup is None else self_cgroup
    pid = os.getpid() if pid is None else pid
    own = _own_path(self_cgroup)
    mounts = _cgroup2_mounts(mountinfo)
    if not mounts or own is None:
        return CgroupSupport(None, "no cgroup v2 hierarchy (cgroup v1 or none)")
    for mount_root, mount_point in mounts:
        if own == mount_root or own.startswith(mount_root.rstrip("/") + "/"):
            relative = own[len(mount_root.rstrip("/")) :].lstrip("/")
            break
    else:
        return CgroupSupport(None, f"this process's cgroup {own} is not under a cgroup2 mount")
    folder = root / mount_point.lstrip("/") / relative
    available = _read(folder / "cgroup.controllers").split()
    missing = [c for c in REQUIRED if c not in available]
    if missing:
        return CgroupSupport(
            None,
            f"cgroup v2 at {folder} lacks the {' and '.join(missing)} controller"
            + ("s" if len(missing) > 1 else ""),
        )
    control = folder / "cgroup.subtree_control"
    if not (os.access(folder, os.W_OK) and os.access(control, os.W_OK)):
        return CgroupSupport(None, f"cgroup v2 at {folder} is not writable by the grader")
    if all(c in _read(control).split() for c in REQUIRED):
        return CgroupSupport(folder, f"cgroup v2 at {folder}")
    members = {int(p) for p in _read(folder / "cgroup.procs").split() if p.isdigit()}
    if members - {pid}:
        return CgroupSupport(
            None,
            f"cgroup v2 at {folder} holds other processes and no delegated controllers "
            "(run the grader in a cgroup of its own: systemd-run --scope -p Delegate=yes ...)",
        )
    return CgroupSupport(folder, f"cgroup v2 at {folder}", move_self=True)


def prepare(support: CgroupSupport, pid: int | None = None) -> CgroupSupport:
    """Make ``support`` usable (move the grader to its leaf, enable the controllers) or say why not."""
    if support.base is None or not support.move_self:
        return support
    try:
        leaf = support.base / LEAF
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid() if pid is None else pid))
        (support.base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in REQUIRED))
    except OSError as error:
        return CgroupSupport(
            None, f"cgroup v2 at {support.base} refused: {error.strerror or error}"
        )
    return CgroupSupport(support.base, support.reason)


class SubmissionCgroup:
    """The cgroup of one submission: memory (without swap) and process limits for all of it."""

    def __init__(self, base: Path, name: str, memory_mb: int, pids: int):
        self.path = base / name
        self.path.mkdir()
        self._set("memory.max", str(memory_mb * 2**20))
        self._set("memory.swap.max", "0", optional=True)
        self._set("memory.oom.group", "1", optional=True)
        self._set("pids.max", str(pids))

    def _set(self, name: str, value: str, optional: bool = False) -> None:
        try:
            (self.path / name).write_text(value)
        except OSError:
            if not optional:
                raise

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` started inside this cgroup (a shell joins it, then execs the command),
        so that every process it makes is inside from its first instruction."""
        join = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
        return ["/bin/sh", "-c", join, "sh", str(self.path), *command]

    def memory_mb(self) -> float:
        """The memory the submission's processes use now (``memory.current``)."""
        text = _read(self.path / "memory.current").strip()
        return int(text) / 2**20 if text.isdigit() else 0.0

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the submission for passing ``memory.max``."""
        for line in _read(self.path / "memory.events").splitlines():
            key, _, count = line.partition(" ")
            if key in ("oom_kill", "oom_group_kill") and count.strip().isdigit() and int(count):
                return True
        return False

    def pids(self) -> list[int]:
        return [int(p) for p in _read(self.path / "cgroup.procs").split() if p.isdigit()]

    def close(self, wait_s: float = 10.0) -> None:
        """Kill every process in the cgroup, wait until it is empty, remove it."""
        deadline = time.monotonic() + wait_s
        while True:
            if (self.path / "cgroup.kill").exists():
                self._set("cgroup.kill", "1", optional=True)
            left = self.pids()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        try:
            self.path.rmdir()
        except OSError:
            pass
