"""Static checks of the stored notebooks: executed, no stored errors, reasons for ignored outputs
(in metadata, not in the code readers see), an "Open in Colab" badge."""

from __future__ import annotations

import re

import pytest
from course import ROOT, notebooks, read_notebook

PLUMBING = re.compile(r"^\s*#\s*nbval-(ignore-output|skip|raises-exception)\b")

NOTEBOOKS = notebooks()
ids = [p.relative_to(ROOT).as_posix() for p in NOTEBOOKS]


def code_cells(path):
    return [c for c in read_notebook(path)["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_stored_executed_in_order(path):
    counts = [c["execution_count"] for c in code_cells(path)]
    assert all(isinstance(n, int) for n in counts), "store the notebook executed (tools/nbtool.py execute)"
    assert counts == sorted(counts), "execute the notebook top to bottom in one kernel"
    assert read_notebook(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_stored_errors(path):
    for cell in code_cells(path):
        tags = cell.get("metadata", {}).get("tags", [])
        for output in cell["outputs"]:
            assert output["output_type"] != "error" or "raises-exception" in tags, (
                f"stored error {output.get('ename')} in a cell not tagged raises-exception"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_ignored_outputs_say_why_in_metadata_not_in_the_code(path):
    """A cell tagged nbval-ignore-output keeps its reason in metadata.nbval.reason, and the code
    readers study carries no test plumbing (tools/nbtool.py nbval-reasons moves old comments)."""
    problems = []
    for number, cell in enumerate(read_notebook(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        metadata = cell.get("metadata", {})
        if any(PLUMBING.match(line) for line in source.splitlines()):
            problems.append(f"cell {number}: a '# nbval-...' comment in the code readers see")
        if "nbval-ignore-output" in metadata.get("tags", []):
            reason = str(metadata.get("nbval", {}).get("reason", ""))
            if len(reason.strip()) < 15:
                problems.append(f"cell {number}: tagged nbval-ignore-output without a reason "
                                f"in metadata.nbval.reason (got {reason!r})")
    assert not problems, (
        f"{path.name}:\n" + "\n".join(problems)
        + "\nfix: python tools/nbtool.py nbval-reasons " + path.relative_to(ROOT).as_posix()
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_has_an_open_in_colab_badge(path):
    cells = read_notebook(path)["cells"]
    badges = [c for c in cells if c["cell_type"] == "markdown"
              and "colab-badge" in c.get("metadata", {}).get("tags", [])]
    assert len(badges) == 1 and "remove-cell" in badges[0]["metadata"]["tags"], (
        f"{path.name}: no Colab badge cell; fix: python tools/nbtool.py badge "
        + path.relative_to(ROOT).as_posix()
    )
    assert "/blob/" in "".join(badges[0]["source"]) and path.name in "".join(badges[0]["source"])
