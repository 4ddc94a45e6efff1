"""The linear RNN and its closed-form gradients ("Closed-form gradients of a linear RNN").

The model (eq. ``linear-rnn-model``), column vectors as in the equations (the code stores
rows, batch first)::

    h_t = W_xh x_t + W_hh h_{t-1}          x: (B, T, D), W_xh: (H, D), W_hh: (H, H), h: (B, T, H)
    o_t = W_hy h_t                         W_hy: (Q, H), o: (B, T, Q)
    L   = mean over the batch of (1/T) sum_t 1/2 ||o_t - y_t||^2

Its gradients, as that chapter derives them (a bar is dL/d of the quantity below it):

    bar o_t    = (o_t - y_t) / (B T)                                 (linear-output-gradient)
    bar h_T    = W_hy^T bar o_T                                      (linear-last-state-gradient)
    bar h_t    = W_hh^T bar h_{t+1} + W_hy^T bar o_t                 (linear-backward-recursion)
               = sum_{s=t}^{T} (W_hh^T)^{s-t} W_hy^T bar o_s         (linear-power-sum)
    bar W_hy   = sum_t bar o_t h_t^T,  bar W_hh = sum_t bar h_t h_{t-1}^T,
    bar W_xh   = sum_t bar h_t x_t^T   (all summed over the batch as well; linear-weight-gradients).

The linear RNN has no activation, so delta_t = bar a_t = bar h_t. Dive into Deep Learning
writes W_hx and W_qh for W_xh and W_hy.

Time indices in the formulas run 1..T; in arrays, ``h[:, t-1]`` is h_t.
"""

from __future__ import annotations

import numpy as np

from bptt import _validate as v
from bptt.rnn import check_batch_first, mse_loss


def _check_model(
    x: object, W_xh: object, W_hh: object, W_hy: object, h0: object
) -> tuple[np.ndarray, ...]:
    dims: v.Dims = {}
    x = v.float_array("x", x, ("B", "T", "D"), dims)
    W_xh = v.float_array("W_xh", W_xh, ("H", "D"), dims)
    W_hh = v.float_array("W_hh", W_hh, ("H", "H"), dims)
    W_hy = v.float_array("W_hy", W_hy, ("Q", "H"), dims)
    check_batch_first(x, h0)
    h0 = v.float_array_or_zeros("h0", h0, ("B", "H"), dims, np.result_type(x, W_xh, W_hh))
    return x, W_xh, W_hh, W_hy, h0, dims


def _forward(x, W_xh, W_hh, W_hy, h0):
    batch, steps, _ = x.shape
    h = np.empty((batch, steps, W_hh.shape[0]), dtype=np.result_type(x, W_xh, W_hh, h0))
    inputs = x @ W_xh.T  # W_xh x_t for every t at once
    h_prev = h0
    for t in range(steps):
        h_prev = np.add(inputs[:, t], h_prev @ W_hh.T, out=h[:, t])
    return h, h @ W_hy.T


