"""UORO: an unbiased rank-one estimate of the RTRL sensitivity (Learning online without unrolling).

RTRL (:mod:`bptt.rtrl`) carries S_t = dh_t/dtheta, an H x P matrix, forward in time:
S_t = J_t S_{t-1} + F_t with J_t = dh_t/dh_{t-1} and F_t the immediate partials dh_t/dtheta
(eq. `online-rtrl`). Tallec and Ollivier's UORO keeps instead a pair (s~, theta~), an H-vector
and a P-vector, with E[s~ theta~^T] = S_t. With nu a vector of independent random signs
(E[nu nu^T] = I) the update (eq. `online-uoro`)::

    s~_t     = rho_0 J_t s~_{t-1} + rho_1 nu
    theta~_t = theta~_{t-1} / rho_0 + (nu^T F_t) / rho_1

keeps the expectation right, because the cross terms have mean zero:
E[s~_t theta~_t^T] = J_t E[s~ theta~^T] + E[nu nu^T] F_t = J_t S_{t-1} + F_t. The positive
scalars rho_0 = sqrt(||theta~|| / ||J s~||) and rho_1 = sqrt(||nu^T F|| / ||nu||) do not change
the expectation; they balance the norms of the two factors, which minimises the variance of
the product among such rescalings. The gradient estimate of sum_t l_t is
sum_t (dl_t/dh_t . s~_t) theta~_t, O(H^2 + P) per step instead of RTRL's O(H^2 P).
"""

from __future__ import annotations

import numpy as np

from bptt import _validate as v
from bptt import rnn
from bptt.rtrl import Layout

SIGNS = ("random", "ones")
EPS = 1e-12


def uoro_step(s_tilde: np.ndarray, theta_tilde: np.ndarray, J_s: np.ndarray, nu_F: np.ndarray,
              nu: np.ndarray, *, rescale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One UORO update (eq. `online-uoro`), for N independent estimates at once.

    s_tilde (N, H) and theta_tilde (N, P): the pair before the step (only their norms are
    used here); J_s (N, H) = J_t s~_{t-1}; nu_F (N, P) = nu^T F_t; nu (N, H) the signs.
    ``rescale=False`` sets rho_0 = rho_1 = 1 (still unbiased, larger variance).
    Returns the new ``(s_tilde, theta_tilde)``.
    """
    if rescale:
        rho_0 = np.sqrt((np.linalg.norm(theta_tilde, axis=-1) + EPS) /
                        (np.linalg.norm(J_s, axis=-1) + EPS))[:, None]
        rho_1 = np.sqrt((np.linalg.norm(nu_F, axis=-1) + EPS) /
                        (np.linalg.norm(nu, axis=-1) + EPS))[:, None]
    else:
        rho_0 = rho_1 = 1.0
    return rho_0 * J_s + rho_1 * nu, theta_tilde / rho_0 + nu_F / rho_1


def _signs(rng: np.random.Generator, shape: tuple[int, ...], signs: str, dtype) -> np.ndarray:
    if signs == "ones":
        return np.ones(shape, dtype=dtype)
    return rng.choice(np.array([-1.0, 1.0], dtype=dtype), size=shape)


def rnn_gradient_estimates(x: np.ndarray, h0: np.ndarray | None, W_xh: np.ndarray,
                           W_hh: np.ndarray, b: np.ndarray, dh: np.ndarray, draws: int, *,
                           rng, rescale: bool = True, signs: str = "random") -> dict[str, np.ndarray]:
    """``draws`` independent UORO estimates of dL/d(W_xh, W_hh, b) for one tanh-RNN sequence.

    Shapes: x (1, T, D), h0 (1, H) or None, W_xh (H, D), W_hh (H, H), b (H,), dh (1, T, H) =
    dL/dh_t from the loss (used online, at step t). Returns ``W_xh`` (N, H, D), ``W_hh``
    (N, H, H), ``b`` (N, H): one estimate per draw, each unbiased for the RTRL/BPTT gradient
    (:func:`bptt.rtrl.gradients`). ``signs="ones"`` replaces the random signs by +1 (a biased
    estimator, for the negative control); ``rescale`` as in :func:`uoro_step`.
    """
    x, h0, W_xh, W_hh, b, dims = rnn.check_sequence(x, h0, W_xh, W_hh, b)
    dh = v.float_array("dh", dh, ("B", "T", "H"), dims)
    if x.shape[0] != 1:
        raise ValueError(f"x: expected one sequence, shape (1, T, D), got {x.shape}")
    draws = v.integer("draws", draws, minimum=1)
    rng = v.generator("rng", rng)
    signs = v.choice("signs", signs, SIGNS)
    hidden, inputs = W_xh.shape
    layout = Layout(hidden, inputs)
    P = layout.parameters
    dtype = np.result_type(x, W_hh)
    s_tilde = np.zeros((draws, hidden), dtype)
    theta_tilde = np.zeros((draws, P), dtype)
    g = np.zeros((draws, P), dtype)
    h_prev = np.repeat(h0, draws, axis=0)
    for t in range(x.shape[1]):
        x_t = x[0, t]
        h_t = np.tanh(x_t @ W_xh.T + h_prev @ W_hh.T + b)
        slope = 1.0 - h_t**2
        J_s = slope * (s_tilde @ W_hh.T)  # J_t s~ = diag(f') W_hh s~
        nu = _signs(rng, (draws, hidden), signs, dtype)
        delta = nu * slope  # nu^T F_t: the immediate partials, as a vector-Jacobian product
        nu_F = np.concatenate([(delta[:, :, None] * x_t[None, None, :]).reshape(draws, -1),
                               (delta[:, :, None] * h_prev[:, None, :]).reshape(draws, -1),
                               delta], axis=1)
        s_tilde, theta_tilde = uoro_step(s_tilde, theta_tilde, J_s, nu_F, nu, rescale=rescale)
        g += (s_tilde @ dh[0, t])[:, None] * theta_tilde
        h_prev = h_t
    return {"W_xh": g[:, layout.slices["W_xh"]].reshape(draws, hidden, inputs),
            "W_hh": g[:, layout.slices["W_hh"]].reshape(draws, hidden, hidden),
            "b": g[:, layout.slices["b"]].reshape(draws, hidden)}


def flatten(grads: dict[str, np.ndarray]) -> np.ndarray:
    """W_xh, W_hh, b (each with an optional leading draws axis) side by side: (..., P)."""
    lead = grads["b"].shape[:-1]
    return np.concatenate([grads[k].reshape(*lead, -1) for k in ("W_xh", "W_hh", "b")], axis=-1)
