"""Influence balancing: a linear RNN whose truncated gradient points the wrong way ("TBPTT(k1, k2) and the bias of truncation").

In the spirit of the influence-balancing example of Tallec and Ollivier (2017): one scalar
parameter theta pushes the output up through short paths and down through longer ones.
Truncated BPTT sees only the short paths, so for a short window its gradient has the
opposite sign of the true one, and gradient descent with it drifts away from the optimum
that full BPTT finds.

The model is the linear RNN of :mod:`bptt.rnn` (identity activation, one stream, B = 1,
input x_t = 1, D = 1) with n units wired as a shift register::

    h_t = S h_{t-1} + theta u x_t,    (S h)_i = h_{i+1} (h_{n+1} = 0),    h_0 = 0
    o_t = h_t[1],    L = (1/T) sum_{t=1}^T 1/2 (o_t - y)^2

u = (+1, ..., +1, -1, ..., -1) with ``n_positive`` = p leading +1. What theta writes into unit
i reaches the output i - 1 steps later, so the output at step t is

    o_t = theta c_t,    c_t = sum_{d=0}^{min(t, n) - 1} u_{d+1}     (-> 2p - n for t >= n).

Truncation after tau steps (:func:`bptt.truncation.truncated_gradient`) credits L_t only with
the paths of length d < tau, i.e. with c~_t = sum_{d < min(tau, t, n)} u_{d+1}, so

    dL/dtheta (full) = (1/T) sum_t (o_t - y) c_t,   truncated: (1/T) sum_t (o_t - y) c~_t.

For p < n/2 and tau <= p the two influences have opposite signs at every t >= n.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from bptt import _validate as v
from bptt import rnn, truncation


def _optional_tau(tau: object) -> int | None:
    return None if tau is None else v.integer("tau", tau, minimum=1)


@dataclasses.dataclass(frozen=True)
class InfluenceBalancing:
    """The influence-balancing problem: n units, p positive, T steps, target y ("TBPTT(k1, k2) and the bias of truncation").

    Args:
        n_units: n >= 2, the length of the shift register (the longest path is n - 1 steps).
        n_positive: p, 0 <= p <= n, the number of leading units that theta pushes up.
        steps: T >= 1, the length of the sequence (and of the loss average).
        target: y, the value every output o_t should take.

    Every method takes theta as a real number and returns Python floats or float64 arrays.
    """

    n_units: int = 10
    n_positive: int = 3
    steps: int = 50
    target: float = 1.0

    def __post_init__(self) -> None:
        n = v.integer("n_units", self.n_units, minimum=2)
        p = v.integer("n_positive", self.n_positive, minimum=0)
        if p > n:
            raise ValueError(f"n_positive: expected an integer in [0, n_units] = [0, {n}], got {p}")
        v.integer("steps", self.steps, minimum=1)
        v.real("target", self.target)

    @property
    def signs(self) -> np.ndarray:
        """u (n,): +1 for the first ``n_positive`` units, -1 for the others."""
        u = -np.ones(self.n_units)
        u[: self.n_positive] = 1.0
        return u

    def weights(self, theta: float) -> dict[str, np.ndarray]:
        """The RNN's weights at ``theta``: ``W_xh`` (n, 1) = theta u, ``W_hh`` (n, n) = S
        (ones on the superdiagonal), ``b`` (n,) = 0 and the read-out ``W_hy`` (1, n) = e_1."""
        theta = v.real("theta", theta)
        n = self.n_units
        W_hy = np.zeros((1, n))
        W_hy[0, 0] = 1.0
        return {
            "W_xh": theta * self.signs[:, None],
            "W_hh": np.eye(n, k=1),
            "b": np.zeros(n),
            "W_hy": W_hy,
        }

    def _forward(self, theta: float):
        w = self.weights(theta)
        x = np.ones((1, self.steps, 1))
        h, cache = rnn.forward(x, None, w["W_xh"], w["W_hh"], w["b"], activation="identity")
        o = rnn.readout(h, w["W_hy"])
        loss, do = rnn.mse_loss(o, np.full_like(o, self.target))
        return o, loss, rnn.readout_backward(do, h, w["W_hy"])["h"], cache

    def outputs(self, theta: float) -> np.ndarray:
        """o_t for t = 1..T, shape (T,), computed by running the RNN forward."""
        return self._forward(theta)[0][0, :, 0]

    def loss(self, theta: float) -> float:
        """L(theta) = (1/T) sum_t 1/2 (o_t - y)^2."""
        return self._forward(theta)[1]

    def gradient(self, theta: float, tau: int | None = None) -> float:
        """dL/dtheta by full BPTT (``tau=None``) or by BPTT truncated after ``tau`` >= 1 steps.

        Backpropagation runs in :mod:`bptt.rnn` / :mod:`bptt.truncation` and gives dL/dW_xh
        (n, 1); theta enters as W_xh = theta u, so dL/dtheta = u . dL/dW_xh[:, 0].
        """
        tau = _optional_tau(tau)
        _, _, dh, cache = self._forward(theta)
        grads = rnn.backward(dh, cache) if tau is None else \
            truncation.truncated_gradient(dh, cache, tau)
        return float(grads["W_xh"][:, 0] @ self.signs)

    def influence(self, tau: int | None = None) -> np.ndarray:
        """c_t (``tau=None``) or the truncated c~_t: the paths from theta to o_t of length
        below ``tau``, summed; shape (T,). o_t = theta c_t; the gradient is
        (1/T) sum_t (o_t - y) c~_t."""
        tau = _optional_tau(tau)
        t = np.arange(1, self.steps + 1)
        reach = np.minimum(t, self.n_units) if tau is None else np.minimum(np.minimum(t, tau),
                                                                              self.n_units)
        partial_sums = np.concatenate([[0.0], np.cumsum(self.signs)])
        return partial_sums[reach]

    def optimum(self) -> float:
        """The minimiser theta* = y sum_t c_t / sum_t c_t^2 of the (quadratic) loss."""
        c = self.influence()
        return float(self.target * c.sum() / (c @ c))


class Trajectory(NamedTuple):
    """Gradient descent on theta: ``theta`` and ``loss`` (updates + 1,), before each update
    and after the last."""

    theta: np.ndarray
    loss: np.ndarray


def gradient_descent(problem: InfluenceBalancing, theta0: float, *, lr: float, updates: int,
                     tau: int | None = None) -> Trajectory:
    """``updates`` steps of theta <- theta - lr g(theta), with g the full (``tau=None``) or the
    truncated gradient of :meth:`InfluenceBalancing.gradient` ("TBPTT(k1, k2) and the bias of truncation").

    The loss is quadratic in theta, so each run is a linear recursion: it converges to
    theta* when 0 < lr A < 2 for the slope A = g(1) - g(0) > 0, and runs away exponentially
    when A < 0 (the truncated gradient with the wrong sign). Raises ``ValueError`` if theta
    leaves the finite floats (lower ``lr`` or ``updates``).
    """
    if not isinstance(problem, InfluenceBalancing):
        raise TypeError(f"problem: expected an InfluenceBalancing, got {type(problem).__name__}")
    theta = v.real("theta0", theta0)
    lr = v.positive_float("lr", lr)
    updates = v.integer("updates", updates, minimum=0)
    tau = _optional_tau(tau)
    thetas, losses = [theta], [problem.loss(theta)]
    for update in range(updates):
        try:
            with np.errstate(over="raise", invalid="raise"):
                theta = theta - lr * problem.gradient(theta, tau)
                loss = problem.loss(theta)
        except (FloatingPointError, ValueError):
            raise ValueError(f"lr: theta left the finite floats at update {update + 1} "
                             f"(lr = {lr}, tau = {tau}); use a smaller lr or fewer "
                             "updates") from None
        thetas.append(theta)
        losses.append(loss)
    return Trajectory(np.array(thetas), np.array(losses))


ONLINE_METHODS = ("rtrl", "window", "chunked", "uoro", "randomized")


@dataclasses.dataclass(frozen=True)
class OnlineInfluenceBalancing:
    """Influence balancing as in the UORO paper (Tallec and Ollivier): a linear system whose
    state is carried online, never reset (Learning online without unrolling).

    s_t = A s_{t-1} + theta u,   A = (I + N) / 2  (N: ones on the superdiagonal),
    o_t = s_t[1],   l_t = 1/2 (o_t - y)^2,

    with u = +1 on the first ``n_positive`` units and -1 on the others. Unit 1 hears unit i
    after i - 1 steps or more, so the positive units act on the output through short paths and
    the negative ones through long paths. The sensitivity of o_t to theta along paths of
    length k is c_k = (A^k u)_1; the full (stationary) sensitivity is the sum over all k,
    ((I - A)^{-1} u)_1 = 2 sum_i u_i.
    """

    n_units: int = 23
    n_positive: int = 10
    target: float = 1.0

    def __post_init__(self) -> None:
        n = v.integer("n_units", self.n_units, minimum=2)
        p = v.integer("n_positive", self.n_positive, minimum=0)
        if p > n:
            raise ValueError(f"n_positive: expected an integer in [0, n_units] = [0, {n}], got {p}")
        v.real("target", self.target)

    @property
    def signs(self) -> np.ndarray:
        """u (n,): +1 for the first ``n_positive`` units, -1 for the others."""
        u = -np.ones(self.n_units)
        u[: self.n_positive] = 1.0
        return u

    @property
    def A(self) -> np.ndarray:
        """(n, n): (I + N) / 2, N the upper shift."""
        return 0.5 * (np.eye(self.n_units) + np.eye(self.n_units, k=1))

    def path_sensitivities(self, tau: int) -> np.ndarray:
        """c_k = (A^k u)_1 for k = 0..tau-1, shape (tau,): do_t/dtheta along paths of length k."""
        tau = v.integer("tau", tau, minimum=1)
        out, vec = np.empty(tau), self.signs.copy()
        for k in range(tau):
            out[k] = vec[0]
            vec = self.A @ vec
        return out

    def true_sensitivity(self) -> float:
        """do/dtheta at the fixed point, ((I - A)^{-1} u)_1: what full BPTT sees online."""
        return float(np.linalg.solve(np.eye(self.n_units) - self.A, self.signs)[0])

    def optimum(self) -> float:
        """theta* = y / true sensitivity: the theta whose fixed point puts o at the target."""
        return self.target / self.true_sensitivity()

    def window_sensitivity(self, tau: int) -> float:
        """sum_{k < tau} c_k: the sensitivity a tau-step backward window credits to each loss."""
        return float(self.path_sensitivities(tau).sum())

    def chunked_sensitivity(self, tau: int) -> float:
        """sum_{j=1}^tau sum_{k < j} c_k: what TBPTT(tau, tau) credits to a chunk of tau losses (the
        loss at position j of a chunk is backpropagated j steps, to the chunk start)."""
        return float(np.cumsum(self.path_sensitivities(tau)).sum())

    def first_right(self, kind: str = "window", *, max_tau: int = 1000) -> int:
        """The smallest tau whose ``"window"`` or ``"chunked"`` sensitivity has the sign of the
        true one (at the fixed point every loss has the same o - y, so this is the sign of the
        truncated gradient). Raises ValueError if no tau <= ``max_tau`` has it."""
        kind = v.choice("kind", kind, ("window", "chunked"))
        max_tau = v.integer("max_tau", max_tau, minimum=1)
        windows = np.cumsum(self.path_sensitivities(max_tau))
        values = windows if kind == "window" else np.cumsum(windows)
        right = np.flatnonzero(np.sign(values) == np.sign(self.true_sensitivity()))
        if right.size == 0:
            raise ValueError(f"max_tau: no tau <= {max_tau} has the right sign; raise max_tau")
        return int(right[0] + 1)


class OnlineRun(NamedTuple):
    """Online training of theta: ``theta`` (records, seeds) every ``every`` steps (first row
    the start), ``backward_steps``: multiplications by A per time step beyond the forward one
    (the cost; RTRL and UORO carry one vector forward, as theta is a single number here)."""

    theta: np.ndarray
    every: int
    backward_steps: float


def online_train(problem: OnlineInfluenceBalancing, method: str, *, lr: float, steps: int,
                 seeds: int = 1, tau: int | None = None, theta0: float = 0.0, rng=None,
                 every: int = 100, max_length: int = 4000) -> OnlineRun:
    """Online gradient descent on theta, updated at every step (``chunked``: every tau steps),
    with the state never reset, for ``seeds`` independent runs at once.

    ``method``: ``"rtrl"`` the exact online gradient (S_t = A S_{t-1} + u), ``"window"`` a
    tau-step backward window per loss, ``"chunked"`` TBPTT(tau, tau), ``"uoro"`` the UORO estimate
    (:func:`bptt.uoro.uoro_step`), ``"randomized"`` a random truncation length L per loss with
    P(L > k) = pi^k, pi = 1 - 1/tau (expected length tau, the window's cost), each path term
    reweighted by pi^-k so the estimate is unbiased. Deterministic methods give identical seeds.
    """
    from bptt import uoro

    if not isinstance(problem, OnlineInfluenceBalancing):
        raise TypeError(f"problem: expected an OnlineInfluenceBalancing, got {type(problem).__name__}")
    method = v.choice("method", method, ONLINE_METHODS)
    lr = v.positive_float("lr", lr)
    steps = v.integer("steps", steps, minimum=1)
    seeds = v.integer("seeds", seeds, minimum=1)
    every = v.integer("every", every, minimum=1)
    if method in ("window", "chunked", "randomized"):
        tau = v.integer("tau", tau, minimum=1)
    rng = v.generator("rng", 0 if rng is None else rng)
    A, u, y, n = problem.A, problem.signs, problem.target, problem.n_units
    s = np.zeros((seeds, n))
    theta = np.full(seeds, v.real("theta0", theta0))
    S = np.zeros((seeds, n))  # RTRL sensitivity ds/dtheta
    s_tilde, theta_tilde = np.zeros((seeds, n)), np.zeros((seeds, 1))
    chunk_g = np.zeros(seeds)
    cost = {"rtrl": 1.0, "uoro": 1.0, "window": float(tau or 0), "chunked": 1.0,
            "randomized": float(tau or 0)}[method]
    if method == "window":
        window = problem.window_sensitivity(tau)
    if method == "chunked":
        windows = np.cumsum(problem.path_sensitivities(tau))
    if method == "randomized":
        pi = 1.0 - 1.0 / tau
        c = problem.path_sensitivities(max_length)
        weighted = np.concatenate([[0.0], np.cumsum(c / pi ** np.arange(max_length))])
    records = [theta.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            s = s @ A.T + theta[:, None] * u
            err = s[:, 0] - y
            if method == "rtrl":
                S = S @ A.T + u
                theta = theta - lr * err * S[:, 0]
            elif method == "window":
                theta = theta - lr * err * window
            elif method == "chunked":
                chunk_g += err * windows[t % tau]
                if t % tau == tau - 1:
                    theta, chunk_g = theta - lr * chunk_g, np.zeros(seeds)
            elif method == "uoro":
                nu = 2.0 * rng.integers(0, 2, size=(seeds, n)) - 1.0
                s_tilde, theta_tilde = uoro.uoro_step(s_tilde, theta_tilde, s_tilde @ A.T,
                                                      (nu @ u)[:, None], nu)
                theta = theta - lr * err * s_tilde[:, 0] * theta_tilde[:, 0]
            else:
                length = np.minimum(rng.geometric(1.0 - pi, size=seeds), max_length)
                theta = theta - lr * err * weighted[length]
            if (t + 1) % every == 0:
                records.append(theta.copy())
    return OnlineRun(np.array(records), every, cost)
