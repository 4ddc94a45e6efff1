"""The checks of exercises ex08, ex09, ex10 and ex13 are not vacuous: solutions score full marks (in-process and in the
batch grader, whose held-out data the adding challenge is scored on), stubs score zero, the
package's own implementations agree with the checks, and typical wrong answers lose the part."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from grading_helpers import (
    answer,
    assert_two_wrong_answers_per_part,
    wrong_answer_result,
    wrong_id,
)

from bptt import jacobians, rnn, spectral, tasks, truncation
from bptt.grading import run_checks
from bptt.grading.exercises import ex09_adding_challenge
from bptt.grading.selfcheck import SELF_CHECK_SEED

EXERCISES = ("ex08", "ex13", "ex10", "ex09")
CHEAP = ("ex08", "ex13", "ex10")  # ex09's solution trains a model: graded in the batch test


def _points(exercise: str, functions: dict, seed: int = SELF_CHECK_SEED) -> dict:
    return {
        r.part: (r.points, r.max_points, r.reason)
        for r in run_checks(exercise, functions, seed=seed)
    }


# ----------------------------------------------------------------------------- the package agrees


def _torch_clipping():
    return {
        "clip_grad_norm": torch.nn.utils.clip_grad_norm_,
        "clip_grad_value": torch.nn.utils.clip_grad_value_,
    }


def _truncation_backward(dh, h0, h, W_hh, xi):
    """ex13's randomized_backward from bptt.truncation (an identity-activation bptt.rnn cache)."""
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    drive = h - h_prev @ W_hh.T  # x_t W_xh^T, recovered from the states
    H = W_hh.shape[0]
    _, cache = rnn.forward(drive, h0, np.eye(H), W_hh, np.zeros(H), activation="identity")
    grads = truncation.scaled_gradient(dh, cache, np.broadcast_to(xi, dh.shape[:2]))
    return {"W_hh": grads["W_hh"], "h0": grads["h0"]}


def _jacobian_norms(W_hh, x, h0, g):
    """ex10's gradient_norms from bptt.rnn and bptt.jacobians."""
    H = W_hh.shape[0]
    h, _ = rnn.forward(x, h0, np.eye(H), W_hh, np.zeros(H))
    return jacobians.gradient_norms_by_distance(jacobians.step_jacobians(h, W_hh), g)


PACKAGE = [
    ("ex08", _torch_clipping),
    ("ex13", lambda: {"randomized_backward": _truncation_backward}),
    ("ex10", lambda: {"orthogonal_init": lambda n, rng: spectral.orthogonal(n, rng=rng)}),
    ("ex10", lambda: {"gradient_norms": _jacobian_norms}),
]


@pytest.mark.parametrize(
    "exercise, functions", PACKAGE, ids=[f"{e}-{i}" for i, (e, _) in enumerate(PACKAGE)]
)
def test_independent_implementations_score_full_marks(exercise, functions):
    results = _points(exercise, functions())
    assert results and all(p == most for p, most, _ in results.values()), results


def test_adding_baseline_question_matches_the_package():
    results = _points("ex09", {"answers": lambda: {"q1": tasks.ADDING_BASELINE_MSE}})
    assert results["q1"] == (1, 1, "correct")


# ----------------------------------------------------------------------------- wrong answers
# Each factory takes the solution's namespace (or None) and returns a wrong version of one function.


def _params(parameters):
    return [p for p in parameters if p.grad is not None]


def _global_norm(params):
    return math.sqrt(sum(float((p.grad**2).sum()) for p in params))


def _per_parameter(ns):
    def clip_grad_norm(parameters, max_norm):
        params = _params(parameters)
        total = _global_norm(params)
        for p in params:
            p.grad.mul_(min(1.0, max_norm / float(p.grad.norm())))
        return total

    return clip_grad_norm


