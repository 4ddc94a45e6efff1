"""Claims of "Randomized truncation": the predicates the chapter asserts.

Each returns what it measured; ``tests/test_claims_randomized_truncation.py`` runs it on a world
where the claim is false (``@pytest.mark.negative_control``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from bptt import _validate as v
from bptt.influence import InfluenceBalancing
from bptt.influence_training import Run


def converged(problem: InfluenceBalancing, run: Run, *, tolerance: float) -> bool:
    """The success criterion, fixed before the runs: the run did not diverge and the loss at
    the average of its last half of iterates is within ``tolerance`` (relative) of the
    optimum's, L(theta_avg) <= (1 + tolerance) L(theta*)."""
    tolerance = v.positive_float("tolerance", tolerance)
    if run.diverged or not np.isfinite(run.average):
        return False
    return bool(problem.loss(run.average) <= (1.0 + tolerance) * problem.loss(problem.optimum()))


class SuccessTable(NamedTuple):
    """estimator -> number of seeds that met the criterion, and the number of seeds."""

    successes: dict
    seeds: int


def success_table(problem: InfluenceBalancing, runs: dict, *, tolerance: float) -> SuccessTable:
    """Count the converged runs per estimator. ``runs``: estimator -> list of :class:`Run`,
    the same number of seeds for every estimator."""
    counts = {name: sum(converged(problem, r, tolerance=tolerance) for r in rs)
              for name, rs in runs.items()}
    sizes = {len(rs) for rs in runs.values()}
    if len(sizes) != 1:
        raise ValueError(f"runs: expected the same number of seeds per estimator, got {sizes}")
    return SuccessTable(counts, sizes.pop())


def unbiased_converges_where_truncation_does_not(table: SuccessTable, *, unbiased: str,
                                                 truncated: str, at_least: float = 0.9) -> bool:
    """Claim: the unbiased estimator meets the criterion on at least ``at_least`` of the seeds,
    the truncated one on none."""
    seeds = table.seeds
    return bool(table.successes[unbiased] >= at_least * seeds and table.successes[truncated] == 0)


def smaller_error_everywhere(errors: Sequence[float], others: Sequence[float]) -> bool:
    """Claim: ``errors`` is below ``others`` at every window length (paired)."""
    a, b = np.asarray(errors, dtype=float), np.asarray(others, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"errors, others: expected 1-D sequences of one length, got {a.shape}, "
                         f"{b.shape}")
    return bool(np.all(a < b))
