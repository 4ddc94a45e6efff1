"""``import bptt`` and its numpy modules never import torch (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

NUMPY_MODULES = ["gradcheck", "jacobians", "linear", "rnn", "rtrl", "spectral", "truncation", "lstm", "gru"]


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
