"""Exercises, their graded parts, and the two steps every part goes through: COLLECT and SCORE.

COLLECT (:func:`collect_part`) runs the learner's functions on inputs the part chooses and
reduces what they return to plain values (:mod:`bptt.grading.plain`). It is the only step that
touches learner code, so it catches every exception, stops after a time limit, and turns a
``NotImplementedError`` into "not implemented yet". SCORE (:func:`score_part`) rebuilds the same
inputs from the seed, computes the expected values independently (torch autograd, finite
differences, invariants), and compares: points plus a reason that names what is wrong without
giving the answer away.

The in-notebook self-check runs both steps in the learner's kernel; the batch grader
(:mod:`bptt_grader`) makes the inputs and SCOREs in its own process and runs only COLLECT, on
the inputs it sends, in a sandboxed child that returns plain JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import plain
from .errors import (
    NotAnswered,
    PlainDataError,
    WrongOutput,
    a_type,
    describe_exception,
    shorten,
    type_name,
)
from .limits import TimeLimitExceeded, time_limit

DEFAULT_TIME_LIMIT = 10.0
"""Seconds a part's COLLECT may take unless the part says otherwise."""
CORRECT = "correct"
NOT_IMPLEMENTED_REASON = "not implemented yet"

KINDS = ("implement", "derive", "find-the-bug", "predict-then-run", "measure")
"""The kinds of exercise the course has (an exercise is one or more of them):

- ``implement``: write a function, checked against an independent reference on chosen inputs;
- ``derive``: write a derived formula as a function, checked against autograd or Monte Carlo;
- ``find-the-bug``: fix an implementation with one planted bug (the check fails the planted one);
- ``predict-then-run``: record a number before the experiment cell that measures it;
- ``measure``: an open ablation or challenge with a measured target.
"""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXERCISE_ID = re.compile(r"^ex\d{2}$")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What SCORE decided: the fraction of the part's points earned (0..1) and why."""

    fraction: float
    reason: str

    @classmethod
    def correct(cls) -> Verdict:
        return cls(1.0, CORRECT)

    @classmethod
    def wrong(cls, reason: str) -> Verdict:
        return cls(0.0, reason)

    @classmethod
    def from_hints(cls, hints: list[str | None], context: str = "") -> Verdict:
        """Correct when every hint is None, else wrong with (at most three) hints joined.

        Hints ``"<what>: <why>"`` with the same ``<why>`` are merged (``"the 'x' gradient and
        the 'b' gradient: <why>"``); ``context`` (``"with T = 1"``) is put in front.
        """
        grouped: dict[str, list[str]] = {}
        for hint in filter(None, hints):
            what, sep, why = hint.partition(": ")
            subjects = grouped.setdefault(why if sep else hint, [])
            if sep and what not in subjects:
                subjects.append(what)
        if not grouped:
            return cls.correct()
        merged = []
        for why, whats in grouped.items():
            subject = " and ".join([", ".join(whats[:-1]), whats[-1]] if len(whats) > 1 else whats)
            merged.append(f"{subject}: {why}" if subject else why)
        message = "; ".join(merged[:3])
        return cls.wrong(f"{context}, {message}" if context else message)

    @classmethod
    def from_cases(cls, cases: Iterable[tuple[str, list[str | None]]]) -> Verdict:
        """The verdict of the first ``(context, hints)`` case with a hint, else correct.

        ``cases`` may be a generator: cases after the first failing one are never computed.
        """
        for context, hints in cases:
            verdict = cls.from_hints(hints, context)
            if verdict.fraction < 1:
                return verdict
        return cls.correct()


