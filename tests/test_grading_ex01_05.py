"""The checks of exercises ex01, ex02 and ex05 are not vacuous: solutions score full marks at two
seeds, stubs (and, for the find-the-bug exercise, the planted code) score zero, and typical wrong
answers lose the part they get wrong, each with its specific hint (in-process, fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grading_helpers import (
    DEFAULT_SEED,
    answer,
    assert_two_wrong_answers_per_part,
    graded_functions,
    wrong_answer_result,
    wrong_id,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bptt import jacobians, rnn
from bptt.grading import get_exercise, run_checks
from bptt.grading.selfcheck import SELF_CHECK_SEED

EXERCISES = ("ex01", "ex02", "ex05")


def _results(exercise: str, functions: dict, seed: int = SELF_CHECK_SEED) -> dict:
    return {r.part: r for r in run_checks(exercise, functions, seed=seed)}


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_solutions_score_full_marks_on_any_inputs(namespaces, seed):
    """The inputs (values and sizes) change with the seed; the solutions pass for all."""
    for exercise in EXERCISES:
        functions = graded_functions(namespaces("solutions", exercise), exercise)
        if exercise == "ex01":
            functions.pop("answers")  # the predictions are of fixed experiments
        results = _results(exercise, functions, seed)
        assert [(r.part, r.reason) for r in results.values() if r.points != r.max_points] == []


# ----------------------------------------------------------------------------- the package agrees


def _package_adjoints(h, W_hh, g):
    """ex02's bar h_k from bptt.jacobians: one product back from every loss t (eq.
    ``gradient-every-step-loss`` as a sum, not the recursion)."""
    J = jacobians.step_jacobians(h, W_hh)
    T = h.shape[1]
    return sum(
        np.pad(jacobians.gradients_from_last(J[:, :t], g[:, t - 1]), ((0, 0), (0, T - t), (0, 0)))
        for t in range(1, T + 1)
    )[:, 1:]


def _package_weight_gradient(h0, h, W_hh, dh_bar):
    """ex02's dL/dW_hh from bptt.rnn.step_backward, one step at a time."""
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    total = 0.0
    for k in range(h.shape[1]):
        no_input, no_W_xh = np.zeros((len(h), 1)), np.zeros((h.shape[2], 1))  # only W_hh is read
        cache = rnn.StepCache(no_input, h_prev[:, k], h[:, k], no_W_xh, W_hh, "tanh")
        total = total + rnn.step_backward(dh_bar[:, k], cache)["W_hh"]
    return total


def _torch_cross_entropy(logits, targets):
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    )


PACKAGE = [
    (
        "ex02",
        "span_jacobian",
        lambda h, W, k, t: jacobians.span_product(jacobians.step_jacobians(h, W), k, t),
    ),
    ("ex02", "hidden_adjoints", _package_adjoints),
    ("ex02", "weight_gradient", _package_weight_gradient),
    ("ex05", "sequence_loss", _torch_cross_entropy),
]


@pytest.mark.parametrize(
    "exercise, name, function", PACKAGE, ids=[f"{e}-{n}" for e, n, _ in PACKAGE]
)
def test_independent_implementations_score_full_marks(exercise, name, function):
    """The package's own implementations (and torch's) pass the checks written without them."""
    for seed in (SELF_CHECK_SEED, DEFAULT_SEED):
        result = _results(exercise, {name: function}, seed)[name]
        assert result.points == result.max_points, result


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


# ----------------------------------------------------------------------------- ex02 wrong answers


def _ex02_span(factor, *, earlier_left=False):
    """span_jacobian as a product of factor(h_i, h_{i-1}, W_hh) over i = k+1..t."""

    def factory(ns):
        def span_jacobian(h, W_hh, k, t):
            B, _, H = h.shape
            states = np.concatenate([np.zeros((B, 1, H)), h], axis=1)  # states[:, i] = h_i, i >= 1
            product = np.broadcast_to(np.eye(H), (B, H, H)).copy()
            for i in range(k + 1, t + 1):
                J = factor(states[:, i], states[:, i - 1], W_hh)
                product = product @ J if earlier_left else J @ product
            return product

        return span_jacobian

    return factory


