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


def sandbox_processes(first_uid: int, count: int) -> list[int]:
    """Processes still running under the sandbox's user ids."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if first_uid <= os.stat(f"/proc/{entry}").st_uid < first_uid + count:
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
