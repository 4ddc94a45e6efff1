"""Static checks of the stored notebooks: executed, no stored errors, reasons for ignored outputs."""

from __future__ import annotations

import pytest
from course import ROOT, notebooks, read_notebook

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
def test_ignored_outputs_say_why(path):
    for cell in code_cells(path):
        if "nbval-ignore-output" in cell.get("metadata", {}).get("tags", []):
            first = "".join(cell["source"]).lstrip().splitlines()[0]
            assert first.startswith("# nbval-ignore-output:") and len(first) > 30, (
                f"a cell tagged nbval-ignore-output must begin with '# nbval-ignore-output: <reason>':\n{first}"
            )
