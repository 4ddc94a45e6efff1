"""Exceptions a check raises about a learner's code, and a safe one-line description of any error.

A check must never crash on a learner's mistake, and must never hang or crash while *describing*
one either: an exception raised by learner code can carry a ``__str__`` that raises, loops or
returns something enormous. :func:`describe_exception` guards against all three.
"""

from __future__ import annotations

from .limits import TimeLimitExceeded, time_limit

MAX_MESSAGE = 300
"""Characters kept of an error message shown in a reason."""


class WrongOutput(Exception):
    """The learner's code ran but returned something unusable; the message is the reason shown."""


class NotAnswered(NotImplementedError):
    """A question in ``answers()`` has no answer yet; the message says which."""


class PlainDataError(ValueError):
    """A value cannot be turned into plain numbers, or a plain record is malformed."""


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_str(obj: object, limit: int = MAX_MESSAGE) -> str:
    """``str(obj)`` cut to ``limit`` characters; never raises and gives up after one second."""
    try:
        with time_limit(1.0):
            text = str(obj)
        if not isinstance(text, str):
            return "<unprintable>"
        return shorten(text, limit)
    except (Exception, TimeLimitExceeded):  # noqa: BLE001 - learner objects may raise anything
        return "<unprintable>"


def type_name(obj: object) -> str:
    """The name of ``obj``'s class, as learners read it (``ndarray``, ``list``, ``NoneType``)."""
    try:
        name = type(obj).__name__
        return name if isinstance(name, str) else "object"
    except Exception:  # noqa: BLE001 - learner objects may raise anything
        return "object"


def a_type(obj: object) -> str:
    """``"an int"``, ``"a str"``: the type of ``obj`` with its article, for messages."""
    name = type_name(obj)
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def describe_exception(error: BaseException) -> str:
    """One line: ``"ValueError: shapes (3,4) and (5,) not aligned"``; ``sys.exit`` is named."""
    if isinstance(error, SystemExit):
        code = error.code
        shown = repr(code)[:60] if isinstance(code, (int, str, type(None))) else safe_str(code, 60)
        return f"the code called sys.exit({shown})"
    if isinstance(error, MemoryError):
        return "MemoryError: ran out of memory"
    message = safe_str(error)
    name = type_name(error)
    return f"{name}: {message}" if message else name
