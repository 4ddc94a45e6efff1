"""bptt.influence: the influence-balancing RNN of the chapter "TBPTT(k1, k2) and the bias of truncation" against autograd, finite
differences and its closed form; gradient descent; input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bptt.gradcheck import numerical_gradient, relative_error
from bptt.influence import InfluenceBalancing, Trajectory, gradient_descent

F64 = torch.float64


@st.composite
def problems(draw):
    n = draw(st.integers(2, 8))
    return InfluenceBalancing(
        n_units=n,
        n_positive=draw(st.integers(0, n)),
        steps=draw(st.integers(1, 20)),
        target=draw(st.floats(-2.0, 2.0)),
    )


thetas = st.floats(-2.0, 2.0)
taus = st.one_of(st.none(), st.integers(1, 25))


def autograd_gradient(problem: InfluenceBalancing, theta: float, tau: int | None) -> float:
    """dL/dtheta in torch float64: the shift register run step by step; for truncation, the
    output o_t is recomputed from the detached state h_{t - tau} (a stop-gradient there)."""
    th = torch.tensor(theta, dtype=F64, requires_grad=True)
    u = torch.tensor(problem.signs, dtype=F64)

    def step(h):
        return torch.cat([h[1:], h.new_zeros(1)]) + th * u

    states = [torch.zeros(problem.n_units, dtype=F64)]
    for _ in range(problem.steps):
        states.append(step(states[-1]))
    outputs = []
    for t in range(1, problem.steps + 1):
        if tau is None:
            outputs.append(states[t][0])
            continue
        start = max(t - tau, 0)
        h = states[start].detach()
        for _ in range(start, t):
            h = step(h)
        outputs.append(h[0])
    loss = (0.5 * (torch.stack(outputs) - problem.target) ** 2).mean()
    (grad,) = torch.autograd.grad(loss, th)
    return float(grad)


def close(a: float, b: float, rtol: float) -> bool:
    return relative_error(np.array([a]), np.array([b])) <= rtol or abs(a - b) <= 1e-13


# ------------------------------------------------------------------------ gradients
@given(problems(), thetas, taus)
def test_gradient_matches_autograd(problem, theta, tau):
    assert close(problem.gradient(theta, tau), autograd_gradient(problem, theta, tau), 1e-10)


@given(problems(), thetas)
def test_full_gradient_matches_finite_differences(problem, theta):
    numeric = numerical_gradient(lambda th: problem.loss(float(th[0])), np.array([theta]))
    assert abs(problem.gradient(theta) - numeric[0]) <= 1e-6 * max(1.0, abs(numeric[0]))


@given(problems(), thetas, taus)
def test_closed_form(problem, theta, tau):
    o = problem.outputs(theta)
    np.testing.assert_allclose(o, theta * problem.influence(), rtol=0, atol=1e-12)
    expected = np.mean((o - problem.target) * problem.influence(tau))
    assert close(problem.gradient(theta, tau), float(expected), 1e-10)


@given(problems(), thetas, st.integers(0, 5))
def test_long_windows_are_full_bptt(problem, theta, extra):
    full = problem.gradient(theta)
    assert problem.gradient(theta, problem.steps + extra) == pytest.approx(
        full, rel=1e-12, abs=1e-14
    )
    assert problem.gradient(theta, problem.n_units + extra) == pytest.approx(
        full, rel=1e-12, abs=1e-14
    )


@given(problems())
def test_optimum_is_the_minimum(problem):
    best = problem.optimum()
    assert abs(problem.gradient(best)) <= 1e-10 * max(1.0, abs(problem.target))
    for step in (1e-3, -1e-3):
        assert problem.loss(best + step) >= problem.loss(best)


@pytest.mark.parametrize("n, p", [(10, 3), (7, 2), (12, 5)])
def test_short_truncation_has_the_wrong_sign(n, p):
    # The gradient is affine in theta; its slope g(1) - g(0) is (1/T) sum_t c_t c~_t.
    problem = InfluenceBalancing(n_units=n, n_positive=p, steps=5 * n)

    def slope(tau):
        return problem.gradient(1.0, tau) - problem.gradient(0.0, tau)

    assert slope(None) > 0
    for tau in range(1, p + 1):
        assert slope(tau) < 0, tau
    assert slope(n) == pytest.approx(slope(None))


def test_influence_of_the_default_problem():
    problem = InfluenceBalancing()
    np.testing.assert_array_equal(problem.signs, [1, 1, 1, -1, -1, -1, -1, -1, -1, -1])
    np.testing.assert_array_equal(problem.influence()[:11], [1, 2, 3, 2, 1, 0, -1, -2, -3, -4, -4])
    np.testing.assert_array_equal(problem.influence(2)[:4], [1, 2, 2, 2])
    weights = problem.weights(0.5)
    np.testing.assert_array_equal(weights["W_hh"], np.eye(10, k=1))
    np.testing.assert_array_equal(weights["W_xh"][:, 0], 0.5 * problem.signs)


# ------------------------------------------------------------------ gradient descent
def test_full_descent_converges_to_the_optimum():
    problem = InfluenceBalancing()
    path = gradient_descent(problem, 0.0, lr=0.02, updates=80)
    assert isinstance(path, Trajectory)
    assert path.theta.shape == path.loss.shape == (81,)
    assert path.theta[-1] == pytest.approx(problem.optimum(), abs=1e-8)
    assert path.loss[-1] == pytest.approx(problem.loss(problem.optimum()), rel=1e-10)
    assert np.all(np.diff(path.loss) <= 1e-15)


@pytest.mark.parametrize("tau", [1, 2, 3])
def test_truncated_descent_runs_away(tau):
    problem = InfluenceBalancing()
    path = gradient_descent(problem, 0.0, lr=0.02, updates=40, tau=tau)
    distance = np.abs(path.theta - problem.optimum())
    assert np.all(np.diff(distance) > 0)
    assert distance[-1] > 10 * distance[0]
    assert np.all(np.diff(path.loss) > 0)


def test_descent_records_each_update():
    problem = InfluenceBalancing(n_units=3, n_positive=1, steps=4)
    path = gradient_descent(problem, 0.25, lr=0.1, updates=2, tau=2)
    first = 0.25 - 0.1 * problem.gradient(0.25, 2)
    second = first - 0.1 * problem.gradient(first, 2)
    np.testing.assert_allclose(path.theta, [0.25, first, second], rtol=1e-15)
    np.testing.assert_allclose(path.loss, [problem.loss(t) for t in path.theta], rtol=1e-15)
    zero = gradient_descent(problem, 0.25, lr=0.1, updates=0)
    np.testing.assert_array_equal(zero.theta, [0.25])


def test_descent_that_overflows_raises():
    with pytest.raises(ValueError, match="lr: theta left the finite floats"):
        gradient_descent(InfluenceBalancing(), 0.0, lr=10.0, updates=2000, tau=1)


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"n_units": 1}, ValueError, "n_units"),
        ({"n_units": 2.0}, TypeError, "n_units"),
        ({"n_positive": -1}, ValueError, "n_positive"),
        (
            {"n_units": 4, "n_positive": 5},
            ValueError,
            r"n_positive: expected an integer in \[0, n_units\] = \[0, 4\], got 5",
        ),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": True}, TypeError, "steps"),
        ({"target": math.nan}, ValueError, "target"),
        ({"target": "1"}, TypeError, "target"),
    ],
)
def test_bad_problem(kwargs, error, words):
    with pytest.raises(error, match=words):
        InfluenceBalancing(**kwargs)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda p: p.loss(math.inf), ValueError, "theta"),
        (lambda p: p.outputs("0.1"), TypeError, "theta"),
        (lambda p: p.gradient(0.0, 0), ValueError, "tau"),
        (lambda p: p.gradient(0.0, 2.5), TypeError, "tau"),
        (lambda p: p.influence(-3), ValueError, "tau"),
        (lambda p: p.weights(True), TypeError, "theta"),
        (lambda p: gradient_descent(p, 0.0, lr=0.0, updates=3), ValueError, "lr"),
        (lambda p: gradient_descent(p, 0.0, lr=0.1, updates=-1), ValueError, "updates"),
        (lambda p: gradient_descent(p, math.nan, lr=0.1, updates=1), ValueError, "theta0"),
        (lambda p: gradient_descent(p, 0.0, lr=0.1, updates=1, tau=0), ValueError, "tau"),
        (lambda p: gradient_descent("problem", 0.0, lr=0.1, updates=1), TypeError, "problem"),
    ],
)
def test_bad_arguments(call, error, words):
    with pytest.raises(error, match=words):
        call(InfluenceBalancing(n_units=4, n_positive=1, steps=6))
