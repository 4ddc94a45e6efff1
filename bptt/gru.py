"""The GRU cell in numpy: forward and backward by hand, one step or a whole batch.

The chapter *Gated architectures* derives everything here (eqs. `gru-cell` and
`gru-jacobian`). The weights are laid out as PyTorch's ``nn.GRU`` stores them, three blocks of
H rows in the order r, z, n: ``W_x`` is its ``weight_ih_l0`` (3H, D), ``W_h`` its
``weight_hh_l0`` (3H, H), and the GRU keeps torch's two biases, ``b_x`` = ``bias_ih_l0`` and
``b_h`` = ``bias_hh_l0`` (3H,) each, because the reset gate multiplies the recurrent part of the
candidate *including* its bias. Batch first, row vectors in the code::

    r_t = s(x_t W_xr^T + b_xr + h_{t-1} W_hr^T + b_hr)          reset gate (B, H)
    z_t = s(x_t W_xz^T + b_xz + h_{t-1} W_hz^T + b_hz)          update gate
    m_t = h_{t-1} W_hn^T + b_hn                                 recurrent part of the candidate
    n_t = tanh(x_t W_xn^T + b_xn + r_t * m_t)                   candidate state
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                       (the interpolation)

and its backward pass, with dh_t the total dL/dh_t::

    dn = dh_t (1 - z),  dz = dh_t (h_{t-1} - n),  da^n = dn (1 - n^2),  dr = da^n m_t,
    da^r = dr r (1 - r),  da^z = dz z (1 - z),
    input side   [da^r, da^z, da^n]       -> dW_x, db_x, dx_t
    recurrent    [da^r, da^z, da^n * r]   -> dW_h, db_h, and
    dh_{t-1} = dh_t * z + [da^r, da^z, da^n * r] W_h   (the first term is the direct path).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v
from bptt.lstm import sigmoid

GATES = ("r", "z", "n")
"""The three blocks of W_x, W_h, b_x and b_h, in torch's order."""


@dataclasses.dataclass(frozen=True)
class StepCache:
    """What :func:`step_backward` needs from :func:`step_forward` (one time step)."""

    x: np.ndarray  # (B, D)
    h_prev: np.ndarray  # (B, H)
    r: np.ndarray  # (B, H) reset gate
    z: np.ndarray  # (B, H) update gate
    n: np.ndarray  # (B, H) candidate
    m: np.ndarray  # (B, H) h_{t-1} W_hn^T + b_hn
    W_x: np.ndarray  # (3H, D)
    W_h: np.ndarray  # (3H, H)


@dataclasses.dataclass(frozen=True)
class Cache:
    """What :func:`backward` needs from :func:`forward`: every gate of every step, (B, T, H)."""

    x: np.ndarray  # (B, T, D)
    h0: np.ndarray  # (B, H)
    h: np.ndarray  # (B, T, H)
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    m: np.ndarray
    W_x: np.ndarray  # (3H, D)
    W_h: np.ndarray  # (3H, H)

    @property
    def h_prev(self) -> np.ndarray:
        """(B, T, H): h_{t-1} for every step, h_0 first."""
        return np.concatenate([self.h0[:, None], self.h[:, :-1]], axis=1)


def _check_weights(W_x, W_h, b_x, b_h, dims: v.Dims) -> tuple:
    return v.gate_weights(W_x, W_h, {"b_x": b_x, "b_h": b_h}, ("r", "z", "n"), dims)


def _cell(a_x: np.ndarray, a_h: np.ndarray, h_prev: np.ndarray) -> tuple:
    """Gates, candidate and new state from the input part a_x and the recurrent part a_h."""
    x_r, x_z, x_n = np.split(a_x, 3, axis=-1)
    h_r, h_z, m = np.split(a_h, 3, axis=-1)
    r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * m)
    return r, z, n, m, (1.0 - z) * n + z * h_prev


