"""Checks of exercise 13: the randomized-truncation estimator ("Randomized truncation").

The model is the linear RNN h_t = x_t W_xh^T + h_{t-1} W_hh^T, batch first: h0 (B, H), the
states h = (h_1, ..., h_T) as (B, T, H), W_hh (H, H), and dh (B, T, H), the gradient reaching
each h_t straight from the loss. The randomized backward pass multiplies the recurrent edge
h_{t-1} -> h_t by xi_t (notation page: g_t = dh[:, t], delta_t = bar h_t for this linear RNN),
rows batch first, with delta_{T+1} = 0,

    delta_{t-1} = g_{t-1} + xi_t delta_t W_hh,    dL/dW_hh = sum_t delta_t^T h_{t-1},
    bar h_0 = xi_1 delta_1 W_hh.

The array ``xi`` (T,) holds xi_1..xi_T (0-based: ``xi[0]`` scales the edge h_0 -> h_1) and is
shared by the whole batch. The learner writes

- ``sample_xi(T, pi, rng)`` -> (T,) independent draws, 0 with probability 1 - pi and 1/pi with
  probability pi, from the numpy Generator ``rng``;
- ``randomized_backward(dh, h0, h, W_hh, xi)`` -> ``{"W_hh": (H, H), "h0": (B, H)}``;
- ``exact_expectation(dh, h0, h, W_hh, pi)`` -> the same keys: the average of
  ``randomized_backward`` over all 2^T patterns of xi, weighted by their probabilities;
- ``answers()`` with q1 and q2 (mean and variance of the estimate of dL/dh_0 of a scalar RNN)
  and q3 (a choice: how that variance grows with T).

Expected values: torch autograd in float64 on a forward pass whose recurrent edges let the value
through unchanged and scale the gradient by xi_t (xi h + (1 - xi) h.detach()); with xi = 1 that
is full BPTT, which the exact expectation must equal. The typical wrong answers that the hints
name come from the same autograd pass with xi changed (ignored, one step off) or from a plain
numpy backward pass with the mistake built in (W_hh transposed, delta_t paired with h_t,
patterns weighted equally, kept edges not scaled by 1/pi).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..hints import array_dict_score, array_value
from ..parts import Exercise, Part, Verdict
from ..questions import choice_question, number_question
from ._support import copied, derived_seed, entries, grad_of, leaf, rng_for, torch

KEYS = ("W_hh", "h0")
SHAPES = ((2, 6, 3), (1, 1, 2))
EXPECTATION_SHAPES = ((2, 5, 3), (1, 1, 2))
PI = 0.6
OFF_BY_ONE = "xi is applied one step off: xi_t (xi[t-1]) scales the edge from h_{t-1} into h_t"


def _case(rng: np.random.Generator, B: int, T: int, H: int) -> dict:
    """A linear RNN run forward by the check: h0, the states h, W_hh, dh and the drive
    x_t W_xh^T (B, T, H), which only the check's autograd pass uses."""
    W_hh = rng.normal(0, 0.7 / np.sqrt(H), (H, H))
    h0, drive = rng.normal(size=(B, H)), rng.normal(size=(B, T, H))
    h, state = np.empty((B, T, H)), h0
    for t in range(T):
        state = drive[:, t] + state @ W_hh.T
        h[:, t] = state
    return {"dh": rng.normal(size=(B, T, H)), "h0": h0, "h": h, "W_hh": W_hh, "drive": drive}


def _arguments(case: dict) -> tuple:
    case = copied(case)
    return case["dh"], case["h0"], case["h"], case["W_hh"]


def _autograd(case: dict, xi) -> dict[str, np.ndarray]:
    """dL/dW_hh and dL/dh_0 of L = sum(dh * h) with each edge's gradient scaled by xi_t."""
    t = torch()
    W, h0 = leaf(case["W_hh"]), leaf(case["h0"])
    drive, dh = t.tensor(case["drive"]), t.tensor(case["dh"])
    state, total = h0, 0.0
    for i, scale in enumerate(np.asarray(xi, dtype=float)):
        edge = scale * state + (1 - scale) * state.detach()  # value h_{t-1}, gradient * xi_t
        state = drive[:, i] + edge @ W.T
        total = total + (dh[:, i] * state).sum()
    total.backward()
    return {"W_hh": grad_of(W), "h0": grad_of(h0)}


def _numpy_backward(
    case: dict, xi, *, transpose: bool = False, pair_with_current: bool = False
) -> dict[str, np.ndarray]:
    """The randomized backward pass in numpy, optionally with a typical mistake built in."""
    dh, h0, h, W = case["dh"], case["h0"], case["h"], case["W_hh"]
    carry, dW = np.zeros_like(h0), np.zeros_like(W)
    for t in reversed(range(dh.shape[1])):
        delta = dh[:, t] + carry
        previous = h[:, t] if pair_with_current else (h[:, t - 1] if t else h0)
        dW += delta.T @ previous
        carry = xi[t] * (delta @ (W.T if transpose else W))
    return {"W_hh": dW, "h0": carry}


