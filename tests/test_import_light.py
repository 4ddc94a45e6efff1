"""``import bptt`` and its numpy modules never import torch (checked in a fresh interpreter)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import bptt

# Every top-level module of bptt is torch-free except these packages: bptt.torch (the torch
# code), bptt.grading (imports the torch-based exercise checks) and bptt.claims (the claims of
# the torch chapters). New numpy modules are covered without editing this list.
TORCH_PACKAGES = {"torch", "grading", "claims"}
NUMPY_MODULES = sorted(
    info.name for info in pkgutil.iter_modules(bptt.__path__)
    if info.name not in TORCH_PACKAGES and not info.name.startswith("_")
)


def imports_torch(statement: str) -> bool:
    code = f"import sys\n{statement}\nprint('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("module", ["bptt", *(f"bptt.{m}" for m in NUMPY_MODULES)])
def test_module_does_not_import_torch(module):
    assert not imports_torch(f"import {module}")


def test_the_check_itself_can_fail():
    assert imports_torch("sys.modules['torch'] = sys  # what any import of torch leaves behind")


def test_the_numpy_modules_include_the_known_ones():
    assert {"gradcheck", "influence", "jacobians", "linear", "rnn", "rtrl", "spectral", "tasks",
            "truncation"} <= set(NUMPY_MODULES)


def test_star_import_imports_neither_torch_nor_the_grader():
    code = "import sys\nfrom bptt import *\nprint('torch' in sys.modules, 'bptt.grading' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["False", "False"], result.stdout

