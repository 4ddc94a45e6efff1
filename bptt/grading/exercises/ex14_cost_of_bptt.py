"""Checks of exercise 14: the memory of BPTT, counted and predicted ("The cost of BPTT").

The model is the tanh RNN layer of the chapter in its explicit form (a loop over the steps,
``bptt.torch.RecurrentLayer("rnn", D, H, fused=False)``), batch first: x (B, T, D) -> the
states h_1..h_T (B, T, H), from h_0 = 0. What BPTT keeps is counted the way the chapter counts
it: the values autograd saves for the backward pass (``bptt.torch.saved_bytes``, each block of
memory once, the parameters and the data left out). The learner writes

- ``bptt_values(B, T, H)``: the exact number of values plain BPTT keeps (equation
  `bptt-cost`);
- ``checkpoint_values(B, T, H, s)``: the exact peak number of values of checkpointed BPTT with
  segments of s steps (the last one shorter when s does not divide T), counted as the chapter's
  ``checkpoint_saved_bytes`` does: the boundary states kept between the forward and the backward
  pass plus what plain BPTT keeps over one full segment (equation `checkpoint-memory`);
- ``answers()`` with q1 and q2: predictions, in MiB, of the memory of plain and of checkpointed
  BPTT at T = 1000, recorded before the experiment cell that measures them.

Expected values: measured in float64 with saved-tensor hooks on seed-chosen sizes (never the
formula typed twice); the predictions are scored against the same measurement at T = 1000.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import WrongOutput, a_type
from ..parts import Exercise, Part, Verdict
from ..questions import prediction_question
from ._support import rng_for, single_threaded, torch

D_IN = 3  # input size of the measured layer (D): the data is not charged, so D plays no part
MIB = 2**20
Q_B, Q_T, Q_H, Q_SEGMENT = 16, 1000, 256, 32  # the predictions, measured in float32
EACH_ONCE = (
    "each step keeps one state, not two: the tanh's output h_t is the next step's matmul "
    "input, one block of memory"
)
FIRST_BOUNDARY = (
    "the state entering the first segment is h_0 = 0, made inside the first segment: only the "
    "states entering segments 2, 3, ... are kept"
)
NO_SEGMENT = (
    "the recomputed segment's own states are missing: while it is backpropagated it holds "
    "s + 1 states"
)


def _integer(value, what: str) -> int:
    """A learner's count as an int; WrongOutput for anything that is not a whole number."""
    number = np.asarray(value)
    if number.size != 1 or not np.issubdtype(number.dtype, np.number):
        raise WrongOutput(f"{what} should return one number, got {a_type(value)}")
    number = float(number.reshape(()))
    if not math.isfinite(number) or number != round(number):
        raise WrongOutput(f"{what} should return a whole number of values, got {number:g}")
    return round(number)


def _layer(H: int, dtype):
    from ...torch import RecurrentLayer

    return RecurrentLayer("rnn", D_IN, H, fused=False, seed=0, dtype=dtype, device="cpu")


def _data(B: int, T: int, dtype):
    generator = torch().Generator().manual_seed(0)
    return torch().randn(B, T, D_IN, generator=generator, dtype=dtype)


def _plain_bytes(B: int, T: int, H: int, dtype) -> int:
    """Bytes autograd keeps for one forward and backward pass of plain BPTT (measured)."""
    from ...torch import saved_bytes

    layer, x = _layer(H, dtype), _data(B, T, dtype)
    with single_threaded():
        return saved_bytes(lambda: layer(x)[0].sum().backward(), exclude=[layer, x])


def _checkpoint_bytes(B: int, T: int, H: int, s: int, dtype) -> int:
    """Peak bytes of checkpointed BPTT (measured): the boundaries the hooks see over forward and
    backward of the checkpointed loss, plus plain BPTT's bytes over one full segment."""
    from ...torch import checkpointed_loss, saved_bytes

    layer, x = _layer(H, dtype), _data(B, T, dtype)
    y = torch().zeros(B, T, 1, dtype=dtype)
    params = list(layer.parameters())

    def run():
        loss, _ = checkpointed_loss(layer, x, y, loss_fn=lambda o, _y: o.mean(), segment=s)
        torch().autograd.grad(loss, params)

    with single_threaded():
        kept = saved_bytes(run, exclude=[layer, x, y])
    return kept + _plain_bytes(B, min(s, T), H, dtype)


def _value_hint(name: str, got: int, expected: int, variants) -> str | None:
    if got == expected:
        return None
    for value, hint in variants:
        if got == value:
            return f"{name}: {hint}"
    return f"{name}: not the measured count (off by {abs(got - expected) / expected:.0%})"


# ----------------------------------------------------------------------------- bptt_values


