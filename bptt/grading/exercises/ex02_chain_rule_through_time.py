"""Checks of exercise 2: the chain rule through time, derived ("The chain rule through time").

The model, batch first: h_t = tanh(x_t W_xh^T + h_{t-1} W_hh^T + b) (eq. ``chain-rule-model``);
the states h (B, T, H) hold h_1..h_T (``h[:, t-1]`` is h_t), W_hh is (H, H). The learner writes
three derived formulas as numpy functions:

- ``span_jacobian(h, W_hh, k, t)`` -> dh_t/dh_k (B, H, H), one matrix per sequence: the product
  of step Jacobians J_t ... J_{k+1}, J_i = diag(1 - h_i^2) W_hh (eqs. ``step-jacobian``,
  ``jacobian-product``), the identity for k = t;
- ``hidden_adjoints(h, W_hh, g)`` -> the total derivatives bar h_k = dL/dh_k (B, T, H) of a loss
  whose direct gradient at h_t (later states held fixed) is ``g[:, t-1]``: the sum over t >= k
  of (dh_t/dh_k)^T g_t (eq. ``gradient-every-step-loss``);
- ``weight_gradient(h0, h, W_hh, dh_bar)`` -> dL/dW_hh (H, H) from the total derivatives
  bar h_k: the sum over k of the immediate derivatives delta_k h_{k-1}^T, with
  delta_k = (1 - h_k^2) * bar h_k, summed over the batch (eq. ``total-derivative-paths``).

Expected values: torch autograd in float64 on the recursion itself, run from x and h0 (which the
learner never sees): ``torch.autograd.functional.jacobian`` for the spans, and for the adjoints
and the weight gradient the loss L = sum_t sum_b g_t . h_t, whose direct gradient at h_t is g_t.
"""

from __future__ import annotations

import numpy as np

from ..hints import array_dict_score, array_value, compare
from ..parts import Exercise, Part, Verdict
from ._support import AUTOGRAD, copied, grad_of, leaf, rng_for, torch

NO_SLOPE = "the tanh derivative is missing: J_i = diag(1 - h_i^2) W_hh"
WRONG_TIME = "the tanh derivative is taken at the wrong step: J_i uses 1 - h_i^2, the slope at h_i"


def _sequence(rng: np.random.Generator) -> dict:
    """A small tanh RNN run forward in numpy; sizes from the seed (T >= 4, so paths differ)."""
    B, D, H, T = (int(rng.integers(lo, hi)) for lo, hi in ((2, 4), (2, 4), (3, 6), (4, 7)))
    case = {
        "x": rng.normal(size=(B, T, D)),
        "h0": np.tanh(rng.normal(size=(B, H))),
        "W_xh": rng.normal(0, 0.7, (H, D)),
        "W_hh": rng.normal(0, 0.8 / np.sqrt(H), (H, H)) + 0.3 * np.eye(H),
        "b": rng.normal(0, 0.2, H),
    }
    h, states = case["h0"], []
    for t in range(T):
        h = np.tanh(case["x"][:, t] @ case["W_xh"].T + h @ case["W_hh"].T + case["b"])
        states.append(h)
    case["h"] = np.stack(states, axis=1)
    return case


def _torch_states(case: dict, h_start, start: int, W_hh):
    """h_{start+1}, ... h_T of the recursion in torch, from the tensor h_start = h_{start}."""
    t = torch()
    x, W_xh, b = (t.tensor(case[k], dtype=t.float64) for k in ("x", "W_xh", "b"))
    states, h = [], h_start
    for step in range(start, x.shape[1]):
        h = t.tanh(x[:, step] @ W_xh.T + h @ W_hh.T + b)
        states.append(h)
    return states


def _state(case: dict, k: int) -> np.ndarray:
    return case["h0"] if k == 0 else case["h"][:, k - 1]


# ----------------------------------------------------------------------------- span_jacobian


def _span_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex02.span")
    case = _sequence(rng)
    T = case["h"].shape[1]
    k = int(rng.integers(1, T - 2))
    case["spans"] = [(0, T), (k, int(rng.integers(k + 2, T + 1))), (k, k)]
    return case


def _span_key(k: int, t: int) -> str:
    return f"dh_{t}/dh_{k}"


