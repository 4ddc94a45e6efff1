"""bptt.jacobians: step Jacobians, their products, and gradient size by distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bptt import gradcheck, jacobians, rnn

sizes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 3), st.integers(1, 4))


def run_rnn(B, T, D, H, seed=0, activation="tanh"):
    rng = np.random.default_rng(seed)
    p = rnn.init_params(D, H, 1, rng=rng)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H))
    h, _ = rnn.forward(x, h0, p["W_xh"], p["W_hh"], p["b"], activation=activation)
    return rng, p, x, h0, h


@given(sizes, st.integers(0, 999))
def test_step_jacobian_matches_torch_functional_jacobian(dims, seed):
    B, T, D, H = dims
    _, p, x, h0, h = run_rnn(B, T, D, H, seed)
    J = jacobians.step_jacobians(h, p["W_hh"])
    assert J.shape == (B, T, H, H)
    W_xh, W_hh, b = (torch.from_numpy(p[k]) for k in ("W_xh", "W_hh", "b"))
    states = np.concatenate([h0[:, None], h], axis=1)
    for n in range(B):
        for t in range(1, T + 1):  # J_t = dh_t/dh_{t-1}

            def step(h_prev, n=n, t=t):
                return torch.tanh(W_xh @ torch.from_numpy(x[n, t - 1]) + W_hh @ h_prev + b)

            expected = torch.autograd.functional.jacobian(step, torch.from_numpy(states[n, t - 1]))
            np.testing.assert_allclose(J[n, t - 1], expected.numpy(), rtol=1e-12, atol=1e-14)


def test_identity_activation_jacobian_is_W_hh():
    _, p, *_, h = run_rnn(2, 3, 2, 3, activation="identity")
    J = jacobians.step_jacobians(h, p["W_hh"], activation="identity")
    np.testing.assert_array_equal(J, np.broadcast_to(p["W_hh"], J.shape))


@given(sizes, st.integers(0, 999), st.data())
def test_span_product_is_the_chain_and_matches_products_to_end(dims, seed, data):
    B, T, D, H = dims
    _, p, *_, h = run_rnn(B, T, D, H, seed)
    J = jacobians.step_jacobians(h, p["W_hh"])
    start = data.draw(st.integers(0, T))
    stop = data.draw(st.integers(start, T))
    expected = np.broadcast_to(np.eye(H), (B, H, H))
    for t in range(start + 1, stop + 1):
        expected = np.einsum("bij,bjk->bik", J[:, t - 1], expected)
    np.testing.assert_allclose(jacobians.span_product(J, start, stop), expected, atol=1e-14)
    P = jacobians.products_to_end(J)
    np.testing.assert_allclose(P[:, start], jacobians.span_product(J, start, T), atol=1e-14)
    np.testing.assert_array_equal(P[:, T], np.broadcast_to(np.eye(H), (B, H, H)))


@given(sizes, st.integers(0, 999))
def test_gradients_from_last_match_retain_grad(dims, seed):
    B, T, D, H = dims
    rng, p, x, h0, h = run_rnn(B, T, D, H, seed)
    g_T = rng.standard_normal((B, H))
    ours = jacobians.gradients_from_last(jacobians.step_jacobians(h, p["W_hh"]), g_T)

    W_xh, W_hh, b = (torch.from_numpy(p[k]) for k in ("W_xh", "W_hh", "b"))
    state = torch.tensor(h0, requires_grad=True)
    states = [state]
    for t in range(T):
        state = torch.tanh(torch.from_numpy(x[:, t]) @ W_xh.T + state @ W_hh.T + b)
        state.retain_grad()
        states.append(state)
    (state * torch.from_numpy(g_T)).sum().backward()
    expected = torch.stack([s.grad for s in states], dim=1).numpy()
    assert gradcheck.relative_error(ours, expected) <= 1e-10
    norms = jacobians.gradient_norms_by_distance(jacobians.step_jacobians(h, p["W_hh"]), g_T)
    np.testing.assert_allclose(norms, np.linalg.norm(expected[:, ::-1], axis=-1))


@given(sizes, st.integers(0, 999))
def test_contribution_norms_match_products(dims, seed):
    B, T, D, H = dims
    rng, p, *_, h = run_rnn(B, T, D, H, seed)
    dh = rng.standard_normal((B, T, H))
    J = jacobians.step_jacobians(h, p["W_hh"])
    C = jacobians.contribution_norms(J, dh)
    expected = np.zeros((B, T, T))
    for k in range(1, T + 1):
        for t in range(k, T + 1):
            row = np.einsum("bi,bij->bj", dh[:, t - 1], jacobians.span_product(J, k, t))
            expected[:, k - 1, t - 1] = np.linalg.norm(row, axis=-1)
    np.testing.assert_allclose(C, expected, rtol=1e-12, atol=1e-15)


def test_mean_by_distance_averages_each_diagonal():
    C = np.array([[[1.0, 2.0, 4.0], [0.0, 3.0, 6.0], [0.0, 0.0, 5.0]]])
    np.testing.assert_allclose(jacobians.mean_by_distance(C), [3.0, 4.0, 4.0])


@pytest.mark.parametrize("w", [0.5, 0.9, 1.0, 1.2, -0.8])
def test_scalar_law_is_exact_for_the_scalar_linear_rnn(w):
    T = 12
    h = np.ones((1, T, 1))  # any states: the identity activation ignores them
    J = jacobians.step_jacobians(h, np.array([[w]]), activation="identity")
    norms = jacobians.gradient_norms_by_distance(J, np.array([[2.0]]))
    np.testing.assert_allclose(norms[0], 2.0 * np.abs(jacobians.scalar_law(w, T)), rtol=1e-13)
    np.testing.assert_allclose(jacobians.scalar_law(w, 3), [1.0, w, w**2, w**3])


def test_distance_decay_with_small_weights_is_geometric():
    """A contracting W_hh makes ||dL/dh_{T-d}|| fall at least like sigma_max^d."""
    rng = np.random.default_rng(0)
    W_hh = rng.standard_normal((4, 4))
    W_hh *= 0.5 / np.linalg.norm(W_hh, 2)
    h = np.tanh(rng.standard_normal((3, 20, 4)))
    norms = jacobians.gradient_norms_by_distance(jacobians.step_jacobians(h, W_hh), np.ones((3, 4)))
    bound = norms[:, :1] * 0.5 ** np.arange(21)
    assert np.all(norms <= bound * (1 + 1e-12))