@dataclasses.dataclass(frozen=True)
class Part:
    """One graded part of an exercise.

    - ``name``: identifier shown in reports (``"step_backward"``, ``"q1"``).
    - ``points``: what the part is worth.
    - ``needs``: names of the learner's functions the part calls (looked up in the notebook's
      namespace by the batch grader, passed as keywords to :func:`bptt.grading.check`).
    - ``make_inputs(seed)``: the inputs, deterministic in ``seed``; called once by COLLECT and
      again by SCORE, so a learner mutating an input in place changes nothing.
    - ``collect(functions, inputs)``: calls the learner's functions and returns
      ``{name: value}``; values are encoded by :func:`bptt.grading.plain.to_plain`. Raise
      :class:`~bptt.grading.errors.WrongOutput` with a clear message when the result is unusable.
    - ``score(inputs, values)``: compares the decoded values with independently computed
      expected ones and returns a :class:`Verdict`.
    - ``time_limit``: seconds for COLLECT.
    - ``error_hints``: ``(substring, hint)`` pairs; when the learner's code raised an error
      whose message contains ``substring``, the hint is added to the reason.
    - ``forbidden``: library functions the part asks the learner to write themselves (tripwires
      in the batch grader, :mod:`bptt_grader.child`).
    - ``substitutes``: ``(name, reference)`` pairs for partial credit (:func:`score_part`): the
      part is collected a second time with the learner's function ``name`` replaced by the
      top-level function ``reference`` of the learner library (:func:`substituted`), so a bug
      in ``name`` costs only the parts that grade ``name`` itself.

    The batch grader runs ``collect`` in a sandbox that sees only a pruned copy of the module
    defining it (``collect`` and what it references; :mod:`bptt_grader.stage`): ``collect`` must
    be a top-level function and must not depend on anything that gives the answer away.
    """

    name: str
    points: float
    needs: tuple[str, ...]
    make_inputs: Callable[[int], Any]
    collect: Callable[[Mapping[str, Any], Any], Mapping[str, Any]]
    score: Callable[[Any, Mapping[str, Any]], Verdict]
    time_limit: float = DEFAULT_TIME_LIMIT
    error_hints: tuple[tuple[str, str], ...] = ()
    forbidden: tuple[str, ...] = ()
    """Dotted names (``"torch.nn.utils.clip_grad_norm_"``) of functions this part asks the learner
    to write: while the batch grader collects the part, calling one of them fails with a reason."""
    substitutes: tuple[tuple[str, Callable], ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"name: expected an identifier like 'step_backward', got {self.name!r}"
            )
        if not isinstance(self.points, (int, float)) or not self.points > 0:
            raise ValueError(f"points: expected a positive number, got {self.points!r}")
        if (
            not isinstance(self.needs, tuple)
            or not self.needs
            or not all(isinstance(n, str) and _NAME.match(n) for n in self.needs)
        ):
            raise ValueError(
                f"needs: expected a non-empty tuple of identifiers, got {self.needs!r}"
            )
        for field in ("make_inputs", "collect", "score"):
            if not callable(getattr(self, field)):
                raise TypeError(
                    f"{field}: expected a callable, got {type_name(getattr(self, field))}"
                )
        if not isinstance(self.forbidden, tuple) or not all(
            isinstance(n, str) and "." in n for n in self.forbidden
        ):
            raise ValueError(
                f"forbidden: expected a tuple of dotted names like 'torch.nn.init.orthogonal_', got {self.forbidden!r}"
            )
        if not self.time_limit > 0:
            raise ValueError(
                f"time_limit: expected a positive number of seconds, got {self.time_limit!r}"
            )

        def top_level(pair) -> bool:
            name, function = pair if isinstance(pair, tuple) and len(pair) == 2 else ("", None)
            named = isinstance(name, str) and _NAME.match(name)
            return bool(named) and inspect.isfunction(function) and "." not in function.__qualname__

        if not isinstance(self.substitutes, tuple) or not all(map(top_level, self.substitutes)):
            raise ValueError(
                f"substitutes: expected (name, top-level function) pairs, got {self.substitutes!r}"
            )


