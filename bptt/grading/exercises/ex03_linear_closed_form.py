"""Checks of exercise 3: closed-form gradients of a linear RNN ("Closed-form gradients of a linear RNN").

The model, batch first, h_0 = 0: h_t = W_xh x_t + W_hh h_{t-1}, o_t = W_hy h_t, with x (B, T, D),
h (B, T, H), o (B, T, Q), W_xh (H, D), W_hh (H, H), W_hy (Q, H), and the loss
L = (1/B) sum_b (1/T) sum_t 1/2 ||o_t - y_t||^2. The learner writes

- ``grad_outputs(o, y)`` -> dL/do, (B, T, Q);
- ``grad_hidden(dL_do, W_hh, W_hy)`` -> dL/dh_t for every t, (B, T, H), by the recursion
  dL/dh_t = W_hh^T dL/dh_{t+1} + W_hy^T dL/do_t;
- ``gradients(x, y, W_xh, W_hh, W_hy)`` -> dict with keys ``W_xh``, ``W_hh``, ``W_hy``;
- ``answers()`` with q1 (a power in the closed form), q2 (a scalar gradient), q3 (a choice).

Expected values: torch autograd in float64. dL/dh_t (the total derivative through all later
steps) is the gradient with respect to a zero perturbation e_t added to h_t.
"""

from __future__ import annotations

import numpy as np

from ..hints import array_dict_score, array_value, compare
from ..parts import Exercise, Part, Verdict
from ..questions import choice_question, number_question
from ._support import entries, grad_of, leaf, rng_for, torch

WEIGHT_KEYS = ("W_xh", "W_hh", "W_hy")


def _model(rng: np.random.Generator, D: int, H: int, Q: int) -> dict:
    W_hh = rng.normal(size=(H, H))
    W_hh *= 0.9 / max(abs(np.linalg.eigvals(W_hh)))
    return {"W_xh": rng.normal(0, 0.7, (H, D)), "W_hh": W_hh, "W_hy": rng.normal(0, 0.7, (Q, H))}


def _autograd(x, y, W: dict, dL_do=None) -> dict:
    """Gradients of the loss (or, given ``dL_do``, of sum(dL_do * o)) for weights W.

    Returns the weight gradients, dL/dh (through the perturbations e_t), dL/do and the states h.
    """
    B, T, _ = x.shape
    leaves = {k: leaf(v) for k, v in W.items()}
    e = leaf(np.zeros((B, T, W["W_hh"].shape[0])))
    xs = torch().tensor(x)
    h, states = torch().zeros((B, W["W_hh"].shape[0]), dtype=torch().float64), []
    for t in range(T):
        h = xs[:, t] @ leaves["W_xh"].T + h @ leaves["W_hh"].T + e[:, t]
        states.append(h)
    hs = torch().stack(states, dim=1)
    o = hs @ leaves["W_hy"].T
    o.retain_grad()
    if dL_do is None:
        loss = 0.5 * ((o - torch().tensor(y)) ** 2).sum() / (B * T)
    else:
        loss = (o * torch().tensor(dL_do)).sum()
    loss.backward()
    grads = {k: grad_of(v) for k, v in leaves.items()}
    return {**grads, "h": grad_of(e), "o": grad_of(o), "states": hs.detach().numpy()}


# ----------------------------------------------------------------------------- grad_outputs


def _outputs_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex03.outputs")
    # B in {3, 4} and T in {5, 6, 7}: the factors T, B, B T and 2 of the typical mistakes differ
    shape = (int(rng.integers(3, 5)), int(rng.integers(5, 8)), int(rng.integers(1, 4)))
    return {"o": rng.normal(size=shape), "y": rng.normal(size=shape)}


def _collect_outputs(functions, inputs):
    return {"dL_do": functions["grad_outputs"](inputs["o"].copy(), inputs["y"].copy())}


def _score_outputs(inputs, values):
    B, T, _ = inputs["o"].shape
    o = leaf(inputs["o"])
    (0.5 * ((o - torch().tensor(inputs["y"])) ** 2).sum() / (B * T)).backward()
    scales = [
        (T, f"{T} = T times too large: the loss averages over time steps (1/T)"),
        (B, f"{B} = B times too large: the loss averages over the batch (1/B)"),
        (B * T, "B T times too large: divide by the batch size and the number of steps"),
        (2.0, "twice too large: the 1/2 in 1/2 ||o - y||^2 cancels the 2 of the derivative"),
    ]
    return Verdict.from_hints(
        [compare("dL/do", array_value(values, "dL_do"), grad_of(o), scales=scales)]
    )


# ----------------------------------------------------------------------------- grad_hidden


def _hidden_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex03.hidden")
    cases = []
    for T in (int(rng.integers(3, 8)), 1):
        B, H = int(rng.integers(1, 4)), int(rng.integers(2, 6))
        Q = H + int(rng.integers(1, 3))  # Q != H: a transposed W_hy fails loudly
        W = _model(rng, 1, H, Q)
        cases.append({"dL_do": rng.normal(size=(B, T, Q)), "W_hh": W["W_hh"], "W_hy": W["W_hy"]})
    return cases


