"""Checks of exercise 21: the linear recurrence as an associative scan ("Recurrences in parallel:
the associative scan").

The diagonal linear recurrence h_t = lam_t * h_{t-1} + u_t (eq. ``scan-recurrence``), batch
first: lam and u (B, T, H), h0 (B, H), h (B, T, H). The learner writes

- ``combine(lam_1, u_1, lam_2, u_2)`` -> ``(lam, u)``: the composition of the affine maps
  h -> lam_1 h + u_1 (first) and h -> lam_2 h + u_2 (then), elementwise (eq. ``scan-combine``);
- ``scan(lam, u, h0, combine)`` -> h (B, T, H): every state by an inclusive scan in
  ceil(log2 T) rounds, each round ONE call of the ``combine`` it is given on whole arrays;
- ``scan_backward(dh, lam, h, h0, combine)`` -> ``{"lam": (B, T, H), "u": (B, T, H), "h0": (B, H)}``:
  the gradients of sum(dh * h), with the adjoint computed as a reverse scan (eq. ``scan-adjoint``).

Expected values: ``combine`` against the two maps applied one after the other to h = 0 and
h = 1; ``scan`` against the sequential loop; ``scan_backward`` against torch autograd through
the loop, in float64. The parts ``scan`` and ``scan_backward`` receive the check's own combine,
which counts its calls: the rounds of the scan. So a slip in ``combine`` costs only its part.
"""

from __future__ import annotations

import math

import numpy as np

from ..hints import array_dict_score, array_value, compare
from ..parts import Exercise, Part, Verdict
from ._support import AUTOGRAD, copied, entries, grad_of, leaf, pair, rng_for, torch

BACKWARD_KEYS = ("lam", "u", "h0")


def _recurrence(rng: np.random.Generator, T: int, *, batch=None, hidden=None) -> dict:
    B = int(rng.integers(1, 4)) if batch is None else batch
    H = int(rng.integers(2, 6)) if hidden is None else hidden
    return {
        "lam": rng.uniform(-0.95, 0.95, (B, T, H)),
        "u": rng.standard_normal((B, T, H)),
        "h0": rng.standard_normal((B, H)),
    }