def _pre_activation_adjoints(dh_t, h_prev, r, z, n, m) -> tuple[np.ndarray, np.ndarray]:
    """(input-side, recurrent-side) adjoints of the pre-activations, each (B, 3H)."""
    da_n = dh_t * (1.0 - z) * (1.0 - n * n)
    da_r = da_n * m * r * (1.0 - r)
    da_z = dh_t * (h_prev - n) * z * (1.0 - z)
    return (np.concatenate([da_r, da_z, da_n], axis=-1),
            np.concatenate([da_r, da_z, da_n * r], axis=-1))


# --------------------------------------------------------------------------- one step


def step_forward(x_t, h_prev, W_x, W_h, b_x, b_h) -> tuple[np.ndarray, StepCache]:
    """One GRU step (Gated architectures, eq. `gru-cell`).

    Shapes: x_t (B, D), h_prev (B, H), W_x (3H, D), W_h (3H, H), b_x and b_h (3H,).
    Returns ``(h_t, cache)``, h_t (B, H); pass the cache to :func:`step_backward`.
    """
    dims: v.Dims = {}
    W_x, W_h, b_x, b_h = _check_weights(W_x, W_h, b_x, b_h, dims)
    x_t = v.float_array("x_t", x_t, ("B", "D"), dims)
    h_prev = v.float_array("h_prev", h_prev, ("B", "H"), dims)
    r, z, n, m, h = _cell(x_t @ W_x.T + b_x, h_prev @ W_h.T + b_h, h_prev)
    return h, StepCache(x_t, h_prev, r, z, n, m, W_x, W_h)


def step_backward(dh_t, cache: StepCache) -> dict[str, np.ndarray]:
    """Backward through one GRU step (Gated architectures, the GRU's backward pass).

    ``dh_t`` (B, H) is the total dL/dh_t. Returns ``x`` (B, D), ``h_prev`` (B, H) (the direct
    path dh_t * z_t plus the gated paths through W_h), ``W_x`` (3H, D), ``W_h`` (3H, H),
    ``b_x`` and ``b_h`` (3H,), summed over the batch.
    """
    if not isinstance(cache, StepCache):
        raise TypeError(f"cache: expected the StepCache from step_forward, got {type(cache)}")
    dh_t = v.float_array("dh_t", dh_t, ("B", "H"), v.bind("cache.h_prev", cache.h_prev.shape, ("B", "H")))
    da_x, da_h = _pre_activation_adjoints(dh_t, cache.h_prev, cache.r, cache.z, cache.n, cache.m)
    return {
        "x": da_x @ cache.W_x,
        "h_prev": dh_t * cache.z + da_h @ cache.W_h,
        "W_x": da_x.T @ cache.x,
        "W_h": da_h.T @ cache.h_prev,
        "b_x": da_x.sum(axis=0),
        "b_h": da_h.sum(axis=0),
    }


def step_jacobian(cache: StepCache) -> tuple[np.ndarray, np.ndarray]:
    """The step Jacobian dh_t/dh_{t-1} (Gated architectures, eq. `gru-jacobian`), split in two.

    Returns ``(direct, gated)``, each (B, H, H): ``direct`` = diag(z_t), the interpolation's
    path with the gates held fixed, and ``gated`` = the rest, the paths through r_t, z_t and
    n_t, each of which passes through a weight matrix::

        diag((1 - z)(1 - n^2)) [diag(r) W_hn + diag(m r (1 - r)) W_hr] + diag((h_{t-1} - n) z (1 - z)) W_hz

    Their sum is the full Jacobian (checked against torch autograd in the tests).
    """
    if not isinstance(cache, StepCache):
        raise TypeError(f"cache: expected the StepCache from step_forward, got {type(cache)}")
    H = cache.h_prev.shape[1]
    W_hr, W_hz, W_hn = cache.W_h[:H], cache.W_h[H : 2 * H], cache.W_h[2 * H :]
    r, z, n, m = cache.r, cache.z, cache.n, cache.m
    slope_n = (1.0 - z) * (1.0 - n * n)
    gated = (slope_n[..., None] * (r[..., None] * W_hn + (m * r * (1.0 - r))[..., None] * W_hr)
             + ((cache.h_prev - n) * z * (1.0 - z))[..., None] * W_hz)
    direct = z[..., None] * np.eye(H, dtype=z.dtype)
    return direct, gated


