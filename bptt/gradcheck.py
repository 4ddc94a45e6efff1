"""Finite differences and the relative error that every gradient check of the course uses.

"BPTT from scratch in numpy" checks the hand-written BPTT against the centred difference
(eq. ``finite-difference``)

    dL/dtheta_i ~ (L(theta + eps e_i) - L(theta - eps e_i)) / (2 eps),

whose error is O(eps^2) (plus rounding of order machine-eps * |L| / eps, hence float64 and
eps around 1e-6), and compares two gradients by one number, the relative error

    rel(a, b) = ||a - b|| / max(||a||, ||b||)      (0 when both are zero).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bptt import _validate as v


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, *, eps: float = 1e-6
) -> np.ndarray:
    """Centred finite differences of a scalar function ``f`` at ``x`` (float64, any shape).

    ``f`` is called 2 x.size times with a perturbed copy of ``x`` (``x`` itself is never
    changed) and must return one number (a float or a 0-d array): a function that returns an
    array gets a TypeError that says so. Returns an array shaped like ``x``.
    """
    if not callable(f):
        raise TypeError(f"f: expected a callable returning a float, got {type(f).__name__}")
    x = v.float64_array("x", x, tuple(f"n{i}" for i in range(np.ndim(x))))
    eps = v.positive_float("eps", eps)
    point = x.copy()
    grad = np.empty_like(point)
    flat, out = point.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        upper = _scalar(f(point))
        flat[i] = saved - eps
        lower = _scalar(f(point))
        flat[i] = saved
        out[i] = (upper - lower) / (2.0 * eps)
    return grad


def _scalar(value: object) -> float:
    """The float that ``f`` returned, or a TypeError that names f and what it returned."""
    if np.ndim(value) != 0:
        raise TypeError(
            f"f: expected a function that returns one number (a scalar loss), got an array of "
            f"shape {np.shape(value)}; reduce it first (for example .sum() or .mean()), or take "
            f"the gradient of each entry separately"
        )
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"f: expected a function that returns one number (a scalar loss), got "
            f"{type(value).__name__} {value!r}"
        ) from None


def numerical_gradients(
    f: Callable[[dict[str, np.ndarray]], float],
    arrays: dict[str, np.ndarray],
    *,
    eps: float = 1e-6,
) -> dict[str, np.ndarray]:
    """Centred finite differences of ``f(arrays)`` with respect to every array of the dict.

    ``f`` takes a dict with the keys of ``arrays``; each array is perturbed in turn while the
    others keep their values. Returns a dict of arrays shaped like the inputs.
    """
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays: expected a dict of float64 arrays, got {type(arrays).__name__}")
    grads = {}
    for name, value in arrays.items():

        def partial(changed: np.ndarray, name: str = name) -> float:
            return f({**arrays, name: changed})

        grads[name] = numerical_gradient(partial, value, eps=eps)
    return grads


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||) over all entries (Frobenius norm); 0 when both are zero."""
    a_arr = v.float_array("a", a, tuple(f"n{i}" for i in range(np.ndim(a))))
    b_arr = v.float_array("b", b, tuple(f"n{i}" for i in range(np.ndim(b))))
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"a, b: expected equal shapes, got a {a_arr.shape} and b {b_arr.shape}")
    a64, b64 = a_arr.astype(np.float64), b_arr.astype(np.float64)
    scale = max(np.linalg.norm(a64), np.linalg.norm(b64))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a64 - b64) / scale)


def relative_errors(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """:func:`relative_error` for every key of two gradient dicts with the same keys."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise TypeError(f"a, b: expected two dicts, got {type(a).__name__}, {type(b).__name__}")
    if set(a) != set(b):
        raise ValueError(f"a, b: expected the same keys, got {sorted(a)} and {sorted(b)}")
    return {key: relative_error(a[key], b[key]) for key in a}


def max_relative_error(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """The largest of :func:`relative_errors` (the one number a check cell asserts on)."""
    return max(relative_errors(a, b).values(), default=0.0)
