"""cgroup v2 limits of the batch grader: when it uses them, and what it writes.

The machines this runs on may have cgroup v1 (then the watchdog holds the memory limit, which
the hostile batch of test_grading_batch shows); the detection is tested here on fake hierarchies.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bptt_grader import cgroup, sandbox

V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n"
V1 = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
)
HYBRID = V1 + "40 31 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"


def _hierarchy(root: Path, path: str, controllers: str, enabled: str = "", procs: str = "") -> Path:
    folder = root / "sys/fs/cgroup" / path.lstrip("/")
    folder.mkdir(parents=True)
    (folder / "cgroup.controllers").write_text(controllers + "\n")
    (folder / "cgroup.subtree_control").write_text(enabled + "\n")
    (folder / "cgroup.procs").write_text(procs)
    return folder


def test_a_delegated_cgroup_v2_is_used(tmp_path):
    folder = _hierarchy(
        tmp_path, "/user.slice/grader.scope", "cpu memory pids", "memory pids", "42\n77\n"
    )
    found = cgroup.detect(V2, "0::/user.slice/grader.scope\n", tmp_path, pid=42)
    assert found.base == folder and not found.move_self


def test_a_cgroup_holding_only_the_grader_is_split_first(tmp_path):
    folder = _hierarchy(tmp_path, "/job", "memory pids io", "", "42\n")
    found = cgroup.detect(V2, "0::/job\n", tmp_path, pid=42)
    assert found.base == folder and found.move_self
    ready = cgroup.prepare(found, pid=42)
    assert ready.base == folder and not ready.move_self
    assert (folder / cgroup.LEAF / "cgroup.procs").read_text() == "42"
    assert (folder / "cgroup.subtree_control").read_text() == "+memory +pids"


@pytest.mark.parametrize(
    ("mountinfo", "own", "controllers", "enabled", "procs", "reason"),
    [
        (V1, "0::/\n", "memory pids", "memory pids", "", "no cgroup v2 hierarchy"),
        (V2, "4:memory:/x\n", "memory pids", "memory pids", "", "no cgroup v2 hierarchy"),
        (HYBRID, "0::/\n", "", "", "1\n", "lacks the memory and pids controllers"),
        (V2, "0::/job\n", "cpu pids", "pids", "", "lacks the memory controller"),
        (V2, "0::/job\n", "memory pids", "", "42\n43\n", "holds other processes"),
    ],
    ids=["cgroup-v1", "no-v2-line", "hybrid-empty", "no-memory", "shared"],
)
def test_cgroup_v2_is_refused_with_a_reason(
    tmp_path, mountinfo, own, controllers, enabled, procs, reason
):
    path = own.split("::", 1)[1].strip() if "::" in own else "/"
    mount = "unified" if mountinfo is HYBRID else ""
    _hierarchy(tmp_path, f"{mount}/{path}".replace("//", "/"), controllers, enabled, procs)
    found = cgroup.detect(mountinfo, own, tmp_path, pid=42)
    assert found.base is None and reason in found.reason, found.reason
    limits = sandbox.limits_support(found)
    assert limits["cgroup"] is None and limits["limited_by"].startswith(
        "rlimits and a memory watchdog"
    )


def test_a_cgroup_that_is_not_writable_is_refused(tmp_path, monkeypatch):
    _hierarchy(tmp_path, "/job", "memory pids", "memory pids")
    monkeypatch.setattr(cgroup.os, "access", lambda path, mode: False)
    found = cgroup.detect(V2, "0::/job\n", tmp_path, pid=42)
    assert found.base is None and "not writable" in found.reason


def test_a_submission_cgroup_sets_its_limits_and_reports_oom_kills(tmp_path):
    group = cgroup.SubmissionCgroup(tmp_path, "sub", memory_mb=1536, pids=64)
    assert (group.path / "memory.max").read_text() == str(1536 * 2**20)
    assert (group.path / "memory.swap.max").read_text() == "0"
    assert (group.path / "pids.max").read_text() == "64"
    assert not group.oom_killed()
    (group.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (group.path / "memory.current").write_text(str(100 * 2**20))
    assert group.oom_killed() and group.memory_mb() == 100
    command = group.wrap(["/bin/echo", "inside"])
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    assert finished.stdout == "inside\n"
    assert (group.path / "cgroup.procs").read_text().strip().isdigit()  # the shell joined first
    (group.path / "cgroup.procs").write_text("")
    for name in list(group.path.iterdir()):
        name.unlink()
    group.close()
    assert not group.path.exists()
