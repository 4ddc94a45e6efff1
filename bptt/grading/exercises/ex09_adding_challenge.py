"""Checks of exercise 9: the LSTM backward pass by hand, then a training challenge on the adding
problem ("Gated architectures").

Parts 1-4, the LSTM cell of eq. `lstm-cell` in the layout of :mod:`bptt.lstm` (W_x (4H, D),
W_h (4H, H), b (4H,), blocks i, f, g, q in PyTorch's order, g the candidate c~_t and q the output
gate), batch first. The learner writes

- ``lstm_step_forward(x_t, h_prev, c_prev, W_x, W_h, b)`` -> ``(h_t, c_t, cache)``, h_t and c_t
  (B, H), cache a :class:`bptt.lstm.StepCache`;
- ``lstm_step_backward(dh_t, dc_t, cache)`` -> the gradients of sum(dh_t * h_t + dc_t * c_t)
  (eq. `lstm-step-backward`) as a dict with keys ``x`` (B, D), ``h_prev``, ``c_prev`` (B, H),
  ``W_x``, ``W_h``, ``b``;
- ``lstm_forward(x, h0, c0, W_x, W_h, b)`` -> ``(h, c, caches)``, h and c (B, T, H), caches the
  list of the T step caches;
- ``lstm_backward(dh, caches)`` -> the gradients of sum(dh * h) for dh (B, T, H), keys ``x``
  (B, T, D), ``h0``, ``c0`` (B, H), ``W_x``, ``W_h``, ``b``. It calls the learner's
  ``lstm_step_backward`` from the notebook (the part a reference step could be substituted in).

Expected values: ``torch.nn.LSTMCell`` and ``torch.nn.LSTM`` (float64) holding the same weights
for the forward parts; torch autograd in float64 for the backward parts, with a leaf copy of the
weights per step for the per-step contributions. The typical wrong answers that get a hint are
built into the check's own forward pass (blocks read in another order, h_t = q_t c_t) or into
autograd's backward pass (a slope replaced: no 1 - tanh^2 c_t, 1 - c_t^2, the sigmoid applied to
the gate again, the output gate left out; the forget gate missing from dc_{t-1}; the carry of dh
or dc from step t+1 cut).

Part 5, the challenge: the adding problem of length T = 40: x (N, T, 2), the first channel
uniform on [0, 1], the second marking one step in each half; the target is the sum of the two
marked values. Always predicting 1 scores the baseline MSE Var(U_1 + U_2) = 1/6. The learner
writes

- ``train(seed)`` -> ``predict``: trains a model (the seed is for the learner's own
  generators) and returns a function ``predict(x)`` mapping a numpy array (N, T, 2) to N
  predictions, shape (N,) or (N, 1);
- ``answers()`` with q1 (the baseline MSE) and q2 (the best MSE without the second marked
  value).

The grader calls ``train`` itself on one thread, measuring its CPU time against the budget,
then passes held-out inputs that it draws from its own generator (never the learner's) to
``predict`` and scores the mean squared error in its own process: full marks below a tenth of
the baseline, half marks below 0.6 of it. The targets come straight from the inputs (the sum of
the marked values); no learner code sees them.

The CPU budget is measured where the learner's code runs, so a determined cheat could fool it;
the batch grader's own wall-clock and CPU-time limits on the whole child process still hold.
"""

from __future__ import annotations

import numpy as np

from ... import lstm
from ..errors import WrongOutput, a_type
from ..hints import array_dict_score, array_value, compare, scalar_value
from ..parts import Exercise, Part, Verdict
from ..questions import number_question
from ._support import (
    AUTOGRAD,
    copied,
    derived_seed,
    entries,
    grad_of,
    leaf,
    rng_for,
    single_threaded,
    torch,
    trained_predictor,
)

# ============================================================================= the LSTM by hand
# Parts 1-4, eq. `lstm-cell` and eq. `lstm-step-backward` of "Gated architectures", in the layout
# of bptt.lstm: W_x (4H, D), W_h (4H, H), b (4H,), blocks in PyTorch's order i, f, g, q (g the
# candidate c~_t, q the output gate); the caches are bptt.lstm.StepCache records.