# --------------------------------------------------------------------------- whole sequence


def forward(x, h0, W_x, W_h, b_x, b_h) -> tuple[np.ndarray, Cache]:
    """All states of the GRU, t = 1..T (Gated architectures, eq. `gru-cell`).

    Shapes: x (B, T, D), h0 (B, H) or None for zeros, W_x (3H, D), W_h (3H, H), b_x and b_h
    (3H,). Returns ``(h, cache)`` with h (B, T, H), ``h[:, t-1]`` = h_t.
    """
    dims: v.Dims = {}
    W_x, W_h, b_x, b_h = _check_weights(W_x, W_h, b_x, b_h, dims)
    x = v.float_array("x", x, ("B", "T", "D"), dims)
    dtype = np.result_type(x, W_x, W_h, b_x, b_h)
    h0 = v.float_array_or_zeros("h0", h0, ("B", "H"), dims, dtype)
    batch, steps, _ = x.shape
    pre = x @ W_x.T + b_x  # (B, T, 3H): the input side of every step at once
    shape = (batch, steps, W_h.shape[1])
    h = np.empty(shape, dtype)
    parts = {name: np.empty(shape, dtype) for name in ("r", "z", "n", "m")}
    h_prev = h0
    for t in range(steps):
        r, z, n, m, h_prev = _cell(pre[:, t], h_prev @ W_h.T + b_h, h_prev)
        h[:, t] = h_prev
        for name, value in zip(("r", "z", "n", "m"), (r, z, n, m)):
            parts[name][:, t] = value
    return h, Cache(x, h0, h, W_x=W_x, W_h=W_h, **parts)


def backward(dh, cache: Cache) -> dict[str, np.ndarray]:
    """BPTT through the GRU (the step backward of :func:`step_backward`, run from T to 1).

    ``dh`` (B, T, H) is the gradient that reaches each h_t directly from the loss (zeros where a
    step has no loss). Returns ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x``, ``b_h`` (3H,),
    ``x`` (B, T, D), ``h0`` (B, H), and ``h`` (B, T, H), the total adjoint dL/dh_t of every step.
    """
    if not isinstance(cache, Cache):
        raise TypeError(f"cache: expected the Cache returned by forward, got {type(cache)}")
    dh = v.float_array("dh", dh, ("B", "T", "H"), v.bind("cache.h", cache.h.shape, ("B", "T", "H")))
    batch, steps, hidden = cache.h.shape
    dtype = np.result_type(dh, cache.h)
    h_prev = cache.h_prev
    da_x = np.empty((batch, steps, 3 * hidden), dtype)
    da_h = np.empty_like(da_x)
    dh_total = np.empty((batch, steps, hidden), dtype)
    dh_next = np.zeros((batch, hidden), dtype)  # dL/dh_t through h_{t+1}
    for t in range(steps - 1, -1, -1):
        dh_t = dh[:, t] + dh_next
        dh_total[:, t] = dh_t
        da_x[:, t], da_h[:, t] = _pre_activation_adjoints(
            dh_t, h_prev[:, t], cache.r[:, t], cache.z[:, t], cache.n[:, t], cache.m[:, t])
        dh_next = dh_t * cache.z[:, t] + da_h[:, t] @ cache.W_h
    return {
        "x": da_x @ cache.W_x,
        "h0": dh_next,
        "W_x": np.tensordot(da_x, cache.x, axes=([0, 1], [0, 1])),
        "W_h": np.tensordot(da_h, h_prev, axes=([0, 1], [0, 1])),
        "b_x": da_x.sum(axis=(0, 1)),
        "b_h": da_h.sum(axis=(0, 1)),
        "h": dh_total,
    }
