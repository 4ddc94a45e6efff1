"""Checks of exercise 15: how the gradient reaches an input, through a recurrence and through
attention ("BPTT and Transformers", equations `attention-rnn-path` and `attention-layer`).

One sequence x (T, D) (0-based positions), a read-out direction u, and the output at position t.
The learner derives, and writes as numpy functions,

- ``rnn_path_gradient(x, W_xh, W_hh, b, u, t)`` -> (T, D): row s is d(u . h_t)/dx_s for the tanh
  RNN h_t = tanh(W_xh x_t + W_hh h_{t-1} + b), h_{-1} = 0, with W_xh (H, D), W_hh (H, H),
  b (H,), u (H,): the product of the step Jacobians between s and t (zero for s > t);
- ``attention_path_gradient(x, W_q, W_k, W_v, W_o, u, t)`` -> (T, d): row s is d(u . o_t)/dx_s
  for one causal self-attention head, q_t = W_q x_t, k_s = W_k x_s, v_s = W_v x_s,
  alpha_ts = softmax_{s <= t}(q_t . k_s / sqrt(d)), o_t = W_o sum_{s <= t} alpha_ts v_s, all
  matrices (d, d): one hop through the value, the key and (at s = t) the query;
- ``answers()`` with q1 and q2: the ratio of the gradient norms 20 steps back and 0 steps back,
  for the chapter's two layers at initialisation (``bptt.torch.RecurrentLayer`` and
  ``bptt.torch.attention.CausalSelfAttention``, width 16, seed 0).

Expected values: torch autograd in float64. The hints' wrong answers come from autograd with a
piece of the graph cut (detach) or from the closed form with one term dropped.
"""

from __future__ import annotations

import numpy as np

from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ..questions import number_question
from ._support import AUTOGRAD, copied, grad_of, leaf, rng_for, torch

Q_WIDTH, Q_T, Q_DISTANCE, Q_SEED = 16, 40, 20, 15
LOCAL_ONLY = (
    "only the last step's own term: the gradient of earlier inputs travels back through "
    "h_{t-1}, h_{t-2}, ... (a product of Jacobians)"
)
SHIFTED = "the tanh derivative of step s is 1 - h_s^2, with the state step s outputs, not h_{s-1}"
VALUES_ONLY = (
    "only the path through the values: alpha_ts depends on x_s (through k_s) and on x_t "
    "(through q_t) too"
)
NO_QUERY = (
    "x_t also forms the query q_t: at s = t add the gradient that flows through q_t to every score"
)


# ----------------------------------------------------------------------------- the RNN path


def _rnn_inputs(seed: int) -> list[dict]:
    """Two cases: the output read at the last position and at an earlier one."""
    rng = rng_for(seed, "ex15.rnn")
    cases = []
    for last in (True, False):
        T, H = int(rng.integers(4, 8)), int(rng.integers(3, 6))
        D = H + int(rng.integers(1, 3))  # D != H, so a transposed W_xh shows
        cases.append(
            {
                "x": rng.normal(size=(T, D)),
                "W_xh": rng.normal(0, 0.7, (H, D)),
                "W_hh": rng.normal(0, 0.8 / np.sqrt(H), (H, H)),
                "b": rng.normal(0, 0.2, H),
                "u": rng.normal(size=H),
                "t": T - 1 if last else int(rng.integers(1, T - 1)),
            }
        )
    return cases


def _rnn_name(case: dict) -> str:
    return f"d(u . h_t)/dx (T = {case['x'].shape[0]}, t = {case['t']})"


def _collect_rnn(functions, cases):
    values = {}
    for case in cases:
        c = copied(case)
        values[_rnn_name(case)] = functions["rnn_path_gradient"](
            c["x"], c["W_xh"], c["W_hh"], c["b"], c["u"], c["t"]
        )
    return values


def _rnn_autograd(case: dict, *, cut: bool = False) -> np.ndarray:
    """d(u . h_t)/dx by autograd; ``cut`` detaches h_{t-1}: only the local, one-step term."""
    x = leaf(case["x"])
    W_xh, W_hh, b = (torch().tensor(case[k]) for k in ("W_xh", "W_hh", "b"))
    h = torch().zeros(W_hh.shape[0], dtype=torch().float64)
    for s in range(case["t"] + 1):
        h = torch().tanh(W_xh @ x[s] + W_hh @ (h.detach() if cut else h) + b)
    (torch().tensor(case["u"]) @ h).backward()
    return grad_of(x)


def _rnn_backward(case: dict, *, transpose=False, tanh=True, shift=False) -> np.ndarray:
    """The product of step Jacobians in numpy, with one typical mistake switched on."""
    x, W_xh, W_hh, b, t = case["x"], case["W_xh"], case["W_hh"], case["b"], case["t"]
    states, h = [np.zeros(W_hh.shape[0])], np.zeros(W_hh.shape[0])
    for s in range(t + 1):
        h = np.tanh(W_xh @ x[s] + W_hh @ h + b)
        states.append(h)
    grad, r = np.zeros_like(x), case["u"].copy()
    for s in range(t, -1, -1):
        h_s = states[s] if shift else states[s + 1]  # states[s + 1] is h_s
        delta = r * (1 - h_s**2) if tanh else r
        grad[s] = W_xh.T @ delta
        r = (W_hh if transpose else W_hh.T) @ delta
    return grad