def _always_scaled(ns):
    def clip_grad_norm(parameters, max_norm):
        params = _params(parameters)
        total = _global_norm(params)
        for p in params:
            p.grad.mul_(max_norm / total)
        return total

    return clip_grad_norm


def _walks_twice(ns):
    def clip_grad_norm(parameters, max_norm):
        total = _global_norm(_params(parameters))
        for p in _params(parameters):  # a generator is empty the second time
            p.grad.mul_(min(1.0, max_norm / total))
        return total

    return clip_grad_norm


def _scales_the_parameters(ns):
    def clip_grad_norm(parameters, max_norm):
        params = _params(parameters)
        total = _global_norm(params)
        for p in params:
            p.data.mul_(min(1.0, max_norm / total))
        return total

    return clip_grad_norm


def _returns_clipped_norm(ns):
    def clip_grad_norm(parameters, max_norm):
        params = list(parameters)
        ns["clip_grad_norm"](params, max_norm)
        return _global_norm(_params(params))

    return clip_grad_norm


def _crashes_on_none(ns):
    def clip_grad_norm(parameters, max_norm):
        return _global_norm(list(parameters))

    return clip_grad_norm


def _value_clip(change):
    def factory(ns):
        def clip_grad_value(parameters, clip_value):
            for p in _params(parameters):
                change(p, clip_value)

        return clip_grad_value

    return factory


def _sample_xi(draw):
    return lambda ns: lambda T, pi, rng: draw(T, pi, rng)


def _backward(change):
    """The solution's randomized_backward called with a changed xi or W_hh."""

    def factory(ns):
        def randomized_backward(dh, h0, h, W_hh, xi):
            return ns["randomized_backward"](dh, h0, h, *change(W_hh, np.asarray(xi)))

        return randomized_backward

    return factory


def _pairs_with_current(ns):
    def randomized_backward(dh, h0, h, W_hh, xi):
        carry, dW = np.zeros_like(h0), np.zeros_like(W_hh)
        for t in reversed(range(dh.shape[1])):
            delta = dh[:, t] + carry
            dW += delta.T @ h[:, t]
            carry = xi[t] * (delta @ W_hh)
        return {"W_hh": dW, "h0": carry}

    return randomized_backward


def _expectation(weight, kept_value):
    def factory(ns):
        def exact_expectation(dh, h0, h, W_hh, pi):
            T = dh.shape[1]
            total = {"W_hh": 0.0, "h0": 0.0}
            for pattern in itertools.product((0.0, 1.0), repeat=T):
                kept = np.array(pattern)
                grads = ns["randomized_backward"](dh, h0, h, W_hh, kept * kept_value(pi))
                total = {k: total[k] + weight(kept, pi) * grads[k] for k in total}
            return total

        return exact_expectation

    return factory


def _probability(kept, pi):
    return np.prod(np.where(kept == 1, pi, 1 - pi))


def _orthogonal(make):
    return lambda ns: lambda n, rng: make(n, rng)


def _no_sign_fix(n, rng):
    return np.linalg.qr(rng.standard_normal((n, n)))[0]


def _flow(change):
    def factory(ns):
        return lambda W_hh, x, h0, g: change(ns, W_hh, x, h0, g)

    return factory


def _transposed_backward(ns, W_hh, x, h0, g):
    states = [h0]
    for t in range(x.shape[1]):
        states.append(np.tanh(x[:, t] + states[-1] @ W_hh.T))
    norms, grad = [np.linalg.norm(g, axis=1)], g
    for t in range(x.shape[1], 0, -1):
        grad = (grad * (1 - states[t] ** 2)) @ W_hh.T
        norms.append(np.linalg.norm(grad, axis=1))
    return np.stack(norms, axis=1)


def _linear_backward(ns, W_hh, x, h0, g):
    norms, grad = [np.linalg.norm(g, axis=1)], g
    for _ in range(x.shape[1]):
        grad = grad @ W_hh
        norms.append(np.linalg.norm(grad, axis=1))
    return np.stack(norms, axis=1)


