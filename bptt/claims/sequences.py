"""Claims of the chapter *Teacher forcing, padded batches and both directions*, one predicate each.

Each function measures one asserted claim on numbers the chapter computed and returns a
:class:`Verdict` (``holds`` plus the numbers it compared); the chapter asserts ``holds`` and
prints the margin, and ``tests/test_claims_sequences.py`` runs the same function on a world
where the claim is false (``@pytest.mark.negative_control``).
"""

from __future__ import annotations

import numpy as np

from bptt.claims._verdict import Verdict


def _vector(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name}: expected at least one value, got none")
    return array


def _pair(first: str, a, second: str, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(first, a), _vector(second, b)
    if a.shape != b.shape:
        raise ValueError(f"{second}: expected shape {a.shape} like {first}, got {b.shape}")
    return a, b


def _flat(values) -> np.ndarray:
    """A dict of arrays/tensors (in a fixed key order), a list of them or one array, as a vector."""
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values)]
    elif not isinstance(values, (list, tuple)):
        values = [values]
    parts = [np.asarray(x.detach() if hasattr(x, "detach") else x, dtype=float).reshape(-1)
             for x in values]
    return np.concatenate(parts) if parts else np.zeros(0)


def same_values(computed, reference, *, tol: float = 1e-10) -> Verdict:
    """Two computations of the same numbers agree: ``max |a - b| / max |b|`` at most ``tol``.

    ``computed`` and ``reference`` are arrays, tensors, lists of them or dicts with the same
    keys (gradients by parameter name). ``detail``: ``error`` (that relative error), ``tol``.
    """
    if isinstance(computed, dict) and isinstance(reference, dict) and set(computed) != set(reference):
        raise ValueError(f"reference: expected the keys {sorted(computed)}, got {sorted(reference)}")
    a, b = _flat(computed), _flat(reference)
    if a.shape != b.shape:
        raise ValueError(f"reference: expected {a.size} numbers like computed, got {b.size}")
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    error = float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a - b), initial=0.0))
    return Verdict(bool(np.isfinite(error) and error <= tol), {"error": error, "tol": tol})


def differs(computed, reference, *, at_least: float) -> Verdict:
    """A shortcut (a bug) changes the numbers: the relative error of :func:`same_values` is at
    least ``at_least``. ``detail``: ``error``, ``at_least``."""
    error = same_values(computed, reference, tol=np.inf).detail["error"]
    return Verdict(bool(error >= at_least), {"error": error, "at_least": at_least})


def gap_on_every_seed(larger, smaller, *, margin: float) -> Verdict:
    """``larger`` exceeds ``smaller`` by more than ``margin`` on every seed (paired, (S,) each).

    Exposure bias: the free-running loss above the teacher-forced loss of the same model.
    ``detail``: ``gaps`` (S,), ``smallest``, ``margin``.
    """
    larger, smaller = _pair("larger", larger, "smaller", smaller)
    gaps = larger - smaller
    ok = np.isfinite(gaps) & (gaps > margin)
    return Verdict(bool(ok.all()), {"gaps": gaps, "smallest": float(gaps.min()), "margin": margin})


def paired_wins(treatment, control, *, most: float = 0.8, lower_is_better: bool = True) -> Verdict:
    """A remedy helps: paired seed by seed (same initialisation and data), ``treatment`` is better
    than ``control`` on at least the fraction ``most`` of the seeds and better on average.

    ``detail``: ``wins`` (S,) bool, ``rate``, ``mean_change`` (treatment - control), ``most``.
    """
    control, treatment = _pair("control", control, "treatment", treatment)
    change = treatment - control
    better = change < 0 if lower_is_better else change > 0
    better &= np.isfinite(change)
    mean = float(change.mean())
    on_average = mean < 0 if lower_is_better else mean > 0
    rate = float(better.mean())
    return Verdict(bool(rate >= most and on_average),
                   {"wins": better, "rate": rate, "mean_change": mean, "most": most})


def above_on_every_seed(values, opponent: float, *, margin: float) -> Verdict:
    """Every seed's score (higher is better, e.g. accuracy) exceeds the opponent's by more than
    ``margin``. ``detail``: ``worst_margin`` (min over seeds of values - opponent), ``margin``."""
    values = _vector("values", values)
    lead = values - float(opponent)
    return Verdict(bool(np.all(np.isfinite(lead) & (lead > margin))),
                   {"worst_margin": float(lead.min()), "margin": margin})


def not_above(values, ceiling: float, *, tol: float) -> Verdict:
    """No seed's score exceeds ``ceiling`` (the best any model of its kind can do) by more than
    ``tol`` (the sampling noise of the test set). ``detail``: ``largest_excess``, ``tol``."""
    values = _vector("values", values)
    excess = float((values - float(ceiling)).max())
    return Verdict(bool(np.isfinite(excess) and excess <= tol), {"largest_excess": excess, "tol": tol})


def success_count(values, threshold: float, *, at_least: int, higher_is_better: bool = True) -> Verdict:
    """At least ``at_least`` seeds meet the criterion fixed before the run (score above
    ``threshold``, or below it when ``higher_is_better`` is False).
    ``detail``: ``success`` (S,) bool, ``count``, ``threshold``."""
    values = _vector("values", values)
    ok = np.isfinite(values) & ((values >= threshold) if higher_is_better else (values <= threshold))
    return Verdict(bool(ok.sum() >= at_least),
                   {"success": ok, "count": int(ok.sum()), "threshold": threshold})


def one_sided_map(G, *, tol: float = 0.0) -> Verdict:
    """A gradient map G[t, s] = ||d o_t / d x_s|| (T, T) of a causal model: every entry above
    the diagonal (s > t, inputs after the output) is at most ``tol`` and every entry on or
    below it is larger. ``detail``: ``largest_future``, ``smallest_past``."""
    G = np.asarray(G, dtype=float)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 2:
        raise ValueError(f"G: expected a square (T, T) map with T >= 2, got shape {G.shape}")
    future = G[np.triu_indices_from(G, k=1)]
    past = G[np.tril_indices_from(G)]
    largest_future, smallest_past = float(future.max()), float(past.min())
    return Verdict(bool(largest_future <= tol < smallest_past),
                   {"largest_future": largest_future, "smallest_past": smallest_past})


def two_sided_map(G, *, tol: float = 0.0) -> Verdict:
    """A gradient map (T, T) of a model that reads both directions: every entry, above the
    diagonal (the future) as well as on or below it (the past), exceeds ``tol``.
    ``detail``: ``smallest_future``, ``smallest_past``."""
    G = np.asarray(G, dtype=float)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 2:
        raise ValueError(f"G: expected a square (T, T) map with T >= 2, got shape {G.shape}")
    smallest_future = float(G[np.triu_indices_from(G, k=1)].min())
    smallest_past = float(G[np.tril_indices_from(G)].min())
    return Verdict(bool(smallest_future > tol and smallest_past > tol),
                   {"smallest_future": smallest_future, "smallest_past": smallest_past})
