"""bptt.truncation: full, truncated and randomized BPTT against torch and against each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bptt import gradcheck, rnn, truncation

sizes = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 3), st.integers(1, 4))
NAMES = ("x", "h0", "W_xh", "W_hh", "b")


def make(B, T, D, H, seed=0, activation="tanh"):
    """Returns rng, b, dh and the forward cache of a random RNN (b is not in the cache)."""
    rng = np.random.default_rng(seed)
    p = rnn.init_params(D, H, 1, rng=rng)
    b = 0.1 * rng.standard_normal(H)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H))
    dh = rng.standard_normal((B, T, H))
    _, cache = rnn.forward(x, h0, p["W_xh"], p["W_hh"], b, activation=activation)
    return rng, b, dh, cache


def torch_estimate(dh, cache, b, *, tau=None, xi=None):
    """Autograd on a graph built to carry exactly the paths an estimator keeps (tanh RNN).

    ``tau``: loss t is recomputed from h_{t-tau} detached (from h_0 itself when t <= tau), so
    only its last tau steps carry gradient. ``xi``: the state entering step t is
    xi_t h + (1 - xi_t) h.detach() - the same value, with its gradient scaled by xi_t.
    """
    arrays = {"x": cache.x, "h0": cache.h0, "W_xh": cache.W_xh, "W_hh": cache.W_hh, "b": b}
    t = {k: torch.tensor(a, requires_grad=True) for k, a in arrays.items()}

    def step(h, s):
        return torch.tanh(t["x"][:, s] @ t["W_xh"].T + h @ t["W_hh"].T + t["b"])

    steps = cache.h.shape[1]
    total = 0.0
    if tau is not None:
        states = [t["h0"]]
        for s in range(steps):
            states.append(step(states[-1], s))
        for s in range(steps):
            first = max(0, s - tau + 1)
            h = t["h0"] if first == 0 else states[first].detach()
            for r in range(first, s + 1):
                h = step(h, r)
            total = total + (h * torch.from_numpy(dh[:, s])).sum()
    else:
        h = t["h0"]
        for s in range(steps):
            scale = torch.from_numpy(xi[:, s, None])
            h = step(scale * h + (1 - scale) * h.detach(), s)
            total = total + (h * torch.from_numpy(dh[:, s])).sum()
    total.backward()
    return {k: v.grad.numpy() for k, v in t.items()}


def test_torch_reference_reproduces_the_cached_forward():
    _, b, dh, cache = make(2, 4, 3, 3)
    full = torch_estimate(dh, cache, b, tau=4)
    assert gradcheck.max_relative_error(full, rnn.backward(dh, cache)) <= 1e-10


@given(sizes, st.integers(1, 8), st.integers(0, 999))
def test_truncated_gradient_matches_torch_detach(dims, tau, seed):
    _, b, dh, cache = make(*dims, seed=seed)
    ours = truncation.truncated_gradient(dh, cache, tau)
    assert gradcheck.max_relative_error(ours, torch_estimate(dh, cache, b, tau=tau)) <= 1e-10


@given(sizes, st.integers(0, 3), st.sampled_from(rnn.ACTIVATIONS), st.integers(0, 999))
def test_truncation_at_tau_at_least_T_is_full_bptt(dims, extra, activation, seed):
    _, _, dh, cache = make(*dims, seed=seed, activation=activation)
    truncated = truncation.truncated_gradient(dh, cache, dims[1] + extra)
    full = truncation.full_gradient(dh, cache)
    for key in NAMES:  # equal up to the order of floating-point additions
        np.testing.assert_allclose(truncated[key], full[key], rtol=1e-12, atol=1e-13)


def test_truncation_is_biased_when_tau_is_short():
    _, _, dh, cache = make(2, 8, 2, 3, seed=1)
    full = truncation.full_gradient(dh, cache)
    errors = [
        gradcheck.relative_error(
            truncation.truncated_gradient(dh, cache, tau)["W_hh"], full["W_hh"]
        )
        for tau in (1, 2, 4, 8)
    ]
    assert errors[0] > 1e-3 and errors[-1] < 1e-12
    assert errors[0] > errors[1] > errors[2]


@given(sizes, st.integers(0, 999))
def test_scaled_gradient_matches_torch_with_scaled_edges(dims, seed):
    rng, b, dh, cache = make(*dims, seed=seed)
    xi = rng.choice([0.0, 0.5, 2.0, 1.0], size=dims[:2])
    ours = truncation.scaled_gradient(dh, cache, xi)
    assert gradcheck.max_relative_error(ours, torch_estimate(dh, cache, b, xi=xi)) <= 1e-10


def test_xi_one_is_full_and_xi_zero_is_truncation_after_one_step():
    _, _, dh, cache = make(3, 5, 2, 4, seed=2)
    ones, zeros = np.ones((3, 5)), np.zeros((3, 5))
    full = truncation.full_gradient(dh, cache)
    assert gradcheck.max_relative_error(truncation.scaled_gradient(dh, cache, ones), full) == 0.0
    cut = truncation.scaled_gradient(dh, cache, zeros)
    one_step = truncation.truncated_gradient(dh, cache, 1)
    for key in ("x", "W_xh", "W_hh", "b"):  # only the immediate terms survive in both
        np.testing.assert_allclose(cut[key], one_step[key], rtol=1e-15, atol=1e-15)
    # tau = 1 still hands h_1's adjoint on to h_0 (the input of the kept step), xi_1 = 0 cuts it
    np.testing.assert_array_equal(cut["h0"], 0.0)
    assert np.any(one_step["h0"] != 0.0)


def test_leading_sample_axes_give_one_gradient_per_sample():
    rng, _, dh, cache = make(2, 4, 3, 3, seed=4)
    xi = rng.choice([0.0, 2.0], size=(5, 2, 4))
    stacked = truncation.scaled_gradient(dh, cache, xi)
    assert stacked["W_hh"].shape == (5, 3, 3) and stacked["x"].shape == (5, 2, 4, 3)
    for s in range(5):
        single = truncation.scaled_gradient(dh, cache, xi[s])
        assert gradcheck.max_relative_error({k: v[s] for k, v in stacked.items()}, single) < 1e-14


def test_sample_xi_takes_two_values_with_mean_one():
    xi = truncation.sample_xi((200_000,), 0.25, rng=0)
    assert set(np.unique(xi)) == {0.0, 4.0}
    assert xi.mean() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_array_equal(xi[:10], truncation.sample_xi((200_000,), 0.25, rng=0)[:10])
    assert np.all(truncation.sample_xi((50,), 1.0, rng=1) == 1.0)


@pytest.mark.parametrize("pi", [0.3, 0.7])
def test_randomized_estimator_is_unbiased(pi):
    _, _, dh, cache = make(2, 6, 2, 3, seed=5)
    full = truncation.full_gradient(dh, cache)
    mc = truncation.monte_carlo(dh, cache, pi, samples=20_000, rng=11)
    assert mc.samples == 20_000
    assert mc.covers(full, z=5.0)  # 5 standard errors: a false alarm has odds ~1e-6 per entry
    truncated = truncation.truncated_gradient(dh, cache, 2)
    assert not mc.covers(truncated, z=5.0)  # the check can fail: truncation's bias is visible


def test_monte_carlo_agrees_with_the_stored_draws():
    _, _, dh, cache = make(1, 4, 2, 2, seed=6)
    draws = truncation.randomized_gradients(dh, cache, 0.5, samples=300, rng=3)
    mc = truncation.monte_carlo(dh, cache, 0.5, samples=300, rng=3)
    for key in NAMES:
        np.testing.assert_allclose(mc.mean[key], draws[key].mean(axis=0), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            mc.std[key], draws[key].std(axis=0, ddof=1), rtol=1e-9, atol=1e-14
        )
        np.testing.assert_allclose(mc.stderr[key], mc.std[key] / np.sqrt(300))


def test_monte_carlo_merges_blocks_correctly(monkeypatch):
    _, _, dh, cache = make(1, 3, 2, 2, seed=8)
    whole = truncation.monte_carlo(dh, cache, 0.4, samples=100, rng=5)
    monkeypatch.setattr(truncation, "_CHUNK_BYTES", 3 * 2 * 8)  # blocks of 7 samples
    blocks = truncation.monte_carlo(dh, cache, 0.4, samples=100, rng=5)
    for key in NAMES:
        np.testing.assert_allclose(blocks.mean[key], whole.mean[key], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(blocks.std[key], whole.std[key], rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize(("a", "pi", "steps"), [(0.9, 0.5, 6), (0.6, 0.5, 6)])
def test_variance_of_the_scalar_linear_rnn_is_a_squared_over_pi_per_step(a, pi, steps):
    """dL/dh_0 for a loss at step T is prod_t xi_t a: its variance is a^{2T}(pi^{-T} - 1)."""
    x = np.zeros((1, steps, 1))
    _, cache = rnn.forward(
        x, np.ones((1, 1)), np.eye(1), np.array([[a]]), np.zeros(1), activation="identity"
    )
    dh = np.zeros((1, steps, 1))
    dh[0, -1, 0] = 1.0
    mc = truncation.monte_carlo(dh, cache, pi, samples=100_000, rng=0)
    exact = a ** (2 * steps) * (pi**-steps - 1.0)
    assert mc.std["h0"][0, 0] ** 2 == pytest.approx(exact, rel=0.1)
    assert mc.mean["h0"][0, 0] == pytest.approx(a**steps, rel=0.05)
    factor = truncation.growth_factor(a, pi)
    assert factor == pytest.approx(a * a / pi)
    # the second moment a^{2T} pi^{-T} = factor^T grows with T exactly when a^2 >= pi
    assert (factor >= 1) == (a * a >= pi)
