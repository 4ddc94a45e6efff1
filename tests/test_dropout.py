"""Dropout for recurrent networks: masks, modes of CharLM, and their errors."""

from __future__ import annotations

import pytest
import torch

from bptt.torch import CharLM, RecurrentLayer
from bptt.torch.dropout import DROPOUT_MODES, SequenceDropout, check_dropout_p, dropout_mask


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("tied", [False, True])
def test_mask_shape_values_and_expectation(tied):
    p = 0.3
    mask = dropout_mask((64, 20, 50), p, tied=tied, generator=_gen())
    assert mask.shape == (64, 20, 50)
    values = torch.unique(mask).tolist()
    assert values == [0.0, pytest.approx(1 / (1 - p))]
    # E[mask] = 1: the mean of 64 * 50 (tied) or 64 * 20 * 50 independent entries
    assert abs(mask.mean().item() - 1.0) < 0.05
    assert abs((mask == 0).float().mean().item() - p) < 0.03


def test_tied_mask_is_the_same_at_every_step_and_fresh_masks_are_not():
    tied = dropout_mask((8, 12, 30), 0.5, tied=True, generator=_gen())
    assert torch.equal(tied, tied[:, :1].expand_as(tied))
    fresh = dropout_mask((8, 12, 30), 0.5, tied=False, generator=_gen())
    assert not torch.equal(fresh[:, 0], fresh[:, 1])
    # different sequences of the batch get different masks in both cases
    assert not torch.equal(tied[0, 0], tied[1, 0])


def test_masks_are_reproducible_from_the_generator():
    a = dropout_mask((4, 5, 6), 0.2, tied=False, generator=_gen(3))
    b = dropout_mask((4, 5, 6), 0.2, tied=False, generator=_gen(3))
    assert torch.equal(a, b)


