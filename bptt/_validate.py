"""Input checks shared by the numpy modules of ``bptt``.

Every public function of the package checks its arguments here, so that wrong input fails
early with one kind of message: the argument's name, the shape it should have (in the symbols
of the docstrings, such as ``(B, T, D)``, with the sizes already fixed by other arguments) and
what it received.

Shapes are checked against a ``dims`` dictionary that the calls of one function share: the
first array that mentions a symbol fixes its size, later arrays must agree::

    dims = {}
    x = float_array("x", x, ("B", "T", "D"), dims)
    W_xh = float_array("W_xh", W_xh, ("H", "D"), dims)   # D must equal x.shape[2]
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

Dims = dict[str, tuple[int, str]]
"""Symbol -> (size, name of the argument that fixed it)."""


def _spec_text(spec: Sequence[str]) -> str:
    inner = ", ".join(str(s) for s in spec)
    return f"({inner},)" if len(spec) == 1 else f"({inner})"


def _known_text(spec: Sequence[str], dims: Dims) -> str:
    known = [f"{s} = {dims[s][0]} (from {dims[s][1]})" for s in dict.fromkeys(spec) if s in dims]
    return f" with {', '.join(known)}" if known else ""


def _check_shape(name: str, shape: tuple[int, ...], spec: Sequence[str], dims: Dims) -> None:
    expected = f"shape {_spec_text(spec)}{_known_text(spec, dims)}"
    if len(shape) != len(spec):
        raise ValueError(
            f"{name}: expected a {len(spec)}-D array of {expected}, "
            f"got a {len(shape)}-D array of shape {shape}"
        )
    if 0 in shape:
        raise ValueError(f"{name}: expected {expected} with every size >= 1, got shape {shape}")
    bound: Dims = {}
    for symbol, size in zip(spec, shape):
        if symbol in dims:
            wanted = dims[symbol][0]
        elif symbol in bound:
            wanted = bound[symbol][0]
        else:
            bound[symbol] = (size, name)
            continue
        if size != wanted:
            raise ValueError(f"{name}: expected {expected}, got shape {shape}")
    dims.update(bound)


def bind(source: str, shape: tuple[int, ...], spec: Sequence[str]) -> Dims:
    """A ``dims`` dictionary with the symbols of ``spec`` fixed by an array of ``shape``."""
    return {s: (n, source) for s, n in zip(spec, shape)}


def _check_finite(name: str, array: np.ndarray, spec: Sequence[str]) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name}: expected finite values in an array of shape {_spec_text(spec)}, "
            f"got {array[where]} at index {where} of an array of shape {array.shape}"
        )


def float_array(
    name: str, value: object, spec: Sequence[str], dims: Dims | None = None
) -> np.ndarray:
    """``value`` as a finite floating-point ndarray of shape ``spec`` (symbols bound in ``dims``).

    Raises TypeError for a non-numeric, integer, boolean or complex array, ValueError for a
    wrong rank, a size that disagrees with ``dims`` or a NaN/inf entry.
    """
    dims = {} if dims is None else dims
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:  # ragged nested lists and the like
        raise TypeError(
            f"{name}: expected a floating-point array of shape {_spec_text(spec)}, "
            f"got {type(value).__name__} that is not an array ({err})"
        ) from None
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"{name}: expected a floating-point array (float32 or float64) of shape "
            f"{_spec_text(spec)}, got dtype {array.dtype} with shape {array.shape}"
        )
    _check_shape(name, array.shape, spec, dims)
    _check_finite(name, array, spec)
    return array


def float_array_or_zeros(
    name: str, value: object, spec: Sequence[str], dims: Dims, dtype: np.dtype
) -> np.ndarray:
    """:func:`float_array` of ``value`` in ``dtype``, or zeros of shape ``spec`` when it is None.

    Every symbol of ``spec`` must already be fixed in ``dims`` (e.g. h0 (B, H) after x, W_hh).
    """
    if value is None:
        return np.zeros(tuple(dims[s][0] for s in spec), dtype)
    return float_array(name, value, spec, dims).astype(dtype, copy=False)


def float64_array(
    name: str, value: object, spec: Sequence[str], dims: Dims | None = None
) -> np.ndarray:
    """Like :func:`float_array`, but only float64 is accepted (finite differences need it)."""
    array = float_array(name, value, spec, dims)
    if array.dtype != np.float64:
        raise TypeError(
            f"{name}: expected a float64 array of shape {_spec_text(spec)}, "
            f"got dtype {array.dtype} with shape {array.shape}"
        )
    return array


def index_array(
    name: str, value: object, spec: Sequence[str], dims: Dims, *, upper: int, upper_name: str
) -> np.ndarray:
    """``value`` as an integer array of shape ``spec`` with entries in ``[0, upper)``."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{name}: expected an integer array of class indices of shape {_spec_text(spec)}, "
            f"got dtype {array.dtype} with shape {array.shape}"
        )
    _check_shape(name, array.shape, spec, dims)
    if array.size and (array.min() < 0 or array.max() >= upper):
        raise ValueError(
            f"{name}: expected class indices in [0, {upper}) ({upper_name} = {upper}), "
            f"got values in [{array.min()}, {array.max()}] in an array of shape {array.shape}"
        )
    return array


def integer(name: str, value: object, *, minimum: int) -> int:
    """``value`` as a Python int ``>= minimum`` (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """``value`` as a finite float ``> 0``."""
    number = real(name, value)
    if not number > 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return number


def real(name: str, value: object) -> float:
    """``value`` as a finite Python float (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def probability(name: str, value: object) -> float:
    """``value`` as a float in the half-open interval (0, 1]."""
    number = real(name, value)
    if not 0.0 < number <= 1.0:
        raise ValueError(f"{name}: expected a probability in (0, 1], got {value!r}")
    return number


def generator(name: str, value: object) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator or an integer seed (never global state)."""
    if isinstance(value, np.random.Generator):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return np.random.default_rng(int(value))
    raise TypeError(f"{name}: expected a numpy.random.Generator or an integer seed, got {value!r}")


def choice(name: str, value: object, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name}: expected one of {list(options)}, got {value!r}")
    return str(value)


_COUNTS = {2: "two", 3: "three", 4: "four"}


def gate_weights(
    W_x: object, W_h: object, biases: dict[str, object], gates: Sequence[str], dims: Dims
) -> tuple[np.ndarray, ...]:
    """``(W_x, W_h, *biases)`` of a gated cell whose weights stack one block of H rows per gate
    (``gates``, in order): W_h (kH, H), W_x (kH, D), each bias (kH,), for k = len(gates)."""
    W_h = float_array("W_h", W_h, ("G", "H"), dims)
    k, H = len(gates), W_h.shape[1]
    if W_h.shape[0] != k * H:
        raise ValueError(
            f"W_h: expected shape ({k}H, H), {_COUNTS.get(k, k)} gate blocks "
            f"{', '.join(gates)} of H rows, got {W_h.shape}"
        )
    W_x = float_array("W_x", W_x, ("G", "D"), dims)
    return (W_x, W_h, *(float_array(name, b, ("G",), dims) for name, b in biases.items()))
