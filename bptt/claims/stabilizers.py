"""Claims of the chapter *Other stabilizers*, one predicate each.

Each function measures one asserted claim on numbers the chapter computed and returns a
:class:`~bptt.claims.gated.Verdict`; ``tests/test_claims_stabilizers.py`` runs the same
function on a world where the claim is false (``@pytest.mark.negative_control``).
"""

from __future__ import annotations

import numpy as np

from bptt.claims.gated import Verdict, relative_error_below, successes

__all__ = ["Verdict", "flow_ordering", "omega_ranks_flow", "relative_error_below",
           "slope_scale_invariant", "solved", "successes"]


def flow_ordering(ratio: dict, *, irnn_min: float = 1e-2, orthogonal_min: float = 1e-3,
                  factor: float = 1e-3) -> Verdict:
    """At initialisation the gradient reaching the first symbol ranks the initialisations:
    IRNN above ``irnn_min``, orthogonal above ``orthogonal_min``, and the default below
    ``factor`` times both. ``ratio`` maps "default", "orthogonal", "IRNN" to the ratio
    ||dL/dh_{T-L}|| / ||dL/dh_T||."""
    d, o, i = (float(ratio[k]) for k in ("default", "orthogonal", "IRNN"))
    holds = i > irnn_min and o > orthogonal_min and d < factor * min(i, o)
    return Verdict(holds, {"default": d, "orthogonal": o, "IRNN": i,
                           "margin": min(i, o) / d if d > 0 else np.inf})


def omega_ranks_flow(omega: dict, ratio: dict, names=("IRNN", "orthogonal", "default")) -> Verdict:
    """Omega is smallest where the gradient flows best: over ``names``, sorting by Omega
    ascending gives the same order as sorting by the ratio at distance L descending."""
    by_omega = sorted(names, key=lambda n: omega[n])
    by_flow = sorted(names, key=lambda n: -ratio[n])
    return Verdict(by_omega == by_flow, {"by_omega": by_omega, "by_flow": by_flow})


def slope_scale_invariant(slope_1: float, slope_10: float, *, tol: float = 0.05) -> Verdict:
    """The mean tanh slope does not depend on the input scale: the slopes at 1x and 10x
    inputs differ by at most ``tol``."""
    diff = abs(float(slope_10) - float(slope_1))
    return Verdict(diff <= tol, {"difference": diff, "tol": tol})


def solved(final_losses, threshold: float) -> Verdict:
    """Which seeds solved the recall task: final cross-entropy below ``threshold`` (fixed
    before the run). Same as :func:`bptt.claims.gated.successes`."""
    return successes(final_losses, threshold)


def penalty_keeps_gradient(omega_plain, omega_penalised, ratio_penalised, *, factor: float = 5.0,
                           min_ratio: float = 0.1) -> Verdict:
    """Training with the penalty keeps the gradient: on every seed Omega after training is at
    least ``factor`` times smaller than without the penalty, and the ratio
    ||dL/dh_{T-L}|| / ||dL/dh_T|| is above ``min_ratio``. Arrays (S,)."""
    plain = np.asarray(omega_plain, dtype=float)
    pen = np.asarray(omega_penalised, dtype=float)
    ratio = np.asarray(ratio_penalised, dtype=float)
    holds = bool(np.all(pen < plain / factor) and np.all(ratio > min_ratio))
    return Verdict(holds, {"smallest_omega_reduction": float(np.min(plain / pen)),
                           "smallest_ratio": float(np.min(ratio))})
