"""The checks of ex06, ex09's LSTM parts and ex12 are not vacuous: the solutions score full marks
at two seeds, the stubs score zero, the package's own implementations agree with the checks, and
typical wrong answers lose the part they get wrong, each with its specific hint."""

from __future__ import annotations

import numpy as np
import pytest
from grading_helpers import answer, graded_functions, wrong_id

from bptt import jacobians
from bptt.grading import get_exercise, run_checks
from bptt.grading.selfcheck import SELF_CHECK_SEED

DEFAULT_SEED = 1  # a batch seed other than the self-check's (the grader's --seed)
EXERCISES = ("ex06",)


def _results(exercise: str, functions: dict, seed: int = SELF_CHECK_SEED) -> dict:
    return {r.part: r for r in run_checks(exercise, functions, seed=seed)}


@pytest.mark.parametrize("seed", [SELF_CHECK_SEED, DEFAULT_SEED])
@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_scores_full_marks(namespaces, exercise, seed):
    results = _results(
        exercise, graded_functions(namespaces("solutions", exercise), exercise), seed
    )
    assert list(results) == [p.name for p in get_exercise(exercise).parts]
    assert {p: r.reason for p, r in results.items() if r.points != r.max_points} == {}


@pytest.mark.parametrize("exercise", EXERCISES)
def test_unanswered_exercise_scores_zero(namespaces, exercise):
    results = _results(exercise, graded_functions(namespaces("exercises", exercise), exercise))
    assert len(results) == len(get_exercise(exercise).parts)
    assert all(r.points == 0 and r.reason == "not implemented yet" for r in results.values())


# ----------------------------------------------------------------------------- the package agrees


def _package_ratios(J, g_T):
    norms = jacobians.gradient_norms_by_distance(J, g_T)
    return norms / norms[:, :1]


PACKAGE = [
    (
        "ex06",
        lambda: {
            "step_jacobians": lambda h, W_hh: jacobians.step_jacobians(h, W_hh),
            "gradient_ratios": _package_ratios,
        },
    ),
]


@pytest.mark.parametrize("seed", [SELF_CHECK_SEED, DEFAULT_SEED, 7])
@pytest.mark.parametrize(
    "exercise, functions", PACKAGE, ids=[f"{e}-{i}" for i, (e, _) in enumerate(PACKAGE)]
)
def test_independent_implementations_score_full_marks(exercise, functions, seed):
    results = _results(exercise, functions(), seed)
    assert results and all(r.points == r.max_points for r in results.values()), results


# ----------------------------------------------------------------------------- wrong answers
# Each factory takes the solution's namespace and returns a wrong version of one function.


def _ex06_jacobians(wrong):
    return lambda ns: lambda h, W_hh: wrong(h, W_hh)


def _ex06_derivative_at_previous(h, W_hh):
    """diag(1 - h_{t-1}^2) W_hh, with h_0 = 0 (what a loop that pairs the wrong states computes)."""
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
    return (1 - h_prev**2)[..., :, None] * W_hh


def _ex06_ratios(change):
    def factory(ns):
        return lambda J, g_T: change(ns, J, g_T)

    return factory


def _ex06_recursion(ns, J, g_T, *, columns=False, first_first=False):
    grad, norms = g_T, [np.linalg.norm(g_T, axis=1)]
    order = range(J.shape[1]) if first_first else range(J.shape[1] - 1, -1, -1)
    for t in order:
        rule = "bij,bj->bi" if columns else "bi,bij->bj"
        grad = np.einsum(rule, J[:, t], grad) if columns else np.einsum(rule, grad, J[:, t])
        norms.append(np.linalg.norm(grad, axis=1))
    norms = np.stack(norms, axis=1)
    return norms / norms[:, :1]


def _ex06_unnormalised(ns, J, g_T):
    return ns["gradient_ratios"](J, g_T) * np.linalg.norm(g_T, axis=1, keepdims=True)


WRONG = [
    # ex06
    (
        "ex06",
        "step_jacobians",
        _ex06_jacobians(lambda h, W: (1 - h**2)[..., None, :] * W),
        "scales the columns",
    ),
    ("ex06", "step_jacobians", _ex06_jacobians(_ex06_derivative_at_previous), "taken at h_{t-1}"),
    (
        "ex06",
        "step_jacobians",
        _ex06_jacobians(lambda h, W: (1 - np.tanh(h) ** 2)[..., :, None] * W),
        "do not apply tanh to h_t again",
    ),
    (
        "ex06",
        "step_jacobians",
        _ex06_jacobians(lambda h, W: np.broadcast_to(W, h.shape + W.shape[-1:]).copy()),
        "tanh derivative is missing",
    ),
    (
        "ex06",
        "step_jacobians",
        _ex06_jacobians(lambda h, W: np.swapaxes((1 - h**2)[..., :, None] * W, -1, -2)),
        "J: transposed",
    ),
    (
        "ex06",
        "gradient_ratios",
        _ex06_ratios(lambda ns, J, g: ns["gradient_ratios"](J, g)[:, ::-1]),
        "ordered by time",
    ),
    ("ex06", "gradient_ratios", _ex06_ratios(_ex06_unnormalised), "not divided by ||dL/dh_T||"),
    (
        "ex06",
        "gradient_ratios",
        _ex06_ratios(lambda ns, J, g: ns["gradient_ratios"](J, g) ** 2),
        "squared norms",
    ),
    (
        "ex06",
        "gradient_ratios",
        _ex06_ratios(lambda ns, J, g: _ex06_recursion(ns, J, g, columns=True)),
        "the gradient is a row vector",
    ),
    (
        "ex06",
        "gradient_ratios",
        _ex06_ratios(lambda ns, J, g: _ex06_recursion(ns, J, g, first_first=True)),
        "goes through J_T",
    ),
    ("ex06", "q1", answer("q1", 0.9), "q1: too high by more than 2.25 times"),
    ("ex06", "q1", answer("q1", 0.9**60), "q1: too low"),
    ("ex06", "q2", answer("q2", 1.5**30), "q2: too high by more than 1e+06 times"),  # linear law
    ("ex06", "q2", answer("q2", 1e-15), "q2: too low"),
    ("ex06", "q2", answer("q2", -1e-5), "predict a positive number"),
]


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    exercise, part_name, factory, hint = case
    (name,) = get_exercise(exercise).part(part_name).needs
    result = _results(exercise, {name: factory(namespaces("solutions", exercise))})[part_name]
    assert result.points == 0, result
    assert hint in result.reason, result.reason


def test_every_part_has_two_wrong_answers():
    for exercise in EXERCISES:
        for part in get_exercise(exercise).parts:
            count = sum(1 for e, p, _, _ in WRONG if (e, p) == (exercise, part.name))
            assert count >= 2, f"{exercise} {part.name}: {count} wrong answers tested"


def test_a_prediction_of_the_right_order_earns_half():
    q1 = _results("ex06", {"answers": lambda: {"q1": 2 * 0.9**30}})["q1"]
    assert (q1.points, q1.reason) == (0.5, "q1: within 2.25 times, but too high")
    q2 = _results("ex06", {"answers": lambda: {"q2": 1.0}})["q2"]  # "saturation changes nothing"
    assert q2.points == 0.5 and "too high" in q2.reason
