"""The checks of exercises ex14, ex15, ex16 and ex17 are not vacuous: solutions score full marks
at two seeds, stubs (or the planted bugs of the find-the-bug parts) score zero, and typical wrong
answers lose the part they get wrong, each with its specific hint (in-process, fast)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from grading_helpers import (
    answer,
    assert_two_wrong_answers_per_part,
    exercise_notebook,
    graded_functions,
    wrong_id,
)

from bptt.grading import get_exercise, run_checks
from bptt.grading.selfcheck import SELF_CHECK_SEED

EXERCISES = ("ex14", "ex15", "ex16", "ex17")


def _points(exercise: str, functions: dict, seed: int = SELF_CHECK_SEED) -> dict:
    return {
        r.part: (r.points, r.max_points, r.reason)
        for r in run_checks(exercise, functions, seed=seed)
    }


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
@pytest.mark.parametrize("exercise", ("ex15", "ex16", "ex17"))
def test_numpy_solutions_score_full_marks_on_other_inputs(namespaces, exercise, seed):
    """The inputs (values and sizes) change with the seed; the numpy solutions pass for each."""
    functions = graded_functions(namespaces("solutions", exercise), exercise)
    results = _points(exercise, functions, seed)
    assert {part: r for part, r in results.items() if r[0] != r[1]} == {}


# ----------------------------------------------------------------------------- the package agrees


def _package_masked_loss(logits, targets, lengths):
    """masked_loss from the package's masked mean and autograd (an independent implementation)."""
    from bptt.torch import sequences as sq

    o = torch.tensor(logits, requires_grad=True)
    loss = sq.masked_mean(sq.step_cross_entropy(o, torch.tensor(targets)), torch.tensor(lengths))
    loss.backward()
    return float(loss.detach()), o.grad.numpy()


def _package_chunk_loss(chars, params, h0):
    from bptt import char_rnn

    loss, grads, _ = char_rnn.chunk_loss_and_gradients(chars[:, :-1], chars[:, 1:], params, h0)
    return loss, grads


@pytest.mark.parametrize(
    ("exercise", "functions"),
    [
        ("ex16", {"masked_loss": _package_masked_loss}),
        ("ex17", {"loss_and_gradients": _package_chunk_loss}),
    ],
    ids=["ex16-masked_mean", "ex17-chunk_loss_and_gradients"],
)
def test_the_packages_own_implementations_score_full_marks(exercise, functions):
    results = _points(exercise, functions)
    assert {p: results[p] for p in functions if results[p][0] != results[p][1]} == {}


# ----------------------------------------------------------------------------- wrong answers
# Each factory takes the solution's namespace and returns a wrong version of one function.


def _ex14_plain(count):
    return lambda ns: count


def _ex14_checkpoint(count):
    return lambda ns: lambda B, T, H, s: count(ns, B, T, H, s)


def _ex15_rnn(transpose=False, tanh=True, shift=False, local=False):
    """rnn_path_gradient with one typical mistake."""

    def rnn_path_gradient(x, W_xh, W_hh, b, u, t):
        states, h = [np.zeros(W_hh.shape[0])], np.zeros(W_hh.shape[0])
        for s in range(t + 1):
            h = np.tanh(W_xh @ x[s] + W_hh @ h + b)
            states.append(h)
        grad, r = np.zeros_like(x), u
        for s in range(t, -1 if not local else t - 1, -1):
            h_s = states[s] if shift else states[s + 1]
            delta = r * (1 - h_s**2) if tanh else r
            grad[s] = W_xh.T @ delta
            r = (W_hh if transpose else W_hh.T) @ delta
        return grad

    return lambda ns: rnn_path_gradient


def _ex15_attention(values_only=False, query=True, scale=True, causal=True):
    """attention_path_gradient with one typical mistake."""

    def attention_path_gradient(x, W_q, W_k, W_v, W_o, u, t):
        root = np.sqrt(x.shape[1]) if scale else 1.0
        seen = t + 1 if causal else x.shape[0]
        q, keys, values = W_q @ x[t], x[:seen] @ W_k.T, x[:seen] @ W_v.T
        alpha = np.exp(keys @ q / root)
        alpha /= alpha.sum()
        w = W_o.T @ u
        c = values @ w
        g = 0 * alpha if values_only else alpha * (c - alpha @ c)
        grad = np.zeros_like(x)
        grad[:seen] = np.outer(alpha, W_v.T @ w) + np.outer(g, W_k.T @ q) / root
        if query:
            grad[t] += W_q.T @ (g @ keys) / root
        return grad

    return lambda ns: attention_path_gradient


