"""Claims of "BPTT from scratch in numpy": the learning predicate, and negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.claims.bptt_numpy import learns_beyond_opponent

BASELINE = 0.375


def test_the_claim_holds_when_every_model_seed_succeeds_and_no_opponent_does():
    result = learns_beyond_opponent(
        [0.002, 0.001, 0.0019, 0.0026, 0.0024], [0.17, 0.09, 0.12, 0.15, 0.1], BASELINE
    )
    assert result.holds and result.model_successes == 5 and result.opponent_successes == 0
    assert result.margin == pytest.approx(0.09 / 0.0026)


@pytest.mark.negative_control
def test_fails_when_the_opponent_learns_too():
    # a world without the need for memory (delay 0): the cut gradient learns as well
    result = learns_beyond_opponent([0.001] * 5, [0.001, 0.002, 0.5, 0.4, 0.3], BASELINE)
    assert not result.holds


@pytest.mark.negative_control
def test_fails_when_one_model_seed_misses_the_criterion():
    result = learns_beyond_opponent([0.001, 0.001, 0.001, 0.001, 0.03], [0.3] * 5, BASELINE)
    assert not result.holds


@pytest.mark.negative_control
def test_fails_with_fewer_than_five_seeds():
    assert not learns_beyond_opponent([0.001] * 4, [0.3] * 4, BASELINE).holds


def test_validates_its_input():
    with pytest.raises(ValueError, match="opponent_losses"):
        learns_beyond_opponent(np.ones(5), np.ones(4), BASELINE)
