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
