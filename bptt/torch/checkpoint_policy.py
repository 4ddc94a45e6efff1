"""BPTT in torch that follows a checkpoint schedule of :mod:`bptt.checkpoint_dp`
(The memory of BPTT, optimally).

Forward steps run under ``torch.no_grad()`` and keep only the hidden states the schedule
stores; each backward step rebuilds the graph of its one step from the stored h_{k-1} and
backpropagates through it. Autograd's saved tensors are what the cost model calls the internal
state, so this is the ``"hidden"`` model (BPTT-HSM): every step is run forward once more right
before its backward, and the forward steps are C(T, m) of eq. `dp-recursion`.
"""

from __future__ import annotations

import torch

from bptt import checkpoint_dp as dp


def _step(x_t, h_prev, W_xh, W_hh, b):
    return torch.tanh(x_t @ W_xh.T + h_prev @ W_hh.T + b)


def policy_backward(x: torch.Tensor, h0: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor,
                    b: torch.Tensor, dh: torch.Tensor, slots: int, plan: dp.Plan):
    """Gradients of sum_t dh_t . h_t for the tanh RNN, with at most ``slots`` stored states.

    Shapes: x (B, T, D), h0 (B, H), W_xh (H, D), W_hh (H, H), b (H,), dh (B, T, H). The
    parameters need ``requires_grad``; their ``.grad`` is accumulated as by ``backward()``.
    Returns ``(dh0, counts)`` with dh0 (B, H) and the :class:`bptt.checkpoint_dp.Counts`.
    """
    for name, p in (("W_xh", W_xh), ("W_hh", W_hh), ("b", b)):
        if not (isinstance(p, torch.Tensor) and p.requires_grad):
            raise ValueError(f"{name}: expected a tensor with requires_grad=True")
    if x.dim() != 3 or dh.shape != (x.shape[0], x.shape[1], W_hh.shape[0]):
        raise ValueError(f"dh: expected shape (B, T, H) = {(x.shape[0], x.shape[1], W_hh.shape[0])}, "
                         f"got {tuple(dh.shape)}")
    steps = x.shape[1]
    stored = {0: h0.detach()}
    working: dict[int, torch.Tensor] = {}
    carry = torch.zeros_like(h0)
    forward = backward = 0
    peak = 1

    def state(k):
        return stored[k] if k in stored else working[k]

    for op, k in dp.schedule(steps, slots, plan, model="hidden"):
        if op == "forward":
            with torch.no_grad():
                h_k = _step(x[:, k - 1], state(k - 1), W_xh, W_hh, b)
            working = {j: h for j, h in working.items() if j == k - 1}
            working[k] = h_k
            forward += 1
        elif op == "store":
            stored[k] = working[k]
            peak = max(peak, len(stored))
        elif op == "free":
            del stored[k]
        else:  # the step's graph, rebuilt from h_{k-1}, is its internal state
            h_prev = state(k - 1).detach().requires_grad_(True)
            h_k = _step(x[:, k - 1], h_prev, W_xh, W_hh, b)
            h_k.backward(dh[:, k - 1] + carry)
            carry = h_prev.grad
            backward += 1
    return carry, dp.Counts(forward, backward, peak)
