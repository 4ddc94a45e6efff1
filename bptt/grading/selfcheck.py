"""The in-notebook self-check: ``check("ex04", step_backward=step_backward)``.

It runs COLLECT and SCORE (see :mod:`bptt.grading.parts`) for every part whose functions were
passed, in the learner's kernel, and prints one line per part: the points and either "correct"
or a hint. The record goes through JSON in between, exactly as in the batch grader, so the
self-check and the grader see the same plain data.

Inside the batch grader's sandbox this module is replaced by a ``check`` that does nothing
(:mod:`bptt_grader.stage`): the grader scores in its own process, and the check cells still run,
so helpers defined in them exist as in Jupyter. :func:`enter_batch_mode` does the same in a
process of your own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .parts import PartResult, collect_part, score_part
from .registry import get_exercise

SELF_CHECK_SEED = 0
"""Seed of the self-check's inputs. The batch grader uses its own (``--seed``, default 1)."""

_batch_mode = False


def enter_batch_mode() -> None:
    """Make :func:`check` a no-op in this process (the batch grader's child calls this)."""
    global _batch_mode
    _batch_mode = True


def _json_round_trip(record: dict) -> object:
    return json.loads(json.dumps(record))


def run_checks(
    exercise_id: str, functions: Mapping[str, Any], *, seed: int = SELF_CHECK_SEED
) -> list[PartResult]:
    """Score every part of ``exercise_id`` whose needed functions are all in ``functions``.

    As in the batch grader, the parts with ``substitutes`` are collected again with the
    references in place after every part has been collected once (:func:`score_part`).
    """
    exercise = get_exercise(exercise_id)
    parts = [p for p in exercise.parts if all(name in functions for name in p.needs)]
    records = [_json_round_trip(collect_part(part, functions, seed)) for part in parts]
    again = [
        _json_round_trip(collect_part(p, functions, seed, replacements=dict(p.substitutes)))
        if p.substitutes
        else None
        for p in parts
    ]
    return [
        score_part(part, record, seed, exercise.id, other)
        for part, record, other in zip(parts, records, again)
    ]


def format_points(points: float) -> str:
    """3.0 -> "3", 1.5 -> "1.5"."""
    return f"{points:g}"


def format_result(result: PartResult) -> str:
    """``"[ex04] step_backward: 3/3 points - correct"``."""
    return (
        f"[{result.exercise}] {result.part}: {format_points(result.points)}/"
        f"{format_points(result.max_points)} points - {result.reason}"
    )


def check(exercise_id: str, /, **functions: Any) -> None:
    """Check your functions for exercise ``exercise_id`` and print points and hints per part.

    Pass each function by its name in the exercise, for example
    ``check("ex04", step_backward=step_backward)``, or several at once for a total. Parts whose
    functions you did not pass are skipped. Nothing here raises on a mistake in your code.
    """
    if _batch_mode:
        return
    exercise = get_exercise(exercise_id)
    known = exercise.names
    unknown = [name for name in functions if name not in known]
    if unknown:
        print(
            f"{exercise.id} checks {', '.join(known)}; it has nothing called {', '.join(unknown)}."
        )
    results = run_checks(exercise.id, {k: v for k, v in functions.items() if k in known})
    if not results:
        print(
            f"Nothing to check: pass your functions, e.g. check({exercise.id!r}, {known[0]}={known[0]})."
        )
        return
    lines = [format_result(result) for result in results]
    if len(results) > 1:
        total = sum(r.points for r in results)
        most = sum(r.max_points for r in results)
        lines.append(f"Total: {format_points(total)}/{format_points(most)} points")
    print("\n".join(lines))  # one write: the notebook shows it as one output
