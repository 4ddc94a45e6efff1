"""bptt.torch.gradient_norm_penalty: Omega of Pascanu et al. ("Other stabilizers"), value and gradient."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch_helpers import F64, TOL, max_rel, randn, rel

from bptt.torch import RecurrentLayer, gradient_norm_penalty, record_hidden


def layer_and_states(cell="rnn", B=3, T=6, D=2, H=4, seed=0, **options):
    """A float64 explicit layer, a last-step loss and its recorded states h_1..h_T."""
    layer = RecurrentLayer(cell, D, H, fused=False, seed=seed, dtype=F64, **options)
    x = randn(B, T, D, seed=seed + 1)
    readout = randn(H, seed=seed + 2)
    with record_hidden(layer) as record:
        hidden, _ = layer(x)
    loss = (hidden[:, -1] @ readout).sin().mean()
    return layer, loss, record.states


def closed_form_omega(layer, loss, states):
    """Omega for a tanh RNN from the step Jacobian diag(1 - h_{k+1}^2) W_hh written out by hand."""
    grads = [g.detach() for g in torch.autograd.grad(loss, states, retain_graph=True)]
    W_hh = layer.core.weight_hh_l0
    total = 0
    for h_next, g_next in zip(states[1:], grads[1:]):
        pulled = (g_next * (1 - h_next**2)) @ W_hh
        total = total + ((pulled.norm(dim=1) / g_next.norm(dim=1) - 1) ** 2).sum()
    return total / states[0].shape[0]


def test_value_matches_the_tanh_step_jacobian():
    layer, loss, states = layer_and_states()
    omega = gradient_norm_penalty(loss, states)
    assert omega.item() > 0
    assert rel(omega, closed_form_omega(layer, loss, states)) < TOL


def test_takes_the_record_of_record_hidden():
    layer = RecurrentLayer("gru", 2, 3, fused=False, dtype=F64)
    with record_hidden(layer) as record:
        hidden, _ = layer(randn(2, 5, 2))
    loss = hidden[:, -1].pow(2).mean()
    assert gradient_norm_penalty(loss, record).item() == gradient_norm_penalty(
        loss, record.states
    ).item()


def test_gradient_holds_dl_dh_constant_and_matches_the_closed_form():
    layer, loss, states = layer_and_states(T=5)
    params = list(layer.parameters())
    ours = torch.autograd.grad(gradient_norm_penalty(loss, states), params, allow_unused=True,
                               retain_graph=True)
    reference = torch.autograd.grad(closed_form_omega(layer, loss, states), params,
                                    allow_unused=True)
    ours = [torch.zeros_like(p) if g is None else g for p, g in zip(params, ours)]
    reference = [torch.zeros_like(p) if g is None else g for p, g in zip(params, reference)]
    assert max_rel(ours, reference) < TOL
    assert ours[1].abs().sum() > 0, "Omega depends on W_hh"


@given(B=st.integers(1, 4), T=st.integers(2, 7), H=st.integers(1, 5),
       cell=st.sampled_from(["rnn", "gru"]), seed=st.integers(0, 50))
def test_equals_the_ratios_of_recorded_gradients_for_a_last_step_loss(B, T, H, cell, seed):
    # With a loss at the last step only, g_k = g_{k+1} dh_{k+1}/dh_k exactly, so each term of
    # Omega is the ratio of two recorded gradient norms (the check of "Other stabilizers").
    _, loss, states = layer_and_states(cell, B=B, T=T, H=H, seed=seed)
    omega = gradient_norm_penalty(loss, states)
    grads = torch.autograd.grad(loss, states)
    norms = torch.stack([g.norm(dim=1) for g in grads], dim=1)  # (B, T)
    reached = norms[:, 1:] > 0
    terms = torch.where(reached, norms[:, :-1] / norms[:, 1:].clamp_min(1e-300) - 1, 0.0) ** 2
    assert torch.isfinite(omega) and omega.item() >= 0
    assert abs(omega.item() - terms.sum(dim=1).mean().item()) <= TOL * max(1.0, omega.item())


def test_is_zero_when_every_step_keeps_the_norm():
    # A ReLU RNN with W_hh = I and positive pre-activations: every step Jacobian is I.
    layer = RecurrentLayer("rnn", 2, 3, fused=False, nonlinearity="relu", init="identity",
                           dtype=F64)
    with torch.no_grad():
        layer.core.weight_ih_l0.abs_()
        layer.core.bias_ih_l0.fill_(0.5)
    x = randn(2, 6, 2, seed=3).abs()
    with record_hidden(layer) as record:
        hidden, _ = layer(x)
    assert (hidden > 0).all()
    omega = gradient_norm_penalty(hidden[:, -1].sum(), record.states)
    assert omega.item() == pytest.approx(0.0, abs=1e-24)


def test_bad_input_is_refused_with_a_clear_message():
    _, loss, states = layer_and_states()
    with pytest.raises(ValueError, match="loss: expected a scalar"):
        gradient_norm_penalty(torch.stack(states).sum(dim=(1, 2)), states)
    with pytest.raises(ValueError, match="T >= 2.*record_hidden"):
        gradient_norm_penalty(loss, states[:1])
    with pytest.raises(ValueError, match="h_2 has shape .* every state must be"):
        gradient_norm_penalty(loss, [states[0], states[1][:, :2]])
    with pytest.raises(ValueError, match="h_1 is not part of the graph"):
        gradient_norm_penalty(loss, [states[0].detach(), states[1]])
    with pytest.raises(ValueError, match="does not require a gradient"):
        gradient_norm_penalty(loss.detach(), states)
    lstm = RecurrentLayer("lstm", 2, 3, fused=False, dtype=F64)
    with record_hidden(lstm) as record:
        hidden, _ = lstm(randn(2, 4, 2))
    with pytest.raises(ValueError, match="recorded from an LSTM"):
        gradient_norm_penalty(hidden.sum(), record)
    lstm_states = [(h, h) for h in states]
    with pytest.raises(TypeError, match="LSTM"):
        gradient_norm_penalty(loss, lstm_states)
    with pytest.raises(ValueError, match=r"h_1 should be a \(B, H\) tensor"):
        gradient_norm_penalty(loss, [s[0] for s in states])
