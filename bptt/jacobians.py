"""Step Jacobians of the tanh RNN, their products over spans, and gradient size by distance.

The chapter "The chain rule through time" derives the step Jacobian (eq. ``step-jacobian``)
of h_t = tanh(W_xh x_t + W_hh h_{t-1} + b); with row vectors, as in the code::

    J_t = dh_t / dh_{t-1} = diag(1 - h_t^2) W_hh                       (H, H), one per sequence
    dh_t / dh_k = J_t J_{t-1} ... J_{k+1}                               (identity when t = k)
    dL/dh_k = dL/dh_T J_T ... J_{k+1}     for a loss at the last step only,

and "Vanishing and exploding gradients" reads off how that gradient shrinks or grows with the
distance T - k; for one weight w and tanh' close to 1 it is the scalar law w^(T-k).

Time indices are those of the math, 1..T, with h_0 the initial state: ``J[:, t-1]`` is J_t,
``h[:, t-1]`` is h_t. Arrays are batch first.
"""

from __future__ import annotations

import numpy as np

from bptt import _validate as v
from bptt.rnn import ACTIVATIONS, activation_derivative


def step_jacobians(h: np.ndarray, W_hh: np.ndarray, *, activation: str = "tanh") -> np.ndarray:
    """J_t = diag(phi'(a_t)) W_hh = dh_t/dh_{t-1} for every sequence and step (eq. ``step-jacobian``).

    Shapes: h (B, T, H) hidden states from :func:`bptt.rnn.forward`, W_hh (H, H) ->
    J (B, T, H, H) with ``J[b, t-1]`` = J_t; phi'(a_t) = 1 - h_t^2 for tanh.
    """
    activation = v.choice("activation", activation, ACTIVATIONS)
    dims: v.Dims = {}
    h = v.float_array("h", h, ("B", "T", "H"), dims)
    W_hh = v.float_array("W_hh", W_hh, ("H", "H"), dims)
    return activation_derivative(h, activation)[..., :, None] * W_hh


def _check_jacobians(J: object) -> np.ndarray:
    return v.float_array("J", J, ("B", "T", "H", "H"))


def _check_times(J: np.ndarray, start: object, stop: object) -> tuple[int, int]:
    steps = J.shape[1]
    start = v.integer("start", start, minimum=0)
    stop = v.integer("stop", stop, minimum=0)
    if not start <= stop <= steps:
        raise ValueError(
            f"start, stop: expected 0 <= start <= stop <= T = {steps} (from J of shape "
            f"{J.shape}), got start = {start}, stop = {stop}"
        )
    return start, stop


def span_product(J: np.ndarray, start: int, stop: int) -> np.ndarray:
    """dh_stop/dh_start = J_stop J_{stop-1} ... J_{start+1} (eq. ``jacobian-product``), one per sequence.

    ``J`` (B, T, H, H) from :func:`step_jacobians`; times 0 <= start <= stop <= T (h_0 is the
    initial state). Returns (B, H, H); the identity when start = stop.
    """
    J = _check_jacobians(J)
    start, stop = _check_times(J, start, stop)
    batch, _, hidden, _ = J.shape
    product = np.broadcast_to(np.eye(hidden, dtype=J.dtype), (batch, hidden, hidden)).copy()
    for t in range(start + 1, stop + 1):
        product = J[:, t - 1] @ product  # later steps multiply from the left
    return product


def products_to_end(J: np.ndarray) -> np.ndarray:
    """dh_T/dh_k = J_T ... J_{k+1} for every k = 0..T at once (eq. ``jacobian-product``).

    ``J`` (B, T, H, H) -> P (B, T+1, H, H) with ``P[:, k]`` = dh_T/dh_k and P[:, T] = I.
    """
    J = _check_jacobians(J)
    batch, steps, hidden, _ = J.shape
    P = np.empty((batch, steps + 1, hidden, hidden), dtype=J.dtype)
    P[:, steps] = np.eye(hidden)
    for k in range(steps, 0, -1):
        P[:, k - 1] = P[:, k] @ J[:, k - 1]
    return P


