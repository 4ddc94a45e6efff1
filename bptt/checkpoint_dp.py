"""Optimal checkpointing for BPTT by dynamic programming (The memory of BPTT, optimally).

Gruslys et al. (2016) ask: with room for m stored hidden states, in which order should a
sequence of T steps be run forward, stored, forgotten and recomputed so that BPTT needs the
fewest forward steps? Let C(t, m) be that least number for a segment of t steps whose start
state is already stored (it takes one of the m slots). Running y steps, storing h_y, finishing
the right part with one slot fewer, freeing it and finishing the left part gives the
recursion (eq. `dp-recursion`)::

    C(t, m) = min_{1 <= y < t} [ y + C(t - y, m - 1) + C(y, m) ]
    C(0, m) = 0,   C(1, m) = 1,   C(t, 1) = t (t + 1) / 2

Two cost models (``model``):

* ``"hidden"`` - BPTT-HSM of the paper: a slot holds a hidden state only, and the backward of
  a step needs the step's internal state, so every step is run forward once more just before
  its backward (the C(1, m) = 1); with unlimited memory C(t, m) = 2 t - 1.
* ``"internal"`` - a slot holds all that a step's backward needs (true of the tanh RNN, whose
  backward of step t reads only h_{t-1}, h_t and x_t): a segment of t <= m steps is run once
  and stored whole, C(t, m) = t for m >= t, which is plain BPTT.

:func:`table` solves the recursion (exact integers), :func:`schedule` turns a plan into the
sequence of forward/store/free/backward operations, :func:`simulate` counts them and
:func:`policy_backward` runs them on the tanh RNN of :mod:`bptt.rnn`, giving the gradient of
full BPTT (bitwise: the backward steps run in the same order with the same arithmetic).
:func:`sqrt_plan` is the sqrt(T) checkpointing of Chen et al. (2016) in the same terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from bptt import _validate as v
from bptt import rnn

MODELS = ("hidden", "internal")

Plan = Callable[[int, int], int]
"""plan(t, m) -> y: where to place the next stored state in a segment of t steps with m slots;
0 means "no split": run the base case (one slot: recompute from the start for every step;
``"internal"`` with t <= m: store the whole segment)."""


class Table(NamedTuple):
    """The solved recursion: ``cost[t, m]`` = C(t, m) and ``split[t, m]`` = the best y (0 for a
    base case), for 0 <= t <= T and 0 <= m <= M (column 0 unused); int64 arrays (T+1, M+1)."""

    cost: np.ndarray
    split: np.ndarray
    model: str


class Counts(NamedTuple):
    """What a schedule did: ``forward_steps`` (evaluations of the step function),
    ``backward_steps`` (always T), ``peak_slots`` (most hidden states stored at once, h_0
    included; the two working states of the step being computed are not counted)."""

    forward_steps: int
    backward_steps: int
    peak_slots: int


def table(steps: int, slots: int, *, model: str = "hidden") -> Table:
    """C(t, m) and the optimal splits for t <= ``steps``, m <= ``slots`` (eq. `dp-recursion`).

    O(T^2 M) integer work, vectorised over y and m. Raises ValueError for steps < 1 or slots < 1.
    """
    steps = v.integer("steps", steps, minimum=1)
    slots = v.integer("slots", slots, minimum=1)
    model = v.choice("model", model, MODELS)
    cost = np.zeros((steps + 1, slots + 1), dtype=np.int64)
    split = np.zeros((steps + 1, slots + 1), dtype=np.int64)
    t_all = np.arange(steps + 1)
    cost[:, 1] = t_all * (t_all + 1) // 2
    cost[:, 0] = -1  # no slot for the start state: infeasible, never used
    cost[1, 1:] = 1
    m_all = np.arange(2, slots + 1)
    for t in range(2, steps + 1):  # every C(t', m) with t' < t is known: solve all m at once
        y = np.arange(1, t)[:, None]
        total = y + cost[t - y, m_all - 1] + cost[y, m_all]  # (t - 1, M - 1)
        best = np.argmin(total, axis=0)  # the smallest best y
        cost[t, 2:] = total[best, np.arange(len(m_all))]
        split[t, 2:] = best + 1
        if model == "internal":
            fits = m_all >= t
            cost[t, 2:][fits], split[t, 2:][fits] = t, 0
    return Table(cost, split, model)


def forward_steps(steps: int, slots: int, *, model: str = "hidden") -> int:
    """Q(T, m) = C(T, m): the least number of forward steps of BPTT with m slots."""
    return int(table(steps, slots, model=model).cost[steps, slots])


def dp_plan(solved: Table) -> Plan:
    """The optimal plan of a solved :class:`Table`."""
    if not isinstance(solved, Table):
        raise TypeError(f"solved: expected the Table from table(), got {type(solved).__name__}")
    return lambda t, m: int(solved.split[t, m])


def sqrt_plan(steps: int) -> tuple[Plan, int]:
    """Chen et al.'s sqrt(T) checkpointing as a plan: a stored state every k = ceil(sqrt(T))
    steps, each block of k steps then stored whole (``model="internal"``).

    Returns ``(plan, slots)`` with the slots it needs: ceil(T / k) checkpoints (h_0 included)
    plus k - 1 states of the block being backpropagated.
    """
    steps = v.integer("steps", steps, minimum=1)
    k = math.ceil(math.sqrt(steps))
    slots = math.ceil(steps / k) + k - 1

    def plan(t: int, m: int) -> int:
        # the next checkpoint k steps on; the rest of the sequence is the right part, so the
        # first pass stores every checkpoint, and each block of <= k steps is stored whole
        return k if t > k else 0

    return plan, slots


def schedule(steps: int, slots: int, plan: Plan, *, model: str = "hidden") -> Iterator[tuple[str, int]]:
    """The operations of BPTT under ``plan``: ``("forward", k)`` computes h_k from h_{k-1}
    (stored, or the working state), ``("store", k)``, ``("free", k)``, ``("backward", k)``
    (needs h_{k-1} and h_k). Backward steps come in the order T, T-1, ..., 1."""
    steps = v.integer("steps", steps, minimum=1)
    slots = v.integer("slots", slots, minimum=1)
    model = v.choice("model", model, MODELS)
    todo: list[tuple] = [("segment", 0, steps, slots)]
    while todo:
        job = todo.pop()
        if job[0] == "free":
            yield ("free", job[1])
            continue
        _, s, t, m = job
        if t == 0:
            continue
        y = plan(t, m) if t > 1 and m > 1 else 0
        if y == 0:
            if t == 1 or m == 1:  # from the start state, once per step (t(t+1)/2 forwards)
                for k in range(t, 0, -1):
                    for j in range(s + 1, s + k + 1):
                        yield ("forward", j)
                    yield ("backward", s + k)
            elif model == "internal" and t <= m:  # the whole segment fits: plain BPTT
                for j in range(s + 1, s + t + 1):
                    yield ("forward", j)
                    if j < s + t:
                        yield ("store", j)
                for j in range(s + t, s, -1):
                    yield ("backward", j)
                    if j < s + t:
                        yield ("free", j)
            else:
                raise ValueError(f"plan: returned no split for t = {t}, m = {m}, which has no base case")
            continue
        if not 0 < y < t:
            raise ValueError(f"plan: expected a split y in [1, {t - 1}] for t = {t}, m = {m}, got {y}")
        for j in range(s + 1, s + y + 1):
            yield ("forward", j)
        yield ("store", s + y)
        todo.append(("segment", s, y, m))  # last: the left part, with the slot freed
        todo.append(("free", s + y))
        todo.append(("segment", s + y, t - y, m - 1))  # first: the right part


def simulate(steps: int, slots: int, plan: Plan, *, model: str = "hidden") -> Counts:
    """Count the operations of :func:`schedule` (no arithmetic): forward steps and peak slots."""
    stored = {0}
    forward = backward = 0
    peak = 1
    for op, k in schedule(steps, slots, plan, model=model):
        if op == "forward":
            forward += 1
        elif op == "backward":
            backward += 1
        elif op == "store":
            stored.add(k)
            peak = max(peak, len(stored))
        else:
            stored.discard(k)
    return Counts(forward, backward, peak)


def policy_backward(x: np.ndarray, h0: np.ndarray | None, W_xh: np.ndarray, W_hh: np.ndarray,
                    b: np.ndarray, dh: np.ndarray, slots: int, plan: Plan, *,
                    model: str = "hidden") -> tuple[dict[str, np.ndarray], Counts]:
    """BPTT for the tanh RNN of :mod:`bptt.rnn` that stores at most ``slots`` hidden states and
    recomputes the others as :func:`schedule` says.

    Shapes as :func:`bptt.rnn.forward` and :func:`bptt.rnn.backward`: x (B, T, D), h0 (B, H) or
    None, W_xh (H, D), W_hh (H, H), b (H,), dh (B, T, H) = dL/dh_t from the loss. Every
    backward step is :func:`bptt.rnn.step_backward` in the order T..1, so two plans give
    bitwise the same gradients. Returns the gradients (``x``, ``h0``, ``W_xh``, ``W_hh``,
    ``b``) and the :class:`Counts`, whose ``peak_slots`` never exceeds ``slots``.
    """
    x, h0, W_xh, W_hh, b, dims = rnn.check_sequence(x, h0, W_xh, W_hh, b)
    dh = v.float_array("dh", dh, ("B", "T", "H"), dims)
    steps = x.shape[1]
    stored = {0: h0}
    working: dict[int, np.ndarray] = {}  # the last two computed states
    grads = {"x": np.zeros_like(x), "W_xh": np.zeros_like(W_xh), "W_hh": np.zeros_like(W_hh),
             "b": np.zeros_like(b)}
    carry = np.zeros_like(h0)
    forward = backward = 0
    peak = 1

    def state(k: int) -> np.ndarray:
        return stored[k] if k in stored else working[k]

    for op, k in schedule(steps, slots, plan, model=model):
        if op == "forward":
            h_k, _ = rnn.step_forward(x[:, k - 1], state(k - 1), W_xh, W_hh, b)
            working = {j: h for j, h in working.items() if j == k - 1}
            working[k] = h_k
            forward += 1
        elif op == "store":
            stored[k] = working[k]
            peak = max(peak, len(stored))
            if peak > slots:
                raise RuntimeError(f"plan: stored {peak} states, more than slots = {slots}")
        elif op == "free":
            del stored[k]
        else:
            cache = rnn.StepCache(x[:, k - 1], state(k - 1), state(k), W_xh, W_hh, "tanh")
            local = rnn.step_backward(dh[:, k - 1] + carry, cache)
            for name in ("W_xh", "W_hh", "b"):
                grads[name] += local[name]
            grads["x"][:, k - 1] = local["x"]
            carry = local["h_prev"]
            backward += 1
    grads["h0"] = carry
    return grads, Counts(forward, backward, peak)


def full_bptt_backward(x: np.ndarray, h0: np.ndarray | None, W_xh: np.ndarray, W_hh: np.ndarray,
                       b: np.ndarray, dh: np.ndarray) -> tuple[dict[str, np.ndarray], Counts]:
    """Full BPTT with every state stored (T + 1 slots): the reference schedule, same
    arithmetic as :func:`policy_backward`. Returns the gradients and its :class:`Counts`."""
    steps = np.asarray(x).shape[1] if np.ndim(x) == 3 else 1
    return policy_backward(x, h0, W_xh, W_hh, b, dh, steps + 1, lambda t, m: 0, model="internal")


def time_ratio(forward: int | np.ndarray, steps: int, *, backward_cost: float = 2.0):
    """Time of a schedule over that of full BPTT under the cost model: a forward step costs 1,
    a backward step ``backward_cost``; full BPTT does T of each. (forward + beta T) / ((1 + beta) T)."""
    steps = v.integer("steps", steps, minimum=1)
    beta = v.positive_float("backward_cost", backward_cost)
    return (np.asarray(forward) + beta * steps) / ((1.0 + beta) * steps)
