"""Claims of "The chain rule through time".

- :func:`geometric_decay`: the size of a loss's contribution to a state d steps earlier
  shrinks about geometrically with d (a straight line on a log scale, falling).

The agreement of the chapter's formulas with autograd is :func:`bptt.claims.gradients.agreement`,
and the paths that add up to the total derivative are :func:`bptt.claims.unrolled_graph.sum_of_parts`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v


@dataclasses.dataclass(frozen=True)
class GeometricDecay:
    """``factor``: the fitted factor per step, exp(slope of log(norm) against d); ``drop``:
    last value over the first; ``deviation``: largest |log(norm) - fitted line|."""

    factor: float
    drop: float
    deviation: float
    max_factor: float
    max_drop: float
    band: float

    @property
    def holds(self) -> bool:
        return (
            self.factor < self.max_factor
            and self.drop < self.max_drop
            and self.deviation < self.band
        )


def geometric_decay(
    distance, norms, *, max_factor: float = 0.9, max_drop: float = 1e-3, band: float = 1.0
) -> GeometricDecay:
    """Do ``norms`` (positive, one per ``distance``) fall geometrically with the distance?

    Holds when the fitted factor per step is below ``max_factor`` (shrinks by at least
    1 - max_factor per step), the last norm is below ``max_drop`` times the first, and every
    log-norm lies within ``band`` (a factor e for 1.0) of the fitted straight line.
    distance, norms : (N,) arrays, N >= 3.
    """
    dims: v.Dims = {}
    distance = v.float_array("distance", np.asarray(distance, dtype=np.float64), ("N",), dims)
    norms = v.float_array("norms", np.asarray(norms, dtype=np.float64), ("N",), dims)
    if distance.size < 3 or np.any(norms <= 0):
        raise ValueError(
            f"distance, norms: expected N >= 3 positive norms, got N = {norms.size}, "
            f"smallest norm {norms.min()}"
        )
    log = np.log(norms)
    slope, intercept = np.polyfit(distance, log, 1)
    deviation = float(np.max(np.abs(log - (slope * distance + intercept))))
    return GeometricDecay(
        float(np.exp(slope)),
        float(norms[-1] / norms[0]),
        deviation,
        v.positive_float("max_factor", max_factor),
        v.positive_float("max_drop", max_drop),
        v.positive_float("band", band),
    )
