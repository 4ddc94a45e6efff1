"""Helpers shared by the tests of ``bptt.torch``: float64 gradients, finite differences, and
an optimizer that records the gradient of every update."""

from __future__ import annotations

import numpy as np
import torch

from bptt import gradcheck

F64 = torch.float64
TOL = 1e-10  # the course's bar for two float64 gradients of the same quantity


def randn(*shape, seed: int = 0, requires_grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=F64).requires_grad_(requires_grad)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / max(||a||, ||b||) (bptt.gradcheck.relative_error on float64 copies)."""
    return gradcheck.relative_error(
        a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()
    )


def max_rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b)
    return max(rel(x, y) for x, y in zip(a, b))


def finite_difference(loss_of, param: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Centred differences of the float ``loss_of()`` with respect to ``param``'s entries."""
    original = param.detach().clone()

    def f(values: np.ndarray) -> float:
        with torch.no_grad():
            param.copy_(torch.from_numpy(values))
            return float(loss_of())

    try:
        grad = gradcheck.numerical_gradient(f, original.numpy(), eps=eps)
    finally:
        with torch.no_grad():
            param.copy_(original)
    return torch.from_numpy(grad)


class RecordingSGD(torch.optim.SGD):
    """Plain SGD that keeps a copy of every update's gradients (zeros for a missing grad)."""

    def __init__(self, params, lr: float = 0.0):
        super().__init__(params, lr=lr)
        self.grads: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        self.grads.append(
            [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        )
        return super().step(closure)