def test_sequence_dropout_preserves_the_expectation_and_is_the_identity_in_eval_mode():
    layer = SequenceDropout(0.4, tied=True, generator=_gen())
    x = torch.full((2000, 3, 4), 2.0)
    y = layer(x)
    assert abs(y.mean().item() - 2.0) < 0.05
    assert torch.equal(y, y[:, :1].expand_as(y))  # tied: one mask per sequence
    layer.eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(SequenceDropout(0.0, tied=False)(x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_probabilities_outside_zero_one_are_refused(p):
    with pytest.raises(ValueError, match=r"p: expected a dropout probability in \[0, 1\)"):
        check_dropout_p(p)
    with pytest.raises(ValueError, match="p: expected"):
        dropout_mask((1, 2, 3), p, tied=True)
    with pytest.raises(ValueError, match="dropout: expected"):
        CharLM(5, 4, dropout=p, device="cpu")


def test_bad_arguments_name_the_argument():
    with pytest.raises(TypeError, match="p: expected"):
        check_dropout_p("0.5")
    with pytest.raises(ValueError, match="dropout_mode"):
        CharLM(5, 4, dropout=0.1, dropout_mode="gal", device="cpu")
    with pytest.raises(ValueError, match="dropout_mode"):
        CharLM(5, 4, dropout=0.1, dropout_mode="variational", cell="gru", device="cpu")
    with pytest.raises(ValueError, match="shape"):
        dropout_mask((2, 3), 0.1, tied=False)
    with pytest.raises(ValueError, match="x: expected"):
        SequenceDropout(0.1, tied=False)(torch.zeros(2, 3))
    layer = RecurrentLayer("lstm", 3, 4, device="cpu")
    with pytest.raises(ValueError, match=r"recurrent_mask: expected shape \(B, T, H\)"):
        layer(torch.zeros(2, 5, 3), recurrent_mask=torch.ones(2, 5, 3))
    with pytest.raises(ValueError, match="recurrent_mask"):
        RecurrentLayer("gru", 3, 4, device="cpu")(torch.zeros(2, 5, 3),
                                                  recurrent_mask=torch.ones(2, 5, 4))


@pytest.mark.parametrize("mode", DROPOUT_MODES)
def test_char_lm_dropout_is_off_in_eval_mode_and_random_in_training(mode):
    tokens = torch.randint(0, 11, (3, 9), generator=_gen())
    plain = CharLM(11, 8, embedding_dim=5, seed=1, device="cpu").eval()
    model = CharLM(11, 8, embedding_dim=5, seed=1, dropout=0.5, dropout_mode=mode,
                   device="cpu")
    model.eval()
    torch.testing.assert_close(model(tokens)[0], plain(tokens)[0])
    model.train()
    first, second = model(tokens)[0], model(tokens)[0]
    assert not torch.allclose(first, second)  # a new mask for every call
    assert not torch.allclose(first, plain(tokens)[0])


def test_recurrent_mask_multiplies_only_the_h_entering_w_hh():
    """With a recurrent mask of ones the explicit LSTM is unchanged; a zero mask cuts the
    recurrence through h but not the cell state."""
    torch.manual_seed(0)
    layer = RecurrentLayer("lstm", 3, 4, dtype=torch.float64, device="cpu")
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    plain, _ = layer(x)
    ones, _ = layer(x, recurrent_mask=torch.ones(2, 6, 4, dtype=torch.float64))
    torch.testing.assert_close(ones, plain)
    # zero mask: each step sees W_hh * 0, so h_t depends on h_{t-1} only through c_{t-1}
    zeros = torch.zeros(2, 6, 4, dtype=torch.float64)
    cut, _ = layer(x, recurrent_mask=zeros)
    no_whh = RecurrentLayer("lstm", 3, 4, dtype=torch.float64, device="cpu")
    no_whh.load_state_dict(layer.state_dict())
    with torch.no_grad():
        no_whh.core.weight_hh_l0.zero_()
    torch.testing.assert_close(cut, no_whh(x)[0])


def test_variational_mode_ties_the_recurrent_mask_across_steps():
    """The gradient of the loss with respect to W_hh, restricted to columns of dropped
    units, is exactly zero under the variational mode (the unit is dropped at every step)
    but not under fresh masks (dropped at some steps only)."""
    tokens = torch.randint(0, 7, (1, 30), generator=_gen(1))
    zero_columns = {}
    for mode in ("variational", "fresh"):
        model = CharLM(7, 16, embedding_dim=4, dropout=0.5, dropout_mode=mode, device="cpu")
        logits, _ = model(tokens)
        logits.square().mean().backward()
        grad = model.rnn.core.weight_hh_l0.grad  # (4H, H): column j multiplies h_{t-1, j}
        zero_columns[mode] = int((grad.abs().sum(dim=0) == 0).sum())
    assert zero_columns["variational"] > 0  # about half of the 16 units
    assert zero_columns["fresh"] == 0


def test_path_survival_follows_the_two_laws():
    from bptt.torch.dropout import path_survival

    p, T = 0.3, 12
    k = torch.arange(1, T + 1, dtype=torch.float64)
    tied = path_survival(dropout_mask((400, T, 50), p, tied=True, generator=_gen()))
    fresh = path_survival(dropout_mask((400, T, 50), p, tied=False, generator=_gen()))
    torch.testing.assert_close(tied, torch.full((T,), 1 - p, dtype=torch.float64), atol=0.01, rtol=0)
    torch.testing.assert_close(fresh, (1 - p) ** k, atol=0.01, rtol=0)
    with pytest.raises(ValueError, match="mask"):
        path_survival(torch.ones(3, 4))


@pytest.mark.negative_control
def test_fresh_masks_fail_the_law_of_tied_masks():
    """The chapter's check of the tied law fails on fresh masks (and the fresh law on tied)."""
    from bptt.torch.dropout import path_survival

    p, T = 0.3, 12
    k = torch.arange(1, T + 1, dtype=torch.float64)
    fresh = path_survival(dropout_mask((400, T, 50), p, tied=False, generator=_gen()))
    tied = path_survival(dropout_mask((400, T, 50), p, tied=True, generator=_gen()))
    with pytest.raises(AssertionError):
        torch.testing.assert_close(fresh, torch.full((T,), 1 - p, dtype=torch.float64),
                                   atol=0.01, rtol=0)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(tied, (1 - p) ** k, atol=0.01, rtol=0)
