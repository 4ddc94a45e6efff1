"""Shared pytest configuration: markers, GPU skipping, hypothesis profiles, quiet progress bars."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))  # tests/course.py

from grading_helpers import namespaces  # noqa: F401 - the fixture of the grading tests

# CI and `make test` use a fixed, derandomised profile so a run is reproducible; set
# HYPOTHESIS_PROFILE=dev locally for more (random) examples.
settings.register_profile(
    "ci",
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Progress bars are noise in test logs; bptt honours this variable (see bptt.torch).
os.environ.setdefault("BPTT_PROGRESS", "0")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (run on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, request):
    """The HTML book, built once per test run (shared between pytest-xdist workers)."""
    from course import build_book
    from filelock import FileLock

    # All workers of one run share the parent of their basetemp; build there, under a lock.
    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # a pytest-xdist worker
        root = root.parent
    out, log = root / "book", root / "book-build.log"
    with FileLock(str(root / "book.lock")):
        if not (out / "_build" / "html" / "index.html").exists() and not log.exists():
            result = build_book(out)
            log.write_text(f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}")
    text = log.read_text()
    if not text.startswith("exit status 0"):
        pytest.fail("the book did not build without warnings:\n" + text[-6000:])
    return out / "_build" / "html"
