"""bptt.torch.checkpoint_policy against autograd through the whole unrolled sequence."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from bptt import checkpoint_dp as dp
from bptt.torch import checkpoint_policy


@pytest.mark.parametrize("steps,slots", [(1, 1), (7, 1), (30, 2), (30, 5), (64, 64)])
def test_policy_backward_matches_autograd(steps, slots):
    g = torch.Generator().manual_seed(steps * 100 + slots)
    B, D, H = 2, 3, 5
    x = torch.randn(B, steps, D, generator=g, dtype=torch.float64)
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
    dh = torch.randn(B, steps, H, generator=g, dtype=torch.float64)
    params = [(0.5 * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_()
              for s in ((H, D), (H, H), (H,))]
    h0_ref = h0.clone().requires_grad_()
    h, out = h0_ref, []
    for t in range(steps):
        h = torch.tanh(x[:, t] @ params[0].T + h @ params[1].T + params[2])
        out.append(h)
    torch.autograd.backward(torch.stack(out, 1), dh)
    reference = [p.grad.clone() for p in params] + [h0_ref.grad]
    for p in params:
        p.grad = None
    solved = dp.table(steps, slots)
    dh0, counts = checkpoint_policy.policy_backward(x, h0, *params, dh, slots, dp.dp_plan(solved))
    for got, ref in zip([p.grad for p in params] + [dh0], reference):
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    assert counts.forward_steps == solved.cost[steps, slots] and counts.peak_slots <= slots
