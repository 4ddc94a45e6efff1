"""Checks of exercise 10: orthogonal initialisation and its effect on gradient flow ("Other stabilizers").

The learner writes

- ``orthogonal_init(n, rng)`` -> an (n, n) orthogonal matrix drawn uniformly (Haar) from the
  orthogonal group with the numpy Generator ``rng``: the QR factorisation of a standard normal
  matrix with the signs of R's diagonal moved into the columns of Q;
- ``gradient_norms(W_hh, x, h0, g)`` -> (B, T + 1): for the tanh RNN
  h_t = tanh(x_t + h_{t-1} W_hh^T) (inputs already projected: x (B, T, H), h0 (B, H)) and the
  loss L = sum(g * h_T) (g (B, H)), entry [b, d] is ||dL/dh_{T-d}|| of sequence b, so entry 0
  is ||g|| and entry T belongs to h_0;
- ``answers()`` with q1 (a decay factor), q2 (a choice: which initialisation keeps the
  gradient's size) and q3 (the fraction of orthogonal matrices that are reflections).

Expected values: orthogonality (Q^T Q = I), reproducibility (equal generators, equal Q) and
uniformity (the mean of many draws is near 0, as for the Haar measure, where every entry has
mean 0 and variance 1/n) for ``orthogonal_init``; torch autograd in float64 for the gradient
norms. The typical wrong answers that the hints name are the expected norms reordered by time
or squared, and a numpy backward pass with a mistake built in (no tanh derivative, the
derivative of the wrong step, W_hh^T in place of W_hh).
"""

from __future__ import annotations

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ..questions import choice_question, number_question
from ._support import derived_seed, grad_of, leaf, rng_for, torch

DRAWS = 400
Z_LIMIT = 5.0
ORTHOGONAL_ATOL = 1e-10


# ----------------------------------------------------------------------------- orthogonal_init


def _init_inputs(seed: int) -> dict:
    return {"seed": derived_seed(seed, "ex10.init")}


def _generator(seed: int, stream: int) -> np.random.Generator:
    return rng_for(seed, f"ex10.init.{stream}")


def _matrix(result, n: int) -> np.ndarray:
    try:
        Q = np.asarray(result, dtype=float)
    except (TypeError, ValueError):
        raise WrongOutput(
            f"orthogonal_init: should return an (n, n) array, got {a_type(result)}"
        ) from None
    if Q.shape != (n, n):
        raise WrongOutput(f"orthogonal_init({n}, rng): shape {Q.shape}, expected ({n}, {n})")
    return Q


def _mean_of_draws(init, n: int, generator: np.random.Generator) -> np.ndarray:
    return np.mean([_matrix(init(n, generator), n) for _ in range(DRAWS)], axis=0)


def _collect_init(functions, inputs):
    init, seed = functions["orthogonal_init"], inputs["seed"]
    return {
        "orthogonal_init(4, rng)": _matrix(init(4, _generator(seed, 0)), 4),
        "orthogonal_init(4, rng) from an equal rng": _matrix(init(4, _generator(seed, 0)), 4),
        "orthogonal_init(1, rng)": _matrix(init(1, _generator(seed, 1)), 1),
        f"the mean of {DRAWS} draws of orthogonal_init(3, rng)": _mean_of_draws(
            init, 3, _generator(seed, 2)
        ),
        f"the mean of {DRAWS} draws of orthogonal_init(1, rng)": _mean_of_draws(
            init, 1, _generator(seed, 3)
        ),
    }


def _orthogonality_hint(name: str, Q: np.ndarray) -> str | None:
    if not np.all(np.isfinite(Q)):
        return f"{name}: contains NaN or inf"
    gram = Q.T @ Q
    if np.allclose(gram, np.eye(len(Q)), rtol=0, atol=ORTHOGONAL_ATOL):
        return None
    if np.allclose(gram - np.diag(np.diag(gram)), 0, rtol=0, atol=ORTHOGONAL_ATOL):
        return f"{name}: the columns are orthogonal but not of unit length"
    return f"{name}: not orthogonal (Q^T Q is not I), use the Q factor of the QR factorisation"


def _uniformity_hint(name: str, mean: np.ndarray) -> str | None:
    n = len(mean)
    if np.all(np.abs(mean) <= Z_LIMIT * np.sqrt(1 / (n * DRAWS))):
        return None
    return (
        f"{name}: far from 0, so the matrices are orthogonal but not uniformly distributed "
        "(move the signs of R's diagonal into the columns of Q)"
    )


def _score_init(inputs, values):
    hints = [
        _orthogonality_hint(name, array_value(values, name))
        for name in ("orthogonal_init(4, rng)", "orthogonal_init(1, rng)")
    ]
    if any(hints):
        return Verdict.from_hints(hints)
    first = array_value(values, "orthogonal_init(4, rng)")
    if not np.array_equal(first, array_value(values, "orthogonal_init(4, rng) from an equal rng")):
        hints.append(
            "two generators with the same seed gave different matrices: draw from the rng you are given, not from np.random"
        )
    for n in (3, 1):
        name = f"the mean of {DRAWS} draws of orthogonal_init({n}, rng)"
        hints.append(_uniformity_hint(name, array_value(values, name)))
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- gradient_norms

SHAPES = ((3, 8, 5), (2, 1, 4))


def _flow_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex10.flow")
    cases = []
    for B, T, H in SHAPES:
        cases.append(
            {
                "W_hh": rng.normal(0, 1.2 / np.sqrt(H), (H, H)),
                "x": rng.normal(0, 0.5, (B, T, H)),
                "h0": np.tanh(rng.normal(size=(B, H))),
                "g": rng.normal(size=(B, H)),
            }
        )
    return cases


