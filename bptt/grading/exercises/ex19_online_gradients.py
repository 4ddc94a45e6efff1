"""Checks of exercise 19: RTRL and UORO ("Learning online without unrolling").

The tanh RNN a_t = x_t W_xh^T + h_{t-1} W_hh^T + b, h_t = tanh(a_t), batch first. The learner
writes

- ``rtrl_step(S, x_t, h_prev, h_t, W_hh)``: one step of eq. ``online-rtrl``,
  S_t = diag(1 - h_t^2) (W_hh S_{t-1} + d+a_t/dtheta), with the sensitivities of one parameter
  per key: ``S["W_xh"]`` (B, H, H, D), ``S["W_hh"]`` (B, H, H, H), ``S["b"]`` (B, H, H), entry
  [n, i, ...] = dh_{t,i}/dtheta[...] for sequence n; returns the same dict for h_t;
- ``uoro_update(s_tilde, theta_tilde, J, F, nu)``: one step of eq. ``online-uoro`` for N
  independent estimates, s_tilde (N, H), theta_tilde (N, P), the step Jacobian J (H, H), the
  immediate partials F (H, P) and the signs nu (N, H); returns ``(s_tilde, theta_tilde)``;
- ``answers()`` with q1, RTRL's multiply-adds per step for H = 64, D = 3.

Expected values: ``rtrl_step`` is run by the check over a whole sequence from S_0 = 0; the
gradient sum_t dh_t S_t it gives must equal torch autograd's gradient of sum(dh * h) in float64.
``uoro_update`` is first checked for unbiasedness *exactly*: the check repeats one pair over all
2^H sign vectors, so the mean of s~_t theta~_t^T over them is the expectation over nu (a Monte
Carlo average without sampling error), which must be J s~ theta~^T + F; then for the chapter's
norm-balancing rho_0 and rho_1 (an unbiased update with other factors earns half the part).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import WrongOutput
from ..hints import array_dict_score, array_value, compare
from ..parts import Exercise, Part, Verdict
from ..questions import number_question
from ._support import copied, entries, grad_of, leaf, pair, rng_for, torch

KEYS = ("W_xh", "W_hh", "b")


# ----------------------------------------------------------------------------- rtrl_step


def _rtrl_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex19.rtrl")
    B, H = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    D, T = H + int(rng.integers(1, 3)), int(rng.integers(3, 7))
    return {
        "x": rng.standard_normal((B, T, D)),
        "h0": np.tanh(rng.standard_normal((B, H))),
        "W_xh": rng.normal(0, 0.6, (H, D)),
        "W_hh": rng.normal(0, 0.6, (H, H)),
        "b": rng.normal(0, 0.2, H),
        "dh": rng.standard_normal((B, T, H)),
    }


def _states(case: dict) -> list[np.ndarray]:
    h, states = case["h0"], [case["h0"]]
    for t in range(case["x"].shape[1]):
        h = np.tanh(case["x"][:, t] @ case["W_xh"].T + h @ case["W_hh"].T + case["b"])
        states.append(h)
    return states


def _zero_sensitivities(case: dict) -> dict:
    B, H = case["h0"].shape
    D = case["x"].shape[2]
    return {
        "W_xh": np.zeros((B, H, H, D)),
        "W_hh": np.zeros((B, H, H, H)),
        "b": np.zeros((B, H, H)),
    }


def _collect_rtrl(functions, case):
    states = _states(case)
    S = _zero_sensitivities(case)
    shapes = {k: v.shape for k, v in S.items()}
    gradient = {k: 0.0 for k in KEYS}
    for t in range(case["x"].shape[1]):
        result = functions["rtrl_step"](
            copied(S),
            case["x"][:, t].copy(),
            states[t].copy(),
            states[t + 1].copy(),
            case["W_hh"].copy(),
        )
        S = entries(result, KEYS, "rtrl_step")
        for k in KEYS:
            value = np.asarray(S[k], dtype=float)
            if value.shape != shapes[k]:
                raise WrongOutput(
                    f"rtrl_step: S['{k}'] has shape {value.shape}, expected {shapes[k]} "
                    "(batch, the H entries of h_t, then the shape of the parameter)"
                )
            S[k] = value
            gradient[k] = gradient[k] + np.einsum("ni,ni...->...", case["dh"][:, t], value)
    return gradient


def _autograd(case: dict) -> dict:
    t = torch()
    W = {k: leaf(case[k]) for k in KEYS}
    x, h, dh = t.tensor(case["x"]), t.tensor(case["h0"]), t.tensor(case["dh"])
    total = 0.0
    for step in range(x.shape[1]):
        h = t.tanh(x[:, step] @ W["W_xh"].T + h @ W["W_hh"].T + W["b"])
        total = total + (dh[:, step] * h).sum()
    total.backward()
    return {k: grad_of(v) for k, v in W.items()}


def _rtrl(
    case: dict, *, slope=True, slope_on_all=True, carry=True, transposed=False, current=False
):
    """The check's own RTRL over the sequence, with switches that make the typical mistakes."""
    states, S = _states(case), _zero_sensitivities(case)
    W_hh = case["W_hh"].T if transposed else case["W_hh"]
    H = W_hh.shape[0]
    eye = np.eye(H)
    gradient = {k: 0.0 for k in KEYS}
    for t in range(case["x"].shape[1]):
        h_prev, h_t = states[t], states[t + 1]
        immediate = {
            "W_xh": np.einsum("ij,nk->nijk", eye, case["x"][:, t]),
            "W_hh": np.einsum("ij,nk->nijk", eye, h_t if current else h_prev),
            "b": np.broadcast_to(eye, S["b"].shape),
        }
        factor = (1 - h_t**2) if slope else np.ones_like(h_t)
        for k in KEYS:
            past = np.einsum("ij,nj...->ni...", W_hh, S[k]) if carry else 0.0
            scale = factor.reshape(factor.shape + (1,) * (S[k].ndim - 2))
            S[k] = scale * (past + immediate[k]) if slope_on_all else past + scale * immediate[k]
            gradient[k] = gradient[k] + np.einsum("ni,ni...->...", case["dh"][:, t], S[k])
    return gradient


