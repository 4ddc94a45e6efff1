"""`make test` fails when a notebook errors or its stored outputs no longer reproduce.

Each case writes a small executed notebook and runs pytest on it with the project's own
configuration (pyproject.toml: --nbval and the sanitizer file), in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from course import ROOT


def notebook(cells: list[tuple[str, list]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for count, (source, outputs) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        nb.cells.append(cell)
    return nb


def stdout(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def run_nbval(tmp_path, nb) -> subprocess.CompletedProcess:
    path = tmp_path / "case.ipynb"
    nbformat.write(nb, path)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
         "-p", "no:xdist", "-q", str(path)],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=300,
    )


def test_a_reproducing_notebook_passes(tmp_path):
    result = run_nbval(tmp_path, notebook([("print(2 + 2)", [stdout("4\n")])]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sanitizer_hides_object_addresses(tmp_path):
    result = run_nbval(tmp_path, notebook([("print(object.__new__(object))", [stdout("<object object at 0x7f00deadbeef>\n")])]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_notebook_that_errors_fails(tmp_path):
    result = run_nbval(tmp_path, notebook([("1 / 0", [])]))
    assert result.returncode != 0
    assert "ZeroDivisionError" in result.stdout


@pytest.mark.parametrize("stale", ["5\n", "4.0\n"])
def test_a_notebook_whose_outputs_changed_fails(tmp_path, stale):
    result = run_nbval(tmp_path, notebook([("print(2 + 2)", [stdout(stale)])]))
    assert result.returncode != 0
    assert "1 failed" in result.stdout


def test_pytest_runs_nbval_over_every_notebook_folder():
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert {"chapters", "exercises", "solutions", "tests"} <= set(options["testpaths"])
    assert "--nbval" in options["addopts"]


@pytest.mark.parametrize(("prefix", "passes"), [("iVBORw0KGgo", True), ("XVBORw0KGgo", False)])
def test_glued_figure_bytes_are_not_compared(tmp_path, prefix, passes):
    """PNG bytes (base64 starts with the PNG signature) are not compared; other glued data is."""
    record = "application/papermill.record/image/png"
    source = f"from IPython.display import display\ndisplay({{{record!r}: {prefix + 'NEW='!r}}}, raw=True)"
    stored = {"output_type": "display_data", "metadata": {}, "data": {record: prefix + "OLD+/"}}
    result = run_nbval(tmp_path, notebook([(source, [stored])]))
    assert (result.returncode == 0) == passes, result.stdout + result.stderr
