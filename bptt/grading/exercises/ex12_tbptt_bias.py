"""Checks of exercise 12: the truncated gradient of influence balancing, derived in closed form
("TBPTT(k1, k2) and the bias of truncation").

The model is the chapter's linear RNN (eq. ``influence-balancing``) with n units wired as a shift
register and one scalar parameter theta that writes theta u into the units at every step:
h_t = S h_{t-1} + theta u, (S h)_i = h_{i+1}, h_0 = 0, o_t = h_t[1] and
L = (1/T) sum_{t=1}^T 1/2 (o_t - y)^2. Here u (n,) may be any real vector (the chapter's u is
+-1). The learner derives and writes

- ``truncated_gradient(theta, u, T, y, tau)`` -> dL/dtheta when every loss l_t is
  backpropagated through its last ``tau`` steps only (the paths of length d = 0..tau-1), as a
  closed-form sum, without running the network;
- ``truncated_fixed_point(u, T, y, tau)`` -> the theta where that truncated gradient vanishes,
  the point truncated gradient descent converges to (when it converges);
- ``answers()`` with q1 (the loss at the fixed point of tau = 7 in the chapter's problem, over
  the optimum's) and q2 (the largest window whose slope in theta has the wrong sign, for
  another register).

Expected values: torch autograd in float64 on the *truncated graph*: for each loss l_t the
network is run from the state h_{t-tau} of the full forward pass, detached, so only the last tau
steps carry theta's gradient. The fixed point is the root of that (affine) gradient, from its
values at theta = 0 and 1. The typical wrong answers that get a hint are the same computation
with the window one step longer or shorter, with no truncation (the full gradient), with the
forward pass truncated too (the state before the window set to zero), without the 1/T, or with
the sign flipped.
"""

from __future__ import annotations

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ..questions import number_question
from ._support import AUTOGRAD, rng_for, torch

GRADIENT_KEY = "the truncated gradient"
FIXED_POINT_KEY = "the fixed point"


def _problems(seed: int, salt: str) -> list[dict]:
    """Three problems: a window inside the register, tau = 1, and a window longer than it."""
    rng = rng_for(seed, salt)
    cases = []
    for kind in ("inside", "one", "beyond"):
        n = int(rng.integers(4, 8))
        # "inside": 2 <= tau <= n - 2, so that tau + 1 is still shorter than the register
        tau = {
            "inside": int(rng.integers(2, n - 1)),
            "one": 1,
            "beyond": n + int(rng.integers(0, 3)),
        }
        cases.append(
            {
                "theta": float(rng.normal()),
                "u": rng.normal(0.3, 1.0, n),
                "T": int(rng.integers(n + 2, 3 * n + 3)),
                "y": float(rng.normal(1.0, 0.5)),
                "tau": tau[kind],
            }
        )
    return cases


def _number(result, what: str) -> float:
    try:
        value = np.asarray(result, dtype=float)
    except (TypeError, ValueError):
        raise WrongOutput(f"{what} should return a number, got {a_type(result)}") from None
    if value.size != 1:
        raise WrongOutput(f"{what} should return one number, got an array of shape {value.shape}")
    return float(value.reshape(()))


def _label(case: dict) -> str:
    return f"n = {len(case['u'])}, T = {case['T']}, tau = {case['tau']}"


def _autograd_gradient(
    theta: float, case: dict, tau: int | None, *, forward_truncated: bool = False
) -> float:
    """dL/dtheta by autograd, each loss backpropagated through its last ``tau`` steps (None:
    all). ``forward_truncated``: the window starts from h = 0 instead of the detached state."""
    t_ = torch()
    u, T, y = t_.tensor(case["u"]), case["T"], case["y"]
    n = len(case["u"])
    shift = t_.tensor(np.eye(n, k=1))
    with t_.no_grad():  # the full forward pass: the states the windows start from
        states = [t_.zeros(n, dtype=t_.float64)]
        for _ in range(T):
            states.append(shift @ states[-1] + theta * u)
    leaf = t_.tensor(theta, dtype=t_.float64, requires_grad=True)
    total = 0.0
    for t in range(1, T + 1):
        start = 0 if tau is None else max(t - tau, 0)
        h = t_.zeros(n, dtype=t_.float64) if forward_truncated else states[start]
        for _ in range(start, t):
            h = shift @ h + leaf * u
        total = total + 0.5 * (h[0] - y) ** 2 / T
    (grad,) = t_.autograd.grad(total, leaf)
    return float(grad)


def _root(case: dict, tau: int | None, **kwargs) -> float:
    """Where the (affine) gradient of ``_autograd_gradient`` vanishes, from theta = 0 and 1."""
    at_0 = _autograd_gradient(0.0, case, tau, **kwargs)
    at_1 = _autograd_gradient(1.0, case, tau, **kwargs)
    return -at_0 / (at_1 - at_0)