def _slope_now(h_i, h_prev, W):
    return (1 - h_i**2)[:, :, None] * W


def _ex02_span_with_h0(change):
    """The solution's span_jacobian with its result changed; ``k`` and ``t`` passed along."""

    def factory(ns):
        return lambda h, W_hh, k, t: change(ns["span_jacobian"](h, W_hh, k, t), k, t)

    return factory


def _ex02_adjoints(carry=None, *, only_direct=False, end_only=False):
    """bar h_k = g_k + carry(bar h_{k+1}, h_{k+1}, h_k, W_hh), backwards from bar h_T = g_T."""

    def factory(ns):
        def hidden_adjoints(h, W_hh, g):
            if only_direct:
                return g.copy()
            direct = np.zeros_like(g) if end_only else g
            bar = np.empty_like(g)
            bar[:, -1] = g[:, -1]
            for k in range(h.shape[1] - 1, 0, -1):
                bar[:, k - 1] = direct[:, k - 1] + carry(bar[:, k], h[:, k], h[:, k - 1], W_hh)
            return bar

        return hidden_adjoints

    return factory


def _back_right(nxt, h_next, h_k, W):
    return (nxt * (1 - h_next**2)) @ W


def _ex02_weights(change):
    """weight_gradient from delta and the paired states, with one mistake in change()."""

    def factory(ns):
        def weight_gradient(h0, h, W_hh, dh_bar):
            h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
            return change(h, h_prev, dh_bar)

        return weight_gradient

    return factory


def _terms(delta, states):
    return np.einsum("bki,bkj->kij", delta, states)


# ----------------------------------------------------------------------------- ex05 wrong answers


def _ex05_loss(reduce):
    """A hand-written cross-entropy with the per-prediction losses (B, T) reduced by reduce()."""

    def factory(ns):
        def sequence_loss(logits, targets):
            picked = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
            return reduce(-picked)

        return sequence_loss

    return factory


