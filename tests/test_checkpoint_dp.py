"""bptt.checkpoint_dp: the recursion, its schedules and the gradient of the policy backward pass."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bptt import checkpoint_dp as dp
from bptt import rnn


@functools.cache
def _brute(t, m, model):
    # every plan, by plain recursion over all splits (no table): the least forward count
    if t == 0:
        return 0
    if t == 1:
        return 1
    if m == 1:
        return t * (t + 1) // 2
    if model == "internal" and t <= m:
        return t
    return min(y + _brute(t - y, m - 1, model) + _brute(y, m, model) for y in range(1, t))


@pytest.mark.parametrize("model", dp.MODELS)
def test_table_matches_brute_force(model):
    solved = dp.table(40, 8, model=model)
    for t in range(41):
        for m in range(1, 9):
            assert solved.cost[t, m] == _brute(t, m, model), (t, m)


def test_boundaries_and_known_values():
    hidden = dp.table(30, 40)
    assert hidden.cost[30, 1] == 30 * 31 // 2
    assert all(hidden.cost[t, 40] == 2 * t - 1 for t in range(1, 31))  # unlimited memory
    internal = dp.table(30, 40, model="internal")
    assert all(internal.cost[t, 40] == t for t in range(31))
    assert dp.forward_steps(1000, 50) == 2948
    assert dp.forward_steps(1000, 50, model="internal") == 1977


def _problem(seed, steps=23, batch=2, inputs=3, hidden=4):
    rng = np.random.default_rng(seed)
    p = rnn.init_params(inputs, hidden, 1, rng=rng)
    x = rng.standard_normal((batch, steps, inputs))
    return x, rng.standard_normal((batch, hidden)), p["W_xh"], p["W_hh"], p["b"], \
        rng.standard_normal((batch, steps, hidden))


@given(steps=st.integers(1, 30), slots=st.integers(1, 12), model=st.sampled_from(dp.MODELS),
       seed=st.integers(0, 1000))
def test_policy_backward_is_full_bptt(steps, slots, model, seed):
    args = _problem(seed, steps=steps)
    reference, _ = dp.full_bptt_backward(*args)
    solved = dp.table(steps, slots, model=model)
    grads, counts = dp.policy_backward(*args, slots, dp.dp_plan(solved), model=model)
    for key in reference:
        assert np.array_equal(grads[key], reference[key]), key
    assert counts.forward_steps == solved.cost[steps, slots]
    assert counts.backward_steps == steps and counts.peak_slots <= slots
    assert counts == dp.simulate(steps, slots, dp.dp_plan(solved), model=model)


def test_full_bptt_backward_matches_rnn_backward():
    x, h0, W_xh, W_hh, b, dh = _problem(0, steps=40)
    ours, counts = dp.full_bptt_backward(x, h0, W_xh, W_hh, b, dh)
    _, cache = rnn.forward(x, h0, W_xh, W_hh, b)
    theirs = rnn.backward(dh, cache)
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, atol=1e-12)
    assert counts.forward_steps == 40


@pytest.mark.parametrize("steps", [10, 60, 100, 1000])
def test_sqrt_plan(steps):
    plan, slots = dp.sqrt_plan(steps)
    counts = dp.simulate(steps, slots, plan, model="internal")
    assert counts.peak_slots <= slots
    assert counts.forward_steps <= 2 * steps  # at most one extra forward pass
    assert dp.forward_steps(steps, slots, model="internal") <= counts.forward_steps


def test_time_ratio_and_validation():
    assert dp.time_ratio(1000, 1000) == 1.0
    with pytest.raises(ValueError, match="slots"):
        dp.table(10, 0)
    with pytest.raises(ValueError, match="model"):
        dp.table(10, 2, model="nope")
    with pytest.raises(ValueError, match="plan"):
        list(dp.schedule(10, 3, lambda t, m: t))
