"""The claims of the chapters "Vanishing and exploding gradients" and "Eigenvalues and the
power of W", one predicate each.

* :func:`geometric_decay` - a sequence of gradient shares falls at every step and, fitted on a
  log scale, by a factor below ``max_factor`` per unit of distance (eq. `vanishing-scalar-law`);
* :func:`transient_growth` - the sandwich rho^k <= ||W^k|| <= sigma_max^k holds at every power
  and ||W^k|| rises above ``min_peak`` before it decays (eq. `eigen-jordan`).

The chapters call these on their measurements; ``tests/test_claims_vanishing.py`` shows that
each fails on a world where its claim is false.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v


@dataclasses.dataclass(frozen=True)
class DecayResult:
    holds: bool
    factor: float  # fitted factor per unit of distance


def geometric_decay(distances, values, *, max_factor: float = 0.9) -> DecayResult:
    """Do ``values`` (positive, (N,)) fall at every step of ``distances`` ((N,), increasing),
    with a fitted per-unit factor exp(slope of log(values) against distances) below
    ``max_factor``?"""
    d = np.asarray(distances, dtype=float)
    y = np.asarray(values, dtype=float)
    if d.ndim != 1 or d.shape != y.shape or d.size < 2:
        raise ValueError(
            f"distances, values: expected two (N,) arrays with N >= 2, got "
            f"shapes {d.shape} and {y.shape}"
        )
    if np.any(np.diff(d) <= 0):
        raise ValueError(f"distances: expected strictly increasing values, got {d.tolist()}")
    if np.any(~(y > 0)) or not np.all(np.isfinite(y)):
        raise ValueError(f"values: expected positive finite numbers, got {y.tolist()}")
    max_factor = v.positive_float("max_factor", max_factor)
    factor = float(np.exp(np.polyfit(d, np.log(y), 1)[0]))
    return DecayResult(bool(np.all(np.diff(np.log(y)) < 0) and factor < max_factor), factor)


@dataclasses.dataclass(frozen=True)
class TransientResult:
    holds: bool
    peak: float
    peak_power: int


def transient_growth(
    power_norms, rho: float, sigma: float, *, min_peak: float = 10.0, rtol: float = 1e-9
) -> TransientResult:
    """``power_norms[k] = ||W^k||_2`` for k = 0..K: does rho^k <= ||W^k|| <= sigma^k hold at
    every k (within ``rtol``), with a peak above ``min_peak`` and a lower last value?"""
    norms = np.asarray(power_norms, dtype=float)
    if norms.ndim != 1 or norms.size < 2:
        raise ValueError(
            f"power_norms: expected a (K+1,) array with K >= 1, got shape {norms.shape}"
        )
    rho = v.positive_float("rho", rho)
    sigma = v.positive_float("sigma", sigma)
    k = np.arange(norms.size)
    sandwich = np.all(rho**k <= norms * (1 + rtol)) and np.all(norms <= sigma**k * (1 + rtol))
    peak_power = int(np.argmax(norms))
    peak = float(norms[peak_power])
    holds = bool(sandwich and peak > min_peak and norms[-1] < peak)
    return TransientResult(holds, peak, peak_power)