def _ex16_loss(reduce, grad_on_padding=False):
    """masked_loss with a wrong reduction ``reduce(step_losses, mask)`` of the (B, T) losses."""

    def masked_loss(logits, targets, lengths):
        B, T, _ = logits.shape
        mask = np.arange(T)[None, :] < lengths[:, None]
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        steps = -np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        weights = reduce(np.ones_like(steps), mask)  # d loss / d step loss, (B, T)
        grad = np.exp(log_probs)
        grad[np.arange(B)[:, None], np.arange(T)[None, :], targets] -= 1
        if grad_on_padding:
            weights = np.full_like(weights, weights.max())
        return (steps * reduce(np.ones_like(steps), mask)).sum(), grad * weights[..., None]

    return lambda ns: masked_loss


def _ex16_forcing(change):
    def factory(ns):
        def teacher_forcing(tokens, lengths, start):
            return change(*ns["teacher_forcing"](tokens, lengths, start), tokens, lengths)

        return teacher_forcing

    return factory


def _planted(name):
    """The planted (buggy) function of a find-the-bug part, as the exercise notebook defines it."""
    return ("exercises", name)


def _ex17_edited(old, new):
    """loss_and_gradients of the solution notebook with one line edited (a typical mistake)."""

    def factory(ns):
        cells = json.loads(exercise_notebook("solutions", "ex17").read_text())["cells"]
        (source,) = [
            "".join(c["source"])
            for c in cells
            if "def loss_and_gradients" in "".join(c["source"]) and c["cell_type"] == "code"
        ]
        assert old in source, old
        scope = {"np": np}
        exec(source.replace(old, new), scope)  # noqa: S102 - the course's own notebook
        return scope["loss_and_gradients"]

    return factory


def _ex17_probabilities(change):
    def factory(ns):
        return lambda logits, temperature: change(np.asarray(logits, dtype=float), temperature)

    return factory


