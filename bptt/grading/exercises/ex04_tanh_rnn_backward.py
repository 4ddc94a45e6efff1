"""Checks of exercise 4: BPTT for a tanh RNN in numpy ("BPTT from scratch in numpy").

The model, batch first: a_t = x_t W_xh^T + h_{t-1} W_hh^T + b, h_t = tanh(a_t), with x_t (B, D),
h_t (B, H), W_xh (H, D), W_hh (H, H), b (H,). The learner writes

- ``step_backward(dh_t, cache)`` for the :class:`bptt.rnn.StepCache` of one step (``x``,
  ``h_prev``, ``h``, ``W_xh``, ``W_hh``), the record the chapter on BPTT in numpy uses,
  returning the gradients of sum(dh_t * h_t) as a dict with keys ``x`` (B, D), ``h_prev``
  (B, H), ``W_xh`` (H, D), ``W_hh`` (H, H), ``b`` (H,);
- ``backward(dh, caches)`` for a list of T such caches and dh (B, T, H), returning the gradients
  of sum(dh * h) with keys ``x`` (B, T, D), ``h0`` (B, H), ``W_xh``, ``W_hh``, ``b``;
- ``answers()`` with q1 (dL/dw of a scalar RNN), q2 (a vanishing ratio), q3 (a choice).

Partial credit: ``backward`` is collected twice, with the learner's ``step_backward`` and with
the course's (:func:`bptt.rnn.step_backward`) in its place; a right loop around a wrong step
keeps the ``backward`` points, and the reason says that the learner's own step breaks it.

Expected values: torch autograd in float64 on the same inputs. The per-step contributions to the
weight gradients come from giving every time step its own copy of the weights.
"""

from __future__ import annotations

import numpy as np

from ... import rnn
from ...rnn import StepCache
from ..hints import array_dict_score
from ..parts import Exercise, Part
from ..questions import choice_question, number_question
from ._support import copied, entries, grad_of, leaf, rng_for, torch

STEP_KEYS = ("x", "h_prev", "W_xh", "W_hh", "b")
SEQUENCE_KEYS = ("x", "h0", "W_xh", "W_hh", "b")
WEIGHT_KEYS = ("W_xh", "W_hh", "b")
NO_TANH = "the tanh derivative is missing: multiply dh_t by 1 - h_t**2 first"


def _dims(rng: np.random.Generator) -> tuple[int, int, int]:
    """Batch, input and hidden sizes drawn from the seed; D != H, so a transposed W_xh shows."""
    H = int(rng.integers(3, 7))
    return int(rng.integers(1, 5)), H + int(rng.integers(1, 3)), H


def _weights(rng: np.random.Generator, D: int, H: int) -> dict:
    return {
        "W_xh": rng.normal(0, 0.6, (H, D)),
        "W_hh": rng.normal(0, 0.5, (H, H)),
        "b": rng.normal(0, 0.2, H),
    }


def _forward(x: np.ndarray, h0: np.ndarray, W: dict) -> list[dict]:
    """The step caches of a whole sequence (the check's own forward pass)."""
    caches, h = [], h0
    for t in range(x.shape[1]):
        h_new = np.tanh(x[:, t] @ W["W_xh"].T + h @ W["W_hh"].T + W["b"])
        caches.append(StepCache(x[:, t], h, h_new, W["W_xh"], W["W_hh"], "tanh"))
        h = h_new
    return caches


# ----------------------------------------------------------------------------- step_backward


def _step_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex04.step")
    B, D, H = _dims(rng)
    W = _weights(rng, D, H)
    x, h_prev = rng.normal(size=(B, D)), np.tanh(rng.normal(size=(B, H)))
    (cache,) = _forward(x[:, None], h_prev, W)
    return {"dh": rng.normal(size=(B, H)), "cache": cache, "b": W["b"]}


def _collect_step(functions, inputs):
    result = functions["step_backward"](inputs["dh"].copy(), copied(inputs["cache"]))
    return entries(result, STEP_KEYS, "step_backward")


def _step_autograd(inputs: dict, *, through_tanh: bool = True) -> tuple[dict, np.ndarray]:
    """Gradients of sum(dh * h_t) (or of sum(dh * a_t) without the tanh) and delta = dL/da_t."""
    c = inputs["cache"]
    t = {k: leaf(getattr(c, k)) for k in ("x", "h_prev", "W_xh", "W_hh")}
    t["b"] = leaf(inputs["b"])
    a = t["x"] @ t["W_xh"].T + t["h_prev"] @ t["W_hh"].T + t["b"]
    a.retain_grad()
    out = torch().tanh(a) if through_tanh else a
    (out * torch().tensor(inputs["dh"])).sum().backward()
    return {k: grad_of(v) for k, v in t.items()}, grad_of(a)


def _step_expected(inputs: dict) -> dict:
    expected, delta = _step_autograd(inputs)
    return {**expected, "delta": delta}


def _step_variants(inputs: dict, expected: dict) -> dict:
    no_tanh, _ = _step_autograd(inputs, through_tanh=False)
    h_t = "pair delta with h_{t-1} (cache.h_prev), the state that entered the step, not with h_t"
    variants = {k: [(no_tanh[k], NO_TANH)] for k in STEP_KEYS}
    variants["W_hh"].append((expected["delta"].T @ inputs["cache"].h, h_t))
    return variants


_score_step = array_dict_score(STEP_KEYS, _step_expected, variants=_step_variants)


# ----------------------------------------------------------------------------- backward


