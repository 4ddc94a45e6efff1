"""The reports: ``grades.json`` (everything), ``grades.csv`` (a row per part), ``gradebook.csv``.

``gradebook.csv`` is what a learning-management system imports (Canvas, Moodle, Blackboard all
take a CSV with one row per student): the columns ``student``, one per exercise (the points of
the notebook that counts, 0 when none), ``total`` and ``sandbox``; the header names each
column's maximum (``ex04 (max 10)``), the total is out of the course maximum (every exercise).

Every text cell that a spreadsheet could take for a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is prefixed with ``'`` (:func:`neutralise`, as OWASP
recommends against CSV injection). Every file is written to a temporary file in the output
folder and renamed over the old one, so a reader never sees half a report; the output folder is
never visible inside a sandbox.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from pathlib import Path

import bptt
from bptt.grading.selfcheck import format_points

from .batch import Settings, Skipped, SubmissionResult

CSV_COLUMNS = (
    "student",
    "exercise",
    "notebook",
    "part",
    "points",
    "max_points",
    "reason",
    "sandbox",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """``value`` safe for a spreadsheet: text that starts like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def summarise(
    results: list[SubmissionResult],
    skipped: list[Skipped],
    settings: Settings,
    course_max: dict[str, float],
    sandbox: str,
) -> dict:
    """The JSON report."""
    students: dict[str, dict] = {}

    def student(name: str) -> dict:
        return students.setdefault(
            name, {"student": name, "total": 0.0, "max_points": sum(course_max.values()),
                   "exercises": {e: 0.0 for e in course_max}, "skipped": [], "submissions": []}
        )  # fmt: skip

    for entry in skipped:
        student(entry.student)["skipped"].append({"entry": entry.name, "reason": entry.reason})
    for r in results:
        record = student(r.student)
        record["submissions"].append(
            {
                "notebook": r.notebook,
                "exercise": r.exercise,
                "total": r.total,
                "max_points": r.max_points,
                "counted": r.counted,
                "not_counted_because": r.why_not_counted or None,
                "problem": r.problem,
                "notes": r.notes,
                "parts": [p.as_dict() for p in r.parts],
            }
        )
        if r.counted and r.exercise in record["exercises"]:
            record["exercises"][r.exercise] = r.total
    for record in students.values():
        record["total"] = round(sum(record["exercises"].values()), 2)
    grader = {
        "bptt_version": bptt.__version__,
        "seed": settings.seed,
        "jobs": settings.jobs,
        "sandbox": sandbox,
        "private_checks": bool(settings.private_checks),
        "course_max": course_max,
        **{k: v for k, v in vars(settings.limits).items()},
    }
    return {"grader": grader, "students": [students[k] for k in sorted(students)]}


def csv_rows(summary: dict) -> list[dict]:
    """The rows of ``grades.csv``."""
    sandbox = summary["grader"]["sandbox"]
    rows = []
    for student in summary["students"]:
        name = student["student"]
        for entry in student["skipped"]:
            rows.append({"student": name, "exercise": "", "notebook": entry["entry"], "part": "skipped",
                         "points": 0, "max_points": 0, "reason": entry["reason"]})  # fmt: skip
        for sub in student["submissions"]:
            base = {"student": name, "exercise": sub["exercise"] or "", "notebook": sub["notebook"]}
            rows.extend({**base, **part} for part in sub["parts"])
            reason = sub["problem"] or sub["not_counted_because"] or ""
            rows.append({**base, "part": "total", "points": sub["total"],
                         "max_points": sub["max_points"], "reason": reason})  # fmt: skip
        rows.append({"student": name, "exercise": "", "notebook": "", "part": "student total",
                     "points": student["total"], "max_points": student["max_points"], "reason": ""})  # fmt: skip
    return [{**row, "sandbox": sandbox} for row in rows]


def gradebook_rows(summary: dict) -> tuple[list[str], list[list]]:
    """Header and rows of ``gradebook.csv``: one row per student."""
    course_max = summary["grader"]["course_max"]
    header = ["student", *(f"{e} (max {format_points(m)})" for e, m in course_max.items())]
    header += [f"total (max {format_points(sum(course_max.values()))})", "sandbox"]
    rows = [
        [
            s["student"],
            *(s["exercises"][e] for e in course_max),
            s["total"],
            summary["grader"]["sandbox"],
        ]
        for s in summary["students"]
    ]
    return header, rows


def _csv_text(header: list[str], rows: list[list]) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow([neutralise(h) for h in header])
    writer.writerows([[neutralise(v) for v in row] for row in rows])
    return stream.getvalue()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by a temporary file and a rename; whatever blocks ``path``
    (a folder, a FIFO, a link) is moved aside first."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        path.rename(path.with_name(f"{path.name}.blocked-{time.time_ns()}"))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_reports(out_dir: Path, summary: dict) -> dict[str, Path]:
    """Write ``grades.json``, ``grades.csv`` and ``gradebook.csv`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("grades.json", "grades.csv", "gradebook.csv")}
    write_atomically(paths["grades.json"], json.dumps(summary, indent=2, allow_nan=False) + "\n")
    rows = csv_rows(summary)
    write_atomically(
        paths["grades.csv"],
        _csv_text(list(CSV_COLUMNS), [[r.get(c, "") for c in CSV_COLUMNS] for r in rows]),
    )
    write_atomically(paths["gradebook.csv"], _csv_text(*gradebook_rows(summary)))
    return paths
