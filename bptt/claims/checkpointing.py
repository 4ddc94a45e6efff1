"""Claims of "The memory of BPTT, optimally: checkpointing by dynamic programming", as predicates.

The chapter asserts each ``.holds`` and prints ``.detail``; ``tests/test_claims_checkpointing.py``
runs the same functions on worlds where the claims are false (``negative_control``).
"""

from __future__ import annotations

import numpy as np

from bptt.claims._verdict import MarginVerdict as Verdict


def same_gradient(grads: dict, reference: dict, *, bitwise: bool = True, tol: float = 1e-12) -> Verdict:
    """Every gradient of ``grads`` equals ``reference``: bit for bit (``bitwise``), or to a
    relative max error ``tol``."""
    worst = 0.0
    for key, ref in reference.items():
        ref = np.asarray(ref)
        got = np.asarray(grads[key])
        if bitwise and not np.array_equal(got, ref):
            err = float(np.abs(got - ref).max() / max(1e-300, float(np.abs(ref).max())))
            return Verdict(False, -err, f"{key} differs (relative max error {err:.2e}), not bitwise equal")
        worst = max(worst, float(np.abs(got - ref).max() / max(1e-300, float(np.abs(ref).max()))))
    if bitwise:
        return Verdict(True, 0.0, "every gradient bitwise equal to full BPTT")
    return Verdict(worst <= tol, tol - worst, f"relative max error {worst:.2e} (tolerance {tol:g})")


def never_worse(dp_cost: int, other_costs: dict) -> Verdict:
    """The DP's forward count is at most that of every other plan with the same memory."""
    worst_name = min(other_costs, key=other_costs.get)
    margin = float(other_costs[worst_name] - dp_cost)
    return Verdict(margin >= 0, margin,
                   f"DP {dp_cost} forward steps; best other plan {worst_name} {other_costs[worst_name]}")


def headline(forward: int, steps: int, slots: int, *, backward_cost: float = 2.0,
             memory_saved: float = 0.95, extra_time: float = 1.0 / 3.0, tol: float = 0.01) -> Verdict:
    """"Saves ``memory_saved`` of the memory for at most ``extra_time`` more time" under the
    cost model (forward step 1, backward step ``backward_cost``; full BPTT stores T states).
    ``tol`` is the slack on the time ratio (the abstract rounds to a third)."""
    saved = 1.0 - slots / steps
    ratio = (forward + backward_cost * steps) / ((1.0 + backward_cost) * steps)
    holds = bool(saved >= memory_saved - 1e-12 and ratio <= 1.0 + extra_time + tol)
    return Verdict(holds, float(1.0 + extra_time + tol - ratio),
                   f"memory saved {saved:.1%} (claim {memory_saved:.0%}); time ratio {ratio:.4f} "
                   f"(claim <= {1 + extra_time:.4f} + {tol:g})")


def memory_fraction_below(measured: int, full: int, bound: float) -> Verdict:
    """A schedule holds at most ``bound`` of full BPTT's memory (bytes, measured)."""
    fraction = measured / full
    return Verdict(fraction <= bound, bound - fraction,
                   f"{measured} of {full} bytes = {fraction:.1%} (claim <= {bound:.0%})")
