"""Spectra of recurrent weight matrices: what the powers of W_hh do to a gradient.

"Eigenvalues and the power of W" shows that dL/dh_t contains the powers (W_hh^T)^(T-i), so
the eigenvalues of W_hh decide whether those terms vanish or explode; power iteration makes
the dominant eigenvector visible (its error shrinks like |lambda_2/lambda_1|^k, eq.
`eigen-angle-rate`). "Vanishing and exploding gradients" states the sufficient condition for
vanishing gradients: ||J_t|| <= gamma sigma_max(W_hh) with gamma the bound on the
activation's derivative (1 for tanh, 1/4 for the logistic sigmoid), so sigma_max(W_hh) <
1/gamma makes dL/dh_k shrink geometrically with T - k (eq. `vanishing-bound`). "Other stabilizers"
uses the orthogonal initialisation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v

GAMMA = {"tanh": 1.0, "sigmoid": 0.25}
"""The largest value of the activation's derivative (tanh' <= 1, sigmoid' <= 1/4)."""


def _square(name: str, M: object) -> np.ndarray:
    return v.float_array(name, M, ("n", "n"))


def eigenvalues(M: np.ndarray) -> np.ndarray:
    """Eigenvalues of a square M (n, n), ordered by decreasing modulus; complex (n,)."""
    values = np.linalg.eigvals(_square("M", M))
    return values[np.argsort(-np.abs(values), kind="stable")]


def singular_values(M: np.ndarray) -> np.ndarray:
    """Singular values of M (m, n) in decreasing order, (min(m, n),)."""
    return np.linalg.svd(v.float_array("M", M, ("m", "n")), compute_uv=False)


def spectral_radius(M: np.ndarray) -> float:
    """rho(M) = max |lambda_i| of a square M (n, n)."""
    return float(np.abs(eigenvalues(M)[0]))


def spectral_norm(M: np.ndarray) -> float:
    """sigma_max(M) = ||M||_2, the largest singular value of M (m, n)."""
    return float(singular_values(M)[0])


@dataclasses.dataclass(frozen=True)
class PowerIteration:
    """Result of :func:`power_iteration` after ``k`` steps.

    ``value``: the Rayleigh-quotient estimate of the dominant eigenvalue; ``vector`` (n,): the
    unit estimate of its eigenvector; ``values`` (k+1,) and ``vectors`` (k+1, n): the same
    after 0, 1, ..., k steps (the history whose error shrinks like |lambda_2/lambda_1|^k).
    """

    value: float
    vector: np.ndarray
    values: np.ndarray
    vectors: np.ndarray


def power_iteration(
    M: np.ndarray,
    steps: int,
    *,
    rng: np.random.Generator | int | None = None,
    v0: np.ndarray | None = None,
) -> PowerIteration:
    """v_{k+1} = M v_k / ||M v_k||, with the estimate lambda_k = v_k^T M v_k
    (Eigenvalues and the power of W, eq. `eigen-power-iteration`).

    M (n, n) real; start from ``v0`` (n,) or, when it is None, from a standard normal vector
    drawn from ``rng`` (a Generator or seed; one of the two is required). Converges to the
    eigenvector of the eigenvalue of largest modulus when that one is real and unique.
    """
    M = _square("M", M)
    steps = v.integer("steps", steps, minimum=1)  # zero steps would return the start vector as an answer
    if v0 is None:
        if rng is None:
            raise TypeError("rng: expected a numpy.random.Generator or seed when v0 is None")
        v0 = v.generator("rng", rng).standard_normal(M.shape[0])
    else:
        v0 = v.float_array("v0", v0, ("n",), v.bind("M", M.shape, ("n", "n")))
    norm = np.linalg.norm(v0)
    if norm == 0:
        raise ValueError(f"v0: expected a nonzero vector of shape (n,) = {M.shape[:1]}, got zeros")
    vectors = np.empty((steps + 1, M.shape[0]), dtype=np.result_type(M, v0))
    vectors[0] = v0 / norm
    for k in range(steps):
        w = M @ vectors[k]
        vectors[k + 1] = w / np.linalg.norm(w)
    values = np.einsum("ki,ij,kj->k", vectors, M, vectors)
    return PowerIteration(float(values[-1]), vectors[-1], values, vectors)


def angle(u: np.ndarray, w: np.ndarray) -> float:
    """The angle in radians, in [0, pi/2], between the lines spanned by u and w (n,) each."""
    dims: v.Dims = {}
    u = v.float_array("u", u, ("n",), dims)
    w = v.float_array("w", w, ("n",), dims)
    cosine = abs(u @ w) / (np.linalg.norm(u) * np.linalg.norm(w))
    return float(np.arccos(np.clip(cosine, 0.0, 1.0)))


def _nonzero(what: str, value: float, M: np.ndarray) -> float:
    if value == 0.0:
        raise ValueError(f"M: expected a matrix with a nonzero {what}, got 0 (shape {M.shape})")
    return value


def scale_to_spectral_radius(M: np.ndarray, radius: float) -> np.ndarray:
    """M * radius / rho(M): the same eigenvectors, spectral radius ``radius`` (> 0)."""
    M = _square("M", M)
    radius = v.positive_float("radius", radius)
    return M * (radius / _nonzero("spectral radius", spectral_radius(M), M))


def scale_to_spectral_norm(M: np.ndarray, sigma: float) -> np.ndarray:
    """M * sigma / sigma_max(M): largest singular value ``sigma`` (> 0)."""
    M = v.float_array("M", M, ("m", "n"))
    sigma = v.positive_float("sigma", sigma)
    return M * (sigma / _nonzero("largest singular value", spectral_norm(M), M))


def orthogonal(n: int, *, rng: np.random.Generator | int, gain: float = 1.0) -> np.ndarray:
    """A random orthogonal (n, n) matrix times ``gain``, uniform over O(n)
    (Other stabilizers).

    QR of a standard normal matrix with the signs of R's diagonal moved into Q, so every
    singular value and every eigenvalue modulus equals ``gain``.
    """
    n = v.integer("n", n, minimum=1)
    gain = v.real("gain", gain)
    q, r = np.linalg.qr(v.generator("rng", rng).standard_normal((n, n)))
    return gain * q * np.where(np.diag(r) < 0, -1.0, 1.0)


def vanishing_bound(W_hh: np.ndarray, activation: str = "tanh") -> float:
    """gamma sigma_max(W_hh): a bound on ||J_t|| for every t
    (Vanishing and exploding gradients, eq. `vanishing-bound`).

    Below 1 it proves that ||dL/dh_k|| <= (gamma sigma_max)^(T-k) ||dL/dh_T|| shrinks
    geometrically (a sufficient condition for vanishing gradients; above 1 nothing follows).
    ``activation`` is ``"tanh"`` (gamma = 1) or ``"sigmoid"`` (gamma = 1/4).
    """
    gamma = GAMMA[v.choice("activation", activation, tuple(GAMMA))]
    return gamma * spectral_norm(_square("W_hh", W_hh))


def vanishes(W_hh: np.ndarray, activation: str = "tanh") -> bool:
    """True when sigma_max(W_hh) < 1/gamma, the sufficient condition for vanishing gradients."""
    return vanishing_bound(W_hh, activation) < 1.0
