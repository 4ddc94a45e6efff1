"""Dropout for recurrent networks (Capstone: a character-level language model, section
``capstone-dropout``).

Dropout multiplies an activation by a random mask m with entries 0 (probability p) and
1 / (1 - p) (probability 1 - p), so that E[m] = 1 and the expected activation is unchanged; at
evaluation time the mask is 1 (the layer is the identity). A recurrent network offers two
choices that a feed-forward one does not:

* **where**: on the non-recurrent connections only, the embedding x_t entering the cell and
  the hidden state h_t leaving it for the read-out (Zaremba et al. 2014), or also on the
  recurrent connection, the h_{t-1} entering W_hh at step t;
* **when**: a fresh mask at every step, or one mask per sequence, the same at every step
  (variational dropout, Gal and Ghahramani 2016).

:data:`DROPOUT_MODES` names the three combinations the capstone compares:

=================  ======================  ===============================
mode               masks                   where
=================  ======================  ===============================
``"zaremba"``      fresh at every step     x_t and h_t (non-recurrent)
``"variational"``  one per sequence        x_t, h_t and h_{t-1} -> W_hh
``"fresh"``        fresh at every step     x_t, h_t and h_{t-1} -> W_hh
=================  ======================  ===============================

With a TBPTT stream the "sequence" of a mask is one forward call: one chunk of K steps.
"""

from __future__ import annotations

import torch
from torch import nn

DROPOUT_MODES = ("zaremba", "variational", "fresh")
"""Where and when :class:`CharLM` drops units (see the module docstring)."""


def check_dropout_p(p, name: str = "p") -> float:
    """``p`` as a float in [0, 1); a ValueError/TypeError naming ``name`` otherwise."""
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"{name}: expected a dropout probability (a float in [0, 1)), "
                        f"got {type(p).__name__}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name}: expected a dropout probability in [0, 1), got {p}")
    return float(p)


def check_dropout_mode(mode) -> str:
    """``mode`` if it is one of :data:`DROPOUT_MODES`; a ValueError naming ``dropout_mode`` otherwise."""
    if mode not in DROPOUT_MODES:
        raise ValueError(f"dropout_mode: expected one of {DROPOUT_MODES}, got {mode!r}")
    return mode


def dropout_mask(
    shape: tuple[int, int, int],
    p: float,
    *,
    tied: bool,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Masks for a sequence of activations of ``shape`` (B, T, D): entries 0 or 1 / (1 - p).

    ``tied=False``: independent entries at every (b, t, d) (fresh at every step);
    ``tied=True``: one mask (B, 1, D) per sequence, expanded to (B, T, D), the same at every
    step (variational dropout). Either way E[mask] = 1.
    """
    p = check_dropout_p(p)
    if len(shape) != 3 or any(not isinstance(n, int) or n < 1 for n in shape):
        raise ValueError(f"shape: expected (B, T, D) with positive ints, got {shape}")
    batch, steps, width = shape
    drawn = (batch, 1, width) if tied else (batch, steps, width)
    where = generator.device if generator is not None else device
    keep = torch.rand(drawn, generator=generator, device=where) >= p
    mask = keep.to(dtype=dtype or torch.get_default_dtype(), device=device) / (1.0 - p)
    return mask.expand(batch, steps, width)


class SequenceDropout(nn.Module):
    """Dropout of a batch-first sequence x (B, T, D) -> (B, T, D) with fresh or tied masks.

    In training mode x is multiplied by :func:`dropout_mask` (``tied`` as given); in eval
    mode, or with ``p = 0``, it is returned unchanged. Masks are drawn from ``generator``
    (no global random state).
    """

    def __init__(self, p: float, *, tied: bool, generator: torch.Generator | None = None):
        super().__init__()
        self.p = check_dropout_p(p)
        self.tied = bool(tied)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a tensor of shape (B, T, D), got {got}")
        mask = dropout_mask(tuple(x.shape), self.p, tied=self.tied, generator=self.generator,
                            dtype=x.dtype, device=x.device)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, tied={self.tied}"


def last_step_gradients(model, tokens: torch.Tensor, recurrent_mask: torch.Tensor | None = None):
    """dL_T/dh_t for t = 1..T, shape (B, T, H), through the recurrence masked by ``recurrent_mask``.

    ``model`` is a :class:`~bptt.torch.CharLM` with an RNN or LSTM cell; ``tokens`` (B, T + 1)
    ids: the model reads tokens[:, :T] from a zero state and L_T is the cross-entropy of the
    last prediction against tokens[:, T], summed over the batch. ``recurrent_mask`` (B, T, H)
    multiplies the h_{t-1} entering W_hh at step t (None: no mask). No other dropout is
    applied, so the result isolates what the masks of the recurrent connection do to the
    gradient that reaches back k = T - t steps (section ``capstone-dropout``).
    """
    from .monitor import record_hidden

    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] < 2:
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens: expected ids of shape (B, T + 1) with T >= 1, got {got}")
    layer, fused = model.rnn, model.rnn.fused
    layer.fused = False
    try:
        with record_hidden(model) as record, torch.enable_grad():
            embedded = model.embedding(tokens[:, :-1])
            hidden, _ = layer(embedded, None, recurrent_mask=recurrent_mask)
            logits = model.readout(hidden[:, -1])
            torch.nn.functional.cross_entropy(logits, tokens[:, -1], reduction="sum").backward()
            return record.grads().detach()
    finally:
        layer.fused = fused
        model.zero_grad(set_to_none=True)


def path_survival(mask: torch.Tensor) -> torch.Tensor:
    """Fraction of a unit's recurrent self-paths that dropout leaves open, against their length.

    ``mask`` (B, T, H): the masks of the h_{t-1} entering W_hh at steps 1..T. Entry k - 1 of
    the result (T,) is the fraction of (sequence, unit) pairs whose mask is nonzero at all of
    the last k steps T - k + 1..T: the chance that the path h_{T-k, j} -> ... -> h_{T, j}
    through unit j's own recurrent connection (and the gradient back along it) is not cut.
    For fresh masks it is (1 - p)^k; for one mask per sequence it is 1 - p for every k.
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() != 3:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask: expected a tensor of shape (B, T, H), got {got}")
    open_ = (mask != 0).flip(1).to(torch.int64).cumprod(dim=1)  # open at all of the last k steps
    return open_.double().mean(dim=(0, 2)).cpu()
