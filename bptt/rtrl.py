"""Real-time recurrent learning (RTRL): the same gradient as BPTT, carried forward in time.

the chapter "The cost of BPTT". Instead of storing the states and walking back, RTRL carries the sensitivities
S_t = dh_t/dtheta forward with the states, for theta = (W_xh, W_hh, b) and the initial state::

    S_t = diag(f'(a_t)) (W_hh S_{t-1} + d+a_t/dtheta),       S_0 = 0 (and dh_0/dh_0 = I)
    dL/dtheta = sum_t dL/dh_t S_t

where d+a_t/dtheta holds the immediate partials: x_t for W_xh, h_{t-1} for W_hh, 1 for b.
S_t is H x P with P = H D + H^2 + H parameters, so a step costs O(H^2 P) = O(H^4) time and
O(H P) = O(H^3) memory, against O(H^2) for a step of BPTT - but no history is stored and the
gradient is ready as soon as the sequence ends (online learning).
"""

from __future__ import annotations

import numpy as np

from bptt import _validate as v
from bptt import rnn
from bptt.rnn import ACTIVATIONS, activation_derivative


class Layout:
    """Where each parameter lives along the last axis (length P + H) of a sensitivity array.

    The order is ``W_xh`` (H D entries, row-major), ``W_hh`` (H H), ``b`` (H), then ``h0``
    (H, per sequence). Also holds the index arrays of the immediate partials.
    """

    def __init__(self, hidden: int, inputs: int):
        self.hidden, self.inputs = hidden, inputs
        sizes = {"W_xh": hidden * inputs, "W_hh": hidden * hidden, "b": hidden, "h0": hidden}
        self.slices: dict[str, slice] = {}
        start = 0
        for name, size in sizes.items():
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start
        self.parameters = self.slices["h0"].start  # P: the entries shared by the batch
        rows = np.arange(hidden)[:, None]
        self.rows = rows
        # dh_i depends immediately on W[i, k] (entry i * n + k of its block) for every k
        self.cols_xh = self.slices["W_xh"].start + rows * inputs + np.arange(inputs)
        self.cols_hh = self.slices["W_hh"].start + rows * hidden + np.arange(hidden)
        self.cols_b = self.slices["b"].start + rows

    def initial(self, batch: int, dtype: np.dtype) -> np.ndarray:
        """S_0 (B, H, P + H): zero for the parameters, the identity for h_0."""
        S = np.zeros((batch, self.hidden, self.size), dtype=dtype)
        S[:, :, self.slices["h0"]] = np.eye(self.hidden, dtype=dtype)
        return S

    def unpack(self, g: np.ndarray) -> dict[str, np.ndarray]:
        """Split a gradient (B, P + H) into ``W_xh``, ``W_hh``, ``b`` (summed over B), ``h0``."""
        shapes = {
            "W_xh": (self.hidden, self.inputs),
            "W_hh": (self.hidden, self.hidden),
            "b": (self.hidden,),
        }
        shared = g[:, : self.parameters].sum(axis=0)
        out = {name: shared[self.slices[name]].reshape(shape) for name, shape in shapes.items()}
        out["h0"] = g[:, self.slices["h0"]].copy()
        return out


def _step(
    S: np.ndarray,
    x_t: np.ndarray,
    h_prev: np.ndarray,
    h_t: np.ndarray,
    W_hh: np.ndarray,
    activation: str,
    layout: Layout,
) -> np.ndarray:
    S = np.matmul(W_hh, S)  # W_hh S_{t-1}: the O(H^2 P) part
    S[:, layout.rows, layout.cols_xh] += x_t[:, None, :]
    S[:, layout.rows, layout.cols_hh] += h_prev[:, None, :]
    S[:, layout.rows, layout.cols_b] += 1.0
    S *= activation_derivative(h_t, activation)[:, :, None]
    return S


