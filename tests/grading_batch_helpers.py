"""Notebook builders for the batch grader's tests: take a course notebook, swap or add cells."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def course_notebook(folder: str, exercise: str) -> dict:
    (path,) = (ROOT / folder).glob(f"{exercise}_*.ipynb")
    return json.loads(path.read_text())


def code_cell(source: str, tags: tuple[str, ...] = ()) -> dict:
    metadata = {"tags": list(tags)} if tags else {}
    return {
        "cell_type": "code",
        "metadata": metadata,
        "execution_count": None,
        "outputs": [],
        "source": source,
    }


def replace_function(notebook: dict, name: str, source: str) -> dict:
    """The notebook with the code cell that defines ``name`` replaced by ``source``."""
    notebook = json.loads(json.dumps(notebook))
    (cell,) = [
        c
        for c in notebook["cells"]
        if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"])
    ]
    cell["source"] = source
    return notebook


def add_cell(
    notebook: dict, source: str, position: int | None = None, tags: tuple[str, ...] = ()
) -> dict:
    notebook = json.loads(json.dumps(notebook))
    cells = notebook["cells"]
    cells.insert(len(cells) if position is None else position, code_cell(source, tags))
    return notebook


def write(path: Path, notebook: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook))


def by_student(report_dir: Path) -> dict:
    return {
        s["student"]: s for s in json.loads((report_dir / "grades.json").read_text())["students"]
    }


def parts_of(student: dict, exercise: str | None = None) -> dict:
    """``{part: row}`` of the student's (only, or ``exercise``'s counted) submission."""
    subs = [
        s
        for s in student["submissions"]
        if exercise is None or (s["exercise"] == exercise and s["counted"])
    ]
    (submission,) = subs
    return {p["part"]: p for p in submission["parts"]}


def sandbox_processes() -> list[int]:
    """Processes left under a sandbox user id whose slot no running grader holds (other graders
    on this machine may be busy in theirs)."""
    import fcntl
    import os

    from bptt_grader.sandbox import MAX_SLOTS, SLOT_LOCKS, SLOT_UID

    found = []
    for entry in os.listdir("/proc"):
        try:
            slot = os.stat(f"/proc/{entry}").st_uid - SLOT_UID if entry.isdigit() else -1
            if 0 <= slot < MAX_SLOTS:
                with open(SLOT_LOCKS / f"slot-{slot}", "a") as stream:
                    fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody's now
                found.append(int(entry))
        except OSError:
            continue
    return found


def tree_digest(*folders: Path) -> dict[str, bytes]:
    """Every regular file under ``folders`` with its bytes (to show nothing was changed)."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
                files[str(path)] = path.read_bytes()
    return files


def function_source(notebook: dict, name: str) -> str:
    """The source of the code cell that defines ``name``."""
    (source,) = [
        "".join(c["source"])
        for c in notebook["cells"]
        if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"])
    ]
    return source


# ex04, partial credit: one bug in the step or in the loop around it
NO_TANH_STEP = """
def step_backward(dh_t, cache):
    return {"x": dh_t @ cache.W_xh, "h_prev": dh_t @ cache.W_hh, "W_xh": dh_t.T @ cache.x,
            "W_hh": dh_t.T @ cache.h_prev, "b": dh_t.sum(axis=0)}
"""

NO_CARRY_LOOP = """
def backward(dh, caches):
    grads, dx = {"W_xh": 0.0, "W_hh": 0.0, "b": 0.0}, [None] * len(caches)
    for t in reversed(range(len(caches))):
        step = step_backward(dh[:, t], caches[t])
        dx[t], h0 = step["x"], step["h_prev"]
        for name in grads:
            grads[name] = grads[name] + step[name]
    return {"x": np.stack(dx, axis=1), "h0": h0, **grads}
"""

STEP_NOT_WRITTEN = """
def step_backward(dh_t, cache):
    raise NotImplementedError
"""

# A step_backward that keeps its inputs, and a backward that, once the course's step_backward
# is substituted for it, computes the step part's answer and sends it as that part's record.
REPLAY = """
import json, os
import numpy as np
from bptt.grading import plain
_seen = []
def step_backward(dh_t, cache):
    _seen.append((dh_t, cache))
    return {k: np.zeros(1) for k in ("x", "h_prev", "W_xh", "W_hh", "b")}
_own = step_backward
def backward(dh, caches):
    if step_backward is not _own:
        values = {k: plain.to_plain(v, k) for k, v in step_backward(*_seen[0]).items()}
        line = json.dumps({"part": "step_backward", "record": {"status": "ok", "values": values}})
        for fd in range(3, 40):
            try:
                os.write(fd, (line + "\\n").encode())
            except OSError:
                pass
    raise RuntimeError("no backward of my own")
"""
