"""Claims of "Recurrence and the unrolled graph" (and the paths of "The chain rule through time").

- :func:`sum_of_parts`: a gradient of tied weights is the sum of its per-step (or per-path)
  contributions, and no single contribution is the whole gradient (eq. ``tied-weights-sum``,
  eq. ``total-derivative-paths``);
- :func:`linear_growth`: the memory autograd keeps for the backward pass grows by the same
  number of bytes for every extra time step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v
from bptt.gradcheck import relative_error


@dataclasses.dataclass(frozen=True)
class SumOfParts:
    """``error``: relative error of the summed parts against the total; ``closest``: the
    smallest relative error of one part alone against the total."""

    error: float
    closest: float
    tol: float
    apart: float

    @property
    def holds(self) -> bool:
        return self.error < self.tol and self.closest > self.apart


def sum_of_parts(parts, total, *, tol: float = 1e-12, apart: float = 1e-3) -> SumOfParts:
    """Do ``parts`` (a sequence of arrays shaped like ``total``) add up to ``total``?

    Holds when the relative error of their sum is below ``tol`` and every single part differs
    from ``total`` by a relative error above ``apart`` (no part is the gradient on its own).
    """
    parts = [np.asarray(p, dtype=np.float64) for p in parts]
    if not parts:
        raise ValueError("parts: expected at least one array, got an empty sequence")
    total = np.asarray(total, dtype=np.float64)
    tol, apart = v.positive_float("tol", tol), v.positive_float("apart", apart)
    error = relative_error(np.sum(parts, axis=0), total)
    closest = min(relative_error(p, total) for p in parts)
    return SumOfParts(error, closest, tol, apart)


@dataclasses.dataclass(frozen=True)
class LinearGrowth:
    """``increments``: bytes added per extra step between consecutive lengths."""

    increments: np.ndarray

    @property
    def per_step(self) -> float:
        return float(self.increments[0])

    @property
    def holds(self) -> bool:
        return bool(self.per_step > 0 and np.all(self.increments == self.per_step))


def linear_growth(lengths, sizes) -> LinearGrowth:
    """Do ``sizes`` (exact byte counts) grow by exactly the same amount per step of ``lengths``?

    lengths, sizes : (N,) with N >= 3 and increasing lengths. Holds when every increment
    (difference of sizes over difference of lengths) equals the first one, and it is > 0.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    if lengths.ndim != 1 or lengths.shape != sizes.shape or lengths.size < 3:
        raise ValueError(
            f"lengths, sizes: expected two (N,) arrays with N >= 3, got shapes "
            f"{lengths.shape} and {sizes.shape}"
        )
    if not np.all(np.diff(lengths) > 0):
        raise ValueError(f"lengths: expected increasing values, got {lengths}")
    return LinearGrowth(np.diff(sizes) / np.diff(lengths))