def _collect_span(functions, case):
    values = {}
    for k, t in case["spans"]:
        result = functions["span_jacobian"](case["h"].copy(), case["W_hh"].copy(), k, t)
        values[_span_key(k, t)] = result
    return values


def _autograd_span(case: dict, k: int, t: int) -> np.ndarray:
    """dh_t/dh_k per sequence, by torch.autograd.functional.jacobian of the recursion."""
    T = torch()
    W_hh = T.tensor(case["W_hh"], dtype=T.float64)

    def h_t_of(h_k):
        return ([h_k] + _torch_states(case, h_k, k, W_hh))[t - k]

    jac = T.autograd.functional.jacobian(h_t_of, T.tensor(_state(case, k), dtype=T.float64))
    return np.stack([jac[i, :, i, :].numpy() for i in range(jac.shape[0])])


def _products(case: dict, k: int, t: int, factor, *, later_left: bool = True) -> np.ndarray:
    """The product over i = k+1..t of factor(i) (B, H, H), later steps on the left (or right)."""
    B, H = case["h0"].shape
    out = np.broadcast_to(np.eye(H), (B, H, H)).copy()
    for i in range(k + 1, t + 1):
        out = factor(i) @ out if later_left else out @ factor(i)
    return out


def _span_expected(case: dict) -> dict:
    return {_span_key(k, t): _autograd_span(case, k, t) for k, t in case["spans"]}


def _span_variants(case: dict, expected: dict) -> dict:
    W = case["W_hh"]

    def J(i, state=None):
        s = _state(case, i if state is None else state)
        return (1 - s**2)[:, :, None] * W

    variants = {}
    for k, t in case["spans"]:
        key = _span_key(k, t)
        variants[key] = [
            (
                _products(case, k, t, J, later_left=False),
                "the factors are in the wrong order: later steps on the left, J_t ... J_{k+1}",
            ),
            (_products(case, k, t, lambda i: J(i, i - 1)), WRONG_TIME),
            (
                _products(case, k, t, lambda i: W * (1 - _state(case, i) ** 2)[:, None, :]),
                "diag(1 - h_i^2) multiplies W_hh from the left (it scales the rows)",
            ),
            (_products(case, k, t, lambda i: np.broadcast_to(W, J(i).shape)), NO_SLOPE),
            (
                expected[key].transpose(0, 2, 1),
                "transposed: row i of dh_t/dh_k is the gradient of h_{t,i}",
            ),
        ]
        if k == t:
            variants[key].append(
                (0 * expected[key], "for k = t the product is empty: the identity")
            )
    return variants


def _score_spans(case, values):
    expected = _span_expected(case)
    variants = _span_variants(case, expected)
    hints = [
        compare(key, array_value(values, key), expected[key], variants=variants[key])
        for key in expected
    ]
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- hidden_adjoints


def _adjoint_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex02.adjoints")
    case = _sequence(rng)
    case["g"] = rng.normal(size=case["h"].shape)
    return case


def _collect_adjoints(functions, case):
    result = functions["hidden_adjoints"](case["h"].copy(), case["W_hh"].copy(), case["g"].copy())
    return {"bar h": result}