def _score_rnn(cases, values) -> Verdict:
    def hints(case):
        variants = [
            (
                _rnn_autograd(case, cut=True),
                LOCAL_ONLY,
            ),
            (
                _rnn_backward(case, transpose=True),
                "W_hh is transposed: going back one step multiplies by W_hh^T diag(1 - h^2)",
            ),
            (_rnn_backward(case, tanh=False), "the tanh derivative diag(1 - h_s^2) is missing"),
            (
                _rnn_backward(case, shift=True),
                SHIFTED,
            ),
        ]
        name = _rnn_name(case)
        return [compare(name, array_value(values, name), _rnn_autograd(case), variants=variants)]

    return Verdict.from_cases(("", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- the attention path


def _attention_inputs(seed: int) -> list[dict]:
    """Two cases: the output read at the last position and at an earlier one (the mask shows)."""
    rng = rng_for(seed, "ex15.attention")
    cases = []
    for last in (True, False):
        T, d = int(rng.integers(4, 8)), int(rng.integers(2, 6))
        weights = {k: rng.normal(0, 1.5 / np.sqrt(d), (d, d)) for k in ("W_q", "W_k", "W_v", "W_o")}
        cases.append(
            {
                "x": rng.normal(size=(T, d)),
                **weights,
                "u": rng.normal(size=d),
                "t": T - 1 if last else int(rng.integers(1, T - 1)),
            }
        )
    return cases


def _attention_name(case: dict) -> str:
    return f"d(u . o_t)/dx (T = {case['x'].shape[0]}, t = {case['t']})"


def _collect_attention(functions, cases):
    values = {}
    for case in cases:
        c = copied(case)
        values[_attention_name(case)] = functions["attention_path_gradient"](
            c["x"], c["W_q"], c["W_k"], c["W_v"], c["W_o"], c["u"], c["t"]
        )
    return values


def _attention_autograd(
    case: dict, *, causal=True, fixed_weights=False, fixed_query=False, scale=True
) -> np.ndarray:
    """d(u . o_t)/dx by autograd; the flags build in a typical mistake (a mask left out, the
    attention weights or the query treated as constants, the 1/sqrt(d) forgotten)."""
    x = leaf(case["x"])
    W = {k: torch().tensor(case[k]) for k in ("W_q", "W_k", "W_v", "W_o")}
    t, d = case["t"], case["x"].shape[1]
    q = W["W_q"] @ x[t]
    if fixed_query:
        q = q.detach()
    keys, values = x @ W["W_k"].T, x @ W["W_v"].T
    seen = x.shape[0] if not causal else t + 1
    scores = keys[:seen] @ q / (np.sqrt(d) if scale else 1.0)
    alpha = torch().softmax(scores, dim=0)
    if fixed_weights:
        alpha = alpha.detach()
    o = W["W_o"] @ (alpha @ values[:seen])
    (torch().tensor(case["u"]) @ o).backward()
    return grad_of(x)


def _score_attention(cases, values) -> Verdict:
    def hints(case):
        variants = [
            (
                _attention_autograd(case, fixed_weights=True),
                VALUES_ONLY,
            ),
            (
                _attention_autograd(case, fixed_query=True),
                NO_QUERY,
            ),
            (
                _attention_autograd(case, scale=False),
                "the scores are q_t . k_s / sqrt(d): the 1/sqrt(d) is missing",
            ),
            (
                _attention_autograd(case, causal=False),
                "positions after t must get no gradient (the causal mask): o_t mixes s <= t only",
            ),
        ]
        name = _attention_name(case)
        expected = _attention_autograd(case)
        return [compare(name, array_value(values, name), expected, variants=variants)]

    return Verdict.from_cases(("", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- questions


def _question_layers():
    from ...torch import RecurrentLayer
    from ...torch.attention import CausalSelfAttention

    dtype = torch().float64
    rnn = RecurrentLayer("rnn", Q_WIDTH, Q_WIDTH, fused=False, seed=0, dtype=dtype, device="cpu")
    attention = CausalSelfAttention(Q_WIDTH, 1, seed=0, dtype=dtype)
    generator = torch().Generator().manual_seed(Q_SEED)
    x = torch().randn(1, Q_T, Q_WIDTH, generator=generator, dtype=dtype)
    u = torch().randn(Q_WIDTH, generator=generator, dtype=dtype)
    return rnn, attention, x, u


def _ratio(layer_output) -> float:
    """||d(u . o_T)/dx_{T-20}|| / ||d(u . o_T)/dx_T|| by autograd on the chapter's layer."""
    rnn, attention, x, u = _question_layers()
    x.requires_grad_()
    output = layer_output(rnn, attention, x)
    (grad,) = torch().autograd.grad(output[0, -1] @ u, x)
    norms = grad[0].norm(dim=-1)
    return float(norms[-1 - Q_DISTANCE] / norms[-1])


def _q1_rnn_ratio() -> float:
    return _ratio(lambda rnn, attention, x: rnn(x)[0])


def _q2_attention_ratio() -> float:
    return _ratio(lambda rnn, attention, x: attention(x))


EXERCISE = Exercise(
    "ex15",
    "Gradient paths through a recurrence and through attention",
    (
        Part("rnn_path_gradient", 3, ("rnn_path_gradient",), _rnn_inputs, _collect_rnn, _score_rnn),
        Part(
            "attention_path_gradient",
            4,
            ("attention_path_gradient",),
            _attention_inputs,
            _collect_attention,
            _score_attention,
        ),
        number_question("q1", _q1_rnn_ratio, rtol=1e-3),
        number_question("q2", _q2_attention_ratio, rtol=1e-3),
    ),
    kinds=("derive",),
)

# The parts ask for derived formulas in numpy: autograd is the check's, not the learner's.
EXERCISE = EXERCISE.forbidding(
    {"rnn_path_gradient": AUTOGRAD, "attention_path_gradient": AUTOGRAD}
)
