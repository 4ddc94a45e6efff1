"""The batch grader's reports: ``grades.json`` (everything) and ``grades.csv`` (one row per part).

``grades.json``::

    {"grader": {settings},
     "students": [{"student": "alice", "total": 9.0, "max_points": 10.0, "problems": [],
                   "submissions": [{"notebook": "alice/ex01.ipynb", "exercise": "ex01",
                                    "total": 9.0, "max_points": 10.0, "counted": true,
                                    "problem": null, "notes": ["code cell 4: ..."],
                                    "parts": [{"part": "step_backward", "points": 3,
                                               "max_points": 3, "reason": "correct"}, ...]}]}]}

``grades.csv`` has the columns ``student, exercise, notebook, part, points, max_points, reason``:
one row per part, a ``total`` row per notebook, and a ``student total`` row per student. A
student's total counts each exercise once, with the best notebook submitted for it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import bptt

from .batch import Settings, SubmissionResult

CSV_COLUMNS = ("student", "exercise", "notebook", "part", "points", "max_points", "reason")


def _counted(results: list[SubmissionResult]) -> set[int]:
    """Indices of the best submission of each exercise."""
    best: dict[str, int] = {}
    for i, result in enumerate(results):
        if result.exercise is None:
            continue
        if result.exercise not in best or result.total > results[best[result.exercise]].total:
            best[result.exercise] = i
    return set(best.values())


def summarise(
    results: list[SubmissionResult], problems: dict[str, str], settings: Settings
) -> dict:
    """The JSON report for ``results`` (and folder-level ``problems``) graded with ``settings``."""
    by_student: dict[str, list[SubmissionResult]] = {}
    for result in results:
        by_student.setdefault(result.student, []).append(result)
    students = []
    for student in sorted(set(by_student) | set(problems)):
        mine = by_student.get(student, [])
        counted = _counted(mine)
        submissions = [
            {
                "notebook": r.notebook,
                "exercise": r.exercise,
                "total": r.total,
                "max_points": r.max_points,
                "counted": i in counted,
                "problem": r.problem,
                "notes": r.notes,
                "parts": [p.as_dict() for p in r.parts],
            }
            for i, r in enumerate(mine)
        ]
        students.append(
            {
                "student": student,
                "total": round(sum(mine[i].total for i in counted), 2),
                "max_points": sum(mine[i].max_points for i in counted),
                "problems": [problems[student]] if student in problems else [],
                "submissions": submissions,
            }
        )
    grader = {"bptt_version": bptt.__version__, "seed": settings.seed, "jobs": settings.jobs}
    grader.update(dataclasses.asdict(settings.limits))
    grader["private_checks"] = bool(settings.private_checks)
    return {"grader": grader, "students": students}


def _row(student: str, exercise: str, notebook: str) -> dict:
    return {"student": student, "exercise": exercise, "notebook": notebook}


def csv_rows(summary: dict) -> list[dict]:
    """The rows of ``grades.csv`` for a summary from :func:`summarise`."""
    rows = []
    for student in summary["students"]:
        name = student["student"]
        for problem in student["problems"]:
            rows.append(
                {
                    **_row(name, "", ""),
                    "part": "total",
                    "points": 0,
                    "max_points": 0,
                    "reason": problem,
                }
            )
        for sub in student["submissions"]:
            base = _row(name, sub["exercise"] or "", sub["notebook"])
            for part in sub["parts"]:
                rows.append({**base, **part})
            reason = sub["problem"] or (
                "" if sub["counted"] else "not counted: a better notebook for this exercise exists"
            )
            rows.append(
                {
                    **base,
                    "part": "total",
                    "points": sub["total"],
                    "max_points": sub["max_points"],
                    "reason": reason,
                }
            )
        total = {
            "part": "student total",
            "points": student["total"],
            "max_points": student["max_points"],
        }
        rows.append({**_row(name, "", ""), **total, "reason": ""})
    return rows


def write_reports(out_dir: Path, summary: dict) -> tuple[Path, Path]:
    """Write ``grades.json`` and ``grades.csv`` into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "grades.json", out_dir / "grades.csv"
    json_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    with open(csv_path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(summary))
    return json_path, csv_path
