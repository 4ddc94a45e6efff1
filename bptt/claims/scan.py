"""Claims of "Recurrences in parallel: the associative scan", as predicates.

Each function takes what the chapter measured and returns a :class:`Verdict` that says whether
the claim holds and by what margin; the chapter asserts ``verdict.holds`` and prints the
margin, and ``tests/test_claims_scan.py`` runs the same function on a world where the claim is
false (``@pytest.mark.negative_control``).
"""

from __future__ import annotations

import math

import numpy as np

from bptt.claims._verdict import MarginVerdict as Verdict


def matches_sequential(h_scan: np.ndarray, h_loop: np.ndarray, *, tol: float = 1e-12) -> Verdict:
    """The scan's states equal the loop's: max |h_scan - h_loop| / max(1, max |h_loop|) <= tol."""
    h_scan, h_loop = np.asarray(h_scan), np.asarray(h_loop)
    if h_scan.shape != h_loop.shape:
        return Verdict(False, -math.inf, f"shapes differ: {h_scan.shape} vs {h_loop.shape}")
    error = float(np.abs(h_scan - h_loop).max() / max(1.0, float(np.abs(h_loop).max())))
    return Verdict(error <= tol, tol - error, f"relative max error {error:.2e} (tolerance {tol:g})")


def logarithmic_rounds(steps, rounds_per_sweep) -> Verdict:
    """Every sweep takes exactly ceil(log2 T) rounds, for every T measured (T >= 1)."""
    steps = [int(t) for t in steps]
    expected = [math.ceil(math.log2(t)) if t > 1 else 0 for t in steps]
    wrong = [(t, r, e) for t, r, e in zip(steps, rounds_per_sweep, expected) if int(r) != e]
    worst = max((int(r) - e for _, r, e in wrong), default=0)
    detail = "rounds = ceil(log2 T) for every T" if not wrong else \
        f"{len(wrong)} lengths off, e.g. T = {wrong[0][0]}: {wrong[0][1]} rounds, expected {wrong[0][2]}"
    return Verdict(not wrong, -float(worst), detail)


def carries_gradient(linear_norms: np.ndarray, tanh_norms: np.ndarray, distance: int, *,
                     floor: float = 1e-2, vanish: float = 1e-6) -> Verdict:
    """At ``distance`` steps the linear recurrence keeps ||dL/dh|| / ||dL/dh_T|| >= ``floor`` on
    every seed while the tanh RNN's is below ``vanish`` on every seed.

    ``linear_norms``, ``tanh_norms`` (seeds, T + 1): gradient norms by distance, column 0 the
    last step (:func:`bptt.jacobians.gradient_norms_by_distance`). The margin is the number of
    decades between the smallest linear ratio and the largest tanh ratio.
    """
    lin = np.asarray(linear_norms, float)
    tan = np.asarray(tanh_norms, float)
    lin_ratio = lin[:, distance] / lin[:, 0]
    tan_ratio = tan[:, distance] / tan[:, 0]
    holds = bool(lin_ratio.min() >= floor and tan_ratio.max() <= vanish)
    margin = float(np.log10(lin_ratio.min()) - np.log10(max(tan_ratio.max(), 1e-300)))
    detail = (f"at distance {distance}: linear ratio >= {lin_ratio.min():.3g} (floor {floor:g}), "
              f"tanh ratio <= {tan_ratio.max():.3g} (vanish {vanish:g})")
    return Verdict(holds, margin, detail)


def linear_no_better_than_mean(mse_linear: float, mse_mean: float, mse_nonlinear: float, *,
                               tol: float = 0.05, success: float = 0.5) -> Verdict:
    """On the test set, the best linear read-out of the linear recurrence is within ``tol``
    (relative) of the mean predictor, while a nonlinear read-out of the same states reaches
    below ``success`` times the mean predictor's error. The margin is the smaller of the two
    slacks, in units of the mean predictor's MSE."""
    gain_linear = 1.0 - mse_linear / mse_mean       # ~0 when linear cannot beat the mean
    gain_nonlinear = 1.0 - mse_nonlinear / mse_mean  # near 1 when the nonlinear read-out solves it
    holds = bool(gain_linear <= tol and mse_nonlinear <= success * mse_mean)
    margin = float(min(tol - gain_linear, success - mse_nonlinear / mse_mean))
    detail = (f"linear read-out gains {gain_linear:+.3f} of the mean predictor's MSE (at most {tol:g}); "
              f"nonlinear read-out gains {gain_nonlinear:+.3f} (needs MSE <= {success:g} x mean)")
    return Verdict(holds, margin, detail)
