"""Checks of exercise 1: the unrolled graph of a tanh RNN ("Recurrence and the unrolled graph").

The model, batch first: h_t = tanh(x_t W_xh^T + h_{t-1} W_hh^T + b) (eq. ``rnn-tanh-model``),
with x (B, T, D), h0 (B, H), W_xh (H, D), W_hh (H, H), b (H,). The learner writes

- ``unrolled_forward(x, h0, W_xh, W_hh_per_step, b)`` -> h (B, T, H), the states h_1..h_T of
  the loop written out step by step, where step t uses the matrix ``W_hh_per_step[t]`` (a list
  of T (H, H) tensors: T references to one tensor is the tied network, T copies the untied one);
- ``step_contributions(loss_fn, W_hh, T)`` -> (T, H, H), the per-step contributions
  dL/dW_hh^(t) of eq. ``tied-weights-sum``, where ``loss_fn(W_hh_per_step)`` is the mean loss
  L of eq. ``rnn-mean-loss`` computed with one recurrent matrix per step;
- ``answers()`` with two predictions made before the experiment cell runs: q1, the depth
  (:func:`bptt.torch.attention.graph_depth`) of the autograd graph of a loss over T = 50 steps,
  and q2, the bytes autograd keeps for its backward pass (:func:`bptt.torch.saved_bytes`)
  over T = 1000 steps.

Expected values: the states come from the check's own float64 loop in numpy (untied case) and
from ``torch.nn.RNN`` (tied case); the contributions from autograd with respect to a zero
perturbation E_t added to W_hh at step t alone (dL/dE_t at E_t = 0 is the contribution of
step t); the predictions from running the experiment.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ..questions import prediction_question
from ._support import rng_for, single_threaded, torch

STEP_ORDER = "step t must use W_hh_per_step[t] (the list is in time order)"


def _dims(rng: np.random.Generator) -> tuple[int, int, int]:
    """Batch, input and hidden sizes from the seed; D != H, so a transposed W_xh shows."""
    H = int(rng.integers(3, 6))
    return int(rng.integers(2, 5)), H + int(rng.integers(1, 3)), H


def _tensors(case: dict, keys: tuple[str, ...]) -> list:
    t = torch()
    return [t.tensor(case[k], dtype=t.float64) for k in keys]


def _as_array(value, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """A learner's tensor/array/list of tensors as a float array; WrongOutput if unusable."""
    t = torch()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, t.Tensor) for v in value):
        value = t.stack([v.detach() for v in value])
    if isinstance(value, t.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise WrongOutput(
            f"{what} should return a tensor of shape {shape}, got {a_type(value)}"
        ) from None
    return array


# ----------------------------------------------------------------------------- unrolled_forward


def _forward_inputs(seed: int) -> list[dict]:
    """Two cases: T separate matrices (untied), then one matrix used T times (tied)."""
    rng = rng_for(seed, "ex01.forward")
    cases = []
    for tied in (False, True):
        B, D, H = _dims(rng)
        T = int(rng.integers(3, 7))
        W = rng.normal(0, 0.5, (H, H))
        per_step = [W] * T if tied else [W + rng.normal(0, 0.4, (H, H)) for _ in range(T)]
        cases.append(
            {
                "x": rng.normal(size=(B, T, D)),
                "h0": np.tanh(rng.normal(size=(B, H))),
                "W_xh": rng.normal(0, 0.6, (H, D)),
                "W_hh_per_step": np.stack(per_step),
                "b": rng.normal(0, 0.2, H),
                "tied": tied,
            }
        )
    return cases


def _case_name(case: dict) -> str:
    return "tied" if case["tied"] else "untied"


def _collect_forward(functions, cases):
    t = torch()
    values = {}
    for case in cases:
        x, h0, W_xh, b = _tensors(case, ("x", "h0", "W_xh", "b"))
        stack = t.tensor(case["W_hh_per_step"], dtype=t.float64)
        per_step = [stack[0]] * len(stack) if case["tied"] else list(stack.unbind(0))
        h = functions["unrolled_forward"](x, h0, W_xh, per_step, b)
        B, T, _ = case["x"].shape
        values[f"h ({_case_name(case)})"] = _as_array(
            h, "unrolled_forward", (B, T, case["h0"].shape[1])
        )
    return values


def _numpy_states(case: dict, *, transpose=False, reverse=False, tanh=True, h0=True, shift=False):
    """h_1..h_T by the check's own loop (or with one of the typical mistakes switched on)."""
    per_step = case["W_hh_per_step"][::-1] if reverse else case["W_hh_per_step"]
    h = case["h0"] if h0 else np.zeros_like(case["h0"])
    states = [h]
    for t, W in enumerate(per_step):
        a = case["x"][:, t] @ case["W_xh"].T + h @ (W if transpose else W.T) + case["b"]
        h = np.tanh(a) if tanh else a
        states.append(h)
    return np.stack(states[:-1] if shift else states[1:], axis=1)


def _nn_rnn_states(case: dict) -> np.ndarray:
    """h_1..h_T of the tied network from ``torch.nn.RNN`` (its own kernel, not a loop of ours)."""
    t = torch()
    D = case["x"].shape[2]
    H = case["h0"].shape[1]
    rnn = t.nn.RNN(D, H, batch_first=True, dtype=t.float64)
    with t.no_grad():
        rnn.weight_ih_l0.copy_(t.tensor(case["W_xh"]))
        rnn.weight_hh_l0.copy_(t.tensor(case["W_hh_per_step"][0]))
        rnn.bias_ih_l0.copy_(t.tensor(case["b"]))
        rnn.bias_hh_l0.zero_()
        out, _ = rnn(t.tensor(case["x"]), t.tensor(case["h0"])[None])
    return out.numpy()


def _forward_hints(case: dict, values) -> list[str | None]:
    key = f"h ({_case_name(case)})"
    expected = _nn_rnn_states(case) if case["tied"] else _numpy_states(case)
    variants = [
        (
            _numpy_states(case, transpose=True),
            "W_hh is applied transposed: h_{t-1} @ W_hh.T is W_hh h_{t-1}",
        ),
        (
            _numpy_states(case, shift=True),
            "holds h_0..h_{T-1}: return the states after each step, h_1..h_T",
        ),
        (_numpy_states(case, tanh=False), "the tanh is missing: h_t = tanh(a_t)"),
        (_numpy_states(case, h0=False), "h0 is ignored: the loop starts from the given state"),
    ]
    if not case["tied"]:
        variants.append((_numpy_states(case, reverse=True), STEP_ORDER))
    return [compare(key, array_value(values, key), expected, variants=variants)]


def _score_forward(cases, values):
    return Verdict.from_cases(
        (f"with {_case_name(case)} weights", _forward_hints(case, values)) for case in cases
    )


# ----------------------------------------------------------------------------- step_contributions


def chapter_loss(x, y, h0, W_xh, W_hy, W_hh_per_step):
    """L = (1/T) sum_t 1/2 ||W_hy h_t - y_t||^2, mean over the batch (eq. ``rnn-mean-loss``);
    step t of the tanh RNN uses ``W_hh_per_step[t]``. x (B, T, D), y (B, T, Q) -> scalar."""
    t = torch()
    h, total = h0, 0.0
    for step in range(x.shape[1]):
        h = t.tanh(x[:, step] @ W_xh.T + h @ W_hh_per_step[step].T)
        total = total + 0.5 * ((h @ W_hy.T - y[:, step]) ** 2).sum(dim=1).mean()
    return total / x.shape[1]


def _contribution_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex01.contributions")
    B, D, H = _dims(rng)
    T, Q = int(rng.integers(4, 8)), int(rng.integers(1, 3))
    return {
        "x": rng.normal(size=(B, T, D)),
        "y": rng.normal(size=(B, T, Q)),
        "h0": np.tanh(rng.normal(size=(B, H))),
        "W_xh": rng.normal(0, 0.6, (H, D)),
        "W_hh": rng.normal(0, 0.6, (H, H)),
        "W_hy": rng.normal(0, 0.6, (Q, H)),
    }


def _collect_contributions(functions, inputs):
    x, y, h0, W_xh, W_hy, W_hh = _tensors(inputs, ("x", "y", "h0", "W_xh", "W_hy", "W_hh"))
    loss_fn = functools.partial(chapter_loss, x, y, h0, W_xh, W_hy)
    T, H = inputs["x"].shape[1], inputs["W_hh"].shape[0]
    with single_threaded():
        result = functions["step_contributions"](loss_fn, W_hh, T)
    return {"the contributions": _as_array(result, "step_contributions", (T, H, H))}


def _perturbation_contributions(inputs: dict) -> np.ndarray:
    """dL/dE_t at E_t = 0 for L computed with W_hh + E_t at step t: the contribution of step t."""
    t = torch()
    x, y, h0, W_xh, W_hy, W_hh = _tensors(inputs, ("x", "y", "h0", "W_xh", "W_hy", "W_hh"))
    T = inputs["x"].shape[1]
    E = [t.zeros_like(W_hh, requires_grad=True) for _ in range(T)]
    loss = chapter_loss(x, y, h0, W_xh, W_hy, [W_hh + e for e in E])
    return t.stack(t.autograd.grad(loss, E)).numpy()


def _score_contributions(inputs, values):
    with single_threaded():
        expected = _perturbation_contributions(inputs)
    T = expected.shape[0]
    tied = np.broadcast_to(expected.sum(axis=0), expected.shape)
    variants = [
        (tied, "every entry is the whole (tied) gradient: give each step its own copy of W_hh"),
        (expected[::-1], "in reverse time order: entry t belongs to step t"),
        (np.cumsum(expected, axis=0), "running sums: entry t is step t's contribution alone"),
    ]
    scales = [
        (1 / T, "divided by T: the contributions add up to the gradient, do not average them")
    ]
    got = array_value(values, "the contributions")
    return Verdict.from_hints(
        [compare("the contributions", got, expected, variants=variants, scales=scales)]
    )


# ----------------------------------------------------------------------------- predictions

EXPERIMENT_B, EXPERIMENT_D, EXPERIMENT_H = 4, 3, 8
Q1_T, Q2_T = 50, 1000


def experiment_loss(T: int):
    """The loss of the prediction experiment, over T steps: a float64 tanh RNN (the explicit
    loop of :class:`bptt.torch.RecurrentLayer`, B = 4, D = 3, H = 8), L = mean of 1/2 ||h_t||^2.

    The exercise notebook's experiment cell imports it, so the cell and the check measure the
    same graph."""
    from ...torch import RecurrentLayer

    t = torch()
    layer = RecurrentLayer("rnn", EXPERIMENT_D, EXPERIMENT_H, fused=False, seed=0, dtype=t.float64)
    x = t.randn(
        EXPERIMENT_B, T, EXPERIMENT_D, generator=t.Generator().manual_seed(T), dtype=t.float64
    )
    x = x.to(layer.core.weight_ih_l0.device)
    h, _ = layer(x)
    return 0.5 * (h**2).sum(dim=2).mean()


SANDBOX_NAMES = ("experiment_loss",)
"""Kept in the sandbox's pruned copy of this module: the exercise notebook imports it."""


def _q1_depth() -> float:
    from ...torch.attention import graph_depth

    with single_threaded():
        return float(graph_depth(experiment_loss(Q1_T)))


def _q2_bytes() -> float:
    from ...torch import saved_bytes

    with single_threaded():
        return float(saved_bytes(lambda: experiment_loss(Q2_T)))


EXERCISE = Exercise(
    "ex01",
    "The unrolled graph of a tanh RNN",
    (
        Part(
            "unrolled_forward",
            3,
            ("unrolled_forward",),
            _forward_inputs,
            _collect_forward,
            _score_forward,
        ),
        Part(
            "step_contributions",
            3,
            ("step_contributions",),
            _contribution_inputs,
            _collect_contributions,
            _score_contributions,
        ),
        prediction_question("q1", _q1_depth, factor=1.25),
        prediction_question("q2", _q2_bytes, factor=1.25),
    ),
    kinds=("implement", "predict-then-run"),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "unrolled_forward": (
            "bptt.rnn.forward",
            "bptt.torch.models.RecurrentLayer.forward",
            "torch.nn.modules.rnn.RNN.forward",
        ),
    }
)