def step(
    S: np.ndarray,
    x_t: np.ndarray,
    h_prev: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b: np.ndarray,
    *,
    activation: str = "tanh",
) -> tuple[np.ndarray, np.ndarray]:
    """One RTRL step: h_t and S_t = diag(f'(a_t)) (W_hh S_{t-1} + d+a_t/dtheta) ("The cost of BPTT").

    Shapes: S (B, H, P + H) sensitivities of h_{t-1} in the order of :class:`Layout`
    (start from ``Layout(H, D).initial(B, dtype)``), x_t (B, D), h_prev (B, H), W_xh (H, D),
    W_hh (H, H), b (H,). Returns ``(h_t, S_t)``.
    """
    h_t, cache = rnn.step_forward(x_t, h_prev, W_xh, W_hh, b, activation=activation)
    layout = Layout(*cache.W_xh.shape)
    dims = v.bind("h_t", h_t.shape, ("B", "H"))
    dims["P+H"] = (layout.size, "H D + H^2 + 2 H")
    S = v.float_array("S", S, ("B", "H", "P+H"), dims)
    return h_t, _step(S, cache.x, cache.h_prev, h_t, cache.W_hh, activation, layout)


def gradients(
    x: np.ndarray,
    h0: np.ndarray | None,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b: np.ndarray,
    dh: np.ndarray,
    *,
    activation: str = "tanh",
) -> dict[str, np.ndarray]:
    """dL/d(W_xh, W_hh, b, h0) by RTRL, equal to :func:`bptt.rnn.backward` ("The cost of BPTT").

    Shapes as :func:`bptt.rnn.forward`, and dh (B, T, H) = dL/dh_t from the loss (only
    ``dh[:, t]`` is used at step t, so it may come from a loss computed online). Returns
    ``W_xh`` (H, D), ``W_hh`` (H, H), ``b`` (H,) and ``h0`` (B, H). O(B T H^4) time,
    O(B H^3) memory.
    """
    activation = v.choice("activation", activation, ACTIVATIONS)
    x, h0, W_xh, W_hh, b, dims = rnn.check_sequence(x, h0, W_xh, W_hh, b)
    dh = v.float_array("dh", dh, ("B", "T", "H"), dims)
    batch, steps, _ = x.shape
    dtype = np.result_type(h0, dh)

    layout = Layout(*W_xh.shape)
    S = layout.initial(batch, dtype)
    g = np.zeros((batch, layout.size), dtype=dtype)
    pre = x @ W_xh.T + b
    W_hh_T = np.ascontiguousarray(W_hh.T)
    h_prev = h0
    for t in range(steps):
        h_t = rnn.recurrent_step(pre[:, t], h_prev, W_hh_T, activation)
        S = _step(S, x[:, t], h_prev, h_t, W_hh, activation, layout)
        g += np.einsum("bi,bip->bp", dh[:, t], S)
        h_prev = h_t
    return layout.unpack(g)


def operation_counts(hidden: int, inputs: int) -> dict[str, int]:
    """Exact per-step costs of RTRL and BPTT for the tanh RNN (Learning online without
    unrolling, eq. `online-rtrl`), for one sequence.

    P = H D + H^2 + H parameters. ``rtrl_time``: multiply-adds of the product W_hh S_{t-1}
    (H x H times H x P), the dominant term, H^2 P = H^4 + (D + 1) H^3. ``rtrl_memory``: the
    entries of S_t, H P = H^3 + (D + 1) H^2 (independent of T). ``bptt_time``: multiply-adds
    of one backward step (W_hh^T delta, the outer products for W_hh and W_xh), H^2 + H^2 + H D.
    ``bptt_memory``: one stored state per step, H (times T in all). ``uoro_time``:
    J s~ (H^2) plus nu^T F (P); ``uoro_memory``: H + P.
    """
    hidden = v.integer("hidden", hidden, minimum=1)
    inputs = v.integer("inputs", inputs, minimum=1)
    P = hidden * inputs + hidden * hidden + hidden
    return {
        "parameters": P,
        "rtrl_time": hidden * hidden * P,
        "rtrl_memory": hidden * P,
        "bptt_time": 2 * hidden * hidden + hidden * inputs,
        "bptt_memory": hidden,
        "uoro_time": hidden * hidden + P,
        "uoro_memory": hidden + P,
    }
