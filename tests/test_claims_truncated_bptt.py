"""Claims of "Truncated BPTT": the carried-versus-reset predicate and its negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.claims.truncated_bptt import carrying_the_state_is_needed

CHANCE = np.log(8)
CARRIED = np.full(10, 0.13)
RESET = np.array([2.08, 2.09, 2.13, 2.25, 0.37, 0.34, 0.24, 0.18, 0.23, 0.52])


def test_the_chapter_world_satisfies_the_claim():
    assert carrying_the_state_is_needed(CARRIED, RESET, 4, CHANCE).holds


@pytest.mark.negative_control
def test_negative_control_fails_when_reset_costs_nothing_or_carrying_does_not_learn():
    assert not carrying_the_state_is_needed(CARRIED, CARRIED, 4, CHANCE).holds  # reset harmless
    assert not carrying_the_state_is_needed(RESET, RESET, 4, CHANCE).holds  # carried not learned
    with pytest.raises(ValueError, match="curve_carried"):
        carrying_the_state_is_needed(CARRIED[:3], RESET[:3], 4, CHANCE)