def _sequential(lam: np.ndarray, u: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """The loop h_t = lam_t h_{t-1} + u_t (the reference the scan must reproduce)."""
    h, states = h0, []
    for t in range(lam.shape[1]):
        h = lam[:, t] * h + u[:, t]
        states.append(h)
    return np.stack(states, axis=1)


class CountingCombine:
    """The check's combine (eq. ``scan-combine``), counting its calls: one call is one round.

    ``widths`` records how many time steps (axis 1 of its arrays, 1 for anything flatter) each
    call combines: a round of a one-sweep scan combines the T - 2^d steps that have a partner
    2^d steps before, so calls on a step or two at a time are a loop in disguise.
    """

    def __init__(self):
        self.calls = 0
        self.widths: list[int] = []

    def __call__(self, lam_1, u_1, lam_2, u_2):
        self.calls += 1
        shape = np.shape(lam_2)
        self.widths.append(int(shape[1]) if len(shape) > 1 else 1)
        return lam_2 * lam_1, lam_2 * u_1 + u_2


def _rounds(T: int) -> int:
    return math.ceil(math.log2(T)) if T > 1 else 0


# ----------------------------------------------------------------------------- combine


def _combine_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex21.combine")
    shape = (int(rng.integers(1, 4)), int(rng.integers(2, 7)), int(rng.integers(2, 5)))
    return {k: rng.uniform(-1.5, 1.5, shape) for k in ("lam_1", "u_1", "lam_2", "u_2")}


def _collect_combine(functions, inputs):
    result = functions["combine"](*(inputs[k].copy() for k in ("lam_1", "u_1", "lam_2", "u_2")))
    lam, u = pair(result, "combine", "(lam, u)")
    return {"lam": lam, "u": u}


def _score_combine(inputs, values):
    def composed(h):  # first h -> lam_1 h + u_1, then h -> lam_2 h + u_2
        return inputs["lam_2"] * (inputs["lam_1"] * h + inputs["u_1"]) + inputs["u_2"]

    intercept = composed(0.0)
    slope = composed(1.0) - intercept
    l1, u1, l2, u2 = (inputs[k] for k in ("lam_1", "u_1", "lam_2", "u_2"))
    order = (
        "the maps are composed in the wrong order: the first element (lam_1, u_1) is applied "
        "first, so its u_1 is multiplied by the later lam_2"
    )
    hints = [
        compare(
            "lam",
            array_value(values, "lam"),
            slope,
            variants=[(l1 + l2, "the coefficients multiply, they do not add")],
        ),
        compare(
            "u",
            array_value(values, "u"),
            intercept,
            variants=[
                (l1 * u2 + u1, order),
                (u1 + u2, "u_1 must be carried through the second map: multiply it by lam_2"),
            ],
        ),
    ]
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- scan


def _scan_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex21.scan")
    return [_recurrence(rng, T) for T in (int(rng.integers(9, 32)), 32, 1)]  # distinct lengths


def _scan_key(T: int) -> str:
    return f"h (T = {T})"


def _rounds_key(T: int) -> str:
    return f"combine calls (T = {T})"


def _collect_scan(functions, cases):
    values = {}
    for case in cases:
        T, counter = case["lam"].shape[1], CountingCombine()
        args = copied([case["lam"], case["u"], case["h0"]])
        values[_scan_key(T)] = functions["scan"](*args, counter)
        values[_rounds_key(T)] = counter.calls
        values[_widths_key(T)] = np.array(counter.widths or [0])
    return values


def _widths_key(T: int) -> str:
    return f"steps per combine call (T = {T})"


def _hillis_steele(lam, u, h0, combine):
    """The one-sweep scan (the check's own, for the hints of wrong variants)."""
    u = u.copy()
    u[:, 0] = u[:, 0] + lam[:, 0] * h0
    lam = lam.copy()
    d, T = 1, lam.shape[1]
    while d < T:
        new_lam, new_u = combine(lam[:, :-d], u[:, :-d], lam[:, d:], u[:, d:])
        lam = np.concatenate([lam[:, :d], new_lam], axis=1)
        u = np.concatenate([u[:, :d], new_u], axis=1)
        d *= 2
    return u


def _scan_variants(case: dict) -> list[tuple[np.ndarray, str]]:
    lam, u, h0 = case["lam"], case["u"], case["h0"]
    right = _sequential(lam, u, h0)
    exclusive = np.concatenate([h0[:, None], right[:, :-1]], axis=1)
    # a scan that calls combine(later, earlier) composes the maps the other way round
    swapped = _hillis_steele(lam, u, h0, lambda a, b, c, d: (a * c, a * d + b))
    return [
        (
            _sequential(lam, u, np.zeros_like(h0)),
            "h_0 is missing: fold it into the first element, u_1 + lam_1 h_0",
        ),
        (
            exclusive,
            "shifted by one step: h[:, t] is the state after step t (an inclusive scan), h_0 is not part of h",
        ),
        (
            swapped,
            (
                "combine's arguments are swapped: the element d steps earlier comes first, "
                "combine(earlier, later)"
            ),
        ),
    ]


def _score_scan(cases, values):
    for case in cases:
        T = case["lam"].shape[1]
        hint = compare(
            _scan_key(T),
            array_value(values, _scan_key(T)),
            _sequential(case["lam"], case["u"], case["h0"]),
            variants=_scan_variants(case),
        )
        if hint:
            return Verdict.wrong(f"with T = {T}, {hint}")
    for case in cases:
        T = case["lam"].shape[1]
        calls = round(float(array_value(values, _rounds_key(T)).reshape(-1)[0]))
        rounds = _rounds(T)
        widths = array_value(values, _widths_key(T)).reshape(-1)
        if calls == rounds and all(w >= T - 2**d for d, w in enumerate(widths[:calls])):
            continue
        if calls == rounds:
            return Verdict.wrong(
                f"with T = {T}: {calls} calls of combine, but not on whole arrays: round d "
                "combines every step that has a partner 2^d steps before (T - 2^d of them) in "
                "one call; the states must come from those calls, not from a loop beside them"
            )
        if calls < rounds:
            return Verdict.wrong(
                f"with T = {T}: the right states, but combine was called {calls} times; compute "
                f"them through the combine you are given, one call per round ({rounds} rounds)"
            )
        if T > 2 and calls >= T - 1:
            return Verdict.wrong(
                f"with T = {T}: the right states, but {calls} calls of combine, one after another: "
                f"that is the loop; combine whole shifted arrays at once, doubling the offset "
                f"each round ({rounds} rounds)"
            )
        return Verdict(
            0.5,
            f"with T = {T}: the right states in {calls} rounds; a single sweep needs only "
            f"ceil(log2 T) = {rounds} (each position combines with the one 2^d steps before)",
        )
    return Verdict.correct()


# ----------------------------------------------------------------------------- scan_backward


def _backward_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex21.backward")
    cases = []
    for T in (int(rng.integers(5, 31)), 1):
        case = _recurrence(rng, T)
        case["h"] = _sequential(case["lam"], case["u"], case["h0"])
        case["dh"] = rng.standard_normal(case["h"].shape)
        cases.append(case)
    return cases


def _backward_key(name: str, T: int) -> str:
    return f"the '{name}' gradient (T = {T})"


def _collect_backward(functions, cases):
    values = {}
    for case in cases:
        T, counter = case["lam"].shape[1], CountingCombine()
        args = copied([case["dh"], case["lam"], case["h"], case["h0"]])
        result = entries(functions["scan_backward"](*args, counter), BACKWARD_KEYS, "scan_backward")
        values.update({_backward_key(k, T): v for k, v in result.items()})
        values[_rounds_key(T)] = counter.calls
    return values


def _autograd(case: dict) -> dict:
    t = torch()
    lam, u, h0 = leaf(case["lam"]), leaf(case["u"]), leaf(case["h0"])
    h, total = h0, 0.0
    dh = t.tensor(case["dh"])
    for step in range(lam.shape[1]):
        h = lam[:, step] * h + u[:, step]
        total = total + (dh[:, step] * h).sum()
    total.backward()
    return {"lam": grad_of(lam), "u": grad_of(u), "h0": grad_of(h0)}


def _adjoint(dh: np.ndarray, coefficient: np.ndarray) -> np.ndarray:
    """bar h_t = dh_t + coefficient_t * bar h_{t+1}, from the end (the check's own loop)."""
    bar, out = np.zeros_like(dh[:, 0]), np.zeros_like(dh)
    for t in reversed(range(dh.shape[1])):
        bar = dh[:, t] + coefficient[:, t] * bar
        out[:, t] = bar
    return out


def _backward_variants(case: dict, expected: dict) -> dict:
    lam, h, h0, dh = case["lam"], case["h"], case["h0"], case["dh"]
    later = np.concatenate([lam[:, 1:], np.zeros_like(lam[:, :1])], axis=1)
    bar = _adjoint(dh, later)
    same_step = _adjoint(dh, lam)  # lam_t instead of lam_{t+1}
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    shift = "the reverse recursion is one step off: bar h_t = dh_t + lam_{t+1} * bar h_{t+1}"
    return {
        "lam": [
            (
                bar * h,
                "pair bar h_t with h_{t-1}, the state the coefficient lam_t multiplies, not with h_t",
            ),
            (same_step * h_prev, shift),
            (dh * h_prev, "only the loss at step t: add what flows back from step t+1"),
        ],
        "u": [
            (same_step, shift),
            (dh, "only the loss at step t: add what flows back from step t+1"),
        ],
        "h0": [(bar[:, 0], "h_0 enters step 1 through lam_1: bar h_0 = lam_1 * bar h_1")],
    }


_score_values = array_dict_score(
    BACKWARD_KEYS,
    _autograd,
    variants=_backward_variants,
    value_key=lambda k, case: _backward_key(k, case["lam"].shape[1]),
    context=lambda case: f"with T = {case['lam'].shape[1]}",
    several=True,
)


def _score_backward(cases, values):
    verdict = _score_values(cases, values)
    if verdict.fraction < 1:
        return verdict
    for case in cases:
        T = case["lam"].shape[1]
        calls = round(float(array_value(values, _rounds_key(T)).reshape(-1)[0]))
        if calls > _rounds(T) or (T > 1 and calls == 0):
            return Verdict(
                0.5,
                f"with T = {T}: the right gradients, but with {calls} calls of combine; the "
                f"adjoint is itself a linear recurrence: compute it with your scan on "
                f"time-reversed arrays, in {_rounds(T)} rounds",
            )
    return Verdict.correct()


EXERCISE = Exercise(
    "ex21",
    "The linear recurrence as a parallel scan",
    (
        Part("combine", 2, ("combine",), _combine_inputs, _collect_combine, _score_combine),
        Part("scan", 4, ("scan",), _scan_inputs, _collect_scan, _score_scan),
        Part(
            "scan_backward",
            4,
            ("scan_backward",),
            _backward_inputs,
            _collect_backward,
            _score_backward,
        ),
    ),
    kinds=("implement", "derive"),
)

_SCANS = (
    "bptt.scan.scan",
    "bptt.scan.sequential",
    "bptt.scan.blelloch_scan",
    "bptt.scan.hillis_steele_scan",
    "bptt.torch.scan.linear_recurrence",
    "bptt.torch.scan.hillis_steele",
    "bptt.torch.scan.sequential",
)

EXERCISE = EXERCISE.forbidding(
    {
        "combine": ("bptt.scan.combine",),
        "scan": ("bptt.scan.combine", *_SCANS),
        "scan_backward": ("bptt.scan.backward", *_SCANS, *AUTOGRAD),
    }
)