def _rtrl_variants(case: dict, expected: dict) -> dict:
    wrong = [
        (_rtrl(case, slope=False), "the tanh derivative is missing: multiply by 1 - h_t**2"),
        (
            _rtrl(case, slope_on_all=False),
            "1 - h_t**2 multiplies the whole bracket, W_hh S_{t-1} included, not only the immediate partials",
        ),
        (
            _rtrl(case, carry=False),
            "the sensitivity forgets the past: add W_hh S_{t-1}, how h_{t-1} already depended on theta",
        ),
        (
            _rtrl(case, transposed=True),
            "W_hh S_{t-1}, not W_hh^T S_{t-1}: row i of h_t hears h_{t-1} through W_hh[i, :]",
        ),
    ]
    variants = {k: [(g[k], hint) for g, hint in wrong] for k in KEYS}
    variants["W_hh"].append(
        (
            _rtrl(case, current=True)["W_hh"],
            "the immediate partial of a_t by W_hh[i, k] is h_{t-1, k}, not h_{t, k}",
        )
    )
    return variants


_score_rtrl = array_dict_score(
    KEYS,
    _autograd,
    variants=_rtrl_variants,
    name=lambda k, case: f"the '{k}' gradient sum_t dh_t S_t",
)


# ----------------------------------------------------------------------------- uoro_update


def _uoro_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex19.uoro")
    H, P = int(rng.integers(3, 5)), int(rng.integers(5, 9))
    return {
        "s_tilde": rng.standard_normal(H),
        "theta_tilde": 3.0 * rng.standard_normal(P),
        "J": rng.normal(0, 0.8, (H, H)),
        "F": rng.normal(0, 1.5, (H, P)),
        "signs": np.array(list(itertools.product((-1.0, 1.0), repeat=H))),  # all 2^H vectors
    }


def _collect_uoro(functions, inputs):
    N = len(inputs["signs"])
    s = np.repeat(inputs["s_tilde"][None], N, axis=0)
    theta = np.repeat(inputs["theta_tilde"][None], N, axis=0)
    result = functions["uoro_update"](
        s, theta, inputs["J"].copy(), inputs["F"].copy(), inputs["signs"].copy()
    )
    s_new, theta_new = pair(result, "uoro_update", "(s_tilde, theta_tilde)")
    return {"s_tilde": s_new, "theta_tilde": theta_new}


