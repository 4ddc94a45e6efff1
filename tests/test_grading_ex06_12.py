"""The checks of ex06, ex09's LSTM parts and ex12 are not vacuous: the solutions score full marks
at two seeds, the stubs score zero, the package's own implementations agree with the checks, and
typical wrong answers lose the part they get wrong, each with its specific hint."""

from __future__ import annotations

import types

import numpy as np
import pytest
from grading_helpers import (
    DEFAULT_SEED,
    answer,
    assert_two_wrong_answers_per_part,
    wrong_answer_result,
    wrong_id,
)

from bptt import jacobians, lstm
from bptt.grading import get_exercise, run_checks
from bptt.grading.selfcheck import SELF_CHECK_SEED

EXERCISES = ("ex06", "ex09", "ex12")
LSTM_PARTS = ("lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward")
"""ex09's parts that this file covers (its challenge and questions: tests/test_grading_ex08_13.py)."""


def _results(exercise: str, functions: dict, seed: int = SELF_CHECK_SEED) -> dict:
    return {r.part: r for r in run_checks(exercise, functions, seed=seed)}


# ----------------------------------------------------------------------------- the package agrees


def _package_ratios(J, g_T):
    norms = jacobians.gradient_norms_by_distance(J, g_T)
    return norms / norms[:, :1]


def _package_lstm_forward(x, h0, c0, W_x, W_h, b):
    h, c, _ = lstm.forward(x, h0, c0, W_x, W_h, b)
    return h, c, []


def _package_lstm_backward(dh, caches):
    """bptt.lstm.backward on a sequence Cache rebuilt from the step caches."""
    stack = {k: np.stack([getattr(s, k) for s in caches], axis=1) for k in "ifgqc"}
    first = caches[0]
    h = stack["q"] * np.tanh(stack["c"])
    cache = lstm.Cache(
        np.stack([s.x for s in caches], axis=1),
        first.h_prev,
        first.c_prev,
        h,
        stack["c"],
        stack["i"],
        stack["f"],
        stack["g"],
        stack["q"],
        first.W_x,
        first.W_h,
    )
    grads = lstm.backward(dh, cache)
    return {k: grads[k] for k in ("x", "h0", "c0", "W_x", "W_h", "b")}


