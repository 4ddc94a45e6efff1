"""Timing a call the way the course and its benchmarks do: medians, in turns, after warm-up.

A chapter that shows a timing and a benchmark that writes a table use these same functions, so
every time in the course is the median of several runs (not the minimum of a few), taken after
untimed warm-up runs, and contenders are timed in turns so that a change of load on a shared
machine affects all of them alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

Clock = Callable[[], float]

WALL: Clock = time.perf_counter
"""Wall-clock time: what a user waits (the default)."""

CPU: Clock = time.process_time
"""CPU time of this process: for single-threaded code, roughly the wall time on an idle
machine. On a shared machine it leaves out the time other processes hold the core."""


def time_call(
    fn: Callable[[], Any], *, repeats: int = 7, warmup: int = 2, clock: Clock = WALL,
    sync: Callable[[], Any] | None = None,
) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs.

    ``sync`` (for example ``torch.cuda.synchronize``) runs after every call, inside the timed
    span, so that asynchronous GPU work is counted where it is done.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if sync is not None and not callable(sync):
        raise TypeError(f"sync must be callable or None, got {type(sync).__name__}")

    def call() -> None:
        fn()
        if sync is not None:
            sync()

    return time_interleaved({"fn": call}, repeats=repeats, warmup=warmup, clock=clock)["fn"]


def time_interleaved(
    fns: dict[str, Callable[[], Any]], *, repeats: int = 7, warmup: int = 2, clock: Clock = WALL
) -> dict[str, float]:
    """Median seconds of each function, timed in turns (one run of each per round).

    On a shared machine the load changes during a benchmark; taking turns exposes every
    contender to the same conditions, so the ratios of the medians stay fair.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
