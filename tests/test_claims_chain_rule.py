"""Claims of "The chain rule through time": where they hold, and negative controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bptt import jacobians, rnn
from bptt.claims.chain_rule import geometric_decay
from bptt.claims.gradients import agreement


def decay_curve(seed=11, B=16, T=40, H=16):
    rng = np.random.default_rng(seed)
    p = rnn.init_params(3, H, 2, rng=rng)
    h, _ = rnn.forward(rng.standard_normal((B, T, 3)), None, p["W_xh"], p["W_hh"], p["b"])
    J = jacobians.step_jacobians(h, p["W_hh"])
    g_T = rng.standard_normal((B, H))
    return np.arange(T), jacobians.gradient_norms_by_distance(J, g_T).mean(axis=0)[:T]


def test_gradients_of_a_default_tanh_rnn_decay_geometrically():
    assert geometric_decay(*decay_curve()).holds


@pytest.mark.negative_control
@pytest.mark.parametrize("w", [1.0, 1.1])
def test_geometric_decay_fails_for_a_linear_rnn_that_keeps_or_grows_its_gradient(w):
    T = 40
    W_hh = np.array([[w]])
    h, _ = rnn.forward(
        np.ones((1, T, 1)), None, np.ones((1, 1)), W_hh, np.zeros(1), activation="identity"
    )
    J = jacobians.step_jacobians(h, W_hh, activation="identity")
    curve = jacobians.gradient_norms_by_distance(J, np.ones((1, 1)))[0, :T]
    assert not geometric_decay(np.arange(T), curve).holds


@pytest.mark.negative_control
def test_geometric_decay_fails_for_a_power_law():
    d = np.arange(40)
    assert not geometric_decay(d, 1.0 / (1.0 + d) ** 2).holds


@pytest.mark.negative_control
def test_geometric_decay_fails_for_a_curve_far_from_a_straight_line():
    d = np.arange(40.0)
    curve = np.where(d < 20, 1.0, 1e-12)  # a cliff, not a geometric fall
    assert not geometric_decay(d, curve).holds


def autograd_step_jacobian(x, h0, p):
    def step(h_prev):
        return torch.tanh(
            torch.from_numpy(x) @ torch.from_numpy(p["W_xh"]).T
            + h_prev @ torch.from_numpy(p["W_hh"]).T
            + torch.from_numpy(p["b"])
        )

    return torch.autograd.functional.jacobian(step, torch.from_numpy(h0)).numpy()


def test_step_jacobian_agrees_with_autograd():
    rng = np.random.default_rng(3)
    p = rnn.init_params(2, 4, 1, rng=rng)
    x, h0 = rng.standard_normal((1, 2)), rng.standard_normal((1, 4))
    h, _ = rnn.step_forward(x, h0, p["W_xh"], p["W_hh"], p["b"])
    J = jacobians.step_jacobians(h[:, None], p["W_hh"])[0, 0]
    assert agreement(J, autograd_step_jacobian(x, h0, p)[0, :, 0, :], tol=1e-10).holds


@pytest.mark.negative_control
def test_a_step_jacobian_without_the_tanh_slope_fails_against_autograd():
    rng = np.random.default_rng(3)
    p = rnn.init_params(2, 4, 1, rng=rng)
    x, h0 = rng.standard_normal((1, 2)), rng.standard_normal((1, 4))
    wrong = p["W_hh"]  # diag(1 - h_t^2) forgotten
    assert not agreement(wrong, autograd_step_jacobian(x, h0, p)[0, :, 0, :], tol=1e-10).holds
