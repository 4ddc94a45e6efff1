"""The diagonal linear recurrence h_t = lam_t * h_{t-1} + u_t in torch: loop, scan, scan backward.

The torch twin of :mod:`bptt.scan` (Recurrences in parallel, eqs. `scan-recurrence`,
`scan-combine`, `scan-adjoint`). :func:`sequential` is the loop autograd differentiates
step by step; :func:`hillis_steele` computes every prefix in ceil(log2 T) rounds of whole-tensor
operations (what a GPU runs in parallel); :func:`linear_recurrence` is an autograd function
whose backward is the reverse scan of eq. `scan-adjoint`, not autograd's unrolled graph.
Shapes batch first: lam, u (B, T, H), h0 (B, H).
"""

from __future__ import annotations

import torch


def _check(lam: torch.Tensor, u: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    for name, x in (("lam", lam), ("u", u)):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(f"{name}: expected a tensor of shape (B, T, H), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
    if lam.shape != u.shape:
        raise ValueError(f"u: expected shape {tuple(lam.shape)} (the shape of lam), got {tuple(u.shape)}")
    if h0 is None:
        return lam.new_zeros(lam.shape[0], lam.shape[2])
    if h0.shape != (lam.shape[0], lam.shape[2]):
        raise ValueError(f"h0: expected shape ({lam.shape[0]}, {lam.shape[2]}) = (B, H), got "
                         f"{tuple(h0.shape)}")
    return h0


def sequential(lam: torch.Tensor, u: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """h (B, T, H) by the loop over t; T sequential steps (eq. `scan-recurrence`)."""
    h_prev = _check(lam, u, h0)
    out = []
    for t in range(lam.shape[1]):
        h_prev = lam[:, t] * h_prev + u[:, t]
        out.append(h_prev)
    return torch.stack(out, dim=1)


def hillis_steele(lam: torch.Tensor, u: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """h (B, T, H) by ceil(log2 T) rounds of the operator of eq. `scan-combine`.

    Out of place, so autograd can differentiate it too (through log2 T rounds of the scan).
    """
    h0 = _check(lam, u, h0)
    L = lam
    U = torch.cat([u[:, :1] + lam[:, :1] * h0[:, None], u[:, 1:]], dim=1)
    shift, steps = 1, lam.shape[1]
    while shift < steps:
        L_new = L[:, shift:] * L[:, :-shift]
        B_new = L[:, shift:] * U[:, :-shift] + U[:, shift:]
        L = torch.cat([L[:, :shift], L_new], dim=1)
        U = torch.cat([U[:, :shift], B_new], dim=1)
        shift *= 2
    return U


class _LinearRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, lam, u, h0):
        with torch.no_grad():
            h = hillis_steele(lam, u, h0)
        ctx.save_for_backward(lam, h, h0)
        return h

    @staticmethod
    def backward(ctx, dh):
        lam, h, h0 = ctx.saved_tensors
        # hbar_t = dh_t + a_{t+1} hbar_{t+1}: the same scan on reversed time (eq. `scan-adjoint`)
        coeff = torch.cat([lam[:, 1:], torch.zeros_like(lam[:, :1])], dim=1)
        hbar = hillis_steele(coeff.flip(1), dh.flip(1)).flip(1)
        h_prev = torch.cat([h0[:, None], h[:, :-1]], dim=1)
        return hbar * h_prev, hbar, lam[:, 0] * hbar[:, 0]


def linear_recurrence(lam: torch.Tensor, u: torch.Tensor,
                      h0: torch.Tensor | None = None) -> torch.Tensor:
    """h (B, T, H) by the scan, with the reverse-scan backward of eq. `scan-adjoint`.

    Gradients flow to lam, u and h0 (zeros when None), equal to autograd through
    :func:`sequential` to rounding error.
    """
    h0 = _check(lam, u, h0)
    return _LinearRecurrence.apply(lam, u, h0)
