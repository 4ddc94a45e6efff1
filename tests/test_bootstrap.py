"""The first cell of every notebook installs `bptt` on Colab and is a no-op elsewhere."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from unittest import mock

import pytest
from course import ROOT, notebooks, read_notebook, repository

sys.path.insert(0, str(ROOT / "tools"))
import nbtool


def run_bootstrap(find_spec):
    calls = []

    def fake_run(cmd, check):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    with mock.patch.object(importlib.util, "find_spec", find_spec), mock.patch.object(subprocess, "run", fake_run):
        exec(nbtool.bootstrap_source(), {})  # noqa: S102 - the generated cell, run as a kernel would
    return calls


def test_bootstrap_is_a_no_op_where_bptt_is_importable():
    assert importlib.util.find_spec("bptt") is not None
    assert run_bootstrap(importlib.util.find_spec) == []


def test_bootstrap_installs_only_bptt_from_the_repository_when_missing():
    real = importlib.util.find_spec
    calls = run_bootstrap(lambda name, *a: None if name == "bptt" else real(name, *a))
    url, branch = repository()
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", f"bptt @ git+{url}@{branch}"]]
    assert branch == "main"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_notebook_starts_with_the_current_bootstrap_cell(path):
    first = read_notebook(path)["cells"][0]
    assert first.get("metadata", {}).get("tags") == list(nbtool.BOOTSTRAP_TAGS), (
        "run tools/nbtool.py bootstrap"
    )
    assert "".join(first["source"]) == nbtool.bootstrap_source(), "stale bootstrap: run tools/nbtool.py bootstrap"