def forward(
    x: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    W_hy: np.ndarray,
    h0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """h_t = W_xh x_t + W_hh h_{t-1} and o_t = W_hy h_t for t = 1..T (eq. ``linear-rnn-model``).

    Shapes: x (B, T, D), W_xh (H, D), W_hh (H, H), W_hy (Q, H), h0 (B, H) or None for zeros.
    Returns ``(h, o)``: h (B, T, H), o (B, T, Q).
    """
    x, W_xh, W_hh, W_hy, h0, _ = _check_model(x, W_xh, W_hh, W_hy, h0)
    return _forward(x, W_xh, W_hh, W_hy, h0)


def _check_backward(do: object, W_hh: object, W_hy: object) -> tuple[np.ndarray, ...]:
    dims: v.Dims = {}
    do = v.float_array("do", do, ("B", "T", "Q"), dims)
    W_hh = v.float_array("W_hh", W_hh, ("H", "H"), dims)
    W_hy = v.float_array("W_hy", W_hy, ("Q", "H"), dims)
    return do, W_hh, W_hy


def hidden_gradients(do: np.ndarray, W_hh: np.ndarray, W_hy: np.ndarray) -> np.ndarray:
    """bar h_t for every t by the recursion bar h_t = W_hh^T bar h_{t+1} + W_hy^T bar o_t.

    Equations ``linear-last-state-gradient`` and ``linear-backward-recursion``: one
    matrix-vector product per step, O(B T H^2). Shapes: do (B, T, Q) = bar o_t = dL/do_t,
    W_hh (H, H), W_hy (Q, H) -> (B, T, H) = bar h_t (rows, so W^T v is written v @ W).
    """
    do, W_hh, W_hy = _check_backward(do, W_hh, W_hy)
    direct = do @ W_hy  # W_hy^T bar o_t for every t
    dh = np.empty_like(direct)
    dh_next = np.zeros_like(direct[:, 0])  # no h_{T+1}: bar h_T = W_hy^T bar o_T
    for t in reversed(range(do.shape[1])):
        dh[:, t] = direct[:, t] + dh_next @ W_hh  # W_hy^T bar o_t + W_hh^T bar h_{t+1}
        dh_next = dh[:, t]
    return dh


def hidden_gradients_power_sum(do: np.ndarray, W_hh: np.ndarray, W_hy: np.ndarray) -> np.ndarray:
    """bar h_t = sum_{s=t}^{T} (W_hh^T)^{s-t} W_hy^T bar o_s, evaluated term by term.

    The closed form ``linear-power-sum``, written out: the powers (W_hh^T)^k, k = 0..T-1, are
    formed once, then every t sums its T - t + 1 terms, so the cost is O(T H^3 + B T^2 H^2) -
    the price of not reusing bar h_{t+1}, which the recursion (:func:`hidden_gradients`)
    pays O(B T H^2) for. Shapes as in :func:`hidden_gradients`.
    """
    do, W_hh, W_hy = _check_backward(do, W_hh, W_hy)
    steps = do.shape[1]
    direct = do @ W_hy  # (B, T, H): W_hy^T bar o_s as rows
    powers = np.empty((steps, *W_hh.shape), dtype=np.result_type(W_hh, do))
    powers[0] = np.eye(W_hh.shape[0])
    for k in range(1, steps):
        powers[k] = powers[k - 1] @ W_hh  # W_hh^k; a row times it is (W_hh^T)^k applied
    dh = np.empty_like(direct)
    for t in range(steps):
        # sum over s = t..T-1 (0-based) of the row (W_hy^T bar o_s) @ W_hh^(s-t)
        dh[:, t] = np.tensordot(direct[:, t:], powers[: steps - t], axes=([1, 2], [0, 1]))
    return dh


def weight_gradients(
    x: np.ndarray,
    h: np.ndarray,
    h0: np.ndarray,
    do: np.ndarray,
    dh: np.ndarray,
) -> dict[str, np.ndarray]:
    """bar W_hy = sum bar o_t h_t^T, bar W_hh = sum bar h_t h_{t-1}^T, bar W_xh = sum bar h_t x_t^T.

    Equations ``linear-readout-gradient`` and ``linear-weight-gradients``; sums run over the
    batch and t = 1..T. Shapes: x (B, T, D), h (B, T, H),
    h0 (B, H), do (B, T, Q), dh (B, T, H) = dL/dh_t. Returns ``W_xh`` (H, D), ``W_hh`` (H, H),
    ``W_hy`` (Q, H).
    """
    dims: v.Dims = {}
    x = v.float_array("x", x, ("B", "T", "D"), dims)
    h = v.float_array("h", h, ("B", "T", "H"), dims)
    h0 = v.float_array("h0", h0, ("B", "H"), dims)
    do = v.float_array("do", do, ("B", "T", "Q"), dims)
    dh = v.float_array("dh", dh, ("B", "T", "H"), dims)
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    sum_bt = ([0, 1], [0, 1])
    return {
        "W_xh": np.tensordot(dh, x, axes=sum_bt),
        "W_hh": np.tensordot(dh, h_prev, axes=sum_bt),
        "W_hy": np.tensordot(do, h, axes=sum_bt),
    }


def loss(
    x: np.ndarray,
    y: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    W_hy: np.ndarray,
    h0: np.ndarray | None = None,
) -> float:
    """L = mean over the batch of (1/T) sum_t 1/2 ||o_t - y_t||^2; y (B, T, Q), rest as forward."""
    x, W_xh, W_hh, W_hy, h0, dims = _check_model(x, W_xh, W_hh, W_hy, h0)
    y = v.float_array("y", y, ("B", "T", "Q"), dims)
    return mse_loss(_forward(x, W_xh, W_hh, W_hy, h0)[1], y)[0]


def gradients(
    x: np.ndarray,
    y: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    W_hy: np.ndarray,
    h0: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """All gradients of the linear RNN's loss, by the backward recursion (eq. ``linear-backward-recursion``).

    Shapes: x (B, T, D), y (B, T, Q), W_xh (H, D), W_hh (H, H), W_hy (Q, H), h0 (B, H) or None.
    Returns ``W_xh``, ``W_hh``, ``W_hy`` (shaped like the weights), ``o`` (B, T, Q) = dL/do_t
    (with its 1/(B T)) and ``h`` (B, T, H) = dL/dh_t.
    """
    x, W_xh, W_hh, W_hy, h0, dims = _check_model(x, W_xh, W_hh, W_hy, h0)
    y = v.float_array("y", y, ("B", "T", "Q"), dims)
    h, o = _forward(x, W_xh, W_hh, W_hy, h0)
    do = mse_loss(o, y)[1]
    dh = hidden_gradients(do, W_hh, W_hy)
    grads = weight_gradients(x, h, h0, do, dh)
    grads.update(o=do, h=dh)
    return grads
