"""The tanh RNN in numpy: forward and backward through time, one step or a whole batch.

The chapter "BPTT from scratch in numpy" derives everything here. The model (equation
``rnn-model``), with column vectors as in the equations (the code stores rows, batch first)::

    a_t = W_xh x_t + W_hh h_{t-1} + b        x: (B, T, D), W_xh: (H, D), W_hh: (H, H), b: (H,)
    h_t = phi(a_t)                            h: (B, T, H), phi = tanh (or the identity)
    o_t = W_hy h_t + b_y                      W_hy: (Q, H), b_y: (Q,), o: (B, T, Q)

and its backward pass (equations ``rnn-delta`` and ``rnn-step-backward``): with g_t the
gradient that reaches h_t directly from the loss at step t (through o_t) and delta_T+1 = 0,

    bar h_t  = g_t + W_hh^T delta_{t+1}       (the backward recursion, "The chain rule through time")
    delta_t  = bar h_t * phi'(a_t)             (phi'(a_t) = 1 - h_t^2 for tanh)
    bar W_hh = sum_t delta_t h_{t-1}^T,  bar W_xh = sum_t delta_t x_t^T,  bar b = sum_t delta_t,
    bar h_0  = W_hh^T delta_1.

Losses (equation ``rnn-losses``): the per-step mean squared error through the read-out, the
per-step softmax cross-entropy over a vocabulary, and either one measured at the last step
only. Every array is batch first; results keep the input's floating dtype.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v

ACTIVATIONS = ("tanh", "identity")
"""The hidden nonlinearities: ``"identity"`` gives the linear RNN ("Closed-form gradients of a
linear RNN", "Randomized truncation")."""

STEPS = ("all", "last")
"""Where a loss is measured: at every time step (mean over T) or at the last step only."""

PARAMETER_NAMES = ("W_xh", "W_hh", "b", "W_hy", "b_y")


@dataclasses.dataclass(frozen=True)
class StepCache:
    """What :func:`step_backward` needs from :func:`step_forward` (one time step)."""

    x: np.ndarray  # (B, D)
    h_prev: np.ndarray  # (B, H)
    h: np.ndarray  # (B, H)
    W_xh: np.ndarray  # (H, D)
    W_hh: np.ndarray  # (H, H)
    activation: str


@dataclasses.dataclass(frozen=True)
class Cache:
    """What :func:`backward` needs from :func:`forward` (a whole batch of sequences)."""

    x: np.ndarray  # (B, T, D)
    h0: np.ndarray  # (B, H)
    h: np.ndarray  # (B, T, H)
    W_xh: np.ndarray  # (H, D)
    W_hh: np.ndarray  # (H, H)
    activation: str

    @property
    def h_prev(self) -> np.ndarray:
        """(B, T, H): h_{t-1} for every step, h_0 first."""
        return np.concatenate([self.h0[:, None, :], self.h[:, :-1]], axis=1)

    @property
    def derivative(self) -> np.ndarray:
        """(B, T, H): phi'(a_t) for every step, from the stored h_t."""
        return activation_derivative(self.h, self.activation)


def activation_derivative(h: np.ndarray, activation: str) -> np.ndarray:
    """phi'(a) written through h = phi(a): 1 - h^2 for tanh, 1 for the identity (shape of h)."""
    if activation == "tanh":
        return 1.0 - h * h
    return np.ones_like(h)


def _activate(a: np.ndarray, activation: str, out: np.ndarray | None = None) -> np.ndarray:
    if activation == "tanh":
        return np.tanh(a, out=out)
    if out is None:
        return a
    out[...] = a
    return out


# --------------------------------------------------------------------------- input checks


def check_step(x_t, h_prev, W_xh, W_hh, b) -> tuple:
    """The arguments of :func:`step_forward`, checked, and their ``dims`` (B, D, H)."""
    dims: v.Dims = {}
    x_t = v.float_array("x_t", x_t, ("B", "D"), dims)
    h_prev = v.float_array("h_prev", h_prev, ("B", "H"), dims)
    W_xh = v.float_array("W_xh", W_xh, ("H", "D"), dims)
    W_hh = v.float_array("W_hh", W_hh, ("H", "H"), dims)
    b = v.float_array("b", b, ("H",), dims)
    return x_t, h_prev, W_xh, W_hh, b, dims


def check_sequence(x, h0, W_xh, W_hh, b) -> tuple:
    """The arguments of :func:`forward`, checked (h0 None -> zeros), and their ``dims``.

    h0 comes back in the common dtype of x and the weights, the dtype of the states.
    """
    dims: v.Dims = {}
    x = v.float_array("x", x, ("B", "T", "D"), dims)
    W_xh = v.float_array("W_xh", W_xh, ("H", "D"), dims)
    W_hh = v.float_array("W_hh", W_hh, ("H", "H"), dims)
    b = v.float_array("b", b, ("H",), dims)
    dtype = np.result_type(x, W_xh, W_hh, b)
    check_batch_first(x, h0)
    h0 = v.float_array_or_zeros("h0", h0, ("B", "H"), dims, dtype)
    return x, h0, W_xh, W_hh, b, dims


def check_batch_first(x: np.ndarray, h0: object) -> None:
    """A ValueError that says what is wrong when x (B, T, D) and h0 (B, H) disagree on B.

    An x passed time-first, (T, B, D), is the usual cause: then its axis 1 has h0's batch
    size, and the message says so instead of blaming h0. Nothing happens when h0 is None or
    not 2-D (its own check reports that).
    """
    shape = np.shape(h0) if h0 is not None else None
    if shape is None or len(shape) != 2 or shape[0] == x.shape[0]:
        return
    if x.shape[1] == shape[0]:
        raise ValueError(
            f"x: expected batch first, shape (B, T, D) with B = {shape[0]} (from h0 of shape "
            f"{shape}), got shape {x.shape}, which looks time-first (T, B, D): its axis 1 has "
            f"the batch size of h0; pass np.swapaxes(x, 0, 1)"
        )
    raise ValueError(
        f"h0: expected shape (B, H) with B = {x.shape[0]} (from x), got shape {shape}: the "
        f"batch sizes disagree (x has {x.shape[0]} sequences on axis 0, h0 has {shape[0]} rows)"
    )


def recurrent_step(
    pre_t: np.ndarray,
    h_prev: np.ndarray,
    W_hh_T: np.ndarray,
    activation: str,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """h_t = phi(pre_t + W_hh h_{t-1}) with pre_t = W_xh x_t + b already computed (B, H)."""
    a_t = h_prev @ W_hh_T
    a_t += pre_t
    return _activate(a_t, activation, out=out)


# --------------------------------------------------------------------------- one step


def step_forward(
    x_t: np.ndarray,
    h_prev: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b: np.ndarray,
    *,
    activation: str = "tanh",
) -> tuple[np.ndarray, StepCache]:
    """One step h_t = phi(W_xh x_t + W_hh h_{t-1} + b) (eq. ``rnn-model``).

    Shapes: x_t (B, D), h_prev (B, H), W_xh (H, D), W_hh (H, H), b (H,) -> h_t (B, H).
    Returns ``(h_t, cache)``; pass the cache to :func:`step_backward`.
    """
    activation = v.choice("activation", activation, ACTIVATIONS)
    x_t, h_prev, W_xh, W_hh, b, _ = check_step(x_t, h_prev, W_xh, W_hh, b)
    h_t = _activate(x_t @ W_xh.T + h_prev @ W_hh.T + b, activation)
    return h_t, StepCache(x_t, h_prev, h_t, W_xh, W_hh, activation)


def step_backward(dh_t: np.ndarray, cache: StepCache) -> dict[str, np.ndarray]:
    """Backward through one step: delta_t = dh_t * phi'(a_t), then the local gradients.

    Equations ``rnn-delta`` and ``rnn-step-backward`` ("BPTT from scratch in numpy").
    ``dh_t`` (B, H) is the total bar h_t = dL/dh_t (from the loss and from step t+1). Returns a
    dict with ``x`` (B, D) = delta W_xh, ``h_prev`` (B, H) = delta W_hh (rows: W_hh^T delta_t),
    ``W_xh`` (H, D) = delta^T x_t, ``W_hh`` (H, H) = delta^T h_{t-1} and ``b`` (H,) = the sum
    over the batch of delta.
    """
    if not isinstance(cache, StepCache):
        raise TypeError(f"cache: expected the StepCache from step_forward, got {type(cache)}")
    dh_t = v.float_array("dh_t", dh_t, ("B", "H"), v.bind("cache.h", cache.h.shape, ("B", "H")))
    delta = dh_t * activation_derivative(cache.h, cache.activation)
    return {
        "x": delta @ cache.W_xh,
        "h_prev": delta @ cache.W_hh,
        "W_xh": delta.T @ cache.x,
        "W_hh": delta.T @ cache.h_prev,
        "b": delta.sum(axis=0),
    }


# --------------------------------------------------------------------------- whole sequence


def forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b: np.ndarray,
    *,
    activation: str = "tanh",
) -> tuple[np.ndarray, Cache]:
    """All hidden states h_t = phi(W_xh x_t + W_hh h_{t-1} + b), t = 1..T (eq. ``rnn-model``).

    Shapes: x (B, T, D), h0 (B, H) or None for zeros, W_xh (H, D), W_hh (H, H), b (H,).
    Returns ``(h, cache)`` with h (B, T, H), ``h[:, t-1]`` = h_t. The input projection of all
    steps is one matrix product; only the recurrence W_hh h_{t-1} runs step by step.
    """
    activation = v.choice("activation", activation, ACTIVATIONS)
    x, h0, W_xh, W_hh, b, _ = check_sequence(x, h0, W_xh, W_hh, b)
    batch, steps, _ = x.shape
    pre = x @ W_xh.T + b  # (B, T, H): the input part of every a_t at once
    W_hh_T = np.ascontiguousarray(W_hh.T)
    h = np.empty((batch, steps, W_hh.shape[0]), dtype=h0.dtype)
    h_prev = h0
    for t in range(steps):
        h_prev = recurrent_step(pre[:, t], h_prev, W_hh_T, activation, out=h[:, t])
    return h, Cache(x, h0, h, W_xh, W_hh, activation)


def check_cache(cache: object) -> Cache:
    """``cache`` if it is the :class:`Cache` of :func:`forward`, else a TypeError."""
    if not isinstance(cache, Cache):
        raise TypeError(f"cache: expected the Cache returned by forward, got {type(cache)}")
    return cache


def backward(dh: np.ndarray, cache: Cache) -> dict[str, np.ndarray]:
    """BPTT for a batch of sequences (equations ``rnn-delta`` and ``rnn-step-backward``).

    ``dh`` (B, T, H) holds g_t, the gradient that reaches each h_t directly from the loss at
    step t (not through h_{t+1}); zeros where a step has no loss. ``cache`` comes from
    :func:`forward`. Returns the adjoints ``x`` (B, T, D), ``h0`` (B, H), ``W_xh`` (H, D),
    ``W_hh`` (H, H) and ``b`` (H,), the weight gradients summed over the batch and over time.
    Cost O(B T H (H + D)).
    """
    cache = check_cache(cache)
    dh = v.float_array("dh", dh, ("B", "T", "H"), v.bind("cache.h", cache.h.shape, ("B", "T", "H")))
    x, h_prev, W_xh, W_hh = cache.x, cache.h_prev, cache.W_xh, cache.W_hh
    derivative = cache.derivative  # phi'(a_t) for every step, (B, T, H)
    steps = dh.shape[1]

    delta = np.empty_like(dh, dtype=np.result_type(dh, derivative, W_hh))  # (B, T, H)
    dh_next = np.zeros_like(delta[:, 0])  # W_hh^T delta_{t+1}: nothing comes after step T
    for t in reversed(range(steps)):
        delta_t = np.add(dh[:, t], dh_next, out=delta[:, t])  # bar h_t = g_t + W_hh^T delta_{t+1}
        delta_t *= derivative[:, t]  # delta_t = bar h_t * phi'(a_t), in place
        dh_next = delta_t @ W_hh  # rows: W_hh^T delta_t, sent back to h_{t-1}

    # a_t is linear in x_t, h_{t-1}, W_xh, W_hh and b; the weights are shared by every step,
    # so their gradients sum delta_t times what they multiply, over time and the batch.
    over_batch_and_time = ([0, 1], [0, 1])
    return {
        "x": delta @ W_xh,  # rows: W_xh^T delta_t
        "h0": dh_next,  # bar h_0 = W_hh^T delta_1
        "W_xh": np.tensordot(delta, x, axes=over_batch_and_time),  # sum_t delta_t x_t^T
        "W_hh": np.tensordot(delta, h_prev, axes=over_batch_and_time),  # sum_t delta_t h_{t-1}^T
        "b": delta.sum(axis=(0, 1)),  # sum_t delta_t
    }


# --------------------------------------------------------------------------- time-major fast path


@dataclasses.dataclass(frozen=True)
class TimeMajorCache:
    """What :func:`backward_time_major` needs from :func:`forward_time_major`.

    ``states`` (T+1, B, H) holds h_0 .. h_T contiguously, so ``states[:-1]`` is every h_{t-1}
    and ``states[1:]`` every h_t without a copy; ``work`` (T, B, H) is a scratch buffer (the
    input projections in the forward pass, phi'(a_t) and then delta_t in the backward pass).
    """

    x: np.ndarray  # (T, B, D)
    states: np.ndarray  # (T+1, B, H)
    work: np.ndarray  # (T, B, H)
    W_xh: np.ndarray  # (H, D)
    W_hh: np.ndarray  # (H, H)
    activation: str


def forward_time_major(
    x: np.ndarray,
    h0: np.ndarray | None,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b: np.ndarray,
    *,
    activation: str = "tanh",
) -> tuple[np.ndarray, TimeMajorCache]:
    """:func:`forward` on time-major arrays, written for speed (same equation ``rnn-model``).

    Shapes: x (T, B, D) (time first), h0 (B, H) or None, W_xh (H, D), W_hh (H, H), b (H,).
    Returns ``(h, cache)`` with h (T, B, H) a view of ``cache.states[1:]``. Differences from
    :func:`forward`, all about memory layout: the input projection of every step is one 2-D
    matrix product (T B, D) @ (D, H); every h_t lands in one contiguous (T+1, B, H) buffer;
    the loop allocates nothing (each product and tanh writes into its slot).
    """
    activation = v.choice("activation", activation, ACTIVATIONS)
    dims: v.Dims = {}
    x = v.float_array("x", x, ("T", "B", "D"), dims)
    W_xh = v.float_array("W_xh", W_xh, ("H", "D"), dims)
    W_hh = v.float_array("W_hh", W_hh, ("H", "H"), dims)
    b = v.float_array("b", b, ("H",), dims)
    dtype = np.result_type(x, W_xh, W_hh, b)
    h0 = v.float_array_or_zeros("h0", h0, ("B", "H"), dims, dtype)
    steps, batch, inputs = x.shape
    hidden = W_hh.shape[0]
    x = np.ascontiguousarray(x, dtype=dtype)
    work = (x.reshape(steps * batch, inputs) @ W_xh.T.astype(dtype, copy=False)).reshape(
        steps, batch, hidden)
    work += b  # work[t] = W_xh x_t + b, all steps in one product
    W_hh_T = np.ascontiguousarray(W_hh.T, dtype=dtype)
    states = np.empty((steps + 1, batch, hidden), dtype=dtype)
    states[0] = h0
    for t in range(steps):
        a_t = np.matmul(states[t], W_hh_T, out=states[t + 1])  # W_hh h_{t-1}
        a_t += work[t]  # + W_xh x_t + b
        _activate(a_t, activation, out=a_t)  # h_t = phi(a_t), in place
    return states[1:], TimeMajorCache(x, states, work, W_xh, W_hh, activation)


def backward_time_major(dh: np.ndarray, cache: TimeMajorCache) -> dict[str, np.ndarray]:
    """:func:`backward` on time-major arrays (equations ``rnn-delta``, ``rnn-step-backward``).

    ``dh`` (T, B, H) holds g_t; returns ``x`` (T, B, D), ``h0`` (B, H), ``W_xh`` (H, D),
    ``W_hh`` (H, H) and ``b`` (H,), equal to :func:`backward`'s up to the order of the sums
    (within 1e-12 relative in float64). The loop is the same recursion,
    bar h_t = g_t + W_hh^T delta_{t+1}, delta_t = bar h_t * phi'(a_t), on preallocated rows;
    the weight gradients are each one 2-D product over all T B rows afterwards.
    """
    if not isinstance(cache, TimeMajorCache):
        raise TypeError(
            f"cache: expected the TimeMajorCache from forward_time_major, got {type(cache)}")
    states, delta = cache.states, cache.work
    steps, batch, hidden = delta.shape
    dh = v.float_array("dh", dh, ("T", "B", "H"),
                       v.bind("cache.h", (steps, batch, hidden), ("T", "B", "H")))
    W_hh = cache.W_hh.astype(delta.dtype, copy=False)
    if cache.activation == "tanh":
        np.multiply(states[1:], states[1:], out=delta)
        np.subtract(1.0, delta, out=delta)  # phi'(a_t) = 1 - h_t^2 for every step
    else:
        delta.fill(1.0)
    carry = np.zeros((batch, hidden), dtype=delta.dtype)  # W_hh^T delta_{t+1}
    bar_h = np.empty_like(carry)
    for t in reversed(range(steps)):
        np.add(dh[t], carry, out=bar_h)  # bar h_t = g_t + W_hh^T delta_{t+1}
        np.multiply(delta[t], bar_h, out=delta[t])  # delta_t = bar h_t * phi'(a_t)
        np.matmul(delta[t], W_hh, out=carry)  # rows: W_hh^T delta_t
    rows = delta.reshape(steps * batch, hidden)
    x_rows = cache.x.reshape(steps * batch, -1)
    return {
        "x": (rows @ cache.W_xh.astype(delta.dtype, copy=False)).reshape(steps, batch, -1),
        "h0": carry,
        "W_xh": rows.T @ x_rows,
        "W_hh": rows.T @ states[:-1].reshape(steps * batch, hidden),
        "b": rows.sum(axis=0),
    }


# --------------------------------------------------------------------------- read-out and losses


def readout(h: np.ndarray, W_hy: np.ndarray, b_y: np.ndarray | None = None) -> np.ndarray:
    """o_t = W_hy h_t + b_y for every step: h (B, T, H), W_hy (Q, H), b_y (Q,) -> o (B, T, Q)."""
    dims: v.Dims = {}
    h = v.float_array("h", h, ("B", "T", "H"), dims)
    W_hy = v.float_array("W_hy", W_hy, ("Q", "H"), dims)
    o = h @ W_hy.T
    if b_y is not None:
        o += v.float_array("b_y", b_y, ("Q",), dims)
    return o


def readout_backward(do: np.ndarray, h: np.ndarray, W_hy: np.ndarray) -> dict[str, np.ndarray]:
    """Backward through the read-out: do (B, T, Q) -> ``h`` (B, T, H) = do W_hy,
    ``W_hy`` (Q, H) = sum_{b,t} do_t h_t^T, ``b_y`` (Q,) = sum_{b,t} do_t (eq. ``rnn-readout-backward``)."""
    dims: v.Dims = {}
    h = v.float_array("h", h, ("B", "T", "H"), dims)
    W_hy = v.float_array("W_hy", W_hy, ("Q", "H"), dims)
    do = v.float_array("do", do, ("B", "T", "Q"), dims)
    return {
        "h": do @ W_hy,
        "W_hy": np.tensordot(do, h, axes=([0, 1], [0, 1])),
        "b_y": do.sum(axis=(0, 1)),
    }


def _step_weights(shape: tuple[int, int], steps: str, dtype: np.dtype) -> np.ndarray:
    """(B, T) weights of the per-step losses: 1/(B T) at every step, or 1/B at the last one."""
    batch, length = shape
    weights = np.zeros(shape, dtype=dtype)
    if steps == "all":
        weights[:] = 1.0 / (batch * length)
    else:
        weights[:, -1] = 1.0 / batch
    return weights


def mse_loss(o: np.ndarray, y: np.ndarray, *, steps: str = "all") -> tuple[float, np.ndarray]:
    """Mean squared error L = mean over the batch of (1/T) sum_t 1/2 ||o_t - y_t||^2.

    Equation ``rnn-losses``; its gradient is eq. ``rnn-output-gradient``.

    With ``steps="last"`` only t = T counts: L = mean over the batch of 1/2 ||o_T - y_T||^2.
    Shapes: o, y (B, T, Q). Returns ``(L, dL/do)`` with dL/do (B, T, Q) = w_t (o_t - y_t),
    w_t = 1/(B T) (or 1/B at the last step and 0 elsewhere).
    """
    steps = v.choice("steps", steps, STEPS)
    dims: v.Dims = {}
    o = v.float_array("o", o, ("B", "T", "Q"), dims)
    y = v.float_array("y", y, ("B", "T", "Q"), dims)
    weights = _step_weights(o.shape[:2], steps, o.dtype)[..., None]
    error = o - y
    loss = float(0.5 * np.sum(weights * error * error))
    return loss, weights * error


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable: z - max z - log sum exp(z - max z)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy_loss(
    logits: np.ndarray, targets: np.ndarray, *, steps: str = "all"
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy L = mean over batch and steps of -log softmax(z_t)[y_t].

    Equation ``rnn-losses``; its gradient is eq. ``rnn-output-gradient``.

    Shapes: logits (B, T, V) floats, targets (B, T) integer class indices in [0, V). With
    ``steps="last"`` only t = T counts. Returns ``(L, dL/dlogits)`` with the gradient
    w_t (softmax(z_t) - onehot(y_t)). Stable for large logits (the max is subtracted first).
    """
    steps = v.choice("steps", steps, STEPS)
    dims: v.Dims = {}
    logits = v.float_array("logits", logits, ("B", "T", "V"), dims)
    vocab = logits.shape[-1]
    targets = v.index_array("targets", targets, ("B", "T"), dims, upper=vocab, upper_name="V")
    weights = _step_weights(logits.shape[:2], steps, logits.dtype)
    log_p = log_softmax(logits)
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    loss = float(-np.sum(weights * picked))
    grad = np.exp(log_p)  # softmax(z_t)
    batch_index, step_index = np.indices(targets.shape)
    grad[batch_index, step_index, targets] -= 1.0
    return loss, grad * weights[..., None]


LOSSES = {"mse": mse_loss, "cross_entropy": cross_entropy_loss}


# --------------------------------------------------------------------------- the whole model


def init_params(
    D: int, H: int, Q: int, *, rng: np.random.Generator | int, dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """Random parameters of the tanh RNN with a read-out: W ~ N(0, 1/fan_in), biases 0.

    Returns ``W_xh`` (H, D), ``W_hh`` (H, H), ``b`` (H,), ``W_hy`` (Q, H), ``b_y`` (Q,).
    """
    D, H, Q = (v.integer(n, s, minimum=1) for n, s in (("D", D), ("H", H), ("Q", Q)))
    rng = v.generator("rng", rng)
    params = {
        "W_xh": rng.standard_normal((H, D)) / np.sqrt(D),
        "W_hh": rng.standard_normal((H, H)) / np.sqrt(H),
        "b": np.zeros(H),
        "W_hy": rng.standard_normal((Q, H)) / np.sqrt(H),
        "b_y": np.zeros(Q),
    }
    return {name: value.astype(dtype) for name, value in params.items()}


def check_params(params: object) -> dict[str, np.ndarray]:
    """``params`` if it is a dict with the keys of :data:`PARAMETER_NAMES`."""
    if not isinstance(params, dict) or set(params) != set(PARAMETER_NAMES):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise TypeError(f"params: expected a dict with keys {list(PARAMETER_NAMES)}, got {got}")
    return params


def loss_and_gradients(
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, np.ndarray],
    *,
    h0: np.ndarray | None = None,
    loss: str = "mse",
    steps: str = "all",
    activation: str = "tanh",
) -> tuple[float, dict[str, np.ndarray]]:
    """Forward, loss and BPTT of the whole model in one call ("BPTT from scratch in numpy").

    x (B, T, D); y (B, T, Q) targets for ``loss="mse"`` or (B, T) class indices for
    ``loss="cross_entropy"``; ``params`` as from :func:`init_params`. Returns ``(L, grads)``
    with a gradient for every parameter and for ``h0`` (B, H) and ``x`` (B, T, D).
    """
    params = check_params(params)
    loss_fn = LOSSES[v.choice("loss", loss, tuple(LOSSES))]
    h, cache = forward(x, h0, params["W_xh"], params["W_hh"], params["b"], activation=activation)
    o = readout(h, params["W_hy"], params["b_y"])
    value, do = loss_fn(o, y, steps=steps)
    top = readout_backward(do, h, params["W_hy"])
    grads = backward(top.pop("h"), cache)
    grads.update(top)
    return value, grads
