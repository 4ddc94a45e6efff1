"""A wall-clock time limit for a block of Python code, by SIGALRM.

Used by the in-notebook self-check (each part gets a few seconds) and by the batch grader's child
process (each cell and each part). The limit interrupts Python code between bytecodes, so an
endless ``while True`` loop stops; a single long call into C (one huge matrix product) ends
only when it returns, which is why the batch grader also kills the whole child process on a
wall-clock timeout.

Where SIGALRM does not exist (Windows) or outside the main thread, the block runs without a
limit: a self-check there can hang on an endless loop, and the batch grader's process timeout
still applies.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator


class TimeLimitExceeded(BaseException):
    """Raised inside the limited block when its time is up.

    A ``BaseException`` so that learner code catching ``Exception`` does not swallow it.
    """


def limits_available() -> bool:
    """Whether :func:`time_limit` can interrupt code here (POSIX, main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` of wall-clock time.

    ``seconds=None`` (or no SIGALRM here) means no limit. Limits nest: an inner block gets at
    most the time the outer one has left, and the outer timer runs on after it.
    """
    if seconds is None or not limits_available():
        yield
        return
    if seconds <= 0:
        raise ValueError(f"seconds: expected a positive number of seconds or None, got {seconds!r}")

    def _expired(signum, frame):
        raise TimeLimitExceeded(seconds)

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.signal(signal.SIGALRM, _expired)
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_left) if outer_left else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
