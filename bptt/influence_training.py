"""Stochastic gradient descent on influence balancing with one-pass gradient estimators
("Randomized truncation", equation `randomized-xi`).

Influence balancing (:class:`bptt.influence.InfluenceBalancing`) comes from Tallec and
Ollivier's UORO paper. This module trains its parameter theta with three estimators that all
cost one backward pass over the T steps per update:

* ``"randomized"``: every recurrent edge scaled by an independent xi_t with P(xi_t = 1/pi) =
  pi, else 0 (:func:`bptt.truncation.sample_xi`), unbiased;
* ``"chunked"``: chunked TBPTT(tau, tau) as an estimator at fixed theta, the edges at the
  chunk boundaries cut (xi = 0 there, 1 elsewhere, :func:`chunk_mask`), the chunks starting
  at a random phase each update; segments of tau steps, the same mean length as the
  randomized cuts with pi = 1 - 1/tau;
* ``"full"``: full BPTT (xi = 1).

The model is linear with a quadratic loss, so for a fixed xi the gradient is affine in theta,
g_xi(theta) = g_xi(0) + (g_xi(1) - g_xi(0)) theta: each run evaluates the package's backward
pass (:func:`bptt.truncation.scaled_gradient`) at theta = 0 and 1 for all its draws at once,
then runs the scalar recursion theta <- theta - lr g_xi(theta) exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bptt import _validate as v
from bptt import rnn, truncation
from bptt.influence import InfluenceBalancing

ESTIMATORS = ("randomized", "chunked", "full")


def chunk_mask(T: int, tau: int, phase: int = 0) -> np.ndarray:
    """xi (T,) of chunked TBPTT(tau, tau): 0 on the edges h_{t-1} -> h_t that cross a chunk
    boundary, 1 elsewhere. Chunks start at 0-based steps phase, phase + tau, ... (and 0);
    the edge h_0 -> h_1 is never cut. ``phase`` in [0, tau)."""
    T = v.integer("T", T, minimum=1)
    tau = v.integer("tau", tau, minimum=1)
    phase = v.integer("phase", phase, minimum=0)
    if phase >= tau:
        raise ValueError(f"phase: expected an integer in [0, tau) = [0, {tau}), got {phase}")
    steps = np.arange(T)
    xi = np.ones(T)
    xi[(steps > 0) & ((steps - phase) % tau == 0)] = 0.0
    return xi


def _dh_and_cache(problem: InfluenceBalancing, theta: float):
    w = problem.weights(theta)
    x = np.ones((1, problem.steps, 1))
    h, cache = rnn.forward(x, None, w["W_xh"], w["W_hh"], w["b"], activation="identity")
    o = rnn.readout(h, w["W_hy"])
    _, do = rnn.mse_loss(o, np.full_like(o, problem.target))
    return rnn.readout_backward(do, h, w["W_hy"])["h"], cache


def estimator_draws(problem: InfluenceBalancing, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g_xi(0), slope g_xi(1) - g_xi(0)) for each row of ``xi`` (N, T): the affine estimates."""
    xi = v.float_array("xi", xi, ("N", "T"), {"T": (problem.steps, "problem.steps")})
    values = []
    for theta in (0.0, 1.0):
        dh, cache = _dh_and_cache(problem, theta)
        grads = truncation.scaled_gradient(dh, cache, xi[:, None, :])["W_xh"]  # (N, n, 1)
        values.append(grads[:, :, 0] @ problem.signs)
    return values[0], values[1] - values[0]


def draw_xi(estimator: str, problem: InfluenceBalancing, updates: int, tau: int,
            rng: np.random.Generator) -> np.ndarray:
    """The (updates, T) edge weights of ``estimator`` for a whole run (module docstring)."""
    estimator = v.choice("estimator", estimator, ESTIMATORS)
    T = problem.steps
    if estimator == "randomized":
        return truncation.sample_xi((updates, T), 1.0 - 1.0 / tau, rng)
    if estimator == "chunked":
        return np.stack([chunk_mask(T, tau, int(p)) for p in rng.integers(tau, size=updates)])
    return np.ones((updates, T))


class Run(NamedTuple):
    """One SGD run: ``theta`` (updates + 1,) before each update and after the last (inf from
    the update where |theta| passed ``limit``); ``diverged``; ``average``: the mean of the
    last half of the iterates (nan when diverged)."""

    theta: np.ndarray
    diverged: bool
    average: float


def sgd(problem: InfluenceBalancing, estimator: str, *, tau: int, lr: float, updates: int,
        seed: int, limit: float = 1e6) -> Run:
    """SGD on theta with one draw of ``estimator`` per update, theta_0 ~ U(-1, 1) from ``seed``.

    ``tau`` >= 2: the chunk length of ``"chunked"`` and pi = 1 - 1/tau of ``"randomized"``.
    """
    if not isinstance(problem, InfluenceBalancing):
        raise TypeError(f"problem: expected an InfluenceBalancing, got {type(problem).__name__}")
    tau = v.integer("tau", tau, minimum=2)
    lr = v.positive_float("lr", lr)
    updates = v.integer("updates", updates, minimum=2)
    rng = np.random.default_rng(v.integer("seed", seed, minimum=0))
    theta = float(rng.uniform(-1.0, 1.0))
    intercept, slope = estimator_draws(problem, draw_xi(estimator, problem, updates, tau, rng))
    path = np.full(updates + 1, np.inf)
    path[0] = theta
    for n in range(updates):
        theta = theta - lr * (intercept[n] + slope[n] * theta)
        if not abs(theta) < limit:
            return Run(path, True, float("nan"))
        path[n + 1] = theta
    return Run(path, False, float(path[updates // 2 :].mean()))