STEP_KEYS = ("x", "h_prev", "c_prev", "W_x", "W_h", "b")
SEQUENCE_KEYS = ("W_x", "W_h", "b", "x", "h0", "c0")  # weights first: their hints come first
WEIGHT_KEYS = ("W_x", "W_h", "b")
GATE_FIELDS = ("i", "f", "g", "q")
GATE_ORDER = (
    "the gate order: W_x, W_h and b stack the blocks i, f, g, q (PyTorch's order; g is the "
    "candidate c~_t, q the output gate)"
)
NOT_A_CACHE = (
    "should return (h_t, c_t, cache) with cache = bptt.lstm.StepCache(x, h_prev, c_prev, i, f, "
    "g, q, c, W_x, W_h)"
)


def _lstm_dims(rng: np.random.Generator) -> tuple[int, int, int]:
    """Batch, input and hidden sizes from the seed; D != H, so a transposed weight shows."""
    H = int(rng.integers(2, 6))
    return int(rng.integers(1, 5)), H + int(rng.integers(1, 3)), H


def _lstm_weights(rng: np.random.Generator, D: int, H: int) -> dict:
    return {
        "W_x": rng.normal(0, 0.5, (4 * H, D)),
        "W_h": rng.normal(0, 0.5, (4 * H, H)),
        "b": rng.normal(0, 0.3, 4 * H),
    }


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _numpy_cell(x, h_prev, c_prev, W, *, order=(0, 1, 2, 3), cell_tanh=True, candidate=np.tanh):
    """One step of eq. `lstm-cell` with the blocks read in ``order`` (i, f, g, q): (h, c, gates).

    The check's own forward pass (``order`` and the keywords build the typical wrong cells)."""
    blocks = np.split(x @ W["W_x"].T + h_prev @ W["W_h"].T + W["b"], 4, axis=-1)
    a_i, a_f, a_g, a_q = (blocks[k] for k in order)
    i, f, g, q = _sigmoid(a_i), _sigmoid(a_f), candidate(a_g), _sigmoid(a_q)
    c = f * c_prev + i * g
    h = q * (np.tanh(c) if cell_tanh else c)
    return h, c, {"i": i, "f": f, "g": g, "q": q}


def _step_cache(x, h_prev, c_prev, W) -> lstm.StepCache:
    _, c, gates = _numpy_cell(x, h_prev, c_prev, W)
    return lstm.StepCache(x, h_prev, c_prev, c=c, W_x=W["W_x"], W_h=W["W_h"], **gates)


def _state_pair(result, what: str):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise WrongOutput(f"{what} {NOT_A_CACHE}; got {a_type(result)}")
    return result


# ----------------------------------------------------------------------------- lstm_step_forward


def _step_forward_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex09.step_forward")
    B, D, H = _lstm_dims(rng)
    return {
        "x": rng.normal(size=(B, D)),
        "h_prev": np.tanh(rng.normal(size=(B, H))),
        "c_prev": rng.normal(size=(B, H)),
        **_lstm_weights(rng, D, H),
    }


def _collect_step_forward(functions, inputs):
    args = [inputs[k].copy() for k in ("x", "h_prev", "c_prev", "W_x", "W_h", "b")]
    h, c, cache = _state_pair(functions["lstm_step_forward"](*args), "lstm_step_forward")
    if not isinstance(cache, lstm.StepCache):
        raise WrongOutput(f"lstm_step_forward {NOT_A_CACHE}; its cache is {a_type(cache)}")
    return {"h_t": h, "c_t": c, **{f"cache.{k}": getattr(cache, k) for k in GATE_FIELDS}}