def _wrong_windows(compute, case: dict) -> list[tuple[float, str]]:
    """The typical wrong answers: compute(tau, forward_truncated) with the mistakes built in."""
    tau = case["tau"]
    off = (
        "off by one in the window: truncation after tau steps keeps the paths of length "
        "d = 0, ..., tau - 1 (tau = 1 keeps only the immediate term)"
    )
    wrong = [(compute(tau + 1, False), off)]
    if tau > 1:
        wrong.append((compute(tau - 1, False), off))
    wrong += [
        (
            compute(None, False),
            (
                "this is the full gradient's answer: the truncated one credits theta only with "
                "the paths shorter than tau"
            ),
        ),
        (
            compute(tau, True),
            (
                "truncation cuts the backward pass only: the output o_t = theta c_t still uses "
                "every path of the forward pass"
            ),
        ),
    ]
    return wrong


# ----------------------------------------------------------------------------- truncated_gradient


def _gradient_inputs(seed: int) -> list[dict]:
    return _problems(seed, "ex12.gradient")


def _collect_gradient(functions, cases):
    values = {}
    for case in cases:
        result = functions["truncated_gradient"](
            case["theta"], case["u"].copy(), case["T"], case["y"], case["tau"]
        )
        values[f"{GRADIENT_KEY} ({_label(case)})"] = _number(result, "truncated_gradient")
    return values


def _score_gradient(cases, values):
    def hints(case):
        theta = case["theta"]
        expected = _autograd_gradient(theta, case, case["tau"])
        variants = _wrong_windows(
            lambda tau, fwd: _autograd_gradient(theta, case, tau, forward_truncated=fwd), case
        )
        scales = [(case["T"], "the loss is the mean over the T steps: divide by T")]
        key = f"{GRADIENT_KEY} ({_label(case)})"
        return [compare(key, array_value(values, key), expected, variants=variants, scales=scales)]

    return Verdict.from_cases(("", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- truncated_fixed_point


def _fixed_point_inputs(seed: int) -> list[dict]:
    return _problems(seed, "ex12.fixed_point")


def _collect_fixed_point(functions, cases):
    values = {}
    for case in cases:
        result = functions["truncated_fixed_point"](
            case["u"].copy(), case["T"], case["y"], case["tau"]
        )
        values[f"{FIXED_POINT_KEY} ({_label(case)})"] = _number(result, "truncated_fixed_point")
    return values


def _score_fixed_point(cases, values):
    def hints(case):
        expected = _root(case, case["tau"])
        variants = _wrong_windows(lambda tau, fwd: _root(case, tau, forward_truncated=fwd), case)
        key = f"{FIXED_POINT_KEY} ({_label(case)})"
        return [compare(key, array_value(values, key), expected, variants=variants)]

    return Verdict.from_cases(("", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- questions


def _register(n: int, p: int, T: int) -> dict:
    u = -np.ones(n)
    u[:p] = 1.0
    return {"u": u, "T": T, "y": 1.0}


def _loss(theta: float, case: dict) -> float:
    """L(theta) by running the register forward (numpy)."""
    n = len(case["u"])
    h, total = np.zeros(n), 0.0
    for _ in range(case["T"]):
        h = np.append(h[1:], 0.0) + theta * case["u"]
        total += 0.5 * (h[0] - case["y"]) ** 2
    return total / case["T"]


def _q1_loss_ratio() -> float:
    """L(theta_7) / L(theta*) for the chapter's problem: n = 10, p = 3, T = 50, y = 1."""
    case = _register(10, 3, 50)
    return _loss(_root(case, 7), case) / _loss(_root(case, None), case)


def _q2_last_wrong_window() -> float:
    """The largest tau whose truncated slope A_tau = g(1) - g(0) has the opposite sign of the
    full gradient's, for n = 12, p = 4, T = 60, y = 1 (autograd)."""

    def slope(tau):
        return _autograd_gradient(1.0, case, tau) - _autograd_gradient(0.0, case, tau)

    case = _register(12, 4, 60)
    full = slope(None)
    return float(max(tau for tau in range(1, 13) if slope(tau) * full < 0))


EXERCISE = Exercise(
    "ex12",
    "The truncated gradient in closed form",
    (
        Part(
            "truncated_gradient",
            4,
            ("truncated_gradient",),
            _gradient_inputs,
            _collect_gradient,
            _score_gradient,
        ),
        Part(
            "truncated_fixed_point",
            3,
            ("truncated_fixed_point",),
            _fixed_point_inputs,
            _collect_fixed_point,
            _score_fixed_point,
        ),
        number_question("q1", _q1_loss_ratio, rtol=1e-3),
        number_question("q2", _q2_last_wrong_window, rtol=0.0, atol=0.01),
    ),
    kinds=("derive",),
)

_SHORTCUTS = (
    "bptt.influence.InfluenceBalancing.gradient",
    "bptt.influence.InfluenceBalancing.influence",
    "bptt.influence.InfluenceBalancing.optimum",
    "bptt.truncation.truncated_gradient",
    "bptt.rnn.backward",
    *AUTOGRAD,
)
# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {"truncated_gradient": _SHORTCUTS, "truncated_fixed_point": _SHORTCUTS}
)
