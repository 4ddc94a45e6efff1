"""Claims of "Truncated BPTT": the predicate of the carried-versus-reset check.

``tests/test_claims_truncated_bptt.py`` runs it on worlds where the claim is false
(``@pytest.mark.negative_control``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bptt import _validate as v


class CarryResult(NamedTuple):
    """``reset_first``: the lowest loss of the reset model over the first ``lag`` positions,
    as a fraction of chance; ``carried_worst``: the highest loss of the carried model over all
    positions, as a fraction of chance; ``holds``: reset_first > 0.9 and carried_worst < 0.3."""

    reset_first: float
    carried_worst: float
    holds: bool


def carrying_the_state_is_needed(curve_carried, curve_reset, lag: int, chance: float) -> CarryResult:
    """Claim: with the state reset every chunk, the first ``lag`` positions of a chunk stay at
    chance level (above 0.9 x ``chance``); with it carried, every position is learned (below
    0.3 x chance). ``curve_*``: (k,) test losses by position in the chunk."""
    lag = v.integer("lag", lag, minimum=1)
    chance = v.positive_float("chance", chance)
    carried = np.asarray(curve_carried, dtype=float)
    reset = np.asarray(curve_reset, dtype=float)
    if carried.ndim != 1 or carried.shape != reset.shape or carried.size <= lag:
        raise ValueError(f"curve_carried, curve_reset: expected two (k,) curves with k > lag = "
                         f"{lag}, got shapes {carried.shape} and {reset.shape}")
    reset_first = float(reset[:lag].min() / chance)
    carried_worst = float(carried.max() / chance)
    return CarryResult(reset_first, carried_worst, reset_first > 0.9 and carried_worst < 0.3)


class SeedsResult(NamedTuple):
    """``per_seed``: the :class:`CarryResult` of every seed; ``successes``: how many hold;
    ``holds``: successes >= ``min_successes``."""

    per_seed: tuple
    successes: int
    holds: bool


def carrying_is_needed_on_most_seeds(
    curves_carried, curves_reset, lag: int, chance: float, *, min_successes: int
) -> SeedsResult:
    """Claim over seeds: :func:`carrying_the_state_is_needed` holds on at least
    ``min_successes`` of the seeds (the criterion fixed before the runs).

    ``curves_carried``, ``curves_reset``: sequences of (k,) curves, one pair per seed.
    """
    carried, reset = list(curves_carried), list(curves_reset)
    if not carried or len(carried) != len(reset):
        raise ValueError(f"curves_carried, curves_reset: expected one pair of curves per seed, "
                         f"got {len(carried)} and {len(reset)}")
    min_successes = v.integer("min_successes", min_successes, minimum=1)
    if min_successes > len(carried):
        raise ValueError(f"min_successes: expected at most {len(carried)} (the number of seeds), "
                         f"got {min_successes}")
    per_seed = tuple(carrying_the_state_is_needed(c, r, lag, chance) for c, r in zip(carried, reset))
    successes = sum(r.holds for r in per_seed)
    return SeedsResult(per_seed, successes, successes >= min_successes)
