"""Command line of the batch grader: ``bptt-grade`` or ``python -m bptt_grader``.

    bptt-grade grade SUBMISSIONS --out REPORT_DIR [--jobs N] [--seed S] [--timeout S]
                     [--cell-timeout S] [--part-timeout S] [--memory-mb MB] [--pids N]
                     [--private-checks FILE] [--no-sandbox] [--quiet]
    bptt-grade list

``grade`` writes ``grades.json``, ``grades.csv`` and ``gradebook.csv`` into REPORT_DIR and prints
one line per notebook. Exit status: 0 when the reports were written, whatever the students did;
2 for a usage error (no such folder, broken private checks, REPORT_DIR inside SUBMISSIONS);
3 when bubblewrap is missing or cannot run (the message says how to install it; ``--no-sandbox``
grades without it and marks every report row); 1 when the grader itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
from pathlib import Path

from bptt.grading.errors import describe_exception
from bptt.grading.registry import PRIVATE_CHECKS_ENV, exercise_ids, get_exercise, load_private_parts
from bptt.grading.selfcheck import format_points

from .batch import Grader, Settings, SubmissionResult, choose_counted, discover
from .report import summarise, write_reports
from .sandbox import Limits, SandboxUnavailable, claimed_slots, probe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bptt-grade", description="Grade BPTT course exercise notebooks."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade a folder of submitted notebooks")
    grade.add_argument(
        "submissions", type=Path, help="folder of notebooks (flat or one folder per student)"
    )
    grade.add_argument("--out", type=Path, required=True, help="folder for the reports")
    grade.add_argument(
        "--jobs", type=int, default=1, help="notebooks graded at the same time (default 1)"
    )
    grade.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the inputs (default: a fresh random one, recorded in grades.json)",
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
        "--memory-mb",
        type=int,
        default=defaults.memory_mb,
        help="memory of a notebook, all its processes",
    )
    grade.add_argument(
        "--pids", type=int, default=defaults.pids, help="processes and threads of a notebook"
    )
    grade.add_argument(
        "--private-checks",
        default=os.environ.get(PRIVATE_CHECKS_ENV) or None,
        help=f"file of extra parts (default: ${PRIVATE_CHECKS_ENV})",
    )
    grade.add_argument(
        "--no-sandbox",
        action="store_true",
        help="grade without bubblewrap (trusted notebooks only; rows are marked)",
    )
    grade.add_argument("--quiet", action="store_true", help="print only the summary line")
    commands.add_parser("list", help="list the exercises and their parts")
    return parser  # fmt: skip


def _line(result: SubmissionResult) -> str:
    if result.problem:
        return f"{result.notebook}: not graded - {result.problem}"
    return f"{result.notebook} ({result.exercise}): {format_points(result.total)}/{format_points(result.max_points)}"


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _grade(args: argparse.Namespace) -> int:
    if not args.submissions.exists():
        print(f"bptt-grade: no such file or folder: {args.submissions}", file=sys.stderr)
        return 2
    if args.submissions.is_dir() and _inside(args.out, args.submissions):
        print("bptt-grade: --out must not be inside the submissions folder", file=sys.stderr)
        return 2
    try:
        limits = Limits(
            args.timeout, args.cell_timeout, args.part_timeout, args.memory_mb, pids=args.pids
        )
        seed = secrets.randbits(31) if args.seed is None else args.seed
        settings = Settings(
            limits=limits, seed=seed, jobs=args.jobs, private_checks=args.private_checks
        )
        if settings.private_checks:
            load_private_parts(settings.private_checks)
    except (ValueError, TypeError) as error:
        print(f"bptt-grade: {error}", file=sys.stderr)
        return 2
    try:
        support = probe(args.no_sandbox)
    except SandboxUnavailable as error:
        print(f"bptt-grade: {error}", file=sys.stderr)
        return 3
    sandbox = "NOT SANDBOXED" if support.bwrap is None else "bubblewrap"
    if support.notes:
        sandbox += " (" + "; ".join(support.notes) + ")"
        print(f"bptt-grade: {sandbox}", file=sys.stderr)
    if not args.quiet:
        print(f"bptt-grade: limits for all of a submission's processes: {support.limited_by}")
    submissions, skipped = discover(args.submissions)
    if not submissions and not skipped:
        print(f"no submissions found in {args.submissions}")
    # a user id of its own per slot (as root) needs a slot no other grader here uses now
    every = contextlib.nullcontext(list(range(settings.jobs)))
    claim = claimed_slots(settings.jobs) if support.unprivileged else every
    with tempfile.TemporaryDirectory(prefix="bptt-grade-stage-") as stage, claim as slots:
        grader = Grader(settings, support, Path(stage), slots)
        on_result = None if args.quiet else (lambda r: print(_line(r), flush=True))
        results = grader.grade_all(submissions, on_result)
        course_max = {e: x.max_points for e, x in grader.exercises.items()}
    choose_counted(results, args.submissions)
    paths = write_reports(args.out, summarise(results, skipped, settings, course_max, sandbox))
    graded = sum(r.problem is None for r in results)
    print(
        f"graded {graded} of {len(results)} notebooks ({len(skipped)} entries skipped); wrote "
        + ", ".join(str(p) for p in paths.values())
    )
    return 0


def _list() -> int:
    for exercise_id in exercise_ids():
        try:
            exercise = get_exercise(exercise_id, private_checks=None)
        except Exception as error:  # noqa: BLE001
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
    try:
        return _grade(args) if args.command == "grade" else _list()
    except Exception as error:  # noqa: BLE001 - the grader's own failure: say so, exit 1
        print(f"bptt-grade: internal error: {describe_exception(error)}", file=sys.stderr)
        return 1
