"""Checks of exercise 17: a numpy character language model, its loss and its sampler ("A
character language model in numpy", equations `char-rnn-model` and `char-rnn-temperature`).

The model, batch first: one-hot inputs x_t = e(chi_t) of length V, h_t = tanh(W_xh x_t +
W_hh h_{t-1} + b), o_t = W_hy h_t + b_y, with W_xh (H, V), W_hh (H, H), b (H,), W_hy (V, H),
b_y (V,). The learner

- fixes ``loss_and_gradients(chars, params, h0)`` (find the bug): chars (B, T + 1) character
  ids, params the dict above, h0 (B, H) the carried state -> ``(loss, grads)``: the mean
  cross-entropy of the next character over the B T steps (inputs chars[:, :-1], targets
  chars[:, 1:]) and its gradients, a dict with the five parameter names;
- writes ``temperature_probabilities(logits, temperature)``: logits (V,) -> softmax(logits / tau_s),
  (V,), without overflow for large logits;
- writes ``sample_chars(logits, temperature, n, rng)``: n independent draws (n,) of character ids
  from those probabilities, using only the numpy Generator ``rng``.

Expected values: torch autograd in float64 for the loss and gradients, torch's softmax in float64
for the probabilities, and for the sampler the counts of many draws against the exact
probabilities (a z-score per character) and equal draws from equal generators.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ._support import derived_seed, entries, grad_of, leaf, pair, rng_for, torch

KEYS = ("W_xh", "W_hh", "b", "W_hy", "b_y")
SAME_STEP = (
    "the loss predicts the character a step reads, not the next one: the target of step t is "
    "chars[:, t + 1]"
)
SUM_NOT_MEAN = "the gradient of the sum, not of the mean: divide by the B T predictions"
NO_CARRY = "the gradient flowing back from step t+1 through h_t is missing"


# ----------------------------------------------------------------------------- loss_and_gradients


def _loss_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex17.loss")
    cases = []
    for T in (int(rng.integers(3, 7)), 1):
        V, H, B = int(rng.integers(4, 8)), int(rng.integers(3, 6)), int(rng.integers(1, 4))
        params = {
            "W_xh": rng.normal(0, 0.8, (H, V)),
            "W_hh": rng.normal(0, 0.6, (H, H)),
            "b": rng.normal(0, 0.2, H),
            "W_hy": rng.normal(0, 0.8, (V, H)),
            "b_y": rng.normal(0, 0.2, V),
        }
        cases.append(
            {
                "chars": rng.integers(0, V, size=(B, T + 1)),
                "params": params,
                "h0": np.tanh(rng.normal(size=(B, H))),
            }
        )
    return cases


def _loss_key(case: dict, what: str) -> str:
    return f"{what} (T = {case['chars'].shape[1] - 1})"


def _collect_loss(functions, cases):
    values = {}
    for case in cases:
        params = {k: v.copy() for k, v in case["params"].items()}
        loss, grads = pair(
            functions["loss_and_gradients"](case["chars"].copy(), params, case["h0"].copy()),
            "loss_and_gradients",
            "(loss, grads)",
        )
        values[_loss_key(case, "the loss")] = loss
        for k, v in entries(grads, KEYS, "loss_and_gradients' grads").items():
            values[_loss_key(case, f"the '{k}' gradient")] = v
    return values


def _autograd(case: dict, *, target_shift: int = 1, carry: bool = True) -> dict:
    """The loss and its gradients by autograd; ``target_shift`` 0 scores each step on the
    character it reads, ``carry`` False cuts the recurrence out of the backward pass."""
    t = torch()
    p = {k: leaf(v) for k, v in case["params"].items()}
    chars = case["chars"]
    B, steps = chars.shape[0], chars.shape[1] - 1
    V = case["params"]["W_xh"].shape[1]
    eye = t.eye(V, dtype=t.float64)
    h, total = t.tensor(case["h0"]), 0.0
    for s in range(steps):
        x = eye[t.tensor(chars[:, s])]
        h_prev = h if carry else h.detach()
        h = t.tanh(x @ p["W_xh"].T + h_prev @ p["W_hh"].T + p["b"])
        o = h @ p["W_hy"].T + p["b_y"]
        target = t.tensor(chars[:, s + target_shift])
        total = total + t.nn.functional.cross_entropy(o, target, reduction="sum")
    loss = total / (B * steps)
    loss.backward()
    return {"loss": float(loss.detach()), **{k: grad_of(v) for k, v in p.items()}}


def _score_loss(cases, values) -> Verdict:
    def hints(case):
        expected = _autograd(case)
        same_step = _autograd(case, target_shift=0)
        no_carry = _autograd(case, carry=False)
        n = case["chars"].shape[0] * (case["chars"].shape[1] - 1)
        found = [
            compare(
                _loss_key(case, "the loss"),
                array_value(values, _loss_key(case, "the loss")),
                expected["loss"],
                variants=[(same_step["loss"], SAME_STEP)],
                scales=[(n, "the sum, not the mean: divide by the B T predictions")],
            )
        ]
        for k in KEYS:
            name = _loss_key(case, f"the '{k}' gradient")
            variants = [(same_step[k], SAME_STEP)]
            if k in ("W_xh", "W_hh", "b"):
                variants.append((no_carry[k], NO_CARRY))
            found.append(
                compare(
                    name,
                    array_value(values, name),
                    expected[k],
                    variants=variants,
                    scales=[(n, SUM_NOT_MEAN)],
                )
            )
        return found

    return Verdict.from_cases(("", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- temperature


def _probability_inputs(seed: int) -> list[dict]:
    """Logit vectors with temperatures below, at and above 1, one of them with huge logits."""
    rng = rng_for(seed, "ex17.temperature")
    V = int(rng.integers(4, 9))
    return [
        {"logits": rng.normal(0, 2, V), "temperature": float(rng.uniform(0.3, 0.8))},
        {"logits": rng.normal(0, 2, V), "temperature": 1.0},
        {"logits": rng.normal(0, 2, V), "temperature": float(rng.uniform(1.5, 3.0))},
        {"logits": 800 + rng.normal(0, 3, V), "temperature": 0.5},
    ]


def _probability_key(case: dict) -> str:
    return f"temperature_probabilities(logits, {case['temperature']:.3g})"


def _collect_probabilities(functions, cases):
    return {
        _probability_key(case): functions["temperature_probabilities"](
            case["logits"].copy(), case["temperature"]
        )
        for case in cases
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    t = torch()
    return t.softmax(t.tensor(logits, dtype=t.float64), dim=0).numpy()


def _score_probabilities(cases, values) -> Verdict:
    hints = []
    for case in cases:
        name = _probability_key(case)
        got = np.asarray(array_value(values, name), dtype=float)
        if got.shape == case["logits"].shape and not np.all(np.isfinite(got)):
            hints.append(f"{name}: exp overflowed: subtract the largest logit before exp")
            continue
        tau = case["temperature"]
        variants = [
            (_softmax(case["logits"] * tau), "multiplied by the temperature: divide the logits"),
            (np.exp(case["logits"] / tau - case["logits"].max() / tau), "not normalised"),
        ]
        if tau != 1.0:
            variants.append((_softmax(case["logits"]), "the temperature is not used"))
        hints.append(compare(name, got, _softmax(case["logits"] / tau), variants=variants))
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- sample_chars

DRAWS = 20_000
Z_LIMIT = 5.0  # a right sampler exceeds 5 standard errors in some character with p < 1e-5
REPEAT = 200  # equal generators must give equal draws
BATCHES, BATCH = 20, 1000  # independent batches for the test of too-exact frequencies
Z_TOO_EXACT = -4.75  # the lower 1e-6 quantile of a standard normal


def _chi2_lower_quantile(df: int, z: float) -> float:
    """The chi-square quantile with ``df`` degrees of freedom at standard-normal ``z``
    (Wilson-Hilferty: (X / df)^(1/3) is nearly normal)."""
    c = 2.0 / (9.0 * df)
    return df * (1.0 - c + z * math.sqrt(c)) ** 3


def _sample_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex17.sample")
    V = int(rng.integers(4, 8))
    return {
        "logits": rng.normal(0, 1.5, V),
        "temperature": float(rng.uniform(0.5, 2.0)),
        "seed": derived_seed(seed, "ex17.sample.rng"),
    }


def _draws(functions, inputs, n: int, stream: int):
    rng = np.random.default_rng([inputs["seed"], stream])
    drawn = np.asarray(
        functions["sample_chars"](inputs["logits"].copy(), inputs["temperature"], n, rng)
    )
    if drawn.shape != (n,):
        raise WrongOutput(
            f"sample_chars(..., n={n}, rng) should return {n} ids, got {a_type(drawn)}"
        )
    return drawn


def _collect_sample(functions, inputs):
    return {
        "many draws": _draws(functions, inputs, DRAWS, 0),
        "draws": _draws(functions, inputs, REPEAT, 1),
        "draws from an equal rng": _draws(functions, inputs, REPEAT, 1),
        "draws from another rng": _draws(functions, inputs, REPEAT, 2),
        "batches": np.stack([_draws(functions, inputs, BATCH, 3 + b) for b in range(BATCHES)]),
    }


def _z_scores(drawn: np.ndarray, p: np.ndarray) -> np.ndarray:
    counts = np.bincount(drawn.astype(int), minlength=len(p))
    return (counts - DRAWS * p) / np.sqrt(DRAWS * p * (1 - p))


def _score_sample(inputs, values) -> Verdict:
    logits, tau = inputs["logits"], inputs["temperature"]
    drawn = np.asarray(array_value(values, "many draws"), dtype=float)
    V = len(logits)
    if not np.all((drawn == np.round(drawn)) & (drawn >= 0) & (drawn < V)):
        return Verdict.wrong(f"sample_chars should return character ids 0 .. {V - 1}")
    if np.max(np.abs(_z_scores(drawn, _softmax(logits / tau)))) > Z_LIMIT:
        for wrong, hint in (
            (_softmax(logits), "the draws ignore the temperature"),
            (_softmax(logits * tau), "the logits were multiplied by the temperature: divide"),
        ):
            if np.max(np.abs(_z_scores(drawn, wrong))) <= Z_LIMIT:
                return Verdict.wrong(hint)
        if len(np.unique(drawn)) == 1:
            return Verdict.wrong("every draw is the same character: draw, do not take the argmax")
        return Verdict.wrong(
            f"the frequencies of {DRAWS} draws do not follow softmax(logits / temperature)"
        )
    p = _softmax(logits / tau)
    counts = np.stack([np.bincount(b.astype(int), minlength=V)[:V] for b in
                       np.asarray(array_value(values, "batches"), dtype=float)])
    chi2 = float(np.sum((counts - BATCH * p) ** 2 / (BATCH * p)))
    if chi2 < _chi2_lower_quantile(BATCHES * (V - 1), Z_TOO_EXACT):
        return Verdict.wrong(
            "the frequencies are too exact to be random: in every batch of draws each character "
            "comes almost exactly n * p times; draw each character independently"
        )
    same = np.array_equal(values["draws"], values["draws from an equal rng"])
    if not same:
        return Verdict.wrong(
            "equal generators gave different draws: draw with the rng passed in, not np.random"
        )
    if np.array_equal(values["draws"], values["draws from another rng"]):
        return Verdict.wrong("another generator gave the same draws: draw with the rng passed in")
    return Verdict.correct()


EXERCISE = Exercise(
    "ex17",
    "A numpy char-RNN: its loss and its sampler",
    (
        Part(
            "loss_and_gradients",
            4,
            ("loss_and_gradients",),
            _loss_inputs,
            _collect_loss,
            _score_loss,
        ),
        Part(
            "temperature_probabilities",
            2,
            ("temperature_probabilities",),
            _probability_inputs,
            _collect_probabilities,
            _score_probabilities,
        ),
        Part("sample_chars", 2, ("sample_chars",), _sample_inputs, _collect_sample, _score_sample),
    ),
    kinds=("find-the-bug", "implement"),
)

# The package's char-RNN does what the parts ask: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "loss_and_gradients": (
            "bptt.char_rnn.chunk_loss_and_gradients",
            "bptt.rnn.backward",
            "bptt.rnn.loss_and_gradients",
        ),
        "temperature_probabilities": ("scipy.special.softmax",),
        "sample_chars": ("bptt.char_rnn.sample",),
    }
)
