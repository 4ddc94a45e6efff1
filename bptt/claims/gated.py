"""Claims of the chapter *Gated architectures*, one predicate each.

Each function measures one asserted claim on arrays the chapter computed and returns a
:class:`Verdict` (``holds`` plus the numbers it compared); the chapter asserts ``holds`` and
prints the margin, and ``tests/test_claims_gated.py`` runs the same function on a world where
the claim is false (``@pytest.mark.negative_control``).
"""

from __future__ import annotations

import numpy as np

from bptt import _validate as v
from bptt.claims._verdict import Verdict


def adding_memoryless_mse(length: int) -> float:
    """The test MSE of the best predictor that sees only the last input (x_T), exact.

    For ``bptt.tasks.adding_problem`` (values U[0, 1], one marker in each half): the second
    marker sits at the last step with probability p = 1 / (T - T//2); then y = X_1 + x_T and
    the best guess is 1/2 + x_T (error variance 1/12); otherwise it is the mean 1 (variance
    1/6). So the MSE is (1 - p)/6 + p/12 = 1/6 - p/12, below the constant predictor's 1/6.
    """
    length = v.integer("length", length, minimum=2)
    p = 1.0 / (length - length // 2)
    return 1.0 / 6.0 - p / 12.0


def adding_memoryless_predict(x: np.ndarray) -> np.ndarray:
    """That predictor applied to x (B, T, 2): 1/2 + x_T where the last step is marked, else 1."""
    x = v.float_array("x", x, ("B", "T", "D"))
    last = x[:, -1]
    return np.where(last[:, 1] > 0.5, 0.5 + last[:, 0], 1.0)[:, None]


def successes(test_mse, threshold: float) -> Verdict:
    """Which runs succeeded: test MSE below ``threshold`` (fixed before the runs).

    ``test_mse`` (S,) per seed. ``detail``: ``success`` (S,) bool, ``rate``, ``threshold``.
    ``holds`` is True when every run succeeded.
    """
    mse = np.asarray(test_mse, dtype=float).reshape(-1)
    ok = np.isfinite(mse) & (mse < threshold)
    return Verdict(bool(ok.all()), {"success": ok, "rate": float(ok.mean()), "threshold": threshold})


def beats_baseline_on_most(test_mse, baseline: float, *, factor: float, most: float = 0.8) -> Verdict:
    """A cell learns the task: on at least ``most`` of the seeds its test MSE is below
    ``factor`` times the strongest trivial baseline. ``detail``: rate, the best and worst
    margin ``baseline / mse``."""
    mse = np.asarray(test_mse, dtype=float).reshape(-1)
    rate = float(np.mean(mse < factor * baseline))
    return Verdict(rate >= most, {"rate": rate, "best_margin": float(baseline / mse.min()),
                                  "worst_margin": float(baseline / mse.max())})


def fails_on_most(test_mse, baseline: float, *, factor: float, most: float = 0.8) -> Verdict:
    """A cell does not learn the task: on at least ``most`` of the seeds its test MSE stays
    above ``factor`` times the baseline (``factor`` < 1: it is no better than nearly trivial)."""
    mse = np.asarray(test_mse, dtype=float).reshape(-1)
    rate = float(np.mean(~(mse < factor * baseline)))
    return Verdict(rate >= most, {"rate": rate, "lowest_ratio": float(mse.min() / baseline)})


def gates_opened(before, after, *, margin: float = 0.0) -> Verdict:
    """Training opened a gate: on every seed the mean gate value after training exceeds the
    value before by more than ``margin``. ``before``, ``after`` (S,)."""
    before = np.asarray(before, dtype=float).reshape(-1)
    after = np.asarray(after, dtype=float).reshape(-1)
    if before.shape != after.shape:
        raise ValueError(f"after: expected shape {before.shape} like before, got {after.shape}")
    change = after - before
    return Verdict(bool(np.all(change > margin)), {"smallest_change": float(change.min()),
                                                    "largest_change": float(change.max())})


def per_step_rate(ratio, start: int, stop: int) -> float:
    """Geometric mean decay per step of a positive curve ``ratio`` (by distance) over
    distances ``start``..``stop``: (ratio[stop] / ratio[start]) ** (1 / (stop - start))."""
    ratio = np.asarray(ratio, dtype=float)
    if not 0 <= start < stop < ratio.size:
        raise ValueError(f"start, stop: expected 0 <= start < stop < {ratio.size}, got {start}, {stop}")
    return float((ratio[stop] / ratio[start]) ** (1.0 / (stop - start)))


def gate_rate_is_lower_bound(measured_rates, gate_rates, *, tolerance: float = 1e-9) -> Verdict:
    """s(b_f)^d is a lower bound, not a law: every measured decay rate per step is at least
    the corresponding gate rate (minus ``tolerance``), and at least one exceeds it by more than
    10 % (so the curve is not the law). Arrays of equal length, one entry per forget bias."""
    measured = np.asarray(measured_rates, dtype=float).reshape(-1)
    gate = np.asarray(gate_rates, dtype=float).reshape(-1)
    if measured.shape != gate.shape:
        raise ValueError(f"gate_rates: expected shape {measured.shape}, got {gate.shape}")
    bound = bool(np.all(measured >= gate - tolerance))
    not_law = bool(np.any(measured > 1.1 * gate))
    return Verdict(bound and not_law, {"bound": bound, "not_a_law": not_law,
                                       "excess": (measured - gate).tolist()})


def grows_with_length(lengths, updates_needed, *, cap: float) -> Verdict:
    """The number of updates a model needs grows with the sequence length: the median over the
    seeds (a run that never succeeded counts as ``cap``) increases strictly from each length to
    the next. ``updates_needed`` (len(lengths), S) with NaN or None for a failed run."""
    lengths = np.asarray(lengths, dtype=float)
    needed = np.array(updates_needed, dtype=float)
    if needed.ndim != 2 or needed.shape[0] != lengths.size:
        raise ValueError(
            f"updates_needed: expected shape (len(lengths), S) = ({lengths.size}, S), got {needed.shape}"
        )
    order = np.argsort(lengths)
    needed = np.where(np.isnan(needed), cap, needed)[order]
    medians = np.median(needed, axis=1)
    return Verdict(bool(np.all(np.diff(medians) > 0)), {"medians": medians.tolist()})


def relative_error_below(error: float, tol: float) -> Verdict:
    """Two computations of the same quantity agree: relative error at most ``tol``."""
    error = float(error)
    return Verdict(bool(np.isfinite(error) and error <= tol), {"error": error, "tol": tol})