def autograd_adjoints(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dh_k for k = 1..T as (B, T, H), dL/dW_hh) for L = sum_t sum_b g_t . h_t, by autograd."""
    t = torch()
    W_hh = leaf(case["W_hh"])
    states = _torch_states(case, t.tensor(case["h0"], dtype=t.float64), 0, W_hh)
    for s in states:
        s.retain_grad()
    (t.stack(states, dim=1) * t.tensor(case["g"])).sum().backward()
    return np.stack([grad_of(s) for s in states], axis=1), grad_of(W_hh)


def _recursion(case: dict, g: np.ndarray, carry) -> np.ndarray:
    """bar h_k = g_k + carry(bar h_{k+1}, k) backwards from bar h_T = g_T (the variants' loop)."""
    bar = np.empty_like(g)
    bar[:, -1] = g[:, -1]
    for k in range(g.shape[1] - 1, 0, -1):  # 1-based k: bar[:, k-1] is bar h_k
        bar[:, k - 1] = g[:, k - 1] + carry(bar[:, k], k)
    return bar


def _adjoint_variants(case: dict, expected: dict) -> dict:
    h, W, g = case["h"], case["W_hh"], case["g"]
    last_only = np.zeros_like(g)
    last_only[:, -1] = g[:, -1]
    end_only = _recursion(case, last_only, lambda nxt, k: (nxt * (1 - h[:, k] ** 2)) @ W)
    return {
        "bar h": [
            (g, "holds only the direct gradients g_k: add what comes back from every later loss"),
            (
                _recursion(case, g, lambda nxt, k: (nxt * (1 - h[:, k] ** 2)) @ W.T),
                "J_{k+1} is not transposed: in rows, the gradient goes back as (bar h * (1 - h^2)) @ W_hh",
            ),
            (_recursion(case, g, lambda nxt, k: (nxt * (1 - h[:, k - 1] ** 2)) @ W), WRONG_TIME),
            (_recursion(case, g, lambda nxt, k: nxt @ W), NO_SLOPE),
            (end_only, "only the last loss reaches back: every loss l_t with t >= k does"),
        ]
    }


_score_adjoints = array_dict_score(
    ("bar h",),
    lambda case: {"bar h": autograd_adjoints(case)[0]},
    variants=_adjoint_variants,
    name=lambda key, case: "the adjoints bar h_k",
)


# ----------------------------------------------------------------------------- weight_gradient


def _weight_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex02.weights")
    case = _sequence(rng)
    case["g"] = rng.normal(size=case["h"].shape)
    case["dh_bar"] = autograd_adjoints(case)[0]
    return case


def _collect_weights(functions, case):
    args = (case["h0"], case["h"], case["W_hh"], case["dh_bar"])
    return {"dL/dW_hh": functions["weight_gradient"](*copied(list(args)))}


def _weight_variants(case: dict, expected: dict) -> dict:
    h0, h, bar = case["h0"], case["h"], case["dh_bar"]
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    delta = bar * (1 - h**2)
    terms = np.einsum("bki,bkj->kij", delta, h_prev)  # the immediate derivative of each step k
    return {
        "dL/dW_hh": [
            (
                terms[-1],
                "holds the immediate derivative of step T only: add delta_k h_{k-1}^T over every step k",
            ),
            (
                np.einsum("bki,bkj->ij", delta, h),
                "pair delta_k with h_{k-1}, the state W_hh multiplies at step k, not with h_k",
            ),
            (
                np.einsum("bki,bkj->ij", bar * (1 - h_prev**2), h_prev),
                "the tanh derivative is taken at the wrong step: delta_k = (1 - h_k^2) * bar h_k",
            ),
            (
                np.einsum("bki,bkj->ij", bar, h_prev),
                "the tanh derivative is missing: delta_k = (1 - h_k^2) * bar h_k",
            ),
            (terms[1:].sum(axis=0), "the first step is missing: at step 1, W_hh multiplies h_0"),
        ]
    }


_score_weights = array_dict_score(
    ("dL/dW_hh",),
    lambda case: {"dL/dW_hh": autograd_adjoints(case)[1]},
    variants=_weight_variants,
    name=lambda key, case: key,
)


EXERCISE = Exercise(
    "ex02",
    "The chain rule through time, derived",
    (
        Part("span_jacobian", 3, ("span_jacobian",), _span_inputs, _collect_span, _score_spans),
        Part(
            "hidden_adjoints",
            3,
            ("hidden_adjoints",),
            _adjoint_inputs,
            _collect_adjoints,
            _score_adjoints,
        ),
        Part(
            "weight_gradient",
            3,
            ("weight_gradient",),
            _weight_inputs,
            _collect_weights,
            _score_weights,
        ),
    ),
    kinds=("derive",),
)

# Library functions each part asks the learner to derive: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "span_jacobian": ("bptt.jacobians.span_product", "bptt.jacobians.products_to_end", *AUTOGRAD),
        "hidden_adjoints": (
            "bptt.jacobians.gradients_from_last",
            "bptt.jacobians.contribution_norms",
            "bptt.rnn.backward",
            "bptt.rnn.step_backward",
            *AUTOGRAD,
        ),
        "weight_gradient": ("bptt.rnn.backward", "bptt.rnn.step_backward", *AUTOGRAD),
    }
)
