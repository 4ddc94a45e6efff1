"""Claims of "Recurrence and the unrolled graph": where they hold, and negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import rnn
from bptt.claims.unrolled_graph import linear_growth, sum_of_parts


def per_step_contributions(W_hh_at=None, seed=0):
    """dL/dW_hh^(t) of every step of a small tanh RNN (from rnn.step_backward), and the total."""
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 6, 2, 4
    p = rnn.init_params(D, H, 1, rng=rng)
    x = rng.standard_normal((B, T, D))
    _, cache = rnn.forward(x, None, p["W_xh"], p["W_hh"], p["b"])
    dh = rng.standard_normal((B, T, H))
    total = rnn.backward(dh, cache)["W_hh"]
    # the adjoint of each h_t, from the full backward pass, then one step's own gradient
    parts, dh_next = [], np.zeros((B, H))
    for t in reversed(range(T)):
        W = p["W_hh"] if W_hh_at is None else W_hh_at
        _, step = rnn.step_forward(x[:, t], cache.h_prev[:, t], p["W_xh"], W, p["b"])
        grads = rnn.step_backward(dh[:, t] + dh_next, step)
        parts.append(grads["W_hh"])
        dh_next = grads["h_prev"]
    return parts, total


def test_per_step_contributions_sum_to_the_tied_gradient():
    parts, total = per_step_contributions()
    result = sum_of_parts(parts, total)
    assert result.holds, result


@pytest.mark.negative_control
def test_sum_of_parts_fails_when_a_step_is_left_out():
    parts, total = per_step_contributions()
    assert not sum_of_parts(parts[1:], total).holds


@pytest.mark.negative_control
def test_sum_of_parts_fails_for_contributions_at_other_weights():
    parts, total = per_step_contributions(W_hh_at=np.eye(4))
    assert not sum_of_parts(parts, total).holds


@pytest.mark.negative_control
def test_sum_of_parts_fails_when_one_part_is_the_whole_gradient():
    _, total = per_step_contributions()
    assert not sum_of_parts([total, np.zeros_like(total)], total).holds


def test_linear_growth_holds_for_a_constant_increment():
    assert linear_growth([8, 16, 32, 64], [1000 + 96 * n for n in (8, 16, 32, 64)]).holds


@pytest.mark.negative_control
@pytest.mark.parametrize("sizes", [[64, 256, 1024, 4096], [500, 500, 500, 500], [10, 20, 41, 81]])
def test_linear_growth_fails_for_quadratic_constant_or_uneven_memory(sizes):
    assert not linear_growth([8, 16, 32, 64], sizes).holds


def test_linear_growth_validates_its_input():
    with pytest.raises(ValueError, match="lengths, sizes"):
        linear_growth([1, 2], [3, 4])
    with pytest.raises(ValueError, match="lengths: expected increasing"):
        linear_growth([1, 3, 2], [3, 4, 5])