def _name(case: dict) -> str:
    return f"gradient_norms (T = {case['x'].shape[1]})"


def _collect_flow(functions, cases):
    return {
        _name(c): functions["gradient_norms"](
            c["W_hh"].copy(), c["x"].copy(), c["h0"].copy(), c["g"].copy()
        )
        for c in cases
    }


def _autograd_norms(case: dict) -> np.ndarray:
    """||dL/dh_{T-d}|| per sequence by autograd: (B, T + 1), distance d along axis 1."""
    t = torch()
    W, x = t.tensor(case["W_hh"]), t.tensor(case["x"])
    h0 = leaf(case["h0"])
    states, h = [], h0
    for i in range(x.shape[1]):
        h = t.tanh(x[:, i] + h @ W.T)
        h.retain_grad()
        states.append(h)
    (t.tensor(case["g"]) * h).sum().backward()
    grads = [grad_of(s) for s in reversed(states)] + [grad_of(h0)]
    return np.stack([np.linalg.norm(g, axis=1) for g in grads], axis=1)


def _numpy_norms(
    case: dict, *, derivative: str = "h_t", transpose: bool = False, squared: bool = False
) -> np.ndarray:
    """The same norms from a numpy backward pass, with a typical mistake switched on."""
    W, x, h0, v = case["W_hh"], case["x"], case["h0"], case["g"]
    states = [h0]
    for i in range(x.shape[1]):
        states.append(np.tanh(x[:, i] + states[-1] @ W.T))
    norms = [v]
    for t in range(x.shape[1], 0, -1):
        slope = {"h_t": 1 - states[t] ** 2, "h_prev": 1 - states[t - 1] ** 2, "none": 1.0}
        v = (v * slope[derivative]) @ (W.T if transpose else W)
        norms.append(v)
    result = np.stack([np.linalg.norm(n, axis=1) for n in norms], axis=1)
    return result**2 if squared else result


def _score_flow(cases, values):
    def hints(case):
        expected = _autograd_norms(case)
        variants = [
            (
                expected[:, ::-1],
                "ordered by time, not by distance: entry d belongs to h_{T-d}, so entry 0 is ||g||",
            ),
            (
                _numpy_norms(case, derivative="none"),
                "the tanh derivative is missing: multiply by 1 - h_t^2",
            ),
            (
                _numpy_norms(case, derivative="h_prev"),
                "the tanh derivative of step t is 1 - h_t^2, not 1 - h_{t-1}^2",
            ),
            (
                _numpy_norms(case, transpose=True),
                "one step back multiplies by W_hh (batch first: v @ W_hh), not by W_hh^T",
            ),
            (expected**2, "these are squared norms: take the square root"),
        ]
        return [compare(_name(case), array_value(values, _name(case)), expected, variants=variants)]

    return Verdict.from_cases(("", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- questions

Q1_GAIN, Q1_T, Q1_H = 0.95, 20, 6
Q2_H, Q2_T, Q2_DRAWS = 32, 50, 20
Q3_N, Q3_DRAWS = 3, 4000


def _linear_regime_ratio(W: np.ndarray, T: int, g: np.ndarray) -> float:
    """||dL/dh_0|| / ||dL/dh_T|| for zero input and h_0 = 0 (tanh' = 1 there), by autograd."""
    t = torch()
    h0 = leaf(np.zeros(len(W)))
    h = h0
    for _ in range(T):
        h = t.tanh(h @ t.tensor(W).T)
    (t.tensor(g) * h).sum().backward()
    return float(np.linalg.norm(grad_of(h0)) / np.linalg.norm(g))


def _haar(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _q1_decay() -> float:
    rng = np.random.default_rng(71)
    return _linear_regime_ratio(Q1_GAIN * _haar(Q1_H, rng), Q1_T, rng.normal(size=Q1_H))


def _q2_which_init() -> str:
    """a: orthogonal only, b: Gaussian only, c: both, d: neither keep the ratio in [1/2, 2]."""
    rng = np.random.default_rng(72)
    kept = {"orthogonal": True, "gaussian": True}
    for _ in range(Q2_DRAWS):
        g = rng.normal(size=Q2_H)
        for name, W in (
            ("orthogonal", _haar(Q2_H, rng)),
            ("gaussian", rng.normal(0, 1 / np.sqrt(Q2_H), (Q2_H, Q2_H))),
        ):
            kept[name] &= 0.5 <= _linear_regime_ratio(W, Q2_T, g) <= 2
    return {(True, False): "a", (False, True): "b", (True, True): "c", (False, False): "d"}[
        (kept["orthogonal"], kept["gaussian"])
    ]


def _q3_reflections() -> float:
    """The fraction of uniformly random 3 x 3 orthogonal matrices with determinant -1 (counted)."""
    rng = np.random.default_rng(73)
    return float(np.mean([np.linalg.det(_haar(Q3_N, rng)) < 0 for _ in range(Q3_DRAWS)]))


EXERCISE = Exercise(
    "ex10",
    "Orthogonal initialisation and gradient flow",
    (
        Part("orthogonal_init", 3, ("orthogonal_init",), _init_inputs, _collect_init, _score_init),
        Part("gradient_norms", 3, ("gradient_norms",), _flow_inputs, _collect_flow, _score_flow),
        number_question("q1", _q1_decay, rtol=1e-3),
        choice_question("ex10", "q2", "abcd", compute=_q2_which_init),
        number_question("q3", _q3_reflections, rtol=0.0, atol=0.05),
    ),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "orthogonal_init": (
            "torch.nn.init.orthogonal_",
            "bptt.spectral.orthogonal",
        ),
        "gradient_norms": (
            "bptt.jacobians.gradient_norms_by_distance",
            "bptt.jacobians.gradients_from_last",
        ),
    }
)
