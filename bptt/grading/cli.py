"""Command line of the grader: ``bptt-grade`` or ``python -m bptt.grading``.

    bptt-grade grade SUBMISSIONS --out REPORT_DIR [--jobs N] [--timeout S] ...
    bptt-grade list

``grade`` grades a folder of submitted notebooks (see :mod:`bptt.grading.batch`) into
``REPORT_DIR/grades.csv`` and ``REPORT_DIR/grades.json`` and prints one line per notebook.
It exits 0 when the reports were written, whatever the students scored, and 2 on a usage error
(a missing folder, a broken private checks file). ``list`` prints the exercises and their parts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .batch import DEFAULT_SEED, Settings, SubmissionResult, discover, grade_all
from .errors import describe_exception
from .registry import PRIVATE_CHECKS_ENV, exercise_ids, get_exercise, load_private_parts
from .report import summarise, write_reports
from .runner import Limits
from .selfcheck import format_points


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bptt-grade", description="Grade BPTT course exercise notebooks."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade a folder of submitted notebooks")
    grade.add_argument(
        "submissions", type=Path, help="folder of notebooks (flat or one folder per student)"
    )
    grade.add_argument(
        "--out", type=Path, required=True, help="folder for grades.csv and grades.json"
    )
    grade.add_argument(
        "--jobs", type=int, default=1, help="notebooks graded at the same time (default 1)"
    )
    grade.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the inputs (default {DEFAULT_SEED})",
    )
    defaults = Limits()
    grade.add_argument(
        "--timeout", type=float, default=defaults.timeout_s, help="seconds per notebook"
    )
    grade.add_argument(
        "--cell-timeout", type=float, default=defaults.cell_time_limit_s, help="seconds per cell"
    )
    grade.add_argument(
        "--part-timeout",
        type=float,
        default=None,
        help="seconds per part (default: the part's own)",
    )
    grade.add_argument(
        "--memory-mb", type=int, default=defaults.memory_mb, help="memory limit per notebook"
    )
    grade.add_argument(
        "--private-checks",
        default=os.environ.get(PRIVATE_CHECKS_ENV) or None,
        help=f"file of extra parts (default: ${PRIVATE_CHECKS_ENV})",
    )
    grade.add_argument("--quiet", action="store_true", help="print only the summary line")
    commands.add_parser("list", help="list the exercises and their parts")
    return parser


def _line(result: SubmissionResult) -> str:
    if result.problem:
        return f"{result.notebook}: not graded - {result.problem}"
    return f"{result.notebook} ({result.exercise}): {format_points(result.total)}/{format_points(result.max_points)}"


def _grade(args: argparse.Namespace) -> int:
    if not args.submissions.exists():
        print(f"bptt-grade: no such file or folder: {args.submissions}", file=sys.stderr)
        return 2
    try:
        limits = Limits(args.timeout, args.cell_timeout, args.part_timeout, args.memory_mb)
        settings = Settings(
            limits=limits, seed=args.seed, jobs=args.jobs, private_checks=args.private_checks
        )
        if settings.private_checks:
            load_private_parts(settings.private_checks)  # fail now, not once per notebook
    except (ValueError, TypeError) as error:
        print(f"bptt-grade: {error}", file=sys.stderr)
        return 2
    submissions, problems = discover(args.submissions)
    if not submissions and not problems:
        print(f"no submissions found in {args.submissions}")
    on_result = None if args.quiet else (lambda result: print(_line(result), flush=True))
    results = grade_all(submissions, settings, on_result)
    json_path, csv_path = write_reports(args.out, summarise(results, problems, settings))
    graded = sum(r.problem is None for r in results)
    print(f"graded {graded} of {len(results)} notebooks; wrote {csv_path} and {json_path}")
    return 0


def _list() -> int:
    for exercise_id in exercise_ids():
        try:
            exercise = get_exercise(exercise_id, private_checks=None)
        except Exception as error:  # noqa: BLE001 - one broken module must not hide the others
            print(f"{exercise_id}: cannot be loaded ({describe_exception(error)})")
            continue
        parts = ", ".join(f"{p.name} ({format_points(p.points)})" for p in exercise.parts)
        print(
            f"{exercise.id} {exercise.title} [{format_points(exercise.max_points)} points]: {parts}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``bptt-grade``; returns the exit status."""
    args = _parser().parse_args(argv)
    return _grade(args) if args.command == "grade" else _list()