def _balanced(inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """The update of eq. online-uoro with the chapter's rho_0 and rho_1, for every sign vector."""
    nu, J, F = inputs["signs"], inputs["J"], inputs["F"]
    J_s = J @ inputs["s_tilde"]
    nu_F = nu @ F
    rho_0 = np.sqrt(np.linalg.norm(inputs["theta_tilde"]) / np.linalg.norm(J_s))
    rho_1 = np.sqrt(
        np.linalg.norm(nu_F, axis=1, keepdims=True) / np.linalg.norm(nu, axis=1, keepdims=True)
    )
    return rho_0 * J_s + rho_1 * nu, inputs["theta_tilde"] / rho_0 + nu_F / rho_1


def _score_uoro(inputs, values):
    N, H = inputs["signs"].shape
    P = len(inputs["theta_tilde"])
    s_new, theta_new = array_value(values, "s_tilde"), array_value(values, "theta_tilde")
    for name, got, shape in (("s_tilde", s_new, (N, H)), ("theta_tilde", theta_new, (N, P))):
        if got.shape != shape:
            return Verdict.wrong(
                f"{name}: shape {got.shape}, expected {shape} (one row per estimate)"
            )
        if not np.all(np.isfinite(got)):
            return Verdict.wrong(f"{name}: contains NaN or inf")
    J, F, s, theta = inputs["J"], inputs["F"], inputs["s_tilde"], inputs["theta_tilde"]
    mean = np.einsum("ni,np->ip", s_new, theta_new) / N  # the exact expectation over nu
    target = np.outer(J @ s, theta) + F
    nu = inputs["signs"]
    rho_0_sq = np.linalg.norm(theta) / np.linalg.norm(J @ s)
    rho_1 = np.sqrt(np.linalg.norm(nu @ F, axis=1) / np.sqrt(H))
    # nu^T F not divided by rho_1: the new term becomes E[rho_1 nu nu^T] F (cross terms still vanish)
    undivided = (np.einsum("n,ni,nj->ij", rho_1, nu, nu) / N) @ F
    hint = compare(
        "the mean of s_tilde theta_tilde^T over all sign vectors nu",
        mean,
        target,
        variants=[
            (
                rho_0_sq * np.outer(J @ s, theta) + F,
                "biased: theta_tilde must be divided by rho_0, so that rho_0 cancels in the product",
            ),
            (
                np.outer(J @ s, theta) + undivided,
                "biased: nu^T F must be divided by rho_1, so that rho_1 cancels in the product",
            ),
            (np.outer(J.T @ s, theta) + F, "biased: J_t s_tilde, not J^T s_tilde"),
            (
                np.outer(J @ s, theta),
                "biased: the new term nu nu^T F is missing (add nu^T F / rho_1 to theta_tilde)",
            ),
        ],
    )
    if hint:
        return Verdict.wrong(
            hint.replace("does not match the expected value", "is not J s~ theta~^T + F (biased)")
        )
    s_right, theta_right = _balanced(inputs)
    if compare("s", s_new, s_right) or compare("theta", theta_new, theta_right):
        return Verdict(
            0.5,
            "unbiased, but not the chapter's rho_0 = sqrt(||theta~|| / ||J s~||) and rho_1 = "
            "sqrt(||nu^T F|| / ||nu||), each estimate (row) its own, which balance the norms of "
            "the two factors and keep the variance small",
        )
    return Verdict.correct()


# ----------------------------------------------------------------------------- questions


def _q1_rtrl_cost() -> float:
    """H^2 P for H = 64, D = 3: the product W_hh S_{t-1} of one step (by the package's count)."""
    from ...rtrl import operation_counts

    return operation_counts(64, 3)["rtrl_time"]


EXERCISE = Exercise(
    "ex19",
    "RTRL and UORO, gradients carried forward",
    (
        Part("rtrl_step", 5, ("rtrl_step",), _rtrl_inputs, _collect_rtrl, _score_rtrl),
        Part("uoro_update", 4, ("uoro_update",), _uoro_inputs, _collect_uoro, _score_uoro),
        number_question("q1", _q1_rtrl_cost, rtol=1e-6),
    ),
    kinds=("implement",),
)

EXERCISE = EXERCISE.forbidding(
    {
        "rtrl_step": ("bptt.rtrl.step", "bptt.rtrl._step", "bptt.rtrl.gradients", "bptt.rnn.backward"),
        "uoro_update": ("bptt.uoro.uoro_step", "bptt.uoro.rnn_gradient_estimates"),
    }
)
