"""Checks of exercise 6: step Jacobians and the gradient ratio ("Vanishing and exploding gradients").

The model is the tanh RNN with its inputs already projected, batch first:
h_t = tanh(x_t + h_{t-1} W_hh^T), x (B, T, H), h_0 (B, H), W_hh (H, H), and the loss
L = sum(g_T * h_T) at the last step only, so dL/dh_T = g_T (B, H). The learner writes

- ``step_jacobians(h, W_hh)`` -> J (B, T, H, H) with ``J[b, t-1]`` = dh_t/dh_{t-1} =
  diag(1 - h_t^2) W_hh for the states h (B, T, H) = h_1..h_T (eq. ``vanishing-matrix-product``);
- ``gradient_ratios(J, g_T)`` -> (B, T + 1) with entry [b, d] the ratio
  ||dL/dh_{T-d}|| / ||dL/dh_T|| of sequence b, from the row recursion
  dL/dh_{t-1} = dL/dh_t J_t (entry 0 is 1, entry T belongs to h_0);
- ``answers()`` with q1 and q2: *predictions*, recorded before the experiment cell, of the mean
  ratio at distance 30 for two recurrent matrices (predict, then run).

Expected values: torch autograd in float64. The Jacobians come from differentiating each step of
the check's own forward pass (``torch.autograd.functional.jacobian``); the ratios from the
gradients that autograd leaves on every state of the unrolled graph. The predictions are scored
against the experiment run in the grader (:func:`bptt.grading.questions.prediction_question`).
"""

from __future__ import annotations

import numpy as np

from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ..questions import prediction_question
from ._support import AUTOGRAD, grad_of, leaf, rng_for, torch

JACOBIANS_KEY = "J"
RATIOS_KEY = "ratios"


def _states(x: np.ndarray, h0: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    """h_1..h_T (B, T, H) of the check's own forward pass."""
    h, states = h0, []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] + h @ W_hh.T)
        states.append(h)
    return np.stack(states, axis=1)


def _case(rng: np.random.Generator, T: int) -> dict:
    """A random network and sequence batch; the inputs are large enough that some units saturate."""
    B, H = int(rng.integers(2, 5)), int(rng.integers(3, 7))
    W_hh = rng.normal(0, 1.2 / np.sqrt(H), (H, H))
    x = rng.normal(0, float(rng.uniform(0.3, 1.5)), (B, T, H))
    h0 = np.tanh(rng.normal(size=(B, H)))
    return {"x": x, "h0": h0, "W_hh": W_hh, "h": _states(x, h0, W_hh)}


# ----------------------------------------------------------------------------- step_jacobians


def _jacobian_inputs(seed: int) -> dict:
    return _case(rng_for(seed, "ex06.jacobians"), int(rng_for(seed, "ex06.T").integers(3, 7)))


def _collect_jacobians(functions, inputs):
    return {JACOBIANS_KEY: functions["step_jacobians"](inputs["h"].copy(), inputs["W_hh"].copy())}


def _autograd_jacobians(case: dict) -> np.ndarray:
    """dh_t/dh_{t-1} of every step by autograd, (B, T, H, H), rows = units of h_t."""
    t_ = torch()
    W = t_.tensor(case["W_hh"])
    h_prev = np.concatenate([case["h0"][:, None], case["h"][:, :-1]], axis=1)
    B, T, _ = case["h"].shape
    out = np.empty(case["h"].shape + (case["h"].shape[-1],))
    for b in range(B):
        for t in range(T):
            x_t = t_.tensor(case["x"][b, t])

            def step(prev, x_t=x_t):
                return t_.tanh(x_t + W @ prev)

            J = t_.autograd.functional.jacobian(step, t_.tensor(h_prev[b, t]))
            out[b, t] = J.numpy()
    return out


def _score_jacobians(inputs, values):
    expected = _autograd_jacobians(inputs)
    h, W = inputs["h"], inputs["W_hh"]
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)  # all the learner has
    variants = [
        (
            np.swapaxes(expected, -1, -2),
            "transposed: row i of J_t is unit i of h_t, column j unit j of h_{t-1}",
        ),
        (
            (1 - h**2)[..., None, :] * W,
            (
                "the tanh derivative scales the columns: it belongs on "
                "the left, diag(1 - h_t^2) W_hh scales the rows"
            ),
        ),
        (
            (1 - h_prev**2)[..., :, None] * W,
            (
                "the tanh derivative is taken at h_{t-1}: the step "
                "t Jacobian uses the step's own output h_t"
            ),
        ),
        (
            (1 - np.tanh(h) ** 2)[..., :, None] * W,
            (
                "tanh'(a_t) = 1 - h_t^2 where h_t = tanh(a_t) "
                "is the state itself: do not apply tanh to h_t again"
            ),
        ),
        (
            np.broadcast_to(W, expected.shape),
            "the tanh derivative is missing: multiply row i of W_hh by 1 - h_{t,i}^2",
        ),
    ]
    hint = compare("J", array_value(values, JACOBIANS_KEY), expected, variants=variants)
    return Verdict.from_hints([hint])


# ----------------------------------------------------------------------------- gradient_ratios


def _ratio_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex06.ratios")
    cases = []
    for T in (int(rng.integers(4, 9)), 1):
        case = _case(rng, T)
        B, H = case["h0"].shape
        case["g_T"] = rng.normal(size=(B, H))
        case["J"] = (1 - case["h"] ** 2)[..., :, None] * case["W_hh"]
        cases.append(case)
    return cases


