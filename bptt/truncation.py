"""Gradient estimators for the RNNs of :mod:`bptt.rnn`: full, truncated and randomized BPTT.

The chapters "TBPTT(k1, k2) and the bias of truncation" and "Randomized truncation". The
exact gradient (full BPTT) sums, for every loss L_t, the paths back to every earlier state::

    dL/dtheta = sum_t sum_{k<=t} dL_t/dh_t (J_t ... J_{k+1}) d+h_k/dtheta

- **truncation after tau steps** keeps only the terms with t - k < tau (tau terms per
  loss): biased, and equal to full BPTT exactly when tau >= T;
- **randomized truncation** multiplies every recurrent edge h_{t-1} -> h_t by an independent
  xi_t with P(xi_t = 0) = 1 - pi and P(xi_t = 1/pi) = pi, so E[xi_t] = 1 and the estimate is
  unbiased; in reverse mode the adjoint sent back from h_t to h_{t-1} is xi_t W_hh^T delta_t
  (:func:`_adjoints`, the generalised recursion of :func:`bptt.rnn.backward`). Its variance grows along a
  path by E[xi_t^2] = 1/pi per step: for the scalar linear RNN h_t = a h_{t-1} + x_t the
  second moment of a path of length d is (a^2/pi)^d, which blows up with T when a^2 >= pi.

All estimators take the ``cache`` of :func:`bptt.rnn.forward` (tanh or identity activation)
and ``dh`` (B, T, H), the gradient reaching each h_t straight from the loss, and return the
same keys as :func:`bptt.rnn.backward`: ``x``, ``h0``, ``W_xh``, ``W_hh``, ``b``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v
from bptt.rnn import Cache, backward, check_cache

_CHUNK_BYTES = 32 * 2**20  # memory for the adjoints of one block of Monte-Carlo samples


def _adjoints(
    dh: np.ndarray, derivative: np.ndarray, W_hh: np.ndarray, scale: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The backward recursion of :func:`bptt.rnn.backward`, generalised: sample axes and a
    scale on every recurrent edge.

    delta_t = (g_t + s_{t+1} W_hh^T delta_{t+1}) * phi'(a_t), and bar h_0 = s_1 W_hh^T delta_1.
    ``dh`` (..., B, T, H) holds g_t; ``derivative`` (B, T, H) is phi'(a_t); ``scale``
    (broadcastable to (..., B, T)) multiplies each recurrent edge h_{t-1} -> h_t: ``scale[..., t-1]``
    is s_t (None: all ones, the exact BPTT). Returns ``(delta, dh0)``, delta (..., B, T, H) and
    dh0 (..., B, H) = bar h_0.
    """
    steps = dh.shape[-2]
    shape = np.broadcast_shapes(dh.shape, derivative.shape)
    if scale is not None:
        shape = np.broadcast_shapes(shape, scale.shape + (1,))
    delta = np.empty(shape, dtype=np.result_type(dh, derivative, W_hh))
    carry = np.zeros(delta.shape[:-2] + delta.shape[-1:], dtype=delta.dtype)
    for t in range(steps - 1, -1, -1):
        d_t = np.add(dh[..., t, :], carry, out=delta[..., t, :])
        d_t *= derivative[..., t, :]
        carry = d_t @ W_hh
        if scale is not None:
            carry *= scale[..., t, None]
    return delta, carry


def _gradients_from_adjoints(
    delta: np.ndarray, dh0: np.ndarray, cache: Cache
) -> dict[str, np.ndarray]:
    """dL/d(x, h0, W_xh, W_hh, b) from delta_t (eq. ``rnn-step-backward``); leading sample
    axes of delta are kept."""
    return {
        "x": delta @ cache.W_xh,
        "h0": dh0,
        "W_xh": np.tensordot(delta, cache.x, axes=([-3, -2], [0, 1])),
        "W_hh": np.tensordot(delta, cache.h_prev, axes=([-3, -2], [0, 1])),
        "b": delta.sum(axis=(-3, -2)),
    }


def _check(dh: object, cache: object) -> tuple[np.ndarray, Cache]:
    cache = check_cache(cache)
    spec = ("B", "T", "H")
    return v.float_array("dh", dh, spec, v.bind("cache.h", cache.h.shape, spec)), cache


def full_gradient(dh: np.ndarray, cache: Cache) -> dict[str, np.ndarray]:
    """The exact gradient: :func:`bptt.rnn.backward` (every path, every length)."""
    return backward(dh, cache)


def truncated_gradient(dh: np.ndarray, cache: Cache, tau: int) -> dict[str, np.ndarray]:
    """BPTT truncated after ``tau`` steps: each loss L_t reaches only h_t, ..., h_{t-tau+1}.

    The adjoint reaching h_0 is the one that h_1's kept terms pass on. Shapes as
    :func:`bptt.rnn.backward`; ``tau`` >= 1 (tau = 1 keeps only the immediate terms,
    tau >= T is full BPTT). Cost O(B T tau H^2): all losses move back one step together.
    """
    dh, cache = _check(dh, cache)
    tau = v.integer("tau", tau, minimum=1)
    steps = dh.shape[1]
    derivative = cache.derivative
    delta = np.zeros(np.broadcast_shapes(dh.shape, derivative.shape), dtype=dh.dtype)
    dh0 = np.zeros_like(delta[:, 0])
    carry = dh  # carry[:, i] = dL_{i+j}/dh_i (0-based steps i = 0..T-1-j) at depth j
    for j in range(min(tau, steps)):
        delta_j = carry * derivative[:, : steps - j]
        delta[:, : steps - j] += delta_j
        back = delta_j @ cache.W_hh  # dL_{i+j}/dh_{i-1}: one step further back
        dh0 += back[:, 0]
        carry = back[:, 1:]
    return _gradients_from_adjoints(delta, dh0, cache)


