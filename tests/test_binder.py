"""Binder's environment, built from binder/ alone, runs the course.

A fresh virtual environment (no site packages of the test run) gets what repo2docker installs:
``pip install -r binder/requirements.txt`` from the repository root. Then one chapter and one
exercise are executed top to bottom in that environment's own kernel. This is the slowest test
of the suite (a whole install); it needs the package registries, like ``make test`` itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from course import ROOT

pytestmark = pytest.mark.slow

NOTEBOOKS = ("chapters/01_unrolled_graph.ipynb", "exercises/ex04_tanh_rnn_backward.ipynb")


def run(command, **kwargs):
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False, **kwargs
    )


def test_runtime_names_the_python_the_pins_were_made_for():
    """Binder's Python is the one constraints.txt was resolved on (its header records it).

    The test does not compare with the Python running it: the README says 3.10 and newer work,
    and the suite must pass on any of them.
    """
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    header = (ROOT / "constraints.txt").read_text()
    resolved = re.search(r"^# resolved on Python (\d+\.\d+)$", header, flags=re.MULTILINE)
    assert resolved, "constraints.txt must record the Python it was resolved on (make lock writes it)"
    assert runtime == f"python-{resolved.group(1)}", (
        f"binder/runtime.txt says {runtime}, but constraints.txt was resolved on Python {resolved.group(1)}"
    )


def test_binder_environment_runs_a_chapter_and_an_exercise(tmp_path):
    venv = tmp_path / "binder-venv"
    created = run([sys.executable, "-m", "venv", venv])
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    # An index that cannot be reached (the CPU torch index, offline in CI) is skipped at once
    # instead of being retried for every package; what gets installed does not change.
    env = {**os.environ, "PIP_RETRIES": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    installed = run(
        [python, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"],
        cwd=ROOT, env=env, timeout=1500,
    )
    assert installed.returncode == 0, "pip install -r binder/requirements.txt failed:\n" + (
        installed.stderr[-4000:]
    )
    where = run([python, "-c", "import bptt, torch; print(bptt.__file__, torch.__version__)"])
    assert where.returncode == 0, where.stderr
    assert str(ROOT) in where.stdout, f"bptt is not the repository's own: {where.stdout}"

    for notebook in NOTEBOOKS:
        executed = run(
            [python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--ExecutePreprocessor.timeout=600", "--output-dir", tmp_path, ROOT / notebook],
            cwd=ROOT, env={**env, "BPTT_PROGRESS": "0"}, timeout=900,
        )
        assert executed.returncode == 0, f"{notebook} failed in the Binder environment:\n" + (
            executed.stderr[-4000:]
        )
        assert (tmp_path / os.path.basename(notebook)).exists()
