"""What the tests of the graded exercises share: the notebooks' namespaces and their functions."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from bptt.grading import get_exercise, run_checks
from bptt.grading.notebook import notebook_namespace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEED = 1
"""A batch seed other than the self-check's (the grader's ``--seed``)."""


def exercise_notebook(folder: str, exercise: str) -> Path:
    """``folder``/exNN_*.ipynb (folder: "solutions" or "exercises")."""
    (path,) = (ROOT / folder).glob(f"{exercise}_*.ipynb")
    return path


@pytest.fixture(scope="module")
def namespaces():
    """Each solution's and each exercise's namespace, loaded once per module (prints silenced)."""
    loaded = {}

    def load(folder: str, exercise: str) -> dict:
        if (folder, exercise) not in loaded:
            with contextlib.redirect_stdout(io.StringIO()):
                namespace, errors = notebook_namespace(exercise_notebook(folder, exercise))
            assert errors == [], errors
            loaded[folder, exercise] = namespace
        return loaded[folder, exercise]

    return load


def graded_functions(namespace: dict, exercise: str) -> dict:
    """The learner functions the exercise grades, taken from a notebook's namespace."""
    return {name: namespace[name] for name in get_exercise(exercise, private_checks=None).names}


def answer(key, value):
    """A wrong-answer maker: ``answers()`` returning ``{key: value}``."""
    return lambda ns: lambda: {key: value}


def wrong_id(case) -> str:
    """The pytest id of a wrong-answer case (exercise, part, factory, expected hint)."""
    exercise, part, _, hint = case
    return f"{exercise}-{part}-{hint[:24]}"


def assert_two_wrong_answers_per_part(exercises, cases, skip=()) -> None:
    """Every graded part of ``exercises`` has at least two wrong-answer cases in ``cases``,
    except the ``(exercise, part)`` pairs in ``skip`` (tested in another file)."""
    for exercise in exercises:
        for part in get_exercise(exercise).parts:
            if (exercise, part.name) in skip:
                continue
            count = sum(1 for e, p, _, _ in cases if (e, p) == (exercise, part.name))
            assert count >= 2, f"{exercise} {part.name}: {count} wrong answers tested"


def wrong_answer_result(namespaces, case, *, with_solution: bool = True):
    """The result of the part a wrong-answer case targets, scored with only the case's function.

    ``case`` is ``(exercise, part, factory, hint)``; ``factory`` gets the solution notebook's
    namespace (None when ``with_solution`` is false: a factory that needs no solution, for an
    exercise whose solution trains a model on loading) and returns the wrong function.
    """
    exercise, part_name, factory, _ = case
    (name,) = get_exercise(exercise).part(part_name).needs
    solution = namespaces("solutions", exercise) if with_solution else None
    (result,) = [r for r in run_checks(exercise, {name: factory(solution)}) if r.part == part_name]
    return result

