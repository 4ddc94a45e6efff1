"""Submitted notebooks as data: read them defensively, find their exercise, run their code.

Notebooks are read with :mod:`json` (not nbformat: the grader needs no Jupyter install and a
corrupt file must give a clear reason, not a traceback). The exercise id comes from the
notebook's metadata (``metadata["bptt"]["exercise"] == "ex04"``), so a renamed file still
grades; a name containing ``exNN`` is the fallback.

:func:`run_cells` executes code cells in one namespace, in order, the way "Run all" would but
without a Jupyter kernel: IPython magics and shell lines are dropped, every cell gets a time
limit, and a failing cell is recorded and skipped instead of stopping the run, so one broken cell
costs only the parts that depend on it. Cells tagged ``bootstrap`` (the Colab installer) or
``check`` (self-check calls) are not run by the grader.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import describe_exception, shorten
from .limits import TimeLimitExceeded, time_limit

MAX_NOTEBOOK_BYTES = 20 * 2**20
SKIPPED_TAGS = frozenset({"bootstrap", "check"})
_EXERCISE_IN_NAME = re.compile(r"(ex\d{2})")
_EXERCISE_ID = re.compile(r"^ex\d{2}$")
_CELL_MAGICS_KEPT = frozenset({"time", "capture", "timeit"})


class NotebookError(ValueError):
    """The file is not a notebook the grader can read; the message says why."""


@dataclasses.dataclass(frozen=True)
class CodeCell:
    """A code cell: its 1-based number among the code cells, its source and its tags."""

    number: int
    source: str
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``"code cell 3 (def step_backward(...)"``: how reasons refer to the cell."""
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        return (
            f"code cell {self.number} ({shorten(first, 40)})"
            if first
            else f"code cell {self.number}"
        )


def read_notebook(path: str | Path) -> dict:
    """The notebook at ``path`` as a dict; :class:`NotebookError` if it is not one."""
    path = Path(path)
    if path.suffix != ".ipynb":
        raise NotebookError(f"not a notebook: {path.name} (expected a .ipynb file)")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"the notebook is too large ({size / 2**20:.0f} MiB)")
    try:
        notebook = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise NotebookError("not a notebook: the file is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise NotebookError(
            f"not a notebook: invalid JSON ({error.msg} at line {error.lineno})"
        ) from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookError("not a notebook: the JSON has no list of cells")
    if notebook.get("nbformat") != 4:
        raise NotebookError(
            f"unsupported notebook format {notebook.get('nbformat')!r} (expected 4)"
        )
    return notebook


def exercise_of(notebook: Mapping, filename: str) -> str | None:
    """The exercise id from the metadata, else from ``filename``; None if neither says."""
    metadata = notebook.get("metadata")
    bptt = metadata.get("bptt") if isinstance(metadata, Mapping) else None
    if isinstance(bptt, Mapping):
        exercise = bptt.get("exercise")
        if isinstance(exercise, str) and _EXERCISE_ID.match(exercise):
            return exercise
    match = _EXERCISE_IN_NAME.search(filename)
    return match.group(1) if match else None


def _source(cell: Mapping) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _tags(cell: Mapping) -> tuple[str, ...]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
    return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()


def code_cells(notebook: Mapping, *, skip_tags: frozenset[str] = SKIPPED_TAGS) -> list[CodeCell]:
    """The code cells to run, numbered as the learner counts them, minus those tagged ``skip_tags``."""
    cells = [
        c
        for c in notebook.get("cells", [])
        if isinstance(c, Mapping) and c.get("cell_type") == "code"
    ]
    numbered = [CodeCell(i, _source(c), _tags(c)) for i, c in enumerate(cells, start=1)]
    return [c for c in numbered if not skip_tags.intersection(c.tags)]


def strip_magics(source: str) -> str:
    """Python source with IPython syntax neutralised.

    Line magics (``%matplotlib inline``) and shell lines (``!pip install x``) become ``pass``
    at the same indentation; a cell magic keeps its body for ``%%time``/``%%capture``/
    ``%%timeit`` and empties the cell for any other (``%%bash``: not Python).
    """
    lines = source.splitlines()
    if lines and lines[0].startswith("%%"):
        magic = lines[0][2:].split()[0] if lines[0][2:].split() else ""
        if magic not in _CELL_MAGICS_KEPT:
            return ""
        lines = lines[1:]
    kept = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            kept.append(line[: len(line) - len(stripped)] + "pass")
        else:
            kept.append(line)
    return "\n".join(kept) + "\n"


def fresh_namespace() -> dict:
    """The globals a notebook starts with: ``__main__``, builtins, and a silent ``display``."""
    return {
        "__name__": "__main__",
        "__builtins__": builtins,
        "display": lambda *args, **kwargs: None,
    }


def run_cells(
    cells: list[CodeCell],
    namespace: dict,
    *,
    cell_time_limit: float | None,
    before_cell: Callable[[CodeCell], None] | None = None,
) -> list[str]:
    """Execute ``cells`` in ``namespace``; return one line per failed cell. Never raises."""
    errors = []
    for cell in cells:
        if before_cell is not None:
            before_cell(cell)
        try:
            code = compile(strip_magics(cell.source), f"<code cell {cell.number}>", "exec")
        except SyntaxError as error:
            errors.append(
                f"{cell.label}: SyntaxError: {shorten(error.msg, 120)} (line {error.lineno})"
            )
            continue
        except Exception as error:  # noqa: BLE001 - NUL bytes (ValueError), deep nesting, ...
            errors.append(f"{cell.label}: {describe_exception(error)}")
            continue
        try:
            with time_limit(cell_time_limit):
                exec(code, namespace)  # noqa: S102 - running the notebook is the point
        except TimeLimitExceeded:
            errors.append(f"{cell.label}: stopped after {cell_time_limit:g} s (an endless loop?)")
        except BaseException as error:  # noqa: BLE001 - learner code: anything, SystemExit too
            errors.append(f"{cell.label}: {describe_exception(error)}")
    return errors


def notebook_namespace(
    path: str | Path, *, cell_time_limit: float | None = None
) -> tuple[dict, list[str]]:
    """Run the gradable code cells of the notebook at ``path`` in this process.

    Returns the resulting namespace and the failed cells; handy for testing an exercise's
    functions in-process. (The batch grader runs every cell, check and bootstrap cells too,
    through IPython's input transformers: :mod:`bptt_grader.child`.)
    """
    namespace = fresh_namespace()
    errors = run_cells(code_cells(read_notebook(path)), namespace, cell_time_limit=cell_time_limit)
    return namespace, errors
