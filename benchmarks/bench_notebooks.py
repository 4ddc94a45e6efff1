"""The course's own cost: wall-clock time of executing every notebook, and the total.

Each notebook runs once, top to bottom, in a fresh kernel of this environment (the way nbval
runs it in `make test`), from its own folder. The target: every chapter under 90 s and the
whole course under 15 minutes on a 2-core CPU. ``--quick`` times only the first chapter.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from benchmarks.harness import Table, log

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("chapters", "exercises", "solutions")
CHAPTER_BUDGET_S = 90.0
COURSE_BUDGET_S = 15 * 60.0


def execution_seconds(path: Path) -> float:
    """Seconds to execute the notebook at ``path`` in a fresh python3 kernel (outputs discarded)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def run(quick: bool = False) -> list[Table]:
    paths = sorted(p for folder in FOLDERS for p in (ROOT / folder).glob("*.ipynb"))
    if quick:
        paths = paths[:1]
    rows, total = [], 0.0
    for path in paths:
        log(f"  executing {path.relative_to(ROOT)}")
        start = time.perf_counter()
        try:
            seconds = execution_seconds(path)
            failure = None
        except (CellExecutionError, CellTimeoutError) as error:
            seconds = time.perf_counter() - start
            plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
            failure = plain.splitlines()[-1][:120] if plain else type(error).__name__
            log(f"    FAILED: {failure}")
        total += seconds
        budget = CHAPTER_BUDGET_S if path.parent.name == "chapters" else None
        verdict = "-" if budget is None else ("yes" if seconds <= budget else "NO")
        if failure is not None:
            verdict = f"failed: {failure}"
        rows.append([path.relative_to(ROOT).as_posix(), round(seconds, 1), verdict])
    rows.append(["total", round(total, 1), "yes" if total <= COURSE_BUDGET_S else "NO"])
    return [
        Table(
            name="notebooks",
            title="Execution time of every notebook (one fresh kernel each)",
            columns=["notebook", "seconds", "within budget"],
            rows=rows,
            notes=f"Budgets: {CHAPTER_BUDGET_S:.0f} s per chapter, {COURSE_BUDGET_S / 60:.0f} min for "
            "all notebooks. Sequential, one kernel at a time; `make test` runs two in parallel.",
        )
    ]
