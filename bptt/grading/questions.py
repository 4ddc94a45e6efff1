"""Graded questions: a number or a choice the learner returns from ``answers()``.

Every exercise ends with a function ``answers()`` that returns a dict such as
``{"q1": 0.0144, "q2": "b"}``. Each question is one :class:`~bptt.grading.parts.Part` (1 point
unless stated) that needs ``answers``.

- :func:`number_question`: the expected number comes from ``compute()``, which runs a small
  experiment (autograd, a measured decay, a count) instead of storing the answer.
- :func:`prediction_question`: a number the learner predicts *before* the cell that measures
  it (a "predict, then run" exercise); scored by how many times off it is, with half marks for
  a prediction of the right order of magnitude.
- :func:`choice_question`: the expected letter comes from ``compute()`` where an experiment can
  decide it; for conceptual questions the module stores only a salted SHA-256 digest of the right
  letter (:func:`choice_digest`), so the answer is not written in the source. With three or four
  choices that hides the answer from a glance, not from a determined guess.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from .errors import NotAnswered, WrongOutput, a_type
from .hints import scalar_value
from .parts import Part, Verdict


def collect_answer(functions: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict:
    """COLLECT of a question: ``{key: answer}``; a choice must be text (``inputs["letters"]``)."""
    key, letters = inputs["key"], inputs["letters"]
    answer = answer_of(functions, key)
    if letters and not isinstance(answer, str):
        raise WrongOutput(
            f"{key} should be one of the letters {', '.join(letters)}, got {a_type(answer)}"
        )
    return {key: answer}


def _question_inputs(name: str, letters: str):
    return lambda seed: {"key": name, "letters": letters}


def answer_of(functions: Mapping[str, Any], key: str) -> Any:
    """Call the learner's ``answers()`` and return its entry ``key`` (COLLECT side)."""
    answers = functions["answers"]()
    if not isinstance(answers, Mapping):
        raise WrongOutput(
            f"answers() should return a dict like {{'q1': ...}}, got {a_type(answers)}"
        )
    if key not in answers or answers[key] is None or answers[key] is Ellipsis:
        raise NotAnswered(f"{key} is not answered yet")
    return answers[key]


def number_question(
    name: str,
    compute: Callable[[], float],
    *,
    rtol: float = 1e-2,
    atol: float = 0.0,
    points: float = 1,
) -> Part:
    """A question answered by one number, right within ``rtol`` (relative) or ``atol``."""

    def score(inputs, values):
        got = scalar_value(values, name, name)
        expected = float(compute())
        if abs(got - expected) <= max(rtol * abs(expected), atol):
            return Verdict.correct()
        tolerance = f"{rtol * 100:g}%" if rtol and not atol else f"{atol:g}"
        return Verdict.wrong(f"{name} is not right (checked to within {tolerance})")

    return Part(name, points, ("answers",), _question_inputs(name, ""), collect_answer, score)


def prediction_question(
    name: str,
    compute: Callable[[], float],
    *,
    factor: float = 1.5,
    points: float = 1,
) -> Part:
    """A predicted positive number: full marks within ``factor`` times the measured value (from
    ``compute()``), half marks within ``factor**2`` times, the reason saying too high or too low.
    """
    if not factor > 1:
        raise ValueError(f"factor: expected a number above 1, got {factor!r}")

    def score(inputs, values):
        got = scalar_value(values, name, name)
        expected = float(compute())
        if not got > 0:
            return Verdict.wrong(f"{name}: predict a positive number, got {got:g}")
        ratio = got / expected
        off = max(ratio, 1 / ratio)
        if off <= factor:
            return Verdict.correct()
        side = "too high" if ratio > 1 else "too low"
        if off <= factor**2:
            return Verdict(0.5, f"{name}: within {factor**2:g} times, but {side}")
        return Verdict.wrong(f"{name}: {side} by more than {factor**2:g} times")

    return Part(name, points, ("answers",), _question_inputs(name, ""), collect_answer, score)


def choice_digest(exercise_id: str, name: str, choice: str) -> str:
    """The salted digest :func:`choice_question` stores for the right ``choice``."""
    return hashlib.sha256(f"bptt:{exercise_id}:{name}:{choice}".encode()).hexdigest()


def _normalise(text: str) -> str:
    return text.strip().strip("().").strip().lower()


def choice_question(
    exercise_id: str,
    name: str,
    choices: str,
    *,
    compute: Callable[[], str] | None = None,
    digest: str | None = None,
    points: float = 1,
) -> Part:
    """A multiple-choice question with one-letter choices (``choices="abc"``).

    Give exactly one of ``compute`` (returns the right letter) and ``digest``
    (``choice_digest(exercise_id, name, letter)``).
    """
    if (compute is None) == (digest is None):
        raise ValueError("choice_question: give exactly one of compute= and digest=")
    letters = ", ".join(choices)

    def score(inputs, values):
        got = values.get(name)
        if not isinstance(got, str) or _normalise(got) not in choices or len(_normalise(got)) != 1:
            return Verdict.wrong(f"{name} should be one of the letters {letters}")
        choice = _normalise(got)
        right = (
            choice == compute() if compute else choice_digest(exercise_id, name, choice) == digest
        )
        return (
            Verdict.correct()
            if right
            else Verdict.wrong(f"{name}: {choice} is not the right choice")
        )

    return Part(name, points, ("answers",), _question_inputs(name, choices), collect_answer, score)
