"""Plain data: what crosses from a learner's code to the scorer.

A part's COLLECT step reduces whatever the learner's code returned to *plain values*, one per
name: an array of floats (NaN and inf allowed) or a short text (a multiple-choice answer).
Encoded, a value is a small JSON object::

    {"shape": [3, 4], "data": [12 floats]}      or      {"text": "b"}

A *record* is what COLLECT produced for one part::

    {"status": "ok", "values": {name: value, ...}}
    {"status": "not_implemented" | "missing" | "error" | "timeout", "message": "..."}

The batch grader reads records written by an untrusted child process, so :func:`parse_record`
validates every field (types, shapes, sizes) before anything is scored, and never evaluates or
unpickles anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import PlainDataError, a_type, shorten, type_name

MAX_ELEMENTS = 1_000_000
"""Most numbers one value may hold (a gradient of this course is far smaller)."""
MAX_TEXT = 200
"""Longest text value, in characters."""
MAX_NDIM = 8

OK = "ok"
NOT_IMPLEMENTED = "not_implemented"
MISSING = "missing"
ERROR = "error"
TIMEOUT = "timeout"
STATUSES = (OK, NOT_IMPLEMENTED, MISSING, ERROR, TIMEOUT)


def _is_tensor(value: object) -> bool:
    """A torch tensor, recognised without importing torch."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def to_plain(value: Any, name: str) -> dict:
    """Encode ``value`` (numbers, arrays, tensors, nested lists, or a short str) as a plain value.

    Raises :class:`PlainDataError` naming ``name`` for anything else: objects, complex numbers,
    ragged lists, text where numbers belong, more than ``MAX_ELEMENTS`` numbers.
    """
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise PlainDataError(
                f"{name}: a text answer of at most {MAX_TEXT} characters was expected"
            )
        return {"text": value}
    try:
        array = np.asarray(value.detach().cpu().numpy() if _is_tensor(value) else value)
    except Exception as error:  # noqa: BLE001 - learner objects may raise anything
        raise PlainDataError(
            f"{name}: expected numbers, got {a_type(value)} ({shorten(error, 80)})"
        )
    if array.dtype.kind == "c":
        raise PlainDataError(f"{name}: expected real numbers, got complex ones")
    if array.dtype.kind not in "biuf":
        got = (
            a_type(value) if array.dtype.kind == "O" and array.ndim == 0 else f"{array.dtype} data"
        )
        raise PlainDataError(f"{name}: expected numbers (an array or a float), got {got}")
    if array.size > MAX_ELEMENTS or array.ndim > MAX_NDIM:
        raise PlainDataError(f"{name}: too large ({array.size} numbers in {array.ndim} dimensions)")
    array = array.astype(float)
    return {"shape": list(array.shape), "data": array.ravel().tolist()}


def _is_number(x: object) -> bool:
    return type(x) in (int, float)


def from_plain(entry: object, name: str) -> np.ndarray | str:
    """Decode a plain value, checking its structure; raise :class:`PlainDataError` if malformed."""
    if not isinstance(entry, Mapping):
        raise PlainDataError(f"{name}: a value must be an object, got {type_name(entry)}")
    if set(entry) == {"text"}:
        text = entry["text"]
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise PlainDataError(f"{name}: malformed text value")
        return text
    if set(entry) != {"shape", "data"}:
        raise PlainDataError(f"{name}: a value needs exactly 'shape' and 'data' (or 'text')")
    shape, data = entry["shape"], entry["data"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(type(n) is int and 0 <= n <= MAX_ELEMENTS for n in shape)
    ):
        raise PlainDataError(f"{name}: malformed shape {shorten(shape, 60)}")
    if not isinstance(data, list) or len(data) != math.prod(shape) or len(data) > MAX_ELEMENTS:
        raise PlainDataError(f"{name}: the data does not fill the shape {tuple(shape)}")
    if not all(_is_number(x) for x in data):
        raise PlainDataError(f"{name}: the data holds something other than numbers")
    return np.array(data, dtype=float).reshape(shape)


def parse_record(record: object) -> tuple[str, dict[str, Any] | str]:
    """Validate a part's record: ``("ok", {name: array or text})`` or ``(status, message)``."""
    if not isinstance(record, Mapping) or record.get("status") not in STATUSES:
        raise PlainDataError("not a part record")
    status = record["status"]
    if status == OK:
        values = record.get("values")
        if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
            raise PlainDataError("an ok record needs a 'values' object")
        return status, {key: from_plain(entry, key) for key, entry in values.items()}
    message = record.get("message")
    if not isinstance(message, str):
        raise PlainDataError(f"a {status} record needs a 'message' text")
    return status, shorten(message, 500)
