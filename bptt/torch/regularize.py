"""The gradient-norm regulariser of Pascanu, Mikolov and Bengio (2013) (Other stabilizers).

With hbar_t = dL/dh_t (the total derivative, h with a bar on the Notation page; ``dh`` in code) and
the step Jacobian J_{k+1} = dh_{k+1}/dh_k,

    Omega = mean over the batch of  sum_{k=1}^{T-1} ( ||hbar_{k+1} J_{k+1}|| / ||hbar_{k+1}|| - 1 )^2

(eq. `stabilizers-omega`): zero when every backward step keeps the norm of the gradient, larger with
every step that shrinks (or grows) it. As in the paper, hbar_{k+1} is held constant: only the
Jacobian factor is differentiated, so ``loss + strength * Omega`` trains the weights towards
Jacobians that preserve the norm in the direction the gradient actually takes.

The Jacobian-vector products come from autograd, one step at a time, so the penalty works
for any cell whose state is one tensor (tanh or ReLU RNN, with or without layer norm, GRU).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .monitor import HiddenRecord


def _check_states(loss, states) -> list[torch.Tensor]:
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(
            "loss: expected a scalar tensor (the mean loss of the batch), got "
            f"{getattr(loss, 'shape', type(loss).__name__)}"
        )
    if not loss.requires_grad:
        raise ValueError("loss: it does not require a gradient (was it computed under no_grad?)")
    if isinstance(states, HiddenRecord):
        if states.cell == "lstm":
            raise ValueError(
                "states: recorded from an LSTM, whose h-to-h Jacobian misses the path through "
                "the cell state c; Omega is defined here for cells whose state is h alone "
                "(tanh or ReLU RNN, GRU)"
            )
        states = states.states
    states = list(states)
    if len(states) < 2:
        raise ValueError(
            f"states: expected the hidden states h_1..h_T with T >= 2, got {len(states)}; "
            "record them with `with bptt.torch.record_hidden(model) as record:` and pass "
            "record.states"
        )
    for t, h in enumerate(states, start=1):
        if isinstance(h, (tuple, list)):
            raise TypeError(
                f"states: h_{t} is a {type(h).__name__}, as an LSTM's (h, c) state; only cells "
                "whose state is one tensor are supported (the h-to-h Jacobian of an LSTM "
                "misses the path through c)"
            )
        if not isinstance(h, torch.Tensor):
            raise TypeError(f"states: h_{t} should be a (B, H) tensor, got {type(h).__name__}")
        if h.dim() != 2:
            raise ValueError(
                f"states: h_{t} should be a (B, H) tensor, got shape {tuple(h.shape)}"
            )
        if h.shape != states[0].shape:
            raise ValueError(
                f"states: h_{t} has shape {tuple(h.shape)}, h_1 has {tuple(states[0].shape)}; "
                "every state must be (B, H) of one forward pass"
            )
        if not h.requires_grad:
            raise ValueError(f"states: h_{t} is not part of the graph of the loss")
    return states


def gradient_norm_penalty(
    loss: torch.Tensor, states: HiddenRecord | Sequence[torch.Tensor]
) -> torch.Tensor:
    """Omega (eq. `stabilizers-omega`) for ``loss`` and the states h_1..h_T of its forward pass.

    Args:
        loss: the scalar loss, still attached to the graph of the forward pass.
        states: the record of :func:`bptt.torch.record_hidden` taken during that forward pass
            (an LSTM's is refused), or h_1..h_T themselves, each (B, H), in time order.

    Returns:
        A scalar tensor, differentiable with respect to the parameters (g held constant).
        Steps where hbar_{k+1} is exactly zero (no loss reaches them) add nothing.
    """
    states = _check_states(loss, states)
    grads = torch.autograd.grad(loss, states, retain_graph=True)  # hbar_t = dL/dh_t, constants
    total = loss.new_zeros(())
    for h_prev, h_next, g_next in zip(states[:-1], states[1:], grads[1:]):
        # hbar_{k+1} J_{k+1}: the only path from h_{k+1} back to h_k is the step itself.
        (pulled,) = torch.autograd.grad(
            h_next, h_prev, grad_outputs=g_next, retain_graph=True, create_graph=True
        )
        g_norm = g_next.norm(dim=1)
        reached = g_norm > 0
        ratio = pulled.norm(dim=1)[reached] / g_norm[reached]
        total = total + ((ratio - 1) ** 2).sum()
    return total / states[0].shape[0]
