"""Claims that a gradient computed one way agrees with an independent computation.

Used by "The chain rule through time" (formulas against torch autograd), "Closed-form
gradients of a linear RNN" (closed forms against autograd and an explicit sum of powers) and
"BPTT from scratch in numpy" (BPTT against finite differences, eq. ``finite-difference``).
The relative error is the course's one definition, :func:`bptt.gradcheck.relative_error`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bptt import _validate as v
from bptt import gradcheck


@dataclasses.dataclass(frozen=True)
class Agreement:
    """``errors``: relative error per key (or ``{"value": e}`` for two arrays); ``worst``."""

    errors: dict
    tol: float

    @property
    def worst(self) -> float:
        return max(self.errors.values())

    @property
    def holds(self) -> bool:
        return self.worst < self.tol


def agreement(ours, reference, *, tol: float) -> Agreement:
    """Do ``ours`` and ``reference`` (two arrays, or two dicts of arrays with the same keys)
    agree to a relative error below ``tol``, for every key?"""
    tol = v.positive_float("tol", tol)
    if isinstance(ours, dict) or isinstance(reference, dict):
        return Agreement(gradcheck.relative_errors(ours, reference), tol)
    return Agreement(
        {"value": gradcheck.relative_error(np.asarray(ours), np.asarray(reference))}, tol
    )
