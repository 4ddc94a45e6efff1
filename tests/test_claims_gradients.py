"""bptt.claims.gradients.agreement: BPTT against finite differences, and negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import gradcheck, rnn
from bptt.claims.gradients import agreement


def world(seed=0, B=2, T=4, D=2, H=3, Q=2):
    rng = np.random.default_rng(seed)
    params = rnn.init_params(D, H, Q, rng=rng)
    return rng.standard_normal((B, T, D)), rng.standard_normal((B, T, Q)), params


def numeric(x, y, params):
    return gradcheck.numerical_gradients(lambda p: rnn.loss_and_gradients(x, y, p)[0], params)


def test_bptt_agrees_with_finite_differences():
    x, y, params = world()
    analytic = rnn.loss_and_gradients(x, y, params)[1]
    result = agreement({k: analytic[k] for k in params}, numeric(x, y, params), tol=1e-7)
    assert result.holds, result.errors


@pytest.mark.negative_control
def test_a_gradient_without_the_1_over_T_fails():
    x, y, params = world()
    analytic = rnn.loss_and_gradients(x, y, params)[1]
    T = x.shape[1]
    wrong = {k: T * analytic[k] for k in params}
    assert not agreement(wrong, numeric(x, y, params), tol=1e-7).holds


@pytest.mark.negative_control
def test_a_backward_pass_with_W_hh_not_transposed_fails():
    x, y, params = world()
    h, cache = rnn.forward(x, None, params["W_xh"], params["W_hh"], params["b"])
    o = rnn.readout(h, params["W_hy"], params["b_y"])
    _, do = rnn.mse_loss(o, y)
    top = rnn.readout_backward(do, h, params["W_hy"])
    bad_cache = rnn.Cache(cache.x, cache.h0, cache.h, cache.W_xh, cache.W_hh.T.copy(), "tanh")
    wrong = rnn.backward(top.pop("h"), bad_cache)
    wrong.update(top)
    assert not agreement({k: wrong[k] for k in params}, numeric(x, y, params), tol=1e-7).holds


@pytest.mark.negative_control
def test_one_bad_key_is_enough_to_fail():
    a = {"u": np.ones(3), "v": np.ones(2)}
    b = {"u": np.ones(3), "v": np.array([1.0, 1.1])}
    result = agreement(a, b, tol=1e-7)
    assert not result.holds and result.errors["u"] == 0.0
