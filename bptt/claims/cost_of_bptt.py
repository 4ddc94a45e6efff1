"""Claims of "The cost of BPTT": scaling laws on exact counts and the price of checkpointing.

Each predicate returns what it measured; ``tests/test_claims_cost_of_bptt.py`` runs it on a
world where the claim is false (``@pytest.mark.negative_control``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bptt import _validate as v


class LawResult(NamedTuple):
    """``slope``: the least-squares log-log exponent of the counts; ``exponent``: the law;
    ``holds``: |slope - exponent| <= ``band`` (< 0.5, so the neighbouring laws are excluded)."""

    slope: float
    exponent: float
    holds: bool


def follows_power_law(sizes, counts, exponent: float, *, band: float = 0.25) -> LawResult:
    """Claim: ``counts`` (exact operation or memory counts) grow as ``sizes ** exponent``.

    ``band`` must be below 0.5 so that the neighbouring integer laws (exponent +- 1) fall
    outside it: a slope of 1.65 is neither quadratic nor linear.
    """
    band = v.positive_float("band", band)
    if band >= 0.5:
        raise ValueError(f"band: expected a number below 0.5 (to exclude the neighbouring "
                         f"laws), got {band}")
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(counts, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError(f"sizes, counts: expected two 1-D arrays of >= 2 positive numbers of one "
                         f"length, got shapes {x.shape} and {y.shape}")
    slope = float(np.polyfit(np.log(x), np.log(y), 1)[0])
    exponent = float(exponent)
    return LawResult(slope, exponent, abs(slope - exponent) <= band)


class RecomputeResult(NamedTuple):
    """``extra``: operations checkpointing adds; ``forward``: one forward pass's operations;
    ``ratio``: checkpointed / plain; ``holds``: extra == forward exactly."""

    extra: int
    forward: int
    ratio: float
    holds: bool


def recomputes_one_forward(plain: int, checkpointed: int, forward: int) -> RecomputeResult:
    """Claim: checkpointed BPTT runs exactly one extra forward pass of operations.

    ``plain``, ``checkpointed``: exact operation counts of forward + backward without and with
    checkpoints; ``forward``: that of the forward pass alone.
    """
    plain = v.integer("plain", plain, minimum=1)
    checkpointed = v.integer("checkpointed", checkpointed, minimum=0)
    forward = v.integer("forward", forward, minimum=1)
    extra = checkpointed - plain
    return RecomputeResult(extra, forward, checkpointed / plain, extra == forward)
