"""The predicates of the chapter *Teacher forcing, padded batches and both directions*: each holds
in a world where its claim is true and fails (negative control) in one where it is false."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bptt.claims import sequences as claims
from bptt.torch import sequences as sq


def _grads(loss, params):
    return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))


def test_teacher_forced_gradient_is_a_sum_of_step_gradients():
    x, y = sq.feedback_task([0, 3], 5, 7, 3, stay=0.8, noise=0.7, offset=1)
    net = sq.OutputFeedbackNet([0, 3], 3, 4, 3)
    loss = sq.step_cross_entropy(net.teacher_forced(x, y), y).mean((1, 2)).sum()
    assert claims.same_values(sq.per_step_gradients_sum(net, x, y), _grads(loss, net.params),
                              tol=1e-12)


@pytest.mark.negative_control
def test_step_gradient_sum_fails_with_a_differentiable_feedback():
    """Feeding back the softmax of the previous output (a path through time): the per-step sum
    with the true symbol fed in is no longer the gradient."""
    x, y = sq.feedback_task([0], 5, 7, 3, stay=0.8, noise=0.7, offset=1)
    net = sq.OutputFeedbackNet([0], 3, 4, 3)
    p = net.params
    prev = torch.zeros(1, 5, 3, dtype=x.dtype)
    total = 0.0
    for t in range(x.shape[2]):
        a = (torch.einsum("snd,shd->snh", x[:, :, t], p["W_xh"])
             + torch.einsum("snk,shk->snh", prev, p["W_yh"]) + p["b"][:, None])
        o = torch.einsum("snh,skh->snk", torch.tanh(a), p["W_hy"]) + p["b_y"][:, None]
        total = total + sq.step_cross_entropy(o, y[:, :, t]).mean() / x.shape[2]
        prev = torch.softmax(o, -1)
    assert not claims.same_values(sq.per_step_gradients_sum(net, x, y), _grads(total, p),
                                  tol=1e-6)


@pytest.mark.negative_control
def test_step_gradient_sum_fails_for_a_hidden_recurrence():
    x, y = sq.feedback_task([0], 5, 7, 3, stay=0.8, noise=0.7, offset=1)
    rnn = sq.SeedUniRNN([0], 3, 4, 3)

    def g(detach):
        loss = sq.step_cross_entropy(rnn.logits(x, detach=detach), y).mean()
        return _grads(loss, rnn.params)

    assert claims.differs(g(True), g(False), at_least=0.01)
    assert not claims.same_values(g(True), g(False), tol=1e-6)
    assert not claims.differs(g(False), g(False), at_least=1e-12)


def test_same_values_checks_keys_and_sizes():
    with pytest.raises(ValueError, match="keys"):
        claims.same_values({"a": np.ones(2)}, {"b": np.ones(2)})
    with pytest.raises(ValueError, match="numbers"):
        claims.same_values(np.ones(2), np.ones(3))
    assert claims.same_values(np.zeros(3), np.zeros(3))


def test_gap_and_paired_wins():
    assert claims.gap_on_every_seed([0.7, 0.6, 0.8], [0.3, 0.3, 0.3], margin=0.1)
    assert claims.paired_wins([0.5, 0.4, 0.5, 0.6, 0.5], [0.6, 0.6, 0.6, 0.6, 0.7], most=0.8)
    assert claims.paired_wins([0.9, 1.0], [0.8, 1.0], most=0.0, lower_is_better=False)


@pytest.mark.negative_control
def test_gap_fails_without_exposure_bias():
    """A feedback network that ignores what it is fed (W_yh = 0) has no exposure bias at all."""
    x, y = sq.feedback_task([0, 1], 50, 10, 3, stay=0.9, noise=0.8, offset=5)
    net = sq.OutputFeedbackNet([0, 1], 3, 8, 3)
    with torch.no_grad():
        net.params["W_yh"].zero_()
    run = sq.evaluate_feedback(net, x, y)
    assert not claims.gap_on_every_seed(run.free_loss, run.forced_loss, margin=0.0)
    assert not claims.gap_on_every_seed([0.7, 0.35], [0.3, 0.3], margin=0.1)


@pytest.mark.negative_control
def test_paired_wins_fails_when_the_remedy_does_not_help():
    control = np.array([0.6, 0.6, 0.6, 0.6, 0.7])
    assert not claims.paired_wins(control + 0.1, control, most=0.8)  # worse everywhere
    assert not claims.paired_wins(control - [0.1, 0.1, 0.1, -0.1, -0.1], control, most=0.8)
    assert not claims.paired_wins([0.59, 0.59, 0.59, 0.59, 1.5], control, most=0.8)  # mean worse
    assert not claims.paired_wins([0.8, 1.0], [0.9, 1.0], most=0.0, lower_is_better=False)


def test_opponent_predicates():
    assert claims.above_on_every_seed([1.0, 0.95], 0.6, margin=0.3)
    assert claims.not_above([0.60, 0.61], 0.6, tol=0.02)
    assert claims.success_count([1.0, 0.995, 0.98], 0.99, at_least=2)


@pytest.mark.negative_control
def test_opponent_predicates_fail_when_false():
    assert not claims.above_on_every_seed([1.0, 0.85], 0.6, margin=0.3)
    assert not claims.above_on_every_seed([1.0, np.nan], 0.6, margin=0.3)
    assert not claims.not_above([0.60, 0.7], 0.6, tol=0.02)
    assert not claims.success_count([1.0, 0.98, 0.97], 0.99, at_least=2)


def test_gradient_maps_of_the_two_models():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    uni = sq.gradient_map(sq.SeedUniRNN([0], 3, 5, 3).logits, x)
    bi = sq.gradient_map(sq.SeedBiRNN([0], 3, 4, 3).logits, x)
    assert claims.one_sided_map(uni)
    assert claims.two_sided_map(bi, tol=1e-8)


@pytest.mark.negative_control
def test_gradient_map_predicates_swap_fails():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    uni = sq.gradient_map(sq.SeedUniRNN([0], 3, 5, 3).logits, x)
    bi = sq.gradient_map(sq.SeedBiRNN([0], 3, 4, 3).logits, x)
    assert not claims.one_sided_map(bi)
    assert not claims.two_sided_map(uni, tol=1e-8)
    assert not claims.one_sided_map(uni.T)  # an anti-causal map
    with pytest.raises(ValueError, match="square"):
        claims.one_sided_map(np.ones((2, 3)))
