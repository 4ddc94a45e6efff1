"""Claims of "TBPTT(k1, k2) and the bias of truncation": the predicates the chapter asserts.

Each function measures one claim and returns what it measured, so the chapter prints the
margin; ``tests/test_claims_tbptt_bias.py`` runs the same function on a world where the
claim is false (``@pytest.mark.negative_control``).

The influence-balancing problem (:class:`bptt.influence.InfluenceBalancing`, after Tallec and
Ollivier's UORO paper) has one parameter theta with W_xh = theta u. Its two-parameter version
here gives the units that theta pushes up and the units it pushes down their own parameter,

    W_xh = theta_1 u_plus + theta_2 u_minus,   u_plus = max(u, 0),  u_minus = min(u, 0),

so theta_1 = theta_2 = theta is the original problem. Everything is a linear RNN with a
quadratic loss, so every gradient, full or truncated, is affine in theta.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from bptt import _validate as v
from bptt import rnn, truncation
from bptt.influence import InfluenceBalancing

Field = Callable[[np.ndarray], np.ndarray]


def _check_problem(problem: object) -> InfluenceBalancing:
    if not isinstance(problem, InfluenceBalancing):
        raise TypeError(f"problem: expected an InfluenceBalancing, got {type(problem).__name__}")
    return problem


def two_parameter_gradient(problem: InfluenceBalancing, theta, tau: int | None = None
                           ) -> np.ndarray:
    """dL/d(theta_1, theta_2) of the two-parameter influence balancing (module docstring).

    ``theta`` (2,) real; ``tau=None`` is full BPTT (:func:`bptt.rnn.backward`), an integer
    tau >= 1 is BPTT truncated after tau steps (:func:`bptt.truncation.truncated_gradient`).
    Returns a float64 array (2,).
    """
    problem = _check_problem(problem)
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (2,) or not np.all(np.isfinite(theta)):
        raise ValueError(f"theta: expected two finite numbers (theta_1, theta_2), got shape "
                         f"{theta.shape}")
    if tau is not None:
        tau = v.integer("tau", tau, minimum=1)
    u = problem.signs
    u_plus, u_minus = np.maximum(u, 0.0), np.minimum(u, 0.0)
    weights = problem.weights(0.0)
    W_xh = (theta[0] * u_plus + theta[1] * u_minus)[:, None]
    x = np.ones((1, problem.steps, 1))
    h, cache = rnn.forward(x, None, W_xh, weights["W_hh"], weights["b"], activation="identity")
    o = rnn.readout(h, weights["W_hy"])
    _, do = rnn.mse_loss(o, np.full_like(o, problem.target))
    dh = rnn.readout_backward(do, h, weights["W_hy"])["h"]
    grads = rnn.backward(dh, cache) if tau is None else truncation.truncated_gradient(dh, cache,
                                                                                      tau)
    return np.array([grads["W_xh"][:, 0] @ u_plus, grads["W_xh"][:, 0] @ u_minus])


def loop_integral(field: Field, center, half_width: float) -> float:
    """The work of ``field`` around the square of side 2 ``half_width`` centred on ``center``,
    counter-clockwise: sum over the four edges of field(midpoint) . (edge vector).

    Exact for an affine field (every gradient here is one), whose integral along a segment is
    its value at the midpoint times the segment. A gradient field gives 0 around every loop.
    """
    center = np.asarray(center, dtype=float)
    if center.shape != (2,):
        raise ValueError(f"center: expected two numbers, got shape {center.shape}")
    r = v.positive_float("half_width", half_width)
    corners = center + r * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], float)
    total = 0.0
    for a, b in itertools.pairwise(corners):
        total += float(np.asarray(field((a + b) / 2), dtype=float) @ (b - a))
    return total


class LoopResult(NamedTuple):
    """``loop``: the loop integral; ``scale``: largest |field| on the loop times the
    perimeter (what a loop integral of that field could be at most); ``holds``: |loop| >
    ``rtol`` scale, i.e. the field is not the gradient of any function."""

    loop: float
    scale: float
    holds: bool


def is_not_a_gradient(field: Field, center, half_width: float, *, rtol: float = 1e-6
                      ) -> LoopResult:
    """Claim: ``field`` is the gradient of no loss at all (its loop integral is not 0).

    A gradient field has zero work around every closed loop (up to rounding, far below
    ``rtol`` of the scale); a nonzero loop integral proves no loss has this gradient.
    """
    rtol = v.positive_float("rtol", rtol)
    loop = loop_integral(field, center, half_width)
    center = np.asarray(center, dtype=float)
    r = float(half_width)
    corners = center + r * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    largest = max(float(np.linalg.norm(field(c))) for c in corners)
    scale = largest * 8 * r
    return LoopResult(loop, scale, abs(loop) > rtol * scale)


class QuadraticResult(NamedTuple):
    """``slope`` A and ``intercept`` g(0) of g(theta) = A theta + g(0); ``affine_error``: the
    largest second difference of g over the probe points; ``holds``: g is affine (to
    ``atol``) with A < 0, i.e. the derivative of the concave quadratic A theta^2 / 2 + g(0) theta."""

    slope: float
    intercept: float
    affine_error: float
    holds: bool


def is_concave_quadratic_derivative(gradient: Callable[[float], float], *,
                                    probes: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0),
                                    atol: float = 1e-9) -> QuadraticResult:
    """Claim: the one-parameter (truncated) gradient is the derivative of a concave quadratic.

    Any function of one variable is a derivative (of its antiderivative), so in one
    dimension the question is only *which* loss: here g(theta) is affine with a negative
    slope, the derivative of a quadratic that opens downwards, which gradient descent climbs
    away from. ``probes``: equally spaced thetas at which g is evaluated.
    """
    points = np.asarray(probes, dtype=float)
    if points.ndim != 1 or points.size < 3 or not np.allclose(np.diff(points), points[1] - points[0]):
        raise ValueError(f"probes: expected >= 3 equally spaced numbers, got {list(probes)}")
    values = np.array([float(gradient(t)) for t in points])
    step = points[1] - points[0]
    second = np.abs(np.diff(values, 2))
    scale = max(1.0, float(np.abs(values).max()))
    slope = float((values[-1] - values[0]) / (points[-1] - points[0]))
    intercept = float(values[0] - slope * points[0])
    error = float(second.max() / scale)
    return QuadraticResult(slope, intercept, error, bool(error < atol and slope * step < 0))


def slope(problem: InfluenceBalancing, tau: int | None = None) -> float:
    """A_tau = g(1) - g(0): the slope of the (truncated) gradient in theta, exact because
    the gradient is affine. Descent converges for 0 < lr A < 2 and runs away for A < 0."""
    problem = _check_problem(problem)
    return float(problem.gradient(1.0, tau) - problem.gradient(0.0, tau))


def wrong_sign_windows(problem: InfluenceBalancing, taus: Sequence[int]) -> list[int]:
    """The windows tau of ``taus`` whose truncated gradient has the opposite slope to the true
    one (A_tau A_full < 0): far from the optimum it points away from it."""
    full = slope(problem)
    return [int(t) for t in taus if slope(problem, int(t)) * full < 0]


def seen_influence_has_wrong_sign(problem: InfluenceBalancing, tau: int) -> bool:
    """Whether the influence tau steps of truncation see at the steady state, sum_{d < tau}
    u_{d+1}, has the opposite sign to the true influence 2p - n (the bars of the chapter)."""
    problem = _check_problem(problem)
    return bool(problem.influence(tau)[-1] * problem.influence()[-1] < 0)


class WrongSignResult(NamedTuple):
    """``windows``: the taus whose gradient has the wrong sign; ``bars``: the taus whose seen
    influence has the wrong sign; ``holds``: both are exactly 1..``tau_max``."""

    windows: list[int]
    bars: list[int]
    holds: bool


def wrong_sign_up_to(problem: InfluenceBalancing, tau_max: int, taus: Sequence[int]
                     ) -> WrongSignResult:
    """Claim: truncation after tau steps gives the wrong-sign gradient exactly for
    tau = 1 .. ``tau_max`` (among ``taus``), the same windows whose bars have the wrong sign."""
    tau_max = v.integer("tau_max", tau_max, minimum=0)
    windows = wrong_sign_windows(problem, taus)
    bars = [int(t) for t in taus if seen_influence_has_wrong_sign(problem, int(t))]
    expected = [int(t) for t in taus if int(t) <= tau_max]
    return WrongSignResult(windows, bars, windows == expected and bars == expected)


class SeedTable(NamedTuple):
    """Per scheme: the test losses over the seeds, and how many met the criterion."""

    losses: dict
    successes: dict
    criterion: float


def seed_table(test_losses: dict, *, criterion: float) -> SeedTable:
    """Count, per scheme, the seeds whose test loss is below ``criterion`` (fixed beforehand).

    ``test_losses``: scheme -> sequence of test losses, one per seed (>= 1).
    """
    criterion = v.positive_float("criterion", criterion)
    losses = {key: np.asarray(values, dtype=float) for key, values in test_losses.items()}
    for key, values in losses.items():
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"test_losses[{key!r}]: expected a non-empty 1-D sequence, "
                             f"got shape {values.shape}")
    successes = {key: int((values < criterion).sum()) for key, values in losses.items()}
    return SeedTable(losses, successes, criterion)


def never_learns(losses, chance: float, *, fraction: float = 0.95) -> bool:
    """Claim: every seed stays at chance level (test loss above ``fraction`` x chance)."""
    chance = v.positive_float("chance", chance)
    return bool(np.all(np.asarray(losses, dtype=float) > fraction * chance))


def beats_on_every_seed(better, worse, *, margin: float = 0.0) -> bool:
    """Claim: scheme ``better`` has a lower test loss than ``worse`` by more than ``margin``
    on every seed (the two sequences are paired by seed)."""
    a, b = np.asarray(better, dtype=float), np.asarray(worse, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"better, worse: expected two 1-D sequences of the same length, "
                         f"got shapes {a.shape} and {b.shape}")
    return bool(np.all(a < b - margin))