def _ex05_train(*, zero_grad_after_backward=False, drop_last=False):
    def factory(ns):
        def train_steps(model, optimizer, batches, loss_fn):
            losses = []
            for x, y in batches[:-1] if drop_last else batches:
                logits, _ = model(x)
                loss = loss_fn(logits, y)
                if not zero_grad_after_backward:
                    optimizer.zero_grad()
                loss.backward()
                if zero_grad_after_backward:
                    optimizer.zero_grad()
                optimizer.step()
                losses.append(loss.item())
            return losses

        return train_steps

    return factory


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
    # ex02
    ("ex02", "span_jacobian", _ex02_span(_slope_now, earlier_left=True), "in the wrong order"),
    (
        "ex02",
        "span_jacobian",
        _ex02_span(lambda h_i, h_prev, W: (1 - h_prev**2)[:, :, None] * W),
        "at the wrong step",
    ),
    (
        "ex02",
        "span_jacobian",
        _ex02_span(lambda h_i, h_prev, W: W * (1 - h_i**2)[:, None, :]),
        "multiplies W_hh from the left",
    ),
    (
        "ex02",
        "span_jacobian",
        _ex02_span(lambda h_i, h_prev, W: np.broadcast_to(W, (len(h_i), *W.shape))),
        "tanh derivative is missing",
    ),
    (
        "ex02",
        "span_jacobian",
        _ex02_span_with_h0(lambda J, k, t: J.transpose(0, 2, 1)),
        "transposed",
    ),
    (
        "ex02",
        "span_jacobian",
        _ex02_span_with_h0(lambda J, k, t: 0 * J if k == t else J),
        "the identity",
    ),
    ("ex02", "hidden_adjoints", _ex02_adjoints(only_direct=True), "only the direct gradients"),
    (
        "ex02",
        "hidden_adjoints",
        _ex02_adjoints(lambda nxt, h_next, h_k, W: (nxt * (1 - h_next**2)) @ W.T),
        "is not transposed",
    ),
    (
        "ex02",
        "hidden_adjoints",
        _ex02_adjoints(lambda nxt, h_next, h_k, W: (nxt * (1 - h_k**2)) @ W),
        "at the wrong step",
    ),
    (
        "ex02",
        "hidden_adjoints",
        _ex02_adjoints(lambda nxt, h_next, h_k, W: nxt @ W),
        "tanh derivative is missing",
    ),
    ("ex02", "hidden_adjoints", _ex02_adjoints(_back_right, end_only=True), "only the last loss"),
    (
        "ex02",
        "weight_gradient",
        _ex02_weights(lambda h, h_prev, bar: _terms(bar * (1 - h**2), h_prev)[-1]),
        "step T only",
    ),
    (
        "ex02",
        "weight_gradient",
        _ex02_weights(lambda h, h_prev, bar: _terms(bar * (1 - h**2), h).sum(0)),
        "not with h_k",
    ),
    (
        "ex02",
        "weight_gradient",
        _ex02_weights(lambda h, h_prev, bar: _terms(bar * (1 - h_prev**2), h_prev).sum(0)),
        "at the wrong step",
    ),
    (
        "ex02",
        "weight_gradient",
        _ex02_weights(lambda h, h_prev, bar: _terms(bar, h_prev).sum(0)),
        "tanh derivative is missing",
    ),
    (
        "ex02",
        "weight_gradient",
        _ex02_weights(lambda h, h_prev, bar: _terms(bar * (1 - h**2), h_prev)[1:].sum(0)),
        "first step is missing",
    ),
    (
        "ex02",
        "weight_gradient",
        _ex02_weights(lambda h, h_prev, bar: _terms(bar * (1 - h**2), h_prev).sum(0).T),
        "transposed",
    ),
    # ex05 (the planted bugs themselves: test_planted_code_loses_every_part)
    ("ex05", "sequence_loss", _ex05_loss(lambda l: l.sum(dim=1).mean()), "T times too large"),
    ("ex05", "sequence_loss", _ex05_loss(lambda l: l.mean(dim=1).sum()), "B times too large"),
    ("ex05", "sequence_loss", _ex05_loss(lambda l: l.sum()), "a sum"),
    ("ex05", "sequence_loss", _ex05_loss(lambda l: l.mean().item()), "should return a tensor"),
    ("ex05", "sequence_loss", _ex05_loss(lambda l: l.mean().detach()), "without a graph"),
    (
        "ex05",
        "train_steps",
        _ex05_train(zero_grad_after_backward=True),
        "the parameters did not change",
    ),
    ("ex05", "train_steps", _ex05_train(drop_last=True), "expected 3 losses"),
]


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    result = wrong_answer_result(namespaces, case)
    assert result.points == 0, result
    assert case[3] in result.reason, result.reason


def test_every_part_has_two_wrong_answers():
    assert_two_wrong_answers_per_part(EXERCISES, WRONG)


def test_ex01_a_proportional_guess_gets_half_marks():
    """Ten times the depth at T = 5 ignores the loss's fixed nodes: the right order, not the line."""
    result = _results("ex01", {"answers": lambda: {"q1": 23 * 10, "q2": 6848 * 100}})
    assert (result["q1"].points, result["q2"].points) == (0.5, 1), result
    assert "too high" in result["q1"].reason


PLANTED = [
    ("sequence_loss", "over which axis does your softmax normalise"),
    ("train_steps", "what does .grad hold when the second batch's backward() runs"),
]


@pytest.mark.parametrize("part_name, hint", PLANTED)
def test_planted_code_loses_every_part(namespaces, part_name, hint):
    """The exercise notebook holds the planted bugs: each part scores zero, with its hint."""
    functions = graded_functions(namespaces("exercises", "ex05"), "ex05")
    result = _results("ex05", functions)[part_name]
    assert result.points == 0, result
    assert hint in result.reason, result.reason


def test_every_planted_part_is_tested():
    assert {p for p, _ in PLANTED} == set(get_exercise("ex05").names_of_parts)
