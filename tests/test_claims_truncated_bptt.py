"""Claims of "Truncated BPTT": the carried-versus-reset predicate and its negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.claims.truncated_bptt import (
    carrying_is_needed_on_most_seeds,
    carrying_the_state_is_needed,
)

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


def test_the_claim_over_seeds_counts_the_seeds_that_hold():
    result = carrying_is_needed_on_most_seeds([CARRIED] * 5, [RESET] * 4 + [CARRIED], 4, CHANCE,
                                              min_successes=4)
    assert result.holds and result.successes == 4
    assert [r.holds for r in result.per_seed] == [True] * 4 + [False]


@pytest.mark.negative_control
def test_negative_control_over_seeds_fails_when_too_few_seeds_hold():
    # Two seeds where resetting costs nothing, one where the carried model did not learn.
    carried = [CARRIED, CARRIED, CARRIED, RESET, CARRIED]
    reset = [RESET, CARRIED, CARRIED, RESET, RESET]
    result = carrying_is_needed_on_most_seeds(carried, reset, 4, CHANCE, min_successes=4)
    assert not result.holds and result.successes == 2
    with pytest.raises(ValueError, match="min_successes"):
        carrying_is_needed_on_most_seeds([CARRIED], [RESET], 4, CHANCE, min_successes=2)
    with pytest.raises(ValueError, match="one pair of curves per seed"):
        carrying_is_needed_on_most_seeds([CARRIED] * 2, [RESET], 4, CHANCE, min_successes=1)
