"""Turn a solution notebook into the student's exercise notebook (a maintainer tool: its users are
tools/make_exercises.py and the tests of the exercise notebooks).

The solution notebook is the source of truth. In its code cells, the lines between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` (markers included) become a stub at the marker's
indentation::

    # YOUR CODE HERE
    raise NotImplementedError

Solution code must sit inside a function (an indented marker): a stub at the top level of a cell
would raise when the notebook runs, so :func:`strip_code` refuses it. In markdown cells, lines
between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` are removed (a cell left empty
is dropped), the title ``# Solution N: ...`` becomes ``# Exercise N: ...``, and an Open-in-Colab
link to the solution notebook becomes a link to the exercise notebook.

A *find-the-bug* exercise shows the learner code with one planted bug instead of a stub: the
solution cell holds the fixed code (tagged ``hide-input``, no markers needed) and carries the
planted version in its metadata, ``{"bptt": {"planted": "<the whole cell's source>"}}``; the
exercise cell gets the planted source (and loses the tag). The tests of the exercise prove that
the planted source loses points with a specific hint.

In the published solution, solution code cells carry the tag ``hide-input`` (the book folds them
until the reader opens them) and solution prose sits in a ``{dropdown}``; the exercise's stub
cells lose that tag, so the student sees what to write. Everything else, metadata included, is
copied unchanged; outputs are cleared for the exercise to be executed.
"""

from __future__ import annotations

import copy
import re

CODE_BEGIN = "# BEGIN SOLUTION"
CODE_END = "# END SOLUTION"
MARKDOWN_BEGIN = "<!-- BEGIN SOLUTION -->"
MARKDOWN_END = "<!-- END SOLUTION -->"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError")
_TITLE = re.compile(r"^# Solution (\d+):")
FOLD_TAG = "hide-input"  # Jupyter Book: the cell's source is collapsed behind a toggle
PLANTED_KEY = "planted"  # cell.metadata["bptt"][PLANTED_KEY]: the source the learner debugs


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _regions(lines: list[str], begin: str, end: str, where: str):
    """Yield (start, stop, indent) of each marked region; ValueError if markers do not pair."""
    start = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == begin:
            if start is not None:
                raise ValueError(
                    f"{where}: {begin!r} at line {i + 1} inside another solution region"
                )
            start = i
        elif stripped == end:
            if start is None:
                raise ValueError(f"{where}: {end!r} at line {i + 1} without {begin!r}")
            yield start, i, lines[start][: len(lines[start]) - len(lines[start].lstrip())]
            start = None
    if start is not None:
        raise ValueError(f"{where}: {begin!r} at line {start + 1} is never closed")


def strip_code(source: str, where: str = "code cell") -> str:
    """``source`` with every solution region replaced by the stub at the region's indentation."""
    lines = source.split("\n")
    out: list[str] = []
    position = 0
    for start, stop, indent in _regions(lines, CODE_BEGIN, CODE_END, where):
        if not indent:
            raise ValueError(f"{where}: the solution at line {start + 1} is not inside a function")
        out.extend(lines[position:start])
        out.extend(indent + line for line in STUB)
        position = stop + 1
    out.extend(lines[position:])
    return "\n".join(out)


def _own_notebook_links(source: str) -> str:
    """Open-in-Colab links of the solution point at the exercise notebook instead."""
    return re.sub(r"(colab\.research\.google\.com/github/\S+?/blob/[^/]+/)solutions/", r"\1exercises/", source)


def strip_markdown(source: str, where: str = "markdown cell") -> str:
    """``source`` without its solution regions, and a ``# Solution N:`` title made ``# Exercise N:``."""
    lines = source.split("\n")
    out: list[str] = []
    position = 0
    for start, stop, _ in _regions(lines, MARKDOWN_BEGIN, MARKDOWN_END, where):
        out.extend(lines[position:start])
        position = stop + 1
    out.extend(lines[position:])
    text = "\n".join(_TITLE.sub(r"# Exercise \1:", line) for line in out)
    return text.strip("\n") if position else text


def has_solution(source: str) -> bool:
    """Whether ``source`` contains a solution marker of either kind."""
    return any(marker in source for marker in (CODE_BEGIN, MARKDOWN_BEGIN))


def planted_source(cell: dict) -> str | None:
    """The planted (buggy) source a find-the-bug solution cell carries, or None."""
    planted = cell.get("metadata", {}).get("bptt", {}).get(PLANTED_KEY)
    if planted is None:
        return None
    if not isinstance(planted, str) or not planted.strip():
        raise ValueError(f"metadata bptt.{PLANTED_KEY}: expected the cell's source as text")
    return planted


def _drop_tag(cell: dict, tag: str) -> None:
    tags = cell.get("metadata", {}).get("tags")
    if tags and tag in tags:
        tags.remove(tag)
        if not tags:
            del cell["metadata"]["tags"]


def exercise_from_solution(solution: dict) -> dict:
    """The exercise notebook (a new dict, outputs cleared) made from a ``solution`` notebook dict."""
    exercise = copy.deepcopy(solution)
    cells = []
    for index, cell in enumerate(exercise["cells"]):
        where = f"cell {index + 1}"
        source = _cell_source(cell)
        if cell.get("cell_type") == "code":
            planted = planted_source(cell)
            if planted is not None:
                if CODE_BEGIN in source:
                    raise ValueError(f"{where}: a planted cell holds no solution markers")
                del cell["metadata"]["bptt"][PLANTED_KEY]
                if not cell["metadata"]["bptt"]:
                    del cell["metadata"]["bptt"]
            if CODE_BEGIN in source or planted is not None:
                _drop_tag(cell, FOLD_TAG)
            cell["source"] = planted if planted is not None else strip_code(source, where)
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell.get("cell_type") == "markdown":
            cell["source"] = _own_notebook_links(strip_markdown(source, where))
            if not cell["source"].strip():
                continue
        cells.append(cell)
    exercise["cells"] = cells
    return exercise
