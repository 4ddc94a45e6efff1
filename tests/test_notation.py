"""The Notation page and the code agree, and no text names a chapter by its number.

The Notation page (notation.md) lists every symbol with the name the package uses for it. The
package's public functions must use those names for the model's quantities (weights, biases,
states, adjoints, truncation and clipping settings), and never the other conventions a reader
meets elsewhere (d2l's ``W_hx``/``W_qh``, PyTorch's ``weight_ih``). Chapters are referred to by
label or title, never by number, so that inserting a chapter touches only _toc.yml and the new
file.
"""

from __future__ import annotations

import inspect
import json
import pkgutil
import re

import pytest
from course import ROOT

import bptt

NOTATION = (ROOT / "notation.md").read_text()
CODE_NAMES = set(re.findall(r"`([^`\s]+)", NOTATION)) | {
    name for token in re.findall(r"`([^`]+)`", NOTATION) for name in re.findall(r"\w+", token)
}

# Parameter names that denote a quantity of the model: these must be on the Notation page.
MODEL_QUANTITY = re.compile(r"^(W_\w+|b|b_\w+|h0|h_prev|x_t|dh\w*|delta|tau|xi|pi|k1|k2|lr|max_norm)$")
# Names of other conventions that the package must not use.
FOREIGN_NAMES = {"W_hx", "W_qh", "W_ih", "weight_ih", "weight_hh", "U", "V_hy", "Wx", "Wh"}
TORCH_PACKAGES = {"torch", "grading", "claims"}


def numpy_modules():
    for info in pkgutil.iter_modules(bptt.__path__):
        if info.name not in TORCH_PACKAGES and not info.name.startswith("_"):
            yield info.name


def public_parameters():
    """(module.function, parameter) for every public function of the numpy modules."""
    import importlib

    for name in numpy_modules():
        module = importlib.import_module(f"bptt.{name}")
        for fname, function in vars(module).items():
            if fname.startswith("_") or not inspect.isfunction(function):
                continue
            if function.__module__ != module.__name__:
                continue
            for parameter in inspect.signature(function).parameters:
                yield f"bptt.{name}.{fname}", parameter


def test_the_model_quantities_in_the_package_are_on_the_notation_page():
    missing = sorted({(where, p) for where, p in public_parameters()
                      if MODEL_QUANTITY.match(p) and p not in CODE_NAMES})
    assert not missing, f"parameters not listed on the Notation page: {missing}"


def test_the_package_uses_no_foreign_names():
    foreign = sorted({(where, p) for where, p in public_parameters() if p in FOREIGN_NAMES})
    assert not foreign, f"parameters named in another convention: {foreign}"


@pytest.mark.negative_control
def test_the_notation_check_catches_a_foreign_or_unlisted_name():
    assert MODEL_QUANTITY.match("W_qx") and "W_qx" not in CODE_NAMES
    assert "W_hx" in FOREIGN_NAMES


# --------------------------------------------------------------------------- chapter numbers

CHAPTER_NUMBER = re.compile(r"\b(chapters?|ch\.)\s+\d+|\bch\d+-", re.IGNORECASE)
TEXT_GLOBS = ("bptt/**/*.py", "tests/**/*.py", "tools/**/*.py", "benchmarks/**/*.py",
              "_ext/**/*.py", "*.md")


def chapter_numbers_in(text: str) -> list[str]:
    return [match.group(0) for match in CHAPTER_NUMBER.finditer(text)]


def texts():
    for pattern in TEXT_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            if ".venv" in path.parts or path.name == "test_notation.py":
                continue
            yield path.relative_to(ROOT), path.read_text()
    for folder in ("chapters", "exercises", "solutions"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            cells = json.loads(path.read_text())["cells"]
            yield path.relative_to(ROOT), "\n".join("".join(c["source"]) for c in cells)


def test_no_text_names_a_chapter_by_its_number():
    found = {str(path): hits for path, text in texts() if (hits := chapter_numbers_in(text))}
    assert not found, f"chapters named by number (use a label, {{doc}} or the title): {found}"


@pytest.mark.negative_control
def test_the_chapter_number_check_can_fail():
    assert chapter_numbers_in("as chapter 14 showed, see ch3-recursion") == ["chapter 14", "ch3-"]
    assert chapter_numbers_in("see {doc}`14_cost_of_bptt` and chapters/03_linear.ipynb") == []
