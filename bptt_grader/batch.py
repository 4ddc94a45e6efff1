"""Grade a folder of submitted notebooks: discover them, run each in a sandbox, score here.

Layout of ``SUBMISSIONS``: flat (``alice.ipynb``: student ``alice``), or one folder per student
(``alice/ex04.ipynb``), or both. Every entry that is not graded is listed in the reports with its
reason (:class:`Skipped`): symbolic links (never followed: one could point at ``solutions/``),
hidden names (``.x``, ``__MACOSX``), unreadable files and folders, files that are not notebooks.

When a student has several notebooks for one exercise, the one that counts is the one named in
the student's ``manifest.json`` (``{"ex04": "ex04_final.ipynb"}``) or else the newest (latest
modification time, then name); the others are graded and reported as not counted. Never the best:
that would reward handing in one notebook per guess.

The scores are computed here, from the sandbox's plain records (:func:`score_part`), on inputs
made here from a seed the submission never sees (a fresh random one unless ``--seed`` is given).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import inspect
import json
import os
import queue
import stat
from collections.abc import Callable
from pathlib import Path

from bptt.grading.errors import describe_exception
from bptt.grading.notebook import NotebookError, code_cells, exercise_of, read_notebook
from bptt.grading.parts import Exercise, PartResult, score_part
from bptt.grading.plain import ERROR, MISSING
from bptt.grading.registry import get_exercise

from . import stage as staging
from .sandbox import Limits, Support, run_in_sandbox

MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a batch is graded."""

    limits: Limits = dataclasses.field(default_factory=Limits)
    seed: int = 1
    jobs: int = 1
    private_checks: str | None = None

    def __post_init__(self):
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"jobs: expected a positive int, got {self.jobs!r}")
        if not isinstance(self.seed, int):
            raise TypeError(f"seed: expected an int, got {type(self.seed).__name__}")


