"""The exercise checks are not vacuous: solutions score full marks, stubs score zero, and
typical wrong answers lose the points of the part they get wrong (in-process, fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from grading_batch_helpers import (
    NO_CARRY_LOOP,
    NO_TANH_STEP,
    STEP_NOT_WRITTEN,
    course_notebook,
    function_source,
)
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

from bptt.grading import get_exercise, run_checks
from bptt.grading.selfcheck import SELF_CHECK_SEED

EXERCISES = ("ex04", "ex03", "ex07", "ex11")


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_solutions_score_full_marks_on_any_inputs(namespaces, seed):
    """The inputs (values and sizes) change with the seed; the numpy solutions pass for all."""
    for exercise in ("ex04", "ex03", "ex07"):
        functions = graded_functions(namespaces("solutions", exercise), exercise)
        results = run_checks(exercise, functions, seed=seed)
        assert [(r.part, r.reason) for r in results if r.points != r.max_points] == []


# ----------------------------------------------------------------------------- wrong answers
# Each factory takes the solution's namespace and returns a wrong version of one function.


def _ex04_step(change):
    def factory(ns):
        def step_backward(dh_t, cache):
            return change(ns["step_backward"](dh_t, cache), dh_t, cache)

        return step_backward

    return factory


def _ex04_no_tanh(grads, dh_t, cache):
    return {
        "x": dh_t @ cache.W_xh,
        "h_prev": dh_t @ cache.W_hh,
        "W_xh": dh_t.T @ cache.x,
        "W_hh": dh_t.T @ cache.h_prev,
        "b": dh_t.sum(axis=0),
    }


def _ex04_transposed(grads, dh_t, cache):
    return {**grads, "W_hh": grads["W_hh"].T}


def _ex04_pairs_with_h_t(grads, dh_t, cache):
    return {**grads, "W_hh": (dh_t * (1 - cache.h**2)).T @ cache.h}


def _ex04_backward(carry_back=True, accumulate=True, first=0):
    """A backward pass with one of three classic mistakes switched on."""

    def factory(ns):
        def backward(dh, caches):
            grads = {"W_xh": 0.0, "W_hh": 0.0, "b": 0.0}
            dx, carry = [np.zeros_like(c.x) for c in caches], np.zeros_like(dh[:, 0])
            for t in range(len(caches) - 1, first - 1, -1):
                step = ns["step_backward"](dh[:, t] + (carry if carry_back else 0), caches[t])
                dx[t], carry = step["x"], step["h_prev"]
                for k, total in grads.items():
                    grads[k] = total + step[k] if accumulate else step[k]
            return {"x": np.stack(dx, axis=1), "h0": carry, **grads}

        return backward

    return factory


def _ex03_outputs(scale):
    def factory(ns):
        return lambda o, y: scale(o, y) * ns["grad_outputs"](o, y)

    return factory


def _ex03_hidden(transform):
    def factory(ns):
        return lambda dL_do, W_hh, W_hy: ns["grad_hidden"](dL_do, transform(W_hh), W_hy)

    return factory


def _ex03_gradients(change):
    def factory(ns):
        def gradients(x, y, W_xh, W_hh, W_hy):
            return change(ns, ns["gradients"](x, y, W_xh, W_hh, W_hy), x, y, W_xh, W_hh, W_hy)

        return gradients

    return factory


def _ex03_no_one_over_t(ns, grads, x, *args):
    return {k: v * x.shape[1] for k, v in grads.items()}


def _ex03_transposed_w_hx(ns, grads, *args):
    return {**grads, "W_xh": grads["W_xh"].T}


def _ex03_pairs_with_h_t(ns, grads, x, y, W_xh, W_hh, W_hy):
    h, o = ns["forward"](x, W_xh, W_hh, W_hy)
    dh = ns["grad_hidden"](ns["grad_outputs"](o, y), W_hh, W_hy)
    return {**grads, "W_hh": np.einsum("bti,btj->ij", dh, h)}


def _ex07_power(wrong):
    def factory(ns):
        def power_by_eig(M, k):
            lam, Q = np.linalg.eigh(M)
            return wrong(lam, Q, k)

        return power_by_eig

    return factory


def _ex07_iteration_norm(ns):
    def power_iteration(M, v0, num_iters):
        _, v = ns["power_iteration"](M, v0, num_iters)
        return float(np.linalg.norm(M @ v)), v

    return power_iteration


def _ex07_iteration_unnormalised(ns):
    def power_iteration(M, v0, num_iters):
        v = v0.copy()
        for _ in range(num_iters):
            v = M @ v
        return float(v @ M @ v / (v @ v)), v

    return power_iteration


def _ex11_detach(change):
    def factory(ns):
        return lambda state: change(ns, state)

    return factory


def _ex11_train(*, detach=True, only_h=False, reset=False, zero_grad=True, drop_last=False):
    """A TBPTT loop with one of the classic mistakes switched on."""

    def factory(ns):
        def train_tbptt(model, x, y, k, optimizer, loss_fn):
            state, losses = None, []
            stop = x.shape[1] - k + 1 if drop_last else x.shape[1]
            for start in range(0, stop, k):
                out, state = model(x[:, start : start + k], None if reset else state)
                loss = loss_fn(out, y[:, start : start + k])
                if zero_grad:
                    optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                if only_h and isinstance(state, tuple):
                    state = (state[0].detach(), state[1])
                elif detach:
                    state = ns["detach_state"](state)
            return losses

        return train_tbptt

    return factory


WRONG = [
    # ex04
    ("ex04", "step_backward", _ex04_step(_ex04_no_tanh), "tanh derivative is missing"),
    ("ex04", "step_backward", _ex04_step(_ex04_transposed), "'W_hh' gradient: transposed"),
    ("ex04", "step_backward", _ex04_step(_ex04_pairs_with_h_t), "pair delta with h_{t-1}"),
    ("ex04", "backward", _ex04_backward(carry_back=False), "flowing back from step t+1 is missing"),
    ("ex04", "backward", _ex04_backward(accumulate=False), "single time step's contribution"),
    ("ex04", "backward", _ex04_backward(first=1), "first time step is missing"),
    ("ex04", "q1", answer("q1", -0.4909), "not right"),
    ("ex04", "q1", answer("q1", 0.5), "not right"),
    ("ex04", "q2", answer("q2", 0.5**9), "not right"),
    ("ex04", "q2", answer("q2", 0.5), "not right"),
    ("ex04", "q3", answer("q3", "a"), "not the right choice"),
    ("ex04", "q3", answer("q3", "c"), "not the right choice"),
    # ex03
    (
        "ex03",
        "grad_outputs",
        _ex03_outputs(lambda o, y: o.shape[1]),
        "times too large: the loss averages over time",
    ),
    ("ex03", "grad_outputs", _ex03_outputs(lambda o, y: o.shape[0]), "averages over the batch"),
    ("ex03", "grad_outputs", _ex03_outputs(lambda o, y: -1), "dL/do: wrong sign"),
    ("ex03", "grad_hidden", _ex03_hidden(np.transpose), "use W_hh^T"),
    ("ex03", "grad_hidden", _ex03_hidden(np.zeros_like), "recursion term"),
    ("ex03", "gradients", _ex03_gradients(_ex03_no_one_over_t), "lose the 1/T"),
    ("ex03", "gradients", _ex03_gradients(_ex03_transposed_w_hx), "dL/dW_xh: transposed"),
    ("ex03", "gradients", _ex03_gradients(_ex03_pairs_with_h_t), "pair dL/dh_t with h_{t-1}"),
    ("ex03", "q1", answer("q1", 6), "not right"),
    ("ex03", "q1", answer("q1", 4), "not right"),
    ("ex03", "q2", answer("q2", 0.8**20), "not right"),
    ("ex03", "q2", answer("q2", 0.8), "not right"),
    ("ex03", "q3", answer("q3", "a"), "not the right choice"),
    ("ex03", "q3", answer("q3", "c"), "not the right choice"),
    # ex07
    (
        "ex07",
        "power_by_eig",
        _ex07_power(lambda lam, Q, k: Q.T @ np.diag(lam**k) @ Q),
        "columns of Q",
    ),
    (
        "ex07",
        "power_by_eig",
        _ex07_power(lambda lam, Q, k: Q @ np.diag(k * lam) @ Q.T),
        "do not multiply by k",
    ),
    ("ex07", "power_iteration", _ex07_iteration_norm, "use v^T M v"),
    ("ex07", "power_iteration", _ex07_iteration_unnormalised, "unit norm"),
    (
        "ex07",
        "decay_rate",
        lambda ns: lambda W: float(np.max(np.linalg.eigvals(W).real)),
        "largest magnitude",
    ),
    (
        "ex07",
        "decay_rate",
        lambda ns: lambda W: float(np.linalg.norm(W, 2)),
        "largest singular value",
    ),
    ("ex07", "decay_rate", lambda ns: lambda W: np.max(np.linalg.eigvals(W)), "complex"),
    ("ex07", "q1", answer("q1", 1.2), "not right"),
    ("ex07", "q1", answer("q1", 0.125), "not right"),
    ("ex07", "q2", answer("q2", 65), "not right"),
    ("ex07", "q2", answer("q2", 67), "not right"),
    ("ex07", "q3", answer("q3", "a"), "not the right choice"),
    ("ex07", "q3", answer("q3", "c"), "not the right choice"),
    # ex11
    ("ex11", "detach_state", _ex11_detach(lambda ns, s: s), "still attached"),
    (
        "ex11",
        "detach_state",
        _ex11_detach(
            lambda ns, s: (s[0].detach(), s[1]) if isinstance(s, tuple) else ns["detach_state"](s)
        ),
        "c of detach_state((h, c)): still attached",
    ),
    (
        "ex11",
        "detach_state",
        _ex11_detach(lambda ns, s: s.detach() if not isinstance(s, tuple) else s),
        "NoneType",
    ),
    (
        "ex11",
        "detach_state",
        _ex11_detach(
            lambda ns, s: (
                None if s is None else ns["detach_state"](s) if isinstance(s, tuple) else 0 * s
            )
        ),
        "values changed",
    ),
    ("ex11", "train_tbptt_rnn", _ex11_train(detach=False), "detach it after every chunk"),
    ("ex11", "train_tbptt_rnn", _ex11_train(reset=True), "reset every chunk"),
    ("ex11", "train_tbptt_rnn", _ex11_train(zero_grad=False), "zero_grad"),
    ("ex11", "train_tbptt_rnn", _ex11_train(drop_last=True), "expected 5 chunk losses"),
    ("ex11", "train_tbptt_lstm", _ex11_train(only_h=True), "both h and c"),
    ("ex11", "train_tbptt_lstm", _ex11_train(reset=True), "reset every chunk"),
    ("ex11", "train_tbptt_lstm", _ex11_train(zero_grad=False), "zero_grad"),
    ("ex11", "q1", answer("q1", 28), "not right"),
    ("ex11", "q1", answer("q1", 35), "not right"),
    ("ex11", "q2", answer("q2", 17.5), "not right"),
    ("ex11", "q2", answer("q2", 34), "not right"),
    ("ex11", "q3", answer("q3", "a"), "not the right choice"),
    ("ex11", "q3", answer("q3", "c"), "not the right choice"),
]


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    result = wrong_answer_result(namespaces, case)
    assert result.points == 0, result
    assert case[3] in result.reason, result.reason


def test_every_part_has_two_wrong_answers():
    assert_two_wrong_answers_per_part(EXERCISES, WRONG)


# ----------------------------------------------------------------------------- partial credit


def ex04_functions(step: str | None = None, loop: str | None = None) -> dict:
    """ex04's step_backward and backward as a notebook defines them (one namespace), from the
    solution unless ``step`` / ``loop`` give another source."""
    notebook = course_notebook("solutions", "ex04")
    namespace = {"np": np}
    for name, source in (("step_backward", step), ("backward", loop)):
        exec(source or function_source(notebook, name), namespace)  # noqa: S102
    return {name: namespace[name] for name in ("step_backward", "backward")}


SUBSTITUTED = (
    "with the course's step_backward in place of yours: correct; with your own step_backward: "
)


@pytest.mark.parametrize("seed", [SELF_CHECK_SEED, DEFAULT_SEED])
def test_a_wrong_step_costs_the_step_part_only(seed):
    functions = ex04_functions(step=NO_TANH_STEP)
    own = functions["step_backward"]
    results = {r.part: r for r in run_checks("ex04", functions, seed=seed)}
    assert results["step_backward"].points == 0
    assert "tanh derivative is missing" in results["step_backward"].reason
    backward = results["backward"]
    assert backward.points == backward.max_points
    assert backward.reason.startswith(SUBSTITUTED + "with T = ")
    assert own.__globals__["step_backward"] is own  # the substitution is undone


def test_an_unwritten_step_does_not_cost_a_right_loop():
    functions = ex04_functions(step=STEP_NOT_WRITTEN)
    (backward,) = run_checks("ex04", {"backward": functions["backward"]})
    assert (backward.points, backward.reason) == (
        4,
        SUBSTITUTED + "not implemented yet",
    )


@pytest.mark.negative_control
def test_a_wrong_loop_loses_backward_with_either_step():
    (alone,) = run_checks("ex04", {"backward": ex04_functions(loop=NO_CARRY_LOOP)["backward"]})
    assert alone.points == 0 and "in place of yours" not in alone.reason
    assert "flowing back from step t+1 is missing" in alone.reason
    both = ex04_functions(step=NO_TANH_STEP, loop=NO_CARRY_LOOP)
    (backward,) = run_checks("ex04", {"backward": both["backward"]})
    assert backward.points == 0
    still = "; and with the course's step_backward in place of yours: with T = "
    assert "flowing back from step t+1 is missing" in backward.reason.split(still)[1]


def test_substitutes_are_validated():
    backward = get_exercise("ex04").part("backward")
    for bad in ((("step_backward", len),), (("not a name", np.zeros),), ("step_backward",)):
        with pytest.raises(ValueError, match="substitutes: expected"):
            dataclasses.replace(backward, substitutes=bad)