PACKAGE = [
    (
        "ex09",
        lambda: {
            "lstm_step_forward": lstm.step_forward,
            "lstm_step_backward": lstm.step_backward,
            "lstm_forward": _package_lstm_forward,
            "lstm_backward": _package_lstm_backward,
        },
    ),
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


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _step_forward(order=(0, 1, 2, 3), cell_tanh=True, candidate=np.tanh, swap=False, cache=True):
    """An LSTM step with one classic mistake switched on (blocks read in ``order``, ...)."""

    def lstm_step_forward(x_t, h_prev, c_prev, W_x, W_h, b):
        blocks = np.split(x_t @ W_x.T + h_prev @ W_h.T + b, 4, axis=-1)
        a_i, a_f, a_g, a_q = (blocks[k] for k in order)
        i, f, g, q = _sigmoid(a_i), _sigmoid(a_f), candidate(a_g), _sigmoid(a_q)
        c = f * c_prev + i * g
        h = q * (np.tanh(c) if cell_tanh else c)
        record = lstm.StepCache(x_t, h_prev, c_prev, i, f, g, q, c, W_x, W_h)
        if not cache:
            record = {"i": i, "f": f, "g": g, "q": q, "c": c}
        return (c, h, record) if swap else (h, c, record)

    return lambda ns: lstm_step_forward


def _step_backward(mistake=None):
    """An LSTM step backward with one classic mistake."""

    def lstm_step_backward(dh_t, dc_t, cache):
        i, f, g, q, tanh_c = cache.i, cache.f, cache.g, cache.q, np.tanh(cache.c)
        slope_c = {"no tanh slope": 1.0, "1 - c^2": 1 - cache.c**2}.get(mistake, 1 - tanh_c**2)
        gate = q if mistake != "no q" else 1.0
        dc = dc_t + dh_t * gate * slope_c
        if mistake == "sigmoid at the pre-activation":
            ds = {k: _sigmoid(v) * (1 - _sigmoid(v)) for k, v in (("i", i), ("f", f), ("q", q))}
        else:
            ds = {"i": i * (1 - i), "f": f * (1 - f), "q": q * (1 - q)}
        dg = 1 - np.tanh(g) ** 2 if mistake == "candidate tanh again" else 1 - g**2
        blocks = [
            dc * g * ds["i"],
            dc * cache.c_prev * ds["f"],
            dc * i * dg,
            dh_t * tanh_c * ds["q"],
        ]
        if mistake == "i, f, q, g":
            blocks = [blocks[0], blocks[1], blocks[3], blocks[2]]
        da = np.concatenate(blocks, axis=-1)
        c_prev = {"no forget": dc, "upstream only": dc_t * f}.get(mistake, dc * f)
        return {
            "x": da @ cache.W_x,
            "h_prev": da @ cache.W_h,
            "c_prev": c_prev,
            "W_x": da.T @ cache.x,
            "W_h": da.T @ cache.h_prev,
            "b": da.sum(axis=0),
        }

    return lambda ns: lstm_step_backward


def _sequence_forward(carry=True, swap=False, step=None):
    """lstm_forward over the solution's step (or a wrong ``step``), with a mistake switched on."""

    def factory(ns):
        step_forward = step(ns) if step else ns["lstm_step_forward"]

        def lstm_forward(x, h0, c0, W_x, W_h, b):
            h, c, hs, cs = h0, c0, [], []
            for t in range(x.shape[1]):
                h, c, _ = step_forward(x[:, t], h if carry else h0, c if carry else c0, W_x, W_h, b)
                hs.append(h)
                cs.append(c)
            h, c = np.stack(hs, axis=1), np.stack(cs, axis=1)
            return (c, h, []) if swap else (h, c, [])

        return lstm_forward

    return factory


def _sequence_backward(carry_h=True, carry_c=True, accumulate=True, first=0):
    """lstm_backward over the solution's step backward, with one classic mistake switched on."""

    def factory(ns):
        def lstm_backward(dh, caches):
            grads = {"W_x": 0.0, "W_h": 0.0, "b": 0.0}
            dx = [np.zeros_like(c.x) for c in caches]
            dh_next, dc_next = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
            for t in range(len(caches) - 1, first - 1, -1):
                step = ns["lstm_step_backward"](
                    dh[:, t] + (dh_next if carry_h else 0),
                    dc_next if carry_c else 0 * dc_next,
                    caches[t],
                )
                dx[t], dh_next, dc_next = step["x"], step["h_prev"], step["c_prev"]
                for k, total in grads.items():
                    grads[k] = total + step[k] if accumulate else step[k]
            return {"x": np.stack(dx, axis=1), "h0": dh_next, "c0": dc_next, **grads}

        return lstm_backward

    return factory


def _ex12_gradient(change):
    """truncated_gradient through the solution's path_sums, with one classic slip."""

    def factory(ns):
        def truncated_gradient(theta, u, T, y, tau):
            return change(ns["path_sums"], theta, u, T, y, tau)

        return truncated_gradient

    return factory


def _ex12_sum(path_sums, theta, u, T, y, *, reach, output_reach=None, scale=1.0):
    c, seen = path_sums(u, T, output_reach or T), path_sums(u, T, reach)
    return float(scale * np.sum((theta * c - y) * seen) / T)


def _ex12_fixed_point(change):
    def factory(ns):
        return lambda u, T, y, tau: change(ns, u, T, y, tau)

    return factory


WRONG = [
    # ex12
    (
        "ex12",
        "truncated_gradient",
        _ex12_gradient(lambda ps, th, u, T, y, tau: _ex12_sum(ps, th, u, T, y, reach=tau + 1)),
        "off by one in the window",
    ),
    (
        "ex12",
        "truncated_gradient",
        _ex12_gradient(lambda ps, th, u, T, y, tau: _ex12_sum(ps, th, u, T, y, reach=T)),
        "this is the full gradient's answer",
    ),
    (
        "ex12",
        "truncated_gradient",
        _ex12_gradient(
            lambda ps, th, u, T, y, tau: _ex12_sum(ps, th, u, T, y, reach=tau, output_reach=tau)
        ),
        "truncation cuts the backward pass only",
    ),
    (
        "ex12",
        "truncated_gradient",
        _ex12_gradient(lambda ps, th, u, T, y, tau: _ex12_sum(ps, th, u, T, y, reach=tau, scale=T)),
        "divide by T",
    ),
    (
        "ex12",
        "truncated_gradient",
        _ex12_gradient(
            lambda ps, th, u, T, y, tau: _ex12_sum(ps, th, u, T, y, reach=tau, scale=-1)
        ),
        "wrong sign",
    ),
    (
        "ex12",
        "truncated_fixed_point",
        _ex12_fixed_point(lambda ns, u, T, y, tau: ns["truncated_fixed_point"](u, T, y, T)),
        "this is the full gradient's answer",
    ),
    (
        "ex12",
        "truncated_fixed_point",
        _ex12_fixed_point(lambda ns, u, T, y, tau: ns["truncated_fixed_point"](u, T, y, tau + 1)),
        "off by one in the window",
    ),
    (
        "ex12",
        "truncated_fixed_point",
        _ex12_fixed_point(
            lambda ns, u, T, y, tau: (
                y * ns["path_sums"](u, T, tau).sum() / (ns["path_sums"](u, T, tau) ** 2).sum()
            )
        ),
        "truncation cuts the backward pass only",
    ),
    (
        "ex12",
        "truncated_fixed_point",
        _ex12_fixed_point(lambda ns, u, T, y, tau: -ns["truncated_fixed_point"](u, T, y, tau)),
        "wrong sign",
    ),
    ("ex12", "q1", answer("q1", 1.0), "not right"),  # the optimum's own ratio
    ("ex12", "q1", answer("q1", 1 / 1.1309), "not right"),  # the ratio upside down
    ("ex12", "q2", answer("q2", 4), "not right"),  # p: the bound tau <= p only
    ("ex12", "q2", answer("q2", 8), "not right"),  # 2p
    # ex09, the LSTM by hand (its challenge and questions: tests/test_grading_ex08_13.py)
    ("ex09", "lstm_step_forward", _step_forward(order=(0, 1, 3, 2)), "not i, f, q, g"),
    ("ex09", "lstm_step_forward", _step_forward(order=(1, 0, 2, 3)), "not f, i, g, q"),
    ("ex09", "lstm_step_forward", _step_forward(cell_tanh=False), "tanh of the cell is missing"),
    ("ex09", "lstm_step_forward", _step_forward(candidate=_sigmoid), "uses tanh, not the sigmoid"),
    ("ex09", "lstm_step_forward", _step_forward(swap=True), "this is c_t"),
    ("ex09", "lstm_step_forward", _step_forward(cache=False), "cache = bptt.lstm.StepCache"),
    ("ex09", "lstm_step_backward", _step_backward("no forget"), "forget gate is missing"),
    ("ex09", "lstm_step_backward", _step_backward("upstream only"), "first add what reaches c_t"),
    ("ex09", "lstm_step_backward", _step_backward("no tanh slope"), "1 - tanh(c_t)^2 is missing"),
    ("ex09", "lstm_step_backward", _step_backward("1 - c^2"), "not 1 - c_t^2"),
    ("ex09", "lstm_step_backward", _step_backward("no q"), "output gate q_t is missing"),
    (
        "ex09",
        "lstm_step_backward",
        _step_backward("sigmoid at the pre-activation"),
        "do not apply the sigmoid to the gate again",
    ),
    (
        "ex09",
        "lstm_step_backward",
        _step_backward("candidate tanh again"),
        "apply tanh to it again",
    ),
    ("ex09", "lstm_step_backward", _step_backward("i, f, q, g"), "the gate order"),
    ("ex09", "lstm_forward", _sequence_forward(carry=False), "the state is not carried"),
    ("ex09", "lstm_forward", _sequence_forward(swap=True), "h and c are swapped"),
    (
        "ex09",
        "lstm_forward",
        _sequence_forward(step=_step_forward(order=(0, 1, 3, 2))),
        "not i, f, q, g",
    ),
    ("ex09", "lstm_backward", _sequence_backward(carry_h=False), "to h_t from step t+1"),
    ("ex09", "lstm_backward", _sequence_backward(carry_c=False), "cell gradient from step t+1"),
    ("ex09", "lstm_backward", _sequence_backward(accumulate=False), "single time step's"),
    ("ex09", "lstm_backward", _sequence_backward(first=1), "first time step is missing"),
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
    ("ex06", "q2", answer("q2", 1.5**30), "q2: too high by more than 100 times"),  # linear law
    ("ex06", "q2", answer("q2", 1e-15), "q2: too low"),
    ("ex06", "q2", answer("q2", -1e-5), "predict a positive number"),
]


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    result = wrong_answer_result(namespaces, case)
    assert result.points == 0, result
    assert case[3] in result.reason, result.reason


def test_every_part_has_two_wrong_answers():
    challenge = {("ex09", p.name) for p in get_exercise("ex09").parts if p.name not in LSTM_PARTS}
    assert_two_wrong_answers_per_part(EXERCISES, WRONG, skip=challenge)  # challenge: ex08_13


def test_a_prediction_of_the_right_order_earns_half():
    q1 = _results("ex06", {"answers": lambda: {"q1": 2 * 0.9**30}})["q1"]
    assert (q1.points, q1.reason) == (0.5, "q1: within 2.25 times, but too high")
    q2 = _results("ex06", {"answers": lambda: {"q2": 1e-3}})["q2"]  # vanishing, but too slowly
    assert q2.points == 0.5 and "too high" in q2.reason
    q2 = _results("ex06", {"answers": lambda: {"q2": 1.0}})["q2"]  # "saturation changes nothing"
    assert q2.points == 0 and "too high" in q2.reason


def _with_step_backward(ns: dict, step_backward) -> types.FunctionType:
    """The solution's lstm_backward, its call of lstm_step_backward bound to ``step_backward``."""
    function = ns["lstm_backward"]
    return types.FunctionType(function.__code__, {**ns, "lstm_step_backward": step_backward})


def test_a_wrong_step_costs_the_step_part_not_the_sequence_part(namespaces):
    """Partial credit: lstm_backward calls lstm_step_backward by name from the notebook, and is
    scored a second time with the course's step in its place. A step missing the forget gate
    then costs lstm_step_backward only (the reason says the learner's own step breaks the
    loop); a loop that drops the carry loses lstm_backward with either step."""
    ns = namespaces("solutions", "ex09")
    broken_step = _step_backward("no forget")(None)
    result = _results("ex09", {"lstm_backward": _with_step_backward(ns, broken_step)})["lstm_backward"]
    assert result.points == 4, result.reason
    assert "with your own lstm_step_backward" in result.reason
    assert _results("ex09", {"lstm_step_backward": broken_step})["lstm_step_backward"].points == 0
    good = _with_step_backward(ns, lstm.step_backward)
    assert _results("ex09", {"lstm_backward": good})["lstm_backward"].reason == "correct"


def test_ex12_agrees_with_the_package_on_the_chapters_problem(namespaces):
    """On +-1 signs the solution's closed form is the package's truncated BPTT (bptt.influence
    runs the network and backpropagates with bptt.truncation)."""
    from bptt.influence import InfluenceBalancing

    ns = namespaces("solutions", "ex12")
    problem = InfluenceBalancing(n_units=7, n_positive=2, steps=30, target=0.7)
    for tau in (1, 2, 4, 7, 9):
        for theta in (-0.4, 0.3):
            ours = ns["truncated_gradient"](theta, problem.signs, 30, 0.7, tau)
            assert np.isclose(ours, problem.gradient(theta, tau), rtol=1e-10, atol=1e-13)
