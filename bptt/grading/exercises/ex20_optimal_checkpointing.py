"""Checks of exercise 20: the checkpointing dynamic programme ("The memory of BPTT, optimally").

The hidden-state model of Gruslys et al. (BPTT-HSM, eq. ``dp-recursion``): a segment of t steps
whose start state is stored, with m memory slots (that one included), needs at least C(t, m)
forward steps, every step being run forward once more right before its backward. The learner
writes

- ``dp_table(T, m)`` -> an integer array C of shape (T + 1, m + 1) with C[t, k] = C(t, k) for
  0 <= t <= T and 1 <= k <= m (column 0 is not read);
- ``answers()`` with two predictions, made before the experiment cell that measures them:
  q1 = Q(1000, 50) / 1000 and q2 = Q(1000, 5) / 1000, the forward steps per time step of the
  optimal schedule with 50 and with 5 slots.

Expected values: for small T and m an exhaustive search over every schedule (a shortest path
over the states "which hidden states are stored, which one is in hand, which backward step is
next", :func:`brute_force_forward_steps`), independent of the recursion; for a longer sequence
the package's :func:`bptt.checkpoint_dp.table`, a tripwire while the part runs.
"""

from __future__ import annotations

import collections

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value
from ..parts import Exercise, Part, Verdict
from ..questions import prediction_question
from ._support import rng_for

MAX_BRUTE_STEPS = 8
"""The exhaustive search runs for T <= 8 (up to 4 slots): well under a second in all."""


def brute_force_forward_steps(steps: int, slots: int) -> int:
    """The least number of forward steps of BPTT over ``steps`` steps with ``slots`` slots.

    A 0-1 breadth-first search over every schedule of the hidden-state model: a state is (the
    set of stored positions, the position of the working state or -1, the next backward step
    b). Loading a stored state, storing the working one (while fewer than ``slots`` are
    stored) and freeing one are free; a forward step moves the working state on by one; the
    backward of step b needs h_{b-1} (stored or in hand) and costs one forward step (the step
    is recomputed from h_{b-1} right before its backward). h_0 starts stored.
    """
    start = (frozenset([0]), -1, steps)
    dist = {start: 0}
    queue = collections.deque([start])
    while queue:
        state = queue.popleft()
        done = dist[state]
        stored, working, b = state
        if b == 0:
            return done
        moves = []
        if working == b - 1 or (b - 1) in stored:
            moves.append(((stored, -1, b - 1), 1))
        moves += [((stored, s, b), 0) for s in stored if s < b - 1 and s != working]
        if 0 <= working < b - 1:
            moves.append(((stored, working + 1, b), 1))
        if working >= 0 and working not in stored and len(stored) < slots:
            moves.append(((stored | {working}, working, b), 0))
        moves += [((stored - {s}, working, b), 0) for s in stored]
        for new, cost in moves:
            if done + cost < dist.get(new, 1 << 62):
                dist[new] = done + cost
                (queue.appendleft if cost == 0 else queue.append)(new)
    raise ValueError(f"no schedule for {steps} steps and {slots} slots")


# ----------------------------------------------------------------------------- dp_table


def _cases(seed: int) -> list[dict]:
    """A small case (checked against the exhaustive search) and a longer one (the package)."""
    rng = rng_for(seed, "ex20.dp_table")
    small = {"T": int(rng.integers(5, MAX_BRUTE_STEPS + 1)), "m": int(rng.integers(2, 5))}
    large = {"T": int(rng.integers(60, 121)), "m": int(rng.integers(3, 9))}
    return [small, large]


def _key(case: dict) -> str:
    return f"dp_table({case['T']}, {case['m']})"


def _collect_table(functions, cases):
    values = {}
    for case in cases:
        result = functions["dp_table"](case["T"], case["m"])
        try:
            array = np.asarray(result, dtype=float)
        except (TypeError, ValueError) as error:
            raise WrongOutput(
                f"{_key(case)} should return an array of shape ({case['T'] + 1}, {case['m'] + 1}), "
                f"got {a_type(result)}"
            ) from error
        values[_key(case)] = array
    return values


