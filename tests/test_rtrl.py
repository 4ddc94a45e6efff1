"""bptt.rtrl: forward-mode sensitivities give the BPTT gradient."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from bptt import gradcheck, rnn, rtrl

sizes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 3), st.integers(1, 4))


def make(B, T, D, H, seed=0):
    rng = np.random.default_rng(seed)
    p = rnn.init_params(D, H, 1, rng=rng)
    p["b"] = 0.1 * rng.standard_normal(H)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H))
    dh = rng.standard_normal((B, T, H))
    return x, h0, p["W_xh"], p["W_hh"], p["b"], dh


@given(sizes, st.sampled_from(rnn.ACTIVATIONS), st.integers(0, 999))
def test_rtrl_equals_bptt(dims, activation, seed):
    x, h0, W_xh, W_hh, b, dh = make(*dims, seed=seed)
    _, cache = rnn.forward(x, h0, W_xh, W_hh, b, activation=activation)
    bptt = rnn.backward(dh, cache)
    ours = rtrl.gradients(x, h0, W_xh, W_hh, b, dh, activation=activation)
    assert set(ours) == {"W_xh", "W_hh", "b", "h0"}
    assert gradcheck.max_relative_error(ours, {k: bptt[k] for k in ours}) <= 1e-10


def test_h0_none_is_zeros():
    x, h0, W_xh, W_hh, b, dh = make(2, 3, 2, 3)
    zeros = rtrl.gradients(x, np.zeros_like(h0), W_xh, W_hh, b, dh)
    default = rtrl.gradients(x, None, W_xh, W_hh, b, dh)
    assert gradcheck.max_relative_error(zeros, default) == 0.0


def test_sensitivities_are_the_jacobians_of_the_state():
    """After t steps, S holds dh_t/dW_hh, dh_t/dW_xh, dh_t/db and dh_t/dh_0 (torch jacobian)."""
    x, h0, W_xh, W_hh, b, _ = make(1, 3, 2, 3, seed=4)
    layout = rtrl.Layout(3, 2)
    S, h = layout.initial(1, np.float64), h0
    for t in range(3):
        h, S = rtrl.step(S, x[:, t], h, W_xh, W_hh, b)

    def final_state(w_xh, w_hh, bias, start):
        state = start
        for t in range(3):
            state = torch.tanh(w_xh @ torch.from_numpy(x[0, t]) + w_hh @ state + bias)
        return state

    inputs = tuple(torch.from_numpy(a) for a in (W_xh, W_hh, b, h0[0]))
    expected = torch.autograd.functional.jacobian(final_state, inputs)
    np.testing.assert_allclose(h[0], final_state(*inputs).numpy(), rtol=1e-14)
    for name, jac in zip(("W_xh", "W_hh", "b", "h0"), expected):
        got = S[0][:, layout.slices[name]]
        np.testing.assert_allclose(got, jac.reshape(3, -1).numpy(), rtol=1e-12, atol=1e-14)


def test_layout_counts_the_parameters():
    layout = rtrl.Layout(4, 3)
    assert layout.parameters == 4 * 3 + 4 * 4 + 4
    assert layout.size == layout.parameters + 4
    S = layout.initial(2, np.float32)
    assert S.shape == (2, 4, layout.size) and S.dtype == np.float32
    np.testing.assert_array_equal(S[:, :, : layout.parameters], 0.0)
    np.testing.assert_array_equal(S[1][:, layout.slices["h0"]], np.eye(4))
