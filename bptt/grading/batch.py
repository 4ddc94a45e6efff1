"""Grade a folder of submitted notebooks: discover them, run each in a sandbox, score, report.

Layout of ``SUBMISSIONS``: flat (``alice.ipynb``: student ``alice``), or one sub-folder per
student (``alice/ex01.ipynb``, ``alice/ex02.ipynb``: student ``alice``), or both. Names starting
with ``.`` or ``__`` (``.ipynb_checkpoints``, ``__MACOSX``) are skipped. A flat file that is not
a notebook, a corrupt notebook and a student folder without notebooks are reported with their
reason and zero points; they never stop the rest of the batch.

Each notebook runs in its own child process (:func:`bptt.grading.runner.run_child`); the scores
are computed here, in the grader's process, from the child's plain records
(:func:`bptt.grading.parts.score_part`). A student with several notebooks for one exercise is
credited with the best of them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections.abc import Callable
from pathlib import Path

from .errors import describe_exception
from .notebook import NotebookError, code_cells, exercise_of, read_notebook
from .parts import PartResult, score_part
from .plain import ERROR, MISSING
from .registry import get_exercise
from .runner import Limits, run_child

DEFAULT_SEED = 1
"""Seed of the batch grader's inputs (the self-check uses 0, so the grader's inputs are new)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a batch is graded."""

    limits: Limits = dataclasses.field(default_factory=Limits)
    seed: int = DEFAULT_SEED
    jobs: int = 1
    private_checks: str | None = None

    def __post_init__(self):
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"jobs: expected a positive int, got {self.jobs!r}")
        if not isinstance(self.seed, int):
            raise TypeError(f"seed: expected an int, got {type(self.seed).__name__}")


@dataclasses.dataclass(frozen=True)
class Submission:
    """One file to grade: whose it is, where it is, and its name relative to the submissions."""

    student: str
    path: Path
    name: str


@dataclasses.dataclass
class SubmissionResult:
    """The grade of one submitted file."""

    student: str
    notebook: str
    exercise: str | None = None
    parts: list[PartResult] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    problem: str | None = None
    """Why the file could not be graded at all (not a notebook, unknown exercise, ...)."""

    @property
    def total(self) -> float:
        return round(sum(p.points for p in self.parts), 2)

    @property
    def max_points(self) -> float:
        return sum(p.max_points for p in self.parts)


def discover(root: Path) -> tuple[list[Submission], dict[str, str]]:
    """The submissions under ``root`` and, per student folder without notebooks, the reason."""
    if root.is_file():
        return [Submission(root.stem, root, root.name)], {}
    submissions: list[Submission] = []
    problems: dict[str, str] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "__")):
            continue
        if entry.is_file():
            submissions.append(Submission(entry.stem, entry, entry.name))
        elif entry.is_dir():
            notebooks = sorted(
                p
                for p in entry.rglob("*.ipynb")
                if p.is_file()
                and not any(n.startswith((".", "__")) for n in p.relative_to(entry).parts)
            )
            if not notebooks:
                problems[entry.name] = "no notebook (.ipynb file) in the student's folder"
            submissions.extend(
                Submission(entry.name, p, str(p.relative_to(root))) for p in notebooks
            )
    return submissions, problems


def _with_cell_errors(record: object, cell_errors: list[str]) -> object:
    """A 'missing function' record, with the first failed cell named as the likely cause."""
    if isinstance(record, dict) and record.get("status") == MISSING and cell_errors:
        return {**record, "message": f"{record['message']} (a cell failed: {cell_errors[0]})"}
    return record


def grade_submission(submission: Submission, settings: Settings) -> SubmissionResult:
    """Grade one file; every failure becomes a reason in the result."""
    result = SubmissionResult(submission.student, submission.name)
    try:
        notebook = read_notebook(submission.path)
    except NotebookError as error:
        result.problem = str(error)
        return result
    except OSError as error:
        result.problem = f"cannot read the file ({error.strerror or error})"
        return result
    exercise_id = exercise_of(notebook, submission.path.name)
    if exercise_id is None:
        result.problem = (
            "cannot tell which exercise this is (no exercise id in its metadata or file name)"
        )
        return result
    try:
        exercise = get_exercise(exercise_id, private_checks=settings.private_checks)
    except ValueError as error:
        result.problem = str(error)
        return result
    result.exercise = exercise.id
    run = run_child(
        exercise.id,
        code_cells(notebook),
        seed=settings.seed,
        limits=settings.limits,
        private_checks=settings.private_checks,
    )
    fallback = {
        "status": ERROR,
        "message": run.failure or "the grading process returned no result for this part",
    }
    for part in exercise.parts:
        record = _with_cell_errors(run.records.get(part.name, fallback), run.cell_errors)
        result.parts.append(score_part(part, record, settings.seed, exercise.id))
    result.notes = run.cell_errors + ([run.failure] if run.failure else [])
    return result


def _safely(submission: Submission, settings: Settings) -> SubmissionResult:
    try:
        return grade_submission(submission, settings)
    except Exception as error:  # noqa: BLE001 - a grader fault must not cost other students their grades
        return SubmissionResult(
            submission.student,
            submission.name,
            problem=f"internal grader error: {describe_exception(error)}",
        )


def grade_all(
    submissions: list[Submission],
    settings: Settings,
    on_result: Callable[[SubmissionResult], None] | None = None,
) -> list[SubmissionResult]:
    """Grade ``submissions`` with ``settings.jobs`` children at a time, results in input order."""
    results: list[SubmissionResult | None] = [None] * len(submissions)
    with concurrent.futures.ThreadPoolExecutor(max_workers=settings.jobs) as pool:
        futures = {pool.submit(_safely, s, settings): i for i, s in enumerate(submissions)}
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
            if on_result is not None:
                on_result(results[futures[future]])
    return results
