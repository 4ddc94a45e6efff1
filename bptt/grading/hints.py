"""Compare a learner's array with the expected one and say, specifically, what is wrong.

:func:`compare` returns ``None`` when the values match and otherwise a hint naming the value:
a wrong shape, a transposed matrix, NaN, a wrong sign, a known wrong scale (a dropped 1/T), or
a match with one of the part's *variants*: wrong answers the part computes on purpose (the
gradient without the tanh derivative, the sum over one time step only, ...). A hint never
contains the expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..gradcheck import relative_error
from .errors import WrongOutput
from .parts import Verdict

DEFAULT_RTOL = 1e-6
"""Relative tolerance of array checks: float64 code agrees far better; float32 would not pass."""
ATOL = 1e-13


def deviation_ratio(got: np.ndarray, expected: np.ndarray) -> float:
    """max |got - expected| / max |expected|: the largest deviation measured against the largest
    expected entry (inf when the shapes differ). What the grading tolerances bound (:func:`close`);
    not the course's relative error, :func:`bptt.gradcheck.relative_error`, which hints report."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    scale = float(np.max(np.abs(expected)))
    diff = float(np.max(np.abs(got - expected)))
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def close(got: np.ndarray, expected: np.ndarray, rtol: float = DEFAULT_RTOL) -> bool:
    """Same shape, finite, and max |got - expected| <= rtol max |expected| + ATOL (the
    :func:`deviation_ratio` within ``rtol``, with an absolute floor for all-zero values)."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return False
    if got.size == 0:
        return True
    bound = rtol * float(np.max(np.abs(expected))) + ATOL
    return float(np.max(np.abs(got - expected))) <= bound


def _transposed(got: np.ndarray, expected: np.ndarray, rtol: float) -> bool:
    return got.ndim == 2 and expected.ndim == 2 and close(got.T, expected, rtol)


def compare(
    name: str,
    got: Any,
    expected: Any,
    *,
    rtol: float = DEFAULT_RTOL,
    variants: Sequence[tuple[Any, str]] = (),
    scales: Sequence[tuple[float, str]] = (),
) -> str | None:
    """``None`` if ``got`` matches ``expected``, else ``"<name>: <what is wrong>"``.

    ``variants`` are ``(wrong_value, hint)`` pairs and ``scales`` ``(factor, hint)`` pairs: when
    ``got`` equals a wrong value, or ``factor * expected``, that hint is given.
    """
    expected = np.asarray(expected, dtype=float)
    if isinstance(got, str):
        return f"{name}: should be numbers, got the text {got[:40]!r}"
    got = np.asarray(got, dtype=float)
    if got.shape != expected.shape:
        if _transposed(got, expected, rtol):
            return f"{name}: transposed (shape {got.shape}, expected {expected.shape})"
        return f"{name}: shape {got.shape}, expected {expected.shape}"
    if not np.all(np.isfinite(got)):
        return f"{name}: contains NaN or inf"
    if close(got, expected, rtol):
        return None
    if _transposed(got, expected, rtol):
        return f"{name}: transposed (check the order of the factors in the outer product)"
    for value, hint in variants:
        if close(got, value, rtol):
            return f"{name}: {hint}"
    for factor, hint in scales:
        if close(got, factor * expected, rtol):
            return f"{name}: {hint}"
    if close(got, -expected, rtol):
        return f"{name}: wrong sign"
    error = relative_error(got, expected)
    return f"{name}: does not match the expected value (relative error {error:.2g})"


def array_value(values: Mapping[str, Any], key: str) -> np.ndarray:
    """The decoded array ``values[key]``; :class:`WrongOutput` if it is absent or text."""
    if key not in values:
        raise WrongOutput(f"no value for {key!r}")
    value = values[key]
    if isinstance(value, str):
        raise WrongOutput(f"{key}: should be numbers, got the text {value[:40]!r}")
    return value


def scalar_value(values: Mapping[str, Any], key: str, what: str) -> float:
    """``values[key]`` as one finite float; :class:`WrongOutput` naming ``what`` otherwise."""
    value = array_value(values, key)
    if value.size != 1:
        raise WrongOutput(f"{what}: should be one number, got an array of shape {value.shape}")
    number = float(value.reshape(()))
    if not np.isfinite(number):
        raise WrongOutput(f"{what}: {number}, expected a finite number")
    return number


Variants = Mapping[str, Sequence[tuple[Any, str]]]


def array_dict_score(
    keys: Sequence[str],
    expected: Callable[[Any], Mapping[str, Any]],
    *,
    variants: Callable[[Any, Mapping[str, Any]], Variants] | None = None,
    scales: Callable[[Any], Sequence[tuple[float, str]]] | None = None,
    name: Callable[[str, Any], str] | None = None,
    value_key: Callable[[str, Any], str] | None = None,
    context: Callable[[Any], str] | None = None,
    several: bool = False,
) -> Callable[[Any, Mapping[str, Any]], Verdict]:
    """The SCORE of a part whose learner function returns a dict of arrays (gradients, say).

    The shared factory of the exercises' "dict of arrays checked against autograd, with variant
    hints" parts. For each case (the part's inputs, or each item of them when ``several``):

    - ``expected(case)``: the right arrays by key (autograd); it may hold more entries, which
      ``variants`` can use;
    - ``variants(case, expected)``: ``{key: [(wrong_value, hint), ...]}``, the typical wrong
      answers that get a specific hint (see :func:`compare`);
    - ``scales(case)``: ``(factor, hint)`` pairs, for every key;
    - ``name(key, case)``: the name a hint gives the value (default ``"the 'key' gradient"``);
    - ``value_key(key, case)``: the key under which COLLECT stored it (default ``key``);
    - ``context(case)``: put in front of the case's hints (``"with T = 1"``).

    The verdict is that of the first case with a hint (later cases are not computed).
    """

    def name_of(key: str, case: Any) -> str:
        return name(key, case) if name else f"the '{key}' gradient"

    def stored_as(key: str, case: Any) -> str:
        return value_key(key, case) if value_key else key

    def hints(case: Any, values: Mapping[str, Any]) -> list[str | None]:
        right = expected(case)
        wrong = variants(case, right) if variants else {}
        factors = scales(case) if scales else ()
        return [
            compare(
                name_of(k, case),
                array_value(values, stored_as(k, case)),
                right[k],
                scales=factors,
                variants=wrong.get(k, ()),
            )
            for k in keys
        ]

    def score(inputs: Any, values: Mapping[str, Any]) -> Verdict:
        cases = inputs if several else [inputs]
        return Verdict.from_cases(
            (context(case) if context else "", hints(case, values)) for case in cases
        )

    return score