@dataclasses.dataclass(frozen=True)
class Exercise:
    """An exercise: its id (``"ex04"``), a title, its parts in the order they are graded, and the
    kinds of exercise it is (a non-empty tuple drawn from :data:`KINDS`)."""

    id: str
    title: str
    parts: tuple[Part, ...]
    kinds: tuple[str, ...] = ("implement",)

    def __post_init__(self):
        if not isinstance(self.id, str) or not _EXERCISE_ID.match(self.id):
            raise ValueError(f"id: expected an exercise id like 'ex04', got {self.id!r}")
        if (
            not isinstance(self.kinds, tuple)
            or not self.kinds
            or not set(self.kinds) <= set(KINDS)
            or len(set(self.kinds)) != len(self.kinds)
        ):
            raise ValueError(
                f"kinds: expected a non-empty tuple of distinct kinds from {KINDS}, got {self.kinds!r}"
            )
        if not isinstance(self.parts, tuple) or not all(isinstance(p, Part) for p in self.parts):
            raise TypeError(f"parts: expected a tuple of Part, got {type_name(self.parts)}")
        names = [p.name for p in self.parts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parts: the part names {duplicates} of {self.id} are not unique")

    @property
    def max_points(self) -> float:
        return sum(p.points for p in self.parts)

    @property
    def names(self) -> tuple[str, ...]:
        """Every learner function some part needs, in order of first use."""
        return tuple(dict.fromkeys(n for p in self.parts for n in p.needs))

    def part(self, name: str) -> Part:
        """The part called ``name``; ``KeyError`` naming the parts there are otherwise."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(
            f"{self.id} has no part {name!r} (parts: {', '.join(p.name for p in self.parts)})"
        )

    def forbidding(self, forbidden: Mapping[str, tuple[str, ...]]) -> Exercise:
        """This exercise with ``forbidden[part name]`` as the tripwires of those parts."""
        unknown = sorted(set(forbidden) - set(self.names_of_parts))
        if unknown:
            raise KeyError(f"{self.id} has no parts {unknown}")
        parts = tuple(
            dataclasses.replace(p, forbidden=tuple(forbidden[p.name])) if p.name in forbidden else p
            for p in self.parts
        )
        return dataclasses.replace(self, parts=parts)

    @property
    def names_of_parts(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts)

    def with_parts(self, extra: tuple[Part, ...]) -> Exercise:
        """This exercise with ``extra`` parts appended (names must stay unique)."""
        return dataclasses.replace(self, parts=self.parts + tuple(extra))


@dataclasses.dataclass(frozen=True)
class PartResult:
    """The score of one part: points out of ``max_points`` and the reason."""

    exercise: str
    part: str
    points: float
    max_points: float
    reason: str

    def as_dict(self) -> dict:
        return {
            "part": self.part,
            "points": self.points,
            "max_points": self.max_points,
            "reason": self.reason,
        }


_ABSENT = object()


@contextlib.contextmanager
def substituted(functions: Mapping[str, Any], needs: tuple[str, ...], replacements: Mapping):
    """Inside the block, each name of ``replacements`` in the global namespace of the learner's
    functions ``needs`` means the replacement (their ``backward`` calling ``step_backward`` calls
    the reference); restored afterwards."""
    found = (getattr(functions.get(name), "__globals__", None) for name in needs)
    scopes = {id(g): g for g in found if isinstance(g, dict)}
    saved = [(g, k, g.get(k, _ABSENT)) for g in scopes.values() for k in replacements]
    try:
        for scope, name, _ in saved:
            scope[name] = replacements[name]
        yield
    finally:
        for scope, name, old in reversed(saved):
            if old is _ABSENT:
                scope.pop(name, None)
            else:
                scope[name] = old


def collect_part(
    part: Part,
    functions: Mapping[str, Any],
    seed: int,
    time_limit_s: float | None = None,
    replacements: Mapping[str, Any] | None = None,
) -> dict:
    """COLLECT: run the learner's functions for ``part``; return a plain record. Never raises.

    ``time_limit_s`` overrides the part's own time limit; ``replacements`` (``{name: function}``)
    are :func:`substituted` in while it runs.
    """
    try:
        inputs = part.make_inputs(seed)
    except BaseException as error:  # noqa: BLE001 - a fault of the check, reported as such
        return {"status": plain.ERROR, "message": f"internal error: {describe_exception(error)}"}
    with substituted(functions, part.needs, replacements or {}):
        return collect_with_inputs(
            part.name, part.needs, part.collect, inputs, functions, time_limit_s or part.time_limit
        )


def collect_with_inputs(
    name: str,
    needs: tuple[str, ...],
    collect: Callable[[Mapping[str, Any], Any], Mapping[str, Any]],
    inputs: Any,
    functions: Mapping[str, Any],
    limit: float,
) -> dict:
    """COLLECT on given ``inputs`` (the batch grader's child gets them from its parent)."""
    absent = [n for n in needs if n not in functions]
    if absent:
        listed = ", ".join(absent)
        verb = "is" if len(absent) == 1 else "are"
        return {"status": plain.MISSING, "message": f"{listed} {verb} not defined in the notebook"}
    for n in needs:
        if not callable(functions[n]):
            message = f"{n} is {a_type(functions[n])}, expected a function (pass {n}, not {n}())"
            return {"status": plain.MISSING, "message": message}
    try:
        with time_limit(limit):
            raw = collect(functions, inputs)
            if not isinstance(raw, Mapping):
                raise TypeError(f"collect of part {name} returned {type_name(raw)}, not a dict")
            values = {key: plain.to_plain(value, key) for key, value in raw.items()}
    except TimeLimitExceeded:
        message = f"did not finish within {limit:g} s (an endless loop?)"
        return {"status": plain.TIMEOUT, "message": message}
    except NotAnswered as error:
        return {"status": plain.NOT_IMPLEMENTED, "message": shorten(error)}
    except NotImplementedError:
        return {"status": plain.NOT_IMPLEMENTED, "message": NOT_IMPLEMENTED_REASON}
    except (WrongOutput, PlainDataError) as error:
        return {"status": plain.ERROR, "message": shorten(error)}
    except BaseException as error:  # noqa: BLE001 - learner code: anything, SystemExit too
        return {"status": plain.ERROR, "message": describe_exception(error)}
    return {"status": plain.OK, "values": values}


def _reason_for_failure(part: Part, status: str, message: str) -> str:
    if status == plain.ERROR:
        hints = [hint for needle, hint in part.error_hints if needle in message]
        if hints:
            return f"{shorten(message, 160)} - hint: {hints[0]}"
    return message


def score_part(
    part: Part, record: object, seed: int, exercise_id: str, substituted_record: object = None
) -> PartResult:
    """SCORE: turn a record from :func:`collect_part` into points and a reason. Never raises.

    The records may come from an untrusted process: they are validated before use. A part with
    ``substitutes`` may also get the record collected with the references in place of the
    learner's functions: when that one scores better, it counts (so a bug in ``step_backward``
    does not cost ``backward`` too), and the reason says that the learner's own function
    breaks the part (with its own reason); when not, a reason of its own is added, if it
    differs (the loop around the step is wrong too).
    """
    own = _score_one(part, record, seed, exercise_id)
    if substituted_record is None or not part.substitutes or own.points == own.max_points:
        return own
    other = _score_one(part, substituted_record, seed, exercise_id)
    if other.reason == own.reason:
        return own
    names = " and ".join(name for name, _ in part.substitutes)
    theirs = f"with the course's {names} in place of yours: {shorten(other.reason, 160)}"
    if other.points > own.points:
        return dataclasses.replace(other, reason=f"{theirs}; with your own {names}: {own.reason}")
    return dataclasses.replace(own, reason=f"{own.reason}; and {theirs}")


def _score_one(part: Part, record: object, seed: int, exercise_id: str) -> PartResult:

    def result(fraction: float, reason: str) -> PartResult:
        return PartResult(
            exercise_id, part.name, round(part.points * fraction, 2), part.points, reason
        )

    try:
        status, payload = plain.parse_record(record)
    except PlainDataError as error:
        return result(0.0, f"the grading process returned unreadable output ({error})")
    if status != plain.OK:
        return result(0.0, _reason_for_failure(part, status, payload))
    try:
        verdict = part.score(part.make_inputs(seed), payload)
    except WrongOutput as error:
        return result(0.0, shorten(error))
    except Exception as error:  # noqa: BLE001 - odd output must cost points, not crash
        return result(0.0, f"could not score this output ({describe_exception(error)})")
    fraction = float(verdict.fraction)
    fraction = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0
    return result(fraction, verdict.reason)