def _recursion(
    steps: int,
    slots: int,
    *,
    single_step: int = 1,
    fewer_slots: int = 1,
    reach: bool = True,
    stored_whole: bool = False,
    one_slot=lambda t: t * (t + 1) // 2,
) -> np.ndarray:
    """C(t, k) by the recursion, with switches that make the typical mistakes (for the hints)."""
    C = np.zeros((steps + 1, slots + 1), dtype=np.int64)
    for k in range(1, slots + 1):
        for t in range(1, steps + 1):
            if t == 1:
                C[t, k] = single_step
            elif k == 1:
                C[t, k] = one_slot(t)
            elif stored_whole and t <= k:
                C[t, k] = t
            else:
                C[t, k] = min(
                    (y if reach else 0) + C[t - y, k - fewer_slots] + C[y, k] for y in range(1, t)
                )
    return C


VARIANTS = (
    (
        {"single_step": 0},
        (
            "C(1, m) is 1, not 0: in this model every step runs forward once more, from h_{t-1}, "
            "right before its backward"
        ),
    ),
    (
        {"fewer_slots": 0},
        (
            "the right part has one slot fewer, m - 1: the stored h_y occupies a slot until the "
            "right part is finished"
        ),
    ),
    (
        {"reach": False},
        "reaching h_y costs y forward steps: add y to the cost of the two parts",
    ),
    (
        {"stored_whole": True},
        (
            "that is the internal-state model (a segment that fits is stored whole); here a slot "
            "holds a hidden state only"
        ),
    ),
    (
        {"one_slot": lambda t: t * (t - 1) // 2},
        (
            "with one slot, the backward of step j needs j forward steps from the start (the last "
            "one recomputes step j): C(t, 1) = t + (t - 1) + ... + 1"
        ),
    ),
)


def _expected(case: dict) -> np.ndarray:
    T, m = case["T"], case["m"]
    if T <= MAX_BRUTE_STEPS:
        C = np.zeros((T + 1, m + 1), dtype=np.int64)
        for t in range(1, T + 1):
            for k in range(1, m + 1):
                C[t, k] = brute_force_forward_steps(t, k)
        return C
    from ...checkpoint_dp import table

    return table(T, m).cost.copy()


def _score_table(cases, values):
    for case in cases:
        name, T, m = _key(case), case["T"], case["m"]
        got = array_value(values, name)
        if got.shape != (T + 1, m + 1):
            return Verdict.wrong(
                f"{name}: shape {got.shape}, expected ({T + 1}, {m + 1}): C[t, k] for "
                f"0 <= t <= {T} and 0 <= k <= {m}"
            )
        got = got[:, 1:]
        if not np.all(np.isfinite(got)):
            return Verdict.wrong(f"{name}: contains NaN or inf")
        expected = _expected(case)[:, 1:]
        if np.array_equal(got, expected):
            continue
        how = "the exhaustive search over every schedule" if T <= MAX_BRUTE_STEPS else "the optimum"
        for change, hint in VARIANTS:
            if np.array_equal(got, _recursion(T, m, **change)[:, 1:]):
                return Verdict.wrong(f"{name}: {hint}")
        if np.all(got <= expected) and np.any(got < expected):
            return Verdict.wrong(
                f"{name}: some entries are below {how}: no schedule is that cheap "
                "(check the base cases and the slot count of each part)"
            )
        wrong = np.argwhere(got != expected)
        t, k = wrong[0]
        return Verdict.wrong(
            f"{name}: {len(wrong)} entries differ from {how}, the first at C({t}, {k + 1})"
        )
    return Verdict.correct()


# ----------------------------------------------------------------------------- predictions

PREDICTION_T = 1000


def _per_step(slots: int):
    def compute() -> float:
        from ...checkpoint_dp import forward_steps

        return forward_steps(PREDICTION_T, slots) / PREDICTION_T

    return compute


EXERCISE = Exercise(
    "ex20",
    "Optimal checkpointing by dynamic programming",
    (
        Part("dp_table", 5, ("dp_table",), _cases, _collect_table, _score_table),
        prediction_question("q1", _per_step(50), factor=1.5),
        prediction_question("q2", _per_step(5), factor=1.5),
    ),
    kinds=("implement", "predict-then-run"),
)

EXERCISE = EXERCISE.forbidding(
    {
        "dp_table": (
            "bptt.checkpoint_dp.table",
            "bptt.checkpoint_dp.forward_steps",
            "bptt.checkpoint_dp.dp_plan",
        ),
    }
)
