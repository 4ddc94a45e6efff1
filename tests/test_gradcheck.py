"""bptt.gradcheck: centred finite differences and the course's relative error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bptt import gradcheck


@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 999))
def test_numerical_gradient_of_smooth_functions(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    A = rng.standard_normal((rows, cols))
    numeric = gradcheck.numerical_gradient(lambda z: np.sum(A * np.sin(z)) + 0.5 * np.sum(z**2), x)
    exact = A * np.cos(x) + x
    assert gradcheck.relative_error(numeric, exact) < 1e-8


def test_numerical_gradient_leaves_x_alone_and_handles_scalars():
    x = np.array([1.0, 2.0])
    before = x.copy()
    gradcheck.numerical_gradient(lambda z: float(z @ z), x)
    np.testing.assert_array_equal(x, before)
    assert gradcheck.numerical_gradient(lambda z: float(z**3), np.array(2.0)) == pytest.approx(12.0)


def test_centred_difference_error_is_second_order():
    """Halving eps divides the truncation error of the centred difference by about 4."""
    x = np.array([0.7])
    exact = np.exp(0.7)
    errors = [
        abs(gradcheck.numerical_gradient(lambda z: np.exp(z[0]), x, eps=e)[0] - exact)
        for e in (1e-2, 5e-3)
    ]
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.01)


def test_numerical_gradients_perturbs_one_array_at_a_time():
    arrays = {"a": np.array([1.0, 2.0]), "b": np.array([[3.0]])}
    grads = gradcheck.numerical_gradients(lambda d: float(d["a"] @ d["a"] * d["b"][0, 0]), arrays)
    np.testing.assert_allclose(grads["a"], [6.0, 12.0], rtol=1e-9)
    np.testing.assert_allclose(grads["b"], [[5.0]], rtol=1e-9)


def test_relative_error_properties():
    a = np.array([1.0, -2.0, 3.0])
    assert gradcheck.relative_error(a, a) == 0.0
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradcheck.relative_error(a, np.zeros(3)) == 1.0
    b = a + np.array([0.0, 1e-8, 0.0])
    assert gradcheck.relative_error(a, b) == pytest.approx(1e-8 / np.linalg.norm(b), rel=1e-6)
    assert gradcheck.relative_error(a, b) == gradcheck.relative_error(b, a)
    assert gradcheck.relative_error(1e6 * a, 1e6 * b) == pytest.approx(
        gradcheck.relative_error(a, b)
    )
    assert gradcheck.relative_error(a.astype(np.float32), a) == 0.0


def test_relative_errors_per_key_and_max():
    a = {"u": np.ones(2), "v": np.ones(3)}
    b = {"u": np.ones(2), "v": np.array([1.0, 1.0, 0.0])}
    errors = gradcheck.relative_errors(a, b)
    assert errors["u"] == 0.0 and errors["v"] == pytest.approx(1 / np.sqrt(3))
    assert gradcheck.max_relative_error(a, b) == errors["v"]
    assert gradcheck.max_relative_error({}, {}) == 0.0


def test_a_function_that_returns_an_array_gets_a_clear_message():
    with pytest.raises(TypeError, match=r"f: expected a function that returns one number.*shape \(3,\)"):
        gradcheck.numerical_gradient(lambda z: z**2, np.ones(3))
    with pytest.raises(TypeError, match="f: expected a function that returns one number.*str"):
        gradcheck.numerical_gradient(lambda z: "loss", np.ones(2))
    # a 0-d array is one number
    grad = gradcheck.numerical_gradient(lambda z: np.asarray(np.sum(z**2)), np.ones(2))
    np.testing.assert_allclose(grad, 2.0, rtol=1e-8)
