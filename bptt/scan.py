"""L diagonal linear recurrence as an associative scan, forward and backward (Recurrences in parallel).

The recurrence, elementwise over the H channels (eq. `scan-recurrence`)::

    h_t = lam_t * h_{t-1} + u_t,        t = 1..T,   h_0 given

(lam_t the diagonal coefficients, the eigenvalues lambda of a diagonal W_hh when they do not
depend on t; u_t the input drive, e.g. W_xh x_t + b) is a composition of affine maps
h -> lam h + u. Composing two of them, the earlier first, is the associative operator
(eq. `scan-combine`)::

    (lam_1, u_1) o (lam_2, u_2) = (lam_2 lam_1, lam_2 u_1 + u_2)

so every prefix h_t is a prefix "sum" under o, which a parallel scan computes in a logarithmic
number of rounds: :func:`blelloch_scan` (up-sweep and down-sweep, ceil(log2 T) rounds each,
O(T) combines) and :func:`hillis_steele_scan` (ceil(log2 T) rounds, O(T log T) combines).
The backward pass of BPTT (eq. `scan-adjoint`) is the same kind of recurrence run backwards::

    hbar_t = g_t + lam_{t+1} * hbar_{t+1},    hbar_T = g_T
    lambar_t = hbar_t * h_{t-1},   ubar_t = hbar_t,   hbar_0 = lam_1 * hbar_1

so :func:`backward` is a scan too. Shapes are batch first: lam, u (B, T, H), h0 (B, H).
numpy only; the torch version lives in :mod:`bptt.torch.scan`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from bptt import _validate as v

METHODS = ("blelloch", "hillis-steele", "sequential")


class ScanCount(NamedTuple):
    """What a scan did: ``rounds`` (sequential steps, each a batch of independent combines),
    ``combines`` (applications of the operator o, each one H-vector of multiply-adds per
    sequence) and ``rounds_per_sweep`` (ceil(log2 T) for the parallel scans, T for the loop)."""

    rounds: int
    combines: int
    rounds_per_sweep: int


def combine(lam_1: np.ndarray, u_1: np.ndarray, lam_2: np.ndarray, u_2: np.ndarray):
    """The associative operator (eq. `scan-combine`): apply (lam_1, u_1) first, then (lam_2, u_2).

    Returns ``(lam_2 * lam_1, lam_2 * u_1 + u_2)``; any broadcastable shapes.
    """
    return lam_2 * lam_1, lam_2 * u_1 + u_2


def _check(lam, u, h0):
    lam = v.float_array("lam", lam, ("B", "T", "H"))
    dims = v.bind("lam", lam.shape, ("B", "T", "H"))
    u = v.float_array("u", u, ("B", "T", "H"), dims)
    dtype = np.result_type(lam, u)
    h0 = v.float_array_or_zeros("h0", h0, ("B", "H"), dims, dtype)
    return lam.astype(dtype, copy=False), u.astype(dtype, copy=False), h0.astype(dtype, copy=False)


def sequential(lam: np.ndarray, u: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
    """h_t = lam_t * h_{t-1} + u_t by the plain loop over t (eq. `scan-recurrence`).

    lam, u (B, T, H), h0 (B, H) or None (zeros). Returns h (B, T, H). T sequential steps.
    """
    lam, u, h0 = _check(lam, u, h0)
    h = np.empty_like(u)
    h_prev = h0
    for t in range(lam.shape[1]):
        h_prev = lam[:, t] * h_prev + u[:, t]
        h[:, t] = h_prev
    return h


def _fold_h0(lam, u, h0):
    # h_1 = lam_1 h_0 + u_1: fold the initial state into the first element, so the scan
    # starts from h = 0 and element t of the inclusive prefix is h_t.
    u = u.copy()
    u[:, 0] += lam[:, 0] * h0
    return u


def blelloch_scan(lam: np.ndarray, u: np.ndarray, h0: np.ndarray | None = None):
    """All h_t by Blelloch's work-efficient scan under o (eq. `scan-combine`).

    The time axis is padded with identity elements (lam = 1, u = 0) to P = 2^ceil(log2 T).
    The up-sweep builds the products of blocks of 2, 4, ..., P elements; the down-sweep
    hands every position the product of everything before it (an exclusive scan); one more
    combine per position makes it inclusive. Each sweep is ceil(log2 T) rounds of
    independent combines; P - 1 combines per sweep, plus T.

    lam, u (B, T, H), h0 (B, H) or None. Returns ``(h, ScanCount)``, h (B, T, H).
    """
    lam, u, h0 = _check(lam, u, h0)
    batch, steps, hidden = lam.shape
    u = _fold_h0(lam, u, h0)
    levels = math.ceil(math.log2(steps)) if steps > 1 else 0
    size = 2**levels
    L = np.ones((batch, size, hidden), dtype=lam.dtype)
    U = np.zeros((batch, size, hidden), dtype=lam.dtype)
    L[:, :steps], U[:, :steps] = lam, u
    rounds = combines = 0
    for d in range(levels):  # up-sweep: node i + 2^(d+1) - 1 takes its left sibling
        step = 2 ** (d + 1)
        left, right = slice(step // 2 - 1, size, step), slice(step - 1, size, step)
        L[:, right], U[:, right] = combine(L[:, left], U[:, left], L[:, right], U[:, right])
        rounds += 1
        combines += size // step
    L[:, size - 1], U[:, size - 1] = 1.0, 0.0  # the root becomes the identity
    for d in reversed(range(levels)):  # down-sweep: prefixes move down the tree
        step = 2 ** (d + 1)
        left, right = slice(step // 2 - 1, size, step), slice(step - 1, size, step)
        left_lam, left_u = L[:, left].copy(), U[:, left].copy()
        L[:, left], U[:, left] = L[:, right], U[:, right]
        L[:, right], U[:, right] = combine(L[:, right], U[:, right], left_lam, left_u)
        rounds += 1
        combines += size // step
    # exclusive prefix (everything before t) followed by element t: h_t
    _, h = combine(L[:, :steps], U[:, :steps], lam, u)
    rounds += 1
    combines += steps
    return h, ScanCount(rounds, combines, levels)


def hillis_steele_scan(lam: np.ndarray, u: np.ndarray, h0: np.ndarray | None = None):
    """All h_t by the Hillis-Steele scan: in round d every position t >= 2^d combines with the
    element 2^d before it. ceil(log2 T) rounds, sum_d (T - 2^d) combines (O(T log T) work).

    lam, u (B, T, H), h0 (B, H) or None. Returns ``(h, ScanCount)``, h (B, T, H).
    """
    lam, u, h0 = _check(lam, u, h0)
    steps = lam.shape[1]
    L, U = lam.copy(), _fold_h0(lam, u, h0)
    rounds = combines = 0
    shift = 1
    while shift < steps:
        A_new, B_new = combine(L[:, :-shift], U[:, :-shift], L[:, shift:], U[:, shift:])
        L[:, shift:], U[:, shift:] = A_new, B_new
        rounds += 1
        combines += steps - shift
        shift *= 2
    return U, ScanCount(rounds, combines, rounds)


def scan(lam: np.ndarray, u: np.ndarray, h0: np.ndarray | None = None, *,
         method: str = "blelloch"):
    """h_t = lam_t * h_{t-1} + u_t for all t by ``method`` in :data:`METHODS`.

    Returns ``(h, ScanCount)``; ``"sequential"`` counts T rounds of one combine each.
    """
    method = v.choice("method", method, METHODS)
    if method == "blelloch":
        return blelloch_scan(lam, u, h0)
    if method == "hillis-steele":
        return hillis_steele_scan(lam, u, h0)
    h = sequential(lam, u, h0)
    return h, ScanCount(h.shape[1], h.shape[1], h.shape[1])


def backward(dh: np.ndarray, lam: np.ndarray, h: np.ndarray, h0: np.ndarray | None = None, *,
             method: str = "blelloch") -> dict[str, np.ndarray]:
    """BPTT through the recurrence as a reverse scan (eq. `scan-adjoint`).

    dh (B, T, H) is g_t = dL/dh_t arriving directly from the loss; lam (B, T, H) the
    coefficients, h (B, T, H) the forward states, h0 (B, H) or None. The total adjoints
    hbar_t = g_t + a_{t+1} hbar_{t+1} are a linear recurrence in reversed time with
    coefficients lam_{t+1} (and lam_{T+1} = 0), computed by :func:`scan` with ``method``.

    Returns ``lam``, ``u`` (B, T, H) and ``h0`` (B, H): dL/dlam_t = hbar_t h_{t-1},
    dL/du_t = hbar_t, dL/dh_0 = lam_1 hbar_1.
    """
    lam, dh, h0 = _check(lam, dh, h0)
    h = v.float_array("h", h, ("B", "T", "H"), v.bind("lam", lam.shape, ("B", "T", "H")))
    coeff = np.zeros_like(lam)
    coeff[:, :-1] = lam[:, 1:]  # hbar_t = lam_{t+1} hbar_{t+1} + g_t
    hbar_rev, _ = scan(coeff[:, ::-1], dh[:, ::-1], None, method=method)
    hbar = hbar_rev[:, ::-1]
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    return {"lam": hbar * h_prev, "u": hbar.copy(), "h0": lam[:, 0] * hbar[:, 0]}


def counts(steps: int, method: str = "blelloch") -> ScanCount:
    """The :class:`ScanCount` of one forward scan of length ``steps`` without running it.

    Blelloch: 2 ceil(log2 T) + 1 rounds, 2 (P - 1) + T combines (P = 2^ceil(log2 T));
    Hillis-Steele: ceil(log2 T) rounds, sum over d < ceil(log2 T) of (T - 2^d) combines;
    sequential: T and T.
    """
    steps = v.integer("steps", steps, minimum=1)
    method = v.choice("method", method, METHODS)
    levels = math.ceil(math.log2(steps)) if steps > 1 else 0
    if method == "blelloch":
        return ScanCount(2 * levels + 1, 2 * (2**levels - 1) + steps, levels)
    if method == "hillis-steele":
        return ScanCount(levels, sum(steps - 2**d for d in range(levels)), levels)
    return ScanCount(steps, steps, steps)


def delayed_product(n: int, steps: int, lags: tuple[int, ...], *, rng) -> tuple[np.ndarray, np.ndarray]:
    """A task for the limits of a linear recurrence: x_t = +-1 at random, y = prod_l x_{T-l}.

    Returns x (n, T, 1) and y (n,). With two lags or more y is uncorrelated with every input,
    so no linear function of x beats the mean; with one lag y = x_{T-l} is linear.
    """
    n = v.integer("n", n, minimum=1)
    steps = v.integer("steps", steps, minimum=1)
    lags = tuple(v.integer("lags", lag, minimum=0) for lag in lags)
    if not lags or max(lags) >= steps:
        raise ValueError(f"lags: expected one or more lags in [0, steps) = [0, {steps}), got {lags}")
    rng = v.generator("rng", rng)
    x = rng.choice([-1.0, 1.0], size=(n, steps, 1))
    y = np.prod([x[:, steps - 1 - lag, 0] for lag in lags], axis=0)
    return x, y


def readout_features(states: np.ndarray, degree: int) -> np.ndarray:
    """[1, h] (``degree=1``) or [1, h, h_i h_j for i <= j] (``degree=2``): the inputs of a
    least-squares read-out of final states ``states`` (n, H). Returns (n, features)."""
    states = v.float_array("states", states, ("n", "H"))
    degree = v.integer("degree", degree, minimum=1)
    if degree > 2:
        raise ValueError(f"degree: expected 1 or 2, got {degree}")
    columns = [np.ones((states.shape[0], 1)), states]
    if degree == 2:
        i, j = np.triu_indices(states.shape[1])
        columns.append(states[:, i] * states[:, j])
    return np.concatenate(columns, axis=1)


def readout_mse(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                degree: int) -> float:
    """Test MSE of the least-squares read-out of :func:`readout_features` fitted on ``train``.

    ``train``, ``test``: (states (n, H), targets (n,)).
    """
    w, *_ = np.linalg.lstsq(readout_features(train[0], degree), train[1], rcond=None)
    return float(np.mean((readout_features(test[0], degree) @ w - test[1]) ** 2))