def gradients_from_last(J: np.ndarray, g_T: np.ndarray) -> np.ndarray:
    """dL/dh_k = dL/dh_T J_T ... J_{k+1} for k = 0..T, for a loss at the last step only.

    One vector-Jacobian product per step, O(B T H^2) (eq. ``gradient-last-step-loss``). Shapes: J (B, T, H, H),
    g_T (B, H) = dL/dh_T -> (B, T+1, H) with ``[:, k]`` = dL/dh_k.
    """
    dims: v.Dims = {}
    J = v.float_array("J", J, ("B", "T", "H", "H"), dims)
    g_T = v.float_array("g_T", g_T, ("B", "H"), dims)
    steps = J.shape[1]
    grads = np.empty((J.shape[0], steps + 1, J.shape[2]), dtype=np.result_type(J, g_T))
    grads[:, steps] = g_T
    for k in range(steps, 0, -1):
        grads[:, k - 1] = np.einsum("bi,bij->bj", grads[:, k], J[:, k - 1])
    return grads


def gradient_norms_by_distance(J: np.ndarray, g_T: np.ndarray) -> np.ndarray:
    """||dL/dh_{T-d}|| for distances d = 0..T, loss at the last step
    ("The chain rule through time", "Vanishing and exploding gradients").

    Shapes: J (B, T, H, H), g_T (B, H) -> (B, T+1); column d is the distance T - k.
    """
    return np.linalg.norm(gradients_from_last(J, g_T)[:, ::-1], axis=-1)


def contribution_norms(J: np.ndarray, dh: np.ndarray) -> np.ndarray:
    """||dL_t/dh_k|| = ||dL_t/dh_t J_t ... J_{k+1}|| for every pair k <= t (eq. ``gradient-every-step-loss``).

    Row k of the result says which losses the state h_k affects (t >= k), and how strongly
    along a path of length t - k: the measured "how gradients accumulate" table.
    Shapes: J (B, T, H, H), dh (B, T, H) with ``dh[:, t-1]`` = dL_t/dh_t -> C (B, T, T),
    ``C[:, k-1, t-1]`` = ||dL_t/dh_k|| for t >= k and 0 for t < k. Cost O(B T^2 H^2).
    """
    dims: v.Dims = {}
    J = v.float_array("J", J, ("B", "T", "H", "H"), dims)
    dh = v.float_array("dh", dh, ("B", "T", "H"), dims)
    batch, steps, _ = dh.shape
    norms = np.zeros((batch, steps, steps), dtype=np.result_type(J, dh))
    carry = dh  # carry[:, i] = dL_{i+d}/dh_i at depth d (0-based positions)
    for d in range(steps):
        rows = np.arange(steps - d)
        norms[:, rows, rows + d] = np.linalg.norm(carry, axis=-1)
        carry = np.einsum("bih,bihk->bik", carry[:, 1:], J[:, 1 : steps - d])
    return norms


def mean_by_distance(C: np.ndarray) -> np.ndarray:
    """Mean of ``C[:, k, t]`` over the batch and all pairs with t - k = d, for d = 0..T-1.

    ``C`` (B, T, T) from :func:`contribution_norms` -> (T,): the measured gradient magnitude
    against the distance between a loss and the state it reaches.
    """
    C = v.float_array("C", C, ("B", "T", "T"))
    return np.array([np.diagonal(C, offset=d, axis1=1, axis2=2).mean() for d in range(C.shape[1])])


def scalar_law(w: float, T: int) -> np.ndarray:
    """w^d for d = 0..T: dL/dh_{T-d} / dL/dh_T for one weight w when tanh' is 1
    ("Vanishing and exploding gradients").

    Exact for the scalar linear RNN h_t = w h_{t-1} + u x_t; returns (T+1,) float64.
    """
    w = v.real("w", w)
    T = v.integer("T", T, minimum=0)
    return w ** np.arange(T + 1, dtype=np.float64)
