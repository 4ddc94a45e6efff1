"""Where exercises come from: the modules of :mod:`bptt.grading.exercises`, plus private checks.

An exercise lives in ``bptt/grading/exercises/exNN_topic.py`` and defines ``EXERCISE``, an
:class:`~bptt.grading.parts.Exercise` whose id is ``exNN``. Modules are found by name and
imported only when their exercise is asked for, so checking ex04 never imports torch for ex11.

Private checks: an instructor can keep extra parts out of the repository in a Python file and
point the environment variable ``BPTT_PRIVATE_CHECKS`` at it (or pass ``--private-checks`` to
the batch grader). The file defines ``PARTS``, a dict from exercise id to a list of parts::

    # private_checks.py
    from bptt.grading import Part, Verdict
    PARTS = {"ex04": [Part("held_out", 2, ("step_backward",), make_inputs, collect, score)]}

Those parts are graded after the public ones, under their own names.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import runpy
from collections.abc import Mapping
from pathlib import Path

from .errors import describe_exception, type_name
from .parts import Exercise, Part

PRIVATE_CHECKS_ENV = "BPTT_PRIVATE_CHECKS"
EXERCISES_PACKAGE = "bptt.grading.exercises"
_MODULE_NAME = re.compile(r"^(ex\d{2})_[a-z0-9_]+$")
PRIVATE_MODULE = "bptt_private_checks"
"""The module name a private checks file runs under (its COLLECT functions name it)."""
FROM_ENVIRONMENT = "from-environment"
"""Default of ``private_checks``: read the path from ``BPTT_PRIVATE_CHECKS`` (if set)."""


def _modules() -> dict[str, str]:
    """Exercise id -> module name, from the file names (nothing is imported)."""
    package = importlib.import_module(EXERCISES_PACKAGE)
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(package.__path__):
        match = _MODULE_NAME.match(info.name)
        if match:
            if match.group(1) in found:
                raise RuntimeError(
                    f"two modules define exercise {match.group(1)}: {found[match.group(1)]}, {info.name}"
                )
            found[match.group(1)] = info.name
    return found


def exercise_ids() -> list[str]:
    """The ids of the public exercises, sorted (``["ex03", "ex04", ...]``)."""
    return sorted(_modules())


def _public_exercise(exercise_id: str) -> Exercise:
    modules = _modules()
    if exercise_id not in modules:
        known = ", ".join(sorted(modules)) or "none"
        raise ValueError(f"exercise_id: unknown exercise {exercise_id!r} (known: {known})")
    module = importlib.import_module(f"{EXERCISES_PACKAGE}.{modules[exercise_id]}")
    exercise = getattr(module, "EXERCISE", None)
    if not isinstance(exercise, Exercise) or exercise.id != exercise_id:
        raise RuntimeError(
            f"{module.__name__} must define EXERCISE = Exercise(id={exercise_id!r}, ...)"
        )
    return exercise


def load_private_parts(path: str | os.PathLike) -> dict[str, tuple[Part, ...]]:
    """Run the private checks file at ``path`` and return its ``PARTS``, validated."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"private checks: no such file {str(path)!r} (from {PRIVATE_CHECKS_ENV} or --private-checks)"
        )
    try:
        namespace = runpy.run_path(str(path), run_name=PRIVATE_MODULE)
    except Exception as error:
        raise ValueError(
            f"private checks {path.name} failed to load: {describe_exception(error)}"
        ) from error
    parts = namespace.get("PARTS")
    if not isinstance(parts, Mapping):
        raise TypeError(
            f"private checks {path.name}: expected PARTS = {{'ex04': [Part, ...]}}, got {type_name(parts)}"
        )
    known = set(_modules())
    loaded: dict[str, tuple[Part, ...]] = {}
    for exercise_id, extra in parts.items():
        if exercise_id not in known:
            raise ValueError(f"private checks {path.name}: unknown exercise {exercise_id!r}")
        extra = tuple(extra)
        if not all(isinstance(p, Part) for p in extra):
            raise ValueError(
                f"private checks {path.name}: PARTS[{exercise_id!r}] must hold Part objects"
            )
        loaded[exercise_id] = extra
    return loaded


def private_checks_path(private_checks: str | os.PathLike | None = FROM_ENVIRONMENT) -> str | None:
    """Resolve the ``private_checks`` argument: a path, None, or the environment's path."""
    if private_checks == FROM_ENVIRONMENT:
        return os.environ.get(PRIVATE_CHECKS_ENV) or None
    return None if private_checks is None else os.fspath(private_checks)


def get_exercise(
    exercise_id: str, private_checks: str | os.PathLike | None = FROM_ENVIRONMENT
) -> Exercise:
    """The exercise ``exercise_id`` with its public parts, then any private parts for it.

    ``private_checks``: a path to a private checks file, None for none, or (default) the path
    in ``BPTT_PRIVATE_CHECKS`` if that variable is set. Raises ``ValueError`` for an unknown id.
    """
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise_id: expected a str like 'ex04', got {type_name(exercise_id)}")
    exercise = _public_exercise(exercise_id)
    path = private_checks_path(private_checks)
    if path:
        exercise = exercise.with_parts(load_private_parts(path).get(exercise_id, ()))
    return exercise