def _train(predict):
    return lambda ns: lambda seed: predict


def _first_half_only(x):
    half = x.shape[1] // 2
    return np.sum(x[:, :half, 0] * x[:, :half, 1], axis=1) + 0.5


WRONG = [
    # ex08
    ("ex08", "clip_grad_norm", _per_parameter, "clipped on its own"),
    ("ex08", "clip_grad_norm", _always_scaled, "min(1, max_norm / norm)"),
    ("ex08", "clip_grad_norm", _walks_twice, "walked only once"),
    ("ex08", "clip_grad_norm", _scales_the_parameters, "not p or p.data"),
    ("ex08", "clip_grad_norm", _returns_clipped_norm, "return the norm before clipping"),
    ("ex08", "clip_grad_norm", _crashes_on_none, "p.grad is None"),
    (
        "ex08",
        "clip_grad_value",
        _value_clip(lambda p, c: p.grad.clamp_(max=c)),
        "only the upper bound",
    ),
    (
        "ex08",
        "clip_grad_value",
        lambda ns: lambda parameters, c: ns["clip_grad_norm"](parameters, c),
        "clamps each entry",
    ),
    (
        "ex08",
        "clip_grad_value",
        _value_clip(lambda p, c: p.grad.clamp(-c, c)),
        "did not change",
    ),
    ("ex08", "clip_grad_value", _value_clip(lambda p, c: p.data.clamp_(-c, c)), "not p or p.data"),
    ("ex08", "q1", answer("q1", 1.0), "not right"),
    ("ex08", "q1", answer("q1", 3.0), "not right"),
    ("ex08", "q2", answer("q2", 5.0), "not right"),
    ("ex08", "q2", answer("q2", 0.1), "not right"),
    ("ex08", "q3", answer("q3", "b"), "not the right choice"),
    ("ex08", "q3", answer("q3", "c"), "not the right choice"),
    # ex13
    ("ex13", "sample_xi", _sample_xi(lambda T, pi, rng: (rng.random(T) < pi) * 1.0), "1/pi, not 1"),
    ("ex13", "sample_xi", _sample_xi(lambda T, pi, rng: (rng.random(T) < 1 - pi) / pi), "1 - pi"),
    (
        "ex13",
        "sample_xi",
        _sample_xi(lambda T, pi, rng: (np.random.default_rng().random(T) < pi) / pi),
        "rng you are given",
    ),
    ("ex13", "sample_xi", _sample_xi(lambda T, pi, rng: np.ones(T)), "1/pi, not 1"),
    (
        "ex13",
        "randomized_backward",
        _backward(lambda W, xi: (W, np.ones_like(xi))),
        "xi is ignored",
    ),
    ("ex13", "randomized_backward", _backward(lambda W, xi: (W, np.roll(xi, 1))), "one step off"),
    ("ex13", "randomized_backward", _backward(lambda W, xi: (W.T, xi)), "W_hh is transposed"),
    ("ex13", "randomized_backward", _pairs_with_current, "not with h_t"),
    (
        "ex13",
        "exact_expectation",
        _expectation(lambda kept, pi: 0.5 ** len(kept), lambda pi: 1 / pi),
        "weight each by its probability",
    ),
    ("ex13", "exact_expectation", _expectation(_probability, lambda pi: 1.0), "xi = 1/pi, not 1"),
    ("ex13", "q1", answer("q1", 0.9**10), "not right"),
    ("ex13", "q1", answer("q1", 9.0), "not right"),
    ("ex13", "q2", answer("q2", 76.6), "not right"),  # E[g^2], not the variance
    ("ex13", "q2", answer("q2", 0.0), "not right"),
    ("ex13", "q3", answer("q3", "a"), "not the right choice"),
    ("ex13", "q3", answer("q3", "b"), "not the right choice"),
    # ex10
    ("ex10", "orthogonal_init", _orthogonal(_no_sign_fix), "not uniformly distributed"),
    ("ex10", "orthogonal_init", _orthogonal(lambda n, rng: np.eye(n)), "not uniformly distributed"),
    (
        "ex10",
        "orthogonal_init",
        _orthogonal(lambda n, rng: np.linalg.qr(rng.standard_normal((n, n)))[1]),
        "not orthogonal (Q^T Q is not I)",
    ),
    (
        "ex10",
        "orthogonal_init",
        _orthogonal(lambda n, rng: spectral.orthogonal(n, rng=np.random.default_rng())),
        "rng you are given",
    ),
    (
        "ex10",
        "gradient_norms",
        _flow(lambda ns, *a: ns["gradient_norms"](*a)[:, ::-1]),
        "ordered by time",
    ),
    (
        "ex10",
        "gradient_norms",
        _flow(lambda ns, *a: ns["gradient_norms"](*a) ** 2),
        "squared norms",
    ),
    ("ex10", "gradient_norms", _flow(_linear_backward), "tanh derivative is missing"),
    ("ex10", "gradient_norms", _flow(_transposed_backward), "not by W_hh^T"),
    (
        "ex10",
        "gradient_norms",
        _flow(lambda ns, *a: ns["gradient_norms"](*a)[:, :-1]),
        "shape (3, 8)",
    ),
    ("ex10", "q1", answer("q1", 0.95), "not right"),
    ("ex10", "q1", answer("q1", 1.0), "not right"),
    ("ex10", "q2", answer("q2", "b"), "not the right choice"),
    ("ex10", "q2", answer("q2", "c"), "not the right choice"),
    ("ex10", "q3", answer("q3", 0.0), "not right"),  # rotations only: no sign fix, n = 3
    ("ex10", "q3", answer("q3", 1.0), "not right"),
    # ex09
    ("ex09", "challenge", _train(lambda x: np.ones(len(x))), "points start below"),
    ("ex09", "challenge", _train(lambda x: 2 * x[..., 0].mean(axis=1)), "points start below"),
    ("ex09", "challenge", _train(lambda x: x[..., 0]), "one prediction per sequence"),
    ("ex09", "challenge", _train(lambda x: np.full(len(x), np.nan)), "NaN"),
    ("ex09", "challenge", lambda ns: lambda seed: 1.0, "should return a function"),
    ("ex09", "q1", answer("q1", 1 / 12), "not right"),
    ("ex09", "q1", answer("q1", 1 / 3), "not right"),
    ("ex09", "q2", answer("q2", 1 / 6), "not right"),
    ("ex09", "q2", answer("q2", 0.0), "not right"),
]


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    result = wrong_answer_result(namespaces, case, with_solution=case[0] in CHEAP)
    assert result.points == 0, result
    assert case[3] in result.reason, result.reason


def test_every_part_has_two_wrong_answers():
    lstm = {("ex09", p) for p in ("lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward")}
    assert_two_wrong_answers_per_part(EXERCISES, WRONG, skip=lstm)  # lstm: test_grading_ex06_12


def test_half_of_the_task_earns_half_of_the_challenge():
    points, most, reason = _points("ex09", {"train": _train(_first_half_only)(None)})["challenge"]
    assert (points, most) == (3, 6) and "better, but" in reason


def test_training_over_the_cpu_budget_loses_the_challenge(monkeypatch):
    monkeypatch.setattr(ex09_adding_challenge, "CPU_BUDGET_S", 0.01)

    def train(seed):
        M = np.random.default_rng(seed).normal(size=(200, 200))
        for _ in range(40):
            M = np.tanh(M @ M / 200)
        return _first_half_only

    points, _, reason = _points("ex09", {"train": train})["challenge"]
    assert points == 0 and "over the budget" in reason


# ----------------------------------------------------------------------------- batch grader
