"""bptt.linear: the closed-form gradients ("Closed-form gradients of a linear RNN") against
torch autograd and each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bptt import gradcheck, linear, rnn, spectral

sizes = st.tuples(
    st.integers(1, 3),  # B
    st.integers(1, 7),  # T (T = 1 included)
    st.integers(1, 4),  # D
    st.integers(1, 5),  # H
    st.integers(1, 3),  # Q
)


def make(B, T, D, H, Q, seed=0, radius=0.95):
    rng = np.random.default_rng(seed)
    W_xh = rng.standard_normal((H, D))
    W_hh = rng.standard_normal((H, H))
    if np.any(W_hh):
        W_hh = spectral.scale_to_spectral_radius(W_hh, radius)
    W_hy = rng.standard_normal((Q, H))
    x = rng.standard_normal((B, T, D))
    y = rng.standard_normal((B, T, Q))
    h0 = rng.standard_normal((B, H))
    return x, y, W_xh, W_hh, W_hy, h0


def torch_reference(x, y, W_xh, W_hh, W_hy, h0):
    """Loss and gradients by autograd, with dL/dh_t and dL/do_t read through retain_grad."""
    t = {
        k: torch.tensor(a, requires_grad=True)
        for k, a in {"W_xh": W_xh, "W_hh": W_hh, "W_hy": W_hy}.items()
    }
    h, states, outputs = torch.from_numpy(h0), [], []
    for step in range(x.shape[1]):
        h = torch.from_numpy(x[:, step]) @ t["W_xh"].T + h @ t["W_hh"].T
        h.retain_grad()
        o = h @ t["W_hy"].T
        o.retain_grad()
        states.append(h)
        outputs.append(o)
    o_all = torch.stack(outputs, dim=1)
    loss = 0.5 * ((o_all - torch.from_numpy(y)) ** 2).sum(-1).mean()
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in t.items()}
    grads["h"] = torch.stack([s.grad for s in states], dim=1).numpy()
    grads["o"] = torch.stack([o.grad for o in outputs], dim=1).numpy()
    return loss.item(), grads


@given(sizes, st.integers(0, 2**16), st.booleans())
def test_gradients_match_torch_autograd(dims, seed, with_h0):
    x, y, W_xh, W_hh, W_hy, h0 = make(*dims, seed=seed)
    h0_used = h0 if with_h0 else np.zeros_like(h0)
    value, expected = torch_reference(x, y, W_xh, W_hh, W_hy, h0_used)
    grads = linear.gradients(x, y, W_xh, W_hh, W_hy, h0 if with_h0 else None)
    assert set(grads) == {"W_xh", "W_hh", "W_hy", "o", "h"}
    errors = gradcheck.relative_errors(grads, expected)
    assert max(errors.values()) <= 1e-10, errors
    assert linear.loss(x, y, W_xh, W_hh, W_hy, h0_used) == pytest.approx(value, rel=1e-12)


@given(sizes, st.integers(0, 2**16))
def test_recursion_equals_explicit_power_sum(dims, seed):
    x, y, W_xh, W_hh, W_hy, h0 = make(*dims, seed=seed)
    grads = linear.gradients(x, y, W_xh, W_hh, W_hy, h0)
    closed = linear.hidden_gradients_power_sum(grads["o"], W_hh, W_hy)
    assert gradcheck.relative_error(closed, grads["h"]) <= 1e-12
    recursion = linear.hidden_gradients(grads["o"], W_hh, W_hy)
    np.testing.assert_array_equal(recursion, grads["h"])


def test_power_sum_written_out_for_three_steps():
    """dL/dh_1 = W_hy^T g_1 + W_hh^T W_hy^T g_2 + (W_hh^T)^2 W_hy^T g_3 (1-based, B = 1)."""
    rng = np.random.default_rng(1)
    W_hh, W_hy = rng.standard_normal((2, 2)), rng.standard_normal((3, 2))
    do = rng.standard_normal((1, 3, 3))
    g = [W_hy.T @ do[0, t] for t in range(3)]
    first = g[0] + W_hh.T @ g[1] + W_hh.T @ W_hh.T @ g[2]
    np.testing.assert_allclose(linear.hidden_gradients_power_sum(do, W_hh, W_hy)[0, 0], first)
    np.testing.assert_allclose(linear.hidden_gradients(do, W_hh, W_hy)[0, 0], first)


def test_gradients_match_finite_differences():
    x, y, W_xh, W_hh, W_hy, h0 = make(2, 5, 3, 4, 2, seed=3)
    grads = linear.gradients(x, y, W_xh, W_hh, W_hy, h0)
    weights = {"W_xh": W_xh, "W_hh": W_hh, "W_hy": W_hy}
    numeric = gradcheck.numerical_gradients(
        lambda w: linear.loss(x, y, w["W_xh"], w["W_hh"], w["W_hy"], h0), weights
    )
    assert gradcheck.max_relative_error({k: grads[k] for k in weights}, numeric) <= 1e-6


def test_forward_is_the_identity_rnn_without_bias():
    x, _, W_xh, W_hh, W_hy, h0 = make(2, 4, 3, 5, 2, seed=4)
    h, o = linear.forward(x, W_xh, W_hh, W_hy, h0)
    h_rnn, _ = rnn.forward(x, h0, W_xh, W_hh, np.zeros(5), activation="identity")
    np.testing.assert_allclose(h, h_rnn, rtol=1e-13)
    np.testing.assert_allclose(o, rnn.readout(h, W_hy), rtol=1e-13)


def test_weight_gradients_are_sums_of_outer_products():
    x, y, W_xh, W_hh, W_hy, h0 = make(2, 3, 2, 3, 2, seed=5)
    h, _ = linear.forward(x, W_xh, W_hh, W_hy, h0)
    grads = linear.gradients(x, y, W_xh, W_hh, W_hy, h0)
    parts = linear.weight_gradients(x, h, h0, grads["o"], grads["h"])
    h_prev = [h0] + [h[:, t] for t in range(2)]
    expected_hh = sum(np.outer(grads["h"][b, t], h_prev[t][b]) for b in range(2) for t in range(3))
    np.testing.assert_allclose(parts["W_hh"], expected_hh)
    for key in parts:
        np.testing.assert_array_equal(parts[key], grads[key])


def test_time_first_x_is_named_instead_of_h0():
    x, y, W_xh, W_hh, W_hy, h0 = make(2, 5, 3, 4, 1)
    with pytest.raises(ValueError, match=r"x: expected batch first.*looks time-first"):
        linear.forward(x.transpose(1, 0, 2), W_xh, W_hh, W_hy, h0)
    with pytest.raises(ValueError, match="batch sizes disagree"):
        linear.gradients(x, y, W_xh, W_hh, W_hy, h0[:1])
