"""Run one submission in a fresh, limited child process and read back what it collected.

The parent side of :mod:`bptt.grading.sandbox`: it starts the child in a new session (so the
whole process group can be killed), in a temporary working directory that is deleted afterwards,
with a scrubbed environment (no tokens, proxies or ``PYTHON*`` variables; one thread per math
library), waits at most ``timeout_s`` of wall-clock time, kills the group, and reads the child's
JSON-lines result file. Nothing the child wrote is trusted: lines that do not parse are ignored
and records are validated later, by :func:`bptt.grading.parts.score_part`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import bptt

from .errors import shorten
from .notebook import CodeCell

MAX_RESULT_BYTES = 256 * 2**20


@dataclasses.dataclass(frozen=True)
class Limits:
    """Limits of one submission's child process."""

    timeout_s: float = 300.0
    """Wall-clock seconds for the whole submission; then its process group is killed."""
    cell_time_limit_s: float = 60.0
    """Seconds one code cell may run before it is interrupted (the run goes on)."""
    part_time_limit_s: float | None = None
    """Seconds for one part's COLLECT; None keeps each part's own limit."""
    memory_mb: int = 2048
    """Address-space limit (torch needs about 1 GiB of it just to import)."""
    file_mb: int = 64
    """Largest file the child may write."""

    def __post_init__(self):
        for field in ("timeout_s", "cell_time_limit_s", "memory_mb", "file_mb"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{field}: expected a positive number, got {value!r}")
        if self.part_time_limit_s is not None and not self.part_time_limit_s > 0:
            raise ValueError(
                f"part_time_limit_s: expected a positive number or None, got {self.part_time_limit_s!r}"
            )

    @property
    def cpu_s(self) -> float:
        """CPU-time limit: the wall-clock budget plus a margin (a busy loop hits the timeout first)."""
        return self.timeout_s + 10


@dataclasses.dataclass
class ChildRun:
    """What came back from a child: part records by name, failed cells, and how it ended."""

    records: dict[str, object]
    cell_errors: list[str]
    failure: str | None
    """None when the child finished; else why it did not (timeout, crash, early exit)."""


def child_environment(workdir: Path) -> dict[str, str]:
    """The scrubbed environment of a child: only what Python and numpy/torch need to run."""
    return {
        "PATH": os.defpath,
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir),
        "BPTT_PROGRESS": "0",
        "BPTT_DEVICE": "cpu",
    }


def _command() -> list[str]:
    root = str(Path(bptt.__file__).resolve().parent.parent)
    code = (
        f"import sys; sys.path.insert(0, {root!r}); from bptt.grading.sandbox import main; main()"
    )
    return [sys.executable, "-I", "-c", code]


def _read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, "rb") as stream:
        data = stream.read(MAX_RESULT_BYTES)
    messages = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return shorten(lines[-1], 200) if lines else ""


def _failure(returncode: int, timed_out: bool, stage: str, limits: Limits, stderr: Path) -> str:
    if timed_out:
        return f"timed out after {limits.timeout_s:g} s while running {stage}"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGXCPU":
            return f"used more than {limits.cpu_s:g} s of CPU time while running {stage}"
        return f"the grading process was killed ({name}) while running {stage}"
    detail = _last_line(stderr) if returncode == 3 else ""
    if detail:
        return f"internal grader error while running {stage}: {detail}"
    return (
        f"the grading process ended early (exit status {returncode}) while running {stage}; "
        "does the notebook call os._exit() or end the interpreter?"
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(
    exercise_id: str,
    cells: list[CodeCell],
    *,
    seed: int,
    limits: Limits,
    private_checks: str | None = None,
) -> ChildRun:
    """Execute ``cells`` and COLLECT every part of ``exercise_id`` in a sandboxed child."""
    with tempfile.TemporaryDirectory(prefix="bptt-grade-", ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        workdir = tmp / "work"
        workdir.mkdir()
        result_path, stderr_path = tmp / "result.jsonl", tmp / "stderr.txt"
        job = {
            "exercise": exercise_id,
            "cells": [
                {"number": c.number, "source": c.source, "tags": list(c.tags)} for c in cells
            ],
            "seed": seed,
            "cell_time_limit": limits.cell_time_limit_s,
            "part_time_limit": limits.part_time_limit_s,
            "private_checks": private_checks,
            "result_path": str(result_path),
            "memory_mb": limits.memory_mb,
            "cpu_s": limits.cpu_s,
            "file_mb": limits.file_mb,
        }
        timed_out = False
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                _command(),
                cwd=workdir,
                env=child_environment(workdir),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                process.communicate(json.dumps(job).encode(), timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process.pid)
                process.wait()
            finally:
                _kill_group(process.pid)  # whatever the submission left running
        messages = _read_lines(result_path)
        records = {m["part"]: m.get("record") for m in messages if isinstance(m.get("part"), str)}
        cell_errors = [m["cell_error"] for m in messages if isinstance(m.get("cell_error"), str)]
        stages = [m["stage"] for m in messages if isinstance(m.get("stage"), str)]
        done = any(m.get("done") is True for m in messages)
        failure = None
        if timed_out or not done:
            stage = stages[-1] if stages else "start-up"
            failure = _failure(process.returncode, timed_out, stage, limits, stderr_path)
        return ChildRun(records, [shorten(e) for e in cell_errors], failure)