def _bptt_inputs(seed: int) -> list[tuple[int, int, int]]:
    rng = rng_for(seed, "ex14.bptt")
    return [
        (int(rng.integers(1, 5)), int(rng.integers(2, 12)), int(rng.integers(2, 8)))
        for _ in range(2)
    ] + [(int(rng.integers(1, 4)), 1, int(rng.integers(2, 6)))]


def _bptt_name(B: int, T: int, H: int) -> str:
    return f"bptt_values(B={B}, T={T}, H={H})"


def _collect_bptt(functions, cases):
    return {
        _bptt_name(*case): _integer(functions["bptt_values"](*case), "bptt_values")
        for case in cases
    }


def _score_bptt(cases, values) -> Verdict:
    hints = []
    for B, T, H in cases:
        name = _bptt_name(B, T, H)
        expected = _plain_bytes(B, T, H, torch().float64) // 8
        variants = [
            (
                B * H * T,
                "one state short: the initial state h_0 is kept too (step 1's matmul reads it)",
            ),
            (8 * expected, "that is bytes (float64): count values"),
            (2 * B * H * T, EACH_ONCE),
            (B * H * (T + 1) * T, "memory grows linearly in T"),
        ]
        hints.append(_value_hint(name, _integer(values[name], name), expected, variants))
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- checkpoint_values


def _checkpoint_inputs(seed: int) -> list[tuple[int, int, int, int]]:
    """Three cases: s divides T, s does not (a shorter last segment), and s = 1."""
    rng = rng_for(seed, "ex14.checkpoint")
    s = int(rng.integers(2, 5))
    divides = (int(rng.integers(1, 4)), s * int(rng.integers(2, 5)), int(rng.integers(2, 6)), s)
    s2 = int(rng.integers(3, 6))
    T2 = s2 * int(rng.integers(2, 4)) + int(rng.integers(1, s2))
    shorter = (int(rng.integers(1, 4)), T2, int(rng.integers(2, 6)), s2)
    ones = (int(rng.integers(1, 3)), int(rng.integers(3, 7)), int(rng.integers(2, 5)), 1)
    return [divides, shorter, ones]


def _checkpoint_name(B: int, T: int, H: int, s: int) -> str:
    return f"checkpoint_values(B={B}, T={T}, H={H}, s={s})"


def _collect_checkpoint(functions, cases):
    return {
        _checkpoint_name(*case): _integer(
            functions["checkpoint_values"](*case), "checkpoint_values"
        )
        for case in cases
    }


def _score_checkpoint(cases, values) -> Verdict:
    hints = []
    for B, T, H, s in cases:
        name = _checkpoint_name(B, T, H, s)
        expected = _checkpoint_bytes(B, T, H, s, torch().float64) // 8
        segments = -(-T // s)
        variants = [
            (
                B * H * (T + 1),
                "that is plain BPTT's count: checkpointing keeps one state per segment",
            ),
            (B * H * (segments + s + 1), FIRST_BOUNDARY),
            (
                B * H * (T // s + s),
                "count the segments with a ceiling: the last one may be shorter",
            ),
            (B * H * segments, NO_SEGMENT),
            (8 * expected, "that is bytes (float64): count values"),
        ]
        hints.append(_value_hint(name, _integer(values[name], name), expected, variants))
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- predictions


def _q1_plain_mib() -> float:
    """Measured MiB of plain BPTT at T = 1000 (float32, B = 16, H = 256)."""
    return _plain_bytes(Q_B, Q_T, Q_H, torch().float32) / MIB


def _q2_checkpoint_mib() -> float:
    """Measured peak MiB of checkpointed BPTT at T = 1000, s = 32 (float32, B = 16, H = 256)."""
    return _checkpoint_bytes(Q_B, Q_T, Q_H, Q_SEGMENT, torch().float32) / MIB


EXERCISE = Exercise(
    "ex14",
    "The memory of BPTT, counted and predicted",
    (
        Part("bptt_values", 2, ("bptt_values",), _bptt_inputs, _collect_bptt, _score_bptt),
        Part(
            "checkpoint_values",
            3,
            ("checkpoint_values",),
            _checkpoint_inputs,
            _collect_checkpoint,
            _score_checkpoint,
        ),
        prediction_question("q1", _q1_plain_mib, factor=1.5),
        prediction_question("q2", _q2_checkpoint_mib, factor=1.5),
    ),
    kinds=("implement", "predict-then-run"),
)

# Library functions the parts ask the learner to replace by a count: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "bptt_values": (
            "bptt.torch.saved_bytes",
            "bptt.torch.memory.saved_bytes",
            "bptt.torch.memory.SavedTensorTracker._pack",
        ),
        "checkpoint_values": (
            "bptt.torch.saved_bytes",
            "bptt.torch.memory.saved_bytes",
            "bptt.torch.memory.SavedTensorTracker._pack",
            "bptt.torch.checkpoint_saved_bytes",
            "bptt.torch.checkpoint.checkpoint_saved_bytes",
        ),
    }
)
