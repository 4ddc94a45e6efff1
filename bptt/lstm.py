"""The LSTM cell in numpy: forward and backward by hand, one step or a whole batch.

The chapter *Gated architectures* derives everything here (eqs. `lstm-cell` and
`lstm-step-backward`). The weights are laid out as PyTorch's ``nn.LSTM`` stores them, four
blocks of H rows in the order i, f, g, o; ``W_x`` is its ``weight_ih_l0``, ``W_h`` its
``weight_hh_l0`` and ``b`` the sum ``bias_ih_l0 + bias_hh_l0``. The block torch calls ``g`` is
the candidate cell c~_t, the block it calls ``o`` the output gate q_t (the course keeps o_t for
the network's output; see the Notation page). Batch first, row vectors in the code::

    a_t   = x_t W_x^T + h_{t-1} W_h^T + b                   (B, 4H), blocks a^i, a^f, a^g, a^q
    i_t   = s(a^i_t),  f_t = s(a^f_t),  q_t = s(a^q_t),  c~_t = tanh(a^g_t)
    c_t   = f_t * c_{t-1} + i_t * c~_t                     (the additive path)
    h_t   = q_t * tanh(c_t)

and its backward pass, with dh_t the total dL/dh_t and dc_t the total dL/dc_t::

    dc_t     += dh_t * q_t * (1 - tanh(c_t)^2)             (through h_t = q_t tanh(c_t))
    dc_{t-1}  = dc_t * f_t   (+ what reaches c_{t-1} through h_{t-1}, one step earlier)
    da^i = dc_t c~_t i(1-i),  da^f = dc_t c_{t-1} f(1-f),  da^g = dc_t i (1-c~^2),
    da^q = dh_t tanh(c_t) q(1-q);  dh_{t-1} += da_t W_h,  dx_t = da_t W_x,
    dW_x = sum_t da_t^T x_t,  dW_h = sum_t da_t^T h_{t-1},  db = sum_t da_t.

x is (B, T, D); h and c are (B, T, H) with ``h[:, t-1]`` = h_t. Results keep the input's
floating dtype.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v

GATES = ("i", "f", "g", "q")
"""The four blocks of W_x, W_h and b, in torch's order (its ``o`` is our output gate q)."""


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic sigmoid s(a) = 1 / (1 + exp(-a)), computed without overflow."""
    out = np.empty_like(a)
    positive = a >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-a[positive]))
    e = np.exp(a[~positive])
    out[~positive] = e / (1.0 + e)
    return out


@dataclasses.dataclass(frozen=True)
class StepCache:
    """What :func:`step_backward` needs from :func:`step_forward` (one time step)."""

    x: np.ndarray  # (B, D)
    h_prev: np.ndarray  # (B, H)
    c_prev: np.ndarray  # (B, H)
    i: np.ndarray  # (B, H) input gate
    f: np.ndarray  # (B, H) forget gate
    g: np.ndarray  # (B, H) candidate cell c~_t
    q: np.ndarray  # (B, H) output gate
    c: np.ndarray  # (B, H) cell c_t
    W_x: np.ndarray  # (4H, D)
    W_h: np.ndarray  # (4H, H)


@dataclasses.dataclass(frozen=True)
class Cache:
    """What :func:`backward` needs from :func:`forward`: every gate of every step, (B, T, H)."""

    x: np.ndarray  # (B, T, D)
    h0: np.ndarray  # (B, H)
    c0: np.ndarray  # (B, H)
    h: np.ndarray  # (B, T, H)
    c: np.ndarray  # (B, T, H)
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    q: np.ndarray
    W_x: np.ndarray  # (4H, D)
    W_h: np.ndarray  # (4H, H)

    @property
    def h_prev(self) -> np.ndarray:
        """(B, T, H): h_{t-1} for every step, h_0 first."""
        return np.concatenate([self.h0[:, None], self.h[:, :-1]], axis=1)

    @property
    def c_prev(self) -> np.ndarray:
        """(B, T, H): c_{t-1} for every step, c_0 first."""
        return np.concatenate([self.c0[:, None], self.c[:, :-1]], axis=1)


def _check_weights(W_x, W_h, b, dims: v.Dims) -> tuple:
    return v.gate_weights(W_x, W_h, {"b": b}, ("i", "f", "g", "o"), dims)


def _cell(a: np.ndarray, c_prev: np.ndarray) -> tuple:
    """Gates and new cell from the pre-activation a (..., 4H) and c_{t-1} (..., H)."""
    a_i, a_f, a_g, a_q = np.split(a, 4, axis=-1)
    i, f, q = sigmoid(a_i), sigmoid(a_f), sigmoid(a_q)
    g = np.tanh(a_g)
    c = f * c_prev + i * g
    return i, f, g, q, c


# --------------------------------------------------------------------------- one step


def step_forward(x_t, h_prev, c_prev, W_x, W_h, b) -> tuple[np.ndarray, np.ndarray, StepCache]:
    """One LSTM step (Gated architectures, eq. `lstm-cell`).

    Shapes: x_t (B, D), h_prev and c_prev (B, H), W_x (4H, D), W_h (4H, H), b (4H,).
    Returns ``(h_t, c_t, cache)``, h_t and c_t (B, H); pass the cache to :func:`step_backward`.
    """
    dims: v.Dims = {}
    W_x, W_h, b = _check_weights(W_x, W_h, b, dims)
    x_t = v.float_array("x_t", x_t, ("B", "D"), dims)
    h_prev = v.float_array("h_prev", h_prev, ("B", "H"), dims)
    c_prev = v.float_array("c_prev", c_prev, ("B", "H"), dims)
    a = x_t @ W_x.T + h_prev @ W_h.T + b
    i, f, g, q, c = _cell(a, c_prev)
    h = q * np.tanh(c)
    return h, c, StepCache(x_t, h_prev, c_prev, i, f, g, q, c, W_x, W_h)


def step_backward(dh_t, dc_t, cache: StepCache) -> dict[str, np.ndarray]:
    """Backward through one LSTM step (Gated architectures, eq. `lstm-step-backward`).

    ``dh_t`` (B, H) is the total dL/dh_t, ``dc_t`` (B, H) the dL/dc_t that arrives from step
    t+1 (zeros at the last step). Returns ``x`` (B, D), ``h_prev`` (B, H), ``c_prev`` (B, H)
    = dc f_t (the additive path, nothing else reaches c_{t-1} from this step), ``W_x``
    (4H, D), ``W_h`` (4H, H) and ``b`` (4H,), summed over the batch.
    """
    if not isinstance(cache, StepCache):
        raise TypeError(f"cache: expected the StepCache from step_forward, got {type(cache)}")
    dims = v.bind("cache.c", cache.c.shape, ("B", "H"))
    dh_t = v.float_array("dh_t", dh_t, ("B", "H"), dims)
    dc_t = v.float_array("dc_t", dc_t, ("B", "H"), dims)
    tanh_c = np.tanh(cache.c)
    dc = dc_t + dh_t * cache.q * (1.0 - tanh_c * tanh_c)
    da = np.concatenate(
        [
            dc * cache.g * cache.i * (1.0 - cache.i),
            dc * cache.c_prev * cache.f * (1.0 - cache.f),
            dc * cache.i * (1.0 - cache.g * cache.g),
            dh_t * tanh_c * cache.q * (1.0 - cache.q),
        ],
        axis=-1,
    )
    return {
        "x": da @ cache.W_x,
        "h_prev": da @ cache.W_h,
        "c_prev": dc * cache.f,
        "W_x": da.T @ cache.x,
        "W_h": da.T @ cache.h_prev,
        "b": da.sum(axis=0),
    }


# --------------------------------------------------------------------------- whole sequence


def forward(x, h0, c0, W_x, W_h, b) -> tuple[np.ndarray, np.ndarray, Cache]:
    """All states of the LSTM, t = 1..T (Gated architectures, eq. `lstm-cell`).

    Shapes: x (B, T, D), h0 and c0 (B, H) or None for zeros, W_x (4H, D), W_h (4H, H),
    b (4H,). Returns ``(h, c, cache)`` with h and c (B, T, H). The input projection of all
    steps is one matrix product; only the recurrence h_{t-1} W_h^T runs step by step.
    """
    dims: v.Dims = {}
    W_x, W_h, b = _check_weights(W_x, W_h, b, dims)
    x = v.float_array("x", x, ("B", "T", "D"), dims)
    dtype = np.result_type(x, W_x, W_h, b)
    h0 = v.float_array_or_zeros("h0", h0, ("B", "H"), dims, dtype)
    c0 = v.float_array_or_zeros("c0", c0, ("B", "H"), dims, dtype)
    batch, steps, _ = x.shape
    pre = x @ W_x.T + b  # (B, T, 4H): the input part of every a_t at once
    shape = (batch, steps, W_h.shape[1])
    h, c = np.empty(shape, dtype), np.empty(shape, dtype)
    gates = {name: np.empty(shape, dtype) for name in GATES}
    h_prev, c_prev = h0, c0
    for t in range(steps):
        i, f, g, q, c_prev = _cell(pre[:, t] + h_prev @ W_h.T, c_prev)
        h_prev = q * np.tanh(c_prev)
        h[:, t], c[:, t] = h_prev, c_prev
        for name, value in zip(GATES, (i, f, g, q)):
            gates[name][:, t] = value
    return h, c, Cache(x, h0, c0, h, c, W_x=W_x, W_h=W_h, **gates)


def backward(dh, cache: Cache) -> dict[str, np.ndarray]:
    """BPTT through the LSTM (Gated architectures, eq. `lstm-step-backward`, run from T to 1).

    ``dh`` (B, T, H) is the gradient that reaches each h_t directly from the loss (zeros where a
    step has no loss). Returns the parameter gradients ``W_x`` (4H, D), ``W_h`` (4H, H), ``b``
    (4H,); the input and initial-state gradients ``x`` (B, T, D), ``h0``, ``c0`` (B, H); and
    the total adjoints of every state, ``h`` = dL/dh_t and ``c`` = dL/dc_t, both (B, T, H).
    """
    if not isinstance(cache, Cache):
        raise TypeError(f"cache: expected the Cache returned by forward, got {type(cache)}")
    dh = v.float_array("dh", dh, ("B", "T", "H"), v.bind("cache.h", cache.h.shape, ("B", "T", "H")))
    batch, steps, hidden = cache.h.shape
    dtype = np.result_type(dh, cache.h)
    h_prev, c_prev = cache.h_prev, cache.c_prev
    da = np.empty((batch, steps, 4 * hidden), dtype)
    dh_total, dc_total = np.empty_like(da[..., :hidden]), np.empty_like(da[..., :hidden])
    dh_next = np.zeros((batch, hidden), dtype)  # dL/dh_t through h_{t+1}
    dc_next = np.zeros((batch, hidden), dtype)  # dL/dc_t through c_{t+1}: the additive path
    for t in range(steps - 1, -1, -1):
        i, f, g, q = cache.i[:, t], cache.f[:, t], cache.g[:, t], cache.q[:, t]
        dh_t = dh[:, t] + dh_next
        tanh_c = np.tanh(cache.c[:, t])
        dc_t = dc_next + dh_t * q * (1.0 - tanh_c * tanh_c)
        da[:, t] = np.concatenate(
            [dc_t * g * i * (1.0 - i), dc_t * c_prev[:, t] * f * (1.0 - f),
             dc_t * i * (1.0 - g * g), dh_t * tanh_c * q * (1.0 - q)], axis=-1)
        dh_total[:, t], dc_total[:, t] = dh_t, dc_t
        dh_next = da[:, t] @ cache.W_h
        dc_next = dc_t * f
    return {
        "x": da @ cache.W_x,
        "h0": dh_next,
        "c0": dc_next,
        "W_x": np.tensordot(da, cache.x, axes=([0, 1], [0, 1])),
        "W_h": np.tensordot(da, h_prev, axes=([0, 1], [0, 1])),
        "b": da.sum(axis=(0, 1)),
        "h": dh_total,
        "c": dc_total,
    }


# --------------------------------------------------------------------------- the diagram


def draw_cell(ax=None, *, highlight: str = "C1"):
    """Draw one LSTM step (eq. `lstm-cell`) into ``ax``: the four gate blocks computed from
    h_{t-1} and x_t, and the cell path c_{t-1} -> x f_t -> + i_t c~_t -> c_t drawn thick in
    colour ``highlight`` (the additive path along which the gradient is multiplied by f_t
    only). Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.8))
    ax.set(xlim=(-0.3, 10.6), ylim=(-0.9, 5.6), aspect="equal")
    ax.axis("off")
    ax.add_patch(plt.Rectangle((0.9, -0.3), 8.2, 5.3, fill=False, edgecolor="0.6",
                               linewidth=1, linestyle=":"))

    def node(xy, text, *, shape="circle", color="white"):
        if shape == "circle":
            ax.add_patch(plt.Circle(xy, 0.33, facecolor=color, edgecolor="0.2", zorder=3))
        else:
            ax.add_patch(plt.Rectangle((xy[0] - 0.55, xy[1] - 0.3), 1.1, 0.6, facecolor=color,
                                       edgecolor="0.2", zorder=3))
        ax.text(*xy, text, ha="center", va="center", fontsize=10, zorder=4)

    def arrow(a, b, *, color="0.25", width=1.2, rad=0.0):
        ax.annotate("", xy=b, xytext=a, zorder=2, arrowprops={
            "arrowstyle": "-|>", "color": color, "linewidth": width, "shrinkA": 11, "shrinkB": 11,
            "connectionstyle": f"arc3,rad={rad}"})

    top, gates_y, bottom = 4.2, 1.6, 0.2
    # the cell path, c_{t-1} -> x -> + -> c_t
    ax.text(0.2, top, r"$c_{t-1}$", ha="center", va="center", fontsize=11)
    ax.text(10.2, top, r"$c_t$", ha="center", va="center", fontsize=11)
    node((3.0, top), r"$\times$")
    node((5.2, top), r"$+$")
    arrow((0.5, top), (3.0, top), color=highlight, width=3)
    arrow((3.0, top), (5.2, top), color=highlight, width=3)
    arrow((5.2, top), (9.9, top), color=highlight, width=3)
    # the gates from [h_{t-1}, x_t]
    ax.text(0.2, bottom, r"$h_{t-1}$", ha="center", va="center", fontsize=11)
    ax.text(1.6, -0.7, r"$x_t$", ha="center", va="center", fontsize=11)
    blocks = {"f": (3.0, r"$f_t=\sigma$"), "i": (4.4, r"$i_t=\sigma$"),
              "g": (5.8, r"$\tilde c_t=\tanh$"), "q": (7.2, r"$q_t=\sigma$")}
    for x, text in blocks.values():
        node((x, gates_y), text, shape="box", color="#e8eef7")
        ax.plot([x, x], [bottom, gates_y - 0.3], color="0.25", linewidth=1.2, zorder=1)
    ax.plot([0.5, 7.2], [bottom, bottom], color="0.25", linewidth=1.2)
    ax.plot([1.6, 1.6], [-0.45, bottom], color="0.25", linewidth=1.2)
    # f into the product, i * c~ into the sum
    arrow((3.0, gates_y), (3.0, top))
    node((5.1, 2.9), r"$\times$")
    arrow((4.4, gates_y), (5.1, 2.9))
    arrow((5.8, gates_y), (5.1, 2.9))
    arrow((5.1, 2.9), (5.2, top))
    # h_t = q_t * tanh(c_t)
    node((8.3, 3.2), r"$\tanh$", shape="box", color="white")
    ax.annotate("", xy=(8.3, 3.5), xytext=(8.3, top), arrowprops={"arrowstyle": "-|>", "color": "0.25"})
    node((8.3, 2.0), r"$\times$")
    arrow((8.3, 3.2), (8.3, 2.0))
    arrow((7.2, gates_y), (8.3, 2.0))
    arrow((8.3, 2.0), (9.9, 0.6))
    ax.text(10.2, 0.4, r"$h_t$", ha="center", va="center", fontsize=11)
    ax.text(5.0, 5.2, r"additive path: $\bar c_{t-1} = f_t \odot \bar c_t + \dots$",
            ha="center", va="center", fontsize=10, color=highlight)
    return ax
