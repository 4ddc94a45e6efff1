"""What every exercise shares: its solution scores full marks, and its notebook as handed out
scores nothing (stubs say "not implemented yet"; a find-the-bug exercise's planted code loses the
parts its bugs are in, with hints its own tests check). The typical wrong answers of each
exercise are tested in its own file (tests/test_grading_exNN_MM.py)."""

from __future__ import annotations

import pytest
from grading_helpers import DEFAULT_SEED, graded_functions

from bptt.grading import exercise_ids, get_exercise, run_checks
from bptt.grading.selfcheck import SELF_CHECK_SEED

EXERCISES = exercise_ids()
CHALLENGE = "train"
"""The function of a training challenge (ex09, ex18): trained once, in its exercise's own tests
and in the batch test, not for every seed here."""


def _functions(namespace: dict, exercise: str) -> dict:
    functions = graded_functions(namespace, exercise)
    functions.pop(CHALLENGE, None)
    return functions


def _graded_parts(exercise: str) -> list[str]:
    return [p.name for p in get_exercise(exercise).parts if CHALLENGE not in p.needs]


@pytest.mark.parametrize("seed", [SELF_CHECK_SEED, DEFAULT_SEED])
@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_scores_full_marks(namespaces, exercise, seed):
    results = run_checks(exercise, _functions(namespaces("solutions", exercise), exercise), seed=seed)
    assert [r.part for r in results] == _graded_parts(exercise)
    assert [(r.part, r.reason) for r in results if r.points != r.max_points] == []


@pytest.mark.parametrize("exercise", EXERCISES)
def test_the_exercise_as_handed_out_scores_zero(namespaces, exercise):
    results = run_checks(exercise, _functions(namespaces("exercises", exercise), exercise))
    assert [r.part for r in results] == _graded_parts(exercise)
    assert [(r.part, r.reason) for r in results if r.points != 0] == []
    if "find-the-bug" not in get_exercise(exercise).kinds:
        assert {r.reason for r in results} == {"not implemented yet"}
