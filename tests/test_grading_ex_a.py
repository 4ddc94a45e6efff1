"""The checks of exercises ex01, ex02 and ex05 are not vacuous: solutions score full marks at two
seeds, stubs (and, for the find-the-bug exercise, the planted code) score zero, and typical wrong
answers lose the part they get wrong, each with its specific hint (in-process, fast)."""

from __future__ import annotations

import pytest
import torch
from grading_helpers import (
    answer,
    assert_two_wrong_answers_per_part,
    graded_functions,
    wrong_id,
)

from bptt.grading import get_exercise, run_checks
from bptt.grading.selfcheck import SELF_CHECK_SEED

DEFAULT_SEED = 1  # a batch seed other than the self-check's (the grader's --seed)
EXERCISES = ("ex01",)


def _results(exercise: str, functions: dict, seed: int = SELF_CHECK_SEED) -> dict:
    return {r.part: r for r in run_checks(exercise, functions, seed=seed)}


@pytest.mark.parametrize("seed", [SELF_CHECK_SEED, DEFAULT_SEED])
@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_scores_full_marks(namespaces, exercise, seed):
    results = _results(
        exercise, graded_functions(namespaces("solutions", exercise), exercise), seed
    )
    assert list(results) == [p.name for p in get_exercise(exercise).parts]
    assert [(r.part, r.reason) for r in results.values() if r.points != r.max_points] == []


@pytest.mark.parametrize("exercise", ("ex01",))
def test_unanswered_exercise_scores_zero(namespaces, exercise):
    results = _results(exercise, graded_functions(namespaces("exercises", exercise), exercise))
    assert len(results) == len(get_exercise(exercise).parts)
    assert all(r.points == 0 and r.reason == "not implemented yet" for r in results.values())


# ----------------------------------------------------------------------------- ex01 wrong answers
# Each factory takes the solution's namespace and returns a wrong version of one function.


def _ex01_forward(*, transpose=False, shift=False, tanh=True, start_at_zero=False, reverse=False):
    """An unrolled forward pass with one of the classic mistakes switched on."""

    def factory(ns):
        def unrolled_forward(x, h0, W_xh, W_hh_per_step, b):
            h = torch.zeros_like(h0) if start_at_zero else h0
            per_step = W_hh_per_step[::-1] if reverse else W_hh_per_step
            states = [h]
            for t in range(x.shape[1]):
                W = per_step[t] if transpose else per_step[t].T
                a = x[:, t] @ W_xh.T + h @ W + b
                h = torch.tanh(a) if tanh else a
                states.append(h)
            return torch.stack(states[:-1] if shift else states[1:], dim=1)

        return unrolled_forward

    return factory


def _ex01_contributions(change):
    def factory(ns):
        return lambda loss_fn, W_hh, T: change(ns, loss_fn, W_hh, T)

    return factory


def _ex01_one_leaf(ns, loss_fn, W_hh, T):
    leaf = W_hh.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss_fn([leaf] * T), leaf)
    return torch.stack([grad] * T)


def _ex01_reversed(ns, loss_fn, W_hh, T):
    return ns["step_contributions"](loss_fn, W_hh, T).flip(0)


def _ex01_averaged(ns, loss_fn, W_hh, T):
    return ns["step_contributions"](loss_fn, W_hh, T) / T


def _ex01_running_sum(ns, loss_fn, W_hh, T):
    return ns["step_contributions"](loss_fn, W_hh, T).cumsum(0)


WRONG = [
    ("ex01", "unrolled_forward", _ex01_forward(transpose=True), "W_hh is applied transposed"),
    ("ex01", "unrolled_forward", _ex01_forward(shift=True), "holds h_0..h_{T-1}"),
    ("ex01", "unrolled_forward", _ex01_forward(tanh=False), "the tanh is missing"),
    ("ex01", "unrolled_forward", _ex01_forward(start_at_zero=True), "h0 is ignored"),
    ("ex01", "unrolled_forward", _ex01_forward(reverse=True), "must use W_hh_per_step[t]"),
    ("ex01", "step_contributions", _ex01_contributions(_ex01_one_leaf), "whole (tied) gradient"),
    ("ex01", "step_contributions", _ex01_contributions(_ex01_reversed), "reverse time order"),
    ("ex01", "step_contributions", _ex01_contributions(_ex01_averaged), "divided by T"),
    ("ex01", "step_contributions", _ex01_contributions(_ex01_running_sum), "running sums"),
    ("ex01", "q1", answer("q1", 23), "too low by more than"),  # the depth at T = 5: no growth
    ("ex01", "q1", answer("q1", 23 * 10**2), "too high by more than"),  # quadratic growth
    ("ex01", "q2", answer("q2", 6848), "too low by more than"),  # the bytes at T = 10
    ("ex01", "q2", answer("q2", 6848 * 100**2), "too high by more than"),
]


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    exercise, part_name, factory, hint = case
    (name,) = get_exercise(exercise).part(part_name).needs
    result = _results(exercise, {name: factory(namespaces("solutions", exercise))})[part_name]
    assert result.points == 0, result
    assert hint in result.reason, result.reason


def test_every_part_has_two_wrong_answers():
    assert_two_wrong_answers_per_part(EXERCISES, WRONG)


def test_ex01_a_proportional_guess_gets_half_marks():
    """Ten times the depth at T = 5 ignores the loss's fixed nodes: the right order, not the line."""
    result = _results("ex01", {"answers": lambda: {"q1": 23 * 10, "q2": 6848 * 100}})
    assert (result["q1"].points, result["q2"].points) == (0.5, 1), result
    assert "too high" in result["q1"].reason