def sample_xi(shape: tuple[int, ...], pi: float, rng: np.random.Generator | int) -> np.ndarray:
    """Independent xi with P(xi = 0) = 1 - pi, P(xi = 1/pi) = pi (so E[xi] = 1), float64."""
    pi = v.probability("pi", pi)
    rng = v.generator("rng", rng)
    return (rng.random(shape) < pi) / pi


def scaled_gradient(dh: np.ndarray, cache: Cache, xi: np.ndarray) -> dict[str, np.ndarray]:
    """BPTT with the recurrent edge h_{t-1} -> h_t scaled by ``xi[..., t-1]`` ("Randomized truncation").

    ``xi`` (..., B, T): any leading axes are samples, and every result gets them in front
    (e.g. ``W_hh`` (..., H, H)). With xi = 1 this is full BPTT; with xi from
    :func:`sample_xi` it is one draw of the randomized-truncation estimator.
    """
    dh, cache = _check(dh, cache)
    leading = tuple(f"S{i}" for i in range(np.ndim(xi) - 2))  # sample axes, any sizes
    xi = v.float_array("xi", xi, (*leading, "B", "T"), v.bind("dh", dh.shape, ("B", "T")))
    delta, dh0 = _adjoints(dh, cache.derivative, cache.W_hh, xi)
    return _gradients_from_adjoints(delta, dh0, cache)


def randomized_gradients(
    dh: np.ndarray, cache: Cache, pi: float, *, samples: int, rng: np.random.Generator | int
) -> dict[str, np.ndarray]:
    """``samples`` independent draws of the randomized-truncation estimator ("Randomized truncation").

    Returns the keys of :func:`bptt.rnn.backward`, each with a leading axis of length
    ``samples`` (take ``[0]`` for one draw). Every sequence of the batch gets its own xi.
    """
    dh, cache = _check(dh, cache)
    samples = v.integer("samples", samples, minimum=1)
    pi = v.probability("pi", pi)
    rng = v.generator("rng", rng)
    blocks = list(_sample_blocks(dh, cache, pi, samples, rng))
    return {key: np.concatenate([block[key] for block in blocks]) for key in blocks[0]}


def _sample_blocks(dh, cache, pi, samples, rng):
    """Draws of the randomized estimator in blocks whose adjoints fit in ``_CHUNK_BYTES``."""
    batch, steps, hidden = dh.shape
    per_sample = max(1, batch * steps * hidden * 8)
    block = max(1, min(samples, _CHUNK_BYTES // per_sample))
    for start in range(0, samples, block):
        count = min(block, samples - start)
        yield scaled_gradient(dh, cache, sample_xi((count, batch, steps), pi, rng))


@dataclasses.dataclass(frozen=True)
class MonteCarlo:
    """Mean and standard deviation (ddof = 1) over ``samples`` draws, per gradient key."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    samples: int

    @property
    def stderr(self) -> dict[str, np.ndarray]:
        """The standard error of each mean, std / sqrt(samples)."""
        return {key: s / np.sqrt(self.samples) for key, s in self.std.items()}

    def covers(self, reference: dict[str, np.ndarray], z: float = 4.0) -> bool:
        """True when every |mean - reference| <= z stderr (plus rounding) for every key."""
        z = v.positive_float("z", z)
        for key, mean in self.mean.items():
            ref = np.asarray(reference[key])
            slack = z * self.stderr[key] + 1e-9 * (np.abs(ref).max(initial=0.0) + 1e-300)
            if not np.all(np.abs(mean - ref) <= slack):
                return False
        return True


def monte_carlo(
    dh: np.ndarray, cache: Cache, pi: float, *, samples: int, rng: np.random.Generator | int
) -> MonteCarlo:
    """Mean and spread of ``samples`` (>= 2) draws of the randomized estimator ("Randomized truncation").

    Memory stays bounded for any number of samples: blocks of draws are merged with the
    pairwise update of the mean and the sum of squared deviations (Chan et al.).
    """
    dh, cache = _check(dh, cache)
    samples = v.integer("samples", samples, minimum=2)
    pi = v.probability("pi", pi)
    rng = v.generator("rng", rng)
    count = 0
    mean: dict[str, np.ndarray] = {}
    squares: dict[str, np.ndarray] = {}
    for block in _sample_blocks(dh, cache, pi, samples, rng):
        n = len(next(iter(block.values())))
        for key, draws in block.items():
            block_mean = draws.mean(axis=0)
            block_squares = ((draws - block_mean) ** 2).sum(axis=0)
            if count == 0:
                mean[key], squares[key] = block_mean, block_squares
                continue
            diff = block_mean - mean[key]
            total = count + n
            mean[key] = mean[key] + diff * (n / total)
            squares[key] = squares[key] + block_squares + diff**2 * (count * n / total)
        count += n
    std = {key: np.sqrt(s / (count - 1)) for key, s in squares.items()}
    return MonteCarlo(mean, std, count)


def growth_factor(a: float, pi: float) -> float:
    """a^2 / pi: the per-step growth of the estimator's second moment for the scalar linear
    RNN h_t = a h_{t-1} + x_t; at 1 or more the variance grows without bound in T."""
    a = v.real("a", a)
    pi = v.probability("pi", pi)
    return a * a / pi