def _variant_hints(case: dict, xi: np.ndarray) -> dict[str, list]:
    variants = [
        (
            _autograd(case, np.ones_like(xi)),
            "xi is ignored: multiply what step t sends back to h_{t-1} by xi_t",
        ),
        (_autograd(case, np.roll(xi, 1)), OFF_BY_ONE),
        (_autograd(case, np.roll(xi, -1)), OFF_BY_ONE),
        (
            _numpy_backward(case, xi, transpose=True),
            "W_hh is transposed: step t sends xi_t delta_t W_hh back to h_{t-1} (rows)",
        ),
        (
            _numpy_backward(case, xi, pair_with_current=True),
            "pair delta_t with h_{t-1}, the state that entered step t, not with h_t",
        ),
    ]
    return {k: [(grads[k], hint) for grads, hint in variants] for k in KEYS}


def _label(key: str, case: dict) -> str:
    return f"the '{key}' gradient (T = {case['dh'].shape[1]})"


# ----------------------------------------------------------------------------- sample_xi

XI_T, XI_PI = 6, 0.25
REPEAT_T, REPEAT_PI = 64, 0.5  # two equal generators must give equal draws (2^-64 by chance)
DRAWS, DRAWS_PI = 20_000, 0.7
REPEAT_KEYS = (
    f"sample_xi({REPEAT_T}, {REPEAT_PI}, rng)",
    f"sample_xi({REPEAT_T}, {REPEAT_PI}, rng) from an equal rng",
)
Z_LIMIT = 5.0


def _xi_inputs(seed: int) -> dict:
    return {"seed": derived_seed(seed, "ex13.xi")}


def _generator(seed: int, stream: int) -> np.random.Generator:
    return rng_for(seed, f"ex13.xi.{stream}")


def _collect_xi(functions, inputs):
    sample = functions["sample_xi"]
    seed = inputs["seed"]
    return {
        f"sample_xi({XI_T}, {XI_PI}, rng)": sample(XI_T, XI_PI, _generator(seed, 0)),
        f"sample_xi(1, {XI_PI}, rng)": sample(1, XI_PI, _generator(seed, 1)),
        f"sample_xi({DRAWS}, {DRAWS_PI}, rng)": sample(DRAWS, DRAWS_PI, _generator(seed, 2)),
        REPEAT_KEYS[0]: sample(REPEAT_T, REPEAT_PI, _generator(seed, 3)),
        REPEAT_KEYS[1]: sample(REPEAT_T, REPEAT_PI, _generator(seed, 3)),
    }


def _values_hint(name: str, xi: np.ndarray, pi: float) -> str | None:
    kept = xi != 0
    if np.all(np.abs(xi[kept] - 1 / pi) <= 1e-12 / pi):
        return None
    if np.all(xi[kept] == 1):
        return f"{name}: a kept edge must be 1/pi, not 1 (without the 1/pi reweighting E[xi] = pi, and the estimate is biased towards zero)"
    return f"{name}: every xi should be 0 or 1/pi"


def _frequency_hint(name: str, xi: np.ndarray, pi: float) -> str | None:
    kept = float(np.mean(xi != 0))
    spread = np.sqrt(pi * (1 - pi) / xi.size)
    if abs(kept - pi) <= Z_LIMIT * spread:
        return None
    if abs(kept - (1 - pi)) <= Z_LIMIT * spread:
        return f"{name}: edges are kept with probability 1 - pi; P(xi = 1/pi) should be pi"
    return f"{name}: {kept:.3f} of the edges are kept, expected a fraction close to pi = {pi}"


def _score_xi(inputs, values):
    hints = []
    for (T, pi), key in (
        ((XI_T, XI_PI), f"sample_xi({XI_T}, {XI_PI}, rng)"),
        ((1, XI_PI), f"sample_xi(1, {XI_PI}, rng)"),
        ((DRAWS, DRAWS_PI), f"sample_xi({DRAWS}, {DRAWS_PI}, rng)"),
        ((REPEAT_T, REPEAT_PI), REPEAT_KEYS[0]),
        ((REPEAT_T, REPEAT_PI), REPEAT_KEYS[1]),
    ):
        xi = array_value(values, key)
        if xi.shape != (T,):
            return Verdict.wrong(f"{key}: shape {xi.shape}, expected ({T},)")
        if not np.all(np.isfinite(xi)):
            return Verdict.wrong(f"{key}: contains NaN or inf")
        hints.append(_values_hint(key, xi, pi))
    big = f"sample_xi({DRAWS}, {DRAWS_PI}, rng)"
    hints.append(_frequency_hint(big, array_value(values, big), DRAWS_PI))
    if not np.array_equal(*(array_value(values, key) for key in REPEAT_KEYS)):
        hints.append(
            "two generators with the same seed gave different xi: draw from the rng you are given, not from np.random"
        )
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- randomized_backward


def _backward_inputs(seed: int) -> list[tuple[dict, np.ndarray]]:
    rng = rng_for(seed, "ex13.backward")
    cases = []
    for B, T, H in SHAPES:
        case = _case(rng, B, T, H)
        xi = np.array([1, 0, 1, 1, 0, 1][:T], dtype=float) / PI
        rng.shuffle(xi[1:])
        cases.append((case, xi))
    full_case = _case(rng, 2, 4, 3)
    cases.append((full_case, np.ones(4)))
    return cases


