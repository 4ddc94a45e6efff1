"""What a sandbox sees of the course: a read-only copy of the learner's library, without answers.

:func:`build_stage` writes, once per batch, a folder that the sandbox binds read-only:

- ``bptt/``: a copy of the installed learner library (never the editable checkout itself, so a
  submission cannot write into it, and ``solutions/`` or the tests are not there);
- ``bptt/grading/``: the answer-free pieces only (``parts``, ``plain``, ``errors``, ``limits``,
  ``hints``, ``questions``), a :func:`~bptt.grading.check` that does nothing, and each exercise
  module *pruned* to its COLLECT functions and what they reference (:func:`prune`): the SCORE
  functions, the reference computations and the digests of multiple-choice answers are left out;
- ``child.py``: the program the sandbox runs (:mod:`bptt_grader.child`);
- the ``.pyc`` files of ``bptt/``, compiled once per batch.

Private checks are pruned the same way and sent to the child as text, never as a file path.
"""

from __future__ import annotations

import ast
import compileall
import inspect
import os
import shutil
import stat
import sys
from pathlib import Path

import bptt
from bptt.grading import registry
from bptt.grading.parts import Exercise

INSIDE = "/grader"
"""Where the sandbox shows the stage (:mod:`bptt_grader.sandbox`)."""
SAFE_GRADING_MODULES = (
    "errors.py",
    "plain.py",
    "limits.py",
    "hints.py",
    "parts.py",
    "questions.py",
)
STUB_INIT = '''"""The course grader inside the batch grader's sandbox: the self-check does nothing here."""

from .errors import NotAnswered, WrongOutput
from .parts import Exercise, Part, PartResult, Verdict, collect_part, score_part


def check(exercise_id, /, **functions):
    """In the batch grader the self-check is switched off; the grader scores outside."""


def run_checks(*args, **kwargs):
    return []
'''


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    names = set()
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for target in targets:
        names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def prune(source: str, roots: set[str]) -> str:
    """``source`` reduced to its imports, the top-level definitions named in ``roots`` and,
    transitively, the top-level definitions those use. Docstrings and everything else go."""
    tree = ast.parse(source)
    definitions: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        for name in _bound_names(node):
            definitions.setdefault(name, []).append(node)
    wanted, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in wanted or name not in definitions:
            continue
        wanted.add(name)
        for node in definitions[name]:
            todo.extend(_used_names(node) - wanted)
    body = [
        node
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (_bound_names(node) & wanted)
    ]
    return ast.unparse(ast.Module(body=body, type_ignores=[])) + "\n"


def collect_roots(exercise: Exercise, module_name: str) -> set[str]:
    """The names of the COLLECT functions of ``exercise`` defined in ``module_name``, and the
    module's ``SANDBOX_NAMES`` (what unpickling its inputs needs)."""
    module = sys.modules.get(module_name)
    extra = set(getattr(module, "SANDBOX_NAMES", ()))
    return extra | {
        p.collect.__name__
        for p in exercise.parts
        if getattr(p.collect, "__module__", None) == module_name
    }


def collector_of(part) -> tuple[str, str]:
    """``(module, function name)`` of a part's COLLECT; ValueError unless it is top-level."""
    function = part.collect
    name = getattr(function, "__qualname__", "")
    if not inspect.isfunction(function) or "." in name:
        raise ValueError(
            f"part {part.name}: collect must be a top-level function of its module, got {name or function!r}"
        )
    return function.__module__, function.__name__


def pruned_private_checks(path: str | os.PathLike, exercises: list[Exercise]) -> str:
    """The private checks file pruned to the COLLECT functions of its parts."""
    roots = set()
    for exercise in exercises:
        roots |= collect_roots(exercise, registry.PRIVATE_MODULE)
    return prune(Path(path).read_text(encoding="utf-8"), roots)


def _readable(root: Path) -> None:
    """World-readable (the sandbox may run under an unprivileged user id)."""
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        extra = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        if path.is_dir():
            extra |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        path.chmod((mode | extra) & ~(stat.S_IWGRP | stat.S_IWOTH))


def build_stage(folder: Path, exercises: dict[str, Exercise]) -> Path:
    """Write the sandbox's read-only view of the course into ``folder``; return it."""
    source = Path(bptt.__file__).resolve().parent
    target = folder / "bptt"
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "grading"),
    )
    grading = target / "grading"
    (grading / "exercises").mkdir(parents=True)
    for name in SAFE_GRADING_MODULES:
        shutil.copy2(source / "grading" / name, grading / name)
    (grading / "__init__.py").write_text(STUB_INIT, encoding="utf-8")
    (grading / "selfcheck.py").write_text(STUB_INIT, encoding="utf-8")
    exercise_dir = source / "grading" / "exercises"
    (grading / "exercises" / "__init__.py").write_text('"""Pruned exercise checks."""\n')
    shutil.copy2(exercise_dir / "_support.py", grading / "exercises" / "_support.py")
    modules = registry._modules()
    for exercise_id, exercise in exercises.items():
        module = f"{registry.EXERCISES_PACKAGE}.{modules[exercise_id]}"
        text = (exercise_dir / f"{modules[exercise_id]}.py").read_text(encoding="utf-8")
        pruned = prune(text, collect_roots(exercise, module))
        (grading / "exercises" / f"{modules[exercise_id]}.py").write_text(pruned, encoding="utf-8")
    shutil.copy2(Path(__file__).with_name("child.py"), folder / "child.py")
    # compiled once here: the read-only stage would make every sandbox compile it again
    compileall.compile_dir(folder / "bptt", ddir=f"{INSIDE}/bptt", quiet=1)
    _readable(folder)
    return folder


def site_packages() -> list[str]:
    """The folders of the interpreter's installed packages (numpy, torch, IPython)."""
    return [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