def _collect_hidden(functions, cases):
    values = {}
    for case in cases:
        T = case["dL_do"].shape[1]
        args = (case["dL_do"].copy(), case["W_hh"].copy(), case["W_hy"].copy())
        values[f"dL/dh (T = {T})"] = functions["grad_hidden"](*args)
    return values


def _hidden_gradient(case: dict, W_hh: np.ndarray) -> np.ndarray:
    B, T, _ = case["dL_do"].shape
    W = {"W_xh": np.zeros((W_hh.shape[0], 1)), "W_hh": W_hh, "W_hy": case["W_hy"]}
    return _autograd(np.zeros((B, T, 1)), None, W, dL_do=case["dL_do"])["h"]


def _hidden_hint(case: dict, values) -> str | None:
    T = case["dL_do"].shape[1]
    variants = [
        (
            _hidden_gradient(case, case["W_hh"].T),
            "use W_hh^T (transposed) in the recursion, not W_hh",
        ),
        (
            _hidden_gradient(case, np.zeros_like(case["W_hh"])),
            "the recursion term W_hh^T dL/dh_{t+1} (the gradient from later steps) is missing",
        ),
    ]
    expected = _hidden_gradient(case, case["W_hh"])
    return compare("dL/dh", array_value(values, f"dL/dh (T = {T})"), expected, variants=variants)


def _score_hidden(cases, values):
    return Verdict.from_cases(
        (f"with T = {c['dL_do'].shape[1]}", [_hidden_hint(c, values)]) for c in cases
    )


# ----------------------------------------------------------------------------- gradients


def _gradients_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex03.gradients")
    B, T, H = int(rng.integers(3, 5)), int(rng.integers(5, 8)), int(rng.integers(3, 6))
    D, Q = H + 1, H + 2
    W = _model(rng, D, H, Q)
    return {"x": rng.normal(size=(B, T, D)), "y": rng.normal(size=(B, T, Q)), **W}


def _collect_gradients(functions, inputs):
    args = [inputs[k].copy() for k in ("x", "y", *WEIGHT_KEYS)]
    return entries(functions["gradients"](*args), WEIGHT_KEYS, "gradients")


def _gradients_expected(inputs: dict) -> dict:
    return _autograd(inputs["x"], inputs["y"], {k: inputs[k] for k in WEIGHT_KEYS})


def _gradients_scales(inputs: dict) -> list:
    B, T, _ = inputs["x"].shape
    return [
        (T, f"{T} = T times too large: did dL/do lose the 1/T of the mean over time steps?"),
        (B, f"{B} = B times too large: did dL/do lose the 1/B of the mean over the batch?"),
    ]


def _gradients_variants(inputs: dict, expected: dict) -> dict:
    off_by_one = np.einsum("bti,btj->ij", expected["h"], expected["states"])
    return {
        "W_hh": [
            (off_by_one, "pair dL/dh_t with h_{t-1}, the state that entered step t, not with h_t")
        ]
    }


_score_gradients = array_dict_score(
    WEIGHT_KEYS,
    _gradients_expected,
    variants=_gradients_variants,
    scales=_gradients_scales,
    name=lambda k, inputs: f"dL/d{k}",
)


# ----------------------------------------------------------------------------- questions

Q1_T = 6
Q2_W, Q2_STEPS = 0.8, 20


def _q1_highest_power() -> int:
    """The highest power of W_hh^T in dL/dh_1: the term i = 1 of sum_{i=t}^{T} (W_hh^T)^(T-i)."""
    return max(Q1_T - i for i in range(1, Q1_T + 1))


def _q2_scalar_gradient() -> float:
    """dL/dh_1 for the scalar linear RNN with w_hh = 0.8, w_qh = 1 and L = o_T, by autograd."""
    h1 = leaf(np.array(1.0))
    h = h1
    for _ in range(Q2_STEPS - 1):
        h = Q2_W * h
    h.backward()
    return float(h1.grad)


EXERCISE = Exercise(
    "ex03",
    "Closed-form gradients of a linear RNN",
    (
        Part(
            "grad_outputs", 2, ("grad_outputs",), _outputs_inputs, _collect_outputs, _score_outputs
        ),
        Part("grad_hidden", 3, ("grad_hidden",), _hidden_inputs, _collect_hidden, _score_hidden),
        Part(
            "gradients", 3, ("gradients",), _gradients_inputs, _collect_gradients, _score_gradients
        ),
        number_question("q1", _q1_highest_power, rtol=0.0, atol=0.5),
        number_question("q2", _q2_scalar_gradient, rtol=1e-2),
        choice_question(
            "ex03",
            "q3",
            "abc",
            digest="45e1040710316cfc459052004e1d4fc5bf47ef4d3738342360c02dbafee81ff9",
        ),
    ),
    kinds=("implement", "derive"),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "grad_hidden": (
            "bptt.linear.hidden_gradients",
            "bptt.linear.hidden_gradients_power_sum",
        ),
        "gradients": (
            "bptt.linear.gradients",
            "bptt.linear.weight_gradients",
        ),
    }
)