def _collect_backward(functions, cases):
    values = {}
    for case, xi in cases:
        result = functions["randomized_backward"](*_arguments(case), xi.copy())
        for key, value in entries(result, KEYS, "randomized_backward").items():
            values[_label(key, case) + (" with xi = 1" if np.all(xi == 1) else "")] = value
    return values


def _backward_label(key: str, case_xi: tuple) -> str:
    case, xi = case_xi
    return _label(key, case) + (" with xi = 1" if np.all(xi == 1) else "")


_score_backward = array_dict_score(
    KEYS,
    lambda case_xi: _autograd(*case_xi),
    variants=lambda case_xi, expected: _variant_hints(*case_xi),
    name=_backward_label,
    value_key=_backward_label,
    several=True,
)


# ----------------------------------------------------------------------------- exact_expectation


def _expectation_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex13.expectation")
    return [_case(rng, B, T, H) for B, T, H in EXPECTATION_SHAPES]


def _collect_expectation(functions, cases):
    values = {}
    for case in cases:
        result = functions["exact_expectation"](*_arguments(case), PI)
        for key, value in entries(result, KEYS, "exact_expectation").items():
            values[_label(key, case)] = value
    return values


def _average(case: dict, pi: float, kept_value: float, weighted: bool) -> dict[str, np.ndarray]:
    """The average of the numpy randomized backward over every pattern of kept edges."""
    T = case["dh"].shape[1]
    total = {k: 0.0 for k in KEYS}
    for pattern in itertools.product((0.0, 1.0), repeat=T):
        kept = np.array(pattern)
        weight = np.prod(np.where(kept == 1, pi, 1 - pi)) if weighted else 0.5**T
        grads = _numpy_backward(case, kept * kept_value)
        total = {k: total[k] + weight * grads[k] for k in KEYS}
    return total


def _expectation_variants(case: dict, expected: dict) -> dict:
    variants = [
        (
            _average(case, PI, 1 / PI, weighted=False),
            "every pattern counts equally: weight each by its probability pi^kept (1 - pi)^cut",
        ),
        (
            _average(case, PI, 1.0, weighted=True),
            "is biased: a kept edge has xi = 1/pi, not 1",
        ),
    ]
    return {k: [(v[k], hint) for v, hint in variants] for k in KEYS}


_score_expectation = array_dict_score(
    KEYS,
    lambda case: _autograd(case, np.ones(case["dh"].shape[1])),
    variants=_expectation_variants,
    name=_label,
    value_key=_label,
    several=True,
)


# ----------------------------------------------------------------------------- questions

Q_A, Q_PI, Q_T = 0.9, 0.8, 10
Q3_A, Q3_PI = 0.75, 0.5


def _moments(a: float, pi: float, T: int) -> tuple[float, float]:
    """E[g] and E[g^2] of the randomized estimate g of dL/dh_0 for h_t = a h_{t-1}, h_0 = 1,
    L = h_1 + ... + h_T, by the backward recursion delta_{t-1} = 1 + xi_t a delta_t
    (xi_t independent of delta_t, E[xi] = 1, E[xi^2] = 1/pi), g = xi_1 a delta_1."""
    mean, square = 1.0, 1.0  # delta_T = 1
    for _ in range(T - 1):
        mean, square = 1 + a * mean, 1 + 2 * a * mean + a * a / pi * square
    return a * mean, a * a / pi * square


def _q1_mean() -> float:
    return _moments(Q_A, Q_PI, Q_T)[0]


def _q2_variance() -> float:
    mean, square = _moments(Q_A, Q_PI, Q_T)
    return square - mean**2


def _q3_growth() -> str:
    """a: bounded in T, b: grows about linearly, c: grows exponentially (measured)."""

    def variance(T):
        mean, square = _moments(Q3_A, Q3_PI, T)
        return square - mean**2

    ratio = variance(400) / variance(200)
    return "a" if ratio < 1.2 else "b" if ratio < 3 else "c"


EXERCISE = Exercise(
    "ex13",
    "Randomized truncation",
    (
        Part("sample_xi", 2, ("sample_xi",), _xi_inputs, _collect_xi, _score_xi),
        Part(
            "randomized_backward",
            3,
            ("randomized_backward",),
            _backward_inputs,
            _collect_backward,
            _score_backward,
        ),
        Part(
            "exact_expectation",
            2,
            ("exact_expectation",),
            _expectation_inputs,
            _collect_expectation,
            _score_expectation,
        ),
        number_question("q1", _q1_mean, rtol=1e-3),
        number_question("q2", _q2_variance, rtol=1e-2),
        choice_question("ex13", "q3", "abc", compute=_q3_growth),
    ),
    kinds=("implement", "derive"),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "sample_xi": ("bptt.truncation.sample_xi",),
        "randomized_backward": (
            "bptt.truncation.scaled_gradient",
            "bptt.truncation.randomized_gradients",
        ),
    }
)
