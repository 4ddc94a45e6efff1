"""Claims of "Learning online without unrolling: RTRL, UORO and influence balancing", as predicates.

The chapter asserts ``.holds`` and prints ``.detail``; ``tests/test_claims_online.py`` runs the
same functions on worlds where each claim is false (``negative_control``).
"""

from __future__ import annotations

import math

import numpy as np

from bptt.claims._verdict import MarginVerdict as Verdict


def leading_power(count, power: int, *, size: int = 4096, tol: float = 0.05) -> Verdict:
    """``count(H)`` grows like H^``power``: log2(count(2 size) / count(size)) is within ``tol``
    of ``power`` (so the neighbouring powers are excluded). ``count`` maps H to an exact count."""
    slope = math.log2(count(2 * size) / count(size))
    return Verdict(abs(slope - power) <= tol, tol - abs(slope - power),
                   f"log2 count(2H)/count(H) = {slope:.4f} at H = {size} (claim {power} +- {tol})")


def unbiased(estimates: np.ndarray, exact: np.ndarray, sizes, *, band=(0.2, 5.0)) -> Verdict:
    """The running mean of the first N ``estimates`` (draws, P) is within its confidence
    interval of ``exact`` (P,) for every N in ``sizes``, and so shrinks like 1/sqrt(N): the
    normalised squared error N ||mean_N - exact||^2 / tr(Cov) stays inside ``band`` (its
    expectation is 1 for an unbiased estimator; a bias makes it grow like N)."""
    estimates = np.asarray(estimates, float)
    exact = np.asarray(exact, float)
    trace = float(estimates.var(axis=0).sum())
    scores = []
    for n in sizes:
        err = estimates[:n].mean(axis=0) - exact
        scores.append(n * float(err @ err) / trace)
    low, high = band
    holds = all(low <= s <= high for s in scores)
    margin = min(min(s - low, high - s) for s in scores)
    return Verdict(holds, float(margin), "N ||mean - exact||^2 / tr(Cov) = " +
                   ", ".join(f"{s:.3g} (N = {n})" for n, s in zip(sizes, scores)) +
                   f"; band {band}")


def smaller(value: float, reference: float, *, factor: float = 1.0, what: str = "variance") -> Verdict:
    """``value`` < ``factor`` x ``reference`` (e.g. the rescaled UORO variance against the
    unrescaled one)."""
    return Verdict(bool(value < factor * reference), float(factor * reference - value),
                   f"{what} {value:.4g} vs {factor:g} x {reference:.4g}")


def first_right_sign(values, true_value: float, claimed: int) -> Verdict:
    """K = ``claimed`` is the smallest K with sign(values[K-1]) = sign(true_value): every
    smaller K has the opposite sign. ``values``: a sensitivity for K = 1, 2, ..."""
    values = np.asarray(values, float)
    right = np.sign(values) == np.sign(true_value)
    first = int(np.argmax(right)) + 1 if right.any() else None
    return Verdict(first == claimed, 0.0 if first == claimed else -1.0,
                   f"first K with the right sign: {first} (claimed {claimed})")


def outcome_rates(final_theta, theta_star: float, *, converged: float = 0.05,
                  diverged: float = 1.0) -> tuple[float, float]:
    """(fraction of runs within ``converged`` relative error of theta*, fraction further than
    ``diverged`` or not finite)."""
    theta = np.asarray(final_theta, float)
    err = np.abs(theta - theta_star) / abs(theta_star)
    bad = ~np.isfinite(err) | (err > diverged)
    return float(np.mean(np.isfinite(err) & (err < converged))), float(np.mean(bad))


def converges(final_theta, theta_star: float, *, fraction: float = 0.9, tol: float = 0.05) -> Verdict:
    """At least ``fraction`` of the runs end within ``tol`` relative error of theta*."""
    rate, _ = outcome_rates(final_theta, theta_star, converged=tol)
    return Verdict(rate >= fraction, rate - fraction, f"{rate:.0%} of runs within {tol:.0%} of theta* (claim >= {fraction:.0%})")


def diverges(final_theta, theta_star: float, *, fraction: float = 1.0) -> Verdict:
    """At least ``fraction`` of the runs end more than 100 % away from theta* (or overflow)."""
    _, rate = outcome_rates(final_theta, theta_star)
    return Verdict(rate >= fraction, rate - fraction, f"{rate:.0%} of runs diverged (claim >= {fraction:.0%})")
