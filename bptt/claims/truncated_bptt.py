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