def _ratio_key(case: dict) -> str:
    return f"{RATIOS_KEY} (T = {case['x'].shape[1]})"


def _collect_ratios(functions, cases):
    return {
        _ratio_key(case): functions["gradient_ratios"](case["J"].copy(), case["g_T"].copy())
        for case in cases
    }


def _autograd_gradients(case: dict) -> np.ndarray:
    """dL/dh_k for k = 0..T (B, T + 1, H), L = sum(g_T * h_T), by autograd on the unrolled graph."""
    t_ = torch()
    W, x = t_.tensor(case["W_hh"]), t_.tensor(case["x"])
    h = leaf(case["h0"])
    states = [h]
    for t in range(x.shape[1]):
        h = t_.tanh(x[:, t] + h @ W.T)
        h.retain_grad()
        states.append(h)
    (h * t_.tensor(case["g_T"])).sum().backward()
    return np.stack([grad_of(s) for s in states], axis=1)


def _by_distance(grads: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(grads[:, ::-1], axis=-1)
    return norms / norms[:, :1]


def _column_gradients(case: dict) -> np.ndarray:
    """The wrong recursion dL/dh_{t-1} = J_t dL/dh_t (columns), i.e. with J_t^T."""
    J, grad = case["J"], case["g_T"]
    grads = [grad]
    for t in range(J.shape[1] - 1, -1, -1):
        grad = np.einsum("bij,bj->bi", J[:, t], grad)
        grads.append(grad)
    return np.stack(grads[::-1], axis=1)


def _first_jacobian_first(case: dict) -> np.ndarray:
    """The product in the wrong order: g_T J_1 J_2 ... (the first step's Jacobian first)."""
    J, grad = case["J"], case["g_T"]
    grads = [grad]
    for t in range(J.shape[1]):
        grad = np.einsum("bi,bij->bj", grad, J[:, t])
        grads.append(grad)
    return np.stack(grads[::-1], axis=1)


def _score_ratios(cases, values):
    def hints(case):
        grads = _autograd_gradients(case)
        expected = _by_distance(grads)
        norms = np.linalg.norm(grads[:, ::-1], axis=-1)
        variants = [
            (
                expected[:, ::-1],
                "ordered by time: entry d is the distance d = T - k from the loss, entry 0 is h_T",
            ),
            (norms, "not divided by ||dL/dh_T||: return ratios, 1 at distance 0"),
            (expected**2, "squared norms: take the norm, not its square"),
            (
                _by_distance(_column_gradients(case)),
                (
                    "the gradient is a row vector: "
                    "dL/dh_{t-1} = dL/dh_t J_t (np.einsum('bi,bij->bj', ...)), not J_t dL/dh_t"
                ),
            ),
            (
                _by_distance(_first_jacobian_first(case)),
                (
                    "the first step back from h_T goes "
                    "through J_T, the last Jacobian: walk t = T, T-1, ..., 1"
                ),
            ),
        ]
        return [
            compare(
                f"the ratios (T = {case['x'].shape[1]})",
                array_value(values, _ratio_key(case)),
                expected,
                variants=variants,
            )
        ]

    return Verdict.from_cases((f"with T = {case['x'].shape[1]}", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- predictions

PREDICT_H, PREDICT_T, PREDICT_B = 32, 30, 16
Q1_SCALE, Q1_INPUT = 0.9, 1e-3
Q2_SCALE, Q2_INPUT = 1.5, 2.0


def _experiment(scale: float, input_std: float) -> float:
    """The mean over PREDICT_B sequences of ||dL/dh_0|| / ||dL/dh_T||, T = 30, by autograd.

    W_hh = scale * Q with Q a uniformly random orthogonal matrix (H = 32), inputs
    N(0, input_std^2), h_0 = 0, g_T standard normal; all drawn from fixed seeds.
    """
    rng = np.random.default_rng(2026)
    q, r = np.linalg.qr(rng.standard_normal((PREDICT_H, PREDICT_H)))
    case = {
        "W_hh": scale * q * np.sign(np.diag(r)),
        "x": rng.normal(0, input_std, (PREDICT_B, PREDICT_T, PREDICT_H)),
        "h0": np.zeros((PREDICT_B, PREDICT_H)),
        "g_T": rng.standard_normal((PREDICT_B, PREDICT_H)),
    }
    return float(_by_distance(_autograd_gradients(case))[:, -1].mean())


def _q1_linear_regime() -> float:
    return _experiment(Q1_SCALE, Q1_INPUT)


def _q2_saturated() -> float:
    return _experiment(Q2_SCALE, Q2_INPUT)


EXERCISE = Exercise(
    "ex06",
    "Step Jacobians and the vanishing gradient",
    (
        Part(
            "step_jacobians",
            3,
            ("step_jacobians",),
            _jacobian_inputs,
            _collect_jacobians,
            _score_jacobians,
        ),
        Part(
            "gradient_ratios",
            3,
            ("gradient_ratios",),
            _ratio_inputs,
            _collect_ratios,
            _score_ratios,
        ),
        prediction_question("q1", _q1_linear_regime, factor=1.5),
        prediction_question("q2", _q2_saturated, factor=10.0),
    ),
    kinds=("implement", "predict-then-run"),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "step_jacobians": ("bptt.jacobians.step_jacobians", *AUTOGRAD),
        "gradient_ratios": (
            "bptt.jacobians.gradients_from_last",
            "bptt.jacobians.gradient_norms_by_distance",
            "bptt.jacobians.products_to_end",
            "bptt.jacobians.span_product",
            *AUTOGRAD,
        ),
    }
)
