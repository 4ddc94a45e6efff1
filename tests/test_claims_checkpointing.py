"""Negative controls of the claims of the optimal-checkpointing chapter (bptt.claims.checkpointing)."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import checkpoint_dp as dp
from bptt import rnn, truncation
from bptt.claims import checkpointing as claims


def _problem():
    rng = np.random.default_rng(3)
    p = rnn.init_params(3, 4, 1, rng=rng)
    x = rng.standard_normal((2, 30, 3))
    return x, None, p["W_xh"], p["W_hh"], p["b"], rng.standard_normal((2, 30, 4))


@pytest.mark.negative_control
def test_same_gradient_fails_for_truncated_bptt():
    args = _problem()
    reference, _ = dp.full_bptt_backward(*args)
    grads, _ = dp.policy_backward(*args, 4, dp.dp_plan(dp.table(30, 4)))
    assert claims.same_gradient(grads, reference).holds
    _, cache = rnn.forward(*args[:5])
    truncated = truncation.truncated_gradient(args[5], cache, 5)
    assert not claims.same_gradient(truncated, reference).holds
    assert not claims.same_gradient(truncated, reference, bitwise=False).holds


@pytest.mark.negative_control
def test_never_worse_fails_for_a_fixed_split_plan_posing_as_the_dp():
    steps, slots = 200, 6
    dp_cost = dp.forward_steps(steps, slots)
    halving = dp.simulate(steps, slots, lambda t, m: t // 2)
    assert claims.never_worse(dp_cost, {"halving": halving.forward_steps}).holds
    assert not claims.never_worse(halving.forward_steps, {"dp": dp_cost}).holds


@pytest.mark.negative_control
def test_headline_fails_for_the_hidden_state_model_and_for_too_little_memory():
    assert claims.headline(dp.forward_steps(1000, 50, model="internal"), 1000, 50).holds
    assert not claims.headline(dp.forward_steps(1000, 50, model="hidden"), 1000, 50).holds
    assert not claims.headline(dp.forward_steps(1000, 10, model="internal"), 1000, 10).holds


def _torch_memory(steps, slots):
    torch = pytest.importorskip("torch")
    from bptt.torch import checkpoint_policy
    from bptt.torch.memory import SavedTensorTracker

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, steps, 3, generator=g, dtype=torch.float64)
    dh = torch.randn(2, steps, 4, generator=g, dtype=torch.float64)
    params = [(0.5 * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_()
              for s in ((4, 3), (4, 4), (4,))]
    h0 = torch.zeros(2, 4, dtype=torch.float64)
    with SavedTensorTracker(exclude=params + [x]) as full:
        h, out = h0, []
        for t in range(steps):
            h = torch.tanh(x[:, t] @ params[0].T + h @ params[1].T + params[2])
            out.append(h)
        torch.autograd.backward(torch.stack(out, 1), dh)
    with SavedTensorTracker(exclude=params + [x]) as policy:
        _, counts = checkpoint_policy.policy_backward(
            x, h0, *params, dh, slots, dp.dp_plan(dp.table(steps, slots)))
    return policy.peak_bytes + counts.peak_slots * h0.numel() * 8, full.peak_bytes


@pytest.mark.negative_control
def test_memory_fraction_fails_when_every_state_is_stored():
    assert claims.memory_fraction_below(*_torch_memory(200, 10), 0.1).holds
    assert not claims.memory_fraction_below(*_torch_memory(200, 200), 0.1).holds