def _sequence_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex04.backward")
    cases = []
    for T in (int(rng.integers(3, 7)), 1):
        B, D, H = _dims(rng)
        W = _weights(rng, D, H)
        x, h0 = rng.normal(size=(B, T, D)), np.tanh(rng.normal(size=(B, H)))
        cases.append(
            {"dh": rng.normal(size=(B, T, H)), "x": x, "h0": h0, **W, "caches": _forward(x, h0, W)}
        )
    return cases


def _key(name: str, T: int) -> str:
    return f"the '{name}' gradient (T = {T})"


def _collect_sequence(functions, cases):
    values = {}
    for case in cases:
        T = case["x"].shape[1]
        result = functions["backward"](case["dh"].copy(), copied(case["caches"]))
        values.update(
            {_key(k, T): v for k, v in entries(result, SEQUENCE_KEYS, "backward").items()}
        )
    return values


def _sequence_autograd(case: dict, *, local_only: bool = False) -> tuple[dict, dict]:
    """Gradients of sum(dh * h), and each step's contribution to the weight gradients.

    Every step gets its own leaf copy of W_xh, W_hh and b, so the contribution of step t is that
    copy's gradient and the full gradient is their sum. ``local_only`` cuts h_{t-1} out of the
    graph: the gradient a backward pass gets when it forgets the carry from step t+1.
    """
    T = case["x"].shape[1]
    x, h0 = leaf(case["x"]), leaf(case["h0"])
    steps = {k: [leaf(case[k]) for _ in range(T)] for k in WEIGHT_KEYS}
    dh, h, total = torch().tensor(case["dh"]), h0, 0.0
    for t in range(T):
        h_prev = h.detach() if local_only else h
        h = torch().tanh(x[:, t] @ steps["W_xh"][t].T + h_prev @ steps["W_hh"][t].T + steps["b"][t])
        total = total + (dh[:, t] * h).sum()
    total.backward()
    contributions = {k: [grad_of(w) for w in steps[k]] for k in WEIGHT_KEYS}
    grads = {"x": grad_of(x), "h0": grad_of(h0), **{k: sum(contributions[k]) for k in WEIGHT_KEYS}}
    return grads, contributions


def _sequence_expected(case: dict) -> dict:
    expected, per_step = _sequence_autograd(case)
    return {**expected, "per_step": per_step}


def _sequence_variants(case: dict, expected: dict) -> dict:
    T = case["x"].shape[1]
    local, _ = _sequence_autograd(case, local_only=True)
    per_step = expected["per_step"]
    no_carry = "the gradient flowing back from step t+1 is missing: add it to dh[:, t]"
    one_step = "holds a single time step's contribution: add up (+=) the contributions of all steps"
    first_missing = "the first time step is missing: does the loop stop one step early?"
    variants = {k: [(local[k], no_carry)] for k in SEQUENCE_KEYS}
    for k in WEIGHT_KEYS:
        variants[k] += [(per_step[k][0], one_step), (per_step[k][-1], one_step)]
        if T > 1:
            variants[k].append((sum(per_step[k][1:]), first_missing))
    return variants


_score_sequence = array_dict_score(
    SEQUENCE_KEYS,
    _sequence_expected,
    variants=_sequence_variants,
    value_key=lambda k, case: _key(k, case["x"].shape[1]),
    context=lambda case: f"with T = {case['x'].shape[1]}",
    several=True,
)


# ----------------------------------------------------------------------------- questions

Q1_X = (1.0, -0.5, 2.0, 0.3)
Q1_W, Q1_U = 0.9, 0.5
Q2_STEPS, Q2_SCALE, Q2_H = 10, 0.5, 4


def _q1_dL_dw() -> float:
    """dh_T/dw of h_t = tanh(w h_{t-1} + u x_t), h_0 = 0, by autograd."""
    w = leaf(np.array(Q1_W))
    h = torch().zeros((), dtype=torch().float64)
    for x in Q1_X:
        h = torch().tanh(w * h + Q1_U * x)
    h.backward()
    return float(w.grad)


def _q2_ratio() -> float:
    """||dL/dh_0|| / ||dL/dh_T|| for W_hh = 0.5 I, no input, h_0 = 1e-3, by autograd."""
    h0 = leaf(np.full(Q2_H, 1e-3))
    h = h0
    for _ in range(Q2_STEPS):
        h = torch().tanh(Q2_SCALE * h)
    h.sum().backward()
    return float(np.linalg.norm(grad_of(h0)) / np.linalg.norm(np.ones(Q2_H)))


EXERCISE = Exercise(
    "ex04",
    "BPTT for a tanh RNN in numpy",
    (
        Part("step_backward", 3, ("step_backward",), _step_inputs, _collect_step, _score_step),
        Part(
            "backward",
            4,
            ("backward",),
            _sequence_inputs,
            _collect_sequence,
            _score_sequence,
            substitutes=(("step_backward", rnn.step_backward),),
        ),
        number_question("q1", _q1_dL_dw, rtol=1e-3),
        number_question("q2", _q2_ratio, rtol=1e-2),
        choice_question(
            "ex04",
            "q3",
            "abc",
            digest="e14eba3f9ed10b213cc3100c33a61265bb1a7f99fbdae48f06f5d99dfbf7d452",
        ),
    ),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "step_backward": (
            "bptt.rnn.step_backward",
            "bptt.rnn.backward",
        ),
        "backward": (
            "bptt.rnn.backward",
            "bptt.rnn.step_backward",
            "bptt.rnn.loss_and_gradients",
        ),
    }
)
