"""The claims of the chapter "Exploding gradients and clipping", one predicate each.

* :func:`success_table` / :func:`clipping_learns` - the clipped networks *learn*: their test MSE
  beats the strongest trivial opponent (always predicting the mean, MSE 1/6 on the adding
  problem) by a factor fixed before the run, on most seeds;
* :func:`first_spike` / :func:`recurrent_spike` - an explosion starts in the *recurrent*
  gradient: at the first update whose gradient norm jumps far above its early level, dL/dW_hh
  carries most of the squared norm while the hidden units are still mostly unsaturated (in a
  read-out step-size instability the units are saturated, dL/dW_hh = 0 and the read-out
  gradient carries everything);
* :func:`wall_steepens` - the slope of the loss at the wall of the cliff grows with T.

The chapter calls these functions on its runs; ``tests/test_claims_clipping.py`` calls them on
worlds where the claim is false and shows that they fail there.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v


def _vector(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{name}: expected a non-empty 1-D sequence of numbers, got shape {array.shape}"
        )
    if np.isnan(array).any():
        raise ValueError(f"{name}: expected numbers (inf allowed, NaN not), got {array.tolist()}")
    return array


# ------------------------------------------------------------------ learning beats the baseline


@dataclasses.dataclass(frozen=True)
class SuccessTable:
    """Which seeds succeeded: test MSE below ``threshold = factor * baseline``."""

    test_mse: tuple[float, ...]
    baseline: float
    factor: float
    threshold: float
    success: tuple[bool, ...]

    @property
    def rate(self) -> float:
        """The fraction of seeds that succeeded."""
        return float(np.mean(self.success))

    @property
    def count(self) -> int:
        return int(sum(self.success))


def success_table(test_mse, baseline: float, *, factor: float = 0.5) -> SuccessTable:
    """Per seed: does the test MSE beat ``factor * baseline`` (a margin fixed before the run)?

    ``test_mse`` (S,) one test MSE per seed (inf for a run that diverged); ``baseline`` the
    MSE of the strongest trivial opponent on the same test set; ``factor`` in (0, 1].
    """
    mse = _vector("test_mse", test_mse)
    baseline = v.positive_float("baseline", baseline)
    factor = v.positive_float("factor", factor)
    if factor > 1:
        raise ValueError(
            f"factor: expected a number in (0, 1] (a margin below the baseline), got {factor}"
        )
    threshold = factor * baseline
    return SuccessTable(
        tuple(mse.tolist()), baseline, factor, threshold, tuple(bool(m < threshold) for m in mse)
    )


@dataclasses.dataclass(frozen=True)
class LearnsResult:
    holds: bool
    table: SuccessTable
    majority: float


def clipping_learns(
    test_mse, baseline: float, *, factor: float = 0.5, majority: float = 0.8
) -> LearnsResult:
    """The claim "the clipped network learns": at least ``majority`` of the seeds beat
    ``factor * baseline`` (see :func:`success_table`)."""
    table = success_table(test_mse, baseline, factor=factor)
    majority = v.probability("majority", majority)
    return LearnsResult(table.rate >= majority, table, majority)


# ------------------------------------------------------------------ which gradient spikes


@dataclasses.dataclass(frozen=True)
class Spike:
    """The first update (1-based) whose global gradient norm exceeds ``factor`` times the
    median of the first ``reference`` updates; ``ratio`` is norm / that median, ``shares`` the
    fraction of ||g||^2 that each parameter group carries there, ``saturation`` the fraction of
    saturated hidden units in that update."""

    update: int
    ratio: float
    shares: dict
    saturation: float


def first_spike(
    grad_norm, group_norms: dict, saturation, *, factor: float = 10.0, reference: int = 10
) -> Spike | None:
    """The first spike of one run (None if the norm never exceeds ``factor`` x its early median).

    ``grad_norm`` (U,) global norms before clipping; ``group_norms`` {group: (U,)} norms of
    the parameter groups, whose squares add up to ``grad_norm**2``; ``saturation`` (U,).
    """
    g = _vector("grad_norm", grad_norm)
    sat = _vector("saturation", saturation)
    groups = {name: _vector(f"group_norms[{name!r}]", norms) for name, norms in group_norms.items()}
    if not groups:
        raise ValueError("group_norms: expected at least one parameter group, got none")
    for name, norms in [("saturation", sat), *groups.items()]:
        if norms.shape != g.shape:
            raise ValueError(f"{name}: expected shape {g.shape} like grad_norm, got {norms.shape}")
    factor = v.positive_float("factor", factor)
    reference = v.integer("reference", reference, minimum=1)
    base = float(np.median(g[:reference]))
    above = np.flatnonzero(g > factor * base)
    if above.size == 0:
        return None
    u = int(above[0])
    total = float(sum(norms[u] ** 2 for norms in groups.values()))
    shares = {
        name: float(norms[u] ** 2 / total) if total > 0 else 0.0 for name, norms in groups.items()
    }
    return Spike(u + 1, float(g[u] / base), shares, float(sat[u]))


@dataclasses.dataclass(frozen=True)
class RecurrentSpikeResult:
    holds: bool
    spike: Spike | None
    min_share: float
    max_saturation: float


def recurrent_spike(
    grad_norm,
    group_norms: dict,
    saturation,
    *,
    group: str = "recurrent",
    factor: float = 10.0,
    reference: int = 10,
    min_share: float = 0.5,
    max_saturation: float = 0.5,
) -> RecurrentSpikeResult:
    """The claim "the explosion starts in the recurrent gradient": the run has a first spike
    (:func:`first_spike`), ``group`` carries more than ``min_share`` of its ||g||^2, and at
    most ``max_saturation`` of the hidden units are saturated there."""
    spike = first_spike(grad_norm, group_norms, saturation, factor=factor, reference=reference)
    if group not in group_norms:
        raise ValueError(f"group: expected one of {sorted(group_norms)}, got {group!r}")
    min_share = v.probability("min_share", min_share)
    max_saturation = v.probability("max_saturation", max_saturation)
    holds = (
        spike is not None and spike.shares[group] > min_share and spike.saturation <= max_saturation
    )
    return RecurrentSpikeResult(bool(holds), spike, min_share, max_saturation)


# ------------------------------------------------------------------ the cliff


@dataclasses.dataclass(frozen=True)
class SteepensResult:
    holds: bool
    growth: float


def wall_steepens(slopes, *, min_growth: float = 100.0) -> SteepensResult:
    """The claim "the wall gets steeper with T": the slopes at the wall (ordered by
    increasing T) rise at every step and the last is ``min_growth`` times the first."""
    s = _vector("slopes", slopes)
    if s.size < 2:
        raise ValueError(f"slopes: expected at least two lengths, got {s.size}")
    min_growth = v.positive_float("min_growth", min_growth)
    growth = float(s[-1] / s[0]) if s[0] > 0 else float("inf")
    return SteepensResult(bool(np.all(np.diff(s) > 0) and growth >= min_growth), growth)


@dataclasses.dataclass(frozen=True)
class RecurrentRunsResult:
    holds: bool
    fraction: float
    results: tuple


def explosions_start_in_recurrence(
    runs, *, majority: float = 0.5, max_saturation: float = 0.6, **spike_options
) -> RecurrentRunsResult:
    """The chapter's claim over several runs: in more than ``majority`` of ``runs`` (each a
    ``(grad_norm, group_norms, saturation)`` triple, e.g. the runs that diverged) the first
    spike is recurrent and unsaturated (:func:`recurrent_spike` with ``max_saturation``)."""
    runs = list(runs)
    if not runs:
        raise ValueError("runs: expected at least one (grad_norm, group_norms, saturation) triple")
    majority = v.probability("majority", majority)
    results = tuple(
        recurrent_spike(*run, max_saturation=max_saturation, **spike_options) for run in runs
    )
    fraction = float(np.mean([r.holds for r in results]))
    return RecurrentRunsResult(fraction > majority, fraction, results)