def _softmax(z):
    """The softmax without the subtraction of the maximum (overflows, on purpose, for large z)."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z)
        return e / e.sum()


def _ex17_sampler(draw):
    return lambda ns: lambda logits, temperature, n, rng: draw(ns, logits, temperature, n, rng)


def _quota(ns, z, tau, n, rng):
    """Each character exactly floor(n p) times (the rest to the likeliest), shuffled."""
    p = ns["temperature_probabilities"](z, tau)
    counts = np.floor(n * p).astype(int)
    counts[np.argmax(p)] += n - counts.sum()
    return rng.permutation(np.repeat(np.arange(len(p)), counts))


WRONG = [
    # ex14
    ("ex14", "bptt_values", _ex14_plain(lambda B, T, H: B * H * T), "h_0 is kept too"),
    ("ex14", "bptt_values", _ex14_plain(lambda B, T, H: 8 * B * H * (T + 1)), "that is bytes"),
    ("ex14", "bptt_values", _ex14_plain(lambda B, T, H: 2 * B * H * T), "one state, not two"),
    (
        "ex14",
        "checkpoint_values",
        _ex14_checkpoint(lambda ns, B, T, H, s: B * H * (T + 1)),
        "that is plain BPTT's count",
    ),
    (
        "ex14",
        "checkpoint_values",
        _ex14_checkpoint(lambda ns, B, T, H, s: B * H * (math.ceil(T / s) + s + 1)),
        "only the states entering segments 2, 3",
    ),
    (
        "ex14",
        "checkpoint_values",
        _ex14_checkpoint(lambda ns, B, T, H, s: B * H * (T // s + s)),
        "with a ceiling",
    ),
    (
        "ex14",
        "checkpoint_values",
        _ex14_checkpoint(lambda ns, B, T, H, s: B * H * math.ceil(T / s)),
        "own states are missing",
    ),
    ("ex14", "q1", answer("q1", 15.64 * 8), "too high by more than"),
    ("ex14", "q1", answer("q1", 15.64 / 1.8), "within 2.25 times, but too low"),
    ("ex14", "q2", answer("q2", 15.64), "too high by more than"),
    ("ex14", "q2", answer("q2", 1 / 32), "too low by more than"),
    # ex15
    ("ex15", "rnn_path_gradient", _ex15_rnn(local=True), "a product of Jacobians"),
    ("ex15", "rnn_path_gradient", _ex15_rnn(transpose=True), "W_hh is transposed"),
    ("ex15", "rnn_path_gradient", _ex15_rnn(tanh=False), "tanh derivative diag(1 - h_s^2)"),
    ("ex15", "rnn_path_gradient", _ex15_rnn(shift=True), "not h_{s-1}"),
    ("ex15", "attention_path_gradient", _ex15_attention(values_only=True), "through the values"),
    ("ex15", "attention_path_gradient", _ex15_attention(query=False), "also forms the query"),
    ("ex15", "attention_path_gradient", _ex15_attention(scale=False), "1/sqrt(d) is missing"),
    ("ex15", "attention_path_gradient", _ex15_attention(causal=False), "the causal mask"),
    ("ex15", "q1", answer("q1", 1e-5), "not right"),
    ("ex15", "q1", answer("q1", 1.0), "not right"),
    ("ex15", "q2", answer("q2", 1 / 40), "not right"),
    ("ex15", "q2", answer("q2", 1.0), "not right"),
    # ex16: the planted bugs, then other typical ones
    ("ex16", "masked_loss", _planted("masked_loss"), "divided by all B * T steps"),
    (
        "ex16",
        "masked_loss",
        _ex16_loss(lambda ones, m: np.full(m.shape, 1 / m.size)),
        "count with the padding's class",
    ),
    (
        "ex16",
        "masked_loss",
        _ex16_loss(
            lambda ones, m: (
                (np.arange(m.shape[1]) <= m.sum(1, keepdims=True))
                / ((np.arange(m.shape[1]) <= m.sum(1, keepdims=True)).sum())
            )
        ),
        "the mask is one step off",
    ),
    (
        "ex16",
        "masked_loss",
        _ex16_loss(lambda ones, m: m / m.sum(1, keepdims=True) / m.shape[0]),
        "mean of the per-sequence means",
    ),
    (
        "ex16",
        "masked_loss",
        _ex16_loss(lambda ones, m: m / m.sum(), grad_on_padding=True),
        "padded steps must get zero gradient",
    ),
    ("ex16", "teacher_forcing", _planted("teacher_forcing"), "fed the symbol it must predict"),
    (
        "ex16",
        "teacher_forcing",
        _ex16_forcing(
            lambda i, t, tokens, lengths: (np.where(np.arange(i.shape[1]) == 0, tokens, i), t)
        ),
        "step 0 is fed the start symbol",
    ),
    (
        "ex16",
        "teacher_forcing",
        _ex16_forcing(lambda i, t, tokens, lengths: (i, np.where(t < 0, 0, t))),
        "need target -1",
    ),
    (
        "ex16",
        "teacher_forcing",
        _ex16_forcing(
            lambda i, t, tokens, lengths: (
                i,
                np.where(np.arange(t.shape[1]) < lengths[:, None] - 1, np.roll(tokens, -1, 1), -1),
            )
        ),
        "not the symbol after that",
    ),
    # ex17: the planted bug, then other typical ones
    ("ex17", "loss_and_gradients", _planted("loss_and_gradients"), "the target of step t"),
    (
        "ex17",
        "loss_and_gradients",
        _ex17_edited("        do /= B * T\n", ""),
        "the gradient of the sum, not of the mean",
    ),
    (
        "ex17",
        "loss_and_gradients",
        _ex17_edited("carry = delta @ W_hh", "carry = 0 * delta @ W_hh"),
        "flowing back from step t+1",
    ),
    (
        "ex17",
        "temperature_probabilities",
        _ex17_probabilities(lambda z, tau: _softmax(z * tau - (z * tau).max())),
        "multiplied by the temperature",
    ),
    (
        "ex17",
        "temperature_probabilities",
        _ex17_probabilities(lambda z, tau: _softmax(z / tau)),
        "exp overflowed",
    ),
    (
        "ex17",
        "temperature_probabilities",
        _ex17_probabilities(lambda z, tau: _softmax(z - z.max())),
        "the temperature is not used",
    ),
    (
        "ex17",
        "sample_chars",
        _ex17_sampler(
            lambda ns, z, tau, n, rng: np.random.default_rng().choice(
                len(z), size=n, p=ns["temperature_probabilities"](z, tau)
            )
        ),
        "equal generators gave different draws",
    ),
    ("ex17", "sample_chars", _ex17_sampler(_quota), "too exact to be random"),
    (
        "ex17",
        "sample_chars",
        _ex17_sampler(
            lambda ns, z, tau, n, rng: rng.choice(
                len(z), size=n, p=ns["temperature_probabilities"](z, 1.0)
            )
        ),
        "ignore the temperature",
    ),
    (
        "ex17",
        "sample_chars",
        _ex17_sampler(lambda ns, z, tau, n, rng: np.full(n, int(np.argmax(z)))),
        "do not take the argmax",
    ),
]


def _wrong_points(namespaces, case) -> tuple:
    exercise, part_name, factory, _ = case
    part = get_exercise(exercise).part(part_name)
    functions = graded_functions(namespaces("solutions", exercise), exercise)
    if isinstance(factory, tuple):  # a planted bug: the exercise notebook's own function
        folder, function = factory
        wrong = namespaces(folder, exercise)[function]
    else:
        wrong = factory(namespaces("solutions", exercise))
    (name,) = [n for n in part.needs if n != "answers"] or ["answers"]
    result = _points(exercise, {**functions, name: wrong})[part_name]
    return result


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    points, most, reason = _wrong_points(namespaces, case)
    assert points < most, reason
    assert case[3] in reason, reason
    if "within 2.25 times" not in case[3]:
        assert points == 0, reason


def test_every_part_has_two_wrong_answers():
    assert_two_wrong_answers_per_part(EXERCISES, WRONG)
