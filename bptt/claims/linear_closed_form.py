"""Claims of "Closed-form gradients of a linear RNN".

- :func:`explicit_power_sum`: the closed form ``linear-power-sum`` evaluated the slowest,
  plainest way, one matrix power per term (``numpy.linalg.matrix_power``), as an independent
  reference for :func:`bptt.linear.hidden_gradients` and
  :func:`bptt.linear.hidden_gradients_power_sum`;
- :func:`forgotten_mean_factor`: a gradient computed without the 1/T of the mean loss is
  T times too large.

The agreement with autograd is :func:`bptt.claims.gradients.agreement`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v


def explicit_power_sum(do, W_hh, W_hy) -> np.ndarray:
    """bar h_t = sum_{s=t}^{T} (W_hh^T)^{s-t} W_hy^T bar o_s, one matrix power per term.

    do (B, T, Q) = bar o_t, W_hh (H, H), W_hy (Q, H) -> (B, T, H). O(B T^2 H^3 log T): only
    for checks on small sizes.
    """
    dims: v.Dims = {}
    do = v.float_array("do", do, ("B", "T", "Q"), dims)
    W_hh = v.float_array("W_hh", W_hh, ("H", "H"), dims)
    W_hy = v.float_array("W_hy", W_hy, ("Q", "H"), dims)
    batch, steps, _ = do.shape
    dh = np.zeros((batch, steps, W_hh.shape[0]))
    for n in range(batch):
        for t in range(steps):
            for s in range(t, steps):
                dh[n, t] += np.linalg.matrix_power(W_hh.T, s - t) @ W_hy.T @ do[n, s]
    return dh


@dataclasses.dataclass(frozen=True)
class Factor:
    """``factor``: ||without 1/T|| / ||with 1/T||; holds when it equals T (to 1e-12)."""

    factor: float
    steps: int

    @property
    def holds(self) -> bool:
        return abs(self.factor - self.steps) <= 1e-12 * self.steps


def forgotten_mean_factor(without, with_mean, steps: int) -> Factor:
    """How many times larger the gradient ``without`` the 1/T is than ``with_mean``."""
    steps = v.integer("steps", steps, minimum=1)
    return Factor(float(np.linalg.norm(without) / np.linalg.norm(with_mean)), steps)