@dataclasses.dataclass(frozen=True)
class Submission:
    student: str
    path: Path
    name: str
    mtime: float = 0.0


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An entry of the submissions folder that was not graded, and why."""

    student: str
    name: str
    reason: str


@dataclasses.dataclass
class SubmissionResult:
    student: str
    notebook: str
    exercise: str | None = None
    parts: list[PartResult] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    problem: str | None = None
    mtime: float = 0.0
    counted: bool = False
    why_not_counted: str = ""

    @property
    def total(self) -> float:
        return round(sum(p.points for p in self.parts), 2)

    @property
    def max_points(self) -> float:
        return sum(p.max_points for p in self.parts)


def _hidden(name: str) -> bool:
    return name.startswith((".", "__"))


def discover(root: Path) -> tuple[list[Submission], list[Skipped]]:
    """The notebooks under ``root`` and every entry skipped, with its reason."""
    submissions: list[Submission] = []
    skipped: list[Skipped] = []

    def walk(folder: Path, student: str | None) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            skipped.append(
                Skipped(
                    student or "",
                    str(folder.relative_to(root)),
                    f"cannot read the folder ({error.strerror})",
                )
            )
            return
        for entry in entries:
            name = str(Path(entry.path).relative_to(root))
            owner = student or (
                Path(entry.name).stem if not entry.is_dir(follow_symlinks=False) else entry.name
            )
            if entry.is_symlink():
                skipped.append(Skipped(owner, name, "a symbolic link (links are never followed)"))
            elif _hidden(entry.name):
                skipped.append(Skipped(owner, name, "a hidden name (starts with '.' or '__')"))
            elif entry.is_dir(follow_symlinks=False):
                if student is None:
                    before = len(submissions)
                    walk(Path(entry.path), entry.name)
                    if len(submissions) == before:
                        skipped.append(
                            Skipped(
                                entry.name,
                                name,
                                "no notebook (.ipynb file) in the student's folder",
                            )
                        )
                else:
                    walk(Path(entry.path), student)
            elif not entry.is_file(follow_symlinks=False):
                skipped.append(
                    Skipped(owner, name, "not a regular file (a FIFO, socket or device)")
                )
            elif student is not None and entry.name == MANIFEST:
                continue
            elif not entry.name.endswith(".ipynb"):
                skipped.append(Skipped(owner, name, "not a notebook (expected a .ipynb file)"))
            elif not os.access(entry.path, os.R_OK):
                skipped.append(Skipped(owner, name, "the file cannot be read (permissions)"))
            else:
                mtime = entry.stat(follow_symlinks=False).st_mtime
                submissions.append(Submission(owner, Path(entry.path), name, mtime))

    if root.is_file() and not root.is_symlink():
        st = root.stat()
        return [Submission(root.stem, root, root.name, st.st_mtime)], []
    walk(root, None)
    return submissions, skipped


def _manifest(root: Path, student: str) -> dict:
    path = root / student / MANIFEST
    try:
        if path.is_symlink() or not stat.S_ISREG(path.lstat().st_mode):
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(data, dict)
        else {}
    )


def choose_counted(results: list[SubmissionResult], root: Path | None = None) -> None:
    """Mark, per student and exercise, the notebook that counts (manifest, else newest)."""
    groups: dict[tuple[str, str], list[SubmissionResult]] = {}
    for result in results:
        if result.exercise is not None:
            groups.setdefault((result.student, result.exercise), []).append(result)
    for (student, exercise), mine in groups.items():
        named = (
            _manifest(root, student).get(exercise) if root is not None and root.is_dir() else None
        )
        chosen = next((r for r in mine if named and Path(r.notebook).name == named), None)
        reason = "not counted: the manifest names another notebook for this exercise"
        if chosen is None:
            chosen = max(mine, key=lambda r: (r.mtime, r.notebook))
            reason = "not counted: a newer notebook for this exercise was handed in"
        for result in mine:
            result.counted = result is chosen
            result.why_not_counted = "" if result.counted else reason


def _with_cell_errors(record: object, cell_errors: list[str]) -> object:
    if isinstance(record, dict) and record.get("status") == MISSING and cell_errors:
        return {**record, "message": f"{record['message']} (a cell failed: {cell_errors[0]})"}
    return record


class Grader:
    """Grades submissions with one stage and a pool of sandbox slots."""

    def __init__(
        self, settings: Settings, support: Support, stage_dir: Path, slots: list[int] | None = None
    ):
        self.settings, self.support = settings, support
        self.exercises: dict[str, Exercise] = {}
        from bptt.grading.registry import exercise_ids

        for exercise_id in exercise_ids():
            self.exercises[exercise_id] = get_exercise(
                exercise_id, private_checks=settings.private_checks
            )
        self.private_source = (
            staging.pruned_private_checks(settings.private_checks, list(self.exercises.values()))
            if settings.private_checks
            else None
        )
        (stage_dir / "view").mkdir()
        self.stage = staging.build_stage(stage_dir / "view", self.exercises)
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in range(settings.jobs) if slots is None else slots:
            self.slots.put(slot)

    def _parts_payload(self, exercise: Exercise, again: bool = False) -> list[dict]:
        """What the child needs to COLLECT the parts (``again``: those with substitutes, each
        reference as its module, name and source)."""
        payload = []
        limit = self.settings.limits.part_time_limit_s
        for part in exercise.parts:
            if again and not part.substitutes:
                continue
            module, function = staging.collector_of(part)
            payload.append(
                {
                    "name": part.name,
                    "needs": part.needs,
                    "collector": (module, function),
                    "source": self.private_source
                    if module == staging.registry.PRIVATE_MODULE
                    else None,
                    "forbidden": list(part.forbidden),
                    "time_limit": limit or part.time_limit,
                    "inputs": part.make_inputs(self.settings.seed),
                    "replace": [
                        (name, f.__module__, f.__name__, inspect.getsource(f))
                        for name, f in (part.substitutes if again else ())
                    ],
                }
            )
        return payload

    def grade(self, submission: Submission) -> SubmissionResult:
        result = SubmissionResult(submission.student, submission.name, mtime=submission.mtime)
        try:
            notebook = read_notebook(submission.path)
        except NotebookError as error:
            result.problem = str(error)
            return result
        except OSError as error:
            result.problem = f"cannot read the file ({error.strerror or error})"
            return result
        exercise_id = exercise_of(notebook, submission.path.name)
        if exercise_id not in self.exercises:
            result.problem = (
                "cannot tell which exercise this is (no exercise id in its metadata or file name)"
                if exercise_id is None
                else f"unknown exercise {exercise_id!r}"
            )
            return result
        exercise = self.exercises[exercise_id]
        result.exercise = exercise.id
        cells = [
            {"number": c.number, "source": c.source, "label": c.label}
            for c in code_cells(notebook, skip_tags=frozenset())
        ]
        slot = self.slots.get()
        try:
            run = run_in_sandbox(
                self.support,
                self.stage,
                cells,
                self._parts_payload(exercise),
                self.settings.limits,
                slot,
                self._parts_payload(exercise, again=True),
            )
        finally:
            self.slots.put(slot)
        fallback = {
            "status": ERROR,
            "message": run.failure or "the sandbox returned no result for this part",
        }
        for part in exercise.parts:
            record = _with_cell_errors(run.records.get(part.name, fallback), run.cell_errors)
            again = run.substituted.get(part.name)
            result.parts.append(score_part(part, record, self.settings.seed, exercise.id, again))
        result.notes = run.cell_errors + ([run.failure] if run.failure else [])
        return result

    def safely(self, submission: Submission) -> SubmissionResult:
        try:
            return self.grade(submission)
        except Exception as error:  # noqa: BLE001 - a grader fault must not cost other students
            return SubmissionResult(
                submission.student,
                submission.name,
                problem=f"internal grader error: {describe_exception(error)}",
                mtime=submission.mtime,
            )

    def grade_all(
        self,
        submissions: list[Submission],
        on_result: Callable[[SubmissionResult], None] | None = None,
    ) -> list[SubmissionResult]:
        results: list[SubmissionResult | None] = [None] * len(submissions)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.settings.jobs) as pool:
            futures = {pool.submit(self.safely, s): i for i, s in enumerate(submissions)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                if on_result is not None:
                    on_result(results[futures[future]])
        return results
