"""Claims of "Closed-form gradients of a linear RNN": where they hold, and negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import linear, rnn
from bptt.claims.gradients import agreement
from bptt.claims.linear_closed_form import explicit_power_sum, forgotten_mean_factor


def world(seed=3, B=2, T=6, H=4, Q=2):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((B, T, Q)),
        0.9 * rng.standard_normal((H, H)) / np.sqrt(H),
        rng.standard_normal((Q, H)),
    )


def test_recursion_and_power_sum_agree_with_the_explicit_sum_of_powers():
    do, W_hh, W_hy = world()
    reference = explicit_power_sum(do, W_hh, W_hy)
    assert agreement(linear.hidden_gradients(do, W_hh, W_hy), reference, tol=1e-10).holds
    assert agreement(linear.hidden_gradients_power_sum(do, W_hh, W_hy), reference, tol=1e-10).holds


@pytest.mark.negative_control
def test_a_recursion_with_W_hh_not_transposed_fails_against_the_explicit_sum():
    do, W_hh, W_hy = world()
    wrong = linear.hidden_gradients(do, W_hh.T, W_hy)  # W_hh h instead of W_hh^T bar h
    assert not agreement(wrong, explicit_power_sum(do, W_hh, W_hy), tol=1e-10).holds


@pytest.mark.negative_control
def test_a_power_sum_that_stops_one_term_early_fails():
    do, W_hh, W_hy = world()
    truncated = do.copy()
    truncated[:, -1] = 0.0  # the last output's error never sent back
    wrong = linear.hidden_gradients(truncated, W_hh, W_hy)
    assert not agreement(wrong, explicit_power_sum(do, W_hh, W_hy), tol=1e-10).holds


def test_forgetting_the_mean_scales_the_output_gradient_by_T():
    rng = np.random.default_rng(0)
    o, y = rng.standard_normal((2, 2, 7, 3))
    _, do = rnn.mse_loss(o, y)
    assert forgotten_mean_factor((o - y) / 2, do, 7).holds


@pytest.mark.negative_control
def test_the_factor_claim_fails_when_both_keep_the_mean():
    rng = np.random.default_rng(0)
    o, y = rng.standard_normal((2, 2, 7, 3))
    _, do = rnn.mse_loss(o, y)
    assert not forgotten_mean_factor(do, do, 7).holds
