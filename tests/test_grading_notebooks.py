"""The exercise and solution notebooks agree with each other and with the grader."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from bptt.grading import exercise_ids, get_exercise
from bptt.grading.notebook import exercise_of
from bptt.grading.parts import KINDS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from exercise_stubs import CODE_BEGIN, FOLD_TAG, MARKDOWN_BEGIN, MARKDOWN_END, planted_source

SOLUTIONS = sorted((ROOT / "solutions").glob("ex[0-9][0-9]_*.ipynb"))


def _make_exercises():
    spec = importlib.util.spec_from_file_location(
        "make_exercises", ROOT / "tools" / "make_exercises.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_exercise_has_its_notebooks():
    ids = {path.name[:4] for path in SOLUTIONS}
    assert ids == set(exercise_ids())
    assert ids == {path.name[:4] for path in (ROOT / "exercises").glob("ex[0-9][0-9]_*.ipynb")}


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_exercise_is_generated_from_its_solution(solution):
    assert _make_exercises().drifted(solution) is None


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_notebook_names_its_exercise_in_metadata(folder, solution):
    notebook = json.loads((ROOT / folder / solution.name).read_text())
    assert notebook["metadata"]["bptt"]["exercise"] == solution.name[:4]
    assert exercise_of(notebook, "renamed.ipynb") == solution.name[:4]


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_self_check_cells_are_tagged_for_the_grader_to_skip(folder, solution):
    for cell in _cells(ROOT / folder / solution.name):
        calls_check = cell["cell_type"] == "code" and _source(cell).lstrip().startswith("check(")
        tagged = "check" in cell.get("metadata", {}).get("tags", [])
        assert calls_check == tagged, _source(cell)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_stored_exercise_shows_the_stubs_unscored(solution):
    """Stubs score "not implemented yet"; a find-the-bug exercise's planted code scores nothing."""
    cells = _cells(ROOT / "exercises" / solution.name)
    assert not any(CODE_BEGIN in _source(c) or MARKDOWN_BEGIN in _source(c) for c in cells)
    planted = any(planted_source(c) for c in _cells(solution))
    checks = [c for c in cells if "check" in c.get("metadata", {}).get("tags", [])]
    assert checks
    for cell in checks:
        assert cell["outputs"], "execute the exercise notebook (tools/make_exercises.py)"
        text = "".join("".join(o.get("text", "")) for o in cell["outputs"])
        assert "points - correct" not in text, text
        assert planted or "points - not implemented yet" in text, text


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_stored_solution_shows_full_marks(solution):
    checks = [c for c in _cells(solution) if "check" in c.get("metadata", {}).get("tags", [])]
    assert checks, "the solution has no self-check cell tagged 'check'"
    last = "".join("".join(o.get("text", "")) for o in checks[-1]["outputs"])
    total = last.strip().splitlines()[-1]
    points, most = total.removeprefix("Total: ").removesuffix(" points").split("/")
    assert points == most, last


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solutions_are_folded_until_the_reader_opens_them(solution):
    folded_code = folded_prose = 0
    for cell in _cells(solution):
        source, tags = _source(cell), cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code" and (CODE_BEGIN in source or planted_source(cell)):
            assert FOLD_TAG in tags, f"tag this solution cell {FOLD_TAG!r}:\n{source}"
            folded_code += 1
        if cell["cell_type"] == "markdown" and MARKDOWN_BEGIN in source:
            lines = [line.strip() for line in source.split("\n")]
            for start in (i for i, line in enumerate(lines) if line == MARKDOWN_BEGIN):
                assert lines[start + 1].startswith(":::{dropdown}"), source
                assert lines[lines.index(MARKDOWN_END, start) - 1] == ":::", source
                folded_prose += 1
    assert folded_code + folded_prose > 0


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_exercise_stubs_are_not_folded(solution):
    for cell in _cells(ROOT / "exercises" / solution.name):
        if "raise NotImplementedError" in _source(cell):
            assert FOLD_TAG not in cell.get("metadata", {}).get("tags", []), _source(cell)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_exercise_and_solution_link_to_each_other(solution):
    for folder in ("exercises", "solutions"):
        text = "".join(_source(c) for c in _cells(ROOT / folder / solution.name))
        assert f"../exercises/{solution.name}" in text and f"../solutions/{solution.name}" in text


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_the_chapter_of_the_same_number_ends_with_a_link_to_the_exercise(solution):
    """exercises/exNN_topic belongs to chapters/NN_*: the chapter's last Markdown cell links the
    exercise, and the exercise (and its solution) link back to the chapter."""
    number = solution.name[2:4]
    chapters = sorted((ROOT / "chapters").glob(f"{number}_*.ipynb"))
    assert len(chapters) == 1, f"{solution.name}: no chapters/{number}_*.ipynb (number it like its chapter)"
    link = f"../exercises/{solution.stem}"  # a Markdown link to the .ipynb or a {doc} link
    markdown = [c for c in _cells(chapters[0]) if c["cell_type"] == "markdown"]
    assert link in _source(markdown[-1]), f"{chapters[0].name} does not end with a link to {link}"
    for folder in ("exercises", "solutions"):
        text = "".join(_source(c) for c in _cells(ROOT / folder / solution.name))
        assert f"../chapters/{chapters[0].stem}" in text, f"{folder}/{solution.name} does not link back"


def test_the_toc_lists_exercises_and_solutions_in_chapter_order():
    toc = (ROOT / "_toc.yml").read_text().splitlines()
    for folder in ("exercises", "solutions"):
        listed = [line.split("file:")[1].strip() for line in toc if f"file: {folder}/ex" in line]
        assert listed == [f"{folder}/{p.stem}" for p in SOLUTIONS], listed


def test_every_chapter_has_its_exercise():
    chapters = sorted(p.name[:2] for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name[2:4] for p in SOLUTIONS) == chapters


def test_each_kind_of_exercise_appears_at_least_twice():
    counts = {kind: 0 for kind in KINDS}
    for exercise in exercise_ids():
        for kind in get_exercise(exercise).kinds:
            counts[kind] += 1
    assert min(counts.values()) >= 2, counts


@pytest.mark.parametrize("folder", ["chapters", "solutions", "exercises"])
def test_open_in_colab_badges_open_the_notebook_they_sit_in(folder):
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        text = "".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")
        for target in re.findall(r"colab\.research\.google\.com/github/\S+?/blob/[^/]+/([^)\s]+)", text):
            assert target == f"{folder}/{path.name}", f"{folder}/{path.name} opens {target} on Colab"