def _torch_cell_forward(inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """h_t, c_t from torch.nn.LSTMCell (float64) holding the same weights (bias_hh = 0)."""
    t = torch()
    D, H = inputs["W_x"].shape[1], inputs["W_h"].shape[1]
    cell = t.nn.LSTMCell(D, H, dtype=t.float64)
    with t.no_grad():
        cell.weight_ih.copy_(t.tensor(inputs["W_x"]))
        cell.weight_hh.copy_(t.tensor(inputs["W_h"]))
        cell.bias_ih.copy_(t.tensor(inputs["b"]))
        cell.bias_hh.zero_()
        h, c = cell(t.tensor(inputs["x"]), (t.tensor(inputs["h_prev"]), t.tensor(inputs["c_prev"])))
    return h.numpy(), c.numpy()


def _score_step_forward(inputs, values):
    h, c = _torch_cell_forward(inputs)
    args = (inputs["x"], inputs["h_prev"], inputs["c_prev"], inputs)
    _, _, gates = _numpy_cell(*args)
    expected = {"h_t": h, "c_t": c, **{f"cache.{k}": gates[k] for k in GATE_FIELDS}}
    wrong = [
        (_numpy_cell(*args, order=(0, 1, 3, 2)), GATE_ORDER + ", not i, f, q, g"),
        (_numpy_cell(*args, order=(1, 0, 2, 3)), GATE_ORDER + ", not f, i, g, q"),
        (
            _numpy_cell(*args, cell_tanh=False),
            "h_t = q_t * tanh(c_t): the tanh of the cell is missing",
        ),
        (
            _numpy_cell(*args, candidate=_sigmoid),
            "the candidate c~_t = tanh(a^g_t) uses tanh, not the sigmoid",
        ),
    ]
    hints = []
    for key, right in expected.items():
        variants = []
        for (wh, wc, wg), hint in wrong:
            value = {"h_t": wh, "c_t": wc}.get(key, wg.get(key.removeprefix("cache."), None))
            variants.append((value, hint))
        if key == "h_t":
            variants.append((c, "this is c_t: return (h_t, c_t, cache) in that order"))
        hints.append(compare(key, array_value(values, key), right, variants=variants))
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- lstm_step_backward


def _lstm_step_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex09.step_backward")
    B, D, H = _lstm_dims(rng)
    W = _lstm_weights(rng, D, H)
    x, h_prev, c_prev = (
        rng.normal(size=(B, D)),
        np.tanh(rng.normal(size=(B, H))),
        rng.normal(size=(B, H)),
    )
    return {
        "dh": rng.normal(size=(B, H)),
        "dc": rng.normal(size=(B, H)),
        "cache": _step_cache(x, h_prev, c_prev, W),
        "b": W["b"],
    }


def _collect_step_backward(functions, inputs):
    result = functions["lstm_step_backward"](
        inputs["dh"].copy(), inputs["dc"].copy(), copied(inputs["cache"])
    )
    return entries(result, STEP_KEYS, "lstm_step_backward")


def _as_is(value, pre, slope):
    """``value`` in the forward pass, with d value / d pre = ``slope`` in the backward pass: how a
    check builds a backward pass with one typical mistake (the slope) into autograd."""
    return value.detach() + slope.detach() * (pre - pre.detach())


def _torch_step(x, h_prev, c_prev, W_x, W_h, b, mistake: str | None = None):
    """h_t, c_t, a_t of eq. `lstm-cell` in torch, with ``mistake`` built into its backward pass."""
    t = torch()
    a = x @ W_x.T + h_prev @ W_h.T + b
    a.retain_grad()
    a_i, a_f, a_g, a_q = a.chunk(4, dim=-1)
    i, f, g, q = t.sigmoid(a_i), t.sigmoid(a_f), t.tanh(a_g), t.sigmoid(a_q)
    if mistake == "sigmoid twice":  # s'(a) computed as s(s(a)) (1 - s(s(a))) from the gate value
        i, f, q = (
            _as_is(s, pre, t.sigmoid(s) * (1 - t.sigmoid(s)))
            for s, pre in ((i, a_i), (f, a_f), (q, a_q))
        )
    if mistake == "candidate tanh twice":
        g = _as_is(g, a_g, 1 - t.tanh(g) ** 2)
    c = f * c_prev + i * g
    c.retain_grad()
    tanh_c = t.tanh(c)
    if mistake == "no tanh slope":
        tanh_c = _as_is(tanh_c, c, t.ones_like(c))
    if mistake == "1 - c^2":
        tanh_c = _as_is(tanh_c, c, 1 - c**2)
    h = q * tanh_c
    if mistake == "no q":  # dc_t += dh_t (1 - tanh^2 c_t): the output gate left out
        h = (
            (q * tanh_c).detach()
            + (1 - tanh_c**2).detach() * (c - c.detach())
            + tanh_c.detach() * (q - q.detach())
        )
    return h, c, a


def _step_autograd(inputs: dict, mistake: str | None = None) -> dict:
    """Gradients of sum(dh * h_t + dc * c_t) by autograd, plus dL/dc_t ("dc_t") and dL/da_t."""
    cache = inputs["cache"]
    t = {k: leaf(getattr(cache, k)) for k in ("x", "h_prev", "c_prev", "W_x", "W_h")}
    t["b"] = leaf(inputs["b"])
    h, c, a = _torch_step(t["x"], t["h_prev"], t["c_prev"], t["W_x"], t["W_h"], t["b"], mistake)
    tensor = torch().tensor
    ((h * tensor(inputs["dh"])).sum() + (c * tensor(inputs["dc"])).sum()).backward()
    return {**{k: grad_of(v) for k, v in t.items()}, "dc_t": grad_of(c), "da": grad_of(a)}


def _swap_blocks(da: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([np.split(da, 4, axis=-1)[k] for k in order], axis=-1)


def _step_variants(inputs: dict, expected: dict) -> dict:
    cache = inputs["cache"]
    mistakes = {
        "no tanh slope": "through h_t = q_t tanh(c_t), dc_t gains dh_t q_t (1 - tanh(c_t)^2): "
        "the factor 1 - tanh(c_t)^2 is missing",
        "1 - c^2": "the derivative of tanh(c_t) is 1 - tanh(c_t)^2, not 1 - c_t^2",
        "no q": "through h_t = q_t tanh(c_t), dc_t gains dh_t q_t (1 - tanh(c_t)^2): the output "
        "gate q_t is missing",
        "sigmoid twice": "the sigmoid's derivative is s(a)(1 - s(a)) = i_t (1 - i_t) with the gate "
        "value in the cache: do not apply the sigmoid to the gate again",
        "candidate tanh twice": "the candidate's derivative is 1 - c~_t^2 with c~_t = cache.g: do "
        "not apply tanh to it again",
    }
    variants = {k: [] for k in STEP_KEYS}
    for mistake, hint in mistakes.items():
        wrong = _step_autograd(inputs, mistake)
        for k in STEP_KEYS:
            variants[k].append((wrong[k], hint))
    variants["c_prev"] += [
        (expected["dc_t"], "the forget gate is missing: dc_{t-1} = dc_t * f_t"),
        (
            inputs["dc"] * cache.f,
            "dc_{t-1} = dc_t * f_t with the total dc_t: first add what reaches c_t through h_t",
        ),
    ]
    for order in ((0, 1, 3, 2), (1, 0, 2, 3)):
        da = _swap_blocks(expected["da"], order)
        swapped = {
            "x": da @ cache.W_x,
            "h_prev": da @ cache.W_h,
            "W_x": da.T @ cache.x,
            "W_h": da.T @ cache.h_prev,
            "b": da.sum(axis=0),
        }
        for k, value in swapped.items():
            variants[k].append((value, GATE_ORDER))
    return variants


_score_step_backward = array_dict_score(STEP_KEYS, _step_autograd, variants=_step_variants)


# ----------------------------------------------------------------------------- lstm_forward


def _lstm_sequences(seed: int, salt: str) -> list[dict]:
    """Two cases (T from the seed, and T = 1): weights, x (B, T, D), h0, c0, dh (B, T, H) and the
    step caches of the check's own forward pass."""
    rng = rng_for(seed, salt)
    cases = []
    for T in (int(rng.integers(3, 7)), 1):
        B, D, H = _lstm_dims(rng)
        W = _lstm_weights(rng, D, H)
        x, h0 = rng.normal(size=(B, T, D)), np.tanh(rng.normal(size=(B, H)))
        c0 = rng.normal(size=(B, H))
        caches, h, c = [], h0, c0
        for step in range(T):
            caches.append(_step_cache(x[:, step], h, c, W))
            h, c, _ = _numpy_cell(x[:, step], h, c, W)
        dh = rng.normal(size=(B, T, H))
        cases.append({"x": x, "h0": h0, "c0": c0, **W, "dh": dh, "caches": caches})
    return cases


def _sequence_forward_inputs(seed: int) -> list[dict]:
    return _lstm_sequences(seed, "ex09.lstm_forward")


def _lstm_key(name: str, T: int) -> str:
    return f"the {name} states (T = {T})"


def _collect_sequence_forward(functions, cases):
    values = {}
    for case in cases:
        args = [case[k].copy() for k in ("x", "h0", "c0", "W_x", "W_h", "b")]
        h, c, _ = _state_pair(functions["lstm_forward"](*args), "lstm_forward")
        T = case["x"].shape[1]
        values.update({_lstm_key("h", T): h, _lstm_key("c", T): c})
    return values


def _torch_lstm(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """h and c (B, T, H) of torch.nn.LSTM (float64, batch first) holding the same weights."""
    t = torch()
    D, H = case["W_x"].shape[1], case["W_h"].shape[1]
    core = t.nn.LSTM(D, H, batch_first=True, dtype=t.float64)
    with t.no_grad():
        core.weight_ih_l0.copy_(t.tensor(case["W_x"]))
        core.weight_hh_l0.copy_(t.tensor(case["W_h"]))
        core.bias_ih_l0.copy_(t.tensor(case["b"]))
        core.bias_hh_l0.zero_()
        x = t.tensor(case["x"])
        state = (t.tensor(case["h0"])[None], t.tensor(case["c0"])[None])
        h, _ = core(x, state)
        cells = []
        for step in range(x.shape[1]):  # nn.LSTM returns the last cell state only
            _, state = core(x[:, step : step + 1], state)
            cells.append(state[1][0])
    return h.numpy(), t.stack(cells, dim=1).numpy()


def _numpy_sequence(case: dict, *, order=(0, 1, 2, 3), carry_h=True, carry_c=True):
    """h and c (B, T, H) of the check's numpy cell, with a typical mistake switched on."""
    h, c, hs, cs = case["h0"], case["c0"], [], []
    for step in range(case["x"].shape[1]):
        h_in, c_in = (h if carry_h else case["h0"]), (c if carry_c else case["c0"])
        h, c, _ = _numpy_cell(case["x"][:, step], h_in, c_in, case, order=order)
        hs.append(h)
        cs.append(c)
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


def _score_sequence_forward(cases, values):
    def hints(case):
        T = case["x"].shape[1]
        h, c = _torch_lstm(case)
        wrong = [(_numpy_sequence(case, order=(0, 1, 3, 2)), GATE_ORDER + ", not i, f, q, g")]
        if T > 1:
            carry = "the state is not carried: step t starts from h_{t-1} and c_{t-1}, not h0, c0"
            wrong += [
                (_numpy_sequence(case, carry_h=False, carry_c=False), carry),
                (_numpy_sequence(case, carry_c=False), carry),
                (_numpy_sequence(case, carry_h=False), carry),
            ]
        swapped = "h and c are swapped: return (h, c, caches)"
        return [
            compare(
                _lstm_key("h", T),
                array_value(values, _lstm_key("h", T)),
                h,
                variants=[(wh, hint) for (wh, _), hint in wrong] + [(c, swapped)],
            ),
            compare(
                _lstm_key("c", T),
                array_value(values, _lstm_key("c", T)),
                c,
                variants=[(wc, hint) for (_, wc), hint in wrong] + [(h, swapped)],
            ),
        ]

    return Verdict.from_cases((f"with T = {case['x'].shape[1]}", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- lstm_backward


def _sequence_backward_inputs(seed: int) -> list[dict]:
    return _lstm_sequences(seed, "ex09.lstm_backward")


def _gradient_key(name: str, T: int) -> str:
    return f"the '{name}' gradient (T = {T})"


def _collect_sequence_backward(functions, cases):
    values = {}
    for case in cases:
        T = case["x"].shape[1]
        result = functions["lstm_backward"](case["dh"].copy(), copied(case["caches"]))
        values.update(
            {
                _gradient_key(k, T): v
                for k, v in entries(result, SEQUENCE_KEYS, "lstm_backward").items()
            }
        )
    return values


def _sequence_autograd(case: dict, *, cut_h=False, cut_c=False) -> dict:
    """Gradients of sum(dh * h) through the unrolled LSTM, and each step's weight contributions.

    Every step has its own leaf copy of W_x, W_h and b, so step t's contribution is that copy's
    gradient. ``cut_h`` / ``cut_c`` detach h_{t-1} / c_{t-1}: the gradients of a backward pass
    that drops the carry of dh / dc from step t+1 to step t.
    """
    T = case["x"].shape[1]
    x, h, c = leaf(case["x"]), leaf(case["h0"]), leaf(case["c0"])
    h0, c0 = h, c
    steps = {k: [leaf(case[k]) for _ in range(T)] for k in WEIGHT_KEYS}
    dh, total = torch().tensor(case["dh"]), 0.0
    for t in range(T):
        h_in = h.detach() if cut_h and t > 0 else h
        c_in = c.detach() if cut_c and t > 0 else c
        h, c, _ = _torch_step(x[:, t], h_in, c_in, *(steps[k][t] for k in WEIGHT_KEYS))
        total = total + (dh[:, t] * h).sum()
    total.backward()
    per_step = {k: [grad_of(w) for w in steps[k]] for k in WEIGHT_KEYS}
    grads = {"x": grad_of(x), "h0": grad_of(h0), "c0": grad_of(c0)}
    return {**grads, **{k: sum(per_step[k]) for k in WEIGHT_KEYS}, "per_step": per_step}


def _sequence_variants(case: dict, expected: dict) -> dict:
    T = case["x"].shape[1]
    variants = {k: [] for k in SEQUENCE_KEYS}
    if T > 1:
        no_h = "the gradient flowing back to h_t from step t+1 (h_prev of step t+1) is missing"
        no_c = (
            "the cell gradient from step t+1 (c_prev of step t+1) is missing: pass it as dc "
            "to step t"
        )
        for wrong, hint in (
            (_sequence_autograd(case, cut_h=True), no_h),
            (_sequence_autograd(case, cut_c=True), no_c),
        ):
            for k in SEQUENCE_KEYS:
                variants[k].append((wrong[k], hint))
    per_step = expected["per_step"]
    one_step = "holds a single time step's contribution: add up (+=) the contributions of all steps"
    for k in WEIGHT_KEYS:
        variants[k] += [(per_step[k][0], one_step), (per_step[k][-1], one_step)]
        if T > 1:
            variants[k].append((sum(per_step[k][1:]), "the first time step is missing"))
    return variants


_score_sequence_backward = array_dict_score(
    SEQUENCE_KEYS,
    _sequence_autograd,
    variants=_sequence_variants,
    value_key=lambda k, case: _gradient_key(k, case["x"].shape[1]),
    context=lambda case: f"with T = {case['x'].shape[1]}",
    several=True,
)


# ============================================================================= the challenge

T = 40
HELD_OUT = 1000
BASELINE_MSE = 2 / 12  # Var(U_1 + U_2) for independent U ~ U[0, 1]
FULL_MARKS_MSE = 0.1 * BASELINE_MSE
HALF_MARKS_MSE = 0.6 * BASELINE_MSE
CPU_BUDGET_S = 30.0
"""CPU seconds ``train`` may use (on one thread); read when scoring."""
TIME_LIMIT_S = 180.0
"""Wall-clock seconds for training and predicting, a hard stop well above the budget."""
CPU_KEY = "the CPU time of train (s)"
PREDICTIONS_KEY = "the held-out predictions"


def _held_out(seed: int) -> dict:
    """Held-out inputs (HELD_OUT, T, 2) from the grader's own generator, and the train seed."""
    rng = rng_for(seed, "ex09.held_out")
    values = rng.uniform(0.0, 1.0, (HELD_OUT, T))
    markers = np.zeros((HELD_OUT, T))
    rows = np.arange(HELD_OUT)
    markers[rows, rng.integers(0, T // 2, HELD_OUT)] = 1.0
    markers[rows, rng.integers(T // 2, T, HELD_OUT)] = 1.0
    return {"seed": derived_seed(seed, "ex09.train"), "x": np.stack([values, markers], axis=-1)}


def _collect(functions, inputs):
    predict, cpu = trained_predictor(functions, inputs["seed"], "x")
    with single_threaded():
        predictions = predict(inputs["x"].copy())
    return {CPU_KEY: cpu, PREDICTIONS_KEY: predictions}


def _score(inputs, values):
    cpu = scalar_value(values, CPU_KEY, "the CPU time")
    if cpu > CPU_BUDGET_S:
        return Verdict.wrong(
            f"train used {cpu:.0f} s of CPU time, over the budget of {CPU_BUDGET_S:g} s: "
            "train a smaller model, for fewer steps"
        )
    predictions = array_value(values, PREDICTIONS_KEY)
    if predictions.shape not in ((HELD_OUT,), (HELD_OUT, 1)):
        return Verdict.wrong(
            f"predict(x) for x of shape ({HELD_OUT}, {T}, 2) returned shape {predictions.shape}, "
            f"expected ({HELD_OUT},) or ({HELD_OUT}, 1): one prediction per sequence"
        )
    if not np.all(np.isfinite(predictions)):
        return Verdict.wrong("the predictions: contain NaN or inf")
    x = inputs["x"]
    targets = np.sum(x[..., 0] * x[..., 1], axis=1)
    mse = float(np.mean((predictions.reshape(-1) - targets) ** 2))
    if mse <= FULL_MARKS_MSE:
        return Verdict.correct()
    message = (
        f"held-out MSE {mse:.3f} against the baseline {BASELINE_MSE:.3f} of always predicting 1"
    )
    if mse <= HALF_MARKS_MSE:
        return Verdict(
            0.5,
            f"{message}: better, but full marks need an MSE below {FULL_MARKS_MSE:.4f} "
            "(train longer, or try a gated cell)",
        )
    return Verdict.wrong(f"{message}: points start below {HALF_MARKS_MSE:.3f}")


# ----------------------------------------------------------------------------- questions

GRID = 2000


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Midpoints of a GRID x GRID grid on [0, 1]^2: (U_1, U_2) for exact-enough expectations."""
    u = (np.arange(GRID) + 0.5) / GRID
    return np.meshgrid(u, u, indexing="ij")


def _q1_baseline() -> float:
    """E[(U_1 + U_2 - 1)^2] by integration on a grid."""
    u1, u2 = _grid()
    return float(np.mean((u1 + u2 - 1.0) ** 2))


def _q2_first_value_only() -> float:
    """The least MSE of a predictor that knows U_1 only: U_1 + c with the best c (= E[U_2])."""
    u1, u2 = _grid()
    best = float(np.mean(u2))
    return float(np.mean((u1 + u2 - (u1 + best)) ** 2))


EXERCISE = Exercise(
    "ex09",
    "LSTM backward by hand, then the adding-problem challenge",
    (
        Part(
            "lstm_step_forward",
            2,
            ("lstm_step_forward",),
            _step_forward_inputs,
            _collect_step_forward,
            _score_step_forward,
        ),
        Part(
            "lstm_step_backward",
            4,
            ("lstm_step_backward",),
            _lstm_step_inputs,
            _collect_step_backward,
            _score_step_backward,
        ),
        Part(
            "lstm_forward",
            2,
            ("lstm_forward",),
            _sequence_forward_inputs,
            _collect_sequence_forward,
            _score_sequence_forward,
            substitutes=(("lstm_step_forward", lstm.step_forward),),
        ),
        Part(
            "lstm_backward",
            4,
            ("lstm_backward",),
            _sequence_backward_inputs,
            _collect_sequence_backward,
            _score_sequence_backward,
            substitutes=(("lstm_step_backward", lstm.step_backward),),
        ),
        Part("challenge", 6, ("train",), _held_out, _collect, _score, time_limit=TIME_LIMIT_S),
        number_question("q1", _q1_baseline, rtol=1e-2),
        number_question("q2", _q2_first_value_only, rtol=1e-2),
    ),
    kinds=("implement", "measure"),
)

_FORWARD_SHORTCUTS = (
    "bptt.lstm.step_forward",
    "bptt.lstm.forward",
    "torch.nn.LSTMCell.forward",
    "torch.nn.LSTM.forward",
)
_BACKWARD_SHORTCUTS = (
    "bptt.lstm.step_backward",
    "bptt.lstm.backward",
    *AUTOGRAD,
)
# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "lstm_step_forward": (*_FORWARD_SHORTCUTS, "bptt.lstm._cell"),  # no substitute runs here
        "lstm_step_backward": _BACKWARD_SHORTCUTS,
        "lstm_forward": _FORWARD_SHORTCUTS,
        "lstm_backward": _BACKWARD_SHORTCUTS,
    }
)
