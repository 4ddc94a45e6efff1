"""Claims of "The cost of BPTT": laws on exact counts, the recomputation of checkpointing."""

from __future__ import annotations

import pytest
import torch

from bptt.claims import cost_of_bptt as claims
from bptt.torch import SequenceRegressor, checkpointed_loss
from bptt.torch.flops import flop_count

SIZES = [16, 32, 64, 128]


def test_power_law_on_exact_counts():
    assert claims.follows_power_law(SIZES, [12 * n * n for n in SIZES], 2).holds
    with pytest.raises(ValueError, match="band"):
        claims.follows_power_law(SIZES, SIZES, 1, band=0.6)


@pytest.mark.negative_control
def test_negative_control_neighbouring_laws_and_a_fitted_1_65_fail():
    assert not claims.follows_power_law(SIZES, [n**3 for n in SIZES], 2).holds  # cubic world
    assert not claims.follows_power_law(SIZES, [n for n in SIZES], 2).holds  # linear world
    assert not claims.follows_power_law(SIZES, [n**1.65 for n in SIZES], 2).holds


def _model_and_data():
    model = SequenceRegressor(3, 8, 1, readout="all", seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 12, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, 12, 1, generator=g, dtype=torch.float64)
    return model, x, y


def _ops(model, x, y, checkpoint, backward=True):
    def run():
        loss, _ = checkpointed_loss(model, x, y, loss_fn=torch.nn.functional.mse_loss,
                                    segment=4, use_checkpoint=checkpoint)
        if backward:
            loss.backward()
    return flop_count(run)


def test_checkpointing_recomputes_exactly_one_forward():
    model, x, y = _model_and_data()
    result = claims.recomputes_one_forward(_ops(model, x, y, False), _ops(model, x, y, True),
                                           _ops(model, x, y, False, backward=False))
    assert result.holds and 1 < result.ratio < 2


@pytest.mark.negative_control
def test_negative_control_plain_bptt_recomputes_nothing():
    """Without checkpoints there is no recomputation: the predicate must fail."""
    model, x, y = _model_and_data()
    plain = _ops(model, x, y, False)
    assert not claims.recomputes_one_forward(plain, plain,
                                             _ops(model, x, y, False, backward=False)).holds


def test_flop_count_rejects_a_non_callable():
    with pytest.raises(TypeError, match="fn: expected a callable"):
        flop_count(3)
